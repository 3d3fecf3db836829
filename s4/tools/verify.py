"""``s4 verify``: every stored object of a bucket checked against the S4 format, straight on the upstream.

For each object with an S4 manifest the whole stored body is read and decoded as a GET would
(every frame's size and CRC32C, then the whole-object size and CRC32C against the manifest,
the stored length against the manifest and the upstream's own size); its frame positions are
then held against its ``<key>.s4index`` sidecar, which must exist for a multi-frame object, be
bound to the object's ETag and stored size, and list exactly its frames. Sidecars whose object
is gone, and the gateway's staging left by operations that died, are found too.

Nothing is written unless ``repair`` is set; then a missing, stale or wrong sidecar is rebuilt
from the frames just read (bound to the very version read, so a concurrent overwrite makes it
stale, never wrong: readers ignore a stale sidecar), an unneeded or orphan one is deleted, and
the compressing store's own sweep removes staging older than ``min_age``. Corrupt data is only
reported: no tool can know the right bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from s4.codec import (
    ChunkManifest,
    CodecError,
    CodecErrorKind,
    CpuCodecPool,
    FrameIndex,
    FrameStreamReader,
    IndexEntry,
    ZstdDictionary,
)
from s4.codec.body import BodyDecoder, ManifestTotals
from s4.store.base import ObjectAttributes, ObjectInfo, ObjectStore, StoreError
from s4.store.compressing import CompressingStore
from s4.store.compressing.reads import read_all
from s4.store.compressing.reserved import DICTIONARY_PREFIX, MULTIPART_PREFIX, SIDECAR_SUFFIX, is_reserved
from s4.store.compressing.sidecars import MAX_SIDECAR_BYTES, sidecar_key
from s4.store.walk import single_chunk, walk
from s4.tools.location import BucketUrl
from s4.tools.progress import bar

CORRUPT = "corrupt"
UNAVAILABLE = "unavailable"
SIDECAR_MISSING = "sidecar-missing"
SIDECAR_STALE = "sidecar-stale"
SIDECAR_WRONG = "sidecar-wrong"
SIDECAR_UNNEEDED = "sidecar-unneeded"
ORPHAN_SIDECAR = "orphan-sidecar"


@dataclasses.dataclass
class Finding:
    key: str
    kind: str
    detail: str
    repaired: bool = False


@dataclasses.dataclass
class VerifyReport:
    bucket: str
    objects: int = 0
    s4_objects: int = 0
    plain_objects: int = 0
    stored_bytes: int = 0
    original_bytes: int = 0
    staging_objects: int = 0
    """Objects under ``.s4mpu/`` (multipart staging and upstream temporaries), live ones included."""
    swept_objects: int | None = None
    swept_uploads: int | None = None
    findings: list[Finding] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing left wrong: every finding repaired (corrupt data never is)."""
        return all(f.repaired for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


class Verifier:
    """Checks (and with ``repair``, mends) one bucket of the inner store, ``concurrency`` objects at once."""

    def __init__(self, inner: ObjectStore, pool: CpuCodecPool, *, repair: bool = False, concurrency: int = 8) -> None:
        self.inner = inner
        self.pool = pool
        self.repair = repair
        self.concurrency = concurrency
        self._dictionaries: dict[tuple[str, str], ZstdDictionary] = {}

    async def run(self, url: BucketUrl, min_age: float = 3600.0, progress: bool | None = None) -> VerifyReport:
        report = VerifyReport(url.bucket)
        listed: list[ObjectInfo] = []
        keys: set[str] = set()
        async for obj in walk(self.inner, url.bucket, url.prefix):
            keys.add(obj.key)
            listed.append(obj)
        clients = [o for o in listed if not is_reserved(o.key)]
        report.objects = len(clients)
        report.staging_objects = sum(1 for o in listed if o.key.startswith(MULTIPART_PREFIX))
        work = iter(clients)
        with bar(sum(o.size for o in clients), "B", "verify", enabled=progress) as shown:

            async def worker() -> None:
                for obj in work:
                    await self._object(url.bucket, obj, keys, report)
                    shown.update(obj.size)

            await asyncio.gather(*(worker() for _ in range(max(1, self.concurrency))))
        for obj in listed:
            if obj.key.endswith(SIDECAR_SUFFIX) and obj.key[: -len(SIDECAR_SUFFIX)] not in keys:
                await self._orphan(url.bucket, obj.key, report)
        if self.repair and not url.prefix:
            swept = await CompressingStore(self.inner, self.pool).sweep.sweep_bucket(url.bucket, min_age)
            report.swept_objects, report.swept_uploads = swept.objects, swept.inner_uploads
        report.findings.sort(key=lambda f: (f.key, f.kind))
        return report

    # --- one object ---------------------------------------------------------------------------------

    async def _object(self, bucket: str, listed: ObjectInfo, keys: set[str], report: VerifyReport) -> None:
        """A HEAD tells plain objects (nothing to check but a stray sidecar) from S4 ones, which are
        then read whole; the manifest checked is the one the GET returned, of the very bytes read."""
        key = listed.key
        try:
            head = await self.inner.head_object(bucket, key)
            if self._manifest(head, report) is not None:
                stream = await self.inner.get_object(bucket, key)
            else:
                stream = None
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                report.objects -= 1  # deleted since the listing
                return
            raise
        except CodecError:
            return  # a malformed manifest: reported
        if stream is None:
            report.plain_objects += 1
            report.stored_bytes += head.size
            report.original_bytes += head.size
            if key + SIDECAR_SUFFIX in keys:
                await self._sidecar_finding(bucket, key, SIDECAR_UNNEEDED, "object has no S4 manifest", report)
            return
        try:
            info = stream.info
            try:
                manifest = self._manifest(info, report)
            except CodecError:
                return
            if manifest is None:  # replaced by a plain object since the HEAD
                report.plain_objects += 1
                report.stored_bytes += info.size
                report.original_bytes += info.size
                return
            report.s4_objects += 1
            report.stored_bytes += info.size
            report.original_bytes += manifest.original_size
            try:
                entries = await self._decode(bucket, info, manifest, stream.body)
            except CodecError as exc:
                kind = UNAVAILABLE if exc.kind is CodecErrorKind.UNAVAILABLE else CORRUPT
                report.findings.append(Finding(key, kind, str(exc)))
                return
        finally:
            await stream.aclose()
        await self._check_sidecar(bucket, key, info, entries, key + SIDECAR_SUFFIX in keys, report)

    @staticmethod
    def _manifest(info: ObjectInfo, report: VerifyReport) -> ChunkManifest | None:
        """The object's manifest; a malformed one is reported as corrupt (and raised)."""
        try:
            return ChunkManifest.from_metadata(info.attributes.metadata)
        except CodecError as exc:
            report.findings.append(Finding(info.key, CORRUPT, f"malformed S4 manifest: {exc}"))
            raise

    async def _decode(
        self, bucket: str, info: ObjectInfo, manifest: ChunkManifest, body: AsyncIterator[bytes]
    ) -> list[IndexEntry] | None:
        """Decode the whole body with every check a GET makes; the frame positions of a framed one."""
        pool = await self._pool_for(bucket, manifest)
        if manifest.compressed_size is not None and manifest.compressed_size != info.size:
            raise CodecError.corrupt(f"stored body is {info.size} bytes, manifest says {manifest.compressed_size}")
        if not manifest.framed:
            decoder = BodyDecoder(manifest, pool.registry)
            async for chunk in body:
                await asyncio.to_thread(decoder.feed, chunk)
            await asyncio.to_thread(decoder.finish)
            return None
        reader = FrameStreamReader(stream_length=info.size)
        totals = ManifestTotals(manifest)
        entries: list[IndexEntry] = []
        original = 0
        async for chunk in body:
            frames = reader.feed(chunk)
            decoded = await asyncio.gather(*(pool.decode_frame(f.header, f.payload) for f in frames))
            for frame, data in zip(frames, decoded, strict=True):
                totals.add(len(data), frame.header.crc32c)
                entries.append(IndexEntry(original, frame.header.original_size, frame.offset, frame.header.record_size))
                original += frame.header.original_size
        reader.finish()
        totals.check()
        return entries

    async def _pool_for(self, bucket: str, manifest: ChunkManifest) -> CpuCodecPool:
        """The pool, with the object's dictionary (``.s4dict/<id>``) bound when it names one."""
        if manifest.dict_id is None:
            self.pool.registry.get(manifest.codec)  # CodecError(unavailable) naming the codec
            return self.pool
        dictionary = self._dictionaries.get((bucket, manifest.dict_id))
        if dictionary is None:
            try:
                stream = await self.inner.get_object(bucket, DICTIONARY_PREFIX + manifest.dict_id)
            except StoreError as exc:
                raise CodecError.unavailable(f"dictionary {manifest.dict_id} is missing ({exc.code})") from None
            try:
                dictionary = ZstdDictionary(await read_all(stream.body, MAX_SIDECAR_BYTES))
            finally:
                await stream.aclose()
            if dictionary.dict_id != manifest.dict_id:
                raise CodecError.corrupt(f"dictionary stored as {manifest.dict_id} has id {dictionary.dict_id}")
            self._dictionaries[(bucket, manifest.dict_id)] = dictionary
        return self.pool.with_registry(self.pool.registry.with_dictionary(dictionary))

    # --- sidecars -------------------------------------------------------------------------------------

    async def _check_sidecar(
        self,
        bucket: str,
        key: str,
        info: ObjectInfo,
        entries: list[IndexEntry] | None,
        listed: bool,
        report: VerifyReport,
    ) -> None:
        needed = entries is not None and len(entries) > 1
        name = sidecar_key(key)
        if name is None:
            return  # a key too long for a sidecar: ranged reads walk the frames
        if not needed:
            if listed:
                await self._sidecar_finding(bucket, key, SIDECAR_UNNEEDED, "object has a single frame", report)
            return
        assert entries is not None
        wanted = FrameIndex.from_entries(entries, info.size, info.etag)
        found = await self._read_sidecar(bucket, name) if listed else None
        if found is None:
            kind, detail = SIDECAR_MISSING, f"{len(entries)} frames and no sidecar"
        elif isinstance(found, str):
            kind, detail = SIDECAR_STALE, found
        elif not found.matches(info.etag, info.size):
            kind, detail = SIDECAR_STALE, f"bound to ETag {found.etag} and size {found.source_compressed_size}"
        elif found.entries != wanted.entries or found.total_original != wanted.total_original:
            kind, detail = SIDECAR_WRONG, "bound to the object but its entries are not the object's frames"
        else:
            return
        finding = Finding(key, kind, detail)
        report.findings.append(finding)
        if self.repair:
            finding.repaired = await self._rewrite(bucket, key, name, info, wanted)

    async def _read_sidecar(self, bucket: str, name: str) -> FrameIndex | str | None:
        """The parsed sidecar; a reason string when it is unreadable; None when it is gone."""
        try:
            stream = await self.inner.get_object(bucket, name)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        try:
            data = await read_all(stream.body, MAX_SIDECAR_BYTES)
        finally:
            await stream.aclose()
        try:
            return FrameIndex.decode(data)
        except CodecError as exc:
            return f"unparsable: {exc}"

    async def _rewrite(self, bucket: str, key: str, name: str, info: ObjectInfo, index: FrameIndex) -> bool:
        """Put the rebuilt sidecar, unless the object changed since it was read (its new writer owns it)."""
        try:
            current = await self.inner.head_object(bucket, key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return False
            raise
        if current.etag != info.etag or current.size != info.size:
            return False
        encoded = index.encode()
        stored = await self.inner.put_object(bucket, name, single_chunk(encoded), ObjectAttributes())
        return stored.size == len(encoded)

    async def _sidecar_finding(self, bucket: str, key: str, kind: str, detail: str, report: VerifyReport) -> None:
        finding = Finding(key, kind, detail)
        report.findings.append(finding)
        if self.repair:
            await self._delete(bucket, key + SIDECAR_SUFFIX)
            finding.repaired = True

    async def _orphan(self, bucket: str, sidecar: str, report: VerifyReport) -> None:
        """A sidecar whose object the listing did not show, once a HEAD agrees it is gone."""
        try:
            await self.inner.head_object(bucket, sidecar[: -len(SIDECAR_SUFFIX)])
            return  # written since the listing
        except StoreError as exc:
            if exc.code not in ("NoSuchKey", "KeyTooLongError", "InvalidArgument"):
                raise
        finding = Finding(sidecar, ORPHAN_SIDECAR, "its object does not exist")
        report.findings.append(finding)
        if self.repair:
            await self._delete(bucket, sidecar)
            finding.repaired = True

    async def _delete(self, bucket: str, key: str) -> None:
        try:
            await self.inner.delete_object(bucket, key)
        except StoreError as exc:
            if exc.code != "NoSuchKey":
                raise


def format_report(report: VerifyReport) -> str:
    lines = [
        f"s3://{report.bucket}: {report.objects} objects ({report.s4_objects} in S4 format, "
        f"{report.plain_objects} plain), {report.original_bytes} original bytes stored in {report.stored_bytes}",
        f"gateway staging objects (.s4mpu/): {report.staging_objects}",
    ]
    if report.swept_objects is not None:
        lines.append(f"swept: {report.swept_objects} leftover objects, {report.swept_uploads} inner uploads aborted")
    for f in report.findings:
        lines.append(f"{f.kind:<18} {f.key}: {f.detail}{' [repaired]' if f.repaired else ''}")
    lines.append("OK" if report.ok else f"{sum(not f.repaired for f in report.findings)} problem(s) left")
    return "\n".join(lines)
