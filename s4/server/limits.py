"""What one client may hold: time without progress, body rate, header bytes, and a share of the requests.

aiohttp bounds none of these the way an S3 server must. It has no timeout on reading a
request body, so a client that sends headers and then stalls would hold its handler (and
whatever the handler holds: a staged upload, a store connection) forever; and a client that
stops reading a response blocks the writer's drain just as long. Each bound here measures
time *without progress*, so a slow but steady upload or download of any size still works;
a body must also average a minimum rate over the time spent waiting for it, so one byte sent
now and then does not count as progress forever. Every refusal is the S3 error AWS gives for
it (RequestTimeout, RequestHeaderSectionTooLarge, SlowDown); a response already under way can
only be cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
import sys
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError

from s4.config import LimitsConfig
from s4.server.errors import S3Error

try:  # POSIX; elsewhere a watch compares the transport's buffer alone
    import fcntl
    import termios
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]
    termios = None  # type: ignore[assignment]

BODY_BYTES_SENT = "s4.body_bytes_sent"
"""Request key: body bytes handed to the connection by write_within (what a cut response's log reports)."""
_UNSENT_AT_CUT = "s4.unsent_at_cut"
MIN_PROGRESS = 256 * 1024
"""What a client must take of a response, per idle timeout, to keep its connection (or all that waits for
it, if less): a client that reads slowly but steadily is never cut, whatever the store's chunk size."""
TLS_WRITE_SLICE = 256 * 1024
"""Most of a response handed to a TLS transport at once: it encrypts the whole write into a buffer of its
own, so the slice bounds what a slow reader holds of the gateway's memory beyond the frame itself."""
PLAIN_WRITE_SLICE = 1024 * 1024
"""The same over plain TCP, where a write holds only a view of the frame, which is held anyway: each slice
costs the event loop a write and a drain, and 1 MiB slices took 4-5% off a GET's CPU against 256 KiB ones
(benchmarks/scale_bench.py, 9 rounds side by side)."""
PARSER_SLACK = 8 * 1024
"""aiohttp's line limits sit this far above ``max_header_bytes``: a line a little over the limit gets
our own check's answer (HTTP/1.1, and before ``100 Continue``), and the request line has room for
the path, which does not count (a 1024-byte key percent-encodes to at most 3 KiB)."""
SHORTEST_HEADER_LINE = 8
"""aiohttp's count of headers admits ``max_header_bytes`` of lines this short (``X-Ab: v`` and CRLF,
where real clients send 30 or so): any header section S3 takes, within a bound on what one
connection can make the parser hold (count x line limit, 16 MiB at the defaults)."""


class ByteSource(Protocol):
    """What idle_bounded needs of aiohttp's StreamReader (``request.content``).

    ``total_bytes`` counts every byte the HTTP layer has handed to the reader (``auto_decompress`` is
    off, see server_settings): what is above the bytes taken so far waits in its buffer.
    """

    total_bytes: int

    def at_eof(self) -> bool: ...

    async def readchunk(self) -> tuple[bytes, bool]: ...


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

    The parser's own limits admit every header section of up to ``max_header_bytes`` however it
    is split (one long line, or many short ones: aiohttp's default of 128 headers refused legal
    requests); past them the parser refuses, and the protocol handler (``s4.server.protocol``)
    answers that with the same RequestHeaderSectionTooLarge as check_header_section.

    ``auto_decompress`` is off: a body is stored byte for byte as sent, whatever its
    Content-Encoding (gzip, br, ...), which S3 keeps as a header and returns on GET.
    """
    ceiling = limits.max_header_bytes + PARSER_SLACK
    return {
        "keepalive_timeout": limits.keepalive_timeout,
        "max_line_size": ceiling,
        "max_field_size": ceiling,
        "max_headers": limits.max_header_bytes // SHORTEST_HEADER_LINE + 1,
        "auto_decompress": False,
    }


def header_section_size(request: web.BaseRequest) -> int:
    """Bytes of the header lines (``name: value\\r\\n``) plus the query string, as AWS counts them."""
    query = request.raw_path.partition("?")[2]
    return len(query) + sum(len(name) + len(value) + 4 for name, value in request.raw_headers)


def check_header_section(request: web.BaseRequest, limit: int) -> None:
    if header_section_size(request) > limit:
        raise header_section_too_large(limit)


def header_section_too_large(limit: int) -> S3Error:
    return S3Error(
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


class BodyRate:
    """The minimum average rate of a request body, over consecutive windows of time spent waiting for it.

    Only time spent waiting for the client counts: while the gateway is busy with what it already
    received (compressing, storing), the bytes that arrive meanwhile are taken without waiting, so a
    slow store never makes a fast client look slow. A window ends once ``window`` seconds of waiting
    have passed; it must have brought ``rate * window`` bytes, or the body fails with RequestTimeout.
    """

    def __init__(self, rate: int, window: float) -> None:
        self._needed = rate * window
        self._window = window
        self._waited = 0.0
        self._received = 0

    def budget(self) -> float:
        """Seconds the next wait may take before this window is over without enough bytes."""
        if self._needed <= 0 or self._received >= self._needed:
            return math.inf
        return max(self._window - self._waited, 0.0)

    def record(self, size: int, waited: float = 0.0) -> None:
        self._received += size
        self._waited += waited
        if self._needed > 0 and self._waited >= self._window:
            if self._received < self._needed:
                raise request_timeout()
            self._waited, self._received = 0.0, 0


async def idle_bounded(source: ByteSource, timeout: float, rate: BodyRate | None = None) -> AsyncIterator[bytes]:
    """The request body's pieces, failing with RequestTimeout when none arrives within ``timeout``,
    or when the body averages less than ``rate`` (see BodyRate).

    Each wait is bounded on its own: any byte received is progress and starts the clock again.
    Bytes already buffered are taken without arming a timer (a few microseconds each, which add
    up over a fast upload's many pieces). Pieces come one at a time as the socket delivered them
    (``readchunk``): ``readany`` joined everything buffered into fresh memory, a copy whenever more
    than one piece waited (an HTTP-chunked body still comes joined up to each chunk's end). A body
    the HTTP layer finds malformed (chunked framing, a connection closed before Content-Length
    bytes) fails as the S3 error for it, not a 500.

    This must be the body's only reader from its first byte: what waits is counted as the reader's
    ``total_bytes`` less what this took.
    """
    rate = rate or BodyRate(0, 1.0)
    loop = asyncio.get_running_loop()
    taken = 0
    while True:
        waited = 0.0
        try:
            if source.total_bytes > taken:
                data, end_of_http_chunk = await source.readchunk()  # buffered: returns without waiting
                if not data and not end_of_http_chunk:
                    return  # the end, had the count been off: never loop on it
            else:
                if source.at_eof():
                    return
                started = loop.time()
                try:
                    async with asyncio.timeout(min(timeout, rate.budget())):
                        data, end_of_http_chunk = await source.readchunk()
                except TimeoutError:
                    raise request_timeout() from None
                if not data and not end_of_http_chunk:
                    return
                waited = loop.time() - started
        except HttpProcessingError as exc:
            raise malformed_body(exc) from None
        taken += len(data)
        rate.record(len(data), waited)
        if data:
            yield data


def malformed_body(exc: HttpProcessingError) -> S3Error:
    """What S3 answers for a body whose HTTP framing is broken."""
    if isinstance(exc, ContentLengthError):
        return S3Error(
            "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header"
        )
    return bad_request()


def bad_request() -> S3Error:
    """S3's answer to a request it cannot parse as HTTP."""
    return S3Error("BadRequest", "An error occurred when parsing the HTTP request.")


def cut(request: web.BaseRequest) -> None:
    """Drop the connection now. ``close()`` would wait to flush a buffer the client never reads.

    What stays in the transport's buffer is dropped with it; that amount is noted first, so that
    the access log reports the bytes really sent (see body_bytes_sent). What the kernel already
    holds is still delivered: the socket is closed, not reset.
    """
    transport = request.transport
    if transport is not None:
        request[_UNSENT_AT_CUT] = transport.get_write_buffer_size()
        transport.abort()


def body_bytes_sent(request: web.BaseRequest) -> int:
    """Body bytes of a response sent with write_within that left the gateway (all, unless it was cut)."""
    return max(0, request.get(BODY_BYTES_SENT, 0) - request.get(_UNSENT_AT_CUT, 0))


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
    """Write ``data``, cutting the connection when the client takes less than MIN_PROGRESS of what waits
    for it (or all of it, if less) in any ``timeout`` seconds.

    Written a slice at a time, each drained before the next, so a slow reader over TLS holds at most a
    slice of ciphertext beyond the kernel's buffers (one write of a whole frame held its ciphertext,
    twice a frame per connection); see TLS_WRITE_SLICE and PLAIN_WRITE_SLICE. One watch over them all
    (see _DrainWatch), as a bounded wait per slice saw only the transport's buffer, which a slow reader
    drains in jumps, and cut a steady one.
    """
    view = memoryview(data)
    watch = _DrainWatch(request, len(data), timeout)
    transport = request.transport
    tls = transport is not None and transport.get_extra_info("ssl_object") is not None
    size = TLS_WRITE_SLICE if tls else PLAIN_WRITE_SLICE
    try:
        for start in range(0, len(view), size):
            piece = view[start : start + size]
            # Counted as handed over before the drain: a cut during the drain subtracts what stayed behind.
            request[BODY_BYTES_SENT] = request.get(BODY_BYTES_SENT, 0) + len(piece)
            watch.handed += len(piece)
            await response.write(piece)
            if watch.cut:
                break
    except ConnectionError:
        if not watch.cut:
            raise
    finally:
        watch.stop()
    if watch.cut:
        raise ConnectionResetError(f"the client read too little for {timeout:g} s; connection cut")


class _DrainWatch:
    """Checks every ``timeout`` seconds, while a write drains, that the client took enough of what waits.

    Taken is what the client's TCP acknowledged (TCP_INFO's ``tcpi_bytes_acked``, Linux): neither the
    transport's buffer nor the kernel's tell it alone. The kernel's socket buffer, megabytes deep, takes
    a write at once, and Linux says the socket is writable again only once a third or so of it is free,
    so the transport's buffer moves in jumps, seconds apart for a slow reader; over TLS, the encrypted
    frame also waits in a buffer of the transport that nothing from outside it counts. Judged by those
    buffers, a steady reader was cut between the jumps. Without TCP_INFO, the drop in what waits is taken
    instead: the transport's buffer, the socket's send queue and the slices not handed over yet (sound
    over plain TCP)."""

    def __init__(self, request: web.BaseRequest, size: int, timeout: float) -> None:
        """Started before a write of ``size`` bytes."""
        self._request = request
        self._timeout = timeout
        self._size = size
        self.handed = 0
        """Bytes of the ``size`` handed to the transport so far (write_within adds each slice)."""
        self.cut = False
        self._waiting = _unsent(request) + size
        self._acked = _acked(request)
        self._timer = asyncio.get_running_loop().call_later(timeout, self._check)

    def _check(self) -> None:
        transport = self._request.transport
        if transport is None:
            return  # the connection is gone: the write ends on its own
        if transport.is_closing():
            transport.abort()  # nothing closes a connection while its response is written; never left waiting
            return
        # What waits: in the transport and the socket, and the slices not handed over yet.
        unsent = _unsent(self._request)
        waiting = unsent + self._size - self.handed
        acked = _acked(self._request)
        taken = self._waiting - waiting
        if acked is not None and self._acked is not None:
            taken = max(taken, acked - self._acked)
        if unsent and taken < min(MIN_PROGRESS, self._waiting):
            self.cut = True
            cut(self._request)  # the drain then ends (connection lost) and write_within raises
            return
        self._waiting, self._acked = waiting, acked
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._check)

    def stop(self) -> None:
        self._timer.cancel()


_TIOCOUTQ = getattr(termios, "TIOCOUTQ", None) if termios is not None else None
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_BYTES_ACKED_AT = 120
"""Offset of ``tcpi_bytes_acked`` (u64) in Linux's struct tcp_info (since 4.1): 8 bytes of flags, 24 u32
fields, then pacing_rate and max_pacing_rate (u64) before it. Other systems lay theirs out otherwise."""


def _unsent(request: web.BaseRequest) -> int:
    """Bytes of the response the client has not taken: the transport's buffer and the socket's send queue."""
    transport = request.transport
    if transport is None:
        return 0
    waiting = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and fcntl is not None and _TIOCOUTQ is not None:
        with contextlib.suppress(OSError):  # closed meanwhile: the transport's buffer is all there is to go by
            waiting += struct.unpack("i", fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0"))[0]
    return waiting


def _acked(request: web.BaseRequest) -> int | None:
    """Bytes the client's TCP has acknowledged on this connection so far; None where the kernel does not say."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
    except OSError:
        return None
    if len(info) < _BYTES_ACKED_AT + 8:
        return None
    return struct.unpack_from("Q", info, _BYTES_ACKED_AT)[0]


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
