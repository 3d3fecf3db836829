"""The savings ledger: per bucket, what clients stored (original bytes, objects) and what it costs.

Kept in the store, not in a process, so that it survives restarts and several gateways over one
store add up: each gateway process is one *writer* (a random id) that keeps its own running totals
per bucket as one small record ``.s4bucket/ledger/<writer>/<sequence>`` in the bucket (a reserved
name: clients never see it; it goes with the bucket). Only its writer ever writes a record, so no
two writers race on one record and no compare-and-swap is needed: the ledger of a bucket is the sum,
over writers, of each writer's newest record (the fold, ``read_ledger``). A writer writes its newest
totals under the next sequence number and then removes the older record, so a reader that lists in
between takes the newer one and never counts a writer twice.

What is counted (``LedgerTotals``), by what the inner store holds, as S3 bills it:
- ``objects``/``original_bytes``/``data_bytes``: every stored version of a client key (a versioned
  bucket's noncurrent versions too), with its original size (from its manifest) and stored size;
  delete markers are not counted at all (no bytes, and S3 bills them nothing either);
- ``sidecar_*``: the ``.s4index`` frame indexes of client objects;
- ``staging_*``: multipart uploads in progress (``.s4mpu/``: records, staged parts and their sidecars);
- ``other_*``: dictionaries (``.s4dict/``). Bucket documents and the ledger itself are left out.

The deltas are measured by ``s4.store.compressing.metering`` below the compressing store, where
every write of the gateway passes with its stored size and manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from s4.store.base import ObjectAttributes, ObjectInfo, ObjectStore, StoreError
from s4.store.compressing.purge import purge
from s4.store.compressing.reserved import (
    BUCKET_DOCUMENT_PREFIX,
    DICTIONARY_PREFIX,
    MULTIPART_PREFIX,
    SIDECAR_SUFFIX,
)
from s4.store.compressing.view import logical
from s4.store.walk import single_chunk, walk, with_metadata

_log = logging.getLogger(__name__)
LEDGER_PREFIX = ".s4bucket/ledger/"
"""Under the reserved bucket-document prefix (s4.store.compressing.reserved.BUCKET_DOCUMENT_PREFIX)."""
DEFAULT_FLUSH_INTERVAL = 1.0
STALE_TOLERANCE_S = 1.0


@dataclasses.dataclass
class LedgerTotals:
    """One bucket's counters (or a delta of them)."""

    objects: int = 0
    original_bytes: int = 0
    data_bytes: int = 0
    sidecar_objects: int = 0
    sidecar_bytes: int = 0
    staging_objects: int = 0
    staging_bytes: int = 0
    other_objects: int = 0
    other_bytes: int = 0

    def add(self, other: LedgerTotals, sign: int = 1) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + sign * getattr(other, field.name))

    @property
    def stored_bytes(self) -> int:
        """Everything the bucket costs in the store: data, sidecars, staging, dictionaries."""
        return self.data_bytes + self.sidecar_bytes + self.staging_bytes + self.other_bytes

    def is_zero(self) -> bool:
        return all(getattr(self, f.name) == 0 for f in dataclasses.fields(self))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerTotals:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in names})


def classify(key: str) -> str | None:
    """Which counters an inner key belongs to; None for the bucket documents and the ledger itself."""
    if key.startswith(BUCKET_DOCUMENT_PREFIX):
        return None
    if key.startswith(MULTIPART_PREFIX):
        return "staging"
    if key.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if key.startswith(DICTIONARY_PREFIX):
        return "other"
    return "data"


def totals_of(kind: str, info: ObjectInfo) -> LedgerTotals:
    """The counters one stored object adds."""
    if kind == "data":
        return LedgerTotals(objects=1, original_bytes=logical(info)[0].size, data_bytes=info.size)
    return LedgerTotals(**{f"{kind}_objects": 1, f"{kind}_bytes": info.size})


def _record_key(writer: str, sequence: int) -> str:
    return f"{LEDGER_PREFIX}{writer}/{sequence:016d}"


class Ledger:
    """This process's writer: deltas recorded in memory, written to its record in the store within
    ``flush_interval`` seconds (and at ``close``), bucket by bucket."""

    def __init__(self, inner: ObjectStore, flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self.inner = inner  # the raw inner store: the ledger's own writes are not metered
        self.writer = secrets.token_hex(8)
        self.flush_interval = flush_interval
        self._pending: dict[str, LedgerTotals] = {}
        self._pending_since: dict[str, float] = {}
        """When the oldest pending delta of each bucket was recorded (wall clock, as bucket creation dates)."""
        self._totals: dict[str, LedgerTotals] = {}
        self._sequence: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def record(self, bucket: str, delta: LedgerTotals) -> None:
        """Add ``delta`` to the bucket's counters; written out soon."""
        if delta.is_zero():
            return
        self._pending_since.setdefault(bucket, time.time())
        self._pending.setdefault(bucket, LedgerTotals()).add(delta)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    def forget(self, bucket: str) -> None:
        """The bucket is gone (with its records): a bucket of that name later starts from zero."""
        self._pending.pop(bucket, None)
        self._pending_since.pop(bucket, None)
        self._totals.pop(bucket, None)
        self._sequence.pop(bucket, None)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """No record is written meanwhile: a bucket being deleted is cleared of the gateway's own
        objects and then deleted, and a record written in between (a flush of any bucket's deltas,
        the sweep's own among them) would make the bucket not empty again. Deltas recorded meanwhile
        wait for the next flush; those of a bucket that went are dropped with it (``forget``)."""
        async with self._lock:
            yield

    async def _later(self) -> None:
        while True:  # again after a flush that failed
            await asyncio.sleep(self.flush_interval)
            await self.flush()
            if not self._pending:
                return

    async def flush(self) -> None:
        """Write every bucket's pending deltas into this writer's record."""
        async with self._lock:
            if self._pending:
                await self._drop_stale()
            while self._pending:
                bucket, delta = self._pending.popitem()
                since = self._pending_since.pop(bucket, time.time())
                try:
                    await self._write(bucket, delta)
                except Exception as exc:  # a gone bucket, an unreachable store: the write itself succeeded
                    if isinstance(exc, StoreError) and exc.code == "NoSuchBucket":
                        self.forget(bucket)
                    else:
                        _log.warning("savings ledger of %s not written (%s); kept for the next flush", bucket, exc)
                        self._pending.setdefault(bucket, LedgerTotals()).add(delta)
                        self._pending_since[bucket] = min(since, self._pending_since.get(bucket, since))
                        return

    async def _drop_stale(self) -> None:
        """Forget what was recorded for a bucket that has been deleted since, perhaps by another gateway:
        deltas older than a bucket of the same name that now exists belong to the one that went with
        its records. (One listing of the buckets a flush. Creation dates may be to the second, and a second
        is allowed for clocks apart, so a bucket deleted and made again within two seconds of a change
        is not told apart.)"""
        try:
            created = {b.name: b.created.timestamp() for b in await self.inner.list_buckets()}
        except Exception as exc:  # an unreachable store: the writes below fail, and are kept for the next
            _log.debug("bucket listing for the ledger failed: %s", exc)
            return
        for bucket, since in list(self._pending_since.items()):
            if bucket not in created or created[bucket] > since + STALE_TOLERANCE_S:
                _log.info("savings ledger: %s was deleted since its last changes here; they are dropped", bucket)
                self.forget(bucket)

    async def _write(self, bucket: str, delta: LedgerTotals) -> None:
        previous = self._sequence.get(bucket)
        totals = dataclasses.replace(self._totals.get(bucket, LedgerTotals()))
        if previous is not None and not await self._exists(bucket, _record_key(self.writer, previous)):
            totals = LedgerTotals()  # the bucket was deleted and made again meanwhile (by another gateway)
        totals.add(delta)
        sequence = (previous or 0) + 1
        body = json.dumps(totals.to_dict(), sort_keys=True).encode()
        await self.inner.put_object(
            bucket,
            _record_key(self.writer, sequence),
            single_chunk(body),
            ObjectAttributes(content_type="application/json"),
        )
        self._totals[bucket], self._sequence[bucket] = totals, sequence
        if previous is not None:
            with contextlib.suppress(StoreError):
                await purge(self.inner, bucket, _record_key(self.writer, previous))

    async def _exists(self, bucket: str, key: str) -> bool:
        try:
            await self.inner.head_object(bucket, key)
        except StoreError as exc:
            if exc.code in ("NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


async def read_ledger(store: ObjectStore, bucket: str, attempts: int = 20) -> LedgerTotals:
    """A bucket's ledger: every writer's newest record, summed.

    A record listed may be gone by its read (its writer wrote the next and removed it): that writer's
    records are listed again and its newest read, up to ``attempts`` times per writer; a writer that
    flushes several times a second would otherwise win against a reader that starts over each time.
    A writer with no record left at all (a recount replaced every record with its own) means a new
    listing, from the start."""
    for _ in range(attempts):
        totals = LedgerTotals()
        for writer, sequence in (await _newest_records(store, bucket, LEDGER_PREFIX)).items():
            found = await _writers_totals(store, bucket, writer, sequence, attempts)
            if found is None:
                break
            totals.add(found)
        else:
            return totals
    raise StoreError("SlowDown", "the savings ledger changed under every read; try again")


async def _writers_totals(
    store: ObjectStore, bucket: str, writer: str, sequence: str, attempts: int
) -> LedgerTotals | None:
    """The totals in ``writer``'s newest record, listed as ``sequence``; None when every record of the
    writer is gone (a recount removed them and wrote its own, which the listing did not have: list again)."""
    left = attempts
    while True:
        try:
            stream = await store.get_object(bucket, f"{LEDGER_PREFIX}{writer}/{sequence}")
        except StoreError as exc:
            left -= 1
            if exc.code != "NoSuchKey" or left == 0:
                raise
            # Replaced by its next one between the listing and this read: list this writer's again.
            newer = (await _newest_records(store, bucket, f"{LEDGER_PREFIX}{writer}/")).get(writer)
            if newer is None:
                return None
            sequence = newer
            continue
        try:
            body = b"".join([piece async for piece in stream.body])
        finally:
            await stream.aclose()
        return LedgerTotals.from_dict(json.loads(body))


async def _newest_records(store: ObjectStore, bucket: str, prefix: str) -> dict[str, str]:
    """Each writer's newest record listed under ``prefix``: writer -> sequence."""
    newest: dict[str, str] = {}
    async for obj in walk(store, bucket, prefix):
        writer, _, sequence = obj.key[len(LEDGER_PREFIX) :].partition("/")
        if sequence and sequence > newest.get(writer, ""):
            newest[writer] = sequence
    return newest


async def read_all_ledgers(store: ObjectStore) -> dict[str, LedgerTotals]:
    """Every bucket's ledger, by bucket name."""
    return {b.name: await read_ledger(store, b.name) for b in await store.list_buckets()}


RECOUNT_CONCURRENCY = 16


async def recount(store: ObjectStore, bucket: str) -> LedgerTotals:
    """Count a bucket's ledger from what the store holds, and make that its ledger.

    For a bucket whose objects did not all come through a gateway with the ledger (written before
    it, straight to the upstream, or rewritten by ``s4 migrate``). Every version is listed (with a
    HEAD each where the listing carries no metadata), the totals are written as one record, and every
    other writer's record is removed: a running gateway that finds its own record gone starts again
    from zero (``Ledger._write``). Changes made while it counts may be missed or counted twice: run
    it when the bucket is quiet.
    """
    versioned = await store.get_bucket_versioning(bucket) is not None
    listed = [obj async for obj in (_versions(store, bucket) if versioned else walk(store, bucket))]
    gate = asyncio.Semaphore(RECOUNT_CONCURRENCY)

    async def counted(obj: ObjectInfo) -> LedgerTotals:
        kind = classify(obj.key)
        if kind is None or obj.delete_marker:
            return LedgerTotals()
        if kind == "data" and not getattr(store, "listing_includes_metadata", False):
            async with gate:
                try:
                    if versioned and obj.version_id is not None:
                        obj = await store.head_object(bucket, obj.key, version_id=obj.version_id)
                    else:
                        obj = await with_metadata(store, bucket, obj)
                except StoreError as exc:
                    if exc.code in ("NoSuchKey", "NoSuchVersion"):
                        return LedgerTotals()  # gone since the listing
                    raise
        return totals_of(kind, obj)

    totals = LedgerTotals()
    for part in await asyncio.gather(*(counted(obj) for obj in listed)):
        totals.add(part)
    old = [obj.key async for obj in walk(store, bucket, LEDGER_PREFIX)]
    body = json.dumps(totals.to_dict(), sort_keys=True).encode()
    key = _record_key("recount-" + secrets.token_hex(8), 1)
    await store.put_object(bucket, key, single_chunk(body), ObjectAttributes(content_type="application/json"))
    for record in old:
        with contextlib.suppress(StoreError):
            await purge(store, bucket, record)
    return totals


async def _versions(store: ObjectStore, bucket: str) -> AsyncIterator[ObjectInfo]:
    key_marker: str | None = None
    version_marker: str | None = None
    while True:
        page = await store.list_object_versions(bucket, "", None, key_marker, version_marker, 1000)
        for version in page.versions:
            yield version
        if not page.is_truncated or page.next_key_marker is None:
            return
        key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
