"""Every operation against a backend that fails, hangs or truncates at every call and byte it reaches.

Each test runs its operation once clean through a real HTTP gateway (in process, signed
requests), reads from the FaultyStore's trace every place a fault can strike, then replays
the operation once per fault. The gateway must answer with an error, show nothing partial,
keep what was there or take the whole new version, leave uploads finishable, and let go of
every task and file descriptor. A hung backend call is ended three ways: by the backend's
own timeout while the client waits, by that timeout after the client gave up (the gateway
as ``s4 serve`` runs it does not cancel a handler whose client left), and by cancellation
(aiohttp's handler cancellation, which production leaves off). Meanwhile others are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from pathlib import Path

import pytest

from s4.codec.policy import FramePolicy
from s4.store.compressing import staging
from tests.faults import Fault, FaultKind, injection_points
from tests.unit.fault_gateway import FaultGateway, open_fds, settled
from tests.unit.fault_scenarios import (
    FRAME,
    PART_MIN,
    Abort,
    Complete,
    Copy,
    Get,
    KiB,
    Outcome,
    Put,
    Scenario,
    UploadPart,
    Version,
    noise,
    text,
)

POLICY = FramePolicy(
    single_frame_max=FRAME, medium_frame=FRAME, medium_max=1 << 30, large_frame=FRAME, unknown_frame=FRAME
)
WITNESS = ("witness", text(5 * KiB, 99))
"""An object another client reads while one request hangs: the gateway must keep serving."""
HANG_WAIT = 20.0

MULTI = Version.single(text(70 * KiB, 10))  # 5 frames, with a sidecar
SINGLE = Version.single(text(12 * KiB, 11))  # 1 frame
SMALL = Version.single(text(9 * KiB, 12))
RAW = Version.single(noise(40 * KiB, 13))  # incompressible: stored as it is

SCENARIOS = [
    Put("put-single-frame", old=MULTI, new=SINGLE),
    Put("put-multi-frame", old=SMALL, new=MULTI),
    Put("put-raw", old=SMALL, new=RAW),
    Get("get", MULTI),
    Get("get-raw", RAW),
    Get("range-get", MULTI, (20_000, 45_000)),
    Get("range-get-raw", RAW, (10_000, 30_000)),
    Copy("copy", source=MULTI, old=SMALL),
    UploadPart("upload-part"),
    Complete("complete"),
    Abort("abort"),
]


class HangEnd(enum.Enum):
    """How a hung backend call comes to an end."""

    BACKEND_TIMEOUT = "backend-timeout"
    """The backend's own timeout fails the call while the client still waits: it gets the error."""
    CLIENT_LEAVES = "client-leaves"
    """The client gives up first; the handler (not cancelled, as in production) ends at the backend's timeout."""
    CANCELLED = "cancelled"
    """The client gives up and aiohttp cancels its handler; the hung call never returns."""


async def sweep(gw: FaultGateway, scenario: Scenario, kinds: tuple[FaultKind, ...], end: HangEnd) -> list[Fault]:
    """The scenario clean, then under every fault of ``kinds`` its clean trace offers; the faults it ran."""
    await scenario.prepare(gw, "clean")
    gw.faulty.arm(None)
    reply = await scenario.act(gw, "clean")
    assert reply.ok, f"clean run failed: {reply}"
    calls = list(gw.faulty.calls)
    boundaries = await scenario.boundaries(gw, "clean", calls)
    await scenario.check(gw, "clean", Outcome(None, reply))
    faults = injection_points(calls, kinds, scenario.max_byte_points, boundaries)
    for number, fault in enumerate(faults):
        key = f"{scenario.name}-{number}"
        await scenario.prepare(gw, key)
        tasks, fds = set(asyncio.all_tasks()), open_fds()
        gw.faulty.arm(fault)
        outcome = await faulty_run(gw, scenario, key, fault, end)
        gw.faulty.disarm()
        assert gw.faulty.fired == fault, f"{fault.label()} never fired: the path differs from the clean run"
        leaked, extra_fds = await settled(tasks, fds)
        assert not leaked, f"{outcome.describe()}: tasks left running: {leaked}"
        assert extra_fds <= 0, f"{outcome.describe()}: {extra_fds} file descriptors left open"
        await scenario.check(gw, key, outcome)
    return faults


async def faulty_run(gw: FaultGateway, scenario: Scenario, key: str, fault: Fault, end: HangEnd) -> Outcome:
    """The request under ``fault``; once it hangs, another client is served, then the hang ends as ``end`` says."""
    request = asyncio.ensure_future(scenario.act(gw, key))
    hanging = asyncio.ensure_future(gw.faulty.hanging.wait())
    try:
        done, _ = await asyncio.wait({request, hanging}, timeout=HANG_WAIT, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"{fault.label()}: the request neither ended nor hung"
        if request in done:
            return Outcome(fault, request.result())
        witness = await gw.get(WITNESS[0])
        assert witness.ok and witness.body == WITNESS[1], f"{fault.label()}: others not served while one hangs"
        if end is HangEnd.BACKEND_TIMEOUT:
            gw.faulty.time_out_hangs()
            return Outcome(fault, await request)
        request.cancel()  # the client gives up and drops its connection
        with contextlib.suppress(asyncio.CancelledError):
            await request
        if end is HangEnd.CLIENT_LEAVES:
            await asyncio.sleep(0.01)  # the server notices the connection is gone
            gw.faulty.time_out_hangs()
        return Outcome(fault, None)
    finally:
        hanging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hanging


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3's 5 MiB minimum part size, down to 32 KiB: the rules are the same, the data much smaller."""
    monkeypatch.setattr(staging, "MIN_S3_PART_SIZE", PART_MIN)


def run_sweep(tmp_path: Path, scenario: Scenario, kinds: tuple[FaultKind, ...], end: HangEnd) -> list[Fault]:
    async def main() -> list[Fault]:
        cancel = end is HangEnd.CANCELLED
        async with FaultGateway.start(tmp_path, POLICY, PART_MIN, cancel_on_disconnect=cancel) as gw:
            assert (await gw.put(*WITNESS)).ok
            faults = await sweep(gw, scenario, kinds, end)
            assert (await gw.get(WITNESS[0])).body == WITNESS[1]
            return faults

    return asyncio.run(main())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_fault_at_every_point(scenario: Scenario, tmp_path: Path, small_parts: None) -> None:
    """Errors, disconnects, truncations and hangs (ended by the backend's timeout) at every call and byte."""
    faults = run_sweep(tmp_path, scenario, tuple(FaultKind), HangEnd.BACKEND_TIMEOUT)
    assert {FaultKind.ERROR, FaultKind.DISCONNECT, FaultKind.HANG} <= {f.kind for f in faults}
    assert any(f.byte is not None for f in faults) or isinstance(scenario, Abort)


@pytest.mark.parametrize("end", [HangEnd.CLIENT_LEAVES, HangEnd.CANCELLED], ids=lambda e: e.value)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_hang_and_client_leaves(scenario: Scenario, end: HangEnd, tmp_path: Path, small_parts: None) -> None:
    """A hang at every point whose client gives up: the handler ends (by the backend's timeout, or
    cancelled), nothing stays running or open, and the state is as consistent as after any fault."""
    faults = run_sweep(tmp_path, scenario, (FaultKind.HANG,), end)
    assert faults and {f.kind for f in faults} == {FaultKind.HANG}


@pytest.mark.parametrize(("header", "status"), [("If-None-Match", 304), ("If-Match", 412)])
@pytest.mark.parametrize("version", [MULTI, RAW], ids=["framed", "raw"])
def test_a_read_answered_before_its_body_releases_the_object(
    header: str, status: int, version: Version, tmp_path: Path
) -> None:
    """A GET answered by its conditions (304, 412) never reads the body it opened: it must still close it."""

    async def main() -> None:
        async with FaultGateway.start(tmp_path, POLICY) as gw:
            assert (await gw.put("k", version.data)).ok
            etag = version.etag if status == 304 else "0" * 32
            fds = open_fds()
            for _ in range(3):
                reply = await gw.request("GET", "k", headers={header: f'"{etag}"'})
                assert reply.status == status, reply
            leaked, extra_fds = await settled(set(asyncio.all_tasks()), fds)
            assert not leaked and extra_fds <= 0, f"{leaked} tasks, {extra_fds} file descriptors left"

    asyncio.run(main())
