"""``s4 bench codecs``: codec throughput through S4's framing, beside raw zstandard.

Ours = the path the gateway runs: per frame compress + CRC32C + header + passthrough
fallback; decoding parses the S4F2 stream, decodes, checks every CRC and the
manifest's totals. Raw = ``zstandard`` on the same frames, nothing else. Both run in
the same process, alternately, best of N rounds, so the overhead is measured side by
side on the same noisy machine.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence

import zstandard

from s4.bench.corpus import Sample
from s4.codec import (
    CodecKind,
    CodecRegistry,
    FrameStreamReader,
    decode_frame,
    encode_body,
    encode_frame,
    iter_decoded,
)
from s4.codec.cpu.zstd_frame import PerThread

MB = 1_000_000
FEED_CHUNK = 1024 * 1024


@dataclasses.dataclass
class Row:
    sample: str
    codec: str
    level: int | None
    original: int
    stored: int
    compress_1t: float
    compress_nt: float
    decompress_1t: float
    decompress_nt: float

    @property
    def ratio(self) -> float:
        return self.original / self.stored if self.stored else 0.0


def _frames(data: bytes, frame_size: int) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + frame_size] for i in range(0, len(data), frame_size)]


def _chunks(data: bytes) -> list[memoryview]:
    """The stored body as it arrives from a store: 1 MiB reads."""
    view = memoryview(data)
    return [view[i : i + FEED_CHUNK] for i in range(0, len(data), FEED_CHUNK)]


@dataclasses.dataclass
class Workload:
    """The four timed operations of one codec on one sample, and what they produced."""

    name: str
    level: int | None
    stored: int
    ops: dict[str, Callable[[], object]]


def ours(
    sample: Sample, kind: CodecKind, level: int | None, frame_size: int, pool: concurrent.futures.Executor
) -> Workload:
    registry = CodecRegistry.cpu_default(zstd_level=level or 3, gzip_level=level or 6)
    frames = _frames(sample.data, frame_size)
    body = encode_body(sample.data, kind, registry, frame_size)
    chunks = _chunks(body.stored)
    parsed = []
    if body.manifest.framed:
        reader = FrameStreamReader()
        for chunk in chunks:
            parsed.extend(reader.feed(chunk))

    def decode_all() -> None:
        for _ in iter_decoded(chunks, body.manifest, registry):
            pass

    def decode_parallel() -> None:
        list(pool.map(lambda fr: decode_frame(registry, fr.header, fr.payload), parsed))

    return Workload(
        kind.wire_name,
        level,
        len(body.stored),
        {
            "compress_1t": lambda: [encode_frame(registry, kind, f) for f in frames],
            "compress_nt": lambda: list(pool.map(lambda f: encode_frame(registry, kind, f), frames)),
            "decompress_1t": decode_all,
            "decompress_nt": decode_parallel if parsed else decode_all,
        },
    )


def raw_zstd(sample: Sample, level: int, frame_size: int, pool: concurrent.futures.Executor) -> Workload:
    """zstandard alone on the same frames: the floor our framing is measured against."""
    frames = _frames(sample.data, frame_size)
    cctx = zstandard.ZstdCompressor(level=level)
    dctx = zstandard.ZstdDecompressor()
    payloads = [cctx.compress(f) for f in frames]
    local_c = PerThread(lambda: zstandard.ZstdCompressor(level=level))
    local_d = PerThread(zstandard.ZstdDecompressor)
    return Workload(
        "raw-zstandard",
        level,
        sum(len(p) for p in payloads),
        {
            "compress_1t": lambda: [cctx.compress(f) for f in frames],
            "compress_nt": lambda: list(pool.map(lambda f: local_c.get().compress(f), frames)),
            "decompress_1t": lambda: [dctx.decompress(p) for p in payloads],
            "decompress_nt": lambda: list(pool.map(lambda p: local_d.get().decompress(p), payloads)),
        },
    )


def measure(sample: Sample, workloads: Sequence[Workload], rounds: int) -> list[Row]:
    """Best of ``rounds`` for every op, the workloads taking turns within each round.

    Taking turns spreads the machine's noise over all of them instead of letting one
    workload run during a quiet minute and its rival during a busy one; one untimed
    warm-up pass first, so page faults of first allocations count for nobody.
    """
    best: dict[tuple[int, str], float] = {}
    for w in workloads:
        for op in w.ops.values():
            op()
    for _ in range(rounds):
        for i, w in enumerate(workloads):
            for name, op in w.ops.items():
                start = time.perf_counter()
                op()
                elapsed = time.perf_counter() - start
                best[(i, name)] = min(best.get((i, name), elapsed), elapsed)
    n = len(sample.data)
    return [
        Row(sample.name, w.name, w.level, n, w.stored, *(n / MB / best[(i, op)] for op in OPS))
        for i, w in enumerate(workloads)
    ]


OPS = ("compress_1t", "compress_nt", "decompress_1t", "decompress_nt")


DEFAULT_PLAN: tuple[tuple[CodecKind, int | None], ...] = (
    (CodecKind.CPU_ZSTD, 1),
    (CodecKind.CPU_ZSTD, 3),
    (CodecKind.CPU_ZSTD, 9),
    (CodecKind.NVCOMP_ZSTD, 3),
    (CodecKind.CPU_GZIP, 6),
    (CodecKind.PASSTHROUGH, None),
)


def run(
    samples: Sequence[Sample],
    plan: Sequence[tuple[CodecKind, int | None]] = DEFAULT_PLAN,
    frame_size: int = 4 * 1024 * 1024,
    rounds: int = 5,
    threads: int | None = None,
) -> list[Row]:
    threads = threads or os.cpu_count() or 1
    rows: list[Row] = []
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for sample in samples:
            if not sample.data:
                continue
            for kind, level in plan:
                workloads = [ours(sample, kind, level, frame_size, pool)]
                if kind is CodecKind.CPU_ZSTD and level is not None:
                    workloads.append(raw_zstd(sample, level, frame_size, pool))
                rows.extend(measure(sample, workloads, rounds))
    return rows


def overheads(rows: Sequence[Row]) -> list[dict[str, object]]:
    """Framing + CRC cost of cpu-zstd over raw zstandard at the same level and sample."""
    out = []
    for ours in rows:
        if ours.codec != CodecKind.CPU_ZSTD.wire_name:
            continue
        raw = next(
            (r for r in rows if r.codec == "raw-zstandard" and r.sample == ours.sample and r.level == ours.level),
            None,
        )
        if raw is None:
            continue
        out.append(
            {
                "sample": ours.sample,
                "level": ours.level,
                # time ratio = inverse throughput ratio
                "compress_1t_pct": 100 * (raw.compress_1t / ours.compress_1t - 1),
                "decompress_1t_pct": 100 * (raw.decompress_1t / ours.decompress_1t - 1),
                "compress_nt_pct": 100 * (raw.compress_nt / ours.compress_nt - 1),
                "decompress_nt_pct": 100 * (raw.decompress_nt / ours.decompress_nt - 1),
            }
        )
    return out


def format_rows(rows: Sequence[Row], threads: int) -> str:
    head = (
        f"{'sample':<11} {'codec':<14} {'level':>5} {'ratio':>7} {'comp 1T':>9} {'comp ' + str(threads) + 'T':>9}"
        f" {'dec 1T':>9} {'dec ' + str(threads) + 'T':>9}   (MB/s of original bytes)"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.sample:<11} {r.codec:<14} {r.level if r.level is not None else '-':>5} {r.ratio:>7.2f}"
            f" {r.compress_1t:>9.1f} {r.compress_nt:>9.1f} {r.decompress_1t:>9.1f} {r.decompress_nt:>9.1f}"
        )
    lines.append("")
    lines.append("cpu-zstd time over raw zstandard (framing + CRC32C + checks), same frames, same run:")
    for o in overheads(rows):
        lines.append(
            f"  {o['sample']:<11} level {o['level']:>2}: compress {o['compress_1t_pct']:+6.1f}% (1T)"
            f" {o['compress_nt_pct']:+6.1f}% ({threads}T), decompress {o['decompress_1t_pct']:+6.1f}% (1T)"
            f" {o['decompress_nt_pct']:+6.1f}% ({threads}T)"
        )
    return "\n".join(lines)


def to_json(rows: Sequence[Row]) -> str:
    return json.dumps(
        {"rows": [dataclasses.asdict(r) | {"ratio": r.ratio} for r in rows], "overheads": overheads(rows)},
        indent=2,
    )
