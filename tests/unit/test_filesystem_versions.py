"""FilesystemStore versioning: S3's semantics of Enabled and Suspended buckets, delete markers, listing."""

from __future__ import annotations

import asyncio

import pytest

from s4.store.base import ByteRange, ObjectAttributes, StoreError, WriteCondition
from s4.store.filesystem import FilesystemStore
from tests.unit.store_helpers import body, object_files, read_all


async def open_store(data_dir, versioning: str | None = "Enabled") -> FilesystemStore:
    store = await FilesystemStore.open(data_dir, durable=False)
    await store.create_bucket("b")
    if versioning is not None:
        await store.put_bucket_versioning("b", versioning)
    return store


async def put(store, key: str, data: bytes, **kwargs):
    return await store.put_object("b", key, body(data), ObjectAttributes(), **kwargs)


async def get(store, key: str, version_id: str | None = None, byte_range: ByteRange | None = None) -> bytes:
    return await read_all(await store.get_object("b", key, byte_range, version_id=version_id))


async def failure(awaitable) -> StoreError:
    with pytest.raises(StoreError) as info:
        await awaitable
    return info.value


async def listing(store, **kwargs) -> list[tuple[str, str, bool, bool]]:
    page = await store.list_object_versions("b", **kwargs)
    return [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]


def test_never_versioned_bucket_keeps_today_s_behaviour(tmp_path):
    async def scenario():
        async with await open_store(tmp_path, None) as store:
            assert await store.get_bucket_versioning("b") is None
            info = await put(store, "k", b"one")
            assert info.version_id is None
            assert (await store.head_object("b", "k")).version_id is None
            assert (await store.delete_object("b", "k")).version_id is None
            await put(store, "k", b"two")
            assert await listing(store) == [("k", "null", True, False)]
            assert (await failure(store.head_object("b", "k", version_id="0" * 32))).code == "InvalidArgument"
            assert await get(store, "k", "null") == b"two"

    asyncio.run(scenario())


def test_enabled_keeps_every_version_and_reads_each(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            assert await store.get_bucket_versioning("b") == "Enabled"
            first = await put(store, "k", b"version one")
            second = await put(store, "k", b"version two!")
            assert first.version_id and second.version_id and first.version_id != second.version_id
            assert await get(store, "k") == b"version two!"
            assert await get(store, "k", first.version_id) == b"version one"
            assert await get(store, "k", first.version_id, ByteRange(8, 10)) == b"one"
            head = await store.head_object("b", "k", version_id=first.version_id)
            assert (head.size, head.version_id) == (11, first.version_id)
            assert await listing(store) == [
                ("k", second.version_id, True, False),
                ("k", first.version_id, False, False),
            ]
            missing = await failure(store.get_object("b", "k", version_id="0" * 32))
            assert missing.code == "NoSuchVersion"
            assert (await failure(store.get_object("b", "k", version_id="nope"))).code == "InvalidArgument"

    asyncio.run(scenario())


def test_delete_marker_hides_the_key_and_removing_it_restores_it(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            deleted = await store.delete_object("b", "k")
            assert deleted.delete_marker and deleted.version_id not in (None, "null", first.version_id)
            gone = await failure(store.head_object("b", "k"))
            assert (gone.code, gone.delete_marker, gone.version_id) == ("NoSuchKey", True, deleted.version_id)
            of_marker = await failure(store.head_object("b", "k", version_id=deleted.version_id))
            assert (of_marker.code, of_marker.delete_marker) == ("MethodNotAllowed", True)
            assert of_marker.last_modified is not None
            assert (await store.list_objects("b")).objects == []
            assert await listing(store) == [
                ("k", deleted.version_id, True, True),
                ("k", first.version_id, False, False),
            ]
            assert await get(store, "k", first.version_id) == b"one"
            removed = await store.delete_object("b", "k", version_id=deleted.version_id)
            assert (removed.version_id, removed.delete_marker) == (deleted.version_id, True)
            assert await get(store, "k") == b"one"
            assert [o.key for o in (await store.list_objects("b")).objects] == ["k"]

    asyncio.run(scenario())


def test_deleting_versions_for_good_frees_their_files_and_the_bucket(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            second = await put(store, "k", b"two")
            marker = await store.delete_object("b", "k")
            assert len(object_files(tmp_path)) == 2
            assert (await failure(store.delete_bucket("b"))).code == "BucketNotEmpty"
            await store.delete_object("b", "k", version_id=second.version_id)
            assert len(object_files(tmp_path)) == 1
            # An id that names no version is not an error.
            assert not (await store.delete_object("b", "k", version_id="0" * 32)).delete_marker
            await store.delete_object("b", "k", version_id=first.version_id)
            await store.delete_object("b", "k", version_id=marker.version_id)
            assert object_files(tmp_path) == []
            assert await listing(store) == []
            await store.delete_bucket("b")

    asyncio.run(scenario())


def test_deleting_the_current_version_makes_the_previous_one_current(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            second = await put(store, "k", b"two")
            await store.delete_object("b", "k", version_id=second.version_id)
            assert await get(store, "k") == b"one"
            assert await listing(store) == [("k", first.version_id, True, False)]

    asyncio.run(scenario())


def test_suspended_overwrites_the_null_version(tmp_path):
    async def scenario():
        async with await open_store(tmp_path, None) as store:
            await put(store, "k", b"before versioning")  # The null version.
            await store.put_bucket_versioning("b", "Enabled")
            kept = await put(store, "k", b"enabled")
            assert await get(store, "k", "null") == b"before versioning"
            await store.put_bucket_versioning("b", "Suspended")
            suspended = await put(store, "k", b"suspended")
            assert suspended.version_id == "null"
            assert await listing(store) == [("k", "null", True, False), ("k", kept.version_id, False, False)]
            again = await put(store, "k", b"suspended again")
            assert again.version_id == "null"
            assert len(object_files(tmp_path)) == 2  # The replaced null versions' files are gone.
            marker = await store.delete_object("b", "k")
            assert (marker.version_id, marker.delete_marker) == ("null", True)
            assert await listing(store) == [("k", "null", True, True), ("k", kept.version_id, False, False)]
            assert len(object_files(tmp_path)) == 1

    asyncio.run(scenario())


def test_conditions_check_the_current_version(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            await store.delete_object("b", "k")  # The current version is a delete marker: no object.
            await put(store, "k", b"two", condition=WriteCondition(if_none_match=True))
            refused = await failure(put(store, "k", b"three", condition=WriteCondition(if_match=first.etag)))
            assert refused.code == "PreconditionFailed"

    asyncio.run(scenario())


def test_copy_tags_and_upload_part_copy_of_a_version(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "src", b"old bytes")
            await put(store, "src", b"new bytes")
            copied = await store.copy_object("b", "src", "b", "dst", None, src_version_id=first.version_id)
            assert copied.version_id not in (None, first.version_id)
            assert await get(store, "dst") == b"old bytes"
            await store.put_object_tagging("b", "src", {"a": "1"}, version_id=first.version_id)
            assert await store.get_object_tagging("b", "src", version_id=first.version_id) == {"a": "1"}
            assert await store.get_object_tagging("b", "src") == {}
            upload = await store.create_multipart_upload("b", "mp", ObjectAttributes())
            part = await store.upload_part_copy("b", "mp", upload, 1, "b", "src", src_version_id=first.version_id)
            done = await store.complete_multipart_upload("b", "mp", upload, [(1, part.etag)])
            assert done.version_id is not None
            assert await get(store, "mp") == b"old bytes"

    asyncio.run(scenario())


def test_listing_pages_prefixes_and_markers(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            ids = {}
            for key in ("a", "b", "d/x", "d/y", "e"):
                ids[key] = [(await put(store, key, key.encode() + bytes([n]))).version_id for n in range(2)]
            everything = await listing(store)
            assert [(k, v) for k, v, _, _ in everything] == [
                (k, v) for k in ("a", "b", "d/x", "d/y", "e") for v in reversed(ids[k])
            ]
            page = await store.list_object_versions("b", max_keys=3)
            assert page.is_truncated
            assert (page.next_key_marker, page.next_version_id_marker) == ("b", ids["b"][1])
            rest = await listing(store, key_marker="b", version_id_marker=ids["b"][1])
            assert rest[0] == ("b", ids["b"][0], False, False)
            assert await listing(store, key_marker="b") == everything[4:]
            rolled = await store.list_object_versions("b", delimiter="/")
            assert rolled.common_prefixes == ["d/"]
            assert [v.key for v in rolled.versions] == ["a", "a", "b", "b", "e", "e"]
            assert await listing(store, prefix="d/y") == everything[6:8]

    asyncio.run(scenario())


def test_versions_survive_reopening(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            await put(store, "k", b"two")
        async with await FilesystemStore.open(tmp_path, durable=False) as store:
            assert await store.get_bucket_versioning("b") == "Enabled"
            assert await get(store, "k", first.version_id) == b"one"

    asyncio.run(scenario())


def test_if_none_match_an_etag_refuses_only_that_current_object(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"one")
            refused = await failure(put(store, "k", b"two", condition=WriteCondition(if_none_match_etag=first.etag)))
            assert refused.code == "PreconditionFailed"
            second = await put(store, "k", b"two", condition=WriteCondition(if_none_match_etag="0" * 32))
            await put(store, "k", b"three", condition=WriteCondition(if_none_match_etag=first.etag))  # not current now
            assert second.version_id is not None

    asyncio.run(scenario())
