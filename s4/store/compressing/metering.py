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

The embedded store says what each of its commits removed (``ObjectInfo.replaced``,
``DeleteResult.removed``, seen in the commit's own transaction): there nothing is looked at first,
and the ledger is exact with any number of processes.

Over an upstream the look and the commit are two requests, and another process (a worker, another
gateway) may change the key in between. So the upstream store commits under what the look saw (a
CommitGuard, see ``_LookBeforeCommit``: If-Match its ETag, If-None-Match when it saw nothing) and,
refused, looks again and commits again; the last look is then what the commit removed, with any
number of processes. Limits (README): a Suspended bucket's delete of a key with no current object,
and its changes of a key whose current version has an id, are committed without a condition; so is
a change refused 10 times, or refused three times in a row in a way the look does not explain (logged); and upstreams
that ignore the conditions, or do not check them atomically (SeaweedFS 4.48's deletes of one version
by its id, and its CompleteMultipartUpload), get no such guarantee.

For an inner store that neither reports nor takes guards (tests' wrappers), changes of the same key
that overlap in this process both look at the same object first; each is recorded against what the
change that finished before it left (``_KeyChanges``), not against what both saw, so the object is
subtracted once. Changes of different keys, by any number of processes, are exact (each writer's
record is its own, see s4.store.compressing.ledger).
``s4 savings --recount`` counts a bucket again from what it holds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from s4.codec.format.manifest import normalize_metadata
from s4.store.base import (
    NULL_VERSION,
    TRANSIENT_METADATA,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    ObjectStore,
    StoreError,
    WriteCondition,
)
from s4.store.compressing.ledger import Ledger, LedgerTotals, classify, totals_of

VERSIONING_TTL = 5.0
"""Seconds a bucket's versioning status is taken as known (forgotten at once when this process changes
it). Another gateway's change is seen within this; S3 itself asks to wait 15 minutes after enabling
versioning before writing, as its own change takes that long to be seen everywhere."""
_MISSING_KEY = ("NoSuchKey", "NoSuchVersion", "NotFound", "MethodNotAllowed", "InvalidArgument")
_MISSING = (*_MISSING_KEY, "NoSuchBucket")


@dataclasses.dataclass
class _KeyChanges:
    """The changes of one key in flight in this process, and what the last one to finish left."""

    in_flight: int = 0
    finished: int = 0
    left: ObjectInfo | None = None


class _LookBeforeCommit:
    """The CommitGuard of one change of a key over an upstream (see CommitGuard): each look remembers what
    the change would remove, so once the commit lands, ``seen`` is what it removed.

    What the commit is conditioned on, by the bucket's versioning (``status``):

    - never versioned: the key's object (If-Match its ETag), or its absence (If-None-Match: *, and a
      delete then sends nothing);
    - Suspended (a write or a delete replaces the null version, current or not): the current null
      version (If-Match); with no current object, a write needs none (If-None-Match: *), while a
      delete, which must still place its null delete marker, is sent without a condition (None), and
      so is a change over a current version with an id (see below);
    - a delete of a version by its id, in any bucket: that version (If-Match its ETag); gone, or a delete
      marker (no bytes, not counted), without a condition.
    """

    def __init__(
        self, store: MeteredStore, bucket: str, key: str, status: str | None, version_id: str | None, deleting: bool
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._status = status
        self._version_id = version_id
        self._deleting = deleting
        self.seen: ObjectInfo | None = None

    async def expect(self) -> WriteCondition | None:
        look = self._store.look
        if self._version_id is not None:
            self.seen = await look(self._bucket, self._key, self._version_id)
            return None if self.seen is None else _matching(self.seen)
        current = await look(self._bucket, self._key, None)
        if self._status is None:
            self.seen = current
            return WriteCondition(if_none_match=True) if current is None else _matching(current)
        if current is not None and (current.version_id or NULL_VERSION) == NULL_VERSION:
            self.seen = current
            return _matching(current)
        # A noncurrent null version, if any, is what goes. Not conditioned on a current version with an id:
        # SeaweedFS checks If-Match there against the null version under it (refusing every commit).
        self.seen = await look(self._bucket, self._key, NULL_VERSION)
        if current is None and not self._deleting:
            return WriteCondition(if_none_match=True)
        return None


def _transient(key: str, info: ObjectInfo) -> bool:
    """The inner store's momentary object (TRANSIENT_METADATA): empty, and only ever at the gateway's own
    keys, which clients cannot write (a client's object with that metadata is the client's)."""
    if info.size != 0 or classify(key) in (None, "data"):
        return False
    return TRANSIENT_METADATA in normalize_metadata(info.attributes.metadata)


def _reporting(result: Any, removed: tuple[ObjectInfo, ...]) -> Any:
    """A write's answer saying what it replaced, as the embedded store's do (``ObjectInfo.replaced``): over
    an upstream, the guard's last look, so the layer above knows it too without asking again."""
    if isinstance(result, ObjectInfo):
        return dataclasses.replace(result, replaced=removed)
    return result


def _matching(info: ObjectInfo) -> WriteCondition:
    return WriteCondition(if_match=info.etag.strip('"'))


class MeteredStore:
    """``inner`` with the ledger's deltas recorded for each change (see the module docstring)."""

    def __init__(self, inner: ObjectStore, ledger: Ledger) -> None:
        self.inner = inner
        self.ledger = ledger
        self._versioning: dict[str, tuple[str | None, float]] = {}
        self._keys: dict[tuple[str, str], _KeyChanges] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def look(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo | None:
        """The key's current object (or ``version_id``'s) as a change of it would remove it; None for none.
        A missing bucket is NoSuchBucket here: a guarded delete that finds nothing sends no request."""
        return await self._head(bucket, key, version_id, missing=_MISSING_KEY)

    async def _head(
        self, bucket: str, key: str, version_id: str | None, missing: tuple[str, ...] = _MISSING
    ) -> ObjectInfo | None:
        try:
            if version_id is None:
                info = await self._peek(bucket, key)
            else:
                info = await self.inner.head_object(bucket, key, version_id=version_id)
        except StoreError as exc:
            if exc.code in missing:
                return None
            raise
        if info.delete_marker or _transient(key, info):
            return None  # no object, or one the inner store's bookkeeping removes at once (never counted)
        return info

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

    def _change(self, bucket: str, kind: str, removed: Iterable[ObjectInfo], after: ObjectInfo | None) -> None:
        delta = LedgerTotals()
        if after is not None:
            delta.add(totals_of(kind, after))
        for gone in removed:
            delta.add(totals_of(kind, gone), -1)
        self.ledger.record(bucket, delta)

    @property
    def _guards_commits(self) -> bool:
        """The inner store commits under a CommitGuard (an upstream checking If-Match / If-None-Match)."""
        return bool(getattr(self.inner, "takes_commit_guards", False))

    @property
    def _told_what_is_replaced(self) -> bool:
        """The inner store says what each write and delete removed (the embedded store, from the
        commit's own transaction): no look before a change, and exact with any number of processes."""
        return bool(getattr(self.inner, "reports_replaced", False))

    async def _written(self, bucket: str, key: str, info: ObjectInfo) -> ObjectInfo:
        """The written object with its metadata (a copy's or a Complete's answer may carry none): read back,
        unless the key holds another writer's object by then (that one is the other writer's to count)."""
        if info.attributes.metadata:
            return info
        read = await self._head(bucket, key, info.version_id)
        return read if read is not None and read.etag == info.etag else info

    async def _replacing(
        self,
        bucket: str,
        key: str,
        kind: str,
        commit: Callable[[dict[str, Any]], Awaitable[Any]],
        left: Callable[[Any], Awaitable[ObjectInfo | None]],
        when_absent: Any = None,
        version_id: str | None = None,
    ) -> Any:
        """Make one change of the key (``commit``, called with the keywords to add to the inner call: a
        ``guard`` or none) and record it: what it ``left`` minus what it removed. That is what the inner
        store reports (the embedded store), or the guard's last look (an upstream), or else (a store
        that does neither) what the last overlapping change of the key to finish here left, when one
        finished meanwhile, and what the look before the change saw otherwise.

        ``version_id``: a delete of that version. ``when_absent``: for a store that does neither,
        answered instead of the change when the look finds no object in a bucket that never had
        versioning, and no other change of the key is in flight here."""
        if self._told_what_is_replaced:
            result = await commit({})
            removed = result.removed if isinstance(result, DeleteResult) else result.replaced
            self._change(bucket, kind, removed or (), await left(result))
            return result
        if self._guards_commits:
            status = await self._status(bucket)
            if version_id is None and status == "Enabled":  # a new version, or a delete marker: nothing goes
                result = await commit({})
                self._change(bucket, kind, (), await left(result))
                return _reporting(result, ())
            deleting = left is _nothing_left
            guard = _LookBeforeCommit(self, bucket, key, status, version_id, deleting)
            result = await commit({"guard": guard})
            removed = () if guard.seen is None else (guard.seen,)
            self._change(bucket, kind, removed, await left(result))
            return _reporting(result, removed)
        track = self._keys.setdefault((bucket, key), _KeyChanges())
        track.in_flight += 1
        seen = track.finished
        try:
            before = await self._replaced(bucket, key)
            status = await self._status(bucket)
            alone = track.in_flight == 1 and track.finished == seen  # nothing here changed the key meanwhile
            if when_absent is not None and before is None and status is None and alone:
                return when_absent
            replaces = status != "Enabled"  # a new version replaces nothing
            result = await commit({})
            after = await left(result)
            if replaces and track.finished != seen:
                before = track.left
            track.finished, track.left = track.finished + 1, after
            self._change(bucket, kind, () if before is None else (before,), after)
            return result
        finally:
            track.in_flight -= 1
            if track.in_flight == 0:
                del self._keys[(bucket, key)]

    async def put_object(self, bucket: str, key: str, body: Any, attributes: Any, *args: Any, **kwargs: Any) -> Any:
        kind = classify(key)
        if kind is None:
            return await self.inner.put_object(bucket, key, body, attributes, *args, **kwargs)

        async def left(info: ObjectInfo) -> ObjectInfo:
            if kind == "data" and not info.attributes.metadata:
                # The metadata handed over is complete once the body has ended (the manifest goes in last).
                return _with_metadata(info, attributes.metadata)
            return info

        return await self._replacing(
            bucket,
            key,
            kind,
            lambda guarding: self.inner.put_object(bucket, key, body, attributes, *args, **kwargs, **guarding),
            left,
        )

    async def copy_object(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *args: Any, **kwargs: Any
    ) -> Any:
        kind = classify(dst_key)
        if kind is None:
            return await self.inner.copy_object(src_bucket, src_key, dst_bucket, dst_key, *args, **kwargs)
        return await self._replacing(
            dst_bucket,
            dst_key,
            kind,
            lambda guarding: self.inner.copy_object(
                src_bucket, src_key, dst_bucket, dst_key, *args, **kwargs, **guarding
            ),
            lambda info: self._written(dst_bucket, dst_key, info),
        )

    async def complete_multipart_upload(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        kind = classify(key)
        if kind is None:
            return await self.inner.complete_multipart_upload(bucket, key, *args, **kwargs)
        return await self._replacing(
            bucket,
            key,
            kind,
            lambda guarding: self.inner.complete_multipart_upload(bucket, key, *args, **kwargs, **guarding),
            lambda info: self._written(bucket, key, info),
        )

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> Any:
        kind = classify(key)
        call = {} if version_id is None else {"version_id": version_id}
        if kind is None:
            return await self.inner.delete_object(bucket, key, **call)

        def commit(guarding: dict[str, Any]) -> Awaitable[DeleteResult]:
            return self.inner.delete_object(bucket, key, **call, **guarding)

        if version_id is None and self._removes_for_good(key) and await self._status(bucket) is not None:
            # In a versioned bucket the inner store deletes every version of this key: all of them go.
            versions = await self._versions_of(bucket, key)
            result = await commit({})
            self._change(bucket, kind, versions, None)
            return result
        # One of the key's changes: without a version id, and for the null version where it is what a
        # PUT replaces (never versioned, Suspended); any delete where the store says what it removed, or
        # commits under a guard.
        if (
            version_id is None
            or self._told_what_is_replaced
            or self._guards_commits
            or (version_id == NULL_VERSION and await self._status(bucket) != "Enabled")
        ):
            # The gateway's own object (a stale sidecar looked for after every PUT) that is not there, in a
            # bucket without versions, with nothing here writing it: the delete would change nothing.
            absent = DeleteResult() if kind != "data" and version_id is None else None
            return await self._replacing(
                bucket, key, kind, commit, _nothing_left, when_absent=absent, version_id=version_id
            )
        # Another version by its id, whatever happens to the key's current one.
        before = await self._head(bucket, key, version_id)
        result = await commit({})
        self._change(bucket, kind, () if before is None else (before,), None)
        return result

    def _removes_for_good(self, key: str) -> bool:
        """The inner store deletes every version of ``key`` on a delete without a version id."""
        return key.startswith(tuple(getattr(self.inner, "removes_for_good", ())))

    async def _versions_of(self, bucket: str, key: str) -> list[ObjectInfo]:
        """Every stored version of exactly ``key`` (delete markers hold no bytes)."""
        found: list[ObjectInfo] = []
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            page = await self.inner.list_object_versions(bucket, key, None, key_marker, version_marker, 1000)
            found += [v for v in page.versions if v.key == key and not v.delete_marker]
            if not page.is_truncated or page.next_key_marker is None or page.next_key_marker > key:
                return found
            key_marker, version_marker = page.next_key_marker, page.next_version_id_marker

    async def delete_bucket(self, bucket: str) -> None:
        await self.inner.delete_bucket(bucket)
        self.ledger.forget(bucket)
        self._versioning.pop(bucket, None)


async def _nothing_left(_: DeleteResult) -> None:
    return None  # what a delete leaves: a delete marker at most, which is not counted


def _with_metadata(info: ObjectInfo, metadata: Mapping[str, str]) -> ObjectInfo:
    return dataclasses.replace(info, attributes=dataclasses.replace(info.attributes, metadata=dict(metadata)))
