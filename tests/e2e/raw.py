"""Hand-built signed requests, for what no SDK sends on purpose: broken chunk signatures, odd hosts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import ssl
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY, Gateway

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes = b"",
    secret: str = SECRET_KEY,
    when: dt.datetime | None = None,
) -> AWSRequest:
    """SigV4 by botocore, keeping an x-amz-content-sha256 the caller set (streaming modes).

    ``when`` signs as if the clock said so, for clock-skew tests.
    """
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    auth = SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", "us-east-1")
    if when is None:
        auth.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            auth.add_auth(request)
    return request


def send(gateway: Gateway, request: AWSRequest, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send to the gateway's port whatever Host the request was signed for."""
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = request.body if body is None else body
    data = data.encode() if isinstance(data, str) else (data or b"")
    headers = dict(request.headers.items())
    if "host" not in {name.lower() for name in headers}:
        headers["Host"] = parts.netloc  # what botocore signed as the host
    return send_target(gateway, request.method, path, headers, data)


def send_target(
    gateway: Gateway, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly ``target`` (path and query) as the request target: no normalisation, no re-encoding.

    Host defaults to the gateway's address and Content-Length to the body's; every other header is
    the caller's, sent as given.
    """
    if gateway.ca_bundle is not None:
        context = ssl.create_default_context(cafile=str(gateway.ca_bundle))
        context.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", gateway.port, context=context, timeout=30)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        headers = dict(headers or {})
        present = {name.lower() for name in headers}
        if "host" not in present:
            headers["Host"] = f"127.0.0.1:{gateway.port}"
        if "content-length" not in present:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _signing_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_bytes(
    method: str, path: str, host: str, headers: dict[str, bytes], body: bytes, secret: str = SECRET_KEY
) -> dict[str, bytes]:
    """SigV4 (header auth) over header values given as bytes, any bytes: what botocore cannot sign (it
    holds header values as text). ``path`` must need no URI encoding; returns the headers to send."""
    amz_date = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest().encode()
    signed = {b"host": host.encode(), b"x-amz-content-sha256": payload, b"x-amz-date": amz_date.encode()}
    signed |= {name.lower().encode(): value.strip() for name, value in headers.items()}
    names = sorted(signed)
    canonical = b"\n".join(
        [method.encode(), path.encode(), b"", *(n + b":" + signed[n] for n in names), b"", b";".join(names), payload]
    )
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical).hexdigest()}"
    signature = hmac.new(_signing_key(secret, amz_date[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"{ACCESS_KEY}/{scope}"
    authorization = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={';'.join(n.decode() for n in names)}, "
    return {n.decode(): v for n, v in signed.items()} | {
        "Authorization": (authorization + f"Signature={signature}").encode()
    }


def signed_chunked_body(request: AWSRequest, chunks: list[bytes], secret: str = SECRET_KEY) -> bytes:
    """An aws-chunked body whose chunk signatures chain from the request's signature."""
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = _signing_key(secret, amz_date[:8])
    out = bytearray()
    for chunk in [*chunks, b""]:
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256, hashlib.sha256(chunk).hexdigest()]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    return bytes(out)


def streaming_put(gateway: Gateway, bucket: str, key: str, chunks: list[bytes]) -> tuple[AWSRequest, bytes]:
    """A signed STREAMING-AWS4-HMAC-SHA256-PAYLOAD PutObject request and its body."""
    decoded = sum(len(c) for c in chunks)
    probe = signed_chunked_body(sign("PUT", "http://x/", {"X-Amz-Content-SHA256": STREAMING}), chunks)
    headers = {
        "Host": f"127.0.0.1:{gateway.port}",
        "X-Amz-Content-SHA256": STREAMING,
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded),
        "Content-Length": str(len(probe)),  # same length whatever the signatures
    }
    request = sign("PUT", f"{gateway.endpoint}/{bucket}/{key}", headers)
    return request, signed_chunked_body(request, chunks)


def first_response_line(gateway: Gateway, request: AWSRequest) -> bytes:
    """Send only the request head and return the first status line the gateway answers with."""
    import socket

    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    if gateway.ca_bundle is not None:
        context = ssl.create_default_context(cafile=str(gateway.ca_bundle))
        context.check_hostname = False
        sock = context.wrap_socket(sock)
    try:
        head = [f"{request.method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
        head += [f"{k}: {v}" for k, v in request.headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]
    finally:
        sock.close()
