"""``<key>.s4index`` sidecars: read (only when bound to this very object version), written, rebuilt.

On a versioned bucket every version keeps its own: the null version (and every object of a
bucket never versioned) ``<key>.s4index``, a version with an id ``<key>.s4v.<id>.s4index``, so a
ranged read of an old version fetches only its frames. Such a sidecar goes when its version is
deleted for good; it is written and removed through a store that purges every version of it
(s4.store.compressing.purge), so sidecars never pile up as versions of their own.

A sidecar goes in after its object (the object is the commit point) and is trusted only
while its ETag and size match the object's, so a stale or foreign one is never used;
without a usable one, a ranged read walks the frame headers instead.

So a sidecar is an optimisation, never part of a write's outcome: one that cannot be
written (a key too long for ``<key>.s4index``, a full disk, an upstream that refuses it)
is logged and left out, and the write it belongs to still succeeds. Nothing here raises
for a sidecar that could not be written or removed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from s4.codec import CodecError, FramedBodyWriter, FrameIndex, IndexEntry
from s4.store.base import NULL_VERSION, ObjectAttributes, ObjectInfo, StoreError
from s4.store.compressing.reads import InnerReads, read_all
from s4.store.compressing.reserved import SIDECAR_SUFFIX
from s4.store.walk import single_chunk

_log = logging.getLogger(__name__)
MAX_SIDECAR_BYTES = 64 * 1024 * 1024
SIDECAR_CACHE_SIZE = 256
MAX_KEY_BYTES = 1024
"""S3's longest key: a key within 8 bytes of it has no room for the ``.s4index`` suffix."""


VERSION_INFIX = ".s4v."


def sidecar_key(key: str, version_id: str | None = None) -> str | None:
    """The sidecar's name beside ``key`` (of its version ``version_id``); None where that name would be
    longer than any key S3 allows."""
    if version_id is None or version_id == NULL_VERSION:
        sidecar = key + SIDECAR_SUFFIX
    else:
        sidecar = key + VERSION_INFIX + version_id + SIDECAR_SUFFIX
    return sidecar if len(sidecar.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES else None


def sidecar_owner(sidecar: str) -> tuple[str, str | None]:
    """The key and version (None: the null or only one) a sidecar's name says it belongs to."""
    name = sidecar[: -len(SIDECAR_SUFFIX)]
    key, infix, version_id = name.rpartition(VERSION_INFIX)
    if infix and key and version_id and "/" not in version_id:
        return key, version_id
    return name, None


class Sidecars:
    """The frame indexes of one inner store, parsed ones cached by the object version they describe."""

    def __init__(self, reads: InnerReads) -> None:
        self.reads = reads
        self.inner = reads.inner
        self._cache: OrderedDict[tuple[str, str, str | None, str, int], FrameIndex] = OrderedDict()

    async def read(self, bucket: str, key: str, head: ObjectInfo) -> FrameIndex | None:
        """The sidecar, only if it describes exactly this version of the object.

        A reader doing many Range GETs on one big object reads its index once.
        """
        cache_key = (bucket, key, head.version_id, head.etag, head.size)
        cached = self._cache.get(cache_key)
        if cached is not None:
            self._cache.move_to_end(cache_key)
            return cached
        sidecar = sidecar_key(key, head.version_id)
        if sidecar is None:
            return None
        try:
            stream = await self.inner.get_object(bucket, sidecar)
        except StoreError:
            return None
        try:
            data = await read_all(self.reads.metered(stream.body), MAX_SIDECAR_BYTES)
        except StoreError:
            return None
        finally:
            await stream.aclose()
        try:
            index = FrameIndex.decode(data)
        except CodecError:
            _log.warning("unparsable sidecar for %s/%s ignored", bucket, key)
            return None
        if not index.matches(head.etag, head.size):
            return None
        self._cache[cache_key] = index
        while len(self._cache) > SIDECAR_CACHE_SIZE:
            self._cache.popitem(last=False)
        return index

    async def write(self, bucket: str, key: str, writer: FramedBodyWriter | None, stored: ObjectInfo) -> bool:
        """The index of what ``writer`` wrote as ``stored``; a single-frame or raw object gets none
        (and loses a stale one). False when the object is left without the sidecar it should have.

        A write known to have replaced nothing (``stored.replaced`` empty) has no stale one to remove: no
        request is made for it. (A sidecar left by a delete that could not remove it would stay beside the
        new object; bound to the old object's ETag, it is never used.)"""
        if writer is None or writer.frame_count <= 1:
            if stored.replaced != ():
                await self.remove_stale(bucket, key, stored.version_id)
            return True
        index = writer.index(stored.etag)
        if index.source_compressed_size != stored.size:
            _log.warning("stored size of %s/%s differs from what was written; no sidecar", bucket, key)
            await self.remove(bucket, key, stored.version_id)
            return False
        return await self.put(bucket, key, index, stored.version_id)

    async def remove_stale(self, bucket: str, key: str, version_id: str | None) -> None:
        """Remove the sidecar a new version without one might find under its name: only the null
        version's name is ever reused (a version with an id is new, and so is its sidecar's name)."""
        if version_id is None or version_id == NULL_VERSION:
            await self.remove(bucket, key, version_id)

    async def put(self, bucket: str, key: str, index: FrameIndex, version_id: str | None = None) -> bool:
        """Store ``index`` beside ``key``; False (logged, never raised) when it could not be.

        One the inner store refused or kept short leaves no sidecar behind: a short one would be
        refused on every Range GET forever, and an older one describes another version, while
        no sidecar costs one scan of the frame headers.
        """
        sidecar = sidecar_key(key, version_id)
        if sidecar is None:
            _log.info("%s/%s: key too long for a %s sidecar; ranged reads walk its frames", bucket, key, SIDECAR_SUFFIX)
            return False
        encoded = index.encode()
        try:
            stored = await self.inner.put_object(bucket, sidecar, single_chunk(encoded), ObjectAttributes())
        except Exception as exc:  # whatever the cause, the object itself is stored
            _log.warning("could not write the sidecar of %s/%s (%s); ranged reads walk its frames", bucket, key, exc)
            await self.remove(bucket, key, version_id)
            return False
        if stored.size != len(encoded):
            _log.warning(
                "the inner store kept %d of %d bytes of %s/%s; removed", stored.size, len(encoded), bucket, sidecar
            )
            await self.remove(bucket, key, version_id)
            return False
        return True

    async def remove(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Remove the sidecar of ``key`` (of its version ``version_id``) if there is one; a failure is
        logged, never raised (an orphan sidecar is never trusted: it is bound to an object version that
        no longer exists)."""
        sidecar = sidecar_key(key, version_id)
        if sidecar is None:
            return
        try:
            await self.inner.delete_object(bucket, sidecar)
        except StoreError as exc:
            if exc.code not in ("NoSuchKey", "NoSuchBucket"):
                _log.warning("could not remove the sidecar %s/%s: %s", bucket, sidecar, exc)
        except Exception as exc:  # a leftover sidecar is harmless, a failed write is not
            _log.warning("could not remove the sidecar %s/%s: %r", bucket, sidecar, exc)

    async def copy(
        self, src_bucket: str, src_key: str, source: ObjectInfo, dst_bucket: str, dst_key: str, copied: ObjectInfo
    ) -> bool:
        """The source's index, bound to the copy (whose ETag differs); rebuilt from the copy's frames
        when the source has no usable one. False (never raised) when the copy is left without one."""
        try:
            index = await self.read(src_bucket, src_key, source)
            if index is None:
                index = await self.by_walking(dst_bucket, dst_key, copied)
        except Exception as exc:  # the copy is done; its ranged reads walk its frames
            _log.warning("could not index the copy %s/%s (%s); no sidecar", dst_bucket, dst_key, exc)
            index = None
        if index is None or len(index.entries) <= 1:
            await self.remove_stale(dst_bucket, dst_key, copied.version_id)
            return index is not None
        index = FrameIndex.from_entries(index.entries, copied.size, copied.etag)
        return await self.put(dst_bucket, dst_key, index, copied.version_id)

    async def by_walking(self, bucket: str, key: str, info: ObjectInfo) -> FrameIndex | None:
        """Rebuild frame positions by reading the stored stream (nothing is decoded); None if the
        object changed meanwhile."""
        stream = await self.reads.same_version(bucket, key, info, None)
        if stream is None:
            return None
        entries = []
        original = 0
        try:
            async for frame in self.reads.frames(stream.body, info.size):
                entries.append(IndexEntry(original, frame.header.original_size, frame.offset, frame.header.record_size))
                original += frame.header.original_size
        finally:
            await stream.aclose()
        return FrameIndex.from_entries(entries, info.size, info.etag)
