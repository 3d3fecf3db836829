"""The S4 stored format as a store wrapper: what clients put is stored compressed in ``inner``.

Clients see the transparent view (original sizes, logical ETags, their own metadata);
the inner store holds S4F2 frame streams with the chunk manifest in their metadata
and a ``<key>.s4index`` sidecar beside multi-frame objects (FORMAT.md). Objects the
inner store already held without a manifest are served as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from s4.codec import (
    ChunkManifest,
    CodecDispatcher,
    CodecError,
    CodecKind,
    CpuCodecPool,
    ZstdDictionary,
)
from s4.codec.policy import FramePolicy
from s4.codec.stream import decode_body_stream, ordered_map
from s4.store.base import (
    MIN_S3_PART_SIZE,
    NULL_VERSION,
    BucketInfo,
    ByteRange,
    CompletionChecksums,
    DeleteResult,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    ObjectStream,
    PartInfo,
    PartsPage,
    SourceChanged,
    StoreError,
    UploadChecksum,
    UploadsPage,
    VersionsPage,
    WriteCondition,
)
from s4.store.compressing.codec_failures import as_store_error, translating
from s4.store.compressing.conditions import concurrent_write_is_a_conflict, on_inner
from s4.store.compressing.encoding import BodyEncoder, DictionaryBinding, binding_for, confirm_stored
from s4.store.compressing.ledger import Ledger
from s4.store.compressing.metering import MeteredStore
from s4.store.compressing.purge import PurgingStore
from s4.store.compressing.reads import InnerReads, VersionChanged, read_all
from s4.store.compressing.reserved import (
    DICTIONARY_PREFIX,
    is_reserved,
    may_hold_only_reserved,
    past_reserved_range,
    refuse_reserved,
    reserved_prefix,
)
from s4.store.compressing.sidecars import MAX_SIDECAR_BYTES, Sidecars
from s4.store.compressing.staging import MultipartStaging
from s4.store.compressing.sweep import LeftoverSweep
from s4.store.compressing.view import logical
from s4.store.stats import WRITE_OUTCOME, StoreStats

_log = logging.getLogger(__name__)
LISTING_HEAD_CONCURRENCY = 16
LISTING_CACHE_SIZE = 10_000
LISTING_SETTLED_S = 2.0
"""Age before a listed object's client view is cached (see _settled)."""
PLANNED_READ_ATTEMPTS = 3
"""Range GETs planned from a HEAD, each foiled by an overwrite, before one GET of the whole object."""
DELETE_BUCKET_ATTEMPTS = 3
"""Deletes of a bucket that holds only the gateway's own objects, each after clearing them."""
COPY_ATTEMPTS = 3
"""Looks at a copy's source before the copy gives up on a source that other writers keep replacing."""


class CompressingStore:
    """An ObjectStore that compresses into another one."""

    listing_includes_metadata = True

    def __init__(
        self,
        inner: ObjectStore,
        pool: CpuCodecPool,
        dispatcher: CodecDispatcher | None = None,
        policy: FramePolicy | None = None,
        ledger: Ledger | None = None,
        dictionaries: Sequence[DictionaryBinding] = (),
    ) -> None:
        self.ledger = ledger
        self.dictionary_bindings = tuple(dictionaries)
        """Small objects PUT under these prefixes are stored as cpu-zstd-dict (``_encoder_for``)."""
        if ledger is not None:  # every change of the inner store measured for the savings ledger
            inner = MeteredStore(inner, ledger)  # type: ignore[assignment]
        self.inner = inner
        self.pool = pool
        self.dispatcher = dispatcher or CodecDispatcher()
        self.policy = policy or FramePolicy()
        self.stats = StoreStats()
        self.encoder = BodyEncoder(self.pool, self.dispatcher, self.policy, self.stats)
        self._dict_encoders: dict[str, BodyEncoder] = {}
        owned = PurgingStore(inner)  # the gateway's own objects: deleted for good on versioned buckets too
        self.reads = InnerReads(owned, self.stats)  # type: ignore[arg-type]
        self.sidecars = Sidecars(self.reads)
        self._dictionaries: OrderedDict[tuple[str, str], ZstdDictionary] = OrderedDict()
        self._listing_cache: OrderedDict[tuple[str, str, str, int, dt.datetime], ObjectInfo] = OrderedDict()
        self._staging = MultipartStaging(owned, self.encoder, self.sidecars)  # type: ignore[arg-type]
        self.sweep = LeftoverSweep(owned, self._staging)  # type: ignore[arg-type]
        """The gateway's own leftovers of interrupted operations (the composition root runs it periodically)."""

    @property
    def min_part_size(self) -> int:
        return MIN_S3_PART_SIZE

    async def close(self) -> None:
        if self.ledger is not None:
            await self.ledger.close()
        await self.inner.close()

    async def check_ready(self) -> str | None:
        """Why this store cannot serve right now, or None: the inner store must answer, the codec must run."""
        if not self.pool.registry.is_available(self.dispatcher.default):
            return f"codec {self.dispatcher.default.wire_name} is unavailable"
        ping = getattr(self.inner, "ping", None)
        try:
            if ping is not None:
                await ping()
            else:
                await self.inner.list_buckets()
        except StoreError as exc:
            if exc.code == "XMinioStorageFull":
                return f"storage full: {exc.message}"
            return f"store unreachable: {exc}"
        return None

    # --- buckets: nothing to transform ------------------------------------------------------------

    async def list_buckets(self) -> list[BucketInfo]:
        return await self.inner.list_buckets()

    async def create_bucket(self, bucket: str) -> None:
        self._forget_listings(bucket)  # deleted and re-created elsewhere: not the bucket it was
        await self.inner.create_bucket(bucket)

    @translating
    async def delete_bucket(self, bucket: str) -> None:
        """A bucket without client objects is empty to the client, and S3 deletes it.

        S3 deletes a bucket while multipart uploads are in progress, aborting them (s3-tests'
        cleanup relies on it); what else is left is the gateway's own (sidecars of objects deleted
        underneath, staging, temporaries, inner uploads of interrupted operations, dictionaries),
        which goes with the bucket. Only client objects keep it.
        """
        self._forget_listings(bucket)
        async with self.ledger.held() if self.ledger is not None else contextlib.nullcontext():
            for attempt in range(DELETE_BUCKET_ATTEMPTS):
                try:
                    await self.inner.delete_bucket(bucket)
                    return
                except StoreError as exc:
                    # Another gateway's ledger record may land between the clearing and the delete:
                    # cleared again, a few times, before the bucket is reported not empty.
                    if exc.code != "BucketNotEmpty" or attempt == DELETE_BUCKET_ATTEMPTS - 1:
                        raise
                    if not await self.sweep.clear_bucket(bucket):
                        raise

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return await self.inner.head_bucket(bucket)

    async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
        return await self.inner.get_bucket_document(bucket, name)

    async def get_bucket_documents(self, bucket: str, names: Sequence[str]) -> dict[str, bytes | None]:
        return await self.inner.get_bucket_documents(bucket, names)

    async def put_bucket_document(self, bucket: str, name: str, document: bytes) -> None:
        await self.inner.put_bucket_document(bucket, name, document)

    async def delete_bucket_document(self, bucket: str, name: str) -> None:
        await self.inner.delete_bucket_document(bucket, name)

    # --- the transparent view ----------------------------------------------------------------------

    def logical(self, info: ObjectInfo) -> tuple[ObjectInfo, ChunkManifest | None]:
        """What the client sees of an inner object, and its manifest (None: not S4-managed)."""
        return logical(info)

    @translating
    async def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        refuse_reserved(key)
        return self.logical(await self.inner.head_object(bucket, key, **_version(version_id)))[0]

    # --- versioning: the inner store's, with the gateway's own objects left out --------------------------

    async def get_bucket_versioning(self, bucket: str) -> str | None:
        return await self.inner.get_bucket_versioning(bucket)

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        await self.inner.put_bucket_versioning(bucket, status)

    @translating
    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionsPage:
        """The inner versions of client keys only (sidecars, staging, dictionaries, records are the
        gateway's), each in the client's view: a version's own manifest gives its original size and ETag.

        What is left out takes no room in the page: the inner store is asked again, past what it
        answered, until ``max_keys`` client entries are in or it has no more (the gateway's ``.s4…``
        names sort before most keys, and a page of them alone would look empty)."""
        versions: list[ObjectInfo] = []
        prefixes: list[str] = []
        while True:
            want = max_keys - len(versions) - len(prefixes)
            page = await self.inner.list_object_versions(bucket, prefix, delimiter, key_marker, version_id_marker, want)
            visible = [v for v in page.versions if not is_reserved(v.key)]
            versions += await self._versions_view(bucket, visible)
            prefixes += await self._client_prefixes(page.common_prefixes, self._first_version_key(bucket))
            more = page.is_truncated and page.next_key_marker is not None
            if not more or want <= 0 or len(versions) + len(prefixes) >= max_keys:
                return VersionsPage(versions, prefixes, more, page.next_key_marker, page.next_version_id_marker)
            key_marker, version_id_marker = page.next_key_marker, page.next_version_id_marker

    async def _versions_view(self, bucket: str, versions: Sequence[ObjectInfo]) -> list[ObjectInfo]:
        if getattr(self.inner, "listing_includes_metadata", False):
            return [v if v.delete_marker else self.logical(v)[0] for v in versions]
        gate = asyncio.Semaphore(LISTING_HEAD_CONCURRENCY)

        async def view(version: ObjectInfo) -> ObjectInfo | None:
            if version.delete_marker:
                return version
            async with gate:
                try:
                    head = await self.inner.head_object(bucket, version.key, **_version(version.version_id))
                except StoreError as exc:
                    if exc.code in ("NoSuchKey", "NoSuchVersion"):
                        return None  # deleted since the listing
                    raise
            seen = self.logical(head)[0]
            return dataclasses.replace(seen, is_latest=version.is_latest, version_id=version.version_id)

        views = await asyncio.gather(*(view(v) for v in versions))
        return [v for v in views if v is not None]

    # --- PUT ------------------------------------------------------------------------------------------

    @translating
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        attributes: ObjectAttributes,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        refuse_reserved(key)
        await self.inner.head_bucket(bucket)
        inner_condition = await on_inner(self.inner, bucket, key, condition)  # 412/404 before any byte is read
        metadata: dict[str, str] = {}  # filled once the body has ended (the caller may still add to its own)
        size = getattr(body, "expected_size", None)
        encoder = await self._encoder_for(bucket, key, size)
        upload, stored = await encoder.encode(body, attributes.content_type, size)

        async def finished() -> AsyncIterator[bytes]:
            async for piece in stored:
                yield piece
            metadata.update({k: v for k, v in attributes.metadata.items() if not k.lower().startswith("s4-")})
            metadata.update(upload.manifest(upload.digest.hexdigest()).to_metadata())
            upload.ended = True

        inner_attributes = dataclasses.replace(attributes, metadata=metadata)
        with concurrent_write_is_a_conflict(inner_condition):
            inner_info = await self.inner.put_object(
                bucket, key, finished(), inner_attributes, inner_condition, tags=tags, content_etag=False
            )
        await confirm_stored(self.inner, bucket, key, inner_info, upload)
        self.stats.backend_bytes_written += upload.stored_size
        WRITE_OUTCOME.set((upload.codec.wire_name, upload.original_size, upload.stored_size))
        await self.sidecars.write(bucket, key, upload.writer, inner_info)
        return self.logical(inner_info)[0]

    # --- GET ------------------------------------------------------------------------------------------

    @translating
    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> ObjectStream:
        """One version of the object, whole or a range, whatever writers do meanwhile.

        A whole read is one inner GET, so one version. A range is planned from a HEAD (manifest,
        sidecar) and read pinned to that version; an object replaced in between is planned again,
        and one replaced every time is read from its start by one GET (which costs more, never fails).
        """
        refuse_reserved(key)
        if byte_range is None:
            stream = await self._whole(bucket, key, version_id)
        else:
            stream = await self._range(bucket, key, byte_range, version_id)
        if if_match is not None and stream.info.etag != if_match:
            await stream.aclose()
            raise StoreError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        return stream

    async def _whole(self, bucket: str, key: str, version_id: str | None = None) -> ObjectStream:
        stream = await self.inner.get_object(bucket, key, **_version(version_id))
        try:
            info, manifest = self.logical(stream.info)
            pool = await self._pool_for(bucket, manifest)
        except BaseException:
            await stream.aclose()
            raise
        body = self._counted(decode_body_stream(self.reads.metered(stream.body), manifest, pool), bucket, key)
        return ObjectStream(info, _Closing(body, stream), None)

    async def _range(self, bucket: str, key: str, byte_range: ByteRange, version_id: str | None = None) -> ObjectStream:
        for _ in range(PLANNED_READ_ATTEMPTS):
            head = await self.inner.head_object(bucket, key, **_version(version_id))
            try:
                return await self._planned(bucket, key, head, byte_range)
            except VersionChanged:
                continue
        return await self._range_of_whole(bucket, key, byte_range, version_id)

    async def _planned(self, bucket: str, key: str, head: ObjectInfo, byte_range: ByteRange) -> ObjectStream:
        """The range of the version ``head`` describes; VersionChanged once it is replaced."""
        info, manifest = self.logical(head)
        first, last = byte_range.resolve(info.size)
        if manifest is None:
            return await self.reads.pinned(bucket, key, head, ByteRange(first, last))
        if (first, last) == (0, info.size - 1):
            # All of it: the full read checks the whole-object CRC too, which a partial read cannot.
            return await self._range_of_whole(bucket, key, byte_range, head.version_id)
        body = await self._ranged(bucket, key, head, manifest, first, last)
        return ObjectStream(info, body, (first, last))

    async def _range_of_whole(
        self, bucket: str, key: str, byte_range: ByteRange, version_id: str | None = None
    ) -> ObjectStream:
        """The range cut from one whole read: the range resolved against the version that GET returned."""
        whole = await self._whole(bucket, key, version_id)
        try:
            first, last = byte_range.resolve(whole.info.size)
        except BaseException:
            await whole.aclose()
            raise
        if (first, last) == (0, whole.info.size - 1):
            return ObjectStream(whole.info, whole.body, (first, last))
        return ObjectStream(whole.info, _Closing(_slice(whole.body, 0, first, last), whole), (first, last))

    async def _ranged(
        self, bucket: str, key: str, head: ObjectInfo, manifest: ChunkManifest, first: int, last: int
    ) -> AsyncIterator[bytes]:
        if not manifest.framed:
            if manifest.codec is CodecKind.PASSTHROUGH:
                stream = await self.reads.pinned(bucket, key, head, ByteRange(first, last))
                return _Closing(self.reads.metered(stream.body), stream)
            pool = await self._pool_for(bucket, manifest)  # before opening the body: a refusal leaks nothing
            whole = await self.reads.pinned(bucket, key, head, None)
            decoded = decode_body_stream(self.reads.metered(whole.body), manifest, pool)
            return _Closing(_slice(decoded, 0, first, last), whole)
        pool = await self._pool_for(bucket, manifest)
        index = await self.sidecars.read(bucket, key, head)
        if index is not None:
            covering = index.covering(first, last + 1)
            if covering:
                start, end = covering[0].compressed_offset, covering[-1].compressed_end - 1
                stream = await self.reads.pinned(bucket, key, head, ByteRange(start, end))
                self.stats.range_frames_fetched += len(covering)
                frames = _matching(self.reads.frames(stream.body, end - start + 1), covering, start)
                body = self._decode_span(frames, pool, covering[0].original_offset, first, last)
                return _Closing(self._counted(body, bucket, key), stream)
        self.stats.sidecar_fallbacks += 1
        stream = await self.reads.pinned(bucket, key, head, None)
        frames = self.reads.frames(stream.body, manifest.compressed_size)
        return _Closing(self._counted(self._decode_span(frames, pool, 0, first, last), bucket, key), stream)

    async def _decode_span(
        self, frames: AsyncIterator, pool: CpuCodecPool, base: int, first: int, last: int
    ) -> AsyncIterator[bytes]:
        """Bytes ``first..last`` from frames starting at original offset ``base``; frames before the
        range are skipped undecoded, reading stops after the last frame the range needs."""

        async def needed() -> AsyncIterator:
            offset = base
            async for frame in frames:
                start, offset = offset, offset + frame.header.original_size
                if offset <= first or frame.header.original_size == 0:
                    continue
                yield start, frame
                if offset > last:
                    return

        async def decode(item) -> tuple[int, bytes]:
            start, frame = item
            return start, await pool.decode_frame(frame.header, frame.payload)

        produced = 0
        async for start, data in ordered_map(decode, needed(), pool.max_in_flight):
            lo, hi = max(first - start, 0), min(last - start + 1, len(data))
            if lo < hi:
                produced += hi - lo
                yield data[lo:hi]
        if produced != last - first + 1:
            raise CodecError.corrupt(f"stored frames end before the requested range ({produced} bytes found)")

    async def _pool_for(self, bucket: str, manifest: ChunkManifest | None) -> CpuCodecPool:
        """The pool, bound to the object's zstd dictionary when it has one (read from .s4dict/, cached).

        An object whose codec cannot run on this node (an nvCOMP codec other than zstd without a
        GPU) is refused here, before any response starts: a 503 naming the codec, not a cut body.
        """
        if manifest is None:
            return self.pool
        if manifest.dict_id is None:
            self.pool.registry.get(manifest.codec)  # CodecError(unavailable) naming the codec
            return self.pool
        dictionary = await self._dictionary(bucket, manifest.dict_id)
        return self.pool.with_registry(self.pool.registry.with_dictionary(dictionary))

    async def _dictionary(self, bucket: str, dict_id: str) -> ZstdDictionary:
        """The bucket's dictionary ``.s4dict/<dict_id>``, read once and cached (checked against its id)."""
        cache_key = (bucket, dict_id)
        dictionary = self._dictionaries.get(cache_key)
        if dictionary is None:
            try:
                stream = await self.inner.get_object(bucket, DICTIONARY_PREFIX + dict_id)
            except StoreError as exc:
                raise CodecError.unavailable(f"dictionary {dict_id} of this object is missing ({exc.code})") from None
            try:
                dictionary = ZstdDictionary(await read_all(stream.body, MAX_SIDECAR_BYTES))
            finally:
                await stream.aclose()
            if dictionary.dict_id != dict_id:
                raise CodecError.corrupt(f"dictionary stored as {dict_id} has id {dictionary.dict_id}")
            self._dictionaries[cache_key] = dictionary
            while len(self._dictionaries) > 64:
                self._dictionaries.popitem(last=False)
        return dictionary

    async def _encoder_for(self, bucket: str, key: str, size: int | None) -> BodyEncoder:
        """The encoder of a PUT: with the dictionary bound to the key's prefix for a small object, else
        the gateway's. A bound dictionary that cannot be read leaves the object plain cpu-zstd (logged):
        the PUT never fails for a dictionary."""
        binding = binding_for(self.dictionary_bindings, bucket, key, size)
        if binding is None:
            return self.encoder
        try:
            # Still in the bucket now, whatever this process read before: objects written with a dictionary
            # that is gone (the bucket deleted and made again, by any process) could never be read back.
            await self.inner.head_object(bucket, DICTIONARY_PREFIX + binding.dict_id)
            dictionary = await self._dictionary(bucket, binding.dict_id)
        except (CodecError, StoreError) as exc:
            self._dictionaries.pop((bucket, binding.dict_id), None)
            _log.warning(
                "dictionary %s bound to %s/%s unusable (%s); stored without", binding.dict_id, bucket, key, exc
            )
            return self.encoder
        encoder = self._dict_encoders.get(dictionary.dict_id)
        if encoder is None:
            encoder = self._dict_encoders[dictionary.dict_id] = self.encoder.with_dictionary(dictionary)
        return encoder

    async def _counted(self, body: AsyncIterator[bytes], bucket: str, key: str) -> AsyncIterator[bytes]:
        """Corrupt data is logged with its key and counted before the error cuts the response."""
        try:
            async for piece in body:
                yield piece
        except CodecError as exc:
            if exc.is_corrupt:
                self.stats.corrupt_frames += 1
                _log.error("corrupt stored data in %s/%s: %s", bucket, key, exc)
            raise

    # --- delete, copy, list ---------------------------------------------------------------------------

    @translating
    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> DeleteResult:
        """A version deleted for good takes its sidecar with it; a delete marker leaves the versions'
        sidecars in place (they still describe versions that exist), except under Suspended, where the
        marker replaced the null version."""
        refuse_reserved(key)
        result = await self.inner.delete_object(bucket, key, **_version(version_id))
        result = result if result is not None else DeleteResult()
        if version_id is not None:
            if not result.delete_marker:
                await self.sidecars.remove(bucket, key, version_id)
        elif result.version_id is None or result.version_id == NULL_VERSION:
            await self.sidecars.remove(bucket, key, result.version_id)
        return result

    @translating
    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        attributes: ObjectAttributes | None,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        src_version_id: str | None = None,
        source_check: Callable[[ObjectInfo], None] | None = None,
    ) -> ObjectInfo:
        """Stored bytes are copied as they are, manifest included (REPLACE keeps the s4-* keys);
        ``condition`` applies to the destination; tags are the inner object's, copied or replaced.
        ``source_check`` is called with the source as it is copied (as clients see it), before anything
        is written: a copy's x-amz-copy-source-if-* conditions hold for the object copied.

        The copy is of the source object looked at first, whose manifest a REPLACE carries over and
        whose sidecar the copy gets: another writer's object there by the time the inner store reads
        it is refused (SourceChanged) and the copy starts again from a fresh look. Copied anyway, the
        new bytes went out under the old manifest (every read of the copy failing as corrupt) or the
        old frame index."""
        refuse_reserved(src_key)
        refuse_reserved(dst_key)
        for attempt in range(1, COPY_ATTEMPTS + 1):
            source = await self.inner.head_object(src_bucket, src_key, **_version(src_version_id))
            described, manifest = self.logical(source)
            if source_check is not None:
                source_check(described)
            kept = attributes
            if attributes is not None:
                # The client's s4-* keys never pass, whether or not the source has a manifest: over an
                # object written straight upstream they forged a manifest (every read failing as corrupt)
                # or a carried header.
                client = {k: v for k, v in attributes.metadata.items() if not k.lower().startswith("s4-")}
                ours = manifest.to_metadata() if manifest is not None else {}
                kept = dataclasses.replace(attributes, metadata=client | ours)
            inner_condition = await on_inner(self.inner, dst_bucket, dst_key, condition)
            try:
                with concurrent_write_is_a_conflict(inner_condition, missing_counts=False):
                    copied = await self.inner.copy_object(
                        src_bucket,
                        src_key,
                        dst_bucket,
                        dst_key,
                        kept,
                        inner_condition,
                        tags=tags,
                        src_etag=source.etag,
                        **({} if src_version_id is None else {"src_version_id": src_version_id}),
                    )
                break
            except SourceChanged:
                if attempt == COPY_ATTEMPTS:
                    raise
        if manifest is not None and manifest.framed:
            await self.sidecars.copy(src_bucket, src_key, source, dst_bucket, dst_key, copied)
        else:
            await self.sidecars.remove_stale(dst_bucket, dst_key, copied.version_id)
        return self.logical(copied)[0]

    # --- tags: the inner object's own (same key), nothing to transform ----------------------------------

    @translating
    async def get_object_tagging(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, str]:
        refuse_reserved(key)
        return await self.inner.get_object_tagging(bucket, key, **_version(version_id))

    @translating
    async def put_object_tagging(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str | None = None
    ) -> None:
        """The inner store changes the tags in place: the compressed bytes and their sidecar stay valid."""
        refuse_reserved(key)
        await self.inner.put_object_tagging(bucket, key, tags, **_version(version_id))

    @translating
    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """Client keys only; what is left out takes no room in the page (see list_object_versions)."""
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        while True:
            want = max_keys - len(objects) - len(prefixes)
            page = await self.inner.list_objects(bucket, prefix, delimiter, start_after, want)
            visible = [o for o in page.objects if not is_reserved(o.key)]
            objects += await self._listing_view(bucket, visible)
            prefixes += await self._client_prefixes(page.common_prefixes, self._first_key(bucket))
            more = page.is_truncated and page.next_marker is not None
            if not more or want <= 0 or len(objects) + len(prefixes) >= max_keys:
                return ListPage(objects, prefixes, page.is_truncated, page.next_marker)
            start_after = page.next_marker

    async def _client_prefixes(self, prefixes: Sequence[str], first_key: _FirstKey) -> list[str]:
        """The common prefixes a client key falls under: never one of reserved objects alone (a
        delimiter of ``.`` rolled ``.s4bucket/...`` up into ``.``, and ``data.s4index`` into ``data.``).
        Where that cannot be told from the prefix, the inner store is asked for a client key under it."""
        kept = []
        for prefix in prefixes:
            if reserved_prefix(prefix):
                continue
            if may_hold_only_reserved(prefix) and not await _holds_client_key(prefix, first_key):
                continue
            kept.append(prefix)
        return kept

    def _first_key(self, bucket: str) -> _FirstKey:
        async def first(prefix: str, after: str | None) -> str | None:
            page = await self.inner.list_objects(bucket, prefix, None, after, 1)
            return page.objects[0].key if page.objects else None

        return first

    def _first_version_key(self, bucket: str) -> _FirstKey:
        async def first(prefix: str, after: str | None) -> str | None:
            page = await self.inner.list_object_versions(bucket, prefix, None, after, None, 1)
            return page.versions[0].key if page.versions else None

        return first

    async def _listing_view(self, bucket: str, objects: Sequence[ObjectInfo]) -> list[ObjectInfo]:
        """Original sizes and logical ETags: from the listing's metadata, or a cached HEAD per key.

        The cache answers only for the very inner object it saw: keyed by everything the
        listing tells of it (ETag, LastModified, size). An identical rewrite or a REPLACE
        copy keeps the stored ETag but not LastModified, so it is a new entry; a bucket's
        entries go with the bucket.
        """
        if getattr(self.inner, "listing_includes_metadata", False):
            return [self.logical(o)[0] for o in objects]
        gate = asyncio.Semaphore(LISTING_HEAD_CONCURRENCY)

        async def view(obj: ObjectInfo) -> ObjectInfo | None:
            cache_key = _listing_identity(obj)
            cached = self._listing_cache.get(cache_key)
            if cached is not None:
                self._listing_cache.move_to_end(cache_key)
                return cached
            async with gate:
                try:
                    head = await self.inner.head_object(bucket, obj.key)
                except StoreError as exc:
                    if exc.code == "NoSuchKey":
                        return None  # deleted since the listing, as a listing now would show it
                    raise
            result = self.logical(head)[0]
            if _listing_identity(head) == cache_key and _settled(head):
                self._listing_cache[cache_key] = result
                while len(self._listing_cache) > LISTING_CACHE_SIZE:
                    self._listing_cache.popitem(last=False)
            # Otherwise it changed since the listing: show what HEAD saw (the newer version, in
            # its client view, never the stored size and ETag), and cache nothing.
            return result

        views = await asyncio.gather(*(view(o) for o in objects))
        return [v for v in views if v is not None]

    def _forget_listings(self, bucket: str) -> None:
        """Drop a bucket's cached listing views: a bucket of the same name is another bucket."""
        for cache_key in [k for k in self._listing_cache if k[0] == bucket]:
            del self._listing_cache[cache_key]

    # --- multipart: see staging.py -------------------------------------------------------------------

    @translating
    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        refuse_reserved(key)
        return await self._staging.create(bucket, key, attributes, tags, checksum)

    @translating
    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: AsyncIterable[bytes]
    ) -> PartInfo:
        return await self._staging.upload_part(bucket, key, upload_id, part_number, body)

    @translating
    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        byte_range: ByteRange | None = None,
        *,
        src_version_id: str | None = None,
        src_etag: str | None = None,
        source_check: Callable[[ObjectInfo], None] | None = None,
    ) -> PartInfo:
        """The source range is decoded and framed again, like any part (its checksum computed, in an
        upload with one). ``source_check``: as for copy_object, on the source as it is read; ``src_etag``:
        its ETag as the caller saw it, as in ObjectStore."""
        source = await self.get_object(src_bucket, src_key, byte_range, version_id=src_version_id)
        try:
            if src_etag is not None and source.info.etag != src_etag:
                raise SourceChanged()
            if source_check is not None:
                source_check(source.info)
            return await self._staging.upload_part(bucket, key, upload_id, part_number, source.body, copied=True)
        finally:
            await source.aclose()

    @translating
    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        *,
        checksums: CompletionChecksums | None = None,
    ) -> ObjectInfo:
        return await self._staging.complete(bucket, key, upload_id, parts, condition, checksums)

    @translating
    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._staging.abort(bucket, key, upload_id)

    @translating
    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0, max_parts: int = 1000
    ) -> PartsPage:
        return await self._staging.list_parts(bucket, key, upload_id, part_number_marker, max_parts)

    @translating
    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        return await self._staging.list_uploads(bucket, prefix, key_marker, upload_id_marker, max_uploads)


def _version(version_id: str | None) -> dict[str, str]:
    """The ``version_id`` keyword for an inner call, left out when there is none (so an inner store
    without versions is called as before)."""
    return {} if version_id is None else {"version_id": version_id}


def _listing_identity(info: ObjectInfo) -> tuple[str, str, str, int, dt.datetime]:
    """What tells one stored version of a key from another, as both a listing and a HEAD give it.

    To the second: some stores list milliseconds but HEAD whole seconds (HTTP dates).
    """
    return info.bucket, info.key, info.etag, info.size, info.last_modified.replace(microsecond=0)


def _settled(info: ObjectInfo) -> bool:
    """Written before the current second and the one before it: no other write of the key can share its
    identity (the second is all a HEAD tells), whereas two writes of the same stored bytes in one second
    (two multipart uploads of one content with other part boundaries, each its own client ETag) do."""
    age = dt.datetime.now(dt.UTC) - info.last_modified
    return age > dt.timedelta(seconds=LISTING_SETTLED_S)


class _Closing:
    """A body that releases its inner stream once read to its end, failed, or closed.

    A class, not an async generator: a generator's ``finally`` never runs when it is closed
    before its first item, and a GET answered by its conditions (304, 412) or failing while
    it sends the head closes a body it never read; that must still release the object.
    """

    def __init__(self, body: AsyncIterator[bytes], stream: ObjectStream) -> None:
        self._body = body
        self._stream: ObjectStream | None = stream

    def __aiter__(self) -> _Closing:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._body)
        except CodecError as exc:
            await self.aclose()
            raise as_store_error(exc) from exc
        except BaseException:  # the end (StopAsyncIteration) too
            await self.aclose()
            raise

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            close = getattr(self._body, "aclose", None)
            if close is not None:
                await close()
        finally:
            await stream.aclose()


async def _matching(frames: AsyncIterator, entries: Sequence, base: int) -> AsyncIterator:
    """The fetched frames, checked against the sidecar entries that promised them.

    A sidecar bound to the right ETag can still disagree with the frames (a bug in
    whoever wrote it); trusting its offsets would slice the wrong bytes.
    """
    expected = iter(entries)
    async for frame in frames:
        if frame.header.original_size == 0:
            yield frame  # empty frames are not indexed (covering() skips them)
            continue
        entry = next(expected, None)
        if (
            entry is None
            or frame.offset + base != entry.compressed_offset
            or frame.header.record_size != entry.compressed_size
            or frame.header.original_size != entry.original_size
        ):
            raise CodecError.corrupt("stored frames disagree with the object's frame index")
        yield frame


async def _slice(body: AsyncIterator[bytes], base: int, first: int, last: int) -> AsyncIterator[bytes]:
    offset = base
    async for piece in body:
        start, offset = offset, offset + len(piece)
        lo, hi = max(first - start, 0), min(last - start + 1, len(piece))
        if lo < hi:
            yield piece[lo:hi]
        if offset > last:
            return


_FirstKey = Callable[[str, str | None], Awaitable[str | None]]
"""The first key under a prefix past a marker (None: none), in a listing of objects or of versions."""


async def _holds_client_key(prefix: str, first_key: _FirstKey) -> bool:
    """Whether a key that is not reserved lies under ``prefix``: reserved ones are stepped over, a whole
    reserved prefix at a time, so a bucket's many ``.s4bucket/`` records cost one lookup, not one each."""
    after = None
    while (key := await first_key(prefix, after)) is not None:
        if not is_reserved(key):
            return True
        after = past_reserved_range(key)
    return False
