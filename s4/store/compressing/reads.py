"""Reading stored bytes back from the inner store: metered, pinned to one object version, cut into frames."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from s4.codec import FrameStreamReader
from s4.store.base import ByteRange, ObjectInfo, ObjectStore, ObjectStream, StoreError
from s4.store.stats import StoreStats


class VersionChanged(Exception):
    """The object was replaced between the HEAD a read was planned from and the read: plan again.

    Never reaches a client: the compressing store starts the read over, and in the end falls
    back to one GET, which is always a single version."""


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

    async def pinned(self, bucket: str, key: str, head: ObjectInfo, byte_range: ByteRange | None) -> ObjectStream:
        """A read of the very object version the HEAD described, pinned by its ETag (If-Match).

        VersionChanged when the object has been replaced since: the caller starts over from a new
        HEAD. Never another version's bytes: a reader that mixed the HEAD's layout (sizes,
        manifest, frame index) with them would serve a mix of two versions.
        """
        try:
            stream = await self.inner.get_object(bucket, key, byte_range, if_match=head.etag, **_version_of(head))
        except StoreError as exc:
            # A range planned from the HEAD's version fits that version: refused, it met another one.
            if exc.code in ("PreconditionFailed", "InvalidRange", "NoSuchVersion"):
                raise VersionChanged() from None
            raise
        if stream.info.etag != head.etag:  # an inner store that ignored If-Match
            await stream.aclose()
            raise VersionChanged()
        return stream

    async def same_version(
        self, bucket: str, key: str, head: ObjectInfo, byte_range: ByteRange | None
    ) -> ObjectStream | None:
        """As ``pinned``, with None for an object replaced since the HEAD."""
        try:
            return await self.pinned(bucket, key, head, byte_range)
        except VersionChanged:
            return None


def _version_of(head: ObjectInfo) -> dict[str, str]:
    """The version a read is pinned to besides its ETag: the HEAD's, on a bucket that has versions (an
    old version's ETag may well be the current one's too)."""
    return {} if head.version_id is None else {"version_id": head.version_id}


async def read_all(body: AsyncIterable[bytes], limit: int) -> bytes:
    """A small stored object (sidecar, dictionary) in memory, refused past ``limit`` bytes."""
    out = bytearray()
    async for chunk in body:
        out += chunk
        if len(out) > limit:
            raise StoreError("InternalError", f"object larger than the {limit}-byte limit for this read")
    return bytes(out)
