"""The sweep of the gateway's own leftovers in the inner store, and DeleteBucket's clearing.

A gateway killed in the middle of an operation (SIGKILL, power loss, a crashed node)
leaves behind what only that operation would have removed, invisible to clients but kept
by the inner store, billed, and in the way of DeleteBucket:

- inner multipart uploads of a Complete that died (staging marks each, ``inner-`` in the
  upload's staging folder, so they are known for the gateway's own: see staging.py);
- temporary uploads and objects of the S3 store's large PUTs (``.s4mpu/put-…``);
- staging of uploads already completed or aborted (a removal cut short, a part that
  landed after it);
- sidecars whose object is gone.

``sweep`` removes them from every bucket, at start and then periodically. Several gateways
may sweep one store at once while serving it, so nothing younger than ``min_age`` is
touched, an inner upload counts as left behind only when neither it nor its newest part is
younger (a Complete or a PUT still running on another gateway keeps adding parts), and every
step is idempotent: deleting what another sweep deleted, or aborting what it aborted, is a no-op.

``clear_bucket`` is DeleteBucket's: S3 deletes a bucket that holds no objects even while
multipart uploads are in progress, aborting them, so a bucket that a client sees empty
loses the gateway's objects and uploads in it, whatever their age.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote

from s4.codec.format.manifest import normalize_metadata
from s4.store.base import ObjectInfo, ObjectStore, StoreError, UploadInfo
from s4.store.compressing.reserved import DICTIONARY_PREFIX, MULTIPART_PREFIX, SIDECAR_SUFFIX, is_reserved
from s4.store.compressing.sidecars import sidecar_owner
from s4.store.compressing.staging import KEY_UPLOAD_ID, KEY_UPLOAD_KEY, MultipartStaging
from s4.store.walk import still_there_with_metadata, walk

_log = logging.getLogger(__name__)
UPLOADS_PAGE = 1000
PARTS_PAGE = 1000
RECORD_NAME = "upload"


@dataclasses.dataclass
class SweepReport:
    """What one sweep removed."""

    inner_uploads: int = 0
    """Inner multipart uploads aborted."""
    objects: int = 0
    """Gateway objects deleted: staging, temporaries, orphan sidecars."""

    def __bool__(self) -> bool:
        return bool(self.inner_uploads or self.objects)

    def add(self, other: SweepReport) -> None:
        self.inner_uploads += other.inner_uploads
        self.objects += other.objects


@dataclasses.dataclass
class _StagingFolder:
    """What one walk found in ``.s4mpu/<upload>/``, in key order: markers, parts and sidecars, the record."""

    upload_id: str
    markers: list[ObjectInfo] = dataclasses.field(default_factory=list)
    others: list[ObjectInfo] = dataclasses.field(default_factory=list)
    record: ObjectInfo | None = None


class LeftoverSweep:
    """Finds and removes what operations that died left in ``inner``; see the module docstring."""

    def __init__(self, inner: ObjectStore, staging: MultipartStaging) -> None:
        self.inner = inner
        self.staging = staging
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        """What time it is (a test sets the hands)."""

    # --- periodic ----------------------------------------------------------------------------------------

    async def periodically(self, interval: float, min_age: float) -> None:
        """Sweep now, then every ``interval`` seconds until cancelled.

        Each wait varies by a tenth, so gateways started together do not sweep in step. A sweep
        that fails is logged and tried again at the next turn: leftovers are harmless meanwhile.
        """
        while True:
            try:
                report = await self.sweep(min_age)
            except Exception:
                _log.warning("the sweep of leftovers failed; trying again in %.0f s", interval, exc_info=True)
            else:
                if report:
                    _log.info(
                        "swept leftovers of interrupted operations: %d inner uploads aborted, %d objects deleted",
                        report.inner_uploads,
                        report.objects,
                    )
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    async def sweep(self, min_age: float) -> SweepReport:
        """Every bucket's leftovers older than ``min_age`` seconds; a bucket that fails is skipped (logged)."""
        report = SweepReport()
        for bucket in await self.inner.list_buckets():
            try:
                report.add(await self.sweep_bucket(bucket.name, min_age))
            except StoreError as exc:
                if exc.code != "NoSuchBucket":  # deleted meanwhile: nothing left to sweep
                    _log.warning("could not sweep bucket %s: %s", bucket.name, exc)
        return report

    async def sweep_bucket(self, bucket: str, min_age: float) -> SweepReport:
        """One walk of the bucket (staging folders, temporaries, sidecars), then its temporary uploads."""
        cutoff = self.clock() - dt.timedelta(seconds=min_age)
        report = SweepReport()
        folder: _StagingFolder | None = None
        prefixes: list[str] = []
        """Keys seen that the walk's current key starts with: an object sorts before its sidecar, and
        every key between the two starts with the object's key, so a sidecar's object is among them."""
        async for obj in walk(self.inner, bucket):
            key = obj.key
            if key.startswith(MULTIPART_PREFIX):
                upload_id, slash, _ = key[len(MULTIPART_PREFIX) :].partition("/")
                if not slash:  # .s4mpu/put-…: an upstream temporary the PUT that made it did not delete
                    if obj.last_modified <= cutoff:
                        await self._delete(bucket, key, report)
                    continue
                if folder is not None and folder.upload_id != upload_id:
                    await self._settle(bucket, folder, cutoff, report)
                    folder = None
                folder = folder or _StagingFolder(upload_id)
                _collect(folder, obj)
                continue
            if folder is not None:
                await self._settle(bucket, folder, cutoff, report)
                folder = None
            if key.startswith(DICTIONARY_PREFIX):
                continue
            while prefixes and not key.startswith(prefixes[-1]):
                prefixes.pop()
            orphan = key.endswith(SIDECAR_SUFFIX) and key[: -len(SIDECAR_SUFFIX)] not in prefixes
            if orphan and obj.last_modified <= cutoff:
                await self._orphan_sidecar(bucket, key, report)
            prefixes.append(key)
        if folder is not None:
            await self._settle(bucket, folder, cutoff, report)
        async for upload in self._uploads(bucket, MULTIPART_PREFIX):
            if upload.initiated <= cutoff and not await self._active(bucket, upload.key, upload.upload_id, cutoff):
                await self._abort(bucket, upload.key, upload.upload_id, report)
        return report

    async def _settle(self, bucket: str, folder: _StagingFolder, cutoff: dt.datetime, report: SweepReport) -> None:
        """One staging folder: leftovers of an upload that is gone, or of a Complete that died."""
        if folder.record is None:
            # The upload is gone (aborted or completed; a record is removed last): what is left came
            # after its removal (a part in flight) or is a marker of a Complete that ran into it.
            for marker in folder.markers:
                if marker.last_modified <= cutoff:
                    await self._stale_marker(bucket, marker, cutoff, report)
            for obj in folder.others:
                if obj.last_modified <= cutoff:
                    await self._delete(bucket, obj.key, report)
            return
        record = await still_there_with_metadata(self.inner, bucket, folder.record)
        if record is None:
            return  # aborted or completed since the listing; the next sweep sees what it left
        key = unquote(normalize_metadata(record.attributes.metadata).get(KEY_UPLOAD_KEY, ""))
        completed = await self._completed_at(bucket, key, folder.upload_id) if key else None
        if completed is not None and completed <= cutoff:
            # Completed, then the gateway died while removing the staging, and no retry came.
            await self.staging.remove(bucket, folder.upload_id)
            report.objects += len(folder.others) + len(folder.markers) + 1
            return
        for marker in folder.markers:  # the upload is the client's still; a Complete of it died
            if marker.last_modified <= cutoff:
                await self._stale_marker(bucket, marker, cutoff, report)

    async def _stale_marker(self, bucket: str, marker: ObjectInfo, cutoff: dt.datetime, report: SweepReport) -> None:
        target = await self.staging.marked(bucket, marker.key)
        if target is None:
            await self._delete(bucket, marker.key, report)  # unreadable or gone
            return
        key, inner_id = target
        if await self._active(bucket, key, inner_id, cutoff):
            return  # a Complete still adding parts, on this gateway or another
        await self.staging.abort_marked(bucket, marker.key, key, inner_id)
        report.inner_uploads += 1
        report.objects += 1

    async def _active(self, bucket: str, key: str, upload_id: str, cutoff: dt.datetime) -> bool:
        """Whether an inner upload got a part after ``cutoff`` (an upload already gone is not)."""
        marker = 0
        while True:
            try:
                page = await self.inner.list_parts(bucket, key, upload_id, marker, PARTS_PAGE)
            except StoreError as exc:
                if exc.code == "NoSuchUpload":
                    return False
                raise
            if any(p.last_modified > cutoff for p in page.parts):
                return True
            if not page.is_truncated or page.next_part_number_marker is None:
                return False
            marker = page.next_part_number_marker

    async def _completed_at(self, bucket: str, key: str, upload_id: str) -> dt.datetime | None:
        """When the object at ``key`` was made by completing ``upload_id``; None if it was not."""
        try:
            current = await self.inner.head_object(bucket, key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        if normalize_metadata(current.attributes.metadata).get(KEY_UPLOAD_ID) != upload_id:
            return None
        return current.last_modified

    async def _orphan_sidecar(self, bucket: str, sidecar: str, report: SweepReport) -> None:
        """Delete a sidecar whose object (version) the listing did not show, once a HEAD agrees it is gone."""
        key, version_id = sidecar_owner(sidecar)
        try:
            if version_id is None:
                await self.inner.head_object(bucket, key)
            else:
                await self.inner.head_object(bucket, key, version_id=version_id)
            return  # written since the listing passed it, or a version the listing does not show
        except StoreError as exc:
            if exc.code not in ("NoSuchKey", "NoSuchVersion", "KeyTooLongError", "InvalidArgument"):
                raise
            if version_id is not None and exc.code not in ("NoSuchKey", "NoSuchVersion"):
                return  # not a name this store's versions give: leave it
        await self._delete(bucket, sidecar, report)

    # --- DeleteBucket --------------------------------------------------------------------------------------

    async def clear_bucket(self, bucket: str) -> bool:
        """Remove everything of the gateway's from a bucket that holds no client object: staging
        (in-progress uploads are aborted, as S3 does when it deletes a bucket), temporaries, sidecars,
        dictionaries, and every inner multipart upload. False, with nothing touched, when a client
        object is in it; a client object that appears meanwhile stops the clearing."""
        async for obj in walk(self.inner, bucket):
            if not is_reserved(obj.key):
                return False
        if await self._client_versions(bucket):
            return False
        report = SweepReport()
        async for obj in walk(self.inner, bucket):
            if not is_reserved(obj.key):
                return False
            target = await self.staging.marked(bucket, obj.key) if self.staging.marked_inner(obj.key) else None
            if target is not None:
                await self.staging.abort_marked(bucket, obj.key, *target)
            else:
                await self._delete(bucket, obj.key, report)
        for prefix in ("", MULTIPART_PREFIX):  # the S3 store lists its temporaries only when asked by name
            async for upload in self._uploads(bucket, prefix):
                await self._abort(bucket, upload.key, upload.upload_id, report)
        await self._purge_reserved_versions(bucket, report)
        return True

    async def _client_versions(self, bucket: str) -> bool:
        """Whether a versioned bucket keeps a version or delete marker of a client's key (its current
        objects may all be gone, while S3 still refuses to delete it)."""
        if await self.inner.get_bucket_versioning(bucket) is None:
            return False
        async for version in _versions(self.inner, bucket):
            if not is_reserved(version.key):
                return True
        return False

    async def _purge_reserved_versions(self, bucket: str, report: SweepReport) -> None:
        """The versions of the gateway's own keys a versioned bucket still keeps, removed by id."""
        if await self.inner.get_bucket_versioning(bucket) is None:
            return
        async for version in _versions(self.inner, bucket):
            if is_reserved(version.key) and version.version_id is not None:
                with contextlib.suppress(StoreError):
                    await self.inner.delete_object(bucket, version.key, version_id=version.version_id)
                    report.objects += 1

    # --- plumbing ------------------------------------------------------------------------------------------

    async def _uploads(self, bucket: str, prefix: str) -> AsyncIterator[UploadInfo]:
        """The inner store's multipart uploads under ``prefix``, page after page."""
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = await self.inner.list_multipart_uploads(bucket, prefix, key_marker, upload_marker, UPLOADS_PAGE)
            for upload in page.uploads:
                if upload.key.startswith(prefix):
                    yield upload
            if not page.is_truncated or page.next_key_marker is None:
                return
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker

    async def _abort(self, bucket: str, key: str, upload_id: str, report: SweepReport) -> None:
        try:
            await self.inner.abort_multipart_upload(bucket, key, upload_id)
        except StoreError as exc:
            if exc.code != "NoSuchUpload":
                raise
            return
        report.inner_uploads += 1

    async def _delete(self, bucket: str, key: str, report: SweepReport) -> None:
        await self.inner.delete_object(bucket, key)
        report.objects += 1


async def _versions(inner: ObjectStore, bucket: str) -> AsyncIterator[ObjectInfo]:
    """Every version and delete marker of the bucket, page after page."""
    key_marker: str | None = None
    version_marker: str | None = None
    while True:
        page = await inner.list_object_versions(bucket, "", None, key_marker, version_marker, UPLOADS_PAGE)
        for version in page.versions:
            yield version
        if not page.is_truncated or page.next_key_marker is None:
            return
        key_marker, version_marker = page.next_key_marker, page.next_version_id_marker


def _collect(folder: _StagingFolder, obj: ObjectInfo) -> None:
    name = obj.key.rpartition("/")[2]
    if MultipartStaging.marked_inner(obj.key) is not None:
        folder.markers.append(obj)
    elif name == RECORD_NAME and obj.key.count("/") == 2:
        folder.record = obj
    else:
        folder.others.append(obj)
