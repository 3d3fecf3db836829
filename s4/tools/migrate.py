"""``s4 migrate`` and ``s4 recompress``: objects of an upstream bucket rewritten into the S4 format, in place.

``migrate`` takes the objects with no S4 manifest (written before the gateway, or around it)
and stores each again under the same key, through the compressing store's own encoder
(``BodyEncoder``: the dispatcher, codec, level and frame policy of the gateway's settings), with
its content type, standard headers, user metadata and tags, and the ETag its clients saw recorded
as the logical ETag (``s4-logical-etag``), so HEAD, GET, listings and If-Match answer as before.
``recompress`` does the same for objects already in the S4 format, decoded (every CRC checked)
and encoded again with the codec and level asked for; their logical ETag and multipart facts stay.

An object is rewritten only when the result is smaller than what is stored now, sidecar
included: the encoded body is spooled (memory, then a temporary file) before anything is sent.

Safe while clients keep writing: every rewrite is a PutObject with ``If-Match`` on the stored
ETag that was read, which the upstream enforces at its commit, so a rewrite never replaces a
newer object (it is counted as ``changed`` and left for a later run). The sidecar goes in after
the object, bound to its new ETag, as the gateway writes it.

Resumable: objects are taken in key order, and a checkpoint file records the key up to which
every object is done; a run started again with the same checkpoint continues after it. An
object migrated but not yet under the checkpoint (the run died meanwhile) is seen again,
found in S4 format already, and skipped.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from s4.codec import ChunkManifest, CodecDispatcher, CodecError, CodecKind, CpuCodecPool, ZstdDictionary
from s4.codec.format.manifest import (
    KEY_CODEC,
    KEY_COMPRESSED_SIZE,
    KEY_CRC32C,
    KEY_DICT_ID,
    KEY_FRAMED,
    KEY_LOGICAL_ETAG,
    KEY_MULTIPART,
    KEY_ORIGINAL_SIZE,
    normalize_metadata,
)
from s4.codec.policy import FramePolicy
from s4.codec.stream import decode_body_stream
from s4.store.base import ObjectInfo, ObjectStore, StoreError, WriteCondition
from s4.store.compressing.encoding import BodyEncoder, EncodedUpload
from s4.store.compressing.reads import InnerReads
from s4.store.compressing.reserved import is_reserved
from s4.store.compressing.sidecars import Sidecars
from s4.store.stats import StoreStats
from s4.tools.location import BucketUrl
from s4.tools.progress import bar

SPOOL_IN_MEMORY = 16 * 1024 * 1024
READ_CHUNK = 1024 * 1024
LIST_PAGE = 1000
MANIFEST_KEYS = frozenset(
    (
        KEY_CODEC,
        KEY_ORIGINAL_SIZE,
        KEY_COMPRESSED_SIZE,
        KEY_CRC32C,
        KEY_FRAMED,
        KEY_MULTIPART,
        KEY_LOGICAL_ETAG,
        KEY_DICT_ID,
    )
)
"""The manifest's own keys: replaced by the new manifest; other ``s4-`` keys (part sizes...) are kept."""


@dataclasses.dataclass
class MigrateReport:
    bucket: str
    prefix: str
    mode: str
    listed: int = 0
    rewritten: int = 0
    already: int = 0
    """Skipped: already in the S4 format (migrate), or not in it (recompress)."""
    not_smaller: int = 0
    changed: int = 0
    """Skipped: a client wrote the key while it was being rewritten (the If-Match failed)."""
    failed: int = 0
    too_large: int = 0
    """Skipped: larger than the run's ``max_size``."""
    original_bytes: int = 0
    """Of the rewritten objects."""
    stored_before: int = 0
    stored_after: int = 0
    seconds: float = 0.0
    resumed_after: str | None = None
    checkpoint: str | None = None
    """The key up to which every object is done (None: from the start)."""
    complete: bool = False
    """The whole prefix was gone through (not stopped by --limit)."""
    errors: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Checkpoint:
    """The key up to which every object is done, in a JSON file written atomically (None: no file)."""

    def __init__(self, path: Path | None, url: BucketUrl, mode: str) -> None:
        self.path = path
        self.identity = {"bucket": url.bucket, "prefix": url.prefix, "mode": mode}

    def load(self) -> str | None:
        if self.path is None or not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        if {k: data.get(k) for k in self.identity} != self.identity:
            raise ValueError(f"checkpoint {self.path} belongs to another run: {data}")
        return data.get("after")

    def save(self, after: str | None, done: bool) -> None:
        """Record progress; a finished run removes the file, so that the next run starts from the top."""
        if self.path is None:
            return
        if done:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({**self.identity, "after": after, "complete": done}))
        os.replace(tmp, self.path)


class _Spooled:
    """An encoded body held until it is known to be worth sending: in memory, past a bound in a file."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (closed by close())
        self.expected_size = 0

    async def fill(self, pieces: AsyncIterator[bytes]) -> None:
        async for piece in pieces:
            self.file.write(piece)
            self.expected_size += len(piece)

    async def body(self) -> AsyncIterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(READ_CHUNK):
            yield chunk

    def close(self) -> None:
        self.file.close()


class _Sized:
    """An async body that tells its length (the upstream store then knows single PUT from multipart)."""

    def __init__(self, body: AsyncIterator[bytes], size: int) -> None:
        self._body = body
        self.expected_size = size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._body


class Migrator:
    """Rewrites the objects of one prefix of ``inner``; see the module docstring."""

    def __init__(
        self,
        inner: ObjectStore,
        pool: CpuCodecPool,
        dispatcher: CodecDispatcher,
        policy: FramePolicy,
        *,
        recompress: bool = False,
        concurrency: int = 8,
        dictionary: ZstdDictionary | None = None,
        max_size: int | None = None,
    ) -> None:
        """``dictionary``: encode as cpu-zstd-dict with it, objects plain or in S4 format alike (those of
        at most ``max_size`` stored bytes), as ``s4 train-dict --apply`` does."""
        self.inner = inner
        self.pool = pool
        self.dictionary = dictionary
        self.max_size = max_size
        if dictionary is not None:
            dispatcher = CodecDispatcher(CodecKind.CPU_ZSTD_DICT, dispatcher.mode, dispatcher.entropy_threshold)
            encoding = pool.with_registry(pool.registry.with_dictionary(dictionary))
        else:
            encoding = pool
        self.encoder = BodyEncoder(encoding, dispatcher, policy, StoreStats())
        self.sidecars = Sidecars(InnerReads(inner, StoreStats()))
        self.recompress = recompress
        self.concurrency = concurrency

    @property
    def mode(self) -> str:
        if self.dictionary is not None:
            return "apply-dict"
        return "recompress" if self.recompress else "migrate"

    def _wanted(self, manifest: ChunkManifest | None) -> bool:
        """Whether an object with this manifest (None: plain) is this run's to rewrite."""
        if manifest is not None and manifest.dict_id is not None:
            return False  # bound to a dictionary already (recompressing it would need that one)
        if self.dictionary is not None:
            return True
        return (manifest is not None) == self.recompress

    async def run(
        self,
        url: BucketUrl,
        checkpoint: Checkpoint | None = None,
        limit: int | None = None,
        progress: bool | None = None,
    ) -> MigrateReport:
        started = time.monotonic()
        report = MigrateReport(url.bucket, url.prefix, self.mode)
        after = checkpoint.load() if checkpoint is not None else None
        report.resumed_after = report.checkpoint = after
        order: collections.deque[str] = collections.deque()  # keys handed out, in key order
        done: set[str] = set()
        queue: asyncio.Queue[ObjectInfo | None] = asyncio.Queue(maxsize=self.concurrency * 4)
        shown = bar(None, "obj", self.mode, enabled=progress)

        def advance() -> None:
            """Move the checkpoint over every key done without a gap before it."""
            moved = False
            while order and order[0] in done:
                done.discard(order[0])
                report.checkpoint = order.popleft()
                moved = True
            if moved and checkpoint is not None:
                checkpoint.save(report.checkpoint, False)

        async def worker() -> None:
            while (obj := await queue.get()) is not None:
                try:
                    await self._one(url.bucket, obj, report)
                except (StoreError, CodecError, OSError) as exc:
                    report.failed += 1
                    if len(report.errors) < 100:
                        report.errors.append(f"{obj.key}: {exc}")
                done.add(obj.key)
                shown.update(1)
                advance()

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.concurrency))]
        try:
            stopped = False
            async for obj in self._listing(url, after):
                if limit is not None and report.listed >= limit:
                    stopped = True
                    break
                report.listed += 1
                order.append(obj.key)
                await queue.put(obj)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            shown.close()
        report.complete = not stopped
        if checkpoint is not None:
            checkpoint.save(report.checkpoint, report.complete)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _listing(self, url: BucketUrl, after: str | None) -> AsyncIterator[ObjectInfo]:
        while True:
            page = await self.inner.list_objects(url.bucket, url.prefix, None, after, LIST_PAGE)
            for obj in page.objects:
                if not is_reserved(obj.key):
                    yield obj
            if not page.is_truncated or page.next_marker is None:
                return
            after = page.next_marker

    async def _one(self, bucket: str, listed: ObjectInfo, report: MigrateReport) -> None:
        if self.max_size is not None and listed.size > self.max_size:
            report.too_large += 1
            return
        try:
            stream = await self.inner.get_object(bucket, listed.key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                report.changed += 1  # deleted since the listing
                return
            raise
        spool = _Spooled()
        try:
            try:
                info = stream.info
                manifest = ChunkManifest.from_metadata(info.attributes.metadata)
                if not self._wanted(manifest):
                    report.already += 1
                    return
                upload, stored = await self._encode(stream.body, info, manifest)
                await spool.fill(stored)
            finally:
                await stream.aclose()
            await self._commit(bucket, info, manifest, upload, spool, report)
        finally:
            spool.close()

    async def _encode(
        self, body: AsyncIterator[bytes], info: ObjectInfo, manifest: ChunkManifest | None
    ) -> tuple[EncodedUpload, AsyncIterator[bytes]]:
        """The stored stream a PUT of the object's original bytes would send."""
        if manifest is None:
            return await self.encoder.encode(body, info.attributes.content_type, info.size)
        original = decode_body_stream(body, manifest, self.pool)
        return await self.encoder.encode(original, info.attributes.content_type, manifest.original_size)

    async def _commit(
        self,
        bucket: str,
        info: ObjectInfo,
        manifest: ChunkManifest | None,
        upload: EncodedUpload,
        spool: _Spooled,
        report: MigrateReport,
    ) -> None:
        sidecar = len(upload.writer.index(info.etag).encode()) if upload.writer.frame_count > 1 else 0
        if upload.codec is CodecKind.PASSTHROUGH or upload.stored_size + sidecar >= info.size:
            report.not_smaller += 1
            return
        metadata = normalize_metadata(info.attributes.metadata)
        kept = {k: v for k, v in metadata.items() if k not in MANIFEST_KEYS}
        if manifest is None:
            logical_etag, multipart = info.etag.strip('"'), False
        else:
            logical_etag, multipart = manifest.logical_etag or info.etag.strip('"'), manifest.multipart
        new_manifest = upload.manifest(logical_etag, multipart=multipart)
        if self.dictionary is not None and upload.codec is CodecKind.CPU_ZSTD_DICT:
            new_manifest = dataclasses.replace(new_manifest, dict_id=self.dictionary.dict_id)
        attributes = dataclasses.replace(info.attributes, metadata=kept | new_manifest.to_metadata())
        tags = await self.inner.get_object_tagging(bucket, info.key) if info.tag_count else None
        try:
            stored = await self.inner.put_object(
                bucket,
                info.key,
                _Sized(spool.body(), spool.expected_size),
                attributes,
                WriteCondition(if_match=info.etag.strip('"')),
                tags=tags,
            )
        except StoreError as exc:
            if exc.code in ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict"):
                report.changed += 1  # a client wrote or deleted the key meanwhile: theirs stands
                return
            raise
        if stored.size != upload.stored_size:
            raise StoreError("InternalError", f"the upstream kept {stored.size} of {upload.stored_size} bytes")
        if upload.writer.frame_count > 1:
            # A single-frame object gets none; one left from an older version is bound to its ETag and
            # never trusted (s4 verify --repair removes it): not worth a DELETE per object here.
            await self.sidecars.write(bucket, info.key, upload.writer, stored)
        report.rewritten += 1
        report.original_bytes += upload.original_size
        report.stored_before += info.size
        report.stored_after += upload.stored_size + sidecar


def format_report(report: MigrateReport) -> str:
    saved = report.stored_before - report.stored_after
    lines = [
        f"{report.mode} s3://{report.bucket}/{report.prefix}"
        + (f" (resumed after {report.resumed_after!r})" if report.resumed_after else ""),
        f"objects gone through: {report.listed} in {report.seconds:.1f} s",
        f"  rewritten:          {report.rewritten} ({report.stored_before} -> {report.stored_after} bytes, "
        f"{saved} saved)",
        f"  already done:       {report.already}",
        f"  would not shrink:   {report.not_smaller}",
        f"  changed meanwhile:  {report.changed} (left as the client wrote them)",
        f"  failed:             {report.failed}",
        *(f"    {e}" for e in report.errors[:20]),
        "complete" if report.complete else f"stopped; done up to {report.checkpoint!r}: run again to resume",
    ]
    return "\n".join(lines)
