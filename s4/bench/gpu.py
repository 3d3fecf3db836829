"""``s4 bench gpu``: GPU codec throughput host-to-host through the pool, beside the limits around it.

Per codec and sample: compress and decompress GB/s of original bytes through the GPU
pool (``GpuCodecPool.encode_frame`` / ``decode_frame``: the gateway's own path, CRC32C
included) with 1, 4, 16, 32 and 64 concurrent requests, each request streaming the
sample's frames one at a time; then the frame-size sweep (64 KiB to 64 MiB frames at one
concurrency), since small frames are where per-batch costs show. Beside it:

(a) the nvCOMP kernels alone on device-resident chunks (no copies, no Python around them);
(b) the pinned host-to-device and device-to-host copy bandwidth (the PCIe limit);
(c) cpu-zstd on every core of this machine, on the same frames.

Ratios on text, binary and integer-column data. Without a GPU it says so and measures
nothing: figures are only ever measured ones.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import dataclasses
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from s4.bench.corpus import Sample, interpreter_binaries, stdlib_text
from s4.codec import CodecKind, CodecRegistry
from s4.codec.cpu.zstd import CpuZstdCodec
from s4.codec.format.frame import FRAME_HEADER_SIZE
from s4.codec.gpu.backend import BackendFactory
from s4.codec.gpu.nvcomp import NvcompProbe
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, setup_gpu

GB = 1e9
MiB = 1024 * 1024
CONCURRENCY = (1, 4, 16, 32, 64)
FRAME_SWEEP = (64 * 1024, 256 * 1024, 1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB)
SWEEP_CONCURRENCY = 32
CODECS = (CodecKind.NVCOMP_ZSTD, CodecKind.NVCOMP_BITCOMP, CodecKind.NVCOMP_GDEFLATE, CodecKind.NVCOMP_GANS)
GOAL_SATURATION = 0.80
GOAL_ZSTD_GBPS = 10.0


class KernelTimer(Protocol):
    """What the nvCOMP backend offers for (a) and (b)."""

    def kernel_seconds(self, kind: CodecKind, data: bytes) -> tuple[float, float]: ...

    def copy_seconds(self, nbytes: int) -> tuple[float, float]: ...


@dataclasses.dataclass
class PoolRow:
    sample: str
    codec: str
    concurrency: int
    original: int
    stored: int
    compress_gbps: float
    decompress_gbps: float
    frame_size: int = 0

    @property
    def ratio(self) -> float:
        return self.original / self.stored if self.stored else 0.0


@dataclasses.dataclass
class KernelRow:
    sample: str
    codec: str
    compress_gbps: float
    decompress_gbps: float


@dataclasses.dataclass
class CpuRow:
    sample: str
    threads: int
    ratio: float
    compress_gbps: float
    decompress_gbps: float


@dataclasses.dataclass
class Report:
    device: str
    frame_size: int
    pool: list[PoolRow] = dataclasses.field(default_factory=list)
    frames: list[PoolRow] = dataclasses.field(default_factory=list)
    """The frame-size sweep: one codec, one concurrency, each frame size."""
    kernels: list[KernelRow] = dataclasses.field(default_factory=list)
    cpu: list[CpuRow] = dataclasses.field(default_factory=list)
    h2d_gbps: float | None = None
    d2h_gbps: float | None = None


def integer_columns(limit: int) -> Sample:
    """Sorted 64-bit timestamps with jitter, as a Parquet or Arrow column of event times holds them."""
    rng = random.Random(0)
    count = limit // 8
    stamps = array.array("q", bytes(8 * count))
    t = 1_700_000_000_000
    for i in range(count):
        t += rng.randrange(0, 50)
        stamps[i] = t
    return Sample("int-column", stamps.tobytes(), "generated int64 timestamps")


def default_samples(limit: int) -> list[Sample]:
    return [stdlib_text(limit), interpreter_binaries(limit), integer_columns(limit)]


def _frames(data: bytes, frame_size: int) -> list[bytes]:
    return [data[i : i + frame_size] for i in range(0, len(data), frame_size)]


def _best(rounds: int, op: Callable[[], object]) -> float:
    op()  # warm-up: first allocations and codec construction count for nobody
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        op()
        best = min(best, time.perf_counter() - start)
    return best


async def _best_async(rounds: int, op: Callable[[], Awaitable[object]]) -> float:
    await op()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        await op()
        best = min(best, time.perf_counter() - start)
    return best


async def measure_pool(
    pool: GpuCodecPool, sample: Sample, kind: CodecKind, frame_size: int, concurrency: int, rounds: int
) -> PoolRow:
    """``concurrency`` requests, each streaming every frame of the sample through the pool one at a time."""
    frames = _frames(sample.data, frame_size)
    encoded = await asyncio.gather(*(pool.encode_frame(kind, f) for f in frames))
    stored = sum(FRAME_HEADER_SIZE + len(e.payload) for e in encoded)

    async def upload() -> None:
        for frame in frames:
            await pool.encode_frame(kind, frame)

    async def download() -> None:
        for frame in encoded:
            await pool.decode_frame(frame.header, frame.payload)

    comp = await _best_async(rounds, lambda: asyncio.gather(*(upload() for _ in range(concurrency))))
    dec = await _best_async(rounds, lambda: asyncio.gather(*(download() for _ in range(concurrency))))
    total = len(sample.data) * concurrency
    return PoolRow(
        sample.name,
        kind.wire_name,
        concurrency,
        len(sample.data),
        stored,
        total / GB / comp,
        total / GB / dec,
        frame_size,
    )


def measure_cpu_zstd(sample: Sample, frame_size: int, threads: int, rounds: int) -> CpuRow:
    codec = CpuZstdCodec(3)
    frames = _frames(sample.data, frame_size)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        payloads = list(pool.map(codec.compress, frames))
        comp = _best(rounds, lambda: list(pool.map(codec.compress, frames)))
        sizes = [len(f) for f in frames]
        dec = _best(rounds, lambda: list(pool.map(codec.decompress, payloads, sizes)))
    n = len(sample.data)
    return CpuRow(sample.name, threads, n / sum(map(len, payloads)), n / GB / comp, n / GB / dec)


def run(
    samples: Sequence[Sample],
    *,
    settings: GpuSettings,
    backend_factory: BackendFactory | None = None,
    probe_device: Callable[[int], NvcompProbe] | None = None,
    timer: KernelTimer | None = None,
    kinds: Sequence[CodecKind] = CODECS,
    concurrency: Sequence[int] = CONCURRENCY,
    frame_size: int = 4 * MiB,
    rounds: int = 3,
    cpu_threads: int | None = None,
    frame_sweep: Sequence[int] = (),
    sweep_kinds: Sequence[CodecKind] = (CodecKind.NVCOMP_ZSTD,),
    sweep_concurrency: int = SWEEP_CONCURRENCY,
) -> Report:
    """Every measurement of the report; raises CodecError(unavailable) when no GPU can be used."""
    registry = CodecRegistry.cpu_default()
    setup = setup_gpu(registry, dataclasses.replace(settings, mode="on"), backend_factory, probe_device)
    pool = setup.pool(registry)
    assert isinstance(pool, GpuCodecPool)
    report = Report(setup.device or "?", frame_size)

    async def through_pool() -> None:
        for sample in samples:
            for kind in kinds:
                for c in concurrency:
                    report.pool.append(await measure_pool(pool, sample, kind, frame_size, c, rounds))
        if frame_sweep and samples:
            sample = max(samples, key=lambda s: len(s.data))  # the frames of the sweep must fit in it
            for kind in sweep_kinds:
                for size in frame_sweep:
                    if size <= len(sample.data):
                        row = await measure_pool(pool, sample, kind, size, sweep_concurrency, rounds)
                        report.frames.append(row)

    try:
        asyncio.run(through_pool())
    finally:
        pool.close()
    for sample in samples:
        if timer is not None:
            for kind in kinds:
                comp_s, dec_s = _best_pair(
                    rounds, lambda kind=kind, sample=sample: timer.kernel_seconds(kind, sample.data)
                )
                n = len(sample.data)
                report.kernels.append(KernelRow(sample.name, kind.wire_name, n / GB / comp_s, n / GB / dec_s))
        report.cpu.append(measure_cpu_zstd(sample, frame_size, cpu_threads or os.cpu_count() or 1, rounds))
    if timer is not None:
        nbytes = 256 * MiB
        h2d, d2h = _best_pair(rounds, lambda: timer.copy_seconds(nbytes))
        report.h2d_gbps, report.d2h_gbps = nbytes / GB / h2d, nbytes / GB / d2h
    return report


def _best_pair(rounds: int, op: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Best of ``rounds`` for each of two timings an operation reports, after one warm-up call."""
    op()
    timings = [op() for _ in range(rounds)]
    return min(t[0] for t in timings), min(t[1] for t in timings)


def saturation(report: Report) -> list[dict[str, Any]]:
    """Per sample and codec: the pool's best host-to-host figure over the kernel-only figure."""
    out = []
    for k in report.kernels:
        rows = [r for r in report.pool if (r.sample, r.codec) == (k.sample, k.codec)]
        if not rows:
            continue
        best_c = max(r.compress_gbps for r in rows)
        best_d = max(r.decompress_gbps for r in rows)
        out.append(
            {
                "sample": k.sample,
                "codec": k.codec,
                "compress_pct_of_kernel": 100 * best_c / k.compress_gbps if k.compress_gbps else 0.0,
                "decompress_pct_of_kernel": 100 * best_d / k.decompress_gbps if k.decompress_gbps else 0.0,
            }
        )
    return out


def format_report(report: Report) -> str:
    lines = [f"device: {report.device}; frames of {report.frame_size // MiB} MiB; GB/s of original bytes", ""]
    lines.append(f"{'sample':<11} {'codec':<16} {'reqs':>4} {'ratio':>6} {'comp GB/s':>10} {'dec GB/s':>10}")
    for r in report.pool:
        lines.append(
            f"{r.sample:<11} {r.codec:<16} {r.concurrency:>4} {r.ratio:>6.2f} {r.compress_gbps:>10.2f}"
            f" {r.decompress_gbps:>10.2f}"
        )
    if report.frames:
        lines += ["", "frame-size sweep:"]
        for r in report.frames:
            lines.append(
                f"  {r.sample:<11} {r.codec:<16} {r.concurrency:>4} reqs {r.frame_size // 1024:>6} KiB frames"
                f" ratio {r.ratio:>6.2f} {r.compress_gbps:>10.2f} {r.decompress_gbps:>10.2f}"
            )
    if report.kernels:
        lines += ["", "(a) nvCOMP kernels alone, device-resident data:"]
        for k in report.kernels:
            lines.append(f"  {k.sample:<11} {k.codec:<16} {k.compress_gbps:>10.2f} {k.decompress_gbps:>10.2f}")
    if report.h2d_gbps is not None:
        lines += [
            "",
            f"(b) pinned copies: host-to-device {report.h2d_gbps:.2f} GB/s, device-to-host {report.d2h_gbps:.2f} GB/s",
        ]
    lines += ["", "(c) cpu-zstd level 3 on all cores:"]
    for c in report.cpu:
        lines.append(
            f"  {c.sample:<11} {c.threads:>3} threads ratio {c.ratio:>6.2f} {c.compress_gbps:>10.2f}"
            f" {c.decompress_gbps:>10.2f}"
        )
    sat = saturation(report)
    if sat:
        lines += ["", f"pool at saturation over kernels alone (goal >= {GOAL_SATURATION:.0%}):"]
        for s in sat:
            lines.append(
                f"  {s['sample']:<11} {s['codec']:<16} compress {s['compress_pct_of_kernel']:5.1f}%"
                f" decompress {s['decompress_pct_of_kernel']:5.1f}%"
            )
    zstd = [r for r in report.pool if r.codec == CodecKind.NVCOMP_ZSTD.wire_name]
    if zstd:
        best = max(zstd, key=lambda r: r.compress_gbps)
        lines.append(
            f"nvcomp-zstd best host-to-host compress: {best.compress_gbps:.2f} GB/s ({best.sample},"
            f" {best.concurrency} requests; goal >= {GOAL_ZSTD_GBPS:.0f} GB/s on an H100)"
        )
    return "\n".join(lines)


def to_json(report: Report) -> str:
    data = dataclasses.asdict(report)
    data["pool"] = [dataclasses.asdict(r) | {"ratio": r.ratio} for r in report.pool]
    data["frames"] = [dataclasses.asdict(r) | {"ratio": r.ratio} for r in report.frames]
    data["saturation"] = saturation(report)
    return json.dumps(data, indent=2)
