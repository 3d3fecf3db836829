"""What one client may hold: time without progress, header bytes, and a share of the requests.

aiohttp bounds none of these the way an S3 server must. It has no timeout on reading a
request body, so a client that sends headers and then stalls would hold its handler (and
whatever the handler holds: a staged upload, a store connection) forever; and a client that
stops reading a response blocks the writer's drain just as long. Each bound here measures
time *without progress*, so a slow but steady upload or download of any size still works.
Every refusal is the S3 error AWS gives for it (RequestTimeout, RequestHeaderSectionTooLarge,
SlowDown); a response already under way can only be cut.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from s4.config import LimitsConfig
from s4.server.errors import S3Error

WRITE_SLICE = 256 * 1024
"""Largest piece written at once: each must drain within the idle timeout, so a client that reads
slowly but steadily (WRITE_SLICE per idle timeout) is never cut, whatever the store's chunk size."""
PARSER_SLACK = 8 * 1024
"""aiohttp's own line and field limits sit this far above ``max_header_bytes``: our check answers
with the S3 error first; only what is far past it meets aiohttp's plain-text 400."""


class ByteSource(Protocol):
    """What idle_bounded needs of aiohttp's StreamReader (``request.content``)."""

    def read_nowait(self, n: int = -1) -> bytes: ...

    def at_eof(self) -> bool: ...

    async def readany(self) -> bytes: ...


def request_timeout() -> S3Error:
    return S3Error(
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the timeout period. "
        "Idle connections will be closed.",
    )


def slow_down() -> S3Error:
    return S3Error("SlowDown", "Please reduce your request rate.")


def server_settings(limits: LimitsConfig) -> dict[str, Any]:
    """Keyword arguments for aiohttp's request handler (through ``web.AppRunner``).

    ``keepalive_timeout`` closes a connection that sits between requests, and also one that
    has not finished sending a request's headers (slowloris): aiohttp only treats a request as
    started once its header section is complete.
    """
    ceiling = limits.max_header_bytes + PARSER_SLACK
    return {"keepalive_timeout": limits.keepalive_timeout, "max_line_size": ceiling, "max_field_size": ceiling}


def header_section_size(request: web.BaseRequest) -> int:
    """Bytes of the header lines (``name: value\\r\\n``) plus the query string, as AWS counts them."""
    query = request.raw_path.partition("?")[2]
    return len(query) + sum(len(name) + len(value) + 4 for name, value in request.raw_headers)


def check_header_section(request: web.BaseRequest, limit: int) -> None:
    if header_section_size(request) > limit:
        raise S3Error(
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.",
            extra={"MaxSizeAllowed": str(limit)},
        )


class RequestLimiter:
    """A count of S3 requests in flight; past the bound a request is refused, not queued.

    Queueing would only move the overload into memory (bodies waiting to be read, handlers
    waiting on the codec pool); SlowDown tells well-behaved clients to back off and retry.
    Single-threaded (the event loop), so a plain counter is enough.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    def try_acquire(self) -> bool:
        if self.full:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1


async def idle_bounded(source: ByteSource, timeout: float) -> AsyncIterator[bytes]:
    """The request body's pieces, failing with RequestTimeout when none arrives within ``timeout``.

    Each wait is bounded on its own: any byte received is progress and starts the clock again.
    Bytes already buffered are taken without arming a timer (a few microseconds each, which add
    up over a fast upload's many pieces).
    """
    while True:
        data = source.read_nowait()
        if not data:
            if source.at_eof():
                return
            try:
                async with asyncio.timeout(timeout):
                    data = await source.readany()
            except TimeoutError:
                raise request_timeout() from None
            if not data:
                return
        yield data


def cut(request: web.BaseRequest) -> None:
    """Drop the connection now. ``close()`` would wait to flush a buffer the client never reads."""
    transport = request.transport
    if transport is not None:
        transport.abort()


@contextlib.asynccontextmanager
async def client_reads_within(request: web.BaseRequest, timeout: float) -> AsyncIterator[None]:
    """Bound a write to the client; when it does not complete in time, cut the connection.

    Raises ConnectionResetError then, as a client that hung up would: the response has started,
    so there is no error document left to send.
    """
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        cut(request)
        raise ConnectionResetError(f"the client read nothing for {timeout:g} s; connection cut") from None


async def write_within(request: web.BaseRequest, response: web.StreamResponse, data: bytes, timeout: float) -> None:
    """Write ``data`` a slice at a time, each slice taken by the client within ``timeout`` (see WRITE_SLICE)."""
    view = memoryview(data)
    for start in range(0, len(view), WRITE_SLICE):
        async with client_reads_within(request, timeout):
            await response.write(view[start : start + WRITE_SLICE])


async def finish_within(request: web.BaseRequest, response: web.StreamResponse, timeout: float) -> None:
    """Send a response the handler built but did not send (a buffered body), within ``timeout``.

    aiohttp would otherwise write it after the handler returned, with no bound on the drain,
    and the request would keep its place against ``max_concurrent_requests`` meanwhile.
    """
    if response.prepared:
        return
    async with client_reads_within(request, timeout):
        await response.prepare(request)
        await response.write_eof()
