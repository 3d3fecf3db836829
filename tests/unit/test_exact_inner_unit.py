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
