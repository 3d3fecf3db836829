"""Connections read up to READ_SIZE at once, through LargeReads in front of aiohttp's handler."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from s4.server.protocol import READ_SIZE, LargeReads

UVLOOP_READ = 256 * 1024
"""The most one read of uvloop's gives a plain protocol (its buffer is 256,000 bytes)."""


class _Handler:
    """Records what a connection handler is told."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.events: list[str] = []
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.pieces.append(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.closed.set_result(None)


async def _received(body: bytes) -> _Handler:
    """A server with LargeReads in front of a recording handler, sent ``body`` at once by a client."""
    handler = _Handler()
    server = await asyncio.get_running_loop().create_server(lambda: LargeReads(handler), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def send() -> None:
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
            loop.call_soon_threadsafe(started.set)
            client.sendall(body)
            client.shutdown(socket.SHUT_WR)
            client.recv(1)  # until the server closes

    # The client sends faster than the loop takes the pieces, so more than 256 KB waits in the socket.
    sender = threading.Thread(target=send)
    sender.start()
    await started.wait()
    await asyncio.sleep(0.3)
    await asyncio.wait_for(handler.closed, 10)  # the client's EOF closes the connection
    server.close()
    await loop.run_in_executor(None, sender.join)
    return handler


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_read_takes_more_than_the_event_loops_own_reads_would(loop_name):
    """Fails with aiohttp's handler as the protocol: uvloop reads 256,000 bytes at most into it."""
    body = bytes(range(256)) * (64 * 1024)  # 16 MiB: many reads, some larger than 256 KB whatever the timing

    async def run() -> _Handler:
        return await _received(body)

    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        handler = uvloop.run(run())
    else:
        handler = asyncio.run(run())
    assert b"".join(handler.pieces) == body
    assert max(map(len, handler.pieces)) > UVLOOP_READ
    assert max(map(len, handler.pieces)) <= READ_SIZE
    assert handler.events == ["made", "eof", "lost"]
