"""Reading stored bytes back from the inner store: metered, pinned to one object version, cut into frames."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from s4.codec import FrameStreamReader
from s4.store.base import ByteRange, ObjectInfo, ObjectStore, ObjectStream, StoreError
from s4.store.stats import StoreStats


class InnerReads:
    """The reads the compressing store and its staging share; every byte read is counted in ``stats``."""

    def __init__(self, inner: ObjectStore, stats: StoreStats) -> None:
        self.inner = inner
        self.stats = stats

    async def metered(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.stats.backend_bytes_read += len(chunk)
            yield chunk

    async def frames(self, chunks: AsyncIterable[bytes], length: int | None) -> AsyncIterator:
        """The S4F2 frames of a stored stream (FrameStreamReader checks them; nothing is decoded)."""
        reader = FrameStreamReader(stream_length=length)
        async for chunk in self.metered(chunks):
            for frame in reader.feed(chunk):
                yield frame
        reader.finish()

    async def same_version(
        self, bucket: str, key: str, head: ObjectInfo, byte_range: ByteRange | None, strict: bool = True
    ) -> ObjectStream | None:
        """A read of the same object version the HEAD described; a changed object is a conflict
        (``strict``) or None."""
        stream = await self.inner.get_object(bucket, key, byte_range)
        if stream.info.etag != head.etag:
            await stream.aclose()
            if not strict:
                return None
            raise StoreError("InternalError", "The object changed while it was being read; retry the request")
        return stream


async def read_all(body: AsyncIterable[bytes], limit: int) -> bytes:
    """A small stored object (sidecar, dictionary) in memory, refused past ``limit`` bytes."""
    out = bytearray()
    async for chunk in body:
        out += chunk
        if len(out) > limit:
            raise StoreError("InternalError", f"object larger than the {limit}-byte limit for this read")
    return bytes(out)

