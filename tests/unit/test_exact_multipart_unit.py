"""Multipart details of issue 13 below the HTTP layer: completion lists, ListParts cost, the leftover sweep."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.store.base import (
    ByteRange,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    PartInfo,
    PartsPage,
    StoreError,
)
from s4.store.compressing.staging import KEY_UPLOAD_ID
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from s4.store.multipart import validate_completion
from tests.unit.fault_gateway import FaultGateway, etag_of
from tests.unit.store_helpers import body, md5


async def error_code(awaitable) -> str:
    with pytest.raises(StoreError) as info:
        await awaitable
    return info.value.code


KiB = 1024
MiB = 1024 * KiB


# == completing with a part number listed twice ==========================================================


def _part(number: int, etag: str, size: int = 5 * MiB) -> PartInfo:
    return PartInfo(number, size, etag, None)  # type: ignore[arg-type]


def test_a_part_number_repeated_in_a_row_is_checked_by_its_last_etag():
    uploaded = {1: _part(1, "a" * 32), 2: _part(2, "c" * 32)}
    chosen = validate_completion([(1, "b" * 32), (1, "a" * 32), (2, "c" * 32)], uploaded)
    assert [(p.part_number, p.etag) for p in chosen] == [(1, "a" * 32), (2, "c" * 32)]
    with pytest.raises(StoreError) as info:
        validate_completion([(1, "a" * 32), (1, "b" * 32)], uploaded)
    assert info.value.code == "InvalidPart"
    with pytest.raises(StoreError) as info:  # not in a row: out of order
        validate_completion([(1, "a" * 32), (2, "c" * 32), (1, "a" * 32)], uploaded)
    assert info.value.code == "InvalidPartOrder"


# == ListParts reads one page's worth per page ============================================================


class CountingStore:
    """Passes every call to ``inner``, counting the objects listings return and the HEADs."""

    def __init__(self, inner: ObjectStore) -> None:
        self._inner = inner
        self.listed = 0
        self.heads = 0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def list_objects(self, *args, **kwargs) -> ListPage:
        page = await self._inner.list_objects(*args, **kwargs)
        self.listed += len(page.objects)
        return page

    async def head_object(self, *args, **kwargs) -> ObjectInfo:
        self.heads += 1
        return await self._inner.head_object(*args, **kwargs)

    def reset(self) -> None:
        self.listed = self.heads = 0


SMALL_FRAMES = FramePolicy(single_frame_max=4096, medium_frame=4096, large_frame=4096, unknown_frame=4096)


async def _compressing_over(inner: ObjectStore, policy: FramePolicy = SMALL_FRAMES) -> CompressingStore:
    return CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), policy)


def test_list_parts_reads_one_page_of_the_upload_per_page(tmp_path):
    """1050 staged parts, some with a sidecar (more frames than their metadata holds the index of): each
    ListParts page lists at most twice its size of inner objects (a part and its sidecar), starting at the
    marker, and HEADs only its own parts."""
    many_frames = {5, 6, 1001}

    def data(n: int) -> bytes:
        return (f"part {n} " * (60_000 if n in many_frames else 3)).encode()  # over 100 frames of 4 KiB

    async def scenario() -> None:
        counting = CountingStore(await FilesystemStore.open(tmp_path, durable=False))
        store = await _compressing_over(counting)
        try:
            await store.create_bucket("b")
            upload_id = await store.create_multipart_upload("b", "k", ObjectAttributes())
            for n in range(1, 1051):
                await store.upload_part("b", "k", upload_id, n, body(data(n)))
            assert await counting.head_object("b", f".s4mpu/{upload_id}/part-00005.s4index")  # several frames

            async def page(marker: int, max_parts: int) -> PartsPage:
                counting.reset()
                result = await store.list_parts("b", "k", upload_id, marker, max_parts)
                # A part and its sidecar per part of the page and the one past it; a HEAD per part and the record.
                assert counting.listed <= 2 * (max_parts + 1) and counting.heads <= max_parts + 1, (marker, max_parts)
                return result

            first = await page(0, 10)
            assert [p.part_number for p in first.parts] == list(range(1, 11))
            assert first.is_truncated and first.next_part_number_marker == 10
            assert [p.size for p in first.parts[4:6]] == [len(data(5)), len(data(6))]
            assert [p.etag for p in first.parts[:2]] == [md5(data(1)), md5(data(2))]
            later = await page(999, 3)
            assert [p.part_number for p in later.parts] == [1000, 1001, 1002]
            assert later.is_truncated and later.next_part_number_marker == 1002
            last = await page(1045, 10)
            assert [p.part_number for p in last.parts] == list(range(1046, 1051)) and not last.is_truncated
            assert last.next_part_number_marker is None
            assert (await page(1050, 10)).parts == [] and (await page(10_000, 1)).parts == []
            # Paging with S3's default page size still sees every part once.
            seen, marker = [], 0
            while True:
                result = await store.list_parts("b", "k", upload_id, marker, 1000)
                seen += [p.part_number for p in result.parts]
                if not result.is_truncated:
                    break
                marker = result.next_part_number_marker
            assert seen == list(range(1, 1051))
        finally:
            await store.close()
            store.pool.close()

    asyncio.run(scenario())


# == the sweep of leftovers, and DeleteBucket =============================================================

LATER = dt.timedelta(hours=2)
HOUR = 3600.0


async def _open(tmp_path) -> CompressingStore:
    store = await _compressing_over(await FilesystemStore.open(tmp_path, durable=False))
    await store.create_bucket("b")
    return store


async def _close(store: CompressingStore) -> None:
    await store.close()
    store.pool.close()


def _later(store: CompressingStore, delta: dt.timedelta = LATER) -> None:
    """Move the sweep's clock on: what exists now is then ``delta`` old."""
    store.sweep.clock = lambda: dt.datetime.now(dt.UTC) + delta


async def _inner_uploads(store: CompressingStore, bucket: str = "b") -> list[str]:
    return [u.upload_id for u in (await store.inner.list_multipart_uploads(bucket)).uploads]


async def _inner_keys(store: CompressingStore, bucket: str = "b") -> list[str]:
    return [o.key for o in (await store.inner.list_objects(bucket)).objects]


async def _died_in_complete(store: CompressingStore, key: str, upload_id: str) -> str:
    """What a Complete killed (SIGKILL) after its first inner part leaves: a marked inner upload with a part."""
    attributes = ObjectAttributes(metadata={KEY_UPLOAD_ID: upload_id})
    inner_id = await store.inner.create_multipart_upload("b", key, attributes)
    await store._staging._mark_inner("b", upload_id, key, inner_id)
    await store.inner.upload_part("b", key, inner_id, 1, body(b"assembled so far"))
    return inner_id


async def _upload(store: CompressingStore, key: str, *parts: bytes) -> tuple[str, list[tuple[int, str]]]:
    upload_id = await store.create_multipart_upload("b", key, ObjectAttributes())
    etags = []
    for n, data in enumerate(parts, 1):
        etags.append((n, (await store.upload_part("b", key, upload_id, n, body(data))).etag))
    return upload_id, etags


def test_a_retried_complete_aborts_the_inner_upload_of_the_complete_that_died(tmp_path):
    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            upload_id, etags = await _upload(store, "k", b"one " * 2000)
            died = await _died_in_complete(store, "k", upload_id)
            assert await _inner_uploads(store) == [died]
            done = await store.complete_multipart_upload("b", "k", upload_id, etags)
            assert done.etag.endswith("-1")
            assert await _inner_uploads(store) == []
            assert await _inner_keys(store) == ["k", "k.s4index"]
            await store.delete_object("b", "k")
            await store.delete_bucket("b")
        finally:
            await _close(store)

    asyncio.run(scenario())


def test_an_abort_aborts_the_inner_upload_of_a_complete_that_died(tmp_path):
    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            upload_id, _ = await _upload(store, "k", b"one")
            await _died_in_complete(store, "k", upload_id)
            await store.abort_multipart_upload("b", "k", upload_id)
            assert await _inner_uploads(store) == [] and await _inner_keys(store) == []
        finally:
            await _close(store)

    asyncio.run(scenario())


def test_the_sweep_leaves_what_is_young_or_in_use(tmp_path):
    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            await store.put_object("b", "obj", body(b"x" * 20_000), ObjectAttributes())  # several frames
            live, _ = await _upload(store, "live", b"part")
            await _died_in_complete(store, "live", live)
            gone, _ = await _upload(store, "gone", b"part")
            await store.inner.delete_object("b", f".s4mpu/{gone}/upload")  # parts without their upload
            await store.inner.put_object("b", ".s4mpu/put-0123", body(b"temporary"), ObjectAttributes())
            await store.inner.put_object("b", "deleted.s4index", body(b"orphan"), ObjectAttributes())
            before = await _inner_keys(store)
            assert not await store.sweep.sweep(HOUR)  # all of it younger than an hour
            assert await _inner_keys(store) == before and len(await _inner_uploads(store)) == 1
            # An hour on, but the inner upload just got a part: a Complete still at work somewhere.
            _later(store)
            inner_id = (await _inner_uploads(store))[0]
            later_part = dt.datetime.now(dt.UTC) + LATER
            real_list_parts = store.inner.list_parts

            async def parts_just_now(*args, **kwargs) -> PartsPage:
                page = await real_list_parts(*args, **kwargs)
                return dataclasses.replace(
                    page, parts=[dataclasses.replace(p, last_modified=later_part) for p in page.parts]
                )

            store.inner.list_parts = parts_just_now
            await store.sweep.sweep(HOUR)
            assert await _inner_uploads(store) == [inner_id]
        finally:
            await _close(store)

    asyncio.run(scenario())


def test_the_sweep_removes_leftovers_once_old_and_idle(tmp_path):
    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            obj = b"obj " * 5000
            for key in ("a", "a-b", "a.s4", "a.s4/x"):  # keys between an object and its sidecar
                await store.put_object("b", key, body(obj), ObjectAttributes())
            live, _ = await _upload(store, "live", b"part")
            await _died_in_complete(store, "live", live)
            gone, _ = await _upload(store, "gone", b"part " * 3000)
            await store.inner.delete_object("b", f".s4mpu/{gone}/upload")
            finished, etags = await _upload(store, "finished", b"part")
            await store.complete_multipart_upload("b", "finished", finished, etags)
            for key in (f".s4mpu/{finished}/part-00001", f".s4mpu/{finished}/upload"):  # a removal cut short
                await store.inner.put_object("b", key, body(b""), ObjectAttributes(metadata={"s4-mpu-key": "finished"}))
            await store.inner.put_object("b", ".s4mpu/put-0123", body(b"temporary"), ObjectAttributes())
            await store.inner.put_object("b", "deleted.s4index", body(b"orphan"), ObjectAttributes())
            await store.inner.put_object("b", "z/deleted.s4index", body(b"orphan"), ObjectAttributes())
            _later(store)
            report = await store.sweep.sweep(HOUR)
            assert report.inner_uploads == 1 and await _inner_uploads(store) == []
            keys = await _inner_keys(store)
            sidecars = [k + ".s4index" for k in ("a", "a-b", "a.s4", "a.s4/x")]
            staging = [f".s4mpu/{live}/upload", f".s4mpu/{live}/part-00001"]
            assert keys == sorted([*staging, "finished", "a", "a-b", "a.s4", "a.s4/x", *sidecars])
            # The client's upload is still there, whole, and completes.
            assert [u.key for u in (await store.list_multipart_uploads("b")).uploads] == ["live"]
            assert (await store.list_parts("b", "live", live)).parts[0].size == 4
            assert not await store.sweep.sweep(HOUR)  # nothing left to do
        finally:
            await _close(store)

    asyncio.run(scenario())


def test_delete_bucket_clears_the_gateways_objects_and_aborts_uploads(tmp_path):
    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            live, _ = await _upload(store, "live", b"part " * 3000)
            await _died_in_complete(store, "live", live)
            other = await store.inner.create_multipart_upload("b", "unmarked", ObjectAttributes())
            await store.inner.put_object("b", ".s4mpu/put-0123", body(b"temporary"), ObjectAttributes())
            await store.inner.put_object("b", ".s4dict/0123", body(b"dictionary"), ObjectAttributes())
            await store.put_object("b", "client", body(b"x"), ObjectAttributes())
            before = (await _inner_uploads(store), await _inner_keys(store))
            assert await error_code(store.delete_bucket("b")) == "BucketNotEmpty"
            assert (await _inner_uploads(store), await _inner_keys(store)) == before  # nothing touched
            await store.delete_object("b", "client")
            await store.delete_bucket("b")
            await store.create_bucket("b")
            assert await _inner_uploads(store) == [] and await _inner_keys(store) == []
            assert other
        finally:
            await _close(store)

    asyncio.run(scenario())


# == a Complete whose object is committed answers 200 even if its sidecar cannot be built =================


def test_complete_succeeds_when_the_final_sidecar_cannot_be_built(tmp_path, monkeypatch):
    """The inner Complete is the commit point: a failure while indexing the staged parts afterwards (a
    part changed or gone, an unreadable part index) must not turn a stored object into a 500."""
    from s4.store.compressing import staging

    policy = FramePolicy(single_frame_max=MiB, medium_frame=MiB, large_frame=MiB, unknown_frame=MiB)

    async def failing_index(self, bucket, key, chosen, final):
        raise StoreError("InternalError", "staged part 1 changed during Complete; retry")

    monkeypatch.setattr(staging.MultipartStaging, "_write_final_sidecar", failing_index)

    async def scenario() -> tuple[bytes, bool]:
        inner = await FilesystemStore.open(tmp_path, durable=False)
        store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), policy)
        try:
            await store.create_bucket("b")
            data = b"".join(b"line %08d of a multipart object\n" % i for i in range(400_000))  # ~13 MiB
            upload = await store.create_multipart_upload("b", "k", ObjectAttributes())
            first, second = data[: 6 * MiB], data[6 * MiB :]
            p1 = await store.upload_part("b", "k", upload, 1, body(first))
            p2 = await store.upload_part("b", "k", upload, 2, body(second))
            done = await store.complete_multipart_upload("b", "k", upload, [(1, p1.etag), (2, p2.etag)])
            assert done.size == len(data)
            got = bytearray()
            stream = await store.get_object("b", "k")
            async for chunk in stream.body:
                got += chunk
            ranged = bytearray()
            stream = await store.get_object("b", "k", ByteRange(7 * MiB, 7 * MiB + 99))
            async for chunk in stream.body:
                ranged += chunk
            assert bytes(ranged) == data[7 * MiB : 7 * MiB + 100]
            # Its sidecar is built from its own frames instead (a concurrent Complete took the staging).
            sidecar = await store.inner.head_object("b", "k.s4index")
            assert sidecar.size > 0
            uploads = await store.list_multipart_uploads("b")
            return bytes(got) == data, not uploads.uploads
        finally:
            await store.close()
            store.pool.close()

    assert asyncio.run(scenario()) == (True, True)


@pytest.mark.parametrize("linked", [True, False], ids=["hard-linked", "copied"])
def test_a_part_staged_again_during_complete_is_not_copied_under_the_old_manifest(tmp_path, monkeypatch, linked):
    """Complete HEADs the staged parts, builds the manifest (sizes, CRC) from them, then has the inner
    store copy the large ones. A part staged again in between, with the same stored size (a client's
    late retry of UploadPart with other bytes), used to be copied all the same: the Complete answered
    200 and every read of the object then failed its CRC. It must fail (500, to retry) and keep the
    upload, which then completes with the part as it now is."""
    import os

    if not linked:  # the embedded store copies the part's bytes instead of linking its file
        monkeypatch.setattr(FilesystemStore, "_link_whole", lambda self, *args, **kwargs: _none())

    async def scenario() -> None:
        store = await _open(tmp_path)
        try:
            first, second, again = os.urandom(6 * MiB), os.urandom(MiB), os.urandom(6 * MiB)  # incompressible
            upload, parts = await _upload(store, "k", first, second)
            real_copy = store.inner.upload_part_copy
            staged_again: list[PartInfo] = []

            async def copy_after_a_retry(*args, **kwargs):
                if not staged_again:
                    staged_again.append(await store.upload_part("b", "k", upload, 1, body(again)))
                return await real_copy(*args, **kwargs)

            monkeypatch.setattr(store.inner, "upload_part_copy", copy_after_a_retry)
            with pytest.raises(StoreError) as info:
                await store.complete_multipart_upload("b", "k", upload, parts)
            assert info.value.code == "InternalError"
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            assert [u.upload_id for u in (await store.list_multipart_uploads("b")).uploads] == [upload]
            # The client's first ETag no longer names part 1; the one its retry got does.
            assert await error_code(store.complete_multipart_upload("b", "k", upload, parts)) == "InvalidPart"
            done = await store.complete_multipart_upload("b", "k", upload, [(1, staged_again[0].etag), parts[1]])
            assert done.size == len(again) + len(second)
            stream = await store.get_object("b", "k")
            got = bytearray()
            async for chunk in stream.body:
                got += chunk
            assert bytes(got) == again + second
        finally:
            await _close(store)

    asyncio.run(scenario())


async def _none() -> None:
    return None


def test_a_retried_conditional_complete_answers_for_its_own_upload(tmp_path, monkeypatch):
    """The first Complete committed, then could not remove its staging: it answers with the object all the
    same (the upload's record is removed first, the rest left to the sweep). A retry of it (its answer
    lost), with its If-None-Match: *, must get the object, not a 412 caused by its own first attempt."""
    from s4.store.base import WriteCondition
    from s4.store.compressing import staging

    policy = FramePolicy(single_frame_max=MiB, medium_frame=MiB, large_frame=MiB, unknown_frame=MiB)
    real_remove = staging.MultipartStaging.remove
    failures = [1]

    async def remove_failing_once(self, bucket, upload_id):
        if failures:
            failures.pop()
            raise StoreError("InternalError", "the backend went away while removing the staging")
        await real_remove(self, bucket, upload_id)

    monkeypatch.setattr(staging.MultipartStaging, "remove", remove_failing_once)

    async def scenario() -> tuple[str, str]:
        inner = await FilesystemStore.open(tmp_path, durable=False)
        store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), policy)
        try:
            await store.create_bucket("b")
            upload = await store.create_multipart_upload("b", "k", ObjectAttributes())
            part = await store.upload_part("b", "k", upload, 1, body(b"only part " * 1000))
            create_only = WriteCondition(if_none_match=True)
            first = await store.complete_multipart_upload("b", "k", upload, [(1, part.etag)], condition=create_only)
            assert not failures and not (await store.list_multipart_uploads("b")).uploads  # its record went first
            done = await store.complete_multipart_upload("b", "k", upload, [(1, part.etag)], condition=create_only)
            assert done.etag == first.etag
            head = await store.head_object("b", "k")
            assert not (await store.list_multipart_uploads("b")).uploads
            return done.etag, head.etag
        finally:
            await store.close()
            store.pool.close()

    done, head = asyncio.run(scenario())
    assert done == head


# == what a listing showed and an abort removed before its HEAD ============================================


class _RemovedBeforeItsHead(CountingStore):
    """An upstream as S3 is: listings carry no metadata, so each listed object needs a HEAD; and the
    keys in ``removed`` are deleted (by a concurrent abort, Complete or sweep) between the listing and it,
    together with the keys ``removed`` names with them."""

    listing_includes_metadata = False

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.removed: dict[str, tuple[str, ...]] = {}

    async def list_objects(self, *args, **kwargs) -> ListPage:
        page = await super().list_objects(*args, **kwargs)
        bare = [dataclasses.replace(o, attributes=ObjectAttributes()) for o in page.objects]
        return dataclasses.replace(page, objects=bare)

    async def head_object(self, bucket: str, key: str, *args, **kwargs) -> ObjectInfo:
        for gone in (key, *self.removed.pop(key, ())) if key in self.removed else ():
            await self._inner.delete_object(bucket, gone)
        return await super().head_object(bucket, key, *args, **kwargs)


def test_listings_leave_out_what_an_abort_removed_after_the_listing(tmp_path):
    """The CI failure of stop 21: ListMultipartUploads over SeaweedFS answered NoSuchKey while the
    lifecycle rules aborted an upload, because the record listed was gone by its HEAD."""

    async def scenario() -> None:
        racing = _RemovedBeforeItsHead(await FilesystemStore.open(tmp_path, durable=False))
        store = await _compressing_over(racing)
        try:
            await store.create_bucket("b")
            kept, _ = await _upload(store, "kept", b"one", b"two", b"three")
            aborted, _ = await _upload(store, "aborted", b"part")
            racing.removed[f".s4mpu/{aborted}/upload"] = ()
            listed = await store.list_multipart_uploads("b")
            assert [(u.key, u.upload_id) for u in listed.uploads] == [("kept", kept)]

            # A part removed between the listing and its HEAD (its upload being aborted) is left out
            # while the upload is still there; once the upload is gone, ListParts answers NoSuchUpload.
            racing.removed[f".s4mpu/{kept}/part-00002"] = ()
            first_page = await store.list_parts("b", "kept", kept, 0, 2)
            assert [p.part_number for p in first_page.parts] == [1]
            assert first_page.is_truncated and first_page.next_part_number_marker == 2  # past the part left out
            parts = await store.list_parts("b", "kept", kept)
            assert [p.part_number for p in parts.parts] == [1, 3]
            racing.removed[f".s4mpu/{kept}/part-00003"] = (f".s4mpu/{kept}/upload",)
            assert await error_code(store.list_parts("b", "kept", kept)) == "NoSuchUpload"

            # The sweep, too, passes over an upload whose record went between its listing and HEAD.
            again, _ = await _upload(store, "again", b"part")
            racing.removed[f".s4mpu/{again}/upload"] = ()
            _later(store)
            await store.sweep.sweep(HOUR)
        finally:
            await _close(store)

    asyncio.run(scenario())


def test_a_complete_whose_staging_cannot_be_removed_answers_as_completed(tmp_path, monkeypatch):
    """The object is committed, then removing a staged part fails: the Complete answers 200 with the
    object, and the upload is gone (its record removed first; the rest is the sweep's). Answered 500,
    the client retried, found the upload still there, and assembled it again over the object another
    writer had stored at the key meanwhile."""
    from s4.store.compressing import staging

    monkeypatch.setattr(staging, "MIN_S3_PART_SIZE", 32 * KiB)

    async def scenario() -> None:
        async with FaultGateway.start(tmp_path, FramePolicy(), 32 * KiB) as gw:
            parts = [b"A" * 40_000, b"B" * 1000]
            upload = await gw.create_upload("k")
            etags = [(n, etag_of(await gw.upload_part("k", upload, n, p))) for n, p in enumerate(parts, 1)]
            inner = gw.faulty.inner
            deleting = inner.delete_object
            failed = []

            async def a_part_fails_once(bucket, key, **kwargs):
                if "/part-" in key and not failed:
                    failed.append(key)
                    raise StoreError("InternalError", "the backend went away")
                return await deleting(bucket, key, **kwargs)

            inner.delete_object = a_part_fails_once
            reply = await gw.complete("k", upload, etags)
            assert failed and reply.status == 200, reply
            assert (await gw.get("k")).body == b"".join(parts)
            assert await gw.list_uploads() == []
            assert (await gw.put("k", b"another writer's object")).status == 200
            retried = await gw.complete("k", upload, etags)  # its answer lost, say
            assert retried.status == 404 and retried.xml("Code") == ["NoSuchUpload"], retried
            assert (await gw.get("k")).body == b"another writer's object"

    asyncio.run(scenario())
