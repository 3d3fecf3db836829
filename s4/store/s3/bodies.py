"""Bodies on their way to and from an upstream S3, in bounded memory.

Going up: a client's body cut into parts (``BodyReader``) or spooled to a temporary file
(``spool``) goes as a ``BufferedBody``; a large part of declared length streams through as a
``StreamedBody``; both fail their request when the upstream stops taking them. Coming down:
the upstream's response body as the gateway's object body (``ResponseBody``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import IO, Any

from s4.store.base import StoreError

READ_CHUNK = 256 * 1024
SPOOL_BATCH = 1024 * 1024
HASH_IN_THREAD = 1024 * 1024
"""Digests of bodies above this size run in a thread (hashlib releases the GIL), off the event loop."""


async def content_md5(data: bytes) -> str:
    """Base64 MD5 for Content-MD5: the upstream then refuses bytes damaged on the way."""
    if len(data) > HASH_IN_THREAD:
        digest = await asyncio.to_thread(lambda: hashlib.md5(data).digest())
    else:
        digest = hashlib.md5(data).digest()
    return base64.b64encode(digest).decode()


class BodyReader:
    """Reads a client's body in pieces of a chosen size, holding no more than one piece."""

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self._source = aiter(body)
        self._pending = bytearray()
        self._ended = False

    async def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the body (b"" once it is over).

        An error of the body (a digest that did not check out) comes out of here, so no caller
        can mistake a failed body for a complete one.
        """
        while len(self._pending) < size and not self._ended:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                self._ended = True
                break
            self._pending += chunk
        piece = bytes(self._pending[:size])
        del self._pending[:size]
        return piece

    def unread(self, piece: bytes) -> None:
        self._pending[:0] = piece


class WatchedBody:
    """A request body that fails its request when the upstream stops taking it.

    aiohttp times out reading an answer, not writing a request: an upstream that stops
    reading would hold a PUT forever. So every body goes out through ``watch``: the deadline
    of the request is armed for the connection and headers, re-armed for ``stall`` seconds
    each time a chunk is handed over, and disarmed while waiting on the gateway's own client.
    """

    length: int
    error: BaseException | None = None
    """What the client's body raised, if anything: the real cause of the failed request."""

    def watch(self, deadline: asyncio.Timeout, start: float, stall: float) -> None:
        self._deadline = deadline
        self._start = start
        self._stall = stall

    def _arm(self, seconds: float | None) -> None:
        self._deadline.reschedule(None if seconds is None else asyncio.get_running_loop().time() + seconds)

    def read(self, size: int = -1) -> bytes:
        """Never called: present because botocore and its CRT signer only take bodies that have it
        (the payload is unsigned, so nothing reads it before the HTTP client streams it)."""
        raise io.UnsupportedOperation("an upload body is read by iterating over it")


class BufferedBody(WatchedBody):
    """Bytes or a spooled file: whole before the request starts, so a retry can send it again."""

    def __init__(self, data: bytes | IO[bytes], length: int | None = None) -> None:
        self._data = data
        self.length = len(data) if isinstance(data, bytes) else int(length or 0)

    def seek(self, offset: int, whence: int = 0) -> int:
        """botocore rewinds before a retry; every iteration starts from the beginning anyway."""
        return 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        self._arm(self._start)
        if isinstance(self._data, bytes):
            view = memoryview(self._data)
            for start in range(0, len(view), READ_CHUNK):
                self._arm(self._stall)
                yield view[start : start + READ_CHUNK]
        else:
            file = self._data
            await asyncio.to_thread(file.seek, 0)
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                self._arm(self._stall)
                yield chunk
        self._arm(self._stall)  # everything sent: the upstream answers within its read timeout


class StreamedBody(WatchedBody):
    """A client's body sent upstream as it arrives, under a Content-Length declared in advance.

    The last chunk is held back until the client's body has ended cleanly and its length
    matched: a body that fails at its end (or runs short or long) never reaches the upstream
    complete, so the upstream drops the request instead of storing it. It can be sent once.
    """

    def __init__(self, source: AsyncIterable[bytes], length: int) -> None:
        self._source = aiter(source)
        self.length = length
        self._held: bytes | None = None
        self._sent = 0
        self._done = False

    def seek(self, offset: int, whence: int = 0) -> int:
        """Refused: half a body cannot be sent again (this body goes through a client that never retries)."""
        raise io.UnsupportedOperation("a streamed body cannot be rewound")

    def __aiter__(self) -> StreamedBody:
        return self

    async def __anext__(self) -> bytes:
        self._arm(None)  # waiting on the gateway's client now, not on the upstream
        while not self._done:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                self._done = True
                break
            except BaseException as exc:
                self.error = exc
                raise
            if not chunk:
                continue
            if self._sent + len(chunk) > self.length:
                self.error = StoreError("IncompleteBody", "The body is longer than its declared length")
                raise self.error
            held, self._held = self._held, chunk
            self._sent += len(chunk)
            if held is not None:
                self._arm(self._stall)
                return held
        if self._sent != self.length:
            self.error = StoreError("IncompleteBody", "The body is shorter than its declared length")
            raise self.error
        self._arm(self._stall)
        if self._held is None:
            raise StopAsyncIteration
        held, self._held = self._held, None
        return held


@dataclasses.dataclass
class Spooled:
    file: IO[bytes]
    size: int
    md5: str
    """Base64, for Content-MD5."""

    def close(self) -> None:
        self.file.close()


async def spool(body: AsyncIterable[bytes], in_memory: int, limit: int) -> Spooled:
    """The whole body in a temporary file (in memory up to ``in_memory`` bytes), hashed on the way.

    For bodies of unknown length, which the upstream wants with a Content-Length; and a file
    can be sent again when the first attempt fails. Writes run in a thread: a disk write
    must not stall the event loop.
    """
    file = tempfile.SpooledTemporaryFile(max_size=in_memory)  # noqa: SIM115 - returned open, closed by the caller
    md5 = hashlib.md5()
    size = 0
    batch: list[bytes] = []
    batched = 0

    def write(chunks: list[bytes]) -> None:
        for chunk in chunks:
            md5.update(chunk)
            file.write(chunk)

    try:
        async for chunk in body:
            batch.append(chunk)
            batched += len(chunk)
            if size + batched > limit:
                raise StoreError("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size ({limit})")
            if batched >= SPOOL_BATCH:
                await asyncio.to_thread(write, batch)
                size, batch, batched = size + batched, [], 0
        if batch:
            await asyncio.to_thread(write, batch)
            size += batched
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return Spooled(file, size, base64.b64encode(md5.digest()).decode())


class ResponseBody:
    """The upstream's response body as the gateway's object body.

    ``skip``/``length`` cut a range out of a whole-object answer (an upstream that ignored
    the Range header). Closing releases the upstream connection whether or not the body was
    read; errors while reading become StoreErrors through ``translate``.
    """

    def __init__(
        self,
        stream: Any,
        translate: Callable[[BaseException], StoreError],
        skip: int = 0,
        length: int | None = None,
    ) -> None:
        self._stream = stream
        self._translate = translate
        self._skip = skip
        self._remaining = length
        self._closed = False

    def __aiter__(self) -> ResponseBody:
        return self

    async def __anext__(self) -> bytes:
        while not self._closed and self._remaining != 0:
            try:
                chunk = await self._stream.read(READ_CHUNK)
            except BaseException as exc:
                await self.aclose()
                if isinstance(exc, Exception):
                    raise self._translate(exc) from exc
                raise
            if not chunk:
                break
            if self._skip:
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if self._remaining is not None:
                chunk = chunk[: self._remaining]
                self._remaining -= len(chunk)
            if chunk:
                return chunk
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.close()
