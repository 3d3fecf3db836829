"""Async framing and unframing of whole bodies through a codec pool.

The store layer streams bodies; these helpers turn a stream of original bytes into a
stream of S4F2 records (and back), keeping a bounded number of frames in the pool at
once and delivering results in order. Pure asyncio: no HTTP, no metrics.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from s4.codec.body import FramedBodyWriter, ManifestTotals
from s4.codec.errors import CodecError
from s4.codec.format.crc import crc32c
from s4.codec.format.frame import FrameStreamReader
from s4.codec.format.kinds import CodecKind
from s4.codec.format.manifest import ChunkManifest
from s4.codec.frame_codec import EncodedFrame
from s4.codec.pool import CpuCodecPool

T = TypeVar("T")
R = TypeVar("R")
MAX_UNFRAMED_PAYLOAD = 5 * 1024**3


async def ordered_map(fn: Callable[[T], Awaitable[R]], items: AsyncIterable[T], ahead: int) -> AsyncIterator[R]:
    """``fn`` over ``items`` with up to ``ahead`` calls running, results in input order.

    The bound is what keeps memory flat: at most ``ahead`` inputs and outputs are alive.
    """
    pending: collections.deque[asyncio.Future[R]] = collections.deque()
    try:
        async for item in items:
            pending.append(asyncio.ensure_future(fn(item)))
            if len(pending) >= ahead:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def rechunk(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Exactly ``size``-byte pieces (the last one shorter) from chunks of any size.

    Each byte is copied once: the chunks of a piece are held as views and joined when it is
    complete (a chunk that is a whole piece by itself is passed on as it is). Gathering them in
    a growing buffer first copied every byte twice, into fresh memory each time, which cost a
    PUT more CPU than its CRCs.
    """
    held: list[memoryview] = []
    held_size = 0
    async for chunk in chunks:
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)  # a view of a buffer its producer might reuse would change under us
        if not held and len(chunk) == size:
            yield chunk
            continue
        view = memoryview(chunk)
        while held_size + len(view) >= size:
            take = size - held_size
            held.append(view[:take])
            view = view[take:]
            piece = b"".join(held)
            held, held_size = [], 0
            yield piece
        if view:
            held.append(view)
            held_size += len(view)
    if held:
        yield b"".join(held)


class OriginalDigest:
    """MD5 (the logical ETag) of the original bytes, hashed off the event loop, in order."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()

    async def update(self, data: bytes) -> None:
        if len(data) >= 64 * 1024:
            await asyncio.to_thread(self._md5.update, data)
        else:
            self._md5.update(data)

    def hexdigest(self) -> str:
        return self._md5.hexdigest()


async def encode_frames(
    frames: AsyncIterable[bytes],
    pick: Callable[[bytes], CodecKind],
    pool: CpuCodecPool,
    writer: FramedBodyWriter,
    digest: OriginalDigest,
) -> AsyncIterator[bytes]:
    """S4F2 records for ``frames``; ``pick`` names each frame's codec, the writer keeps the books."""

    async def hashed() -> AsyncIterator[bytes]:
        async for frame in frames:
            await digest.update(frame)
            yield frame

    async def encode(frame: bytes) -> EncodedFrame:
        return await pool.encode_frame(pick(frame), frame)

    async for encoded in ordered_map(encode, hashed(), pool.max_in_flight):
        header, payload = writer.append(encoded)
        yield header
        yield payload


async def decode_frames(
    chunks: AsyncIterable[bytes],
    pool: CpuCodecPool,
    stream_length: int | None,
) -> AsyncIterator[tuple[int, int, bytes]]:
    """``(original_offset, crc32c, original bytes)`` of every frame, decoded ahead in the pool and verified."""
    reader = FrameStreamReader(stream_length=stream_length)

    async def frames() -> AsyncIterator:
        async for chunk in chunks:
            for frame in reader.feed(chunk):
                yield frame
        reader.finish()

    async def decode(frame) -> tuple[int, bytes]:
        return frame.header.crc32c, await pool.decode_frame(frame.header, frame.payload)

    offset = 0
    async for crc, data in ordered_map(decode, frames(), pool.max_in_flight):
        yield offset, crc, data
        offset += len(data)


async def decode_body_stream(
    chunks: AsyncIterable[bytes], manifest: ChunkManifest | None, pool: CpuCodecPool
) -> AsyncIterator[bytes]:
    """The original bytes of a whole stored body; CodecError before anything unverified is yielded.

    Totals (size, whole-object CRC32C) are checked before the last piece is released:
    frames that are each intact but out of order, missing or duplicated fail the
    whole-object CRC, and the body then stops short of its full length instead of
    looking complete.
    """
    if manifest is None:
        async for chunk in chunks:
            yield chunk
        return
    totals = ManifestTotals(manifest)
    held: bytes | None = None
    async for data, crc in _verified_pieces(chunks, manifest, pool):
        totals.add(len(data), crc)
        if held is not None:
            yield held
        held = data
    totals.check()
    if held is not None:
        yield held


async def _verified_pieces(
    chunks: AsyncIterable[bytes], manifest: ChunkManifest, pool: CpuCodecPool
) -> AsyncIterator[tuple[bytes, int]]:
    """``(original bytes, their CRC32C)`` of a managed body: frames (each already CRC-checked), raw
    passthrough chunks, or the one decoded payload of an unframed body."""
    if manifest.framed:
        async for _, crc, data in decode_frames(chunks, pool, manifest.compressed_size):
            yield data, crc
    elif manifest.codec is CodecKind.PASSTHROUGH:
        async for chunk in chunks:
            if chunk:
                yield chunk, crc32c(chunk)
    else:
        payload = bytearray()
        limit = manifest.compressed_size if manifest.compressed_size is not None else MAX_UNFRAMED_PAYLOAD
        async for chunk in chunks:
            payload += chunk
            if len(payload) > limit:
                raise CodecError.corrupt(f"unframed body is longer than {limit} bytes")
        data = await pool.decompress(manifest.codec, bytes(payload), manifest.original_size)
        yield data, crc32c(data)
