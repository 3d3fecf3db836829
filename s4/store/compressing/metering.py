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
import time
from collections.abc import Mapping
from typing import Any

from s4.store.base import NULL_VERSION, ByteRange, DeleteResult, ObjectInfo, ObjectStore, StoreError
from s4.store.compressing.ledger import Ledger, LedgerTotals, classify, totals_of

VERSIONING_TTL = 5.0
"""Seconds a bucket's versioning status is taken as known (forgotten at once when this process changes
it). Another gateway's change is seen within this; S3 itself asks to wait 15 minutes after enabling
versioning before writing, as its own change takes that long to be seen everywhere."""
_MISSING = ("NoSuchKey", "NoSuchVersion", "NotFound", "MethodNotAllowed", "InvalidArgument", "NoSuchBucket")


class MeteredStore:
    """``inner`` with the ledger's deltas recorded for each change (see the module docstring)."""

    def __init__(self, inner: ObjectStore, ledger: Ledger) -> None:
        self.inner = inner
        self.ledger = ledger
        self._versioning: dict[str, tuple[str | None, float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _head(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo | None:
        try:
            if version_id is None:
                info = await self._peek(bucket, key)
            else:
                info = await self.inner.head_object(bucket, key, version_id=version_id)
        except StoreError as exc:
            if exc.code in _MISSING:
                return None
            raise
        return None if info.delete_marker else info

    async def _peek(self, bucket: str, key: str) -> ObjectInfo:
        """The current object's description, by a GET of its first byte rather than a HEAD: a HEAD that
        finds nothing has no body to tell a missing key from a missing bucket, so the upstream store
        asks again (HeadBucket), while a GET's error says which. An empty object has no first byte."""
        try:
            stream = await self.inner.get_object(bucket, key, ByteRange(0, 0))
        except StoreError as exc:
            if exc.code != "InvalidRange":
                raise
            return await self.inner.head_object(bucket, key)
        await stream.aclose()
        return stream.info

    async def _replaced(self, bucket: str, key: str) -> ObjectInfo | None:
        """What a write of ``key`` replaces (None: nothing, a new version)."""
        status = await self._status(bucket)
        if status == "Enabled":
            return None
        return await self._head(bucket, key, NULL_VERSION if status == "Suspended" else None)

    async def _status(self, bucket: str) -> str | None:
        """The bucket's versioning, asked of the inner store at most once every VERSIONING_TTL seconds: a
        write would otherwise cost two requests more (the object's and its sidecar's) over an upstream."""
        known = self._versioning.get(bucket)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        status = await self.inner.get_bucket_versioning(bucket)
        self._versioning[bucket] = (status, time.monotonic() + VERSIONING_TTL)
        return status

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        self._versioning.pop(bucket, None)
        try:
            await self.inner.put_bucket_versioning(bucket, status)
        finally:
            self._versioning.pop(bucket, None)

    async def create_bucket(self, bucket: str) -> None:
        self._versioning.pop(bucket, None)
        await self.inner.create_bucket(bucket)

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
            if before is None and kind != "data" and self._versioning.get(bucket, (None,))[0] is None:
                # The gateway's own object (a stale sidecar looked for after every PUT) is not there, in
                # a bucket without versions: the delete would change nothing.
                return DeleteResult()
        result = await self.inner.delete_object(bucket, key, **call)
        self._change(bucket, kind, before, None)
        return result

    async def delete_bucket(self, bucket: str) -> None:
        await self.inner.delete_bucket(bucket)
        self.ledger.forget(bucket)
        self._versioning.pop(bucket, None)


def _with_metadata(info: ObjectInfo, metadata: Mapping[str, str]) -> ObjectInfo:
    return dataclasses.replace(info, attributes=dataclasses.replace(info.attributes, metadata=dict(metadata)))
