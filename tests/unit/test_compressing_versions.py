"""CompressingStore over a versioned FilesystemStore: every version keeps its own manifest and its
own sidecar (ranged reads of an old version fetch only its frames), the gateway's own objects never
show up as versions, and deleting a version for good takes its sidecar with it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random

import pytest

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.store.base import ByteRange, ObjectAttributes
from s4.store.compressing.ledger import Ledger, LedgerTotals
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from s4.store.lifecycle import LifecycleWorker
from tests.unit.store_helpers import body, read_all

KiB = 1024
FRAME = 64 * KiB
POLICY = FramePolicy(
    single_frame_max=FRAME, medium_frame=FRAME, medium_max=64 * 1024 * KiB, large_frame=FRAME, unknown_frame=FRAME
)
B = "b"


def data(seed: int, size: int = 8 * FRAME) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(6)) for _ in range(200)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


MP_FRAME = 768 * KiB
MP_POLICY = FramePolicy(
    single_frame_max=MP_FRAME,
    medium_frame=MP_FRAME,
    medium_max=1024 * 1024 * KiB,
    large_frame=MP_FRAME,
    unknown_frame=MP_FRAME,
)


@contextlib.asynccontextmanager
async def versioned(tmp_path, policy: FramePolicy = POLICY):
    inner = await FilesystemStore.open(tmp_path, durable=False)
    store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), policy)
    try:
        await store.create_bucket(B)
        await store.put_bucket_versioning(B, "Enabled")
        yield store, inner
    finally:
        await store.close()
        store.pool.close()


async def put(store, key: str, payload: bytes):
    return await store.put_object(B, key, body(payload), ObjectAttributes())


async def get(store, key: str, version_id: str | None = None, byte_range: ByteRange | None = None) -> bytes:
    return await read_all(await store.get_object(B, key, byte_range, version_id=version_id))


async def inner_keys(inner) -> list[str]:
    page = await inner.list_object_versions(B)
    return [v.key for v in page.versions]


def test_each_version_has_its_own_sidecar_and_ranged_reads_fetch_only_its_frames(tmp_path):
    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            old, new = data(1), data(2)
            first = await put(store, "k", old)
            second = await put(store, "k", new)
            assert first.version_id != second.version_id
            assert (first.size, first.etag) != (second.size, second.etag) or old == new
            sidecars = [k for k in await inner_keys(inner) if k.endswith(".s4index")]
            assert sorted(sidecars) == sorted(f"k.s4v.{v}.s4index" for v in (first.version_id, second.version_id))
            stats = store.stats
            fetched, fallbacks = stats.range_frames_fetched, stats.sidecar_fallbacks
            offset = 5 * FRAME + 10
            got = await get(store, "k", first.version_id, ByteRange(offset, offset + 99))
            assert got == old[offset : offset + 100]
            assert stats.range_frames_fetched - fetched == 1  # one frame of the old version, from its sidecar
            assert stats.sidecar_fallbacks == fallbacks
            later = await get(store, "k", second.version_id, ByteRange(offset, offset + 99))
            assert later == new[offset : offset + 100]
            assert await get(store, "k", first.version_id) == old
            head = await store.head_object(B, "k", version_id=first.version_id)
            assert (head.size, head.etag, head.version_id) == (len(old), first.etag, first.version_id)

    asyncio.run(scenario())


def test_listing_shows_client_versions_only_in_their_client_view(tmp_path):
    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            first = await put(store, "k", data(1))
            second = await put(store, "k", data(2))
            upload = await store.create_multipart_upload(B, "mp", ObjectAttributes())
            await store.upload_part(B, "mp", upload, 1, body(data(3)))
            marker = await store.delete_object(B, "k")
            page = await store.list_object_versions(B)
            seen = [(v.key, v.version_id, v.is_latest, v.delete_marker, v.size) for v in page.versions]
            assert seen == [
                ("k", marker.version_id, True, True, 0),
                ("k", second.version_id, False, False, len(data(2))),
                ("k", first.version_id, False, False, len(data(1))),
            ]
            assert [v.etag for v in page.versions[1:]] == [second.etag, first.etag]
            await store.abort_multipart_upload(B, "mp", upload)
            # Staging went for good: no version of it, nor delete markers, is left in the inner bucket.
            assert not [k for k in await inner_keys(inner) if k.startswith(".s4mpu/")]

    asyncio.run(scenario())


def test_deleting_a_version_for_good_removes_its_sidecar_and_frees_the_bucket(tmp_path):
    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            first = await put(store, "k", data(1))
            second = await put(store, "k", data(2))
            await store.delete_object(B, "k", version_id=first.version_id)
            assert [k for k in await inner_keys(inner) if k.endswith(".s4index")] == [
                f"k.s4v.{second.version_id}.s4index"
            ]
            assert await get(store, "k") == data(2)
            marker = await store.delete_object(B, "k")
            await store.delete_object(B, "k", version_id=second.version_id)
            assert [k for k in await inner_keys(inner)] == ["k"]  # the delete marker alone
            assert (await failed(store.delete_bucket(B))) == "BucketNotEmpty"
            await store.delete_object(B, "k", version_id=marker.version_id)
            await store.delete_bucket(B)

    asyncio.run(scenario())


def test_copy_and_multipart_of_versions(tmp_path):
    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            first = await put(store, "src", data(1))
            await put(store, "src", data(2))
            copied = await store.copy_object(B, "src", B, "dst", None, src_version_id=first.version_id)
            assert await get(store, "dst") == data(1)
            offset = 3 * FRAME
            assert await get(store, "dst", None, ByteRange(offset, offset + 9)) == data(1)[offset : offset + 10]
            assert f"dst.s4v.{copied.version_id}.s4index" in await inner_keys(inner)
            upload = await store.create_multipart_upload(B, "mp", ObjectAttributes())
            part = await store.upload_part_copy(B, "mp", upload, 1, B, "src", src_version_id=first.version_id)
            done = await store.complete_multipart_upload(B, "mp", upload, [(1, part.etag)])
            assert done.version_id is not None
            assert await get(store, "mp", done.version_id) == data(1)
            assert not [k for k in await inner_keys(inner) if k.startswith(".s4mpu/")]

    asyncio.run(scenario())


async def failed(awaitable) -> str | None:
    try:
        await awaitable
    except Exception as exc:  # the code is the point
        return getattr(exc, "code", repr(exc))
    return None


def test_lifecycle_expiration_on_a_versioned_bucket_leaves_a_delete_marker(tmp_path):
    """As S3 expires a current version: a delete marker on top, the version kept as a noncurrent one."""

    async def scenario():
        async with versioned(tmp_path) as (store, _):
            kept = await put(store, "logs/a", data(1))
            rule = (
                "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>logs/</Prefix></Filter>"
                "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"
            )
            await store.put_bucket_document(B, "lifecycle", rule.encode())
            worker = LifecycleWorker(store)
            worker.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
            assert (await worker.run()).expired == 1
            assert (await worker.run()).expired == 0  # a delete marker is not expired again
            page = await store.list_object_versions(B)
            assert [(v.version_id == kept.version_id, v.is_latest, v.delete_marker) for v in page.versions] == [
                (False, True, True),
                (True, False, False),
            ]
            assert await get(store, "logs/a", kept.version_id) == data(1)

    asyncio.run(scenario())


def test_the_sweep_keeps_the_sidecars_of_versions_and_removes_orphans(tmp_path):
    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            first = await put(store, "k", data(1))
            second = await put(store, "k", data(2))
            sidecars = sorted(f"k.s4v.{v.version_id}.s4index" for v in (first, second))
            await store.sweep.sweep_bucket(B, min_age=0)
            assert sorted(k for k in await inner_keys(inner) if k.endswith(".s4index")) == sidecars
            await inner.delete_object(B, "k", version_id=first.version_id)  # behind the gateway's back
            await store.sweep.sweep_bucket(B, min_age=0)
            assert [k for k in await inner_keys(inner) if k.endswith(".s4index")] == [
                f"k.s4v.{second.version_id}.s4index"
            ]

    asyncio.run(scenario())


@pytest.mark.parametrize("index_in", ["metadata", "sidecar"])
def test_multipart_on_a_versioned_bucket_indexes_from_the_staged_parts(tmp_path, monkeypatch, index_in):
    """The staged parts are versions too: Complete finds each one's frame index (no walk of its frames),
    in its metadata or, for a part of more frames than its metadata holds, in its versioned sidecar."""
    from s4.store.compressing import staging

    if index_in == "sidecar":
        monkeypatch.setattr(staging, "encode_part_index", lambda entries: None)

    async def scenario():
        async with versioned(tmp_path, MP_POLICY) as (store, inner):
            payload = data(7, 6 * 1024 * KiB)
            upload = await store.create_multipart_upload(B, "mp", ObjectAttributes())
            first = await store.upload_part(B, "mp", upload, 1, body(payload[: 5 * 1024 * KiB]))
            second = await store.upload_part(B, "mp", upload, 2, body(payload[5 * 1024 * KiB :]))
            staged_sidecars = [k for k in await inner_keys(inner) if k.startswith(".s4mpu/") and k.endswith(".s4index")]
            assert len(staged_sidecars) == (2 if index_in == "sidecar" else 0)
            fallbacks = store.stats.sidecar_fallbacks
            walked = []
            walk = store.sidecars.by_walking

            async def by_walking(*args):
                walked.append(args[1])
                return await walk(*args)

            store.sidecars.by_walking = by_walking
            done = await store.complete_multipart_upload(B, "mp", upload, [(1, first.etag), (2, second.etag)])
            assert walked == []  # every staged part's own index was found
            keys = await inner_keys(inner)
            assert f"mp.s4v.{done.version_id}.s4index" in keys
            assert not [k for k in keys if k.startswith(".s4mpu/")]
            offset = 5 * 1024 * KiB + 10
            assert (
                await get(store, "mp", done.version_id, ByteRange(offset, offset + 9)) == payload[offset : offset + 10]
            )
            assert store.stats.sidecar_fallbacks == fallbacks

    asyncio.run(scenario())


def test_the_gateway_s_own_names_take_no_room_in_a_page(tmp_path):
    """``.s4…`` records sort before most keys: a page of max-keys holds that many client entries."""

    async def scenario():
        async with versioned(tmp_path) as (store, inner):
            for n in range(3):
                await inner.put_object(B, f".s4bucket/ledger/w/{n}", body(b"r"), ObjectAttributes())
            await inner.put_object(B, ".s4dict/d", body(b"d"), ObjectAttributes())
            for key in ("a", "d/x", "z"):
                await put(store, key, b"x")
            page = await store.list_object_versions(B, delimiter="/", max_keys=2)
            assert ([v.key for v in page.versions], page.common_prefixes, page.is_truncated) == (["a"], ["d/"], True)
            rest = await store.list_object_versions(
                B, delimiter="/", key_marker=page.next_key_marker, version_id_marker=page.next_version_id_marker
            )
            assert ([v.key for v in rest.versions], rest.is_truncated) == (["z"], False)
            listed = await store.list_objects(B, delimiter="/", max_keys=2)
            assert ([o.key for o in listed.objects], listed.common_prefixes, listed.is_truncated) == (
                ["a"],
                ["d/"],
                True,
            )
            everything = await store.list_objects(B, max_keys=3)
            assert [o.key for o in everything.objects] == ["a", "d/x", "z"]

    asyncio.run(scenario())


def test_a_ledger_flush_during_delete_bucket_does_not_refill_the_bucket(tmp_path):
    """DeleteBucket clears the gateway's leftovers, then deletes: a savings-ledger record written in
    between (any bucket's flush; the clearing's own deltas are pending) made it BucketNotEmpty (seen
    in CI). The ledger holds its writes while a bucket is being deleted; the bucket's deltas go with it."""

    async def scenario():
        inner = await FilesystemStore.open(tmp_path, durable=False)
        ledger = Ledger(inner, flush_interval=3600)
        store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), POLICY, ledger)
        try:
            await store.create_bucket(B)
            await put(store, "gone", b"x" * 100)
            await store.delete_object(B, "gone")
            await ledger.flush()
            await inner.put_object(B, ".s4dict/00ff", body(b"leftover"), ObjectAttributes())
            clear = store.sweep.clear_bucket
            flushes = []

            async def clear_then_flush(bucket):
                cleared = await clear(bucket)
                flushes.append(asyncio.create_task(ledger.flush()))  # the flush task waking meanwhile
                await asyncio.sleep(0.05)
                return cleared

            store.sweep.clear_bucket = clear_then_flush
            await store.delete_bucket(B)
            await asyncio.gather(*flushes)
            assert B not in [b.name for b in await inner.list_buckets()]
            assert len(flushes) == 1  # the flush waited: cleared once, deleted at the first try
        finally:
            await store.close()
            store.pool.close()

    asyncio.run(scenario())


def test_another_gateway_s_ledger_record_landing_during_delete_bucket_is_cleared_again(tmp_path):
    """Another gateway's writer is not held by this one: its record written between the clearing and
    the delete is cleared by a second round, and the bucket is deleted."""

    async def scenario():
        inner = await FilesystemStore.open(tmp_path, durable=False)
        store = CompressingStore(
            inner,
            CpuCodecPool(CodecRegistry.cpu_default()),
            CodecDispatcher(),
            POLICY,
            Ledger(inner, flush_interval=3600),
        )
        other = Ledger(await FilesystemStore.open(tmp_path, durable=False), flush_interval=3600)
        try:
            await store.create_bucket(B)
            await inner.put_object(B, ".s4dict/00ff", body(b"leftover"), ObjectAttributes())
            clear = store.sweep.clear_bucket
            rounds = []

            async def clear_then_other_writes(bucket):
                cleared = await clear(bucket)
                rounds.append(bucket)
                if len(rounds) == 1:
                    other.record(bucket, LedgerTotals(objects=1, original_bytes=10, data_bytes=5))
                    await other.flush()
                return cleared

            store.sweep.clear_bucket = clear_then_other_writes
            await store.delete_bucket(B)
            assert B not in [b.name for b in await inner.list_buckets()]
            assert len(rounds) == 2
        finally:
            await store.close()
            store.pool.close()
            await other.inner.close()

    asyncio.run(scenario())


class _Untold:
    """The embedded store as an upstream is: it does not say what a write replaced."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        if name == "reports_replaced":
            raise AttributeError(name)
        return getattr(self._inner, name)


async def _gated(gate: asyncio.Event, payload: bytes):
    yield payload[: len(payload) // 2]  # the encoder has its sample: the write has begun
    await gate.wait()
    yield payload[len(payload) // 2 :]


@pytest.mark.parametrize("told", [True, False], ids=["store-says-what-it-replaced", "looked-at-first"])
def test_overlapping_changes_of_one_key_are_each_counted_once_in_the_ledger(tmp_path, told):
    """Two PUTs of one key at once (and a DELETE beside a PUT) both looked at the same object before
    they wrote: each subtracted it, so the ledger lost an object's bytes for good. Now the embedded
    store says what each commit removed, and over a store that does not, the change that finishes
    second is counted against what the first left; the ledger equals a recount."""
    from s4.store.compressing.ledger import read_ledger, recount

    async def scenario():
        inner = await FilesystemStore.open(tmp_path, durable=False)
        ledger = Ledger(inner, flush_interval=3600)
        store = CompressingStore(
            inner if told else _Untold(inner),
            CpuCodecPool(CodecRegistry.cpu_default()),
            CodecDispatcher(),
            POLICY,
            ledger,
        )
        try:
            await store.create_bucket(B)
            await put(store, "k", data(1, 3 * FRAME))  # A: a sidecar too
            for first_size, second_size in ((5 * FRAME, 2 * FRAME), (FRAME // 2, 7 * FRAME)):
                gates = [asyncio.Event(), asyncio.Event()]
                writes = [
                    asyncio.create_task(store.put_object(B, "k", _gated(g, data(n, size)), ObjectAttributes()))
                    for g, n, size in ((gates[0], 2, first_size), (gates[1], 3, second_size))
                ]
                await asyncio.sleep(0.2)  # both have looked at the current object and wait for their bodies
                gates[0].set()
                await writes[0]
                gates[1].set()
                await writes[1]
            gate = asyncio.Event()
            racing = asyncio.create_task(store.put_object(B, "k", _gated(gate, data(4, 4 * FRAME)), ObjectAttributes()))
            await asyncio.sleep(0.2)
            await store.delete_object(B, "k")
            gate.set()
            await racing
            await ledger.flush()
            assert await read_ledger(inner, B) == await recount(inner, B)
            assert (await read_ledger(inner, B)).objects == 1
        finally:
            await store.close()
            store.pool.close()

    asyncio.run(scenario())


def test_a_delete_of_the_null_version_beside_a_put_is_counted_once(tmp_path):
    """Over a store that does not say what it replaced: under Suspended, DELETE ?versionId=null
    removes what a PUT of the key replaces; overlapping a PUT, it was not counted as one of the key's
    changes, so the PUT subtracted the null version the delete had already subtracted."""
    from s4.store.compressing.ledger import read_ledger, recount

    async def scenario():
        inner = await FilesystemStore.open(tmp_path, durable=False)
        ledger = Ledger(inner, flush_interval=3600)
        store = CompressingStore(
            _Untold(inner), CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), POLICY, ledger
        )
        try:
            await store.create_bucket(B)
            await store.put_bucket_versioning(B, "Enabled")
            await put(store, "k", data(1, 2 * FRAME))  # a version that stays
            await store.put_bucket_versioning(B, "Suspended")
            await put(store, "k", data(2, 3 * FRAME))  # the null version
            gate = asyncio.Event()
            racing = asyncio.create_task(store.put_object(B, "k", _gated(gate, data(3, 4 * FRAME)), ObjectAttributes()))
            await asyncio.sleep(0.2)
            await store.delete_object(B, "k", version_id="null")
            gate.set()
            await racing
            await ledger.flush()
            assert await read_ledger(inner, B) == await recount(inner, B)
        finally:
            await store.close()
            store.pool.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("versioning", [None, "Enabled", "Suspended"])
def test_two_processes_overwriting_one_key_on_the_embedded_store_keep_the_ledger_exact(tmp_path, versioning):
    """Two gateways (two stores, two ledger writers, one directory) overwrite and delete one key at
    the same instant: each is told by the store what its commit removed, so neither subtracts what
    the other did. Over an upstream this stays a documented limit (s4.store.compressing.metering)."""
    from s4.store.compressing.ledger import read_ledger, recount

    async def scenario():
        stores = []
        for _ in range(2):
            inner = await FilesystemStore.open(tmp_path, durable=False)
            stores.append(
                CompressingStore(
                    inner,
                    CpuCodecPool(CodecRegistry.cpu_default()),
                    CodecDispatcher(),
                    POLICY,
                    Ledger(inner, flush_interval=3600),
                )
            )
        one, two = stores
        try:
            await one.create_bucket(B)
            if versioning is not None:
                await one.put_bucket_versioning(B, "Enabled")
                if versioning == "Suspended":
                    await put(one, "k", data(9, 2 * FRAME))  # a version that stays
                    await one.put_bucket_versioning(B, "Suspended")
            await put(one, "k", data(1, 3 * FRAME))
            for first, second in ((one, two), (two, one)):
                gates = [asyncio.Event(), asyncio.Event()]
                writes = [
                    asyncio.create_task(s.put_object(B, "k", _gated(g, data(n, n * FRAME)), ObjectAttributes()))
                    for s, g, n in ((first, gates[0], 2), (second, gates[1], 5))
                ]
                await asyncio.sleep(0.2)
                gates[0].set()
                await writes[0]
                gates[1].set()
                await writes[1]
            await two.delete_object(B, "k")
            for s in stores:
                await s.ledger.flush()
            inner = one.ledger.inner
            assert await read_ledger(inner, B) == await recount(inner, B)
        finally:
            for s in stores:
                await s.close()
                s.pool.close()

    asyncio.run(scenario())
