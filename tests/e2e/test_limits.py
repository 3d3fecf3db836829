"""Limits against a real ``s4 serve`` with short timeouts: stalled, slow and greedy clients.

Each refusal must be the S3 error AWS answers with (XML, with a request id) and store nothing;
each bound counts time *without progress*, so slow but steady transfers still go through.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import start_gateway
from tests.e2e.raw import EMPTY_SHA256, STREAMING, first_response_line, send, sign

IDLE = 1.5
KEEPALIVE = 2.0
FIVE_GIB = 5 * 1024**3
MAX_XML = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    env = {"S4_LIMITS_IDLE_TIMEOUT": str(IDLE), "S4_LIMITS_KEEPALIVE_TIMEOUT": str(KEEPALIVE)}
    gateway = start_gateway(tmp / "gateway", extra_env=env)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def bucket(gw):
    gw.client().create_bucket(Bucket="limits")
    return "limits"


# --- raw sockets: what no SDK does on purpose ----------------------------------------------------


def connect(gateway, rcvbuf: int | None = None, timeout: float = 10) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: fixes the window
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", gateway.port))
    return sock


def request_head(request, extra: dict[str, str] | None = None) -> bytes:
    """The request line and headers of a signed request, as bytes to write on a socket."""
    path = request.url.split("//", 1)[1]
    path = path[path.index("/") :]
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {request.url.split('//', 1)[1].split('/', 1)[0]}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def error_code(body: bytes) -> str:
    found = re.search(rb"<Code>([^<]*)</Code>", body)
    return found.group(1).decode() if found else ""


def assert_s3_error(status: int, body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert error_code(body) == code, body
    assert re.search(rb"<RequestId>[0-9A-F]+</RequestId>", body), body


def assert_absent(gateway, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as info:
        gateway.client().head_object(Bucket=bucket, Key=key)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def signed_put(gateway, bucket: str, key: str, body: bytes):
    url = f"{gateway.endpoint}/{bucket}/{key}"
    return sign("PUT", url, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}, body)


# --- timeouts -------------------------------------------------------------------------------------


def test_upload_that_stalls_mid_body_gets_request_timeout_and_stores_nothing(gw, bucket):
    body = os.urandom(1000)
    request = signed_put(gw, bucket, "stalled", body)
    with connect(gw) as sock:
        sock.sendall(request_head(request, {"Content-Length": str(len(body))}) + body[:500])
        started = time.monotonic()
        status, _, reply = read_response(sock)
        waited = time.monotonic() - started
    assert_s3_error(status, reply, 400, "RequestTimeout")
    assert IDLE * 0.8 <= waited < IDLE + 3
    assert_absent(gw, bucket, "stalled")


def test_slow_but_steady_upload_outlasts_the_idle_timeout_and_round_trips(gw, bucket):
    pieces = [os.urandom(2000) for _ in range(8)]
    body = b"".join(pieces)
    request = signed_put(gw, bucket, "trickled", body)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    started = time.monotonic()
    try:
        conn.putrequest("PUT", f"/{bucket}/trickled", skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.putheader("Host", f"127.0.0.1:{gw.port}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        for piece in pieces:
            time.sleep(IDLE / 5)  # each gap well inside the bound, the whole far beyond it
            conn.send(piece)
        response = conn.getresponse()
        status, reply = response.status, response.read()
    finally:
        conn.close()
    assert status == 200, reply
    assert time.monotonic() - started > IDLE * 1.5
    assert gw.client().get_object(Bucket=bucket, Key="trickled")["Body"].read() == body


def test_download_whose_client_stops_reading_is_cut_while_others_are_served(gw, bucket):
    size = 16 * 1024 * 1024  # well past the server's socket buffer (Linux: 4 MiB at most by default)
    client = gw.client()
    client.put_object(Bucket=bucket, Key="big", Body=os.urandom(size))
    client.put_object(Bucket=bucket, Key="small", Body=b"still served")
    request = sign("GET", f"{gw.endpoint}/{bucket}/big", {"X-Amz-Content-SHA256": EMPTY_SHA256})
    with connect(gw, rcvbuf=16 * 1024) as sock:
        sock.sendall(request_head(request))
        received = len(sock.recv(65536))
        # The client now reads nothing: the server's drain blocks, and others must not notice.
        assert client.get_object(Bucket=bucket, Key="small")["Body"].read() == b"still served"
        time.sleep(IDLE + 1.5)
        sock.settimeout(5)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass  # the cut: an abort, not a graceful close
    assert received < size // 2
    assert client.get_object(Bucket=bucket, Key="small")["Body"].read() == b"still served"


def _read_paced(
    sock: socket.socket, size: int, piece: int, pause: float, into: bytearray | None = None
) -> tuple[int, bool]:
    """Read up to ``size`` bytes, a pause of ``pause`` seconds after each ``piece`` of them; (bytes read, cut)."""
    received, mark = 0, piece
    while received < size:
        try:
            chunk = sock.recv(min(piece, 64 * 1024, size - received))
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += len(chunk)
        if into is not None:
            into += chunk
        if received >= mark:
            time.sleep(pause)
            mark += piece
    return received, False


TLS_IDLE = 0.75


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits-tls")
    env = {"S4_LIMITS_IDLE_TIMEOUT": str(TLS_IDLE), "S4_LIMITS_KEEPALIVE_TIMEOUT": str(KEEPALIVE)}
    gateway = start_gateway(tmp / "gateway", extra_env=env, tls=True)
    gateway.client().create_bucket(Bucket="limits")
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("over", ["http", "https"])
def test_download_read_slowly_but_steadily_outlasts_the_idle_timeout(gw, tls_gw, bucket, over):
    """A client reading steadily, about 3.7 times the least it must take (MIN_PROGRESS, 256 KiB, per
    idle timeout), with a response that takes longer than an idle timeout to drain: the connection
    lives. Over HTTP at 640 KiB/s (idle timeout 1.5 s), the kernel's socket buffer says it has room
    again only once a third or so of it is free, seconds apart at that pace; over HTTPS at 1.25 MiB/s
    (idle timeout 0.75 s), a whole encrypted 4 MiB frame also waits in a buffer of the transport's own.
    Judged by the buffers the gateway could see, both were cut."""
    gateway, size, pause = (gw, 6, 0.2) if over == "http" else (tls_gw, 16, 0.1)
    body = os.urandom(size * 1024 * 1024)
    gateway.client().put_object(Bucket=bucket, Key="steady", Body=body)
    request = sign("GET", f"{gateway.endpoint}/{bucket}/steady", {"X-Amz-Content-SHA256": EMPTY_SHA256})
    with connect(gateway, rcvbuf=16 * 1024) as raw:
        sock = raw
        if over == "https":
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(request_head(request))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        got = bytearray()
        received, was_cut = _read_paced(sock, len(body), 128 * 1024, pause, into=got)
    assert (received, was_cut) == (len(body), False)
    assert got == body


def test_download_read_a_trickle_at_a_time_is_cut(gw, bucket):
    """A client taking 32 KiB a second is not reading: the response is cut once an idle timeout passes
    with less than MIN_PROGRESS taken. What the kernel already held still arrives, then the body ends
    short (a reset or an end, not a wait: the socket's timeout fails the test)."""
    size = 16 * 1024 * 1024
    gw.client().put_object(Bucket=bucket, Key="trickle", Body=os.urandom(size))
    request = sign("GET", f"{gw.endpoint}/{bucket}/trickle", {"X-Amz-Content-SHA256": EMPTY_SHA256})
    with connect(gw, rcvbuf=16 * 1024) as sock:
        sock.sendall(request_head(request))
        received, was_cut = _read_paced(sock, 128 * 1024, 8 * 1024, 0.25)  # 4 s of trickle
        assert not was_cut
        rest, was_cut = _read_paced(sock, size, size, 0)
    assert was_cut and received + rest < size // 2


def test_headers_sent_too_slowly_are_cut_even_while_bytes_trickle(gw, bucket):
    with connect(gw) as sock:
        sock.sendall(f"GET /{bucket}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < KEEPALIVE + 4:
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                try:
                    closed = sock.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
                break
        waited = time.monotonic() - started
    assert closed
    assert KEEPALIVE * 0.8 <= waited < KEEPALIVE + 3
    assert gw.client().list_objects_v2(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- sizes ------------------------------------------------------------------------------------------


def listing(gw, bucket: str, headers: dict[str, str], query: str = ""):
    return sign("GET", f"{gw.endpoint}/{bucket}{query}", {"X-Amz-Content-SHA256": EMPTY_SHA256, **headers})


def test_header_section_over_8_kib_is_request_header_section_too_large(gw, bucket):
    assert send(gw, listing(gw, bucket, {"X-Padding": "a" * 6000}))[0] == 200
    for oversized in (
        listing(gw, bucket, {"X-Padding": "a" * 9000}),  # one large header
        listing(gw, bucket, {f"X-Pad-{i}": "b" * 100 for i in range(90)}),  # many small ones
        listing(gw, bucket, {}, query="/?prefix=" + "p" * 9000),  # the query string counts too
    ):
        status, _, reply = send(gw, oversized)
        assert_s3_error(status, reply, 400, "RequestHeaderSectionTooLarge")
        assert b"<MaxSizeAllowed>8192</MaxSizeAllowed>" in reply


def test_oversized_headers_are_refused_before_100_continue(gw, bucket):
    headers = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Expect": "100-continue", "Content-Length": "5"}
    request = sign("PUT", f"{gw.endpoint}/{bucket}/expect", {**headers, "X-Padding": "a" * 9000})
    assert first_response_line(gw, request).startswith(b"HTTP/1.1 400")
    assert_absent(gw, bucket, "expect")


def test_a_header_far_past_the_parser_ceiling_is_still_refused(gw, bucket):
    # aiohttp's parser refuses the line itself; the answer is still the S3 error (it was plain text).
    status, _, reply = send(gw, listing(gw, bucket, {"X-Padding": "a" * 40_000}))
    assert_s3_error(status, reply, 400, "RequestHeaderSectionTooLarge")


def test_put_declaring_more_than_5_gib_is_refused_before_any_byte(gw, bucket):
    plain = sign("PUT", f"{gw.endpoint}/{bucket}/huge", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    chunked = sign(
        "PUT",
        f"{gw.endpoint}/{bucket}/huge",
        {
            "X-Amz-Content-SHA256": STREAMING,
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(FIVE_GIB + 1),
        },
    )
    for request, length in ((plain, FIVE_GIB + 1), (chunked, FIVE_GIB + 200)):
        with connect(gw) as sock:
            sock.sendall(request_head(request, {"Content-Length": str(length)}))  # and not one body byte
            started = time.monotonic()
            status, _, reply = read_response(sock)
            assert time.monotonic() - started < 2
        assert_s3_error(status, reply, 400, "EntityTooLarge")
        assert f"<MaxSizeAllowed>{FIVE_GIB}</MaxSizeAllowed>".encode() in reply
        assert f"<ProposedSize>{FIVE_GIB + 1}</ProposedSize>".encode() in reply
    assert_absent(gw, bucket, "huge")


def test_part_declaring_more_than_5_gib_is_refused(gw, bucket):
    client = gw.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp-huge")["UploadId"]
    request = sign(
        "PUT",
        f"{gw.endpoint}/{bucket}/mp-huge?partNumber=1&uploadId={upload}",
        {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    with connect(gw) as sock:
        sock.sendall(request_head(request, {"Content-Length": str(FIVE_GIB + 1)}))
        status, _, reply = read_response(sock)
    assert_s3_error(status, reply, 400, "EntityTooLarge")
    assert client.list_parts(Bucket=bucket, Key="mp-huge", UploadId=upload).get("Parts", []) == []
    client.abort_multipart_upload(Bucket=bucket, Key="mp-huge", UploadId=upload)


def test_xml_body_over_2_mib_is_max_message_length_exceeded(gw, bucket):
    gw.client().put_object(Bucket=bucket, Key="survivor", Body=b"x")
    # DeleteObjects needs a digest of its document (S3 refuses it without); the length fails first.
    digest = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}
    declared = sign("POST", f"{gw.endpoint}/{bucket}?delete", digest)
    with connect(gw) as sock:
        sock.sendall(request_head(declared, {"Content-Length": str(MAX_XML + 1)}))  # refused from the length
        status, _, reply = read_response(sock)
    assert_s3_error(status, reply, 400, "MaxMessageLengthExceeded")
    # Without a declared length the count stops it: a document that just keeps coming.
    item = b"<Object><Key>survivor</Key></Object>"
    document = b"<Delete>" + item * (MAX_XML // len(item) + 1) + b"</Delete>"
    streamed = sign("POST", f"{gw.endpoint}/{bucket}?delete", digest)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.putrequest("POST", f"/{bucket}?delete", skip_host=True, skip_accept_encoding=True)
        for name, value in streamed.headers.items():
            conn.putheader(name, value)
        conn.putheader("Host", f"127.0.0.1:{gw.port}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for start in range(0, len(document), 256 * 1024):
                piece = document[start : start + 256 * 1024]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the rest is sent
        response = conn.getresponse()
        status, reply = response.status, response.read()
    finally:
        conn.close()
    assert_s3_error(status, reply, 400, "MaxMessageLengthExceeded")
    assert gw.client().get_object(Bucket=bucket, Key="survivor")["Body"].read() == b"x"


# --- concurrency -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """A gateway that serves two S3 requests at once, with time enough to hold them open."""
    tmp = tmp_path_factory.mktemp("narrow")
    # The flags, where the other uses S4_*; one worker: the bounds hold per worker process.
    flags = ("--max-concurrent-requests", "2", "--idle-timeout", "20", "--workers", "1")
    gateway = start_gateway(tmp / "gateway", extra_args=flags)
    gateway.client().create_bucket(Bucket="narrow")
    yield gateway
    gateway.stop()


def _slow_down_seen(gateway, deadline: float) -> ClientError | None:
    while time.monotonic() < deadline:
        try:
            gateway.client().list_buckets()
        except ClientError as exc:
            return exc
        time.sleep(0.05)
    return None


def test_requests_past_the_bound_get_slow_down_while_admitted_ones_complete(narrow):
    bodies = [os.urandom(1000), os.urandom(1000)]
    held = []
    try:
        for i, body in enumerate(bodies):
            sock = connect(narrow)
            held.append(sock)
            request = signed_put(narrow, "narrow", f"held-{i}", body)
            sock.sendall(request_head(request, {"Content-Length": str(len(body))}) + body[:10])
        refused = _slow_down_seen(narrow, time.monotonic() + 10)
        assert refused is not None, "a third request was served while two were in flight"
        assert refused.response["Error"]["Code"] == "SlowDown"
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert refused.response["ResponseMetadata"]["RequestId"]
        # Probes are never refused, and a client waiting for 100 is told before it sends a byte.
        with urllib.request.urlopen(f"{narrow.endpoint}/health", timeout=5) as health:
            assert health.status == 200
        expect = sign(
            "PUT",
            f"{narrow.endpoint}/narrow/third",
            {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Expect": "100-continue", "Content-Length": "5"},
        )
        assert first_response_line(narrow, expect).startswith(b"HTTP/1.1 503")
        results: list[int] = []

        def finish(sock: socket.socket) -> None:
            results.append(read_response(sock)[0])

        threads = [threading.Thread(target=finish, args=(sock,)) for sock in held]
        for sock, body in zip(held, bodies, strict=True):
            sock.sendall(body[10:])
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == [200, 200]
    finally:
        for sock in held:
            sock.close()
    client = narrow.client()
    for i, body in enumerate(bodies):
        assert client.get_object(Bucket="narrow", Key=f"held-{i}")["Body"].read() == body
    assert_absent(narrow, "narrow", "third")


# --- connections -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """A gateway that keeps at most three client connections open."""
    tmp = tmp_path_factory.mktemp("few")
    # One worker: the bound holds per worker process (see README, Several worker processes).
    gateway = start_gateway(tmp / "gateway", extra_env={"S4_LIMITS_MAX_CONNECTIONS": "3", "S4_WORKERS": "1"})
    yield gateway
    gateway.stop()


def _health(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return read_response(sock)


def test_connections_past_the_bound_get_slow_down_and_are_closed(few):
    held = [connect(few) for _ in range(3)]
    try:
        for sock in held:  # open and served: each now holds its keep-alive connection
            assert _health(sock)[0] == 200
        extra = connect(few)
        try:
            status, headers, body = _health(extra)
            assert_s3_error(status, body, 503, "SlowDown")
            assert headers["x-amz-request-id"] and headers["connection"].lower() == "close"
            assert extra.recv(1) == b""  # closed by the gateway after the answer
        finally:
            extra.close()
        assert _health(held[0])[0] == 200  # the admitted connections keep working
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the freed slots take new connections again, for S3 requests too
        try:
            few.client().list_buckets()
            break
        except ClientError:
            assert time.monotonic() < deadline, "connections stayed refused after the others closed"
            time.sleep(0.1)
