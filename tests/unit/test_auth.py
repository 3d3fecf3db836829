"""SigV4 verification against requests signed by the real SDK signers.

Two independent signers produce the requests: botocore's pure-Python S3SigV4Auth /
S3SigV4QueryAuth, and the awscrt (aws-c-auth) signer that boto3 clients use whenever
awscrt is installed. A request captured from a boto3 client is exactly what the gateway
will receive from it, URL encoding included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from s4.server.auth import sigv4 as auth_module
from s4.server.auth.sigv4 import (
    AuthContext,
    Credential,
    Credentials,
    PayloadMode,
    authenticate,
    canonical_query,
    canonical_uri,
    parse_query,
)
from s4.server.errors import S3Error

NOW = datetime(2026, 11, 23, 21, 10, 0, tzinfo=UTC)
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDENTIALS = Credentials([Credential(AKID, SECRET), Credential("SECONDKEY", "another-secret")])
ENDPOINT = "http://s4.test:9000"


@dataclass(frozen=True)
class Wire:
    """A request as the gateway sees it: raw path, raw query, headers."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""

    def with_header(self, name: str, value: str | None) -> Wire:
        headers = {k: v for k, v in self.headers.items() if k.lower() != name.lower()}
        if value is not None:
            headers[name] = value
        return replace(self, headers=headers)


def fake_now(at: datetime = NOW):
    def now(remove_tzinfo: bool = True) -> datetime:
        return at.replace(tzinfo=None) if remove_tzinfo else at

    return now


@contextmanager
def frozen_clock(at: datetime = NOW) -> Iterator[None]:
    """Both botocore signers read the clock through their module's get_current_datetime."""
    with (
        mock.patch("botocore.auth.get_current_datetime", fake_now(at)),
        mock.patch("botocore.crt.auth.get_current_datetime", fake_now(at)),
    ):
        yield


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def wire_from(method: str, url: str, headers, body) -> Wire:
    parts = urlsplit(url)
    text_headers = {k: _text(v) for k, v in headers.items()}
    if not any(k.lower() == "host" for k in text_headers):
        text_headers["Host"] = parts.netloc
    if hasattr(body, "read"):
        body = body.read()
    return Wire(method, parts.path, parts.query, text_headers, body or b"")


def sign(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    secret: str = SECRET,
    access_key: str = AKID,
    region: str = "us-east-1",
    at: datetime = NOW,
    signer=S3SigV4Auth,
    service: str = "s3",
) -> Wire:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    with frozen_clock(at):
        signer(BotoCredentials(access_key, secret), service, region).add_auth(request)
    return wire_from(method, request.url, request.headers, body)


def presign(url: str, expires: int = 3600, *, at: datetime = NOW, method: str = "GET") -> Wire:
    request = AWSRequest(method=method, url=url)
    with frozen_clock(at):
        S3SigV4QueryAuth(BotoCredentials(AKID, SECRET), "s3", "us-east-1", expires=expires).add_auth(request)
    return wire_from(method, request.url, {}, b"")


def check(wire: Wire, now: datetime = NOW, credentials: Credentials = CREDENTIALS) -> AuthContext:
    return authenticate(wire.method, wire.path, wire.query, wire.headers, credentials, now=now)


def refused(wire: Wire, code: str, now: datetime = NOW) -> S3Error:
    with pytest.raises(S3Error) as info:
        check(wire, now=now)
    assert info.value.code == code, info.value.message
    return info.value


# --- boto3 clients (awscrt signer) -----------------------------------------------------------------


class _Captured(Exception):
    pass


def client(endpoint: str = ENDPOINT, **config):
    s3_config = {"addressing_style": "path", **config.pop("s3", {})}
    session = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET, region_name="us-east-1")
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3=s3_config, retries={"max_attempts": 1}, **config),
    )


@cache
def http_client():
    return client()


def capture(s3, operation: str, at: datetime = NOW, **params) -> Wire:
    """What a boto3 client would send for one call; nothing goes on the network."""
    sent = []

    def intercept(request, **_):
        sent.append(request)
        raise _Captured

    s3.meta.events.register("before-send.s3", intercept)
    try:
        with frozen_clock(at), pytest.raises(_Captured):
            getattr(s3, operation)(**params)
    finally:
        s3.meta.events.unregister("before-send.s3", intercept)
    request = sent[0]
    return wire_from(request.method, request.url, request.headers, request.body)


def presigned_url(s3, operation: str, expires: int = 3600, at: datetime = NOW, **params) -> Wire:
    with frozen_clock(at):
        url = s3.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
    parts = urlsplit(url)
    return Wire("GET" if operation.startswith(("get", "head", "list")) else "PUT", parts.path, parts.query, {})


def with_host(wire: Wire) -> Wire:
    return wire.with_header("Host", urlsplit(ENDPOINT).netloc)


# --- canonical forms ---------------------------------------------------------------------------------


def test_canonical_uri_encodes_once():
    assert canonical_uri("/b/a%20b%2Bc") == "/b/a%20b%2Bc"
    assert canonical_uri("/b/a b+c") == "/b/a%20b%2Bc"
    assert canonical_uri("/b/%7e%41%2fx") == "/b/~A/x"
    assert canonical_uri("/b/%e2%98%83") == "/b/%E2%98%83"
    assert canonical_uri("") == "/"
    assert canonical_uri("/b/100%") == "/b/100%25"


def test_canonical_query_sorts_and_encodes():
    pairs = parse_query("prefix=a+b%2Fc&list-type=2&acl&b=%7E&a=2&a=1")
    assert pairs[0] == ("prefix", "a+b/c")
    assert canonical_query(pairs) == "a=1&a=2&acl=&b=~&list-type=2&prefix=a%2Bb%2Fc"
    assert canonical_query(parse_query("X-Amz-Signature=abc&x=1"), exclude="X-Amz-Signature") == "x=1"
    assert canonical_query(parse_query("")) == ""


# --- header form: requests signed by botocore and by boto3's awscrt signer -----------------------------

AWKWARD_PREFIXES = [
    "photos/2026 summer/",
    "a+b=c~d",
    "100%/done",
    "ключ/☃/",
    "a&b?c#d",
    " leading and trailing ",
    "",
]


@pytest.mark.parametrize("prefix", AWKWARD_PREFIXES)
def test_list_objects_v2_with_awkward_prefix(prefix):
    wire = capture(http_client(), "list_objects_v2", Bucket="bucket", Prefix=prefix, Delimiter="/")
    assert "list-type=2" in wire.query
    context = check(wire)
    assert context.payload_mode is PayloadMode.SHA256
    assert context.payload_sha256 == hashlib.sha256(b"").hexdigest()
    assert context.access_key_id == AKID
    assert context.amz_date == "20261123T211000Z"
    assert context.scope == "20261123/us-east-1/s3/aws4_request"
    assert not context.presigned


AWKWARD_KEYS = ["a b+c=d~e%f&g?h#i☃.txt", "dir/sub dir/file.txt", "ünïcödé/ключ", "~tilde", "plus+plus", "=/=", "a//b"]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_put_object_with_awkward_key(key):
    body = b"hello, world"
    wire = capture(http_client(), "put_object", Bucket="bucket", Key=key, Body=body)
    context = check(wire)
    assert context.payload_mode is PayloadMode.SHA256
    assert context.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert context.seed_signature in wire.headers["Authorization"]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_pure_python_signer_with_awkward_key(key):
    url = f"{ENDPOINT}/bucket/{quote(key, safe='/~')}?uploads&x-id=CreateMultipartUpload"
    check(sign("POST", url, body=b""))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30),
    prefix=st.text(st.characters(blacklist_categories=["Cs"]), max_size=20),
)
def test_any_key_and_query_value_verifies(key, prefix):
    check(capture(http_client(), "get_object", Bucket="bucket", Key=key, VersionId=prefix or "v"))
    check(capture(http_client(), "list_objects_v2", Bucket="bucket", Prefix=prefix, StartAfter=key))


def test_unsigned_payload():
    s3 = client("https://s4.test", s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")
    wire = capture(s3, "put_object", Bucket="bucket", Key="k", Body=b"data")
    assert wire.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    context = check(wire)
    assert context.payload_mode is PayloadMode.UNSIGNED
    assert context.payload_sha256 is None


def test_streaming_unsigned_trailer_from_boto3():
    wire = capture(client("https://s4.test"), "put_object", Bucket="bucket", Key="k", Body=b"data")
    assert check(wire).payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER


@pytest.mark.parametrize(
    "mode",
    [
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
        PayloadMode.UNSIGNED,
    ],
)
def test_payload_modes_from_header(mode):
    headers = {"X-Amz-Content-SHA256": mode.value, "X-Amz-Decoded-Content-Length": "10"}
    wire = sign("PUT", f"{ENDPOINT}/bucket/key", headers=headers, signer=SigV4Auth)
    context = check(wire)
    assert context.payload_mode is mode
    assert context.seed_signature == wire.headers["Authorization"].rsplit("Signature=", 1)[1]


def test_pure_python_signer_with_hex_payload():
    body = b"x" * 1000
    wire = sign("PUT", f"{ENDPOINT}/bucket/key", headers={"Content-MD5": "abc", "X-Amz-Meta-A": "b"}, body=body)
    context = check(wire)
    assert context.payload_sha256 == hashlib.sha256(body).hexdigest()


def test_any_region_is_accepted():
    for region in ("eu-west-3", "garage", "auto"):
        context = check(sign("GET", f"{ENDPOINT}/bucket/key", region=region))
        assert context.scope == f"20261123/{region}/s3/aws4_request"


def test_second_credential_and_header_case():
    wire = sign("GET", f"{ENDPOINT}/bucket/key", access_key="SECONDKEY", secret="another-secret")
    shouty = {k.upper(): v for k, v in wire.headers.items()}
    assert check(replace(wire, headers=shouty)).access_key_id == "SECONDKEY"


def test_repeated_headers_are_joined_in_order():
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/bucket/key")
    request.headers["X-Amz-Meta-Tag"] = "first"
    request.headers["X-Amz-Meta-Tag"] = "  second   value "  # HTTPHeaders keeps both, like the wire
    with frozen_clock():
        S3SigV4Auth(BotoCredentials(AKID, SECRET), "s3", "us-east-1").add_auth(request)
    headers = CIMultiDict((k, _text(v)) for k, v in request.headers.items())
    assert len(headers.getall("x-amz-meta-tag")) == 2
    headers["Host"] = "s4.test:9000"
    parts = urlsplit(request.url)
    authenticate("GET", parts.path, parts.query, headers, CREDENTIALS, now=NOW)


def test_aiohttp_header_proxy():
    wire = capture(http_client(), "put_object", Bucket="bucket", Key="k", Body=b"x", Metadata={"a": "b"})
    proxy = CIMultiDictProxy(CIMultiDict(wire.headers))
    assert authenticate(wire.method, wire.path, wire.query, proxy, CREDENTIALS, now=NOW).access_key_id == AKID


def test_date_header_instead_of_x_amz_date():
    wire = sign("GET", f"{ENDPOINT}/bucket/key", headers={"Date": "whatever"})
    assert "X-Amz-Date" not in wire.headers
    assert check(wire).amz_date == "20261123T211000Z"
    refused(wire, "RequestTimeTooSkewed", now=NOW + timedelta(hours=1))


def test_signing_keys_are_cached():
    wire = sign("GET", f"{ENDPOINT}/bucket/key", region="cache-test")
    auth_module.signing_key.cache_clear()
    check(wire)
    check(wire)
    info = auth_module.signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)


# --- refusals -----------------------------------------------------------------------------------------


def test_anonymous_is_refused():
    error = refused(Wire("GET", "/bucket/key", "", {"Host": "s4.test"}), "AccessDenied")
    assert "Anonymous" in error.message


def test_sigv2_header_is_refused():
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/bucket/key")
    HmacV1Auth(BotoCredentials(AKID, SECRET)).add_auth(request)
    wire = wire_from("GET", request.url, request.headers, b"")
    assert wire.headers["Authorization"].startswith("AWS ")
    assert refused(wire, "InvalidRequest").message == "Please use AWS4-HMAC-SHA256."


@pytest.mark.parametrize("path", ["/bucket/key", "/bucket/dir/a%20b%2Bc~%C3%A9"])
def test_sigv2_presigned_urls_from_botocore_are_accepted(path):
    """What `aws s3 presign` produces without s3v4 configured: S3 accepts it, so do we."""
    now = datetime.now(UTC)
    request = AWSRequest(method="GET", url=f"{ENDPOINT}{path}?response-content-type=text%2Fplain")
    HmacV1QueryAuth(BotoCredentials(AKID, SECRET), expires=300).add_auth(request)
    wire = wire_from("GET", request.url, {}, b"")
    context = check(wire, now=now)
    assert (context.access_key_id, context.payload_mode, context.presigned) == (AKID, PayloadMode.UNSIGNED, True)
    with pytest.raises(S3Error) as info:
        check(wire, now=now, credentials=Credentials([Credential(AKID, "another secret")]))
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as info:
        check(wire_from("GET", request.url.replace("/bucket/", "/other/"), {}, b""), now=now)
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as info:
        check(wire, now=now + timedelta(seconds=301))
    assert (info.value.code, info.value.message) == ("AccessDenied", "Request has expired")


def test_unsupported_authorization_type():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    refused(wire.with_header("Authorization", "Bearer abc"), "InvalidArgument")


def test_wrong_secret():
    error = refused(sign("GET", f"{ENDPOINT}/bucket/key", secret="not-the-secret"), "SignatureDoesNotMatch")
    assert error.message.startswith("The request signature we calculated does not match")
    assert error.status == 403
    assert "CanonicalRequest" in error.extra and "StringToSign" in error.extra


def test_unknown_access_key():
    error = refused(sign("GET", f"{ENDPOINT}/bucket/key", access_key="NOBODY"), "InvalidAccessKeyId")
    assert error.extra["AWSAccessKeyId"] == "NOBODY"


def test_signature_not_hex_is_a_mismatch():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    authorization = wire.headers["Authorization"].rsplit("=", 1)[0] + "=ÿ" * 64
    refused(wire.with_header("Authorization", authorization), "SignatureDoesNotMatch")


def _tampered_cases(wire: Wire):
    yield "method", replace(wire, method="DELETE")
    yield "path", replace(wire, path=wire.path + "x")
    yield "path case", replace(wire, path=wire.path.upper())
    yield "query value", replace(wire, query=wire.query.replace("prefix=a", "prefix=b"))
    yield "query added", replace(wire, query=wire.query + "&versionId=1")
    yield "query removed", replace(wire, query=wire.query.replace("&delimiter=%2F", ""))
    yield "signed header", wire.with_header("X-Amz-Meta-Colour", "blue")
    yield "host", wire.with_header("Host", "evil.test:9000")
    yield "payload hash", wire.with_header("X-Amz-Content-SHA256", hashlib.sha256(b"other").hexdigest())
    yield "date", wire.with_header("X-Amz-Date", "20261123T211001Z")


def test_tampering_with_any_signed_element_is_refused():
    wire = sign(
        "GET",
        f"{ENDPOINT}/bucket/key?prefix=a&delimiter=%2F",
        headers={"X-Amz-Meta-Colour": "red", "Range": "bytes=0-9"},
    )
    check(wire)
    for what, tampered in _tampered_cases(wire):
        with pytest.raises(S3Error) as info:
            check(tampered)
        assert info.value.code == "SignatureDoesNotMatch", what


def test_unsigned_headers_that_are_not_x_amz_may_change():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    check(wire.with_header("User-Agent", "curl/8").with_header("Accept-Encoding", "identity"))


def test_unsigned_x_amz_header_is_refused():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    error = refused(wire.with_header("X-Amz-Meta-Added", "later"), "AccessDenied")
    assert error.message == "There were headers present in the request which were not signed"
    assert error.extra["HeadersNotSigned"] == "x-amz-meta-added"


def test_host_must_be_signed():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    authorization = wire.headers["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    error = refused(wire.with_header("Authorization", authorization), "AccessDenied")
    assert "host" in error.extra["HeadersNotSigned"]


def test_missing_content_sha256():
    wire = sign("GET", f"{ENDPOINT}/bucket/key", signer=SigV4Auth)  # the generic signer sets no such header
    assert not any(k.lower() == "x-amz-content-sha256" for k in wire.headers)
    error = refused(wire, "InvalidRequest")
    assert error.message == "Missing required header for this request: x-amz-content-sha256"


@pytest.mark.parametrize("value", ["garbage", "abc123", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "0" * 63])
def test_bad_content_sha256(value):
    wire = sign("GET", f"{ENDPOINT}/bucket/key", headers={"X-Amz-Content-SHA256": value}, signer=SigV4Auth)
    refused(wire, "InvalidArgument")


def test_missing_date():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    refused(wire.with_header("X-Amz-Date", None), "AccessDenied")
    refused(wire.with_header("X-Amz-Date", "yesterday"), "AccessDenied")


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24, 60 * 24 * 365])
def test_clock_skew_is_refused(minutes):
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    error = refused(wire, "RequestTimeTooSkewed", now=NOW + timedelta(minutes=minutes))
    assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"


@pytest.mark.parametrize("minutes", [-14, 0, 14])
def test_small_clock_skew_is_fine(minutes):
    check(sign("GET", f"{ENDPOINT}/bucket/key"), now=NOW + timedelta(minutes=minutes))


def test_naive_now_means_utc():
    check(sign("GET", f"{ENDPOINT}/bucket/key"), now=NOW.replace(tzinfo=None))


def _with_authorization(wire: Wire, old: str, new: str) -> Wire:
    return wire.with_header("Authorization", wire.headers["Authorization"].replace(old, new))


def test_malformed_authorization_header():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    cases = [
        _with_authorization(wire, "Credential=", "Credentials="),
        _with_authorization(wire, "SignedHeaders=", "Headers="),
        _with_authorization(wire, "Signature=", "Sig="),
        _with_authorization(wire, "/aws4_request", "/aws5_request"),
        _with_authorization(wire, "/s3/", "/ec2/"),
        _with_authorization(wire, "/us-east-1/", "/"),
        _with_authorization(wire, "20261123/", "20261122/"),
    ]
    for tampered in cases:
        refused(tampered, "AuthorizationHeaderMalformed")


def test_service_other_than_s3_is_malformed():
    wire = sign("GET", f"{ENDPOINT}/bucket/key", service="ec2")
    error = refused(wire, "AuthorizationHeaderMalformed")
    assert 'incorrect service "ec2"' in error.message


def test_both_auth_mechanisms_are_refused():
    wire = sign("GET", f"{ENDPOINT}/bucket/key")
    refused(replace(wire, query="X-Amz-Algorithm=AWS4-HMAC-SHA256"), "InvalidArgument")


# --- presigned URLs -------------------------------------------------------------------------------------


def test_presigned_get_from_boto3():
    wire = with_host(presigned_url(http_client(), "get_object", Bucket="bucket", Key="dir/a b+c☃.txt"))
    context = check(wire)
    assert context.presigned
    assert context.payload_mode is PayloadMode.UNSIGNED
    assert context.seed_signature in wire.query


def test_presigned_put_from_pure_python_signer():
    wire = presign(f"{ENDPOINT}/bucket/up%20load?partNumber=2&uploadId=abc", method="PUT")
    assert check(wire).presigned


def test_presigned_expiry():
    wire = with_host(presigned_url(http_client(), "get_object", expires=600, Bucket="bucket", Key="k"))
    check(wire, now=NOW + timedelta(seconds=600))
    error = refused(wire, "AccessDenied", now=NOW + timedelta(seconds=601))
    assert error.message == "Request has expired"
    assert error.extra["X-Amz-Expires"] == "600"


def test_presigned_not_yet_valid():
    wire = with_host(presigned_url(http_client(), "get_object", Bucket="bucket", Key="k"))
    check(wire, now=NOW - timedelta(minutes=14))
    refused(wire, "RequestTimeTooSkewed", now=NOW - timedelta(minutes=16))


def test_presigned_max_expires():
    wire = with_host(presigned_url(http_client(), "get_object", expires=604800, Bucket="bucket", Key="k"))
    check(wire, now=NOW + timedelta(days=7))
    refused(wire, "AccessDenied", now=NOW + timedelta(days=7, seconds=1))
    too_long = with_host(presigned_url(http_client(), "get_object", expires=604801, Bucket="bucket", Key="k"))
    refused(too_long, "AuthorizationQueryParametersError")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("X-Amz-Expires=3600", "X-Amz-Expires=0"),
        ("X-Amz-Expires=3600", "X-Amz-Expires=soon"),
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"),
        ("X-Amz-Date=20261123T211000Z", "X-Amz-Date=2026-11-23"),
        ("X-Amz-Credential=", "X-Amz-Credentials="),
        ("%2Faws4_request", "%2Faws5_request"),
        ("%2Fs3%2F", "%2Fec2%2F"),
        ("X-Amz-Credential=AKIDEXAMPLE%2F20261123", "X-Amz-Credential=AKIDEXAMPLE%2F20261124"),
    ],
)
def test_malformed_presign_parameters(old, new):
    wire = presign(f"{ENDPOINT}/bucket/key")
    assert old in wire.query
    refused(replace(wire, query=wire.query.replace(old, new)), "AuthorizationQueryParametersError")


def test_presigned_tampering():
    wire = presign(f"{ENDPOINT}/bucket/key?versionId=1")
    refused(replace(wire, path="/bucket/other"), "SignatureDoesNotMatch")
    refused(replace(wire, query=wire.query.replace("versionId=1", "versionId=2")), "SignatureDoesNotMatch")
    refused(
        replace(wire, query=wire.query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200")), "SignatureDoesNotMatch"
    )
    refused(replace(wire, method="DELETE"), "SignatureDoesNotMatch")
    refused(wire.with_header("Host", "elsewhere.test"), "SignatureDoesNotMatch")


def test_presigned_duplicate_auth_parameter():
    wire = presign(f"{ENDPOINT}/bucket/key")
    refused(replace(wire, query=wire.query + "&X-Amz-Expires=60"), "AuthorizationQueryParametersError")


def test_presigned_wrong_secret_and_unknown_key():
    wire = presign(f"{ENDPOINT}/bucket/key")
    other = Credentials([Credential(AKID, "different")])
    with pytest.raises(S3Error) as info:
        check(wire, credentials=other)
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as info:
        check(wire, credentials=Credentials([]))
    assert info.value.code == "InvalidAccessKeyId"


def test_presigned_requests_refuse_unsigned_x_amz_headers():
    # As S3 does: an unsigned x-amz-* header (a copy source, an ACL, a checksum) would change what a
    # presigned request does without touching its signature.
    wire = presign(f"{ENDPOINT}/bucket/key")
    with pytest.raises(S3Error) as info:
        check(wire.with_header("X-Amz-Copy-Source", "/other/secret"))
    assert info.value.code == "AccessDenied"
    assert "x-amz-copy-source" in info.value.extra["HeadersNotSigned"]


def test_presigned_requests_tolerate_an_unsigned_content_sha256():
    # The query decides the payload mode of a presigned request; the header changes nothing.
    wire = presign(f"{ENDPOINT}/bucket/key")
    check(wire.with_header("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))


# --- the worked examples in AWS's SigV4-for-S3 documentation ------------------------------------------

DOC_CREDENTIALS = Credentials([Credential("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")])
DOC_NOW = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)


def test_aws_documented_get_object_example():
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-amz-date": "20130524T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    }
    context = authenticate("GET", "/test.txt", "", headers, DOC_CREDENTIALS, now=DOC_NOW)
    assert context.seed_signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_aws_documented_presigned_example():
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    headers = {"Host": "examplebucket.s3.amazonaws.com"}
    assert authenticate("GET", "/test.txt", query, headers, DOC_CREDENTIALS, now=DOC_NOW).presigned
    with pytest.raises(S3Error) as info:
        authenticate("GET", "/test.txt", query, headers, DOC_CREDENTIALS, now=DOC_NOW + timedelta(days=1))
    assert info.value.code == "AccessDenied"
