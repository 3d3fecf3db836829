"""S3Store against a real SeaweedFS on loopback (no mocks of S3): every protocol operation, the
error mapping, the temporary-key PUT path, streaming, the CompressingStore on top, an upstream
that stops and comes back; and the settings and factory that open it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import itertools
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool, FrameIndex
from s4.codec.policy import FramePolicy
from s4.config import ConfigError, S4Config, UpstreamConfig, load_config
from s4.server.access.authorize import bucket_facts
from s4.store.base import ByteRange, ObjectAttributes, ObjectStream, SourceChanged, StoreError, WriteCondition
from s4.store.compressing.store import CompressingStore
from s4.store.factory import open_inner_store
from s4.store.filesystem import FilesystemStore
from s4.store.s3 import guarded
from s4.store.s3.store import TEMP_PREFIX, S3Store
from tests.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS, SeaweedUnavailable, start_seaweed
from tests.unit.store_helpers import body, failing_body, md5

T = TypeVar("T")
KiB = 1024
MiB = 1024 * KiB
PART = 5 * MiB
FRAME = 64 * KiB
POLICY = FramePolicy(
    single_frame_max=FRAME, medium_frame=FRAME, medium_max=64 * MiB, large_frame=FRAME, unknown_frame=FRAME
)
_names = itertools.count()


# -- fixtures: one SeaweedFS, one event loop and one store for the whole module ---------------------


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory) -> SeaweedFS:
    try:
        upstream = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def upstream_config(seaweed: SeaweedFS, **changes: Any) -> UpstreamConfig:
    settings = {
        "endpoint": seaweed.endpoint,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "multipart_threshold": PART,
        "part_size": PART,
        "max_pool_connections": 8,
        "connect_timeout": 2,
        "read_timeout": 10,
    }
    return UpstreamConfig(**(settings | changes))


@pytest.fixture(scope="module")
def store(seaweed, loop) -> S3Store:
    opened = loop.run_until_complete(S3Store.open(upstream_config(seaweed)))
    yield opened
    loop.run_until_complete(opened.close())


@pytest.fixture(scope="module")
def compressing(store, loop) -> CompressingStore:
    pool = CpuCodecPool(CodecRegistry.cpu_default())
    yield CompressingStore(store, pool, CodecDispatcher(), POLICY)
    pool.close()


@pytest.fixture
def run(loop) -> Callable[[Awaitable[T]], T]:
    def runner(awaitable: Awaitable[T], timeout: float = 60) -> T:
        return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))

    return runner


@pytest.fixture
def bucket(store, run) -> str:
    name = f"s3store-{next(_names)}"
    run(store.create_bucket(name))
    return name


# -- helpers ------------------------------------------------------------------------------------------


async def read(stream: ObjectStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream.body])
    finally:
        await stream.aclose()


async def get(store, bucket: str, key: str, byte_range: ByteRange | None = None) -> bytes:
    return await read(await store.get_object(bucket, key, byte_range))


def chunked(data: bytes, size: int = 256 * KiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclasses.dataclass
class SizedBody:
    """A request body that declares its length, as the server's bodies do (``expected_size``)."""

    chunks: list[bytes]
    expected_size: int | None
    fail_at_end: bool = False

    async def _iterate(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await asyncio.sleep(0)
            yield chunk
        if self.fail_at_end:
            raise StoreError("BadDigest", "The Content-MD5 you specified did not match what we received.")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()


def log_text(size: int, seed: int = 0) -> bytes:
    """Log-like text that compresses a few times over, never repeating exactly."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += (
            f"{1_700_000_000 + len(out)} INFO [{rng.choice(('auth', 'orders', 'search'))}] GET /api/"
            f"{rng.randrange(100000)} status={rng.choice((200, 204, 404))} ms={rng.random() * 90:.2f}\n"
        ).encode()
    return bytes(out[:size])


def raw_keys(seaweed: SeaweedFS, bucket: str, prefix: str = "") -> list[str]:
    answer = seaweed.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in answer.get("Contents", [])]


def raw_uploads(seaweed: SeaweedFS, bucket: str) -> list[str]:
    return [u["Key"] for u in seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def error_code(run, awaitable: Awaitable[Any]) -> str:
    with pytest.raises(StoreError) as caught:
        run(awaitable)
    return caught.value.code


ATTRIBUTES = ObjectAttributes(
    content_type="text/plain; charset=utf-8",
    metadata={"owner": "Team-A", "n": "1"},
    headers={
        "cache-control": "max-age=60",
        "content-disposition": 'attachment; filename="a.txt"',
        "content-language": "en",
        "expires": "Wed, 21 Oct 2015 07:28:00 GMT",
    },
    checksums={"crc32c": "yZRlqg=="},
)


# -- settings and factory (no upstream needed) --------------------------------------------------------


def test_upstream_settings_come_from_file_environment_and_flags(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text(
        "backend: s3\nupstream:\n  endpoint: http://file:9000\n  region: eu-west-1\n  part_size: 16777216\n"
    )
    env = {
        "S4_UPSTREAM_ENDPOINT": "http://env:9000/",
        "S4_UPSTREAM_ACCESS_KEY_ID": "AK",
        "S4_UPSTREAM_SECRET_ACCESS_KEY": "sk",
    }
    config = load_config(path, env=env, overrides={"upstream_region": "ap-south-1", "upstream_endpoint": None})
    up = config.upstream
    assert (config.backend, up.endpoint, up.region, up.part_size) == ("s3", "http://env:9000", "ap-south-1", 16 * MiB)
    assert (up.access_key_id, up.secret_access_key) == ("AK", "sk")
    assert "sk" not in repr(up)
    assert load_config(None, env={}).upstream == UpstreamConfig()
    flags = load_config(None, env={}, overrides={"backend": "s3", "upstream_endpoint": "https://s3.example"})
    assert (flags.backend, flags.upstream.endpoint) == ("s3", "https://s3.example")


@pytest.mark.parametrize(
    "settings",
    [
        {"S4_UPSTREAM_ENDPOINT": "s3.example.com"},
        {"S4_UPSTREAM_ACCESS_KEY_ID": "only-the-key"},
        {"S4_BACKEND": "ftp"},
    ],
)
def test_bad_upstream_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        load_config(None, env=settings)


@pytest.mark.parametrize("prefix", ["{bucket}-", "x/", "{bucket}/{bucket}/", ".s4x/{bucket}/", "{b}{bucket}/"])
def test_a_key_prefix_must_keep_buckets_apart(prefix):
    with pytest.raises(ConfigError, match="key_prefix"):
        load_config(None, env={}, overrides={"upstream_key_prefix": prefix})


def test_the_factory_opens_the_configured_backend(tmp_path, loop):
    async def scenario() -> None:
        inner = await open_inner_store(S4Config(data_dir=tmp_path / "data"))
        assert isinstance(inner, FilesystemStore)
        await inner.close()
        with pytest.raises(ConfigError, match="endpoint"):
            await open_inner_store(S4Config(backend="s3"))

    loop.run_until_complete(scenario())


def test_the_factory_opens_an_s3_store(seaweed, run):
    config = S4Config(backend="s3", upstream=upstream_config(seaweed))
    inner = run(open_inner_store(config))
    try:
        assert isinstance(inner, S3Store) and inner.min_part_size == 5 * MiB
        run(inner.ping())
    finally:
        run(inner.close())


# -- buckets ------------------------------------------------------------------------------------------


def test_bucket_lifecycle(store, run):
    name = f"s3store-life-{next(_names)}"
    assert error_code(run, store.head_bucket(name)) == "NoSuchBucket"
    run(store.create_bucket(name))
    assert error_code(run, store.create_bucket(name)) == "BucketAlreadyOwnedByYou"
    assert run(store.head_bucket(name)).name == name
    listed = {b.name: b for b in run(store.list_buckets())}
    assert name in listed and listed[name].created.tzinfo == dt.UTC
    run(store.put_object(name, "k", body(b"x"), ObjectAttributes()))
    assert error_code(run, store.delete_bucket(name)) == "BucketNotEmpty"
    run(store.delete_object(name, "k"))
    run(store.delete_bucket(name))
    assert error_code(run, store.head_bucket(name)) == "NoSuchBucket"
    assert error_code(run, store.delete_bucket(name)) == "NoSuchBucket"


# -- objects ------------------------------------------------------------------------------------------


def test_put_head_get_keep_every_attribute(store, run, bucket):
    data = b"hello, upstream\n" * 100
    info = run(store.put_object(bucket, "dir/a.txt", body(data[:700], data[700:]), ATTRIBUTES))
    assert (info.size, info.etag) == (len(data), md5(data))
    assert info.last_modified.tzinfo == dt.UTC
    head = run(store.head_object(bucket, "dir/a.txt"))
    assert (head.size, head.etag) == (len(data), md5(data))
    assert head.last_modified.tzinfo == dt.UTC
    assert abs((head.last_modified - dt.datetime.now(dt.UTC)).total_seconds()) < 120
    assert head.attributes == ATTRIBUTES
    stream = run(store.get_object(bucket, "dir/a.txt"))
    assert stream.info.attributes == ATTRIBUTES and stream.range is None
    assert run(read(stream)) == data
    # An Expires that is no HTTP date still comes back as it was given.
    odd = ObjectAttributes(headers={"expires": "never"})
    run(store.put_object(bucket, "odd", body(b"x"), odd))
    assert run(store.head_object(bucket, "odd")).attributes.headers == {"expires": "never"}
    # Empty objects.
    info = run(store.put_object(bucket, "empty", body(), ObjectAttributes()))
    assert (info.size, info.etag) == (0, md5(b""))
    assert run(get(store, bucket, "empty")) == b""


def test_ranged_gets_stream_just_the_range(store, run, bucket):
    data = os.urandom(700 * KiB + 3)
    run(store.put_object(bucket, "r", body(data), ObjectAttributes()))
    for byte_range, (first, last) in [
        (ByteRange(0, 0), (0, 0)),
        (ByteRange(1000, 300_000), (1000, 300_000)),
        (ByteRange(start=500_000), (500_000, len(data) - 1)),
        (ByteRange(suffix=10), (len(data) - 10, len(data) - 1)),
        (ByteRange(suffix=10 * MiB), (0, len(data) - 1)),
        (ByteRange(600_000, 10 * MiB), (600_000, len(data) - 1)),
    ]:
        stream = run(store.get_object(bucket, "r", byte_range))
        assert stream.range == (first, last) and stream.info.size == len(data)
        chunks = run(_collect(stream))
        assert b"".join(chunks) == data[first : last + 1]
        assert max(len(c) for c in chunks) <= 256 * KiB  # streamed in pieces, not read whole
    assert error_code(run, store.get_object(bucket, "r", ByteRange(start=len(data)))) == "InvalidRange"
    assert error_code(run, store.get_object(bucket, "r", ByteRange(suffix=0))) == "InvalidRange"


async def _collect(stream: ObjectStream) -> list[bytes]:
    try:
        return [chunk async for chunk in stream.body]
    finally:
        await stream.aclose()


def test_closing_a_stream_early_releases_its_connection(store, run, bucket):
    run(store.put_object(bucket, "big", body(os.urandom(2 * MiB)), ObjectAttributes()))

    async def open_and_abandon() -> None:
        # Three times the pool size: a leaked connection would make this wait on the pool forever.
        for _ in range(24):
            stream = await store.get_object(bucket, "big")
            await anext(stream.body)
            await stream.aclose()

    run(open_and_abandon(), timeout=30)
    assert run(get(store, bucket, "big", ByteRange(0, 9))) is not None


def test_missing_things_map_to_s3_errors(store, run, bucket):
    assert error_code(run, store.head_object(bucket, "nope")) == "NoSuchKey"
    assert error_code(run, store.get_object(bucket, "nope")) == "NoSuchKey"
    run(store.delete_object(bucket, "nope"))  # idempotent
    gone = "s3store-never-created"
    for call in (
        lambda: store.head_object(gone, "k"),
        lambda: store.get_object(gone, "k"),
        lambda: store.put_object(gone, "k", body(b"x"), ObjectAttributes()),
        lambda: store.delete_object(gone, "k"),
        lambda: store.list_objects(gone),
        lambda: store.create_multipart_upload(gone, "k", ObjectAttributes()),
    ):
        assert error_code(run, call()) == "NoSuchBucket"
    assert error_code(run, store.list_parts(bucket, "k", "no-such-upload")) == "NoSuchUpload"
    assert error_code(run, store.abort_multipart_upload(bucket, "k", "no-such-upload")) == "NoSuchUpload"
    assert error_code(run, store.copy_object(bucket, "nope", bucket, "dst", None)) == "NoSuchKey"


def test_a_version_id_on_a_never_versioned_bucket_deletes_nothing(store, run, bucket):
    """A never-versioned bucket knows no id but ``null``: another is 400 InvalidArgument, as S3 answers."""
    for key in ("keep", "drop"):
        run(store.put_object(bucket, key, body(key.encode()), ObjectAttributes()))
    assert error_code(run, store.delete_object(bucket, "keep", version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")) == (
        "InvalidArgument"
    )
    run(store.delete_object(bucket, "drop", version_id="null"))
    assert [o.key for o in run(store.list_objects(bucket)).objects] == ["keep"]


def test_a_wrong_upstream_secret_is_access_denied(seaweed, run):
    wrong = run(S3Store.open(upstream_config(seaweed, secret_access_key="not-the-secret")))
    try:
        with pytest.raises(StoreError) as caught:
            run(wrong.list_buckets())
        assert caught.value.code == "AccessDenied" and "credentials" in caught.value.message
        assert error_code(run, wrong.ping()) == "AccessDenied"
    finally:
        run(wrong.close())


def test_a_large_put_goes_through_a_temporary_key_and_leaves_nothing_behind(store, seaweed, run, bucket):
    data = os.urandom(12 * MiB + 123)
    started = time.monotonic()
    info = run(store.put_object(bucket, "large/obj", body(*chunked(data)), ATTRIBUTES))
    print(f"\n12 MiB PUT through the temporary key: {time.monotonic() - started:.2f} s")
    assert info.size == len(data) and info.etag.endswith("-3")  # three upstream parts of 5 MiB, 5 MiB, 2 MiB
    head = run(store.head_object(bucket, "large/obj"))
    assert (head.size, head.etag, head.attributes) == (len(data), info.etag, ATTRIBUTES)
    assert run(get(store, bucket, "large/obj")) == data
    assert run(get(store, bucket, "large/obj", ByteRange(6 * MiB, 6 * MiB + 99))) == data[6 * MiB : 6 * MiB + 100]
    assert raw_keys(seaweed, bucket) == ["large/obj"]
    assert raw_uploads(seaweed, bucket) == []


@pytest.mark.parametrize("size", [1000, 12 * MiB])
def test_a_body_that_fails_at_its_end_stores_nothing(store, seaweed, run, bucket, size):
    data = os.urandom(size)
    with pytest.raises(ValueError, match="digest mismatch"):
        run(store.put_object(bucket, "failed", failing_body(*chunked(data)), ATTRIBUTES))
    assert error_code(run, store.head_object(bucket, "failed")) == "NoSuchKey"
    assert raw_keys(seaweed, bucket) == []
    assert raw_uploads(seaweed, bucket) == []


def test_a_huge_object_is_copied_with_upload_part_copy(store, seaweed, run, bucket):
    data = os.urandom(11 * MiB)
    store.max_single_copy, store.copy_part_size = 1 * MiB, 5 * MiB  # pretend 11 MiB is past 5 GiB
    try:
        info = run(store.put_object(bucket, "huge", body(*chunked(data)), ATTRIBUTES))
        assert info.etag.endswith("-3")
        assert raw_keys(seaweed, bucket) == ["huge"] and raw_uploads(seaweed, bucket) == []
        copied = run(store.copy_object(bucket, "huge", bucket, "huge-copy", None))
        assert copied.size == len(data) and copied.etag.endswith("-3")
    finally:
        del store.max_single_copy, store.copy_part_size
    assert run(store.head_object(bucket, "huge")).attributes == ATTRIBUTES
    assert run(store.head_object(bucket, "huge-copy")).attributes == ATTRIBUTES
    assert run(get(store, bucket, "huge-copy")) == data


def test_copy_keeps_or_replaces_attributes(store, run, bucket):
    run(store.put_object(bucket, "src", body(b"copy me"), ATTRIBUTES))
    kept = run(store.copy_object(bucket, "src", bucket, "kept", None))
    assert (kept.size, kept.etag, kept.attributes) == (7, md5(b"copy me"), ATTRIBUTES)
    assert run(store.head_object(bucket, "kept")).attributes == ATTRIBUTES
    other = run(store.copy_object(bucket, "src", bucket, "replaced", ObjectAttributes("application/x-new", {"k": "v"})))
    assert other.attributes == ObjectAttributes("application/x-new", {"k": "v"})
    assert run(store.head_object(bucket, "replaced")).attributes == ObjectAttributes("application/x-new", {"k": "v"})
    assert run(get(store, bucket, "replaced")) == b"copy me"


def test_a_copy_of_a_source_that_is_no_longer_the_one_seen_is_refused(store, run, bucket):
    """``src_etag``: the source as the caller saw it (whose manifest and sidecar it carries over); another
    object there is SourceChanged, and nothing is copied."""
    first = run(store.put_object(bucket, "src", body(b"first"), ObjectAttributes())).etag
    second = run(store.put_object(bucket, "src", body(b"second"), ObjectAttributes())).etag
    with pytest.raises(SourceChanged):
        run(store.copy_object(bucket, "src", bucket, "dst", None, src_etag=first))
    assert error_code(run, store.head_object(bucket, "dst")) == "NoSuchKey"
    run(store.copy_object(bucket, "src", bucket, "dst", None, src_etag=second))
    assert run(get(store, bucket, "dst")) == b"second"


def test_listing_pages_by_start_after(store, run, bucket):
    keys = ["a", "b/1", "b/2", "b/3", "c", "d/x/1", "e", "é"]

    async def fill() -> None:
        await asyncio.gather(*(store.put_object(bucket, k, body(k.encode()), ObjectAttributes()) for k in keys))

    run(fill())
    page = run(store.list_objects(bucket))
    assert [o.key for o in page.objects] == keys and not page.is_truncated and page.next_marker is None
    assert page.objects[0].size == 1 and page.objects[0].etag == md5(b"a")
    assert page.objects[0].last_modified.tzinfo == dt.UTC
    seen: list[str] = []
    after = None
    while True:
        page = run(store.list_objects(bucket, "", "/", after, 2))
        seen += [o.key for o in page.objects] + list(page.common_prefixes)
        if not page.is_truncated:
            break
        after = page.next_marker
    assert seen == ["a", "b/", "c", "d/", "e", "é"]
    page = run(store.list_objects(bucket, "b/", None, "b/1", 1))
    assert [o.key for o in page.objects] == ["b/2"] and page.is_truncated and page.next_marker == "b/2"
    assert run(store.list_objects(bucket, max_keys=0)).objects == []


def test_a_marker_that_is_also_a_folder_loses_no_keys(store, run, bucket):
    """SeaweedFS skips the folder named by StartAfter ('a' for 'a/b'): the store puts its keys back."""
    keys = ["a", "a.txt", "a/b", "a/c/d", "b", "x/a", "x/a/1", "x/a/2", "x/b"]

    async def fill() -> None:
        await asyncio.gather(*(store.put_object(bucket, k, body(k.encode()), ObjectAttributes()) for k in keys))

    run(fill())
    whole = [o.key for o in run(store.list_objects(bucket)).objects]  # in the upstream's order
    assert sorted(whole) == sorted(keys)
    for size in (1, 2, 3):
        seen: list[str] = []
        after = None
        while True:
            page = run(store.list_objects(bucket, "", None, after, size))
            seen += [o.key for o in page.objects]
            if not page.is_truncated:
                break
            after = page.next_marker
        assert seen == whole, size
    rolled_whole = run(store.list_objects(bucket, "", "/"))
    for size in (1, 2):
        rolled_seen: list[str] = []
        after = None
        while True:
            page = run(store.list_objects(bucket, "", "/", after, size))
            rolled_seen += [o.key for o in page.objects] + list(page.common_prefixes)
            if not page.is_truncated:
                break
            after = page.next_marker
        assert sorted(rolled_seen) == sorted([o.key for o in rolled_whole.objects] + rolled_whole.common_prefixes)
    assert [o.key for o in run(store.list_objects(bucket, "", None, "a", 2)).objects] == ["a/b", "a/c/d"]
    assert [o.key for o in run(store.list_objects(bucket, "x/", None, "x/a", 5)).objects] == ["x/a/1", "x/a/2", "x/b"]
    rolled = run(store.list_objects(bucket, "", "/", "a", 5))
    assert [o.key for o in rolled.objects] == ["a.txt", "b"] and rolled.common_prefixes == ["a/", "x/"]
    assert run(store.list_objects(bucket, "", None, "x", 5)).objects[0].key == "x/a"
    assert run(store.list_objects(bucket, "a/", None, "a", 5)).objects[0].key == "a/b"


def test_multipart_operations(store, seaweed, run, bucket):
    parts = [os.urandom(6 * MiB), os.urandom(5 * MiB + 7), os.urandom(1000)]
    run(store.put_object(bucket, "copy-source", body(*chunked(parts[1])), ObjectAttributes()))
    upload = run(store.create_multipart_upload(bucket, "mp", ATTRIBUTES))
    listed = run(store.list_multipart_uploads(bucket))
    assert [(u.key, u.upload_id) for u in listed.uploads] == [("mp", upload)]
    assert listed.uploads[0].initiated.tzinfo == dt.UTC
    # Declared and large: streamed through as one part.
    p1 = run(store.upload_part(bucket, "mp", upload, 1, SizedBody(chunked(parts[0]), len(parts[0]))))
    # A server-side copy of a range.
    p2 = run(store.upload_part_copy(bucket, "mp", upload, 2, bucket, "copy-source", ByteRange(start=0)))
    # Held to the source the caller saw: another object there is SourceChanged, and nothing is copied.
    seen = run(store.head_object(bucket, "copy-source")).etag
    with pytest.raises(SourceChanged):
        run(store.upload_part_copy(bucket, "mp", upload, 4, bucket, "copy-source", src_etag="0" * 32))
    assert 4 not in [p.part_number for p in run(store.list_parts(bucket, "mp", upload)).parts]
    held = run(store.upload_part_copy(bucket, "mp", upload, 4, bucket, "copy-source", src_etag=seen))
    assert held.size == len(parts[1])
    # Length unknown: gathered first. (Part 4 stays staged; the upload completes without it.)
    p3 = run(store.upload_part(bucket, "mp", upload, 3, body(parts[2])))
    assert [(p.part_number, p.size) for p in (p1, p2, p3)] == [(n + 1, len(d)) for n, d in enumerate(parts)]
    # A copied part's ETag is the upstream's to choose (SeaweedFS gives the source's); sent parts' are MD5s.
    assert (p1.etag, p3.etag) == (md5(parts[0]), md5(parts[2])) and p2.etag
    page = run(store.list_parts(bucket, "mp", upload, 0, 2))
    assert [p.part_number for p in page.parts] == [1, 2] and page.is_truncated and page.next_part_number_marker == 2
    assert [p.part_number for p in run(store.list_parts(bucket, "mp", upload, 2)).parts] == [3, 4]
    assert error_code(run, store.complete_multipart_upload(bucket, "mp", upload, [(1, p1.etag), (2, "0" * 32)])) in (
        "InvalidPart",
        "InternalError",
    )
    done = run(store.complete_multipart_upload(bucket, "mp", upload, [(p.part_number, p.etag) for p in (p1, p2, p3)]))
    assert done.size == sum(map(len, parts)) and done.etag.endswith("-3")
    assert done.attributes == ATTRIBUTES
    assert run(get(store, bucket, "mp")) == b"".join(parts)
    aborted = run(store.create_multipart_upload(bucket, "gone", ObjectAttributes()))
    run(store.abort_multipart_upload(bucket, "gone", aborted))
    assert run(store.list_multipart_uploads(bucket)).uploads == []
    assert raw_uploads(seaweed, bucket) == []


@pytest.mark.parametrize("then", ["overwritten", "deleted"])
@pytest.mark.parametrize("creator", ["this store", "another process"])
def test_a_complete_describes_the_object_it_made_when_another_writer_changes_the_key_at_once(
    store, seaweed, run, bucket, loop, then, creator
):
    """Another writer's PUT or DELETE of the key lands right after the Complete: the Complete still
    answers, and describes its own object (not the other writer's, which the savings ledger would then
    count for it). Read back by a HEAD, it described the other object, or failed with NoSuchKey."""
    data = os.urandom(1000)
    raw = seaweed.client()
    creating = store if creator == "this store" else loop.run_until_complete(S3Store.open(upstream_config(seaweed)))
    try:
        upload = run(creating.create_multipart_upload(bucket, "mp", ATTRIBUTES))
        part = run(creating.upload_part(bucket, "mp", upload, 1, body(data)))
    finally:
        if creating is not store:
            run(creating.close())
    completing = store._completing

    def interleaved(*args: Any) -> Callable[[WriteCondition | None], Awaitable[dict[str, Any]]]:
        send = completing(*args)

        async def then_another_writer(condition: WriteCondition | None) -> dict[str, Any]:
            answer = await send(condition)
            if then == "overwritten":
                await asyncio.to_thread(raw.put_object, Bucket=bucket, Key="mp", Body=b"x" * 77)
            else:
                await asyncio.to_thread(raw.delete_object, Bucket=bucket, Key="mp")
            return answer

        return then_another_writer

    store._completing = interleaved
    try:
        done = run(store.complete_multipart_upload(bucket, "mp", upload, [(1, part.etag)]))
    finally:
        del store._completing
    assert done.etag == hashlib.md5(bytes.fromhex(md5(data))).hexdigest() + "-1"
    assert done.size == len(data)
    # Its metadata is known to the process that created the upload; another only reads it back if still there.
    assert done.attributes == (ATTRIBUTES if creator == "this store" else ObjectAttributes())


def test_a_streamed_part_that_fails_at_its_end_is_not_stored(store, run, bucket):
    upload = run(store.create_multipart_upload(bucket, "mp", ObjectAttributes()))
    data = os.urandom(6 * MiB)
    with pytest.raises(StoreError, match="Content-MD5"):
        run(store.upload_part(bucket, "mp", upload, 1, SizedBody(chunked(data), len(data), fail_at_end=True)))
    # A body shorter than it said is refused too, before its last bytes go up.
    short = SizedBody(chunked(data[:-1]), len(data))
    assert error_code(run, store.upload_part(bucket, "mp", upload, 2, short)) == "IncompleteBody"
    assert run(store.list_parts(bucket, "mp", upload)).parts == []
    run(store.abort_multipart_upload(bucket, "mp", upload))


def test_one_shared_upstream_bucket_holds_many_client_buckets(seaweed, run):
    seaweed.client().create_bucket(Bucket="s4-shared")
    shared = run(S3Store.open(upstream_config(seaweed, bucket="s4-shared", key_prefix="tenants/{bucket}/")))
    try:
        run(shared.create_bucket("alpha"))
        run(shared.create_bucket("alpha-b"))
        assert error_code(run, shared.create_bucket("alpha")) == "BucketAlreadyOwnedByYou"
        assert error_code(run, shared.create_bucket("Bad_Name")) == "InvalidBucketName"
        assert [b.name for b in run(shared.list_buckets())] == ["alpha", "alpha-b"]
        run(shared.put_object("alpha", "k/1", body(b"one"), ATTRIBUTES))
        run(shared.put_object("alpha-b", "k/2", body(b"two"), ObjectAttributes()))
        data = os.urandom(6 * MiB)
        run(shared.put_object("alpha", "large", body(*chunked(data)), ATTRIBUTES))
        assert [o.key for o in run(shared.list_objects("alpha")).objects] == ["k/1", "large"]
        assert run(shared.list_objects("alpha-b", "", "/")).common_prefixes == ["k/"]
        assert run(shared.head_object("alpha", "k/1")).attributes == ATTRIBUTES
        assert run(get(shared, "alpha", "large")) == data
        assert run(shared.copy_object("alpha", "k/1", "alpha-b", "copied", None)).attributes == ATTRIBUTES
        assert error_code(run, shared.head_object("alpha", "k/2")) == "NoSuchKey"
        assert error_code(run, shared.head_object("gamma", "k/1")) == "NoSuchBucket"
        assert error_code(run, shared.put_object("gamma", "k", body(b"x"), ObjectAttributes())) == "NoSuchBucket"
        upload = run(shared.create_multipart_upload("alpha", "mp", ObjectAttributes()))
        assert [u.key for u in run(shared.list_multipart_uploads("alpha")).uploads] == ["mp"]
        assert run(shared.list_multipart_uploads("alpha-b")).uploads == []
        run(shared.abort_multipart_upload("alpha", "mp", upload))
        assert error_code(run, shared.delete_bucket("alpha")) == "BucketNotEmpty"
        for key in ("k/1", "large"):
            run(shared.delete_object("alpha", key))
        run(shared.delete_bucket("alpha"))
        assert [b.name for b in run(shared.list_buckets())] == ["alpha-b"]
        assert sorted(raw_keys(seaweed, "s4-shared")) == [
            ".s4buckets/alpha-b",
            "tenants/alpha-b/copied",
            "tenants/alpha-b/k/2",
        ]
        run(shared.ping())
    finally:
        run(shared.close())


# -- the compressing store on top ---------------------------------------------------------------------


def test_compressing_store_over_s3_round_trip(compressing, seaweed, run, bucket):
    data = log_text(600 * KiB + 11)
    info = run(compressing.put_object(bucket, "logs/app.log", body(*chunked(data, 100_000)), ATTRIBUTES))
    assert (info.size, info.etag) == (len(data), md5(data))
    raw = seaweed.client()
    stored = raw.get_object(Bucket=bucket, Key="logs/app.log")
    stored_body = stored["Body"].read()
    assert stored_body.startswith(b"S4F2") and len(stored_body) < len(data) / 2
    assert stored["Metadata"]["s4-codec"] and int(stored["Metadata"]["s4-original-size"]) == len(data)
    assert stored["Metadata"]["owner"] == "Team-A"
    sidecar = FrameIndex.decode(raw.get_object(Bucket=bucket, Key="logs/app.log.s4index")["Body"].read())
    assert sidecar.version == 2 and len(sidecar.entries) > 1
    assert sidecar.etag == stored["ETag"].strip('"') and sidecar.source_compressed_size == len(stored_body)
    assert run(get(compressing, bucket, "logs/app.log")) == data
    assert run(get(compressing, bucket, "logs/app.log", ByteRange(300_000, 300_099))) == data[300_000:300_100]
    assert compressing.stats.sidecar_fallbacks == 0
    head = run(compressing.head_object(bucket, "logs/app.log"))
    assert (head.size, head.etag, head.attributes) == (len(data), md5(data), ATTRIBUTES)
    listed = run(compressing.list_objects(bucket)).objects
    assert [(o.key, o.size, o.etag) for o in listed] == [("logs/app.log", len(data), md5(data))]


def test_compressing_store_large_put_and_multipart_over_s3(compressing, seaweed, run, bucket):
    data = log_text(24 * MiB, seed=3)
    noise = os.urandom(7 * MiB)  # passthrough frames, so past the 5 MiB threshold: the temporary-key path
    run(compressing.put_object(bucket, "noise", body(*chunked(noise)), ObjectAttributes()))
    # Incompressible, above the threshold, no temporary left; two 4 MiB passthrough frames, so a sidecar.
    assert raw_keys(seaweed, bucket) == ["noise", "noise.s4index"]
    assert run(get(compressing, bucket, "noise")) == noise
    upload = run(compressing.create_multipart_upload(bucket, "mp.log", ObjectAttributes("text/plain")))
    etags = []
    for number, start in enumerate(range(0, len(data), 8 * MiB), start=1):
        part = data[start : start + 8 * MiB]
        etags.append(
            (number, run(compressing.upload_part(bucket, "mp.log", upload, number, body(*chunked(part)))).etag)
        )
    done = run(compressing.complete_multipart_upload(bucket, "mp.log", upload, etags))
    assert done.size == len(data)
    assert run(get(compressing, bucket, "mp.log")) == data
    assert run(get(compressing, bucket, "mp.log", ByteRange(17 * MiB, 17 * MiB + 9))) == data[17 * MiB : 17 * MiB + 10]
    assert not [k for k in raw_keys(seaweed, bucket) if k.startswith(TEMP_PREFIX)]


def test_an_object_written_straight_to_the_upstream_is_served_as_is(compressing, seaweed, run, bucket):
    data = log_text(300 * KiB, seed=9)
    seaweed.client().put_object(Bucket=bucket, Key="plain.txt", Body=data, ContentType="text/plain")
    head = run(compressing.head_object(bucket, "plain.txt"))
    assert (head.size, head.etag, head.attributes.content_type) == (len(data), md5(data), "text/plain")
    assert run(get(compressing, bucket, "plain.txt")) == data
    assert run(get(compressing, bucket, "plain.txt", ByteRange(suffix=5))) == data[-5:]
    assert [(o.key, o.size) for o in run(compressing.list_objects(bucket)).objects] == [("plain.txt", len(data))]


def test_listing_figures_cold_and_warm(compressing, run, bucket):
    """Not a test of speed: the ms per 1000-key page of the CompressingStore over S3 (HEAD fan-out, then cache)."""

    async def fill() -> None:
        gate = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with gate:
                await compressing.put_object(bucket, f"obj/{n:05d}", body(b"small object %d\n" % n), ObjectAttributes())

        await asyncio.gather(*(one(n) for n in range(1000)))

    started = time.monotonic()
    run(fill(), timeout=300)
    filled = time.monotonic() - started
    compressing._listing_cache.clear()
    started = time.monotonic()
    cold = run(compressing.list_objects(bucket, max_keys=1000))
    cold_ms = (time.monotonic() - started) * 1000
    started = time.monotonic()
    warm = run(compressing.list_objects(bucket, max_keys=1000))
    warm_ms = (time.monotonic() - started) * 1000
    assert len(cold.objects) == len(warm.objects) == 1000 and not cold.is_truncated
    assert cold.objects[5].size == len(b"small object 5\n")
    print(f"\n1000 PUTs (32 at a time): {filled:.2f} s")
    print(f"CompressingStore over S3Store list_objects: cold {cold_ms:.0f} ms per 1000-key page (HEAD fan-out),")
    print(f"                                            warm {warm_ms:.0f} ms per 1000-key page (cached)")


# -- an upstream that goes away ------------------------------------------------------------------------


def test_a_stopped_upstream_fails_fast_and_recovers(store, seaweed, run, bucket):
    run(store.put_object(bucket, "before", body(b"still here"), ObjectAttributes()))
    seaweed.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            run(store.head_object(bucket, "before"))
        assert caught.value.code == "ServiceUnavailable" and seaweed.endpoint in caught.value.message
        assert error_code(run, store.put_object(bucket, "during", body(b"x"), ObjectAttributes())) == (
            "ServiceUnavailable"
        )
        assert error_code(run, store.get_object(bucket, "before")) == "ServiceUnavailable"
        assert error_code(run, store.ping()) == "ServiceUnavailable"
        assert time.monotonic() - started < 20
    finally:
        seaweed.start()
    run(store.ping())
    # A restarted SeaweedFS answers S3 before its volume server is back: "recovers" means "soon", not "at once".
    deadline = time.monotonic() + 30
    while True:
        try:
            assert run(get(store, bucket, "before")) == b"still here"
            run(store.put_object(bucket, "after", body(b"x"), ObjectAttributes()))
            break
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert run(get(store, bucket, "after")) == b"x"


def test_a_stalled_upstream_times_out_instead_of_hanging(store, seaweed, run, bucket):
    # More than the socket buffers between the two hold, so a reader must wait on the upstream.
    run(store.put_object(bucket, "k", body(*chunked(os.urandom(32 * MiB), MiB)), ObjectAttributes()))
    impatient = run(S3Store.open(upstream_config(seaweed, read_timeout=1, max_attempts=1)))
    try:
        stream = run(impatient.get_object(bucket, "k"))
        run(anext(stream.body))
        os.kill(seaweed.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert error_code(run, _collect(stream)) == "ServiceUnavailable"
            assert error_code(run, impatient.head_object(bucket, "k")) == "ServiceUnavailable"
            assert error_code(run, impatient.get_object(bucket, "k")) == "ServiceUnavailable"
            # Bodies going up, buffered or streamed, fail once the upstream stops taking them.
            small = body(os.urandom(4 * MiB))
            assert (
                error_code(run, impatient.put_object(bucket, "k2", small, ObjectAttributes())) == "ServiceUnavailable"
            )
            stalled = SizedBody(chunked(os.urandom(32 * MiB)), 32 * MiB)
            assert error_code(run, impatient.upload_part(bucket, "k", "stalled", 1, stalled)) == "ServiceUnavailable"
            assert time.monotonic() - started < 20
        finally:
            os.kill(seaweed.process.pid, signal.SIGCONT)
    finally:
        run(impatient.close())


# -- commits under a CommitGuard: what the commit replaced is exactly what the guard last saw -----------------


class StaleGuard:
    """A CommitGuard whose first look is stale: made before another writer changed the key. Each look
    after that reads the key as it is; ``seen`` is what the last look found (the ETag, or None)."""

    def __init__(self, store: S3Store, bucket: str, key: str, first: str | None) -> None:
        self.store, self.bucket, self.key = store, bucket, key
        self.looks: list[str | None] = []
        self._first = first

    async def expect(self) -> WriteCondition:
        if not self.looks:
            seen = self._first
        else:
            try:
                seen = (await self.store.head_object(self.bucket, self.key)).etag
            except StoreError as exc:
                assert exc.code == "NoSuchKey"
                seen = None
        self.looks.append(seen)
        return WriteCondition(if_none_match=True) if seen is None else WriteCondition(if_match=seen)

    @property
    def seen(self) -> str | None:
        return self.looks[-1]


def test_a_guarded_commit_refused_by_a_change_looks_again_and_commits(store, bucket, run):
    """Put (small and through a temporary), copy, complete and delete, each with a guard that looked
    before another writer changed the key: the upstream refuses the first commit, the guard looks
    again, and the second commit lands; the guard's last look is what was replaced."""
    big = os.urandom(PART + 1)  # past the multipart threshold: committed by a copy of a temporary

    def put(key: str, data: bytes, guard=None) -> str:
        return run(store.put_object(bucket, key, body(data), ObjectAttributes(), guard=guard)).etag

    for data in (b"small new", big):
        old = put("k", b"old")
        changed = put("k", b"changed by another writer")
        guard = StaleGuard(store, bucket, "k", old)
        put("k", data, guard)
        assert guard.looks == [old, changed]
        assert run(read(run(store.get_object(bucket, "k")))) == data

    # Looked while the key was empty; another writer created it before the commit.
    guard = StaleGuard(store, bucket, "created", None)
    other = put("created", b"the other writer's")
    put("created", b"mine", guard)
    assert guard.looks == [None, other]

    put("src", b"copied")
    current = put("k", b"current")
    guard = StaleGuard(store, bucket, "k", "0" * 32)
    run(store.copy_object(bucket, "src", bucket, "k", None, guard=guard))
    assert guard.looks == ["0" * 32, current]

    upload = run(store.create_multipart_upload(bucket, "k", ObjectAttributes()))
    part = run(store.upload_part(bucket, "k", upload, 1, body(b"one part")))
    current = run(store.head_object(bucket, "k")).etag
    guard = StaleGuard(store, bucket, "k", "0" * 32)
    run(store.complete_multipart_upload(bucket, "k", upload, [(1, part.etag)], guard=guard))
    assert guard.looks == ["0" * 32, current]
    assert run(read(run(store.get_object(bucket, "k")))) == b"one part"

    # A delete that looked before the key was rewritten removes the rewrite, and says so.
    looked = put("d", b"looked at")
    rewritten = put("d", b"rewritten")
    guard = StaleGuard(store, bucket, "d", looked)
    run(store.delete_object(bucket, "d", guard=guard))
    assert guard.looks == [looked, rewritten]
    assert error_code(run, store.head_object(bucket, "d")) == "NoSuchKey"

    # A delete whose look finds no object sends none: a write after the look stays, and is not counted
    # as removed (the delete took its place before that write).
    guard = StaleGuard(store, bucket, "d", None)
    put("d", b"written after the look")
    run(store.delete_object(bucket, "d", guard=guard))
    assert guard.looks == [None]
    assert run(read(run(store.get_object(bucket, "d")))) == b"written after the look"


def test_a_refusal_that_is_not_the_keys_change_is_raised(store, bucket, run):
    """The guard finds the key as it expected, yet the commit is refused: the refusal names something
    else (here the copy's source, rewritten between its HEAD and the copy), and comes out as it does
    without a guard, after one look that found the key unchanged."""
    run(store.put_object(bucket, "src", body(b"source"), ObjectAttributes()))
    current = run(store.put_object(bucket, "k", body(b"current"), ObjectAttributes())).etag

    class RewritesTheSource(StaleGuard):
        async def expect(self) -> WriteCondition:
            if not self.looks:
                await self.store.put_object(bucket, "src", body(b"source, rewritten"), ObjectAttributes())
            return await super().expect()

    guard = RewritesTheSource(store, bucket, "k", current)
    assert error_code(run, store.copy_object(bucket, "src", bucket, "k", None, guard=guard)) == "InternalError"
    assert guard.looks == [current] * (1 + guarded.UNEXPLAINED_REFUSALS)
    assert run(read(run(store.get_object(bucket, "k")))) == b"current"


def test_a_refusal_the_guards_look_cannot_explain_still_commits_the_clients_change(store, bucket, run, caplog):
    """An upstream whose condition checks disagree with what it reads back (SeaweedFS's If-Match on a
    Suspended bucket's current version with an id): the change is committed without the condition
    rather than refused for the ledger's sake, and a warning says the ledger may be off."""

    class Misled:
        looks = 0

        async def expect(self) -> WriteCondition:
            self.looks += 1
            return WriteCondition(if_match="0" * 32)  # what the upstream never has

    run(store.put_object(bucket, "k", body(b"before"), ObjectAttributes()))
    guard = Misled()
    guarded._warned.clear()  # warned once per process and reason
    with caplog.at_level("WARNING", logger="s4.store.s3.guarded"):
        run(store.put_object(bucket, "k", body(b"the client's change"), ObjectAttributes(), guard=guard))
    assert guard.looks == 1 + guarded.UNEXPLAINED_REFUSALS
    assert run(read(run(store.get_object(bucket, "k")))) == b"the client's change"
    assert "sent without its guard" in caplog.text


def test_a_guarded_delete_of_a_version_that_became_a_delete_marker_looks_again(store, run):
    """Suspended bucket: the guard looked at the null version (an object); before the delete, another
    process's plain DELETE put a null delete marker in its place (and counted the object as removed).
    The guarded delete must not remove the marker as if it were the object: refused, looked at again.
    (A sidecar's key: a null delete marker of a client's key SeaweedFS cannot remove, see versions.py.)"""
    KEY = "k.s4index"
    name = f"s3store-suspended-{next(_names)}"
    run(store.create_bucket(name))
    run(store.put_bucket_versioning(name, "Enabled"))
    run(store.put_bucket_versioning(name, "Suspended"))
    null = run(store.put_object(name, KEY, body(b"the null version"), ObjectAttributes())).etag

    class VersionGuard:
        looks: list[str | None] = []

        async def expect(self) -> WriteCondition | None:
            if not self.looks:
                self.looks.append(null)
                await store.delete_object(name, KEY)  # the other process's DELETE, after this look
                return WriteCondition(if_match=null)
            try:
                seen = (await store.head_object(name, KEY, version_id="null")).etag
            except StoreError as exc:
                assert exc.code in ("MethodNotAllowed", "NoSuchKey", "NoSuchVersion")
                seen = None
            self.looks.append(seen)
            return None if seen is None else WriteCondition(if_match=seen)

    guard = VersionGuard()
    result = run(store.delete_object(name, KEY, version_id="null", guard=guard))
    assert guard.looks == [null, None]  # what was removed: the marker, which holds no bytes
    assert result.delete_marker


def test_bucket_documents_are_read_once_per_their_time_and_own_changes_count_at_once(seaweed, run):
    """Every client request's access check reads four documents: kept for ``document_cache_seconds``,
    they cost the upstream no request in that time; this store's own change is read back at once; another
    gateway's (a second store over the same upstream) within that time. A single document, and the check
    of a request that changes the bucket, are read afresh."""
    here = run(S3Store.open(upstream_config(seaweed, document_cache_seconds=30)))
    there = run(S3Store.open(upstream_config(seaweed, document_cache_seconds=0.5)))
    names = ("owner", "policy", "acl", "public-access-block")
    reads: list[str] = []
    real_call = here._documents._call

    async def counted(operation: str, **params: Any) -> dict[str, Any]:
        if operation == "get_object":
            reads.append(params["Key"])
        return await real_call(operation, **params)

    here._documents._call = counted
    try:
        name = f"s3store-documents-{next(_names)}"
        run(here.create_bucket(name))
        run(here.put_bucket_document(name, "owner", b"alice"))
        for _ in range(5):
            assert run(here.get_bucket_documents(name, names)) == {
                "owner": b"alice",
                "policy": None,
                "acl": None,
                "public-access-block": None,
            }
        assert sorted(reads) == sorted(f".s4bucket/{n}" for n in names)  # once each, absence included
        kept = lambda store, document: run(store.get_bucket_documents(name, (document,)))[document]  # noqa: E731
        assert kept(there, "policy") is None
        run(here.put_bucket_document(name, "policy", b"{1}"))
        assert kept(here, "policy") == b"{1}"  # at once, here
        run(there.put_bucket_document(name, "policy", b"{2}"))
        assert kept(there, "policy") == b"{2}"  # at once, there
        assert kept(here, "policy") == b"{1}"  # another gateway's: within 30 s...
        assert run(here.get_bucket_document(name, "policy")) == b"{2}"  # ...but one document is read afresh
        run(asyncio.sleep(0.6))
        run(here.delete_bucket_document(name, "policy"))
        assert kept(here, "policy") is None
        assert kept(there, "policy") is None  # its 0.5 s are over
        run(there.put_bucket_document(name, "owner", b"bob"))  # a change's check reads the owner afresh
        assert run(bucket_facts(here, name, "admin")).owner == "alice"
        assert run(bucket_facts(here, name, "admin", current=True)).owner == "bob"
        # Written or removed as objects (the sweep clearing a bucket): forgotten all the same.
        run(here.put_bucket_document(name, "acl", b"<acl/>"))
        assert kept(here, "acl") == b"<acl/>"
        run(here.delete_object(name, ".s4bucket/acl"))
        assert kept(here, "acl") is None
        run(here.put_object(name, ".s4bucket/acl", body(b"<again/>"), ObjectAttributes()))
        assert kept(here, "acl") == b"<again/>"
        reads.clear()  # the gateway's other keys there (ledger records) are no document: nothing forgotten
        run(here.put_object(name, ".s4bucket/ledger/w/1", body(b"{}"), ObjectAttributes()))
        assert kept(here, "acl") == b"<again/>" and reads == []
        run(here.delete_object(name, ".s4bucket/acl"))
        run(here.delete_object(name, ".s4bucket/ledger/w/1"))
        run(here.delete_bucket_document(name, "owner"))
        run(here.delete_bucket(name))
        with pytest.raises(StoreError) as info:  # a bucket deleted here is gone here at once
            run(here.get_bucket_documents(name, names))
        assert info.value.code == "NoSuchBucket"
    finally:
        run(here.close())
        run(there.close())


def test_a_metered_put_that_replaced_nothing_sends_nothing_about_a_sidecar(store, run, bucket, monkeypatch):
    """With the savings ledger, the look before a PUT says whether it replaced anything. A single-frame
    object that replaced nothing has no stale sidecar to remove: no request about ``<key>.s4index``
    (it was a look, a GET of its first byte, per PUT). An overwrite still removes the one it may find."""
    from s4.store.compressing.ledger import Ledger

    ledger = Ledger(store, flush_interval=3600)
    pool = CpuCodecPool(CodecRegistry.cpu_default())
    metered = CompressingStore(store, pool, CodecDispatcher(), POLICY, ledger)
    calls: list[tuple[str, str]] = []
    real_call = store._call

    async def counted(operation: str, **params: Any) -> dict[str, Any]:
        calls.append((operation, params.get("Key", "")))
        return await real_call(operation, **params)

    monkeypatch.setattr(store, "_call", counted)
    try:
        run(metered.put_object(bucket, "fresh", body(b"a small object" * 10), ObjectAttributes()))
        assert [c for c in calls if c[1].endswith(".s4index")] == []
        assert ("put_object", "fresh") in calls
        calls.clear()
        run(metered.put_object(bucket, "fresh", body(b"another" * 10), ObjectAttributes()))
        assert [c for c in calls if c[1].endswith(".s4index")]  # replaced: a stale one is looked for
        multi = os.urandom(3 * FRAME)
        run(metered.put_object(bucket, "multi", body(multi), ObjectAttributes()))
        assert run(store.head_object(bucket, "multi.s4index")).size > 0
        run(metered.put_object(bucket, "multi", body(b"one frame"), ObjectAttributes()))
        assert error_code(run, store.head_object(bucket, "multi.s4index")) == "NoSuchKey"
        assert run(get(metered, bucket, "multi")) == b"one frame"
    finally:
        run(ledger.close())
        pool.close()
