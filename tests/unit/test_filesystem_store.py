"""FilesystemStore: S3 semantics, crash safety, concurrency and the on-disk layout."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from s4.store.base import ByteRange, ObjectAttributes, ObjectStore, StoreError
from s4.store.filesystem import FilesystemStore
from tests.unit.store_helpers import body, failing_body, md5, object_files, read_all, temp_files

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
ATTRS = ObjectAttributes(
    content_type="text/plain",
    metadata={"owner": "ann", "note": "ünïcødé"},
    headers={"cache-control": "no-cache", "content-disposition": "inline"},
    checksums={"crc32": "AAAAAA=="},
)


async def open_store(data_dir: Path, bucket: str | None = "b", *, durable: bool = True) -> FilesystemStore:
    store = await FilesystemStore.open(data_dir, durable=durable)
    if bucket is not None:
        await store.create_bucket(bucket)
    return store


async def put(store: FilesystemStore, key: str, data: bytes, attributes: ObjectAttributes = ATTRS, bucket: str = "b"):
    return await store.put_object(bucket, key, body(data), attributes)


async def get(store: FilesystemStore, key: str, byte_range: ByteRange | None = None, bucket: str = "b") -> bytes:
    return await read_all(await store.get_object(bucket, key, byte_range))


async def error_code(awaitable) -> str:
    with pytest.raises(StoreError) as info:
        await awaitable
    return info.value.code


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- objects ----------------------------------------------------------------------------------------


def test_round_trip_with_attributes(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            assert isinstance(store, ObjectStore)
            assert store.min_part_size == 0
            before = dt.datetime.now(dt.UTC)
            data = b"hello, world\n" * 1000
            info = await store.put_object("b", "dir/hello.txt", body(data[:5000], data[5000:]), ATTRS)
            assert (info.size, info.etag, info.attributes, info.part_sizes) == (len(data), md5(data), ATTRS, None)
            assert info.last_modified.tzinfo is not None
            assert before - dt.timedelta(seconds=1) <= info.last_modified <= dt.datetime.now(dt.UTC)
            assert info.quoted_etag == f'"{md5(data)}"'

            head = await store.head_object("b", "dir/hello.txt")
            assert head == info
            stream = await store.get_object("b", "dir/hello.txt")
            assert stream.info == info and stream.range is None
            assert await read_all(stream) == data

            await store.delete_object("b", "dir/hello.txt")
            assert await error_code(store.head_object("b", "dir/hello.txt")) == "NoSuchKey"
            assert await error_code(store.get_object("b", "dir/hello.txt")) == "NoSuchKey"
            await store.delete_object("b", "dir/hello.txt")  # Idempotent.
        assert object_files(tmp_path) == []

    asyncio.run(scenario())


def test_a_writer_that_keeps_its_own_etag_gets_a_unique_one_without_hashing(tmp_path, monkeypatch):
    """``content_etag=False`` (the compressing store, whose logical ETag is in the manifest): no MD5
    over the stored bytes (about 1 CPU-second per GB), and still an ETag no other stored body has, so
    it tells versions apart (sidecar binding, If-Match pinning); a part copied from it keeps it."""

    async def scenario():
        store = await open_store(tmp_path, durable=False)
        hashed = []
        real_md5 = hashlib.md5
        monkeypatch.setattr("s4.store.filesystem.hashlib.md5", lambda *a: hashed.append(a) or real_md5(*a))
        data = b"same bytes" * 1000
        first = await store.put_object("b", "k", body(data), ObjectAttributes(), content_etag=False)
        second = await store.put_object("b", "k", body(data), ObjectAttributes(), content_etag=False)
        assert hashed == []
        assert first.etag != second.etag and md5(data) not in (first.etag, second.etag)
        assert re.fullmatch("[0-9a-f]{32}", second.etag)
        assert (await store.head_object("b", "k")).etag == second.etag
        assert await read_all(await store.get_object("b", "k", if_match=second.etag)) == data
        assert await error_code(store.get_object("b", "k", if_match=first.etag)) == "PreconditionFailed"
        upload = await store.create_multipart_upload("b", "mp", ObjectAttributes())
        part = await store.upload_part_copy("b", "mp", upload, 1, "b", "k")
        assert part.etag == second.etag
        monkeypatch.undo()
        plain = await put(store, "plain", data)  # everyone else: S3's ETag, the MD5 of the bytes
        assert plain.etag == md5(data)
        await store.close()

    asyncio.run(scenario())


def test_writes_and_deletes_say_what_they_removed(tmp_path):
    """``reports_replaced``: the rows a commit removed for good, from its own transaction (the
    savings ledger counts with them, exact with any number of processes)."""

    async def scenario():
        store = await open_store(tmp_path, durable=False)
        first = await put(store, "k", b"one")
        assert first.replaced == ()
        second = await put(store, "k", b"second")
        assert [(r.etag, r.size, r.attributes.metadata) for r in second.replaced] == [(first.etag, 3, ATTRS.metadata)]
        assert [r.etag for r in (await store.delete_object("b", "k")).removed] == [second.etag]
        assert (await store.delete_object("b", "k")).removed == ()
        await store.put_bucket_versioning("b", "Enabled")
        kept = await put(store, "k", b"kept")
        assert kept.replaced == ()
        assert (await store.delete_object("b", "k")).removed == ()  # a delete marker: nothing removed
        await store.put_bucket_versioning("b", "Suspended")
        null = await put(store, "k", b"null")
        assert null.replaced == ()
        again = await put(store, "k", b"null again")
        assert [r.etag for r in again.replaced] == [null.etag]
        gone = await store.delete_object("b", "k", version_id=kept.version_id)
        assert [r.etag for r in gone.removed] == [kept.etag]
        marker = await store.delete_object("b", "k")  # Suspended: a null marker replaces the null version
        assert marker.delete_marker and [r.etag for r in marker.removed] == [again.etag]
        await store.put_bucket_versioning("b", "Enabled")
        await put(store, "k", b"enabled")  # the null marker becomes noncurrent
        await store.put_bucket_versioning("b", "Suspended")
        back = await put(store, "k", b"back")  # replaces the null marker: no stored version removed
        assert back.replaced == ()
        await store.put_bucket_versioning("b", "Enabled")
        await put(store, "k", b"newer")  # the null version "back" is now noncurrent, in versions
        await store.put_bucket_versioning("b", "Suspended")
        last = await put(store, "k", b"last")
        assert [r.etag for r in last.replaced] == [back.etag]
        # copies and completed uploads say it too (a never-versioned bucket)
        await store.create_bucket("c")
        target = await put(store, "t", b"target", bucket="c")
        copied = await store.copy_object("c", "t", "c", "t2", None)
        assert copied.replaced == ()
        copied_again = await store.copy_object("c", "t", "c", "t2", None)
        assert [r.etag for r in copied_again.replaced] == [copied.etag]
        upload = await store.create_multipart_upload("c", "t", ObjectAttributes())
        part = await store.upload_part("c", "t", upload, 1, body(b"part"))
        done = await store.complete_multipart_upload("c", "t", upload, [(1, part.etag)])
        assert [r.etag for r in done.replaced] == [target.etag]
        await store.close()

    asyncio.run(scenario())


def test_last_modified_survives_reopen_with_sub_second_precision(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            first = await put(store, "k", b"1")
            await asyncio.sleep(0.003)
            second = await put(store, "k2", b"2")
        assert second.last_modified - first.last_modified >= dt.timedelta(milliseconds=2)
        async with await FilesystemStore.open(tmp_path) as store:
            assert (await store.head_object("b", "k")).last_modified == first.last_modified
            assert (await store.head_object("b", "k2")).last_modified == second.last_modified

    asyncio.run(scenario())


def test_ranges(tmp_path):
    data = bytes(range(256)) * 3000  # 768,000 bytes: several read chunks.

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "k", data)
            cases = [
                (ByteRange(start=10, end=20), 10, 20),
                (ByteRange(start=300_000, end=700_000), 300_000, 700_000),
                (ByteRange(start=5), 5, len(data) - 1),
                (ByteRange(suffix=100), len(data) - 100, len(data) - 1),
                (ByteRange(suffix=10 * len(data)), 0, len(data) - 1),
                (ByteRange(start=len(data) - 1, end=len(data) + 50), len(data) - 1, len(data) - 1),
            ]
            for byte_range, first, last in cases:
                stream = await store.get_object("b", "k", byte_range)
                assert stream.range == (first, last)
                assert await read_all(stream) == data[first : last + 1]
            for bad in (ByteRange(start=len(data)), ByteRange(start=len(data) + 10, end=len(data) + 20)):
                assert await error_code(store.get_object("b", "k", bad)) == "InvalidRange"

    asyncio.run(scenario())


def test_a_small_object_is_read_in_one_hop_to_the_file_threads(tmp_path):
    """Open, read and close of an object up to SMALL_READ bytes are one file-thread job (they were
    two: each hop costs a GET ~55 us of CPU); a larger one is still read in chunks from an open file.
    Ranges of a small object come out of the bytes read whole."""
    from s4.store.filesystem import SMALL_READ

    small, large = bytes(range(256)) * (SMALL_READ // 256), b"L" * (SMALL_READ + 1)

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "small", small)
            await put(store, "large", large)
            jobs = []
            submit = store._files.submit

            def counting_submit(fn, *args, **kwargs):
                jobs.append(fn)
                return submit(fn, *args, **kwargs)

            store._files.submit = counting_submit
            assert await get(store, "small") == small
            assert len(jobs) == 1
            for byte_range, first, last in [
                (ByteRange(start=10, end=20), 10, 20),
                (ByteRange(suffix=5), SMALL_READ - 5, SMALL_READ - 1),
            ]:
                stream = await store.get_object("b", "small", byte_range)
                assert stream.range == (first, last)
                assert await read_all(stream) == small[first : last + 1]
            assert await error_code(store.get_object("b", "small", ByteRange(start=SMALL_READ))) == "InvalidRange"
            jobs.clear()
            assert await get(store, "large") == large
            assert len(jobs) == 2  # the open, then one read of up to READ_CHUNK
            store._files.submit = submit

    asyncio.run(scenario())


def test_a_put_checks_room_and_creates_its_spool_in_one_hop_and_writes_syncs_and_places_its_end_in_one(tmp_path):
    """A small PUT of a new key is two file-thread jobs: one to check room and create the spool, one to
    write, fsync and move it to its final name (they were five: the move, and a job deleting the files of
    a replaced object when there was none, had hops of their own; each costs ~55 us of CPU and two
    wake-ups); what the PUT stores is unchanged."""

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "warm", b"w")  # the object directories exist
            jobs = []
            submit = store._files.submit

            def counting_submit(fn, *args, **kwargs):
                jobs.append(args[0] if fn.__name__ == "_translate_os_errors" else fn)
                return submit(fn, *args, **kwargs)

            store._files.submit = counting_submit
            await put(store, "k", b"small body")
            store._files.submit = submit
            names = [getattr(job, "__name__", repr(job)) for job in jobs]
            assert names == ["_create_spool", "_write_last_and_place"]
            assert await get(store, "k") == b"small body"
            assert temp_files(tmp_path) == []

            jobs.clear()
            store._files.submit = counting_submit
            await put(store, "k", b"replaced")  # the old file is deleted, in a job of its own
            store._files.submit = submit
            names = [getattr(job, "__name__", repr(job)) for job in jobs]
            assert names == ["_create_spool", "_write_last_and_place", "_discard_files"]
            assert await get(store, "k") == b"replaced"
            assert len(object_files(tmp_path)) == 2  # "warm" and the new "k"

    asyncio.run(scenario())


def test_a_put_cancelled_while_its_spool_moves_to_its_final_name_leaves_no_file(tmp_path):
    """The spool's last job moves the file to its final name before any row references it; a PUT
    cancelled while that job runs deletes it there once the job is done, instead of leaving it to the
    start-up sweep (which only runs when no other store has the directory open)."""

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "warm", b"w")
            moved = threading.Event()
            place = store._place

            def slow_place(file_id, path):
                destination = place(file_id, path)
                moved.set()
                time.sleep(0.3)
                return destination

            store._place = slow_place
            task = asyncio.create_task(put(store, "k", b"body"))
            for _ in range(400):
                if moved.is_set() or task.done():
                    break
                await asyncio.sleep(0.005)
            assert moved.is_set(), "the spool's last job never moved the file"
            assert len(object_files(tmp_path)) == 2  # at its final name, referenced by no row yet
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.6)
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            assert len(object_files(tmp_path)) == 1 and temp_files(tmp_path) == []

    asyncio.run(scenario())


def test_a_put_cancelled_while_its_spool_is_created_leaves_no_file(tmp_path):
    """The file-thread job creating the spool finishes after the cancelled PUT stopped waiting for it:
    the file it made is closed and removed then, not left in tmp/ for the sweep."""

    async def scenario():
        async with await open_store(tmp_path) as store:
            started = threading.Event()

            def slow_room_check():
                started.set()
                time.sleep(0.3)
                return None

            store._short_of_room = slow_room_check
            task = asyncio.create_task(put(store, "k", b"body"))
            while not started.is_set():
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.6)
            assert list((tmp_path / "tmp").iterdir()) == []
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"

    asyncio.run(scenario())


def test_empty_object(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            info = await store.put_object("b", "empty", body(), ObjectAttributes())
            assert (info.size, info.etag) == (0, md5(b""))
            assert await get(store, "empty") == b""
            assert await error_code(store.get_object("b", "empty", ByteRange(start=0))) == "InvalidRange"
            assert await error_code(store.get_object("b", "empty", ByteRange(suffix=1))) == "InvalidRange"

    asyncio.run(scenario())


@pytest.mark.parametrize("fails", ["midway", "at_the_end"])
@pytest.mark.parametrize("previous", [None, b"old version"])
def test_failing_body_stores_nothing(tmp_path, fails, previous):
    async def bad_body():
        yield b"x" * MiB
        yield b"y" * 1000
        if fails == "midway":
            raise ValueError("client went away")
        yield b"z" * 1000
        raise ValueError("digest mismatch")  # What the server's checks do after the last chunk.

    async def scenario():
        async with await open_store(tmp_path) as store:
            if previous is not None:
                await put(store, "k", previous)
            with pytest.raises(ValueError):
                await store.put_object("b", "k", bad_body(), ATTRS)
            if previous is None:
                assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            else:
                assert await get(store, "k") == previous
            await asyncio.sleep(0.05)  # Let a discard scheduled from a worker thread land.
            assert temp_files(tmp_path) == []
            assert len(object_files(tmp_path)) == (0 if previous is None else 1)

    asyncio.run(scenario())


def test_body_failing_at_its_end_via_helper(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            with pytest.raises(ValueError):
                await store.put_object("b", "k", failing_body(b"a", b"b"), ATTRS)
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            assert temp_files(tmp_path) == []

    asyncio.run(scenario())


def test_cancelled_put_leaves_nothing(tmp_path):
    async def endless():
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0.001)

    async def scenario():
        async with await open_store(tmp_path) as store:
            task = asyncio.create_task(store.put_object("b", "k", endless(), ATTRS))
            while not temp_files(tmp_path):
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(100):
                if not temp_files(tmp_path):
                    break
                await asyncio.sleep(0.01)
            assert temp_files(tmp_path) == []
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"

    asyncio.run(scenario())


# -- crash safety -------------------------------------------------------------------------------------


SLOW_WRITER = """
    import asyncio, sys
    from s4.store.base import ObjectAttributes
    from s4.store.filesystem import FilesystemStore

    async def slow_body():
        for i in range(300):
            yield b"n" * (1 << 20)
            if i == 2:
                print("writing", flush=True)  # Three MiB are in the temp file by now.
            await asyncio.sleep(0.02)

    async def main():
        store = await FilesystemStore.open(sys.argv[1])
        await store.put_object("b", "k", slow_body(), ObjectAttributes())
        print("finished", flush=True)

    asyncio.run(main())
"""


def test_process_killed_mid_write_leaves_previous_version_and_no_garbage(tmp_path):
    async def prepare():
        async with await open_store(tmp_path) as store:
            await put(store, "k", b"previous complete version")
            await put(store, "other", b"untouched")

    asyncio.run(prepare())
    child = run_python(SLOW_WRITER, str(tmp_path))
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        assert [p.stat().st_size >= 3 * MiB for p in temp_files(tmp_path)] == [True]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert len(temp_files(tmp_path)) == 1  # The crash left its temp file behind...

    async def check():
        async with await FilesystemStore.open(tmp_path) as store:
            assert await get(store, "k") == b"previous complete version"
            assert await get(store, "other") == b"untouched"
        assert temp_files(tmp_path) == []  # ...and reopening swept it.
        assert len(object_files(tmp_path)) == 2

    asyncio.run(check())


CRASH_BEFORE_COMMIT = """
    import asyncio, os, sys
    from s4.store.base import ObjectAttributes
    from s4.store.filesystem import FilesystemStore

    FilesystemStore._db_commit_object = lambda *args: os._exit(17)  # Dies right after the rename.

    async def one_chunk():
        yield b"never committed"

    async def main():
        store = await FilesystemStore.open(sys.argv[1])
        await store.put_object("b", "k", one_chunk(), ObjectAttributes())

    asyncio.run(main())
"""


def test_crash_between_rename_and_commit_is_swept(tmp_path):
    async def prepare():
        async with await open_store(tmp_path) as store:
            await put(store, "k", b"committed")

    asyncio.run(prepare())
    child = run_python(CRASH_BEFORE_COMMIT, str(tmp_path))
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 17, stderr
    assert len(object_files(tmp_path)) == 2  # The renamed file no row points at.
    stray = tmp_path / "objects" / "ab" / "cd" / ("abcd" + "0" * 28)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left by a crash")
    (tmp_path / "tmp" / "0123").write_bytes(b"half a body")

    async def check():
        async with await FilesystemStore.open(tmp_path) as store:
            assert await get(store, "k") == b"committed"
        assert len(object_files(tmp_path)) == 1
        assert not stray.exists()
        assert temp_files(tmp_path) == []

    asyncio.run(check())


def test_second_store_on_a_busy_directory_does_not_sweep_in_flight_writes(tmp_path):
    async def scenario():
        first = await open_store(tmp_path)
        gate = asyncio.Event()

        async def held_body():
            yield b"part one, "
            await gate.wait()
            yield b"part two"

        task = asyncio.create_task(first.put_object("b", "k", held_body(), ATTRS))
        while not temp_files(tmp_path):
            await asyncio.sleep(0.005)
        second = await FilesystemStore.open(tmp_path)  # Must not take the first store's temp file.
        gate.set()
        await task
        assert await get(second, "k") == b"part one, part two"
        await second.close()
        await first.close()

    asyncio.run(scenario())


# -- keys ---------------------------------------------------------------------------------------------


def test_key_edge_cases_never_reach_the_filesystem(tmp_path):
    data_dir = tmp_path / "data"
    keys = [
        "a",
        "a/b",
        "../x",
        "../../escape",
        "/abs",
        "/etc/passwd",
        "a//b",
        "with spaces  ",
        " leading",
        "ünïcødé/日本語/😀",
        "nul\x00byte",
        ".",
        "..",
        "back\\slash",
        "k" * 1024,
        "é" * 512,  # 1024 bytes of UTF-8.
    ]

    async def scenario():
        async with await open_store(data_dir) as store:
            for key in keys:
                await put(store, key, key.encode())
            for key in keys:
                assert await get(store, key) == key.encode()
            page = await store.list_objects("b")
            assert [o.key for o in page.objects] == sorted(keys, key=str.encode)
            assert await error_code(put(store, "k" * 1025, b"")) == "KeyTooLongError"
            assert await error_code(put(store, "é" * 513, b"")) == "KeyTooLongError"
            assert await error_code(put(store, "", b"")) == "InvalidArgument"
            assert await error_code(put(store, "bad\ud800surrogate", b"")) == "InvalidArgument"
            assert await error_code(store.head_object("b", "k" * 1025)) == "KeyTooLongError"

    asyncio.run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # Nothing escaped the data dir.
    allowed = {"index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm", "lock"}
    for path in data_dir.rglob("*"):
        relative = path.relative_to(data_dir)
        if path.is_dir():
            assert relative.parts[0] in {"objects", "tmp"} and all(
                re.fullmatch("[0-9a-f]{2}", p) for p in relative.parts[1:]
            )
        elif relative.parts[0] == "objects":
            assert re.fullmatch("[0-9a-f]{32}", path.name), path
        else:
            assert str(relative) in allowed, path
    assert len(object_files(data_dir)) == len(keys)


# -- listing ------------------------------------------------------------------------------------------


def test_listing_is_in_utf8_byte_order(tmp_path):
    keys = ["é", "b", "a~", "a0", "\U0001f600", "aé", "a/b", "a", "\ue000", "a\x00b", "A"]
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    # UTF-16 order would put the emoji (a surrogate pair) before U+E000: byte order must not.
    assert expected.index("\ue000") < expected.index("\U0001f600")

    async def scenario():
        async with await open_store(tmp_path) as store:
            for key in keys:
                await put(store, key, b"")
            assert [o.key for o in (await store.list_objects("b")).objects] == expected
            pages = [(await store.list_objects("b", max_keys=1, start_after=k)).objects for k in expected]
            assert [p[0].key if p else None for p in pages] == [*expected[1:], None]

    asyncio.run(scenario())


LISTING_KEYS = [
    "a",
    "a/b",
    "a/c/d",
    "a/c/e",
    "b/x",
    "b/y",
    "c",
    "photos/2020/feb.jpg",
    "photos/2020/jan.jpg",
    "photos/2021/x.jpg",
    "photos/readme",
]


def test_listing_prefix_delimiter_and_start_after(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            for key in LISTING_KEYS:
                await put(store, key, key.encode(), ObjectAttributes(metadata={"k": key}))

            async def listing(**kwargs):
                page = await store.list_objects("b", **kwargs)
                return [o.key for o in page.objects], list(page.common_prefixes)

            assert await listing() == (LISTING_KEYS, [])
            assert await listing(delimiter="/") == (["a", "c"], ["a/", "b/", "photos/"])
            assert await listing(prefix="photos/", delimiter="/") == (
                ["photos/readme"],
                ["photos/2020/", "photos/2021/"],
            )
            assert await listing(prefix="a/") == (["a/b", "a/c/d", "a/c/e"], [])
            assert await listing(prefix="a/", delimiter="/") == (["a/b"], ["a/c/"])
            assert await listing(prefix="nothing") == ([], [])
            assert await listing(delimiter="/c/") == ([k for k in LISTING_KEYS if not k.startswith("a/c/")], ["a/c/"])
            # start_after at a common prefix, and inside one: the prefix is not repeated.
            assert await listing(delimiter="/", start_after="a/") == (["c"], ["b/", "photos/"])
            assert await listing(delimiter="/", start_after="a/c/d") == (["c"], ["b/", "photos/"])
            assert await listing(prefix="photos/", delimiter="/", start_after="photos/2020/") == (
                ["photos/readme"],
                ["photos/2021/"],
            )
            assert await listing(start_after="b/x") == (LISTING_KEYS[LISTING_KEYS.index("b/x") + 1 :], [])
            assert await listing(prefix="b/", start_after="a") == (["b/x", "b/y"], [])
            assert await listing(prefix="b/", start_after="zzz") == ([], [])
            # Objects in a listing carry everything head_object gives.
            page = await store.list_objects("b", prefix="photos/readme")
            assert page.objects == [await store.head_object("b", "photos/readme")]

            page = await store.list_objects("b", delimiter="/", max_keys=2)
            assert ([o.key for o in page.objects], page.common_prefixes) == (["a"], ["a/"])
            assert (page.is_truncated, page.next_marker) == (True, "a/")
            page = await store.list_objects("b", delimiter="/", max_keys=2, start_after="a/")
            assert ([o.key for o in page.objects], page.common_prefixes) == (["c"], ["b/"])
            assert (page.is_truncated, page.next_marker) == (True, "c")
            page = await store.list_objects("b", delimiter="/", max_keys=2, start_after="c")
            assert (page.objects, page.common_prefixes, page.is_truncated) == ([], ["photos/"], False)

            page = await store.list_objects("b", max_keys=0)
            assert (page.objects, page.common_prefixes, page.is_truncated) == ([], [], False)
            page = await store.list_objects("b", max_keys=len(LISTING_KEYS))
            assert (len(page.objects), page.is_truncated, page.next_marker) == (len(LISTING_KEYS), False, None)

    asyncio.run(scenario())


def test_pagination_over_thousands_of_keys(tmp_path):
    keys = [f"k{i:05d}" if i % 5 == 0 else f"d{i % 40:02d}/f{i:05d}" for i in range(2500)]
    top_level = sorted({k if "/" not in k else k.split("/")[0] + "/" for k in keys})

    async def scenario():
        async with await open_store(tmp_path, durable=False) as store:
            for start in range(0, len(keys), 100):
                await asyncio.gather(*(put(store, k, b"", ObjectAttributes()) for k in keys[start : start + 100]))

            seen: list[str] = []
            marker = None
            sizes = []
            while True:
                page = await store.list_objects("b", start_after=marker, max_keys=1000)
                seen += [o.key for o in page.objects]
                sizes.append(len(page.objects))
                if not page.is_truncated:
                    break
                assert page.next_marker == seen[-1]
                marker = page.next_marker
            assert sizes == [1000, 1000, 500]
            assert seen == sorted(keys)

            examined = 0
            scan = store._db_key_range

            def counting_scan(*args):
                nonlocal examined
                for row in scan(*args):
                    examined += 1
                    yield row

            store._db_key_range = counting_scan
            for max_keys in (1000, 7, 1):
                entries: list[str] = []
                marker = None
                examined = 0
                while True:
                    page = await store.list_objects("b", delimiter="/", start_after=marker, max_keys=max_keys)
                    batch = sorted([o.key for o in page.objects] + list(page.common_prefixes))
                    assert len(batch) <= max_keys
                    entries += batch
                    if not page.is_truncated:
                        break
                    assert page.next_marker == batch[-1]
                    marker = page.next_marker
                assert entries == top_level  # Every key and prefix exactly once, in order.
                # Rolled-up directories are jumped over, not scanned: about one row per entry and page.
                assert examined <= 2 * len(top_level) + 10

    asyncio.run(scenario())


# -- concurrency --------------------------------------------------------------------------------------


def test_concurrent_writers_last_complete_write_wins(tmp_path):
    bodies = [bytes([65 + i]) * (300_000 + 1000 * i) for i in range(6)]

    async def scenario():
        async with await open_store(tmp_path) as store:
            await asyncio.gather(
                *(
                    store.put_object(
                        "b", "k", body(*(data[j : j + 50_000] for j in range(0, len(data), 50_000)), delay=0.002), ATTRS
                    )
                    for data in bodies
                )
            )
            info = await store.head_object("b", "k")
            final = await get(store, "k")
            assert final in bodies
            assert (info.size, info.etag) == (len(final), md5(final))
            await asyncio.sleep(0.05)
        assert len(object_files(tmp_path)) == 1
        assert temp_files(tmp_path) == []

    asyncio.run(scenario())


def test_reader_keeps_the_version_it_started(tmp_path):
    old = os.urandom(1_000_000)
    new = b"replacement"

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "k", old)
            stream = await store.get_object("b", "k")
            first = await anext(stream.body)
            await put(store, "k", new)
            await store.delete_object("b", "k")
            await put(store, "k", new)
            rest = b"".join([chunk async for chunk in stream.body])
            await stream.aclose()
            assert first + rest == old
            assert stream.info.etag == md5(old)
            assert await get(store, "k") == new
        assert len(object_files(tmp_path)) == 1

    asyncio.run(scenario())


def test_reader_looks_again_when_the_file_vanished_after_lookup(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "k", b"version one")
            stale = await store._db(store._db_lookup, "b", "k")
            await put(store, "k", b"version two")  # Deletes version one's file.
            real_lookup = store._db_lookup
            calls = []

            def lookup_racing_a_writer(bucket, key, version_id=None):
                calls.append(key)
                return stale if len(calls) == 1 else real_lookup(bucket, key, version_id)

            store._db_lookup = lookup_racing_a_writer
            assert await get(store, "k") == b"version two"
            assert len(calls) == 2

            store._db_lookup = real_lookup
            for path in object_files(tmp_path):
                path.unlink()  # Damage, not a race: the row's file is gone for good.
            assert await error_code(store.get_object("b", "k")) == "InternalError"

    asyncio.run(scenario())


def test_two_stores_share_one_directory(tmp_path):
    part1 = os.urandom(5 * MiB)

    async def scenario():
        a = await open_store(tmp_path)
        b = await FilesystemStore.open(tmp_path)
        try:
            upload_id = await a.create_multipart_upload("b", "big", ATTRS)
            p1 = await b.upload_part("b", "big", upload_id, 1, body(part1))
            p2 = await a.upload_part("b", "big", upload_id, 2, body(b"tail"))
            p3 = await b.upload_part("b", "big", upload_id, 3, body(b"!"))
            listed = await a.list_parts("b", "big", upload_id)
            assert [p.etag for p in listed.parts] == [p1.etag, p2.etag, p3.etag]
            assert [u.upload_id for u in (await b.list_multipart_uploads("b")).uploads] == [upload_id]
            info = await b.complete_multipart_upload("b", "big", upload_id, [(1, p1.etag), (3, p3.etag)])
            assert info.part_sizes == (5 * MiB, 1)
            assert await get(a, "big") == part1 + b"!"
            assert await error_code(a.list_parts("b", "big", upload_id)) == "NoSuchUpload"
            await a.put_object("b", "small", body(b"from a"), ATTRS)
            assert await get(b, "small") == b"from a"
        finally:
            await b.close()
            await a.close()
        # The object is its parts 1 and 3's files as they were (Complete copies nothing), and "small";
        # unlisted part 2 went with the upload.
        assert len(object_files(tmp_path)) == 3

    asyncio.run(scenario())


# -- buckets ------------------------------------------------------------------------------------------


def test_buckets(tmp_path):
    async def scenario():
        async with await FilesystemStore.open(tmp_path) as store:
            assert await store.list_buckets() == []
            await store.create_bucket("zeta")
            await store.create_bucket("alpha")
            assert [b.name for b in await store.list_buckets()] == ["alpha", "zeta"]
            assert (await store.head_bucket("alpha")).created.tzinfo is not None
            assert await error_code(store.create_bucket("alpha")) == "BucketAlreadyOwnedByYou"
            for missing in (
                store.head_bucket("nope"),
                store.delete_bucket("nope"),
                store.put_object("nope", "k", body(b"x"), ATTRS),
                store.head_object("nope", "k"),
                store.get_object("nope", "k"),
                store.delete_object("nope", "k"),
                store.list_objects("nope"),
                store.create_multipart_upload("nope", "k", ATTRS),
                store.list_multipart_uploads("nope"),
                store.copy_object("alpha", "k", "nope", "k", None),
            ):
                assert await error_code(missing) == "NoSuchBucket"
            assert temp_files(tmp_path) == []
            await put(store, "k", b"x", bucket="alpha")
            assert await error_code(store.delete_bucket("alpha")) == "BucketNotEmpty"
            await store.delete_object("alpha", "k")
            await store.delete_bucket("alpha")
            assert [b.name for b in await store.list_buckets()] == ["zeta"]

    asyncio.run(scenario())


# -- copy ---------------------------------------------------------------------------------------------


def test_copy_object(tmp_path):
    data = os.urandom(700_000)
    other = ObjectAttributes(content_type="application/octet-stream", metadata={"copied": "yes"})

    async def scenario():
        async with await open_store(tmp_path) as store:
            await store.create_bucket("dst")
            src = await put(store, "src", data)
            kept = await store.copy_object("b", "src", "dst", "same-attrs", None)
            assert (kept.etag, kept.size, kept.attributes, kept.bucket) == (src.etag, len(data), ATTRS, "dst")
            replaced = await store.copy_object("b", "src", "b", "new-attrs", other)
            assert (replaced.etag, replaced.attributes) == (src.etag, other)
            assert await get(store, "same-attrs", bucket="dst") == data
            assert await get(store, "new-attrs") == data

            onto_itself = await store.copy_object("b", "src", "b", "src", other)
            assert (onto_itself.etag, onto_itself.attributes) == (src.etag, other)
            assert await store.head_object("b", "src") == onto_itself
            assert await get(store, "src") == data

            assert await error_code(store.copy_object("b", "missing", "b", "x", None)) == "NoSuchKey"
            assert await error_code(store.copy_object("b", "src", "b", "", None)) == "InvalidArgument"
        assert len(object_files(tmp_path)) == 3
        assert temp_files(tmp_path) == []

    asyncio.run(scenario())


def test_copy_of_a_multipart_object_is_a_single_part_object(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "mp", ATTRS)
            part = await store.upload_part("b", "mp", upload_id, 1, body(b"only part"))
            source = await store.complete_multipart_upload("b", "mp", upload_id, [(1, part.etag)])
            assert source.etag.endswith("-1") and source.part_sizes == (9,)
            copy = await store.copy_object("b", "mp", "b", "copy", None)
            assert (copy.etag, copy.part_sizes) == (md5(b"only part"), None)

    asyncio.run(scenario())


# -- multipart ----------------------------------------------------------------------------------------


def test_multipart_success(tmp_path):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"z"]
    attributes = ObjectAttributes(content_type="video/mp4", metadata={"from": "create"})

    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "movie", attributes)
            assert re.fullmatch(r"[A-Za-z0-9_-]+", upload_id)
            uploaded = {}
            for number in (3, 1, 2):  # Any upload order.
                data = parts[number - 1]
                chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
                info = await store.upload_part("b", "movie", upload_id, number, body(*chunks))
                assert (info.part_number, info.size, info.etag) == (number, len(data), md5(data))
                uploaded[number] = info
            info = await store.complete_multipart_upload(
                "b", "movie", upload_id, [(n, f'"{uploaded[n].etag.upper()}"') for n in (1, 2, 3)]
            )
            digests = b"".join(hashlib.md5(p).digest() for p in parts)
            assert info.etag == hashlib.md5(digests).hexdigest() + "-3"
            assert info.part_sizes == (5 * MiB, 5 * MiB, 1)
            assert info.size == sum(map(len, parts))
            assert info.attributes == attributes
            assert await store.head_object("b", "movie") == info
            assert await get(store, "movie") == b"".join(parts)
            assert await get(store, "movie", ByteRange(start=5 * MiB - 2, end=5 * MiB + 1)) == (
                parts[0][-2:] + parts[1][:2]
            )
            assert (await store.list_multipart_uploads("b")).uploads == []
            assert await error_code(store.list_parts("b", "movie", upload_id)) == "NoSuchUpload"
            again = store.complete_multipart_upload("b", "movie", upload_id, [(1, uploaded[1].etag)])
            assert await error_code(again) == "NoSuchUpload"
        assert len(object_files(tmp_path)) == 3  # The object is its three parts' files, no copy of them.

    asyncio.run(scenario())


def test_small_parts_are_the_callers_rule_not_the_stores(tmp_path):
    """min_part_size is 0: the compressing store above stages compressed parts far below 5 MiB
    and enforces S3's 5 MiB rule on the original sizes itself."""

    async def scenario():
        async with await open_store(tmp_path) as store:
            assert store.min_part_size == 0
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            p1 = await store.upload_part("b", "k", upload_id, 1, body(b"a"))
            p2 = await store.upload_part("b", "k", upload_id, 2, body(b"b"))
            info = await store.complete_multipart_upload("b", "k", upload_id, [(1, p1.etag), (2, p2.etag)])
            assert (info.size, info.part_sizes) == (2, (1, 1))
            assert await get(store, "k") == b"ab"

    asyncio.run(scenario())


def test_multipart_completion_errors(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            p1 = await store.upload_part("b", "k", upload_id, 1, body(b"a"))
            p2 = await store.upload_part("b", "k", upload_id, 2, body(b"b"))
            complete = store.complete_multipart_upload
            assert await error_code(complete("b", "k", upload_id, [(2, p2.etag), (1, p1.etag)])) == "InvalidPartOrder"
            repeated = [(1, p1.etag), (2, p2.etag), (1, p1.etag)]
            assert await error_code(complete("b", "k", upload_id, repeated)) == "InvalidPartOrder"
            # A number listed twice in a row: its last ETag is the one checked.
            assert await error_code(complete("b", "k", upload_id, [(1, p1.etag), (1, p2.etag)])) == "InvalidPart"
            assert await error_code(complete("b", "k", upload_id, [(1, p2.etag)])) == "InvalidPart"
            assert await error_code(complete("b", "k", upload_id, [(1, p1.etag), (5, p2.etag)])) == "InvalidPart"
            assert await error_code(complete("b", "k", upload_id, [])) == "MalformedXML"
            assert await error_code(complete("b", "other-key", upload_id, [(1, p1.etag)])) == "NoSuchUpload"
            assert await error_code(complete("b", "k", "no-such-upload", [(1, p1.etag)])) == "NoSuchUpload"
            for number in (0, 10_001):
                assert await error_code(store.upload_part("b", "k", upload_id, number, body(b"x"))) == "InvalidArgument"
            assert await error_code(store.upload_part("b", "k", "nope", 1, body(b"x"))) == "NoSuchUpload"
            # Nothing was committed by the failures; a single small part is a valid upload.
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            info = await complete("b", "k", upload_id, [(2, p2.etag)])
            assert await get(store, "k") == b"b" and info.part_sizes == (1,)

    asyncio.run(scenario())


def test_reuploading_a_part_replaces_it(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            old = await store.upload_part("b", "k", upload_id, 1, body(b"old"))
            new = await store.upload_part("b", "k", upload_id, 1, body(b"new!"))
            assert len(object_files(tmp_path)) == 1  # The first upload's file is gone.
            page = await store.list_parts("b", "k", upload_id)
            assert [(p.part_number, p.size, p.etag) for p in page.parts] == [(1, 4, md5(b"new!"))]
            assert (
                await error_code(store.complete_multipart_upload("b", "k", upload_id, [(1, old.etag)])) == "InvalidPart"
            )
            await store.complete_multipart_upload("b", "k", upload_id, [(1, new.etag)])
            assert await get(store, "k") == b"new!"

    asyncio.run(scenario())


def test_upload_part_copy(tmp_path):
    source = bytes(range(256)) * 100

    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "src", source)
            upload_id = await store.create_multipart_upload("b", "dst", ObjectAttributes())
            p1 = await store.upload_part_copy("b", "dst", upload_id, 1, "b", "src", ByteRange(start=10, end=19))
            assert (p1.size, p1.etag) == (10, md5(source[10:20]))
            p2 = await store.upload_part_copy("b", "dst", upload_id, 2, "b", "src")
            assert (p2.size, p2.etag) == (len(source), md5(source))
            bad_range = store.upload_part_copy("b", "dst", upload_id, 3, "b", "src", ByteRange(start=len(source)))
            assert await error_code(bad_range) == "InvalidRange"
            missing = store.upload_part_copy("b", "dst", upload_id, 3, "b", "nothing")
            assert await error_code(missing) == "NoSuchKey"
            assert await error_code(store.upload_part_copy("b", "dst", "nope", 1, "b", "src")) == "NoSuchUpload"
            # 10 bytes is too small for a non-final part, but fine as the only one.
            await store.complete_multipart_upload("b", "dst", upload_id, [(1, p1.etag)])
            assert await get(store, "dst") == source[10:20]
        assert temp_files(tmp_path) == []

    asyncio.run(scenario())


def test_abort_removes_parts(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            await put(store, "kept", b"unrelated")
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            for number in (1, 2, 3):
                await store.upload_part("b", "k", upload_id, number, body(b"part %d" % number))
            assert len(object_files(tmp_path)) == 4
            assert await error_code(store.delete_bucket("b")) == "BucketNotEmpty"
            assert await error_code(store.abort_multipart_upload("b", "wrong-key", upload_id)) == "NoSuchUpload"
            await store.abort_multipart_upload("b", "k", upload_id)
            assert len(object_files(tmp_path)) == 1
            assert await error_code(store.abort_multipart_upload("b", "k", upload_id)) == "NoSuchUpload"
            assert await error_code(store.upload_part("b", "k", upload_id, 1, body(b"x"))) == "NoSuchUpload"
            assert (await store.list_multipart_uploads("b")).uploads == []
            await store.delete_object("b", "kept")
            await store.delete_bucket("b")  # Nothing left in it now.

    asyncio.run(scenario())


def test_delete_bucket_aborts_the_uploads_in_it(tmp_path):
    """S3 deletes a bucket with multipart uploads in progress, aborting them (issue 13 item 6)."""

    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            await store.upload_part("b", "k", upload_id, 1, body(b"part"))
            await store.put_object("b", "kept", body(b"x"), ATTRS)
            assert await error_code(store.delete_bucket("b")) == "BucketNotEmpty"  # objects still keep it
            assert (await store.list_multipart_uploads("b")).uploads  # and nothing was aborted
            await store.delete_object("b", "kept")
            await store.delete_bucket("b")
            assert object_files(tmp_path) == []  # the part's file too
            await store.create_bucket("b")
            assert (await store.list_multipart_uploads("b")).uploads == []
            assert await error_code(store.upload_part("b", "k", upload_id, 2, body(b"x"))) == "NoSuchUpload"

    asyncio.run(scenario())


def test_list_parts_pagination(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            for number in (7, 2, 5, 1, 3, 4, 6):
                await store.upload_part("b", "k", upload_id, number, body(b"%d" % number))
            pages = []
            marker = 0
            while True:
                page = await store.list_parts("b", "k", upload_id, part_number_marker=marker, max_parts=3)
                assert page.upload.upload_id == upload_id and page.upload.attributes == ATTRS
                pages.append(([p.part_number for p in page.parts], page.is_truncated, page.next_part_number_marker))
                if not page.is_truncated:
                    break
                marker = page.next_part_number_marker
            assert pages == [([1, 2, 3], True, 3), ([4, 5, 6], True, 6), ([7], False, None)]
            page = await store.list_parts("b", "k", upload_id)
            assert [p.etag for p in page.parts] == [md5(b"%d" % n) for n in range(1, 8)]
            empty = await store.list_parts("b", "k", upload_id, max_parts=0)
            assert (empty.parts, empty.is_truncated, empty.next_part_number_marker) == ([], False, None)
            assert await error_code(store.list_parts("b", "other", upload_id)) == "NoSuchUpload"

    asyncio.run(scenario())


def test_list_multipart_uploads_pagination(tmp_path):
    async def scenario():
        async with await open_store(tmp_path) as store:
            created = []
            for key in ["b", "a", "x/y", "b", "c", "a", "b"]:
                created.append((key, await store.create_multipart_upload("b", key, ATTRS)))
            # By key, then by initiation.
            expected = sorted(created, key=lambda kv: (kv[0].encode(), created.index(kv)))

            seen = []
            key_marker = upload_id_marker = None
            while True:
                page = await store.list_multipart_uploads(
                    "b", key_marker=key_marker, upload_id_marker=upload_id_marker, max_uploads=2
                )
                assert len(page.uploads) <= 2 and page.common_prefixes == []
                seen += [(u.key, u.upload_id) for u in page.uploads]
                if not page.is_truncated:
                    assert page.next_key_marker is None
                    break
                assert (page.next_key_marker, page.next_upload_id_marker) == seen[-1]
                key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker
            assert seen == expected

            initiated = [u.initiated for u in (await store.list_multipart_uploads("b", prefix="b")).uploads]
            assert initiated == sorted(initiated) and len(initiated) == 3
            after_b = await store.list_multipart_uploads("b", key_marker="b")
            assert [u.key for u in after_b.uploads] == ["c", "x/y"]
            prefixed = await store.list_multipart_uploads("b", prefix="x/")
            assert [(u.key, u.upload_id) for u in prefixed.uploads] == [expected[-1]]
            assert (await store.list_multipart_uploads("b", max_uploads=0)).uploads == []

    asyncio.run(scenario())


def test_a_replaced_objects_files_that_cannot_be_opened_do_not_fail_the_committed_write(tmp_path, monkeypatch):
    """Out of file descriptors when a multipart object is replaced: the PUT has committed, so it succeeds,
    and the old object's files go once they can be opened again (the reaper's retry)."""
    from s4.store import filesystem

    real_open = os.open
    failing = {"on": False}

    def open_or_emfile(path, flags, *args, **kwargs):
        if failing["on"]:
            raise OSError(24, "Too many open files")
        return real_open(path, flags, *args, **kwargs)

    async def scenario():
        store = await open_store(tmp_path)
        try:
            upload_id = await store.create_multipart_upload("b", "k", ATTRS)
            p1 = await store.upload_part("b", "k", upload_id, 1, body(b"a" * 5 * MiB))
            p2 = await store.upload_part("b", "k", upload_id, 2, body(b"b"))
            await store.complete_multipart_upload("b", "k", upload_id, [(1, p1.etag), (2, p2.etag)])
            assert len(object_files(tmp_path)) == 2
            monkeypatch.setattr(filesystem.os, "open", open_or_emfile)
            failing["on"] = True
            await store.delete_object("b", "k")  # the commit stands, whatever its clean-up finds
            failing["on"] = False
            assert await error_code(store.head_object("b", "k")) == "NoSuchKey"
            deadline = time.monotonic() + 5 * filesystem.REAP_INTERVAL_S
            while object_files(tmp_path) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert object_files(tmp_path) == []
        finally:
            await store.close()

    asyncio.run(scenario())
