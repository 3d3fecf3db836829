"""Small ways of going through a store that the wrappers over it share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from s4.store.base import ObjectInfo, ObjectStore, StoreError


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    """A body of bytes already in memory (sidecars, records)."""
    yield data


async def walk(store: ObjectStore, bucket: str, prefix: str = "") -> AsyncIterator[ObjectInfo]:
    """Every object under ``prefix``, page after page, in key order."""
    after = None
    while True:
        page = await store.list_objects(bucket, prefix, None, after, 1000)
        for obj in page.objects:
            yield obj
        if not page.is_truncated or page.next_marker is None:
            return
        after = page.next_marker


async def with_metadata(store: ObjectStore, bucket: str, listed: ObjectInfo) -> ObjectInfo:
    """A listed object with its metadata: S3 listings carry none, so those need a HEAD."""
    if getattr(store, "listing_includes_metadata", False):
        return listed
    return await store.head_object(bucket, listed.key)


async def still_there_with_metadata(store: ObjectStore, bucket: str, listed: ObjectInfo) -> ObjectInfo | None:
    """:func:`with_metadata`, or None when the listed object was deleted between the listing and the HEAD.

    A listing and the HEADs after it are not one snapshot: a concurrent abort, delete or sweep
    removes what was just listed, and whoever lists must then leave it out, as S3's own listing
    would have a moment later, instead of failing the whole answer with NoSuchKey.
    """
    try:
        return await with_metadata(store, bucket, listed)
    except StoreError as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
