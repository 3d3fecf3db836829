"""The S3 front end answers as S3 does at the HTTP level (issue 13: items 2 and 9, and the smaller promises).

Against a real ``s4 serve``: bodies with a Content-Encoding are stored byte for byte, any key S3
accepts round-trips, every refusal (the HTTP parser's included) is S3 XML with a request id, the
Server header names no software, the access log names every operation and the bytes a cut
response really sent, DeleteObjects needs a digest, and a trickling body cannot hold a slot.
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import socket
import time
import zlib
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import start_gateway
from tests.e2e.raw import EMPTY_SHA256, STREAMING, send, send_target, sign, signed_chunked_body

REQUEST_ID = re.compile(rb"<RequestId>[0-9A-F]{16}</RequestId>")


def error_code(body: bytes) -> str:
    found = re.search(rb"<Code>([^<]*)</Code>", body)
    return found.group(1).decode() if found else ""


def assert_s3_error(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> None:
    assert status == expected, body
    assert error_code(body) == code, body
    assert REQUEST_ID.search(body), body
    assert headers.get("x-amz-request-id"), headers
    assert headers.get("server") == "S4", headers


def raw_exchange(gateway, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Write ``data`` as it is on a fresh connection and read one response."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # the gateway may answer and close before it read everything
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def access_log(gateway) -> list[dict]:
    path = gateway.data_dir.parent / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_log(gateway, predicate, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for entry in access_log(gateway):
            if predicate(entry):
                return entry
        assert time.monotonic() < deadline, "no such access log line"
        time.sleep(0.2)


def signed_put(gateway, bucket: str, key: str, body: bytes, headers: dict[str, str] | None = None):
    url = f"{gateway.endpoint}/{bucket}/{quote(key, safe='/')}"
    return sign("PUT", url, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(), **(headers or {})}, body)


def raw_get(gateway, bucket: str, key: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A signed GET sent by hand: no client library in the way to decode a Content-Encoding."""
    request = sign(
        method, f"{gateway.endpoint}/{bucket}/{quote(key, safe='/')}", {"X-Amz-Content-SHA256": EMPTY_SHA256}
    )
    return send(gateway, request)


# --- item 2: Content-Encoding is a stored header, never decoded ------------------------------------

ORIGINAL = b"a line of text that compresses well\n" * 2000
ENCODED = {
    "gzip": gzip.compress(ORIGINAL),
    "deflate": zlib.compress(ORIGINAL),
    "br": b"not really brotli, and that is the point: it is never decoded",
    "zstd": b"\x28\xb5\x2f\xfd neither is this zstd",
    "x-custom": bz2.compress(ORIGINAL),
    "gzip, xz": lzma.compress(gzip.compress(ORIGINAL)),
}


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_put_with_content_encoding_stores_the_bytes_as_sent(gateway, bucket, encoding):
    body = ENCODED[encoding]
    status, headers, reply = send(gateway, signed_put(gateway, bucket, "enc", body, {"Content-Encoding": encoding}))
    assert status == 200, reply
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, headers, got = raw_get(gateway, bucket, "enc")
    assert status == 200
    assert got == body
    assert headers["content-encoding"] == encoding
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, headers, _ = raw_get(gateway, bucket, "enc", method="HEAD")
    assert (status, headers["content-encoding"], int(headers["content-length"])) == (200, encoding, len(body))
    listed = gateway.client().list_objects_v2(Bucket=bucket, Prefix="enc")["Contents"]
    assert [(o["Size"], o["ETag"]) for o in listed] == [(len(body), f'"{hashlib.md5(body).hexdigest()}"')]


def test_chunked_transfer_with_gzip_is_stored_as_sent(gateway, bucket):
    if gateway.ca_bundle is not None:
        pytest.skip("sent on a plain socket; the other cases cover HTTPS")
    body = ENCODED["gzip"]
    request = sign(
        "PUT",
        f"{gateway.endpoint}/{bucket}/chunked-gz",
        {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Encoding": "gzip"},
    )
    framed = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (body[i : i + 1000] for i in range(0, len(body), 1000))
    )
    head = [f"PUT /{bucket}/chunked-gz HTTP/1.1", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    if "host" not in {k.lower() for k in request.headers}:
        head.append(f"Host: 127.0.0.1:{gateway.port}")
    status, headers, reply = raw_exchange(gateway, ("\r\n".join(head) + "\r\n\r\n").encode() + framed + b"0\r\n\r\n")
    assert status == 200, reply
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, headers, got = raw_get(gateway, bucket, "chunked-gz")
    assert (status, got, headers["content-encoding"]) == (200, body, "gzip")


def test_boto3_content_encoding_round_trips(gateway, bucket):
    client = gateway.client()
    body = ENCODED["gzip"]
    put = client.put_object(Bucket=bucket, Key="b3.gz", Body=body, ContentEncoding="gzip")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key="b3.gz")
    assert (got["ContentEncoding"], got["Body"].read()) == ("gzip", body)


def _streaming_put(gateway, bucket: str, key: str, chunks: list[bytes], encoding: str):
    decoded = sum(len(c) for c in chunks)
    probe = signed_chunked_body(sign("PUT", "http://x/", {"X-Amz-Content-SHA256": STREAMING}), chunks)
    headers = {
        "Host": f"127.0.0.1:{gateway.port}",
        "X-Amz-Content-SHA256": STREAMING,
        "Content-Encoding": encoding,
        "X-Amz-Decoded-Content-Length": str(decoded),
        "Content-Length": str(len(probe)),
    }
    request = sign("PUT", f"{gateway.endpoint}/{bucket}/{key}", headers)
    return send(gateway, request, signed_chunked_body(request, chunks))


def test_aws_chunked_is_stripped_and_gzip_kept(gateway, bucket):
    body = ENCODED["gzip"]
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]
    status, headers, reply = _streaming_put(gateway, bucket, "chunked-gzip", chunks, "aws-chunked,gzip")
    assert status == 200, reply
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, headers, got = raw_get(gateway, bucket, "chunked-gzip")
    assert (status, got, headers.get("content-encoding")) == (200, body, "gzip")
    # aws-chunked alone framed the request body only: nothing to keep.
    status, _, reply = _streaming_put(gateway, bucket, "chunked-plain", [b"plain bytes"], "aws-chunked")
    assert status == 200, reply
    status, headers, got = raw_get(gateway, bucket, "chunked-plain")
    assert (status, got, headers.get("content-encoding")) == (200, b"plain bytes", None)


def test_upload_part_with_content_encoding_is_stored_as_sent(gateway, bucket):
    client = gateway.client()
    body = ENCODED["gzip"]
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp.gz", ContentEncoding="gzip")["UploadId"]
    url = f"{gateway.endpoint}/{bucket}/mp.gz?partNumber=1&uploadId={quote(upload)}"
    part = sign(
        "PUT", url, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(), "Content-Encoding": "gzip"}, body
    )
    status, headers, reply = send(gateway, part)
    assert status == 200, reply
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="mp.gz",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": headers["etag"]}]},
    )
    status, headers, got = raw_get(gateway, bucket, "mp.gz")
    assert (status, got, headers["content-encoding"]) == (200, body, "gzip")
    assert gzip.decompress(got) == ORIGINAL


# --- item 9: any key S3 accepts ---------------------------------------------------------------------

KEYS = [
    "line\nbreak",
    "carriage\rreturn",
    "crlf\r\nboth",
    "tab\there",
    "trailing-newline\n",
    "ünïcödé/日本語/ключ",
    "emoji-😀",
    "spaces and +plus+ and %41 percent",
    "query?chars#hash&amp=1",
    "dots/./and/../segments",
    "double//slash",
    "/leading-slash",
    "control-\x01-\x1f-\x7f",
    "k" * 1024,
    "é" * 512,  # 1024 bytes of UTF-8
    "deep/" * 200 + "end",
]


def keys_the_store_holds(gateway, bucket: str) -> list[str]:
    """KEYS, less those an upstream refuses or changes when used directly (SeaweedFS: dot segments,
    keys near 1024 bytes, and its listing folds '//'): the gateway cannot do better than its store."""
    upstream = getattr(gateway, "upstream", None)
    if upstream is None:
        return KEYS
    direct = upstream.client()
    scratch = f"{bucket}-direct"
    direct.create_bucket(Bucket=scratch)
    stored = []
    for key in KEYS:
        try:
            direct.put_object(Bucket=scratch, Key=key, Body=b"probe")
        except ClientError:
            continue
        stored.append(key)
    listed = {o["Key"] for o in direct.list_objects_v2(Bucket=scratch).get("Contents", [])}
    return [key for key in stored if key in listed]


def test_keys_s3_accepts_round_trip(gateway, bucket):
    client = gateway.client()
    keys = keys_the_store_holds(gateway, bucket)
    assert "line\nbreak" in keys and "carriage\rreturn" in keys  # the cases of the issue, on every store
    for i, key in enumerate(keys):
        body = f"body {i}".encode()
        client.put_object(Bucket=bucket, Key=key, Body=body)
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, repr(key)
        assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body), repr(key)
    listed = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 5}):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(listed) == sorted(keys)
    v1 = [o["Key"] for o in client.list_objects(Bucket=bucket, MaxKeys=1000)["Contents"]]
    assert sorted(v1) == sorted(keys)
    # XML 1.0 cannot carry most control characters: S3 tells to delete such keys one by one.
    singly = [k for k in keys if re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", k)]
    batched = [k for k in keys if k not in singly]
    for key in singly:
        client.delete_object(Bucket=bucket, Key=key)
    deleted = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batched]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == sorted(batched)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_listing_without_url_encoding_keeps_a_carriage_return(gateway, bucket):
    """XML turns a literal CR into LF when parsed: S3's listing must carry it as a character reference."""
    gateway.client().put_object(Bucket=bucket, Key="cr\rkey", Body=b"x")
    request = sign("GET", f"{gateway.endpoint}/{bucket}?list-type=2", {"X-Amz-Content-SHA256": EMPTY_SHA256})
    status, _, reply = send(gateway, request)
    assert status == 200, reply
    from xml.etree import ElementTree

    keys = [e.text for e in ElementTree.fromstring(reply).iter("{http://s3.amazonaws.com/doc/2006-03-01/}Key")]
    assert keys == ["cr\rkey"]


# --- item 9: every refusal is S3 XML, the HTTP parser's too ------------------------------------------


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    """The embedded store, for cases that are about the front end only."""
    gateway = start_gateway(tmp_path_factory.mktemp("exact-http") / "gateway")
    gateway.client().create_bucket(Bucket="http")
    yield gateway
    gateway.stop()


def listing(gateway, headers: dict[str, str], query: str = ""):
    return sign("GET", f"{gateway.endpoint}/http{query}", {"X-Amz-Content-SHA256": EMPTY_SHA256, **headers})


def test_many_small_headers_within_the_section_limit_are_accepted(gw):
    # 250 headers (aiohttp's default allows 128), about 5 KiB with their names in the signature: S3 takes it.
    headers = {f"X-S{i}": "v" for i in range(250)}
    status, _, reply = send(gw, listing(gw, headers))
    assert status == 200, reply


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({f"X-Small-{i}": "v" for i in range(3000)}, id="3000-headers"),
        pytest.param({"X-Long": "a" * 20_000}, id="20-KiB-line"),
        pytest.param({"X-Longer": "a" * 200_000}, id="200-KiB-line"),
        pytest.param({f"X-Pad-{i}": "b" * 100 for i in range(90)}, id="9-KiB-in-90"),
    ],
)
def test_an_oversized_header_section_is_request_header_section_too_large(gw, headers):
    status, response_headers, reply = send(gw, listing(gw, headers))
    assert_s3_error(status, response_headers, reply, 400, "RequestHeaderSectionTooLarge")
    assert b"<MaxSizeAllowed>8192</MaxSizeAllowed>" in reply


def test_an_oversized_request_line_is_request_header_section_too_large(gw):
    status, headers, reply = send(gw, listing(gw, {}, query="?prefix=" + "p" * 40_000))
    assert_s3_error(status, headers, reply, 400, "RequestHeaderSectionTooLarge")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", id="tls-on-http"),
        pytest.param(b"GET /http HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n", id="bad-header-name"),
        pytest.param(
            b"PUT /http/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
            id="bad-chunk-size",
        ),
        pytest.param(b"GET /http HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", id="negative-length"),
    ],
)
def test_a_request_that_is_not_http_is_bad_request_in_xml(gw, data):
    status, headers, reply = raw_exchange(gw, data)
    assert_s3_error(status, headers, reply, 400, "BadRequest")


def test_a_request_target_that_is_no_path_is_answered_in_xml(gw):
    status, headers, reply = raw_exchange(gw, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status >= 400
    assert error_code(reply) and REQUEST_ID.search(reply), reply
    assert headers["server"] == "S4"


# --- smaller promises: Server header, access log, DeleteObjects, minimum body rate --------------------


def test_no_answer_names_python_or_aiohttp(gw):
    answers = [
        send(gw, listing(gw, {})),  # an S3 answer
        send(gw, sign("GET", f"{gw.endpoint}/no-such-bucket", {"X-Amz-Content-SHA256": EMPTY_SHA256})),  # an error
        send_target(gw, "GET", "/health"),
        send_target(gw, "GET", "/_s4/metrics"),
        send(gw, listing(gw, {"X-Long": "a" * 20_000})),  # the HTTP parser's refusal
        raw_exchange(gw, b"BREW /http HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for _, headers, _ in answers:
        assert headers.get("server") == "S4", headers
        assert not any("python" in v.lower() or "aiohttp" in v.lower() for v in headers.values()), headers


def test_the_access_log_names_every_operation(gw):
    client = gw.client()
    client.put_object(Bucket="http", Key="logged", Body=b"x")
    # A line is written just after its response went out: wait for it before counting.
    wait_for_log(gw, lambda e: e["op"] == "PutObject" and e["key"] == "logged")
    marker = f"marker-{os.getpid()}-{time.monotonic_ns()}"
    requests = [
        (
            "GetBucketReplication",
            sign("GET", f"{gw.endpoint}/http?replication&{marker}", {"X-Amz-Content-SHA256": EMPTY_SHA256}),
        ),
        # Sub-resources the gateway refuses (501): named as S3 names the operation.
        (
            "PutObjectLegalHold",
            sign("PUT", f"{gw.endpoint}/http/logged?legal-hold", {"X-Amz-Content-SHA256": EMPTY_SHA256}),
        ),
        ("GetBucketWebsite", sign("GET", f"{gw.endpoint}/http?website", {"X-Amz-Content-SHA256": EMPTY_SHA256})),
        ("PostObject", sign("POST", f"{gw.endpoint}/http/logged", {"X-Amz-Content-SHA256": EMPTY_SHA256})),
        ("DeleteService", sign("DELETE", f"{gw.endpoint}/", {"X-Amz-Content-SHA256": EMPTY_SHA256})),
        ("ListObjects", listing(gw, {f"X-Pad-{i}": "b" * 100 for i in range(90)})),  # refused before routing
        ("GetObject", sign("GET", f"{gw.endpoint}/http/logged", {"X-Amz-Content-SHA256": "bad"})),  # bad auth
    ]
    before = len(access_log(gw))
    for _, request in requests:
        assert send(gw, request)[0] >= 400
    for path in ("/health", "/ready", "/metrics"):
        assert send_target(gw, "GET", path)[0] == 200
    assert send(gw, listing(gw, {"X-Long": "a" * 20_000}))[0] == 400
    expected = [name for name, _ in requests] + ["Health", "Ready", "Metrics", "MalformedRequest"]
    deadline = time.monotonic() + 30
    while len(access_log(gw)) < before + len(expected):
        assert time.monotonic() < deadline, access_log(gw)[before:]
        time.sleep(0.2)
    entries = access_log(gw)[before:]
    assert sorted(e["op"] for e in entries) == sorted(expected)
    assert all(e["request_id"] for e in entries)
    assert not [e for e in access_log(gw) if e["op"] == "Unknown"]
    # A refused sub-resource is the client's doing: an INFO line, no ERROR, no traceback.
    output = "".join(gw.output)
    refusal_lines = [line for line in output.splitlines() if "replication sub-resource" in line]
    assert refusal_lines and all(" INFO " in line for line in refusal_lines), refusal_lines
    assert "Traceback" not in output and " ERROR " not in output


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """Short timeouts and a minimum body rate of 1000 B/s over 2 s of waiting."""
    env = {
        "S4_LIMITS_IDLE_TIMEOUT": "1.5",
        "S4_LIMITS_MIN_BODY_RATE": "1000",
        "S4_LIMITS_MIN_BODY_RATE_WINDOW": "2",
    }
    gateway = start_gateway(tmp_path_factory.mktemp("exact-http-short") / "gateway", extra_env=env)
    gateway.client().create_bucket(Bucket="short")
    yield gateway
    gateway.stop()


def test_a_cut_download_logs_the_bytes_really_sent(short):
    size = 32 * 1024 * 1024
    client = short.client()
    client.put_object(Bucket="short", Key="big", Body=os.urandom(size))
    request = sign("GET", f"{short.endpoint}/short/big", {"X-Amz-Content-SHA256": EMPTY_SHA256})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect: fixes the window
    sock.settimeout(10)
    received = 0
    try:
        sock.connect(("127.0.0.1", short.port))
        head = ["GET /short/big HTTP/1.1"] + [f"{k}: {v}" for k, v in request.headers.items()]
        if "host" not in {k.lower() for k in request.headers}:
            head.append(f"Host: 127.0.0.1:{short.port}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        first = sock.recv(65536)
        received = len(first) - (first.index(b"\r\n\r\n") + 4)  # body bytes only
        time.sleep(1.5 + 4.5)  # reads nothing: cut after the idle timeout, with room for a slow machine
        sock.settimeout(5)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        sock.close()
    entry = wait_for_log(short, lambda e: e["op"] == "GetObject" and e["key"] == "big")
    assert entry["status"] == 200  # what went out before the cut (it was logged as 500 with 0 bytes)
    assert 0 < entry["bytes_out"] < size // 2, (entry, received)
    # What the kernel held when the gateway closed still reached the client; what the transport held did not.
    assert entry["bytes_out"] == received, (entry, received)


def test_a_full_download_logs_its_body_bytes(short):
    client = short.client()
    client.put_object(Bucket="short", Key="whole", Body=b"0123456789" * 1000)
    assert len(client.get_object(Bucket="short", Key="whole")["Body"].read()) == 10_000
    entry = wait_for_log(short, lambda e: e["op"] == "GetObject" and e["key"] == "whole")
    assert entry["bytes_out"] == 10_000


def test_a_trickling_body_gets_request_timeout_and_stores_nothing(short):
    body = os.urandom(1000)
    request = signed_put(short, "short", "trickled", body)
    head = ["PUT /short/trickled HTTP/1.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    if "host" not in {k.lower() for k in request.headers}:
        head.append(f"Host: 127.0.0.1:{short.port}")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", short.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        answered = False
        for i in range(len(body)):  # one byte every 0.5 s: never idle for 1.5 s, but 2 B/s
            try:
                sock.sendall(body[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            if socket_readable(sock, 0.5):
                answered = True
                break
            assert time.monotonic() - started < 60, "the trickle was never refused"
        assert answered
        response = http.client.HTTPResponse(sock)
        response.begin()
        status, headers, reply = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    assert_s3_error(status, headers, reply, 400, "RequestTimeout")
    with pytest.raises(ClientError) as info:
        short.client().head_object(Bucket="short", Key="trickled")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def socket_readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


def test_a_slow_but_sufficient_body_is_stored(short):
    pieces = [os.urandom(3000) for _ in range(10)]  # 3000 B every 0.3 s: about 10 KB/s, for 3 s
    body = b"".join(pieces)
    request = signed_put(short, "short", "steady", body)
    conn = http.client.HTTPConnection("127.0.0.1", short.port, timeout=60)
    try:
        conn.putrequest("PUT", "/short/steady", skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        if "host" not in {k.lower() for k in request.headers}:
            conn.putheader("Host", f"127.0.0.1:{short.port}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        for piece in pieces:
            time.sleep(0.3)
            conn.send(piece)
        response = conn.getresponse()
        status, reply = response.status, response.read()
    finally:
        conn.close()
    assert status == 200, reply
    assert short.client().get_object(Bucket="short", Key="steady")["Body"].read() == body


DELETE_DOC = b"<Delete><Object><Key>keep-me</Key></Object></Delete>"


def _delete_request(gateway, bucket: str, headers: dict[str, str]):
    url = f"{gateway.endpoint}/{bucket}?delete"
    return sign("POST", url, {"X-Amz-Content-SHA256": hashlib.sha256(DELETE_DOC).hexdigest(), **headers}, DELETE_DOC)


def test_delete_objects_without_a_digest_is_refused_as_s3_does(gateway, bucket):
    client = gateway.client()
    client.put_object(Bucket=bucket, Key="keep-me", Body=b"x")
    status, headers, reply = send(gateway, _delete_request(gateway, bucket, {}))
    assert_s3_error(status, headers, reply, 400, "InvalidRequest")
    assert b"<Message>Missing required header for this request: Content-MD5</Message>" in reply
    assert client.get_object(Bucket=bucket, Key="keep-me")["Body"].read() == b"x"
    md5 = base64.b64encode(hashlib.md5(DELETE_DOC).digest()).decode()
    crc32 = base64.b64encode(zlib.crc32(DELETE_DOC).to_bytes(4, "big")).decode()
    for digest in ({"Content-MD5": md5}, {"x-amz-checksum-crc32": crc32}):
        client.put_object(Bucket=bucket, Key="keep-me", Body=b"x")
        status, _, reply = send(gateway, _delete_request(gateway, bucket, digest))
        assert status == 200, reply
        assert b"<Deleted><Key>keep-me</Key></Deleted>" in reply
    # A wrong digest is still caught.
    client.put_object(Bucket=bucket, Key="keep-me", Body=b"x")
    status, headers, reply = send(gateway, _delete_request(gateway, bucket, {"Content-MD5": crc32 * 2 + "AA=="}))
    assert status == 400 and error_code(reply) in ("BadDigest", "InvalidDigest"), reply
    # The SDK and the CLI send a digest of their own.
    assert client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep-me"}]})["Deleted"]
    client.put_object(Bucket=bucket, Key="dir/a", Body=b"a")
    client.put_object(Bucket=bucket, Key="dir/b", Body=b"b")
    gateway.aws("s3", "rm", f"s3://{bucket}/dir/", "--recursive")
    gateway.aws("s3api", "delete-objects", "--bucket", bucket, "--delete", '{"Objects":[{"Key":"nothing"}]}')
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
