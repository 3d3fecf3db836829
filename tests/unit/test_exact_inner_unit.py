"""The inner stores' promises, one at a time: reads pinned to one version, a full disk, private files."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.store.base import ByteRange, ObjectAttributes, ObjectInfo, ObjectStream, StoreError
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from tests.unit.store_helpers import body, read_all

KiB = 1024
FRAME = 64 * KiB
POLICY = FramePolicy(
    single_frame_max=FRAME, medium_frame=FRAME, medium_max=1 << 30, large_frame=FRAME, unknown_frame=FRAME
)


def text(seed: int, size: int) -> bytes:
    line = b"version %03d line %08d: the quick brown fox jumps over the lazy dog\n"
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line % (seed, n)
        n += 1
    return bytes(out[:size])


def noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --- item 7: a read serves the version it started with ------------------------------------------------------


class Overwriting:
    """An inner store that lets a writer replace an object right after each of the first ``times``
    HEADs: the worst timing for a reader that plans a range from a HEAD."""

    def __init__(self, inner: FilesystemStore) -> None:
        self.inner = inner
        self.times = 0
        self.write: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        head = await self.inner.head_object(bucket, key)
        if self.times > 0 and self.write is not None:
            self.times -= 1
            await self.write()
        return head


@contextlib.asynccontextmanager
async def overwriting(tmp_path: Path):
    inner = Overwriting(await FilesystemStore.open(tmp_path, durable=False))
    store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), POLICY)
    await store.create_bucket("b")
    try:
        yield store, inner
    finally:
        await store.close()
        store.pool.close()


async def read(opening: Awaitable[ObjectStream]) -> tuple[ObjectStream, bytes]:
    stream = await opening
    return stream, await read_all(stream)


@pytest.mark.parametrize("times", [1, 3, 100])  # once, a few times, every time
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (text(1, 300 * KiB), text(2, 420 * KiB)),  # framed, with sidecars, both
        (text(1, 300 * KiB), noise(2, 250 * KiB)),  # framed, then stored raw
        (noise(1, 300 * KiB), text(2, 200 * KiB + 7)),  # raw, then framed
    ],
    ids=["framed-framed", "framed-raw", "raw-framed"],
)
@pytest.mark.parametrize(
    "wanted",
    [ByteRange(70 * KiB, 150 * KiB), ByteRange(suffix=90 * KiB), ByteRange(0, None), ByteRange(190 * KiB, None)],
    ids=["middle", "suffix", "all", "tail"],
)
def test_a_range_read_during_an_overwrite_is_one_whole_version(tmp_path, old, new, times, wanted):
    """Replaced between the HEAD a range is planned from and its read (once, or every time): the
    read answers the range of exactly one version, never an error nor a mix."""

    async def scenario():
        async with overwriting(tmp_path) as (store, inner):
            await store.put_object("b", "k", body(old), ObjectAttributes())
            versions = [old, new]

            async def write() -> None:
                versions.append(versions.pop(0))
                await store.put_object("b", "k", body(versions[0]), ObjectAttributes())

            inner.write, inner.times = write, times
            stream, got = await read(store.get_object("b", "k", wanted))
            served = old if stream.info.size == len(old) else new
            first, last = wanted.resolve(len(served))
            assert stream.range == (first, last)
            assert got == served[first : last + 1]

    asyncio.run(scenario())


def test_filesystem_if_match_pins_the_version(tmp_path):
    async def scenario():
        store = await FilesystemStore.open(tmp_path, durable=False)
        try:
            await store.create_bucket("b")
            first = await store.put_object("b", "k", body(b"one"), ObjectAttributes())
            _, got = await read(store.get_object("b", "k", ByteRange(1, 2), if_match=first.etag))
            assert got == b"ne"
            await store.put_object("b", "k", body(b"two"), ObjectAttributes())
            with pytest.raises(StoreError) as refused:
                await store.get_object("b", "k", if_match=first.etag)
            assert refused.value.code == "PreconditionFailed"
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        upstream = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield upstream
    upstream.stop()


def test_s3_if_match_pins_the_version(seaweed):
    from s4.config import UpstreamConfig
    from s4.store.s3.store import S3Store
    from tests.seaweed import ACCESS_KEY, SECRET_KEY

    async def scenario():
        config = UpstreamConfig(endpoint=seaweed.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        store = await S3Store.open(config)
        try:
            await store.create_bucket("pinned")
            first = await store.put_object("pinned", "k", body(b"one"), ObjectAttributes())
            _, got = await read(store.get_object("pinned", "k", ByteRange(1, 2), if_match=first.etag))
            assert got == b"ne"
            await store.put_object("pinned", "k", body(b"two"), ObjectAttributes())
            for wanted in (None, ByteRange(0, 1)):
                with pytest.raises(StoreError) as refused:
                    await store.get_object("pinned", "k", wanted, if_match=first.etag)
                assert refused.value.code == "PreconditionFailed"
        finally:
            await store.close()

    asyncio.run(scenario())


# --- smaller promise: private files -------------------------------------------------------------------------


def test_an_existing_data_directory_and_credentials_become_private(tmp_path):
    """A data directory made by someone else (0755) and a credentials file copied in with 0644 are
    made private when the gateway starts."""
    from s4.config import S4Config, ensure_credentials

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "credentials.json").write_text('{"access_key_id": "S4KEY", "secret_access_key": "a-long-secret"}')
    (data / "credentials.json").chmod(0o644)
    pairs, generated = ensure_credentials(S4Config(data_dir=data))
    assert not generated and pairs[0].access_key_id == "S4KEY"
    assert (data / "credentials.json").stat().st_mode & 0o777 == 0o600

    async def scenario():
        store = await FilesystemStore.open(data, durable=False)
        await store.close()

    asyncio.run(scenario())
    assert data.stat().st_mode & 0o777 == 0o700


# --- item 10: a full disk, and a Complete that copies nothing -----------------------------------------------


def test_no_room_is_storage_full_for_files_the_index_and_an_upstream():
    import errno
    import sqlite3

    from botocore.exceptions import ClientError

    from s4.store import filesystem
    from s4.store.s3.errors import translate

    def no_room() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def index_full() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    for run, fn in ((filesystem._translate_os_errors, no_room), (filesystem._translate_sqlite_errors, index_full)):
        with pytest.raises(StoreError) as full:
            run(fn)
        assert full.value.code == "XMinioStorageFull"
    for code, status in (("XMinioStorageFull", 507), ("", 507)):
        answer = {"Error": {"Code": code, "Message": "full"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        assert translate(ClientError(answer, "PutObject"), "http://upstream").code == "XMinioStorageFull"


MiB = 1024 * KiB


def test_a_reader_keeps_the_parts_of_a_replaced_multipart_object(tmp_path):
    """An object completed from parts is its parts' files; replaced and deleted while a reader is
    halfway, the reader still gets every byte of it, and the files go once the reader is done."""
    parts = [noise(n, 5 * MiB) for n in range(2)] + [b"end"]

    async def scenario():
        store = await FilesystemStore.open(tmp_path, durable=False)
        try:
            await store.create_bucket("b")
            upload = await store.create_multipart_upload("b", "k", ObjectAttributes())
            done = [await store.upload_part("b", "k", upload, n, body(p)) for n, p in enumerate(parts, 1)]
            await store.complete_multipart_upload("b", "k", upload, [(p.part_number, p.etag) for p in done])
            old_files = {p for p in (tmp_path / "objects").rglob("*") if p.is_file()}
            assert len(old_files) == 3
            stream = await store.get_object("b", "k", ByteRange(1, None))
            first = await anext(stream.body)
            await store.put_object("b", "k", body(b"replaced"), ObjectAttributes())
            assert all(p.exists() for p in old_files)  # held by the reader's lease: deleting waits
            rest = b"".join([chunk async for chunk in stream.body])
            assert first + rest == b"".join(parts)[1:]
            await stream.aclose()
            for _ in range(100):  # the reaper tries again every second
                if not any(p.exists() for p in old_files):
                    break
                await asyncio.sleep(0.1)
            assert not any(p.exists() for p in old_files)
            assert await read_all(await store.get_object("b", "k")) == b"replaced"
        finally:
            await store.close()

    asyncio.run(scenario())


def test_upload_part_copy_of_a_whole_object_links_it(tmp_path):
    """Files are never modified: a whole-object part copy is a hard link (no second copy on disk), and
    the completed object outlives its source."""
    source = noise(3, 6 * MiB)

    async def scenario():
        store = await FilesystemStore.open(tmp_path, durable=False)
        try:
            await store.create_bucket("b")
            await store.put_object("b", "src", body(source), ObjectAttributes())
            upload = await store.create_multipart_upload("b", "dst", ObjectAttributes())
            jobs = []
            submit = store._files.submit

            def counting_submit(fn, *args, **kwargs):
                jobs.append(getattr(args[0] if args else fn, "__name__", repr(fn)))
                return submit(fn, *args, **kwargs)

            store._files.submit = counting_submit
            copied = await store.upload_part_copy("b", "dst", upload, 1, "b", "src")
            store._files.submit = submit
            assert jobs == ["_link_into_place"]  # made at its final name: no job to move it there
            tail = await store.upload_part_copy("b", "dst", upload, 2, "b", "src", ByteRange(0, 9))
            assert (copied.size, tail.size) == (len(source), 10)
            linked = [p for p in (tmp_path / "objects").rglob("*") if p.is_file() and p.stat().st_nlink == 2]
            assert len(linked) == 2  # the source's file and the part's name for it
            await store.complete_multipart_upload("b", "dst", upload, [(1, copied.etag), (2, tail.etag)])
            await store.delete_object("b", "src")
            assert await read_all(await store.get_object("b", "dst")) == source + source[:10]
        finally:
            await store.close()

    asyncio.run(scenario())
