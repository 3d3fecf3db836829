"""aiohttp's connection handler, answering what its HTTP parser refuses as S3 would.

aiohttp parses each request's head before the application sees it, and answers what it
cannot parse (a header line or a request line past its limits, too many headers, broken
framing) with a plain-text 400 of its own, with a traceback in the log. An S3 client expects
an XML error with a request id, whatever went wrong: here those refusals become
RequestHeaderSectionTooLarge (the parser's limits are set so that only a header section over
``limits.max_header_bytes`` reaches them, see limits.server_settings) or BadRequest, as S3
answers a request it cannot parse; they are logged as one INFO line and appear in the access
log and the metrics like any other request. A handler that fails outright gets InternalError
in XML instead of aiohttp's text page.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from s4.server.app import ACCESS_LOG, CONFIG, METRICS, SERVER, request_id
from s4.server.errors import S3Error
from s4.server.limits import bad_request, header_section_too_large

_log = logging.getLogger("s4.server")
PARSER_OPERATION = "MalformedRequest"
"""The access log's name for a request refused before it could be parsed into an operation."""
_TOO_MANY_HEADERS = "Too many headers"
READ_SIZE = 1024 * 1024
"""Most bytes one read from a client's socket takes (uvloop's own reads stop at 256 KB)."""


class _ReadBuffer(threading.local):
    """Where a socket read lands: one per event-loop thread, shared by its connections, since each
    read is copied out (into the bytes the HTTP parser gets) before the loop does anything else."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_SIZE))


_READ_BUFFER = _ReadBuffer()


class S3RequestHandler(RequestHandler):
    """One client connection; as aiohttp's, with S3 errors where aiohttp would answer in text."""

    def __init__(self, manager: web.Server, app: web.Application, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._app = app

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response went out already (the application logged why): only a cut is left.
            raise ConnectionError("the response had started; the connection is cut")
        if isinstance(exc, HttpProcessingError):
            error = self._parser_error(exc)
            rid = secrets.token_hex(8).upper()
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
            _log.log(level, "request %s refused by the HTTP parser: %s (%s)", rid, error.code, _first_line(exc))
            body = error.to_xml(rid)
            self._record(rid, error.status, len(body))
        else:
            # The application answers its own failures; this is one it did not catch (a bug).
            error = S3Error("InternalError", "We encountered an internal error. Please try again.")
            rid = request_id(request) if isinstance(request, web.Request) else secrets.token_hex(8).upper()
            _log.error("request %s failed outside the application: %r", rid, exc, exc_info=exc)
            body = error.to_xml(rid)
        response = web.Response(
            status=error.status,
            body=body,
            content_type="application/xml",
            headers={"x-amz-request-id": rid, "x-amz-id-2": rid, "Server": SERVER},
        )
        response.force_close()  # what follows on this connection cannot be trusted to be a request
        return response

    def _parser_error(self, exc: HttpProcessingError) -> S3Error:
        if isinstance(exc, LineTooLong) or _TOO_MANY_HEADERS in str(exc.message):
            return header_section_too_large(self._app[CONFIG].limits.max_header_bytes)
        return bad_request()

    def _record(self, rid: str, status: int, bytes_out: int) -> None:
        """The access log line and metrics of a request that never reached the application."""
        metrics = self._app[METRICS]
        if metrics is not None:
            metrics.observe_request(PARSER_OPERATION, status, 0.0, 0, bytes_out, None)
        self._app[ACCESS_LOG].write(
            request_id=rid,
            principal=None,
            op=PARSER_OPERATION,
            bucket=None,
            key=None,
            status=status,
            bytes_in=0,
            bytes_out=bytes_out,
            duration=0.0,
            codec=None,
            ratio=None,
        )


def _first_line(exc: HttpProcessingError) -> str:
    """The parser's reason without the echoed request bytes (which may be long, or anything)."""
    return str(exc.message).split(":", 1)[0].splitlines()[0][:200] if exc.message else type(exc).__name__


class LargeReads(asyncio.BufferedProtocol):
    """A connection's protocol for the event loop: reads up to READ_SIZE at once, for ``handler``.

    Every piece of a request body costs the event loop the same Python work whatever its size (the
    parser's callback, the body reader's wake-up, the digests' calls, hand-overs of the GIL), and
    uvloop reads at most 256 KB at a time into a plain protocol. A buffered protocol says where to
    read and how much; uvloop uses that only for one that is not an ``asyncio.Protocol``, which
    aiohttp's handler is, so this stands in front of it. The bytes are copied once, as uvloop does
    for a plain protocol. Over TLS nothing changes: the TLS layer decrypts what one 256 KiB read of
    ciphertext brought.
    """

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER.view

    def buffer_updated(self, nbytes: int) -> None:
        self.handler.data_received(bytes(_READ_BUFFER.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """For a transport that does not read into buffers."""
        self.handler.data_received(data)
