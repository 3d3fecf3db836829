"""Deletes of the gateway's own objects that leave nothing behind, on versioned buckets too.

On a bucket with versioning, an inner DeleteObject without a version id only adds a delete
marker: the sidecar, staged part or record it was meant to remove stays, billed, as a
noncurrent version (and would keep the bucket from being deleted). What the gateway writes for
itself is removed for good instead: every version of the key, by id.
"""

from __future__ import annotations

from typing import Any

from s4.store.base import DeleteResult, ObjectStore, StoreError

VERSIONS_PAGE = 1000


async def purge(inner: ObjectStore, bucket: str, key: str) -> DeleteResult:
    """Delete ``key`` and, where that only made a delete marker, every version of it (the marker too)."""
    result = await inner.delete_object(bucket, key)
    if result is not None and result.delete_marker:
        await purge_versions(inner, bucket, key)
    return result if result is not None else DeleteResult()


async def purge_versions(inner: ObjectStore, bucket: str, key: str) -> None:
    """Delete every version and delete marker of exactly ``key``, by id."""
    key_marker: str | None = None
    version_marker: str | None = None
    while True:
        page = await inner.list_object_versions(bucket, key, None, key_marker, version_marker, VERSIONS_PAGE)
        for version in page.versions:
            if version.key == key and version.version_id is not None:
                try:
                    await inner.delete_object(bucket, key, version_id=version.version_id)
                except StoreError as exc:
                    if exc.code not in ("NoSuchKey", "NoSuchVersion"):
                        raise
        if not page.is_truncated or page.next_key_marker is None or page.next_key_marker > key:
            return
        key_marker, version_marker = page.next_key_marker, page.next_version_id_marker


class PurgingStore:
    """The inner store as the gateway's own bookkeeping uses it: a delete without a version id
    purges every version of the key (see ``purge``); everything else is the inner store's."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> DeleteResult:
        if version_id is not None:
            return await self.inner.delete_object(bucket, key, version_id=version_id)
        return await purge(self.inner, bucket, key)
