"""The inner store as the compressing store writes to it, every write and delete measured for the ledger.

Every byte the gateway keeps passes here (a PUT's frames, a Complete's assembled object, a copy,
sidecars, staged parts, dictionaries) and so does every removal (DELETE, an overwrite, a purge of a
sidecar's versions, a Complete's cleanup of its staging). A change is measured as what the inner
store holds after it minus what it held before: the object a write replaces, or a delete removes, is
looked at first (a HEAD; its manifest gives the original size), by the bucket's versioning:

- never versioned: a write replaces, and a delete removes, the key's current object;
- Enabled: a write replaces nothing (a new version), a delete without a version id only adds a
  delete marker (not counted), a delete of a version id removes that version;
- Suspended: a write replaces the null version, and so does a delete without a version id.

Limit: the HEAD and the write are two requests, so two gateways overwriting the *same* key at the
same instant can both subtract the object they both saw replaced; writes of different keys, by any
number of gateways, are exact (each writer's record is its own, see s4.store.compressing.ledger).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from s4.store.base import NULL_VERSION, ObjectInfo, ObjectStore, StoreError
from s4.store.compressing.ledger import Ledger, LedgerTotals, classify, totals_of

_MISSING = ("NoSuchKey", "NoSuchVersion", "NotFound", "MethodNotAllowed", "InvalidArgument", "NoSuchBucket")


class MeteredStore:
    """``inner`` with the ledger's deltas recorded for each change (see the module docstring)."""

    def __init__(self, inner: ObjectStore, ledger: Ledger) -> None:
        self.inner = inner
        self.ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _head(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo | None:
        try:
            if version_id is None:
                info = await self.inner.head_object(bucket, key)
            else:
                info = await self.inner.head_object(bucket, key, version_id=version_id)
        except StoreError as exc:
            if exc.code in _MISSING:
                return None
            raise
        return None if info.delete_marker else info

    async def _replaced(self, bucket: str, key: str) -> ObjectInfo | None:
        """What a write of ``key`` replaces (None: nothing, a new version)."""
        status = await self.inner.get_bucket_versioning(bucket)
        if status == "Enabled":
            return None
        return await self._head(bucket, key, NULL_VERSION if status == "Suspended" else None)

    def _change(self, bucket: str, kind: str, before: ObjectInfo | None, after: ObjectInfo | None) -> None:
        delta = LedgerTotals()
        if after is not None:
            delta.add(totals_of(kind, after))
        if before is not None:
            delta.add(totals_of(kind, before), -1)
        self.ledger.record(bucket, delta)

    async def _written(self, bucket: str, key: str, info: ObjectInfo) -> ObjectInfo:
        """The written object with its metadata (a copy's or a Complete's answer may carry none)."""
        if info.attributes.metadata:
            return info
        return await self._head(bucket, key, info.version_id) or info

    async def put_object(self, bucket: str, key: str, body: Any, attributes: Any, *args: Any, **kwargs: Any) -> Any:
        kind = classify(key)
        if kind is None:
            return await self.inner.put_object(bucket, key, body, attributes, *args, **kwargs)
        before = await self._replaced(bucket, key)
        info = await self.inner.put_object(bucket, key, body, attributes, *args, **kwargs)
        after = info
        if kind == "data" and not info.attributes.metadata:
            # The metadata handed over is complete once the body has ended (the manifest goes in last).
            after = _with_metadata(info, attributes.metadata)
        self._change(bucket, kind, before, after)
        return info

    async def copy_object(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *args: Any, **kwargs: Any
    ) -> Any:
        kind = classify(dst_key)
        if kind is None:
            return await self.inner.copy_object(src_bucket, src_key, dst_bucket, dst_key, *args, **kwargs)
        before = await self._replaced(dst_bucket, dst_key)
        info = await self.inner.copy_object(src_bucket, src_key, dst_bucket, dst_key, *args, **kwargs)
        self._change(dst_bucket, kind, before, await self._written(dst_bucket, dst_key, info))
        return info

    async def complete_multipart_upload(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        kind = classify(key)
        if kind is None:
            return await self.inner.complete_multipart_upload(bucket, key, *args, **kwargs)
        before = await self._replaced(bucket, key)
        info = await self.inner.complete_multipart_upload(bucket, key, *args, **kwargs)
        self._change(bucket, kind, before, await self._written(bucket, key, info))
        return info

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> Any:
        kind = classify(key)
        call = {} if version_id is None else {"version_id": version_id}
        if kind is None:
            return await self.inner.delete_object(bucket, key, **call)
        if version_id is not None:
            before = await self._head(bucket, key, version_id)
        else:
            before = await self._replaced(bucket, key)
        result = await self.inner.delete_object(bucket, key, **call)
        self._change(bucket, kind, before, None)
        return result

    async def delete_bucket(self, bucket: str) -> None:
        await self.inner.delete_bucket(bucket)
        self.ledger.forget(bucket)


def _with_metadata(info: ObjectInfo, metadata: Mapping[str, str]) -> ObjectInfo:
    return dataclasses.replace(info, attributes=dataclasses.replace(info.attributes, metadata=dict(metadata)))
