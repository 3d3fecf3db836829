"""Requests crafted to get past authentication, against a real ``s4 serve`` on the embedded store.

Each must be refused with the code S3 gives, and leave nothing behind. Covered elsewhere
(tests/e2e/test_s3_api.py), so not repeated here: a wrong secret (SignatureDoesNotMatch via
the SDK), a body altered after signing (XAmzContentSHA256Mismatch), an x-amz-meta header added
to a header-signed PUT (403), one flipped chunk signature mid-stream, an anonymous request,
a GET signed 20 minutes ago, and a 100-continue refused before the body.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import zlib
from unittest import mock
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY, start_gateway
from tests.e2e.raw import send, send_target, sign, signed_chunked_body, streaming_put

SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    gateway = start_gateway(tmp_path_factory.mktemp("abuse") / "gateway")
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def bucket(gw):
    client = gw.client()
    client.create_bucket(Bucket="abuse")
    client.create_bucket(Bucket="abuse-other")
    return "abuse"


# --- helpers --------------------------------------------------------------------------------------


def code_of(body: bytes) -> str:
    found = re.search(rb"<Code>([^<]*)</Code>", body)
    return found.group(1).decode() if found else ""


def assert_refused(reply: tuple[int, dict[str, str], bytes], status: int, code: str) -> bytes:
    got_status, _, body = reply
    assert (got_status, code_of(body)) == (status, code), body
    assert re.search(rb"<RequestId>[0-9A-F]+</RequestId>", body), body
    return body


def assert_absent(gateway, bucket: str, *keys: str) -> None:
    client = gateway.client()
    for key in keys:
        with pytest.raises(ClientError) as info:
            client.head_object(Bucket=bucket, Key=key)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def presign(method: str, url: str, expires: int = 300, when: dt.datetime | None = None) -> str:
    """A SigV4 presigned URL as botocore makes them, signed as if the clock said ``when``."""
    request = AWSRequest(method=method, url=url)
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", expires=expires)
    moment = (when or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return request.url


def send_presigned(gateway, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None):
    parts = urlsplit(url)
    return send_target(gateway, method, f"{parts.path}?{parts.query}", headers, body)


def signed_headers_for(gateway, method: str, raw_target: str, body: bytes = b"") -> dict[str, str]:
    """Header-form SigV4 for a raw request target, signed over its canonical (decoded, re-encoded) path."""
    path, _, query = raw_target.partition("?")
    canonical = quote(unquote(path), safe="/~")
    url = f"{gateway.endpoint}{canonical}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


# --- presigned URLs -------------------------------------------------------------------------------


def test_presigned_put_works_until_it_expires(gw, bucket):
    fresh = presign("PUT", f"{gw.endpoint}/{bucket}/presigned-ok")
    assert send_presigned(gw, "PUT", fresh, b"allowed")[0] == 200  # the control: the helper signs right
    stale = presign("PUT", f"{gw.endpoint}/{bucket}/presigned-late", expires=60, when=_ago(minutes=5))
    body = assert_refused(send_presigned(gw, "PUT", stale, b"too late"), 403, "AccessDenied")
    assert b"Request has expired" in body
    assert_absent(gw, bucket, "presigned-late")


def test_expired_presigned_get_reveals_nothing(gw, bucket):
    gw.client().put_object(Bucket=bucket, Key="secret", Body=b"the secret bytes")
    stale = presign("GET", f"{gw.endpoint}/{bucket}/secret", expires=1, when=_ago(seconds=30))
    body = assert_refused(send_presigned(gw, "GET", stale), 403, "AccessDenied")
    assert b"the secret bytes" not in body


def test_presigned_url_dated_beyond_the_skew_is_refused(gw, bucket):
    future = presign("PUT", f"{gw.endpoint}/{bucket}/from-the-future", when=_ago(minutes=-20))
    assert_refused(send_presigned(gw, "PUT", future, b"x"), 403, "RequestTimeTooSkewed")
    assert_absent(gw, bucket, "from-the-future")


@pytest.mark.parametrize(
    ("signed_method", "signed_path", "sent_method", "sent_path"),
    [
        ("PUT", "/abuse/mine", "PUT", "/abuse/yours"),  # another key
        ("PUT", "/abuse/mine", "PUT", "/abuse-other/mine"),  # another bucket
        ("GET", "/abuse/mine", "PUT", "/abuse/mine"),  # another method
    ],
    ids=["key", "bucket", "method"],
)
def test_presigned_url_used_for_something_else_is_refused(
    gw, bucket, signed_method, signed_path, sent_method, sent_path
):
    url = presign(signed_method, f"{gw.endpoint}{signed_path}")
    query = urlsplit(url).query
    reply = send_target(gw, sent_method, f"{sent_path}?{query}", body=b"hijacked")
    assert_refused(reply, 403, "SignatureDoesNotMatch")
    assert_absent(gw, "abuse", "mine", "yours")
    assert_absent(gw, "abuse-other", "mine")


def test_x_amz_header_added_to_a_presigned_put_is_refused(gw, bucket):
    gw.client().put_object(Bucket=bucket, Key="copy-me", Body=b"someone else's object")
    url = presign("PUT", f"{gw.endpoint}/{bucket}/presigned-extra")
    reply = send_presigned(gw, "PUT", url, b"", headers={"x-amz-copy-source": f"/{bucket}/copy-me"})
    body = assert_refused(reply, 403, "AccessDenied")
    assert b"x-amz-copy-source" in body
    assert_absent(gw, bucket, "presigned-extra")


# --- header-form signatures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_method", "signed_path", "sent_method", "sent_path"),
    [
        ("PUT", "/abuse/mine", "PUT", "/abuse/yours"),
        ("PUT", "/abuse/mine", "PUT", "/abuse-other/mine"),
        ("GET", "/abuse/mine", "PUT", "/abuse/mine"),
    ],
    ids=["key", "bucket", "method"],
)
def test_signature_for_another_request_is_refused(gw, bucket, signed_method, signed_path, sent_method, sent_path):
    body = b"hijacked"
    headers = signed_headers_for(gw, signed_method, signed_path, body)
    assert_refused(send_target(gw, sent_method, sent_path, headers, body), 403, "SignatureDoesNotMatch")
    assert_absent(gw, "abuse", "mine", "yours")
    assert_absent(gw, "abuse-other", "mine")


def test_signed_get_replayed_as_delete_deletes_nothing(gw, bucket):
    gw.client().put_object(Bucket=bucket, Key="keep", Body=b"kept")
    headers = signed_headers_for(gw, "GET", f"/{bucket}/keep")
    assert send_target(gw, "GET", f"/{bucket}/keep", headers)[0] == 200  # the control
    assert_refused(send_target(gw, "DELETE", f"/{bucket}/keep", headers), 403, "SignatureDoesNotMatch")
    assert gw.client().get_object(Bucket=bucket, Key="keep")["Body"].read() == b"kept"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-copy-source", "/abuse/copy-source"),  # would turn the PUT into a copy
        ("x-amz-checksum-crc32", base64.b64encode(zlib.crc32(b"x").to_bytes(4, "big")).decode()),
        ("x-amz-meta-owner", "mallory"),
    ],
)
def test_x_amz_header_added_after_signing_is_refused_and_named(gw, bucket, name, value):
    gw.client().put_object(Bucket=bucket, Key="copy-source", Body=b"source")
    request = sign("PUT", f"{gw.endpoint}/{bucket}/added", {"X-Amz-Content-SHA256": sha256(b"x")}, b"x")
    request.headers[name] = value
    body = assert_refused(send(gw, request), 403, "AccessDenied")
    assert f"<HeadersNotSigned>{name}</HeadersNotSigned>".encode() in body
    assert_absent(gw, bucket, "added")


def test_missing_x_amz_content_sha256_is_refused(gw, bucket):
    request = sign("PUT", f"{gw.endpoint}/{bucket}/no-sha", {}, b"body")
    assert "X-Amz-Content-SHA256" not in request.headers
    body = assert_refused(send(gw, request), 400, "InvalidRequest")
    assert b"x-amz-content-sha256" in body
    assert_absent(gw, bucket, "no-sha")


@pytest.mark.parametrize("minutes", [16, -16], ids=["past", "future"])
def test_request_replayed_beyond_the_clock_skew_stores_nothing(gw, bucket, minutes):
    body = b"replayed"
    request = sign(
        "PUT", f"{gw.endpoint}/{bucket}/replayed", {"X-Amz-Content-SHA256": sha256(body)}, body, when=_ago(minutes)
    )
    reply = assert_refused(send(gw, request), 403, "RequestTimeTooSkewed")
    assert b"<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>" in reply
    assert_absent(gw, bucket, "replayed")


def _ago(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes, seconds=seconds)


# --- aws-chunked: the signature chain ------------------------------------------------------------


def _frames(body: bytes) -> list[bytes]:
    """The chunk frames of a signed aws-chunked body, each ``size;chunk-signature=...\\r\\ndata\\r\\n``."""
    frames, at = [], 0
    while at < len(body):
        header_end = body.index(b"\r\n", at)
        size = int(body[at:header_end].split(b";")[0], 16)
        end = header_end + 2 + size + 2
        frames.append(body[at:end])
        at = end
    return frames


def _chain_broken(gw, bucket: str, key: str, tamper) -> None:
    chunks = [b"a" * 10_000, b"b" * 10_000, b"c" * 10_000]
    request, body = streaming_put(gw, bucket, key, chunks)
    tampered = tamper(request, chunks, _frames(body))
    assert len(tampered) == len(body)  # the signed Content-Length still holds: only the chain is wrong
    reply = assert_refused(send(gw, request, tampered), 403, "SignatureDoesNotMatch")
    assert b"chunk" in reply.lower()
    assert_absent(gw, bucket, key)


def test_replayed_chunk_breaks_the_chain(gw, bucket):
    _chain_broken(gw, bucket, "replayed-chunk", lambda _r, _c, f: f[0] + f[1] + f[1] + f[3])


def test_reordered_chunks_break_the_chain(gw, bucket):
    _chain_broken(gw, bucket, "reordered", lambda _r, _c, f: f[0] + f[2] + f[1] + f[3])


def test_broken_final_chunk_signature_stores_nothing(gw, bucket):
    def tamper(_request, _chunks, frames):
        last = frames[3]
        flipped = b"0" if last[-5:-4] != b"0" else b"1"
        return b"".join(frames[:3]) + last[:-5] + flipped + last[-4:]

    _chain_broken(gw, bucket, "final-chunk", tamper)


def test_chunks_spliced_from_another_request_break_the_chain(gw, bucket):
    def tamper(request, chunks, _frames):
        other = sign("PUT", f"{gw.endpoint}/{bucket}/other", dict(request.headers.items()))
        return signed_chunked_body(other, chunks)

    _chain_broken(gw, bucket, "spliced", tamper)


# --- trailing checksums -------------------------------------------------------------------------------


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _signing_key(date: str) -> bytes:
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _trailer_put(gw, bucket: str, key: str, data: bytes, checksum: str, mode: str, break_trailer_signature=False):
    """A PUT whose CRC32 comes after the body, as a trailer (signed or not, per ``mode``)."""
    signed = mode == SIGNED_TRAILER
    trailer = f"x-amz-checksum-crc32:{checksum}"

    def body_for(request) -> bytes:
        if not signed:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + trailer.encode() + b"\r\n\r\n"
        chunked = signed_chunked_body(request, [data])
        amz_date = request.headers["X-Amz-Date"]
        scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
        previous = chunked.rsplit(b"chunk-signature=", 1)[1][:64].decode()
        to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous, sha256(f"{trailer}\n".encode())])
        signature = hmac.new(_signing_key(amz_date[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        if break_trailer_signature:
            signature = ("1" if signature[0] == "0" else "0") + signature[1:]
        return chunked[:-2] + f"{trailer}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()

    headers = {
        "X-Amz-Content-SHA256": mode,
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
    }
    probe = sign("PUT", f"{gw.endpoint}/{bucket}/{key}", headers)
    headers["Content-Length"] = str(len(body_for(probe)))  # signatures are fixed-length: same size
    request = sign("PUT", f"{gw.endpoint}/{bucket}/{key}", headers)
    return send(gw, request, body_for(request))


@pytest.mark.parametrize("mode", [UNSIGNED_TRAILER, SIGNED_TRAILER], ids=["unsigned", "signed"])
def test_trailer_checksum_that_does_not_match_stores_nothing(gw, bucket, mode):
    data = b"trailing checksum payload" * 100
    assert _trailer_put(gw, bucket, f"trailer-ok-{mode}", data, _crc32(data), mode)[0] == 200  # the control
    assert gw.client().get_object(Bucket=bucket, Key=f"trailer-ok-{mode}")["Body"].read() == data
    reply = _trailer_put(gw, bucket, f"trailer-bad-{mode}", data, _crc32(b"other data"), mode)
    assert_refused(reply, 400, "BadDigest")
    assert_absent(gw, bucket, f"trailer-bad-{mode}")


def test_trailer_signature_that_does_not_match_stores_nothing(gw, bucket):
    data = b"signed trailer payload" * 100
    reply = _trailer_put(gw, bucket, "trailer-sig", data, _crc32(data), SIGNED_TRAILER, break_trailer_signature=True)
    assert_refused(reply, 403, "SignatureDoesNotMatch")
    assert_absent(gw, bucket, "trailer-sig")


# --- keys that look like paths -----------------------------------------------------------------------


def _outside_files(gw) -> set[str]:
    """Every file under the gateway's scratch directory's parent except the store's own data dir."""
    root = gw.data_dir.parent.parent
    return {str(p) for p in root.rglob("*") if gw.data_dir not in p.parents and p != gw.data_dir}


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("../../escape-raw", "../../escape-raw"),  # dot segments sent as they are
        ("..%2F..%2Fescape-encoded", "../../escape-encoded"),  # slashes percent-encoded
        ("%2E%2E/%2E%2E/escape-dots", "../../escape-dots"),  # dots percent-encoded
        ("/etc/passwd", "/etc/passwd"),  # an absolute path
        ("%2Ftmp%2Fabsolute-encoded", "/tmp/absolute-encoded"),
        ("..%5C..%5Cescape-backslash", "..\\..\\escape-backslash"),
        ("nul%00byte", "nul\x00byte"),
    ],
)
def test_path_like_keys_stay_keys_inside_the_store(gw, bucket, raw_key, key):
    before = _outside_files(gw)
    target = f"/{bucket}/{raw_key}"
    # Nothing there yet: a GET must not reach a file of the host (/etc/passwd, least of all).
    reply = send_target(gw, "GET", target, signed_headers_for(gw, "GET", target))
    assert_refused(reply, 404, "NoSuchKey")
    body = f"stored under {key!r}".encode()
    status, _, reply_body = send_target(gw, "PUT", target, signed_headers_for(gw, "PUT", target, body), body)
    assert status == 200, reply_body
    status, _, got = send_target(gw, "GET", target, signed_headers_for(gw, "GET", target))
    assert (status, got) == (200, body)
    client = gw.client()
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=key[:4]).get("Contents", [])]
    assert key in listed
    assert _outside_files(gw) == before
    stored_names = {p.name for p in gw.data_dir.rglob("*")}
    assert key.rsplit("/", 1)[-1] not in stored_names
    client.delete_object(Bucket=bucket, Key=key)
    assert_absent(gw, bucket, key)


def test_path_like_bucket_names_reach_no_directory(gw, bucket):
    before = _outside_files(gw)
    for raw in ("..%2F..%2Fescape", "%2E%2E", ".."):
        target = f"/{raw}/key"
        reply = send_target(gw, "PUT", target, signed_headers_for(gw, "PUT", target, b"x"), b"x")
        assert_refused(reply, 404, "NoSuchBucket")
        create = f"/{raw}"
        reply = send_target(gw, "PUT", create, signed_headers_for(gw, "PUT", create))
        assert_refused(reply, 400, "InvalidBucketName")
    assert _outside_files(gw) == before
