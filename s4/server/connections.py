"""A listening site that holds at most ``max_connections`` client connections.

aiohttp accepts every connection the kernel hands it, and each one costs a file descriptor,
buffers and a protocol object until its keep-alive timeout; a client (or many) opening
connections faster than they close them would run the process out of descriptors and take
every other client down with it. Past the bound, a new connection is answered at once with
the S3 error SDKs already back off on (503 SlowDown, as XML with a request id) and closed,
without reaching the application: no request of it is parsed or authenticated.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import typing
from collections.abc import Callable

from aiohttp import web

from s4.server.limits import slow_down

_log = logging.getLogger("s4.server")
LINGER = 2.0
"""Seconds a refused connection stays open for the client to read the answer: closing with its
request still unread would make the kernel reset the connection and drop the answer with it."""


def refusal_bytes() -> bytes:
    """The whole HTTP response of a refused connection."""
    request_id = secrets.token_hex(8).upper()
    body = slow_down().to_xml(request_id)
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amz-request-id: {request_id}\r\n"
        f"x-amz-id-2: {request_id}\r\n"
        "Server: S4\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Refusal(asyncio.Protocol):
    """Says SlowDown, reads and drops whatever the client sends, closes after LINGER or its EOF."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, which uvloop's is too without deriving from asyncio.WriteTransport.
        transport = typing.cast(asyncio.WriteTransport, transport)
        self._transport = transport
        transport.write(refusal_bytes())
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the answer does not depend on the request

    def eof_received(self) -> bool:
        self._transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()


HandlerFactory = Callable[[web.Server], asyncio.BaseProtocol]
"""Makes the protocol of one admitted connection; by default the server's own (``web.Server()``)."""


class CappedTCPSite(web.BaseSite):
    """``web.TCPSite`` with a bound on open connections (keep-alive ones included)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        max_connections: int,
        ssl_context: object | None = None,
        handler_factory: HandlerFactory | None = None,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port = host, port
        self._reuse_port = reuse_port
        """Share the port with the other workers' sockets (SO_REUSEPORT): the kernel spreads connections."""
        self.max_connections = max_connections
        self.refused = 0
        self._handler_factory = handler_factory

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one the kernel chose when asked for 0)."""
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def accept() -> asyncio.BaseProtocol:
            if len(server.connections) >= self.max_connections:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    _log.warning(
                        "%d connection(s) refused: max_connections (%d) reached", self.refused, self.max_connections
                    )
                return _Refusal()
            return self._handler_factory(server) if self._handler_factory is not None else server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            accept,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )
