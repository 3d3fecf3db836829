"""Fuzzing every parser of untrusted request input: only S3Error escapes, nothing hangs, memory stays bounded.

Each parser family has a *target*: a function of raw bytes that runs the parser and
asserts its property, so the same check serves the hypothesis tests here, the replay of
tests/fuzz_corpus/<target>/ (test_fuzz_corpus.py) and the coverage-guided atheris
harness (fuzz/atheris_fuzz.py). On top of arbitrary bytes, the tests below mutate
*valid* signed requests and aws-chunked streams, which is how inputs reach the checks
that matter: a signature that must not verify, a chunk that must not be released.

Request text reaches the gateway the way aiohttp hands it over: bytes decoded as UTF-8
with surrogateescape, so header values and paths can hold lone surrogates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock
from urllib.parse import quote, unquote_to_bytes
from xml.etree import ElementTree

import pytest
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict

from s4.server.addressing import check_bucket_name, split_target
from s4.server.auth.sigv4 import (
    PRESIGN_PARAMS,
    AuthContext,
    Credential,
    Credentials,
    PayloadMode,
    authenticate,
)
from s4.server.body.checksums import checksum_of, requested_checksums, trailer_algorithm
from s4.server.body.chunked import MAX_CHUNK, MAX_LINE, MAX_TRAILER, AwsChunkedDecoder
from s4.server.body.verified import VerifiedBody
from s4.server.errors import STATUS_BY_CODE, S3Error
from s4.server.http import MAX_METADATA_BYTES, attributes_from_headers, check_conditions, parse_range
from s4.server.xml import MAX_REQUEST_XML, parse_complete_multipart, parse_delete_objects
from s4.store import ObjectInfo, StoreError
from tests.unit.fuzz_support import Edit, MiB, edits, fuzz_settings, measure, mutate, mutations
from tests.unit.test_auth import AKID, CREDENTIALS, ENDPOINT, NOW, SECRET, Wire, presign, sign
from tests.unit.test_chunked import encode_signed, encode_unsigned, streaming_auth

WRONG_KEY = Credentials([Credential(AKID, "not-" + SECRET), Credential("SECONDKEY", "not-another-secret")])
S3_CODES = frozenset(STATUS_BY_CODE) | {"InvalidPartNumber"}


def check_s3_error(error: S3Error) -> None:
    """An S3Error a client can act on: a known code and status, and a message."""
    assert error.code in S3_CODES, error.code
    assert 300 <= error.status < 600
    assert isinstance(error.message, str) and error.message


def as_text(data: bytes) -> str:
    """Bytes as aiohttp turns them into str: UTF-8, with undecodable bytes as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def header_lines(text: str) -> CIMultiDict[str]:
    """``Name: value`` lines into a multidict that keeps repeats, as aiohttp's does."""
    headers: CIMultiDict[str] = CIMultiDict()
    for line in re.split(r"\r?\n", text):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.add(name.strip(), value.strip())
    return headers


def request_from_bytes(data: bytes) -> Wire:
    """A raw request head (``METHOD /path?query`` then header lines) as the gateway sees it."""
    first, _, rest = as_text(data).partition("\n")
    method, _, target = first.strip().partition(" ")
    target = target.rsplit(" HTTP/", 1)[0]
    path, _, query = target.partition("?")
    return Wire(method, path, query, header_lines(rest))


def request_to_bytes(wire: Wire) -> bytes:
    target = wire.path + ("?" + wire.query if wire.query else "")
    lines = [f"{wire.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in wire.headers.items())]
    return as_bytes("\r\n".join(lines) + "\r\n")


# --- authentication ------------------------------------------------------------------------------------


def target_auth(data: bytes) -> bool:
    """Any request head: S3Error, or accepted only under a signature the real secret made.

    An accepted request is re-checked with a wrong secret and must then be refused: that
    proves the acceptance came from the signature and not from some input skipping it.
    """
    wire = request_from_bytes(data)
    try:
        context = authenticate(wire.method, wire.path, wire.query, wire.headers, CREDENTIALS, now=NOW)
    except S3Error as error:
        check_s3_error(error)
        return False
    assert isinstance(context, AuthContext)
    with pytest.raises(S3Error) as refused:
        authenticate(wire.method, wire.path, wire.query, wire.headers, WRONG_KEY, now=NOW)
    assert refused.value.code == "SignatureDoesNotMatch"
    return True


DATE = NOW.strftime("%Y%m%d")
AMZ_DATE = NOW.strftime("%Y%m%dT%H%M%SZ")
NASTY_TEXT = [
    "",
    " ",
    "²",
    "\u0661\u0662",
    "9" * 5000,
    "-1",
    "0",
    "604801",
    "\udcff",
    "\udc80abc",
    "\x00",
    "\x85",
    "a\xa0b",
    "%",
    "%zz",
    "%FF",
    "=",
    ",",
    ";",
    "/",
    "aws4_request",
    "AWS4-HMAC-SHA256",
    AMZ_DATE,
    "99991231T235959Z",
    "00000101T000000Z",
    "20261123T211000",
    "\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0663T\u0662\u0661\u0661\u0660\u0660\u0660Z",
    "Fri, 31 Dec 9999 23:30:00 -0100",
    "Mon, 01 Jan 0100 00:30:00 +0100",
    "Mon, 23 Nov 2026 21:10:00 +9999",
    "Mon, 23 Nov 2026 21:10:00 GMT",
    "0" * 64,
    "f" * 64,
    "F" * 64,
    *[mode.value for mode in PayloadMode],
]
texts = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=30),
    st.binary(max_size=30).map(as_text),
)
credential_parts = st.lists(
    st.one_of(
        st.sampled_from(
            [
                AKID,
                "NOBODY",
                DATE,
                "us-east-1",
                "s3",
                "aws4_request",
                "\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0663",
            ]
        ),
        texts,
    ),
    min_size=0,
    max_size=6,
)
credentials = st.one_of(
    st.just(f"{AKID}/{DATE}/us-east-1/s3/aws4_request"),
    st.builds(lambda region: f"{AKID}/{DATE}/{region}/s3/aws4_request", texts),
    credential_parts.map("/".join),
)
signed_header_lists = st.one_of(
    st.just("host;x-amz-content-sha256;x-amz-date"),
    st.lists(st.one_of(st.sampled_from(["host", "x-amz-date", "x-amz-content-sha256", "HOST"]), texts)).map(";".join),
)
authorization_fields = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["Credential", "SignedHeaders", "Signature", " Credential", "credential"]), texts),
        st.one_of(credentials, signed_header_lists, texts),
    ),
    max_size=5,
)
authorizations = st.one_of(
    texts,
    st.builds(
        lambda scheme, fields, sep: scheme + " " + sep.join(f"{k}={v}" for k, v in fields),
        st.sampled_from(["AWS4-HMAC-SHA256", "AWS", "aws4-hmac-sha256", "Bearer", ""]),
        authorization_fields,
        st.sampled_from([",", ", ", " ,", ",,"]),
    ),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "Host",
            "Authorization",
            "x-amz-date",
            "Date",
            "x-amz-content-sha256",
            "x-amz-meta-a",
            "X-Amz-Security-Token",
            "content-md5",
            "content-type",
        ]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)


def _percent(raw: bytes) -> str:
    return quote(raw, safe="")


query_values = st.one_of(
    texts.map(lambda t: _percent(as_bytes(t))),
    st.binary(max_size=12).map(_percent),
    texts,
    credentials.map(lambda c: _percent(c.encode("utf-8", "surrogateescape"))),
)
V4_KEYS = [*PRESIGN_PARAMS, "x-amz-content-sha256"]
V2_KEYS = ["AWSAccessKeyId", "Signature", "Expires", "response-content-type", "uploadId", "versionId"]
query_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(V4_KEYS + V2_KEYS), texts.map(lambda t: _percent(as_bytes(t)))), query_values),
    max_size=9,
)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


@st.composite
def arbitrary_requests(draw) -> Wire:
    """Requests built from the parts the parsers look at, each part either plausible or hostile."""
    headers: CIMultiDict[str] = CIMultiDict()
    if draw(st.booleans()):
        headers.add("Authorization", draw(authorizations))
    for name, value in draw(st.lists(st.tuples(header_names, st.one_of(texts, authorizations)), max_size=6)):
        headers.add(name, value)
    query = _query(draw(query_pairs)) if draw(st.booleans()) else draw(texts)
    path = draw(st.one_of(st.just("/bucket/key"), texts, st.binary(max_size=20).map(as_text)))
    method = draw(st.sampled_from(["GET", "PUT", "HEAD", "DELETE", "POST", "get", ""]))
    return Wire(method, path, query, headers)


@given(arbitrary_requests())
@fuzz_settings(300)
def test_authentication_of_arbitrary_requests(wire):
    target_auth(request_to_bytes(wire))
    # and straight, without the trip through bytes (repeated headers kept)
    try:
        authenticate(wire.method, wire.path, wire.query, wire.headers, CREDENTIALS, now=NOW)
    except S3Error as error:
        check_s3_error(error)
    else:
        raise AssertionError("an unsigned, made-up request was accepted")


@given(st.binary(max_size=400))
@fuzz_settings(150)
def test_authentication_of_arbitrary_bytes(data):
    target_auth(b"GET /b/k?" + data)
    target_auth(data)


# Valid requests of every authentication form, each then mutated in one of its parts.


def _v2_presigned(url: str) -> Wire:
    request = AWSRequest(method="GET", url=url)
    with mock.patch("botocore.auth.time.time", return_value=NOW.timestamp()):
        HmacV1QueryAuth(BotoCredentials(AKID, SECRET), expires=300).add_auth(request)
    path, _, query = request.url.removeprefix(ENDPOINT).partition("?")
    return Wire("GET", path, query, {})


SIGNED_WIRES = {
    "header-sha256": sign(
        "PUT",
        f"{ENDPOINT}/bucket/dir/a%20b?partNumber=1&uploadId=xyz",
        headers={
            "X-Amz-Content-SHA256": hashlib.sha256(b"body").hexdigest(),
            "Content-Type": "text/plain",
            "X-Amz-Meta-Colour": "blue  and   green",
        },
        body=b"body",
    ),
    "header-unsigned": sign(
        "GET", f"{ENDPOINT}/bucket?list-type=2&prefix=a%2Fb&delimiter=%2F", headers={"Range": "bytes=0-9"}
    ),
    "presigned-v4": presign(f"{ENDPOINT}/bucket/key%2Bplus?response-content-type=text%2Fplain", expires=600),
    "presigned-v2": _v2_presigned(f"{ENDPOINT}/bucket/dir/key?response-content-type=text%2Fplain&versionId=v1"),
}


def _signed_names(wire: Wire) -> list[str]:
    """The SignedHeaders the signer listed, read independently of auth.py."""
    authorization = next((v for k, v in wire.headers.items() if k.lower() == "authorization"), "")
    match = re.search(r"SignedHeaders=([^,\s]+)", authorization) or re.search(
        r"X-Amz-SignedHeaders=([^&]+)", wire.query
    )
    return unquote_to_bytes(match.group(1)).decode().split(";") if match else []


def _decoded_pairs(query: str, *, skip: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pair = (unquote_to_bytes(as_bytes(key)), unquote_to_bytes(as_bytes(value)))
            if pair[0].decode("utf-8", "surrogateescape") not in skip:
                pairs.append(pair)
    return sorted(pairs)


def fingerprint_v4(wire: Wire, signed: list[str]) -> tuple:
    """What SigV4 signs, computed from the SigV4 specification rather than from auth.py.

    Header values are trimmed the way botocore, the reference signer, trims them.
    """
    headers: dict[str, list[str]] = {}
    for name, value in wire.headers.items():
        headers.setdefault(name.lower(), []).append(" ".join(value.split()))
    return (
        wire.method,
        unquote_to_bytes(as_bytes(wire.path or "/")),
        tuple(_decoded_pairs(wire.query, skip=("X-Amz-Signature",))),
        tuple((name, tuple(headers.get(name, ()))) for name in signed),
        _signature_v4(wire),
    )


def _signature_v4(wire: Wire) -> str:
    authorization = next((v for k, v in wire.headers.items() if k.lower() == "authorization"), "")
    match = re.search(r"Signature=([0-9a-f]+)", authorization)
    if match:
        return match.group(1)
    return dict(_decoded_pairs(wire.query)).get(b"X-Amz-Signature", b"").decode("utf-8", "surrogateescape")


V2_SUBRESOURCES = ("response-content-type", "versionId", "uploadId", "partNumber")


def fingerprint_v2(wire: Wire) -> tuple:
    """What a SigV2 presigned URL signs: the raw path, sub-resources, Expires, x-amz-* headers."""
    pairs = _decoded_pairs(wire.query)
    params = dict(pairs)
    return (
        wire.method,
        wire.path,
        tuple(p for p in pairs if p[0].decode("utf-8", "surrogateescape") in V2_SUBRESOURCES),
        params.get(b"Expires"),
        params.get(b"Signature"),
        params.get(b"AWSAccessKeyId"),
        tuple(sorted((k.lower(), v.strip()) for k, v in wire.headers.items() if k.lower().startswith("x-amz-"))),
    )


def fingerprint(name: str, wire: Wire, signed: list[str]) -> tuple:
    return fingerprint_v2(wire) if name == "presigned-v2" else fingerprint_v4(wire, signed)


def _mutate_text(text: str, changes: list[Edit]) -> str:
    return as_text(mutate(as_bytes(text), changes))


@st.composite
def mutated_wires(draw) -> tuple[str, Wire, Wire]:
    """A valid request and a copy with one part edited: method, path, query, or a header name or value."""
    name = draw(st.sampled_from(sorted(SIGNED_WIRES)))
    wire = SIGNED_WIRES[name]
    headers = list(wire.headers.items())
    slots = ["method", "path", "query", "add-header"] + [f"value:{i}" for i in range(len(headers))]
    slots += [f"name:{i}" for i in range(len(headers))] + [f"drop:{i}" for i in range(len(headers))]
    slot = draw(st.sampled_from(slots))
    changes = draw(edits(2))
    method, path, query = wire.method, wire.path, wire.query
    if slot == "method":
        method = _mutate_text(method, changes)
    elif slot == "path":
        path = _mutate_text(path, changes)
    elif slot == "query":
        query = _mutate_text(query, changes)
    elif slot == "add-header":
        headers.append((draw(header_names), draw(texts)))
    else:
        kind, index = slot.split(":")
        key, value = headers[int(index)]
        if kind == "value":
            headers[int(index)] = (key, _mutate_text(value, changes).replace("\r", "").replace("\n", ""))
        elif kind == "name":
            headers[int(index)] = (_mutate_text(key, changes).replace("\r", "").replace("\n", ""), value)
        else:
            del headers[int(index)]
    mutated = Wire(method, path, query, CIMultiDict(headers))
    return name, wire, mutated


@pytest.mark.parametrize("name", sorted(SIGNED_WIRES))
def test_signed_wires_are_accepted_unchanged(name):
    wire = SIGNED_WIRES[name]
    context = authenticate(wire.method, wire.path, wire.query, wire.headers, CREDENTIALS, now=NOW)
    assert context.access_key_id == AKID
    target_auth(request_to_bytes(wire))


@given(mutated_wires())
@fuzz_settings(400)
def test_a_mutated_signed_request_is_refused_unless_what_was_signed_is_unchanged(case):
    name, original, mutated = case
    signed = _signed_names(original)
    try:
        authenticate(mutated.method, mutated.path, mutated.query, mutated.headers, CREDENTIALS, now=NOW)
    except S3Error as error:
        check_s3_error(error)
        return
    assert fingerprint(name, mutated, signed) == fingerprint(name, original, signed), "a changed request verified"


# --- addressing ------------------------------------------------------------------------------------------

_BUCKET_ORACLE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def target_addressing(data: bytes) -> bool:
    """Host line, then path, then domain: split_target never raises; only valid names pass the check."""
    host, _, rest = as_text(data).partition("\n")
    path, _, domain = rest.partition("\n")
    for configured in (domain or None, "s4.test", None):
        bucket, key = split_target(host or None, path, configured)
        assert bucket is not None or key is None
        if bucket is None:
            continue
        try:
            check_bucket_name(bucket)
        except S3Error as error:
            assert error.code == "InvalidBucketName"
        else:
            assert _BUCKET_ORACLE.fullmatch(bucket) and ".." not in bucket, bucket
    return True


@given(
    st.one_of(st.sampled_from(["bucket.s4.test", "s4.test:9000", "[::1]:9000", "BUCKET.S4.TEST", ".s4.test"]), texts),
    st.one_of(st.sampled_from(["/", "//", "/b/k", "/b%2Fc/k", "/%FF/%", "b"]), texts),
    st.one_of(st.sampled_from(["", "s4.test", "."]), texts),
)
@fuzz_settings(200)
def test_addressing(host, path, domain):
    target_addressing(as_bytes(f"{host}\n{path}\n{domain}".replace("\r", "")))


# --- Range -----------------------------------------------------------------------------------------------

RANGE_SIZES = (0, 1, 7, 1000, 5 * 1024**4)


def range_oracle(value: str, size: int) -> str | tuple[int, int]:
    """RFC 9110 single byte range as S3 applies it: 'ignored', 'unsatisfiable' or inclusive (first, last)."""
    match = re.fullmatch(r"bytes=([0-9]*)-([0-9]*)", value.strip(), flags=re.ASCII)
    if not match or not any(match.groups()):
        return "ignored"
    first, last = match.groups()
    # Decimal: exact at any length (int() refuses over 4300 digits).
    if not first:
        n = Decimal(last)
        return "unsatisfiable" if n == 0 or size == 0 else (int(max(0, size - n)), size - 1)
    start = Decimal(first)
    if last and Decimal(last) < start:
        return "ignored"
    if start >= size:
        return "unsatisfiable"
    return (int(start), size - 1 if not last else int(min(Decimal(last), size - 1)))


def target_range(data: bytes) -> bool:
    value = as_text(data)
    byte_range = parse_range(value)
    for size in RANGE_SIZES:
        if byte_range is None:
            got: str | tuple[int, int] = "ignored"
        else:
            try:
                got = byte_range.resolve(size)
            except StoreError as error:
                assert error.code == "InvalidRange"
                got = "unsatisfiable"
        assert got == range_oracle(value, size), (value[:80], size)
    return byte_range is not None


range_numbers = st.one_of(
    st.just(""),
    st.integers(0, 2**70).map(str),
    st.sampled_from(["0", "00000000000000000000000000000001", "9" * 25, "9" * 5000, "\u0661", "²", "-1", " 1", "0x10"]),
)


@given(
    st.one_of(
        st.builds(
            lambda a, b, sep: f"bytes={a}{sep}{b}", range_numbers, range_numbers, st.sampled_from(["-", "--", ","])
        ),
        st.builds(lambda a, b, c: f"bytes={a}-{b},{c}-", range_numbers, range_numbers, range_numbers),
        texts,
    )
)
@example("bytes=" + "9" * 5000 + "-")
@example("bytes=0-" + "9" * 5000)
@example("bytes=-" + "9" * 5000)
@example("bytes=\u0661-\u0662")
@fuzz_settings(300)
def test_range_header(value):
    target_range(as_bytes(value))


# --- conditional and metadata headers --------------------------------------------------------------------

INFO = ObjectInfo(
    bucket="bucket",
    key="key",
    size=10,
    etag="9a0364b9e99bb480dd25e1f0284c8555",
    last_modified=datetime(2026, 11, 23, 21, 10, 0, 500000, tzinfo=UTC),
)
CONDITION_HEADERS = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]


def target_headers(data: bytes) -> bool:
    """Header lines through the conditional checks (GET and copy-source forms) and the metadata reader."""
    headers = header_lines(as_text(data))
    for prefix in ("", "x-amz-copy-source-"):
        try:
            check_conditions(INFO, headers, prefix=prefix)
        except S3Error as error:
            assert error.code in (("PreconditionFailed", "NotModified") if not prefix else ("PreconditionFailed",))
    try:
        attributes = attributes_from_headers(headers)
    except S3Error as error:
        assert error.code == "MetadataTooLarge"
        return False
    size = sum(len(k) + len(as_bytes(v)) for k, v in attributes.metadata.items())
    assert size <= MAX_METADATA_BYTES
    # Exactly one x-amz-meta- comes off (x-amz-meta-x-amz-meta-a is the key x-amz-meta-a, as on S3).
    names = {name.lower() for name in headers}
    assert all(k == k.lower() and "x-amz-meta-" + k in names for k in attributes.metadata)
    return True


condition_values = st.one_of(
    texts,
    st.sampled_from(
        [
            '"9a0364b9e99bb480dd25e1f0284c8555"',
            'W/"9a0364b9e99bb480dd25e1f0284c8555", "x"',
            "*",
            "Mon, 23 Nov 2026 21:10:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Mon, 01 Jan 0001 00:00:00 +2359",
            "Mon, 23 Nov 2026 21:10:00 +9999",
            "Mon, 23 Nov 99999 21:10:00 GMT",
            "Mon, 23 Nov 2026 " + "4" * 100 + ":10:00 GMT",
            "Mon, 23 Nov " + "9" * 30 + " 21:10:00 GMT",
        ]
    ),
)


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(CONDITION_HEADERS),
                st.sampled_from(CONDITION_HEADERS).map("x-amz-copy-source-".__add__),
                st.sampled_from(["x-amz-meta-a", "X-Amz-Meta-B", "x-amz-meta-", "Content-Type", "cache-control"]),
            ),
            st.one_of(condition_values, st.text(max_size=300), st.binary(max_size=300).map(as_text)),
        ),
        max_size=8,
    )
)
@example([("x-amz-meta-a", "\udcff")])
@fuzz_settings(300)
def test_conditional_and_metadata_headers(pairs):
    target_headers(as_bytes("\n".join(f"{k}: {v}" for k, v in pairs).replace("\r", "")))


def test_metadata_size_counts_bytes_not_characters():
    assert attributes_from_headers({"x-amz-meta-k": "é" * 1000}).metadata == {"k": "é" * 1000}
    with pytest.raises(S3Error) as info:
        attributes_from_headers({"x-amz-meta-k": "é" * 1100})
    assert info.value.code == "MetadataTooLarge"


# --- request XML ------------------------------------------------------------------------------------------

XML_CODES = ("MalformedXML", "MaxMessageLengthExceeded")


def target_xml(data: bytes) -> bool:
    """Either document parser: MalformedXML (or too long), or a result that meets S3's rules."""
    accepted = False
    try:
        parts = parse_complete_multipart(data)
    except S3Error as error:
        assert error.code in XML_CODES, error.code
    else:
        assert parts and all(isinstance(n, int) and n >= 0 and isinstance(e, str) for n, e in parts)
        accepted = True
    try:
        quiet, keys = parse_delete_objects(data)
    except S3Error as error:
        assert error.code in XML_CODES, error.code
    else:
        assert isinstance(quiet, bool) and 1 <= len(keys) <= 1000 and all(isinstance(k, str) for k in keys)
        accepted = True
    return accepted


xml_names = st.sampled_from(
    ["CompleteMultipartUpload", "Part", "PartNumber", "ETag", "Delete", "Object", "Key", "Quiet", "VersionId", "x:Key"]
)
xml_text = st.one_of(
    st.sampled_from(
        ["1", "10000", "²", "9" * 5000, "true", "TRUE", " 7 ", "&amp;", "&#0;", "&#x10FFFF;", "]]>", "&x;"]
    ),
    st.text(max_size=12).map(lambda t: t.replace("<", "&lt;").replace("&", "&amp;")),
)


@st.composite
def xml_trees(draw, depth: int = 0) -> str:
    """Well-formed-ish S3 documents, with the odd broken piece; the parsers must sort out which is which."""
    name = draw(xml_names)
    if depth >= 3 or draw(st.booleans()):
        body = draw(xml_text)
    else:
        body = "".join(draw(st.lists(xml_trees(depth=depth + 1), max_size=4)))
    attrs = draw(st.sampled_from(["", ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', ' a="1"', " a='<'"]))
    return f"<{name}{attrs}>{body}</{name}>"


PROLOGS = [
    "",
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<?xml version="1.0" encoding="x-nonexistent"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.1"?>',
    "<!DOCTYPE Delete>",
    "\ufeff",
]
VALID_COMPLETE = (
    b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b'<Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part>'
    b'<Part><PartNumber>2</PartNumber><ETag>"b"</ETag></Part></CompleteMultipartUpload>'
)
VALID_DELETE = b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b/c</Key></Object></Delete>"


@given(
    st.one_of(
        st.builds(lambda p, t: as_bytes(p + t), st.sampled_from(PROLOGS), xml_trees()),
        mutations(VALID_COMPLETE),
        mutations(VALID_DELETE),
        st.binary(max_size=200),
    )
)
@example(VALID_COMPLETE)
@example(VALID_DELETE)
@fuzz_settings(300)
def test_request_xml(data):
    target_xml(data)


# XML attacks, each refused as malformed, quickly, in little memory, and without touching the disk.

SECRET_FILE_MARKER = "s4-fuzz-secret-marker"


def _lol(levels: int = 10, width: int = 10) -> bytes:
    entities = ['<!ENTITY lol0 "lol">']
    for n in range(1, levels):
        entities.append(f'<!ENTITY lol{n} "' + f"&lol{n - 1};" * width + '">')
    return f'<?xml version="1.0"?><!DOCTYPE Delete [{"".join(entities)}]>'.encode()


def xml_attacks(secret_file: str) -> dict[str, bytes]:
    delete = "<Delete><Object><Key>{}</Key></Object></Delete>"
    return {
        "billion-laughs": _lol() + delete.format("&lol9;").encode(),
        "quadratic-blowup": (
            f'<!DOCTYPE Delete [<!ENTITY a "{"x" * 100_000}">]>' + delete.format("&a;" * 10_000)
        ).encode(),
        "external-entity": (
            f'<!DOCTYPE Delete [<!ENTITY xxe SYSTEM "file://{secret_file}">]>' + delete.format("&xxe;")
        ).encode(),
        "external-parameter-entity": (
            f'<!DOCTYPE Delete [<!ENTITY % p SYSTEM "file://{secret_file}"> %p;]>' + delete.format("k")
        ).encode(),
        "external-dtd": (f'<!DOCTYPE Delete SYSTEM "file://{secret_file}">' + delete.format("k")).encode(),
        "internal-dtd": ("<!DOCTYPE Delete [<!ELEMENT Delete ANY>]>" + delete.format("k")).encode(),
        "deep-nesting": b"<Delete>" + b"<Object>" * 250_000,
        "deep-nesting-closed": b"<a>" * 20 + b"</a>" * 20,
        "many-elements": b"<Delete>" + b"<Object><Key>k</Key></Object>" * 70_000 + b"</Delete>",
        "many-empty-elements": b"<Delete>" + b"<a/>" * ((MAX_REQUEST_XML - 20) // 4) + b"</Delete>",
        "unknown-encoding": b'<?xml version="1.0" encoding="x-no-such-codec"?><Delete/>',
    }


@pytest.mark.parametrize("attack", sorted(xml_attacks("/x")))
def test_xml_attacks_are_refused_safely(attack, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_FILE_MARKER)
    body = xml_attacks(str(secret))[attack]
    assert len(body) <= MAX_REQUEST_XML
    for parse in (parse_delete_objects, parse_complete_multipart):
        with mock.patch("builtins.open", side_effect=AssertionError("the XML parser opened a file")):
            measured = measure(lambda parse=parse: parse(body))
        assert isinstance(measured.error, S3Error), measured.error
        assert measured.error.code == "MalformedXML"
        assert SECRET_FILE_MARKER not in measured.error.message
        assert measured.peak_bytes < 16 * MiB, measured.peak_bytes
        # Timed apart: tracemalloc slows allocation-heavy parsing several times over.
        assert measure(lambda parse=parse: parse(body), trace_memory=False).seconds < 2.0


def test_oversized_xml_is_refused_before_parsing():
    body = VALID_DELETE[:-9] + b" " * MAX_REQUEST_XML + b"</Delete>"
    measured = measure(lambda: parse_delete_objects(body))
    assert isinstance(measured.error, S3Error) and measured.error.code == "MaxMessageLengthExceeded"
    assert measured.peak_bytes < 64 * 1024


def test_the_largest_real_documents_still_parse():
    """The limits leave room for S3's own maxima: 10,000 parts with a checksum each, 1,000 keys with versions."""
    part = '<Part><PartNumber>{}</PartNumber><ETag>"{}"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>'
    body = ("<CompleteMultipartUpload>" + "".join(part.format(n, "0" * 32) for n in range(1, 10_001))).encode()
    body += b"</CompleteMultipartUpload>"
    assert len(body) <= MAX_REQUEST_XML
    assert len(parse_complete_multipart(body)) == 10_000
    obj = "<Object><Key>{}</Key><VersionId>v{}</VersionId><ETag>e</ETag></Object>"
    body = (
        "<Delete><Quiet>true</Quiet>" + "".join(obj.format("k" * 900, n) for n in range(1000)) + "</Delete>"
    ).encode()
    assert len(body) <= MAX_REQUEST_XML
    assert parse_delete_objects(body) == (True, ["k" * 900] * 1000)


# --- aws-chunked bodies ------------------------------------------------------------------------------------

STREAMING_MODES = (
    PayloadMode.STREAMING_SIGNED,
    PayloadMode.STREAMING_SIGNED_TRAILER,
    PayloadMode.STREAMING_UNSIGNED_TRAILER,
)
CHUNK_PAYLOAD = bytes(range(256)) * 3 + b"tail of the payload"
CHUNK_TRAILERS = [("x-amz-checksum-crc32", checksum_of("crc32", CHUNK_PAYLOAD))]


def decode_chunked(auth: AuthContext, body: bytes, cuts: list[int] = ()) -> tuple[bytes, dict[str, str]]:
    """Feed ``body`` split at ``cuts``; the decoded payload and trailers, or the S3Error it raised."""
    decoder = AwsChunkedDecoder(auth)
    out = []
    start = 0
    for cut in [*sorted(c % (len(body) + 1) for c in cuts), len(body)]:
        out.extend(decoder.feed(body[start:cut]))
        start = max(start, cut)
    return b"".join(out), decoder.finish()


def _outcome(call: Callable[[], tuple[bytes, dict[str, str]]]) -> tuple:
    try:
        return ("ok", *call())
    except S3Error as error:
        check_s3_error(error)
        return ("error", error.code)


def target_chunked(data: bytes) -> bool:
    """First byte picks the mode, the rest is the body: S3Error only, and the same outcome however it is split.

    A body accepted in a signed mode must be refused under another signing key: it passed
    because its chunk signatures verified, not because some framing skipped the check.
    """
    if not data:
        return False
    mode = STREAMING_MODES[data[0] % len(STREAMING_MODES)]
    body = data[1:]
    auth = streaming_auth(mode)
    whole = _outcome(lambda: decode_chunked(auth, body))
    bytewise = _outcome(lambda: decode_chunked(auth, body, list(range(1, len(body)))))
    assert whole == bytewise
    if whole[0] == "ok" and mode.signed_chunks:
        other_key = dataclasses.replace(auth, signing_key=hashlib.sha256(auth.signing_key).digest())
        assert _outcome(lambda: decode_chunked(other_key, body)) == ("error", "SignatureDoesNotMatch")
    return whole[0] == "ok"


def valid_stream(mode: PayloadMode, chunk_size: int) -> bytes:
    auth = streaming_auth(mode)
    if mode is PayloadMode.STREAMING_SIGNED:
        return encode_signed(auth, CHUNK_PAYLOAD, chunk_size)
    if mode is PayloadMode.STREAMING_SIGNED_TRAILER:
        return encode_signed(auth, CHUNK_PAYLOAD, chunk_size, CHUNK_TRAILERS)
    return encode_unsigned(CHUNK_PAYLOAD, chunk_size, CHUNK_TRAILERS)


VALID_STREAMS = {(mode, size): valid_stream(mode, size) for mode in STREAMING_MODES for size in (100, 400, 10_000)}


@given(st.sampled_from(STREAMING_MODES), st.binary(max_size=300))
@fuzz_settings(150)
def test_chunked_arbitrary_bytes(mode, body):
    target_chunked(bytes([STREAMING_MODES.index(mode)]) + body)


def _verified_body(mode: PayloadMode, body: bytes, cuts: list[int]) -> tuple[bytes, dict[str, str]]:
    """The whole request-body path (framing, signatures, length, trailing checksum) over ``body``."""
    headers = {"x-amz-decoded-content-length": str(len(CHUNK_PAYLOAD))}
    if mode.has_trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]

    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    verified = VerifiedBody(source(), headers, streaming_auth(mode))

    async def read() -> bytes:
        return b"".join([piece async for piece in verified])

    return asyncio.run(read()), verified.trailers


@given(
    st.sampled_from(sorted(VALID_STREAMS, key=lambda k: (k[0].value, k[1]))),
    edits(3),
    st.lists(st.integers(0, 2**20), max_size=4),
)
@fuzz_settings(400)
def test_a_mutated_stream_is_never_accepted_as_the_payload(key, changes, cuts):
    """Flipped bytes, truncations, inserted lines, duplicated chunks: S3Error, or exactly the signed payload.

    Signed modes are held to this by the decoder alone; unsigned-trailer streams by the
    whole body path, whose trailing CRC32 is what protects them.
    """
    mode, _ = key
    body = mutate(VALID_STREAMS[key], changes)
    outcome = _outcome(lambda: _verified_body(mode, body, cuts))
    if outcome[0] == "ok":
        assert outcome[1] == CHUNK_PAYLOAD, "a changed stream was accepted as another payload"
        assert outcome[2] == (dict(CHUNK_TRAILERS) if mode.has_trailer else {})
    if mode.signed_chunks:
        decoded = _outcome(lambda: decode_chunked(streaming_auth(mode), body, cuts))
        assert decoded[0] == "error" or decoded[1] == CHUNK_PAYLOAD
        assert decoded == _outcome(lambda: decode_chunked(streaming_auth(mode), body)), "depends on how it was split"


@pytest.mark.parametrize("mode", STREAMING_MODES)
def test_every_truncation_of_a_valid_stream_is_refused(mode):
    """Cut anywhere before the payload's last byte is in: IncompleteBody or a framing error, never a short payload."""
    body = VALID_STREAMS[(mode, 400)]
    accepted = []
    for cut in range(len(body)):
        outcome = _outcome(lambda cut=cut: _verified_body(mode, body[:cut], []))
        if outcome[0] == "ok":
            assert outcome[1] == CHUNK_PAYLOAD
            accepted.append(cut)
    # Only the optional final CRLF (and, with trailers, nothing else) may be left off.
    assert all(cut >= len(body) - 2 for cut in accepted), accepted


def test_oversized_chunk_size_lines_are_refused_before_buffering():
    for mode in STREAMING_MODES:
        auth = streaming_auth(mode)
        decoder = AwsChunkedDecoder(auth)
        with pytest.raises(S3Error) as info:
            for _ in range(MAX_LINE // 64 + 2):
                decoder.feed(b"1" * 64)
        assert "longer than" in info.value.message
        signed = AwsChunkedDecoder(auth)
        if mode.signed_chunks:
            with pytest.raises(S3Error) as info:
                signed.feed(f"{MAX_CHUNK + 1:x};chunk-signature={'0' * 64}\r\n".encode())
            assert "at most" in info.value.message


def test_a_signed_chunk_claiming_the_maximum_size_buffers_only_what_arrived():
    """The decoder holds a signed chunk until it verifies: what arrived, never what the size line claims."""
    auth = streaming_auth(PayloadMode.STREAMING_SIGNED)
    head = f"{MAX_CHUNK:x};chunk-signature={'0' * 64}\r\n".encode()
    piece = b"x" * 65536
    decoder = AwsChunkedDecoder(auth)

    def feed_one_mib() -> None:
        decoder.feed(head)
        for _ in range(16):
            assert decoder.feed(piece) == []

    measured = measure(feed_one_mib)
    assert measured.error is None
    assert measured.peak_bytes < 2 * MiB, measured.peak_bytes


def test_unsigned_chunk_claiming_two_to_the_64_passes_through_without_buffering():
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)
    decoder = AwsChunkedDecoder(auth)
    piece = b"y" * 65536

    def feed() -> int:
        total = len(b"".join(decoder.feed(b"ffffffffffffffff\r\n")))
        for _ in range(32):
            total += len(b"".join(decoder.feed(piece)))
        return total

    measured = measure(feed)
    assert measured.result == 32 * 65536
    assert measured.peak_bytes < 1 * MiB, measured.peak_bytes
    with pytest.raises(S3Error) as info:
        decoder.finish()
    assert info.value.code == "IncompleteBody"


def test_a_trailer_flood_is_refused_quickly():
    """The trailer section is capped in bytes; its ~2,800 shortest distinct trailers must not cost quadratic time.

    With a linear scan for duplicates this took 0.16 s of CPU per 16 KiB request; it now takes about 3 ms.
    """
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)
    flood = b"0\r\n" + b"".join(b"%x:\r\n" % i for i in range(5000))
    assert len(flood) > MAX_TRAILER

    def run() -> None:
        AwsChunkedDecoder(auth).feed(flood)

    timings = [measure(run, trace_memory=False) for _ in range(3)]
    assert all(isinstance(t.error, S3Error) and "trailer section" in t.error.message for t in timings)
    assert min(t.seconds for t in timings) < 0.06, [t.seconds for t in timings]


# --- checksum and length headers, and the body path that uses them --------------------------------------------


def target_payload(data: bytes) -> bool:
    """Header lines, a blank line, a body: header parsers and VerifiedBody raise nothing but S3Error."""
    text, _, body = data.partition(b"\n\n")
    headers = header_lines(as_text(text))
    for parse in (requested_checksums, trailer_algorithm):
        try:
            parse(headers)
        except S3Error as error:
            # A value that is no checksum of its algorithm is BadDigest (see requested_checksums).
            assert error.code in ("InvalidRequest", "BadDigest"), error.code
    accepted = False
    for mode in (PayloadMode.UNSIGNED, PayloadMode.STREAMING_UNSIGNED_TRAILER):
        auth = AuthContext(AKID, mode, None, b"k" * 32, "0" * 64, AMZ_DATE, f"{DATE}/us-east-1/s3/aws4_request", False)

        async def read(headers=headers, auth=auth) -> bytes:
            async def source() -> AsyncIterator[bytes]:
                yield body

            return b"".join([piece async for piece in VerifiedBody(source(), headers, auth, max_size=1000)])

        try:
            got = asyncio.run(read())
        except S3Error as error:
            check_s3_error(error)
        else:
            assert len(got) <= 1000
            if mode is PayloadMode.UNSIGNED:
                assert got == body
                accepted = True
    return accepted


payload_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "content-length",
                "x-amz-decoded-content-length",
                "content-md5",
                "x-amz-checksum-crc32",
                "x-amz-checksum-sha256",
                "x-amz-checksum-bogus",
                "x-amz-checksum-algorithm",
                "x-amz-trailer",
            ]
        ),
        st.one_of(
            texts,
            st.sampled_from(
                ["4", "1001", "9" * 5000, "²", "AAAAAA==", "x-amz-checksum-crc32", "1B2M2Y8AsgTpgAmY7PhCfg=="]
            ),
        ),
    ),
    max_size=5,
)


@given(payload_headers, st.binary(max_size=40))
@example([("content-length", "²")], b"")
@example([("x-amz-decoded-content-length", "9" * 5000)], b"")
@fuzz_settings(200)
def test_payload_headers(pairs, body):
    target_payload(as_bytes("\n".join(f"{k}: {v}" for k, v in pairs).replace("\r", "")) + b"\n\n" + body)


# --- errors must reach the client ---------------------------------------------------------------------------


def test_errors_raised_on_undecodable_request_bytes_still_render():
    """Request bytes that are not UTF-8 end up in error details (CanonicalRequest, ArgumentValue)."""
    wire = SIGNED_WIRES["header-unsigned"]
    hostile = CIMultiDict(wire.headers)
    hostile["Range"] = "bytes=0-9\udcff"
    with pytest.raises(S3Error) as info:
        authenticate(wire.method, wire.path, wire.query, hostile, CREDENTIALS, now=NOW)
    assert info.value.code == "SignatureDoesNotMatch"
    document = info.value.to_xml("RID", "/bucket")
    assert b"<Code>SignatureDoesNotMatch</Code>" in document
    document.decode("utf-8")  # a client must be able to read it
    ElementTree.fromstring(document)


# --- time bounds ------------------------------------------------------------------------------------------------


def test_worst_case_inputs_are_fast():
    """The largest inputs each parser accepts, in their most awkward shapes, parse in well under a second."""
    cases: list[Callable[[], object]] = [
        lambda: parse_range("bytes=" + "1" * 100_000 + "-"),
        lambda: target_auth(b"GET /" + b"%41" * 100_000 + b" HTTP/1.1\r\nAuthorization: " + b"a=b," * 50_000),
        lambda: authenticate("GET", "/b/k", "&".join(["a=b"] * 50_000), {"host": "h"}, CREDENTIALS, now=NOW),
        lambda: target_xml(b"<Delete>" + b"<Object><Key>k</Key></Object>" * 60_000 + b"</Delete>"),
        lambda: target_xml(b"<a " + b" ".join(b"a%d='1'" % i for i in range(100_000)) + b"/>"),
        lambda: AwsChunkedDecoder(streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)).feed(b"1\r\nx\r\n" * 100_000),
        lambda: AwsChunkedDecoder(streaming_auth(PayloadMode.STREAMING_SIGNED)).feed(b"1" * 1_000_000),
    ]
    for case in cases:
        measured = measure(case, trace_memory=False)
        assert measured.error is None or isinstance(measured.error, S3Error), measured.error
        assert measured.seconds < 3.0, (case, measured.seconds)


def test_presigned_expiry_far_in_the_future_is_an_error_not_an_overflow():
    later = NOW + timedelta(days=365 * 7000)
    wire = SIGNED_WIRES["presigned-v4"]
    with pytest.raises(S3Error):
        authenticate(wire.method, wire.path, wire.query, wire.headers, CREDENTIALS, now=later)
