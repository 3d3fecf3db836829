"""Multipart details of issue 13 below the HTTP layer: completion lists, ListParts cost, the leftover sweep."""

from __future__ import annotations

import asyncio

import pytest

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.store.base import ListPage, ObjectAttributes, ObjectInfo, ObjectStore, PartInfo, PartsPage, StoreError
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from s4.store.multipart import validate_completion
from tests.unit.store_helpers import body, md5

MiB = 1024 * 1024


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
    """1050 staged parts, some with a sidecar (several frames): each ListParts page lists at most twice
    its size of inner objects (a part and its sidecar), starting at the marker, and HEADs only its own parts."""
    many_frames = {5, 6, 1001}

    def data(n: int) -> bytes:
        return (f"part {n} " * (2000 if n in many_frames else 3)).encode()

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
