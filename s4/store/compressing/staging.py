"""Multipart uploads of the compressing store, staged in the inner store itself.

Every part is compressed into frames and stored as ``.s4mpu/<upload>/part-NNNNN`` with
a record of its original size, MD5 and CRC32C in its metadata, and its frames' sizes
(``KEY_PART_INDEX``; a sidecar of its own when they are too many for metadata). The
upload lives only in the inner store, so any gateway process can take any request of
it. Complete checks the part list by S3's rules, then assembles the final object with
the inner store's own multipart: staged parts big enough for the inner store are copied
server-side, runs of smaller ones are concatenated through the gateway. No padding is
ever written, so a multipart object compresses as well as a single PUT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from urllib.parse import quote, unquote

from s4.codec import ChunkManifest, FrameIndex, IndexEntry, crc32c_combine
from s4.codec.format.manifest import normalize_metadata
from s4.digits import decimal
from s4.store.base import (
    MAX_PARTS,
    MIN_S3_PART_SIZE,
    CompletionChecksums,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    PartInfo,
    PartsPage,
    StoreError,
    UploadChecksum,
    UploadInfo,
    UploadsPage,
    WriteCondition,
)
from s4.store.checksums import completed_checksum, part_algorithm_to_compute
from s4.store.compressing.conditions import concurrent_write_is_a_conflict, on_inner
from s4.store.compressing.encoding import BodyEncoder, confirm_stored
from s4.store.compressing.part_checksums import (
    KEY_PART_CHECKSUMS,
    ChecksummedBody,
    encode_part_checksums,
    part_checksums_of,
    part_metadata,
    upload_checksum_of,
    upload_metadata,
)
from s4.store.compressing.part_sizes import KEY_PART_SIZES, encode_part_sizes
from s4.store.compressing.reserved import MULTIPART_PREFIX, SIDECAR_SUFFIX
from s4.store.compressing.sidecars import Sidecars
from s4.store.compressing.view import logical
from s4.store.multipart import multipart_etag, validate_completion
from s4.store.walk import single_chunk, still_there_with_metadata, walk

_log = logging.getLogger(__name__)
KEY_UPLOAD_KEY = "s4-mpu-key"
KEY_PART_MD5 = "s4-part-md5"
KEY_PART_SIZE = "s4-part-size"
KEY_PART_CRC = "s4-part-crc32c"
KEY_PART_FRAMES = "s4-part-frames"
KEY_UPLOAD_ID = "s4-mpu-id"
"""On a completed multipart object: the upload it came from (our extension), to recognise a retried Complete."""
INNER_MARKER = "inner-"
"""``.s4mpu/<upload>/inner-<inner upload id>``: an inner multipart upload a Complete of the upload started.

Inner uploads are invisible to clients and their listing tells nothing of who started them;
the marker (written right after the inner upload is created, deleted once it is completed or
aborted) is how a retried Complete, an Abort, DeleteBucket and the leftover sweep know the
inner uploads of a Complete that died (SIGKILL, power loss) for the gateway's own."""
LISTING_PAGE = 1000


# A staged part's frame index, kept in its own metadata instead of a sidecar. Complete builds the
# object's sidecar from its parts' frame positions; kept in a sidecar of its own, each part cost a
# second write when it was staged, and a read and a delete at Complete: over an upstream S3 three
# requests per part, in the embedded store about nine hops to its threads. A part of boto3's or the
# aws-cli's 8 MiB holds two 4 MiB frames, so its index is a few dozen characters:
# ``<original size>:<stored size>`` per frame, in order (the offsets are their running sums). A part of
# more frames than fit comfortably in S3's 2 KB metadata budget keeps a sidecar, as before.

KEY_PART_INDEX = "s4-part-index"
MAX_PART_INDEX = 640
"""Characters at most: 32 frames of 4 MiB (a 128 MiB part) always fit, with room for the part's
other metadata within S3's 2 KB."""


def encode_part_index(entries: Sequence[IndexEntry]) -> str | None:
    """The metadata value for a part of these frames; None when it would be too long (keep a sidecar)."""
    text = ",".join(f"{e.original_size}:{e.compressed_size}" for e in entries)
    return text if len(text) <= MAX_PART_INDEX else None


def decode_part_index(
    text: str | None, frames: int, original_size: int, stored_size: int
) -> tuple[IndexEntry, ...] | None:
    """The frames of a part the value describes, or None when it is missing, malformed or does not add
    up to the part (its frame count, original and stored sizes): the caller then reads a sidecar or
    walks the frames, as for a part staged before this value existed."""
    if not text or len(text) > MAX_PART_INDEX:
        return None
    entries: list[IndexEntry] = []
    original = stored = 0
    for frame in text.split(","):
        original_text, _, stored_text = frame.partition(":")
        frame_original, frame_stored = decimal(original_text), decimal(stored_text)
        if not frame_original or not frame_stored:  # None (not digits) or 0
            return None
        entries.append(IndexEntry(original, frame_original, stored, frame_stored))
        original += frame_original
        stored += frame_stored
    if len(entries) != frames or original != original_size or stored != stored_size:
        return None
    return tuple(entries)


def _check_assembled(stored: int, expected: int) -> None:
    """An inner part of another size than the staged bytes it was made of would corrupt the object:
    fail the Complete before the inner upload is completed (it is aborted; the staging stays, for a retry)."""
    if stored != expected:
        raise StoreError(
            "InternalError", f"the storage backend kept {stored} of {expected} bytes of an assembled part; please retry"
        )


def _no_such_upload() -> StoreError:
    return StoreError(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted"
        " or completed.",
    )


@dataclasses.dataclass(frozen=True)
class StagedPart:
    number: int
    key: str
    """Where the staged frames live in the inner store."""
    info: ObjectInfo
    original_size: int
    md5: str
    crc32c: int
    frames: int
    checksums: dict[str, str] = dataclasses.field(default_factory=dict)
    """The part's flexible checksum (of its original bytes), when it has one."""
    entries: tuple[IndexEntry, ...] | None = None
    """Its frames, from its metadata (``s4-part-index``); None: read its sidecar, or walk its frames."""

    def part_info(self) -> PartInfo:
        return PartInfo(self.number, self.original_size, self.md5, self.info.last_modified, dict(self.checksums))


class MultipartStaging:
    """Multipart uploads over ``inner``, each part encoded by ``encoder`` as a PUT body is."""

    def __init__(self, inner: ObjectStore, encoder: BodyEncoder, sidecars: Sidecars) -> None:
        self.inner = inner
        self.encoder = encoder
        self.sidecars = sidecars
        self.stats = encoder.stats

    # --- names ------------------------------------------------------------------------------------------

    @staticmethod
    def _dir(upload_id: str) -> str:
        if not upload_id or "/" in upload_id or len(upload_id) > 128:
            raise _no_such_upload()
        return f"{MULTIPART_PREFIX}{upload_id}/"

    def _record_key(self, upload_id: str) -> str:
        return self._dir(upload_id) + "upload"

    def _part_key(self, upload_id: str, number: int) -> str:
        return f"{self._dir(upload_id)}part-{number:05d}"

    # --- the upload record ----------------------------------------------------------------------------

    async def create(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        """The upload record: the object's attributes in its own, the object's tags as its own tags
        (user metadata has room for 2 KB, ten tags may need 4), the upload's checksum in its metadata."""
        await self.inner.head_bucket(bucket)
        upload_id = f"{time.time_ns():016x}{secrets.token_hex(12)}"
        client = {k: v for k, v in attributes.metadata.items() if not k.lower().startswith("s4-")}
        extension = {KEY_UPLOAD_KEY: quote(key, safe="")} | upload_metadata(checksum)
        record = dataclasses.replace(attributes, metadata=client | extension)
        await self.inner.put_object(bucket, self._record_key(upload_id), single_chunk(b""), record, tags=tags)
        return upload_id

    async def _record(self, bucket: str, key: str, upload_id: str) -> ObjectInfo:
        try:
            record = await self.inner.head_object(bucket, self._record_key(upload_id))
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                raise _no_such_upload() from None
            raise
        if unquote(normalize_metadata(record.attributes.metadata).get(KEY_UPLOAD_KEY, "")) != key:
            raise _no_such_upload()
        return record

    # --- parts ------------------------------------------------------------------------------------------

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: AsyncIterable[bytes], copied: bool = False
    ) -> PartInfo:
        """Stage one part. Its flexible checksum is the client's (verified by the body), checked against the
        upload's algorithm before any byte is read, or computed here: for a FULL_OBJECT part that came
        without one, and for a ``copied`` part (UploadPartCopy has no checksum of its own)."""
        if not 1 <= number <= MAX_PARTS:
            raise StoreError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
        record = await self._record(bucket, key, upload_id)
        checksum = upload_checksum_of(normalize_metadata(record.attributes.metadata))
        if copied:
            computed = checksum.algorithm if checksum is not None else None
        else:
            computed = part_algorithm_to_compute(checksum, getattr(body, "checksum_algorithm", None))
        if computed is not None:
            body = ChecksummedBody(body, computed)
        upload, stored = await self.encoder.encode(
            body, record.attributes.content_type, getattr(body, "expected_size", None), allow_raw=False
        )
        metadata: dict[str, str] = {}

        async def finished() -> AsyncIterator[bytes]:
            async for piece in stored:
                yield piece
            metadata.update(
                {
                    KEY_PART_MD5: upload.digest.hexdigest(),
                    KEY_PART_SIZE: str(upload.original_size),
                    KEY_PART_CRC: str(upload.crc32c),
                    KEY_PART_FRAMES: str(upload.writer.frame_count),
                }
            )
            index = encode_part_index(upload.writer.entries) if upload.writer.frame_count > 1 else None
            if index is not None:
                metadata[KEY_PART_INDEX] = index
            metadata.update(part_metadata(getattr(body, "checksums", {})))  # verified or computed by now
            upload.ended = True

        part_key = self._part_key(upload_id, number)
        info = await self.inner.put_object(
            bucket, part_key, finished(), ObjectAttributes(metadata=metadata), content_etag=False
        )
        await confirm_stored(self.inner, bucket, part_key, info, upload)
        self.stats.backend_bytes_written += upload.stored_size
        if KEY_PART_INDEX not in metadata:
            # Many frames (or one, or none): a sidecar, or the removal of one this part number's earlier
            # upload left. One left beside a part whose metadata holds its index is never read, and goes
            # with the rest of the upload's staging.
            await self.sidecars.write(bucket, part_key, upload.writer, info)
        return PartInfo(
            number, upload.original_size, upload.digest.hexdigest(), info.last_modified, part_checksums_of(metadata)
        )

    async def _staged(self, bucket: str, upload_id: str, number: int) -> StagedPart | None:
        part_key = self._part_key(upload_id, number)
        try:
            info = await self.inner.head_object(bucket, part_key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        return self._parse_staged(number, part_key, info)

    @staticmethod
    def _parse_staged(number: int, part_key: str, info: ObjectInfo) -> StagedPart:
        meta = normalize_metadata(info.attributes.metadata)
        try:
            original_size, frames = int(meta[KEY_PART_SIZE]), int(meta[KEY_PART_FRAMES])
            return StagedPart(
                number,
                part_key,
                info,
                original_size,
                meta[KEY_PART_MD5],
                int(meta[KEY_PART_CRC]),
                frames,
                part_checksums_of(meta),
                decode_part_index(meta.get(KEY_PART_INDEX), frames, original_size, info.size),
            )
        except (KeyError, ValueError):
            raise StoreError("InternalError", f"staged part {part_key} has no valid part record") from None

    async def _listed_parts(self, bucket: str, upload_id: str, after: int, count: int) -> list[ObjectInfo]:
        """Up to ``count`` staged parts numbered above ``after``, as listed, in order.

        The listing starts just past the marker's part and its sidecar and stops as soon as it
        has ``count`` parts, so one page of ListParts reads one page's worth of the upload,
        whether it has ten parts or ten thousand. Part names are fixed-width numbers, so key
        order is part order, and each part has at most one sidecar right after it.
        """
        prefix = self._dir(upload_id) + "part-"
        after = min(max(after, 0), MAX_PARTS)
        start_after: str | None = f"{prefix}{after:05d}{SIDECAR_SUFFIX}"
        listed: list[ObjectInfo] = []
        while len(listed) < count and start_after is not None:
            wanted = min(2 * (count - len(listed)), LISTING_PAGE)
            page = await self.inner.list_objects(bucket, prefix, None, start_after, wanted)
            for obj in page.objects:
                if obj.key[len(prefix) :].isdigit() and len(listed) < count:  # not a part's sidecar
                    listed.append(obj)
            start_after = page.next_marker if page.is_truncated else None
        return listed

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int, max_parts: int
    ) -> PartsPage:
        record = await self._record(bucket, key, upload_id)
        max_parts = max(max_parts, 0)
        listed = await self._listed_parts(bucket, upload_id, part_number_marker, max_parts + 1)
        prefix = self._dir(upload_id) + "part-"
        page = []
        for obj in listed[:max_parts]:
            info = await still_there_with_metadata(self.inner, bucket, obj)
            if info is None:  # the upload is being aborted or completed while we list
                await self._record(bucket, key, upload_id)  # NoSuchUpload once it is gone
                continue
            page.append(self._parse_staged(int(obj.key[len(prefix) :]), obj.key, info))
        truncated = len(listed) > max_parts
        checksum = upload_checksum_of(normalize_metadata(record.attributes.metadata))
        upload = UploadInfo(bucket, key, upload_id, record.last_modified, record.attributes, checksum)
        # The marker is the page's last listed part, left out or not: the next page starts past it.
        last_listed = int(listed[max_parts - 1].key[len(prefix) :]) if truncated and max_parts else None
        return PartsPage(upload, [p.part_info() for p in page], truncated, last_listed)

    # --- complete and abort ---------------------------------------------------------------------------

    async def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        checksums: CompletionChecksums | None = None,
    ) -> ObjectInfo:
        try:
            record = await self._record(bucket, key, upload_id)
        except StoreError as exc:
            done = await self._completed(bucket, key, upload_id) if exc.code == "NoSuchUpload" else None
            if done is None:
                raise
            await self._remove_left_behind(bucket, key, upload_id)  # by the Complete that committed it
            return done
        staged = {}
        for number, _ in parts:
            if 1 <= number <= MAX_PARTS and number not in staged:
                part = await self._staged(bucket, upload_id, number)
                if part is not None:
                    staged[number] = part
        try:
            chosen_infos = validate_completion(parts, {n: p.part_info() for n, p in staged.items()}, MIN_S3_PART_SIZE)
        except StoreError as exc:
            # A Complete that assembled the object, then failed while removing the staging, leaves
            # parts missing: its retry finishes the removal and answers as the Complete would have.
            done = await self._completed(bucket, key, upload_id) if exc.code == "InvalidPart" else None
            if done is None:
                raise
            await self.remove(bucket, upload_id)
            return done
        chosen = [staged[p.part_number] for p in chosen_infos]
        checksum = upload_checksum_of(normalize_metadata(record.attributes.metadata))
        checksum_value = completed_checksum(checksum, chosen_infos, checksums.parts if checksums else {}, checksums)
        logical_etag = multipart_etag(chosen_infos)
        crc = 0
        for part in chosen:
            crc = crc32c_combine(crc, part.crc32c, part.original_size)
        manifest = ChunkManifest(
            codec=self.encoder.dispatcher.default,
            original_size=sum(p.original_size for p in chosen),
            compressed_size=sum(p.info.size for p in chosen),
            crc32c=crc,
            framed=True,
            multipart=True,
            logical_etag=logical_etag,
        )
        client = {k: v for k, v in normalize_metadata(record.attributes.metadata).items() if not k.startswith("s4-")}
        extension = {KEY_UPLOAD_ID: upload_id}
        encoded_sizes = encode_part_sizes([p.original_size for p in chosen])
        if encoded_sizes is not None:
            extension[KEY_PART_SIZES] = encoded_sizes
        object_checksums: dict[str, str] = {}
        if checksum is not None and checksum_value is not None:
            object_checksums[checksum.algorithm] = checksum_value
            values = [p.checksums[checksum.algorithm] for p in chosen]
            encoded_checksums = encode_part_checksums(checksum.algorithm, values, len(encoded_sizes or ""))
            if encoded_checksums is not None:
                extension[KEY_PART_CHECKSUMS] = encoded_checksums
        attributes = dataclasses.replace(
            record.attributes, metadata=client | manifest.to_metadata() | extension, checksums=object_checksums
        )
        tags = await self.inner.get_object_tagging(bucket, record.key) if record.tag_count else None
        try:
            inner_condition = await on_inner(self.inner, bucket, key, condition)  # 412/404: the upload stays
        except StoreError as exc:
            # A retry of a Complete that committed but had not yet removed its staging finds its own
            # object in the way of its condition: it answers as a retried Complete does.
            done = await self._completed(bucket, key, upload_id) if exc.code in ("PreconditionFailed",) else None
            if done is None:
                raise
            await self.remove(bucket, upload_id)
            return done
        try:
            final = await self._assemble(bucket, key, chosen, attributes, inner_condition, tags)
        except StoreError as exc:
            if exc.code not in ("NoSuchKey", "NoSuchUpload"):
                raise
            # Another Complete of this upload (a client retry, another replica) got there first
            # and removed the staged parts, aborting this one's inner upload on the way (or an
            # Abort did): answer as a retried Complete does.
            done = await self._completed(bucket, key, upload_id)
            if done is None:
                raise _no_such_upload() from None
            return done
        await self._index_final(bucket, key, chosen, final)
        # The record first: the upload is gone from here on, and a retry of this Complete answers as one
        # (``_completed``) instead of assembling the upload again over what another writer stored since.
        await self._remove_left_behind(bucket, key, upload_id, record_first=True)
        return logical(final)[0]

    async def _remove_left_behind(self, bucket: str, key: str, upload_id: str, record_first: bool = False) -> None:
        """The staging of an upload whose object is committed; what cannot be removed now is left to a retry
        of the Complete or to the sweep (staging without its record, see sweep.py). The Complete succeeded
        whatever is left over: answered 500, it was retried, and assembled again over a newer object."""
        try:
            if record_first:
                await self.inner.delete_object(bucket, self._record_key(upload_id))
            await self.remove(bucket, upload_id)
        except Exception as exc:
            _log.warning("completed %s/%s; staging of upload %s left behind (%r)", bucket, key, upload_id, exc)

    async def _completed(self, bucket: str, key: str, upload_id: str) -> ObjectInfo | None:
        """A retried Complete of an upload that already completed answers the same.

        The final object names the upload it came from (``s4-mpu-id``), so nothing of the
        upload has to stay behind in ``.s4mpu/`` to recognise a retry; once the key is
        overwritten, the upload is simply gone.
        """
        try:
            current = await self.inner.head_object(bucket, key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        if normalize_metadata(current.attributes.metadata).get(KEY_UPLOAD_ID) != upload_id:
            return None
        return logical(current)[0]

    async def _assemble(
        self,
        bucket: str,
        key: str,
        chosen: list[StagedPart],
        attributes: ObjectAttributes,
        condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        minimum = self.inner.min_part_size
        inner_id = await self.inner.create_multipart_upload(bucket, key, attributes, tags=tags)
        marker: str | None = None
        try:
            # complete() names the upload in the final object's metadata.
            marker = await self._mark_inner(bucket, attributes.metadata[KEY_UPLOAD_ID], key, inner_id)
            inner_parts: list[tuple[int, str]] = []
            run: list[StagedPart] = []

            async def flush() -> None:
                number = len(inner_parts) + 1
                part = await self.inner.upload_part(bucket, key, inner_id, number, self._concatenated(bucket, run))
                _check_assembled(part.size, sum(p.info.size for p in run))
                inner_parts.append((number, part.etag))
                run.clear()

            for part in chosen:
                if not run and part.info.size >= minimum:
                    number = len(inner_parts) + 1
                    # Held to the part that was HEADed: one staged again since (a client's retry of
                    # UploadPart) would be copied under a manifest, and a CRC, that describe the other.
                    copied = await self.inner.upload_part_copy(
                        bucket, key, inner_id, number, bucket, part.key, src_etag=part.info.etag
                    )
                    _check_assembled(copied.size, part.info.size)
                    inner_parts.append((number, copied.etag))
                    continue
                run.append(part)
                if sum(p.info.size for p in run) >= minimum:
                    await flush()
            if run or not inner_parts:
                await flush()
            with concurrent_write_is_a_conflict(condition):
                final = await self.inner.complete_multipart_upload(bucket, key, inner_id, inner_parts, condition)
        except BaseException:
            with contextlib.suppress(Exception):  # left marked if this fails: the sweep tries again
                await self._abort_inner(bucket, key, inner_id)
                if marker is not None:
                    await self.inner.delete_object(bucket, marker)
            raise
        if marker is not None:
            with contextlib.suppress(StoreError):  # left behind, it costs remove() one abort that finds nothing
                await self.inner.delete_object(bucket, marker)
        self.stats.backend_bytes_written += final.size
        return final

    async def _concatenated(self, bucket: str, parts: list[StagedPart]) -> AsyncIterator[bytes]:
        for part in list(parts):
            stream = await self.inner.get_object(bucket, part.key)
            try:
                if stream.info.etag != part.info.etag:
                    raise StoreError("InternalError", f"staged part {part.number} changed during Complete; retry")
                async for chunk in stream.body:
                    yield chunk
            finally:
                await stream.aclose()

    async def _index_final(self, bucket: str, key: str, chosen: list[StagedPart], final: ObjectInfo) -> None:
        """The assembled object's sidecar, built from the staged parts' indexes, or else from its own frame
        headers (a concurrent Complete of the same upload removed the staging first). The object is
        committed by now, so nothing here may fail the Complete: without a sidecar, ranged reads walk
        the frames."""
        try:
            await self._write_final_sidecar(bucket, key, chosen, final)
            return
        except Exception as exc:  # a staged part gone or changed, an unreadable part index, a refused write
            _log.info("completed %s/%s: its sidecar is built from its frames instead (%r)", bucket, key, exc)
        try:
            index = await self.sidecars.by_walking(bucket, key, final)
            if index is not None and len(index.entries) <= 1:  # one frame: no sidecar needed
                await self.sidecars.remove(bucket, key, final.version_id)
                return
            if index is not None and await self.sidecars.put(bucket, key, index, final.version_id):
                return
        except Exception as exc:  # the object replaced or removed meanwhile, a refused write
            _log.info("completed %s/%s: no sidecar from its frames either (%r)", bucket, key, exc)
        _log.warning("no sidecar for the completed %s/%s; ranged reads walk its frames", bucket, key)
        await self.sidecars.remove(bucket, key, final.version_id)

    async def _write_final_sidecar(self, bucket: str, key: str, chosen: list[StagedPart], final: ObjectInfo) -> None:
        entries: list[IndexEntry] = []
        original = stored = 0
        for part in chosen:
            for e in await self._part_entries(bucket, part):
                entries.append(
                    IndexEntry(
                        e.original_offset + original, e.original_size, e.compressed_offset + stored, e.compressed_size
                    )
                )
            original += part.original_size
            stored += part.info.size
        if len(entries) <= 1:
            await self.sidecars.remove_stale(bucket, key, final.version_id)
            return
        try:
            index = FrameIndex.from_entries(entries, final.size, final.etag)
        except ValueError as exc:
            raise StoreError("InternalError", f"assembled frame index is inconsistent: {exc}") from None
        await self.sidecars.put(bucket, key, index, final.version_id)

    async def _part_entries(self, bucket: str, part: StagedPart) -> tuple[IndexEntry, ...]:
        if part.frames == 0:
            return ()
        if part.frames == 1:
            return (IndexEntry(0, part.original_size, 0, part.info.size),)
        if part.entries is not None:
            return part.entries
        index = await self.sidecars.read(bucket, part.key, part.info)
        if index is None:
            index = await self.sidecars.by_walking(bucket, part.key, part.info)
        if index is None:
            raise StoreError("InternalError", f"staged part {part.number} changed during Complete; retry")
        return index.entries

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        await self._record(bucket, key, upload_id)
        await self.remove(bucket, upload_id)

    async def remove(self, bucket: str, upload_id: str) -> None:
        """Everything of an upload: the inner uploads of its Completes that died (aborted), staged parts,
        their sidecars, and the record last, so a crash leaves a listable upload that a retried
        Complete or an Abort removes in full. Markers sort first (``inner-`` < ``part-`` < ``upload``)."""
        keys = [o.key async for o in walk(self.inner, bucket, self._dir(upload_id))]
        record = self._record_key(upload_id)
        for k in keys:
            if k == record:
                continue
            target = await self.marked(bucket, k) if self.marked_inner(k) is not None else None
            if target is not None:
                await self.abort_marked(bucket, k, *target)
            else:
                await self.inner.delete_object(bucket, k)
        await self.inner.delete_object(bucket, record)

    # --- inner uploads of a Complete, marked ----------------------------------------------------------

    @staticmethod
    def marked_inner(key: str) -> str | None:
        """The inner upload id a staging key marks (INNER_MARKER), or None when it is no marker."""
        if not key.startswith(MULTIPART_PREFIX) or key.count("/") != 2:
            return None
        name = key.rpartition("/")[2]
        return unquote(name[len(INNER_MARKER) :]) if name.startswith(INNER_MARKER) else None

    async def _mark_inner(self, bucket: str, upload_id: str, key: str, inner_id: str) -> str:
        marker = self._dir(upload_id) + INNER_MARKER + quote(inner_id, safe="")
        attributes = ObjectAttributes(metadata={KEY_UPLOAD_KEY: quote(key, safe="")})
        await self.inner.put_object(bucket, marker, single_chunk(b""), attributes)
        return marker

    async def marked(self, bucket: str, marker: str) -> tuple[str, str] | None:
        """``(key, inner upload id)`` of the inner upload a marker names; None once the marker is gone."""
        inner_id = self.marked_inner(marker)
        try:
            info = await self.inner.head_object(bucket, marker)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        key = unquote(normalize_metadata(info.attributes.metadata).get(KEY_UPLOAD_KEY, ""))
        return (key, inner_id) if key and inner_id else None

    async def abort_marked(self, bucket: str, marker: str, key: str, inner_id: str) -> None:
        """Abort the inner upload a marker names (already gone is fine), then delete the marker."""
        await self._abort_inner(bucket, key, inner_id)
        await self.inner.delete_object(bucket, marker)

    async def _abort_inner(self, bucket: str, key: str, inner_id: str) -> None:
        try:
            await self.inner.abort_multipart_upload(bucket, key, inner_id)
        except StoreError as exc:
            if exc.code != "NoSuchUpload":
                raise

    # --- listing uploads --------------------------------------------------------------------------------

    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        key_marker: str | None,
        upload_id_marker: str | None,
        max_uploads: int,
    ) -> UploadsPage:
        uploads: list[UploadInfo] = []
        async for obj in walk(self.inner, bucket, MULTIPART_PREFIX):
            parts = obj.key[len(MULTIPART_PREFIX) :].split("/")
            if len(parts) != 2 or parts[1] != "upload":
                continue
            info = await still_there_with_metadata(self.inner, bucket, obj)
            if info is None:
                continue  # aborted or completed since the listing
            metadata = normalize_metadata(info.attributes.metadata)
            key = unquote(metadata.get(KEY_UPLOAD_KEY, ""))
            if key and key.startswith(prefix):
                checksum = upload_checksum_of(metadata)
                uploads.append(UploadInfo(bucket, key, parts[0], info.last_modified, info.attributes, checksum))
        uploads.sort(key=lambda u: (u.key.encode(), u.upload_id))
        if key_marker is not None:
            uploads = [
                u
                for u in uploads
                if u.key.encode() > key_marker.encode()
                or (upload_id_marker is not None and u.key == key_marker and u.upload_id > upload_id_marker)
            ]
        page_items = uploads[:max_uploads]
        truncated = len(uploads) > max_uploads
        last = page_items[-1] if truncated and page_items else None
        return UploadsPage(page_items, [], truncated, last.key if last else None, last.upload_id if last else None)
