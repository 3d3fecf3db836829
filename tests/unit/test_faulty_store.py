"""The FaultyStore itself: it passes calls through, traces them, and misbehaves exactly once where told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from s4.store.base import ObjectAttributes, StoreError
from s4.store.filesystem import FilesystemStore
from tests.faults import Fault, FaultKind, FaultyStore, byte_positions, injection_points
from tests.unit.store_helpers import body, read_all, temp_files

T = TypeVar("T")
B = "b"


def with_store(tmp_path: Path, scenario: Callable[[FaultyStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await FilesystemStore.open(tmp_path, durable=False) as inner:
            store = FaultyStore(inner)
            await inner.create_bucket(B)
            return await scenario(store)

    return asyncio.run(main())


async def put(store: FaultyStore, key: str, *chunks: bytes):
    return await store.put_object(B, key, body(*chunks), ObjectAttributes())


def test_a_clean_run_is_traced_call_by_call_with_its_chunks(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        await put(store, "k", b"abc", b"defg")
        got = await read_all(await store.get_object(B, "k"))
        await store.head_object(B, "k")
        return got, store.calls

    got, calls = with_store(tmp_path, scenario)
    assert got == b"abcdefg"
    assert [c.method for c in calls] == ["put_object", "get_object", "head_object"]
    assert calls[0].chunks == [3, 4] and calls[0].ended
    assert calls[1].streamed == 7 and calls[1].ended
    assert calls[2].chunks is None


def test_injection_points_cover_every_call_and_the_ends_and_boundaries_of_bodies(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        await store.head_bucket(B)
        await put(store, "k", b"abc", b"defg")
        return injection_points(store.calls, tuple(FaultKind), 10, {2: [5]})

    faults = with_store(tmp_path, scenario)
    at_calls = {(f.call, f.kind) for f in faults if f.byte is None}
    assert at_calls == {(c, k) for c in (1, 2) for k in FaultKind if k is not FaultKind.TRUNCATE}
    assert sorted({f.byte for f in faults if f.byte is not None}) == [0, 1, 3, 4, 5, 6, 7]
    truncations = {f.byte for f in faults if f.kind is FaultKind.TRUNCATE}
    assert 7 not in truncations and 0 in truncations  # ending at the end is no truncation


def test_byte_positions_are_thinned_evenly_keeping_both_ends() -> None:
    chunks = [10] * 20
    positions = byte_positions(chunks, 5)
    assert len(positions) == 5 and positions[0] == 0 and positions[-1] == 200
    assert byte_positions([4], 10) == [0, 1, 3, 4]


@pytest.mark.parametrize(("kind", "error"), [(FaultKind.ERROR, StoreError), (FaultKind.DISCONNECT, ConnectionError)])
def test_a_fault_at_the_nth_call_of_a_method_strikes_once(kind: FaultKind, error: type, tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        await put(store, "k", b"data")
        store.arm(Fault(kind, 2, method="head_object", code="SlowDown"))
        await store.head_object(B, "k")  # the first head passes
        await store.list_objects(B)  # another method does not count
        with pytest.raises(error) as raised:
            await store.head_object(B, "k")
        fired = store.fired
        await store.head_object(B, "k")  # once only
        return raised.value, fired

    raised, fired = with_store(tmp_path, scenario)
    assert fired == Fault(kind, 2, method="head_object", code="SlowDown")
    assert not isinstance(raised, StoreError) or raised.code == "SlowDown"


def test_a_truncated_read_ends_early_without_error(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        await put(store, "k", b"abc", b"defg")
        store.arm(Fault(FaultKind.TRUNCATE, 1, method="get_object", byte=5))
        return await read_all(await store.get_object(B, "k"))

    assert with_store(tmp_path, scenario) == b"abcde"


def test_a_failure_inside_a_put_body_stores_nothing(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        await put(store, "k", b"old")
        store.arm(Fault(FaultKind.ERROR, 1, byte=4))
        with pytest.raises(StoreError):
            await put(store, "k", b"new-", b"data")
        return await read_all(await store.get_object(B, "k"))

    assert with_store(tmp_path, scenario) == b"old"
    assert temp_files(tmp_path) == []


def test_a_truncated_put_body_is_what_the_inner_store_keeps(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        store.arm(Fault(FaultKind.TRUNCATE, 1, byte=2))
        info = await put(store, "k", b"abc", b"defg")
        return info.size, await read_all(await store.get_object(B, "k"))

    assert with_store(tmp_path, scenario) == (2, b"ab")


def test_a_hang_waits_until_cancelled_or_timed_out(tmp_path: Path) -> None:
    async def scenario(store: FaultyStore):
        store.arm(Fault(FaultKind.HANG, 1))
        first = asyncio.ensure_future(store.head_bucket(B))
        await asyncio.wait_for(store.hanging.wait(), 5)
        await asyncio.sleep(0.01)
        assert not first.done()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        store.arm(Fault(FaultKind.HANG, 1, byte=1))
        second = asyncio.ensure_future(put(store, "k", b"abc"))
        await asyncio.wait_for(store.hanging.wait(), 5)
        store.time_out_hangs()
        with pytest.raises(StoreError) as raised:
            await second
        return raised.value.code

    assert with_store(tmp_path, scenario) == "ServiceUnavailable"


def test_a_truncation_needs_a_byte() -> None:
    with pytest.raises(ValueError):
        Fault(FaultKind.TRUNCATE, 1)
