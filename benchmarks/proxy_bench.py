"""What the gateway costs end to end, measured side by side in one run.

    .venv/bin/python benchmarks/proxy_bench.py [--size-mib N] [--big-gib G] [--rss-gib R] [--skip-rss] [--json]

1. Throughput through the proxy: boto3 PUT / GET / 1 MiB Range GETs of the same files against
   two ``s4 serve`` processes started side by side (default cpu-zstd, and ``--codec passthrough``),
   interleaved round by round so the noise of a shared machine hits both; plus stored bytes per
   original byte of each, beside one-shot ``zstd -3`` of the whole file.
2. Range GET cost against object size, in process (no HTTP): a CompressingStore with the default
   FramePolicy over a FilesystemStore; backend bytes and frames read per 1 MiB range of a small
   and a big object (the big one put once with its length known and once without).
3. Peak RSS (VmHWM) of a fresh gateway process across one non-multipart PUT of a few GiB, streamed
   with UNSIGNED-PAYLOAD so the client holds nothing.

Figures come from here, never from timed unit tests. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import boto3
import botocore
import zstandard
from _gateway import ACCESS_KEY, REGION, SECRET_KEY, Gateway, start_gateway
from boto3.s3.transfer import TransferConfig
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s4.bench.corpus import default_corpus, stdlib_text
from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.store.base import ByteRange, ObjectAttributes
from s4.store.compressing.reserved import SIDECAR_SUFFIX
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore

MiB = 1024 * 1024
GiB = 1024 * MiB
MB = 1e6
BUCKET = "bench"
SERVERS = (("cpu-zstd", ()), ("passthrough", ("--codec", "passthrough")))
SAMPLE_NAMES = {"text": "text", "binary": "binary", "compressed": "incompressible"}
RSS_GOAL = 300 * MiB
TEXT_SOURCE_MIB = 16


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays the report (or the JSON)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the machine ----------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on; they mean little without it."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "zstandard": zstandard.__version__,
        "loadavg_start": _read("/proc/loadavg").split()[:3],
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# --- generated compressible text, as a stream ------------------------------------------------------


class TextBlocks:
    """1 MiB blocks of real text (stdlib sources), each one different.

    Blocks are cut in turn from TEXT_SOURCE_MIB MiB of text and stamped with their number. The
    repeat distance is far beyond zstd -3's 2 MiB window, so every frame compresses like real
    text rather than like one repeated block; any byte range can be recomputed to check reads.
    """

    def __init__(self) -> None:
        text = stdlib_text(TEXT_SOURCE_MIB * MiB).data
        self.count = len(text) // MiB
        if self.count < 4:
            raise RuntimeError("fewer than 4 MiB of stdlib text found")
        self.text = text[: self.count * MiB]

    def block(self, index: int) -> bytes:
        start = (index % self.count) * MiB
        stamp = f"# s4 proxy bench block {index:012d}\n".encode()
        return stamp + self.text[start + len(stamp) : start + MiB]

    def blocks(self, size: int) -> Iterator[bytes]:
        for index in range(-(-size // MiB)):
            yield self.block(index)[: size - index * MiB]

    def read(self, first: int, last: int) -> bytes:
        """The bytes ``first..last`` (inclusive) of any stream this produces."""
        out = bytearray()
        for index in range(first // MiB, last // MiB + 1):
            out += self.block(index)
        base = (first // MiB) * MiB
        return bytes(out[first - base : last - base + 1])


class SizedBody:
    """An async body that carries ``expected_size`` exactly as the server's PUT body does when the
    request has a Content-Length; ``None`` mimics a body of unknown length (4 MiB frames)."""

    def __init__(self, blocks: TextBlocks, size: int, declare_size: bool) -> None:
        self._blocks, self._size = blocks, size
        self.expected_size = size if declare_size else None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        for block in self._blocks.blocks(self._size):
            yield block
            await asyncio.sleep(0)


# --- part 1: throughput through the proxy ----------------------------------------------------------


@dataclasses.dataclass
class SampleFile:
    name: str
    path: Path
    size: int
    source: str
    corpus_bytes: int
    sha256: str
    zstd3_ratio: float


def build_samples(directory: Path, size: int) -> list[SampleFile]:
    """One file per corpus sample, the corpus bytes repeated up to ``size`` (stated in the report)."""
    samples = []
    for sample in default_corpus(size):
        data = sample.data * -(-size // len(sample.data))
        data = data[:size]
        name = SAMPLE_NAMES.get(sample.name, sample.name)
        path = directory / f"{name}.bin"
        path.write_bytes(data)
        ratio = len(zstandard.ZstdCompressor(level=3).compress(data)) / len(data)
        digest = hashlib.sha256(data).hexdigest()
        samples.append(SampleFile(name, path, size, sample.source, len(sample.data), digest, ratio))
        log(f"sample {name}: {size} bytes from {len(sample.data)} corpus bytes ({sample.source}); zstd -3 {ratio:.3f}")
    return samples


def transfer_config() -> TransferConfig:
    """The same boto3 transfer settings for every server: 8 MiB parts, 8 in flight, classic (no CRT)."""
    return TransferConfig(
        multipart_threshold=8 * MiB,
        multipart_chunksize=8 * MiB,
        max_concurrency=8,
        use_threads=True,
        preferred_transfer_client="classic",
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def read_slice(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


@dataclasses.dataclass
class Throughput:
    """Seconds per op and per server for one sample, plus anything that went wrong."""

    seconds: dict[tuple[str, str], list[float]] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    def add(self, server: str, op: str, seconds: float) -> None:
        self.seconds.setdefault((server, op), []).append(seconds)


class ProxyRun:
    """Runs the ops of one sample against one gateway; verifies the bytes on the first round."""

    def __init__(self, gateway: Gateway, scratch: Path) -> None:
        self.gateway = gateway
        self.client = gateway.client()
        self.config = transfer_config()
        self.scratch = scratch

    def put(self, sample: SampleFile) -> None:
        self.client.upload_file(str(sample.path), BUCKET, sample.name, Config=self.config)

    def get(self, sample: SampleFile, verify: bool) -> None:
        dest = self.scratch / f"{self.gateway.name}-{sample.name}.out"
        self.client.download_file(BUCKET, sample.name, str(dest), Config=self.config)
        if verify and sha256_file(dest) != sample.sha256:
            raise AssertionError(f"GET of {sample.name} returned different bytes than were PUT")
        dest.unlink()

    def ranges(self, sample: SampleFile, offsets: list[int]) -> list[bytes]:
        bodies = []
        for offset in offsets:
            response = self.client.get_object(
                Bucket=BUCKET, Key=sample.name, Range=f"bytes={offset}-{offset + MiB - 1}"
            )
            bodies.append(response["Body"].read())
        return bodies


def verify_ranges(sample: SampleFile, offsets: list[int], bodies: list[bytes]) -> None:
    for offset, body in zip(offsets, bodies, strict=True):
        if body != read_slice(sample.path, offset, MiB):
            raise AssertionError(f"Range {offset}-{offset + MiB - 1} of {sample.name}: {len(body)} bytes, wrong bytes")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_op(result: Throughput, run: ProxyRun, op: str, fn: Callable[[], object]) -> object | None:
    """Time one op; an exception is recorded verbatim (the report says what the gateway did)."""
    try:
        seconds, value = timed(fn)
    except Exception as exc:
        result.problems.append(f"{run.gateway.name} {op}: {type(exc).__name__}: {exc}")
        log(f"  {run.gateway.name} {op} FAILED: {exc}")
        return None
    result.add(run.gateway.name, op, seconds)
    return value


def one_round(sample: SampleFile, runs: list[ProxyRun], result: Throughput, offsets: list[int], verify: bool) -> None:
    """PUT, GET and Range GETs, each op on every server before the next op (A, B, A, B ...)."""
    for run in runs:
        run_op(result, run, "put", lambda run=run: run.put(sample))
    for run in runs:
        run_op(result, run, "get", lambda run=run: run.get(sample, verify))
    for run in runs:
        bodies = run_op(result, run, "range", lambda run=run: run.ranges(sample, offsets))
        if verify and bodies is not None:
            try:
                verify_ranges(sample, offsets, bodies)
            except AssertionError as exc:
                result.problems.append(f"{run.gateway.name} range: {exc}")


def throughput(samples: list[SampleFile], gateways: list[Gateway], args: argparse.Namespace, scratch: Path) -> dict:
    """Every sample, ``args.rounds`` rounds; the server order flips each round so neither always goes first."""
    runs = [ProxyRun(g, scratch) for g in gateways]
    for run in runs:
        run.client.create_bucket(Bucket=BUCKET)
    results = {s.name: Throughput() for s in samples}
    for round_number in range(args.rounds):
        order = runs if round_number % 2 == 0 else runs[::-1]
        for sample in samples:
            rng = random.Random(f"{sample.name}-{round_number}")
            offsets = [rng.randrange(0, sample.size - MiB + 1) for _ in range(args.ranges)]
            log(f"round {round_number + 1}/{args.rounds} {sample.name}: {' then '.join(r.gateway.name for r in order)}")
            one_round(sample, order, results[sample.name], offsets, verify=round_number == 0)
    return results


async def stored_sizes(data_dir: Path, keys: list[str]) -> dict[str, dict[str, int]]:
    """Bytes the embedded store holds per key (object + sidecar), read through FilesystemStore itself;
    anything else left in the bucket (staging, dictionaries) is reported under ``other``."""
    store = await FilesystemStore.open(data_dir)
    try:
        objects = []
        start_after = None
        while True:
            page = await store.list_objects(BUCKET, start_after=start_after)
            objects += page.objects
            if not page.is_truncated:
                break
            start_after = page.next_marker
    finally:
        await store.close()
    sizes = {key: {"object": 0, "sidecar": 0} for key in keys}
    sizes["other"] = {"object": 0, "sidecar": 0, "keys": 0, "names": []}
    for obj in objects:
        if obj.key in sizes:
            sizes[obj.key]["object"] += obj.size
        elif obj.key.removesuffix(SIDECAR_SUFFIX) in keys:
            sizes[obj.key.removesuffix(SIDECAR_SUFFIX)]["sidecar"] += obj.size
        else:
            sizes["other"]["object"] += obj.size
            sizes["other"]["keys"] += 1
            sizes["other"]["names"].append(obj.key)
    return sizes


def part_throughput(args: argparse.Namespace, tmp: Path) -> dict:
    """Part 1 end to end: samples, two gateways side by side, rounds, stored sizes, gateway peaks."""
    samples = build_samples(tmp / "samples", args.size_mib * MiB)
    gateways = []
    try:
        for name, extra in SERVERS:
            gateways.append(start_gateway(tmp / name, name, extra))
            log(f"gateway {name}: {gateways[-1].endpoint} pid {gateways[-1].process.pid}")
        results = throughput(samples, gateways, args, tmp / "samples")
        peaks = {g.name: g.proc_status("VmHWM") for g in gateways if g.alive()}
        dead = [f"{g.name} exited with {g.process.returncode}" for g in gateways if not g.alive()]
    finally:
        for gateway in gateways:
            gateway.stop()
    stored = {g.name: asyncio.run(stored_sizes(g.data_dir, [s.name for s in samples])) for g in gateways}
    return {
        "samples": samples,
        "results": results,
        "stored": stored,
        "peaks": peaks,
        "server_problems": {g.name: g.problems() for g in gateways} | ({"exited": dead} if dead else {}),
    }


# --- part 2: Range GET cost against object size (in process) --------------------------------------


@dataclasses.dataclass
class RangeCost:
    label: str
    size: int
    declared: bool
    frame_size: int
    stored: int = 0
    sidecar: int = 0
    put_seconds: float = 0.0
    seconds: list[float] = dataclasses.field(default_factory=list)
    backend_bytes: list[int] = dataclasses.field(default_factory=list)
    frames: list[int] = dataclasses.field(default_factory=list)
    fallbacks: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)


async def put_generated(store: CompressingStore, key: str, blocks: TextBlocks, cost: RangeCost) -> None:
    start = time.perf_counter()
    await store.put_object(BUCKET, key, SizedBody(blocks, cost.size, cost.declared), ObjectAttributes())
    cost.put_seconds = time.perf_counter() - start
    cost.stored = (await store.inner.head_object(BUCKET, key)).size
    with contextlib.suppress(Exception):
        cost.sidecar = (await store.inner.head_object(BUCKET, key + SIDECAR_SUFFIX)).size


async def one_range(store: CompressingStore, key: str, first: int, blocks: TextBlocks, cost: RangeCost) -> None:
    """One 1 MiB Range GET; the store's counters are diffed around it, the bytes checked after."""
    stats = store.stats
    read0, frames0, fallbacks0 = stats.backend_bytes_read, stats.range_frames_fetched, stats.sidecar_fallbacks
    start = time.perf_counter()
    stream = await store.get_object(BUCKET, key, ByteRange(first, first + MiB - 1))
    try:
        data = b"".join([piece async for piece in stream.body])
    finally:
        await stream.aclose()
    cost.seconds.append(time.perf_counter() - start)
    cost.backend_bytes.append(stats.backend_bytes_read - read0)
    cost.frames.append(stats.range_frames_fetched - frames0)
    cost.fallbacks += stats.sidecar_fallbacks - fallbacks0
    if data != blocks.read(first, first + MiB - 1):
        cost.problems.append(f"range {first}-{first + MiB - 1} of {key}: {len(data)} bytes, wrong bytes")


async def measure_object(store: CompressingStore, blocks: TextBlocks, cost: RangeCost, count: int) -> None:
    key = f"object-{cost.label}"
    log(f"in-process PUT {cost.label}: {cost.size} bytes, length {'declared' if cost.declared else 'unknown'}")
    await put_generated(store, key, blocks, cost)
    rng = random.Random(f"ranges-{cost.label}")
    for _ in range(count):
        await one_range(store, key, rng.randrange(0, cost.size - MiB + 1), blocks, cost)
    await store.delete_object(BUCKET, key)


async def range_costs(args: argparse.Namespace, tmp: Path) -> list[RangeCost]:
    """Part 2: the same random 1 MiB ranges on a small and a big object in one CompressingStore."""
    policy = FramePolicy()
    big = int(args.big_gib * GiB) // MiB * MiB
    costs = [
        RangeCost("64MiB", 64 * MiB, True, policy.frame_size(64 * MiB)),
        RangeCost(f"{args.big_gib:g}GiB", big, True, policy.frame_size(big)),
        RangeCost(f"{args.big_gib:g}GiB-unsized", big, False, policy.frame_size(None)),
    ]
    blocks = TextBlocks()
    pool = CpuCodecPool(CodecRegistry.cpu_default())
    store = CompressingStore(await FilesystemStore.open(tmp / "inprocess"), pool, CodecDispatcher(), policy)
    try:
        await store.create_bucket(BUCKET)
        for cost in costs:
            await measure_object(store, blocks, cost, args.store_ranges)
    finally:
        await store.close()
        pool.close()
    return costs


# --- part 3: peak RSS of the gateway across one big PUT --------------------------------------------


def signed_put_headers(gateway: Gateway, key: str, size: int) -> dict[str, str]:
    """SigV4 headers for a PUT whose body is not hashed (UNSIGNED-PAYLOAD): the client streams it."""
    url = f"{gateway.endpoint}/{BUCKET}/{key}"
    headers = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Length": str(size)}
    request = AWSRequest(method="PUT", url=url, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(request)
    return dict(request.headers.items())


def stream_put(gateway: Gateway, key: str, size: int, blocks: TextBlocks) -> tuple[int, str, str]:
    """One PUT over http.client from a generator; returns (status, response body, MD5 of what was sent)."""
    host, port = gateway.host_port
    connection = http.client.HTTPConnection(host, port, timeout=600)
    md5 = hashlib.md5()
    try:
        connection.putrequest("PUT", f"/{BUCKET}/{key}", skip_accept_encoding=True)
        for name, value in signed_put_headers(gateway, key, size).items():
            connection.putheader(name, value)
        connection.endheaders()
        for block in blocks.blocks(size):
            md5.update(block)
            connection.send(block)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace"), md5.hexdigest()
    finally:
        connection.close()


def rss_put(args: argparse.Namespace, tmp: Path, name: str, extra: tuple[str, ...], blocks: TextBlocks) -> dict:
    """A fresh gateway (so VmHWM is this PUT's peak, not an earlier test's), one big PUT, then HEAD."""
    size = int(args.rss_gib * GiB)
    gateway = start_gateway(tmp / f"rss-{name}", name, extra)
    try:
        gateway.client().create_bucket(Bucket=BUCKET)
        before = gateway.proc_status("VmHWM")
        log(f"RSS: {name} gateway pid {gateway.process.pid}, PUT of {size} bytes (UNSIGNED-PAYLOAD, one request)")
        seconds, (status, body, md5) = timed(lambda: guarded_put(gateway, size, blocks))
        row = {"codec": name, "size": size, "seconds": seconds, "status": status, "hwm_before": before}
        if not gateway.alive():
            status, body = 0, f"the gateway exited with {gateway.process.returncode} ({body})"
            row |= {"status": status, "hwm_after": 0, "rss_after": 0}
        else:
            row |= {"hwm_after": gateway.proc_status("VmHWM"), "rss_after": gateway.proc_status("VmRSS")}
        row["problems"] = check_big_put(gateway, status, body, md5, size)
        row["server_problems"] = gateway.problems()
    finally:
        gateway.stop()
    return row


def guarded_put(gateway: Gateway, size: int, blocks: TextBlocks) -> tuple[int, str, str]:
    """A dropped connection is a result to report (status 0), not a reason to lose the other rows."""
    try:
        return stream_put(gateway, "big", size, blocks)
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}", ""


def check_big_put(gateway: Gateway, status: int, body: str, md5: str, size: int) -> list[str]:
    if status != 200:
        return [f"PUT answered {status}: {body[:500]}"]
    head = gateway.client().head_object(Bucket=BUCKET, Key="big")
    problems = []
    if head["ContentLength"] != size:
        problems.append(f"HEAD says {head['ContentLength']} bytes, {size} were sent")
    if head["ETag"].strip('"') != md5:
        problems.append(f"HEAD ETag {head['ETag']} is not the MD5 of what was sent ({md5})")
    return problems


def part_rss(args: argparse.Namespace, tmp: Path) -> list[dict]:
    blocks = TextBlocks()
    return [rss_put(args, tmp, name, extra, blocks) for name, extra in SERVERS]


# --- the report -------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [headers, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


def rate(size: int, seconds: list[float]) -> str:
    return f"{size / MB / median(seconds):.0f}" if seconds else "FAILED"


def throughput_rows(part: dict, args: argparse.Namespace) -> list[list[str]]:
    rows = []
    for sample in part["samples"]:
        result: Throughput = part["results"][sample.name]
        for server, _ in SERVERS:
            stored = part["stored"][server][sample.name]
            ratio = (stored["object"] + stored["sidecar"]) / sample.size
            rows.append(
                [
                    sample.name,
                    f"{sample.size // MiB} MiB",
                    server,
                    rate(sample.size, result.seconds.get((server, "put"), [])),
                    rate(sample.size, result.seconds.get((server, "get"), [])),
                    rate(args.ranges * MiB, result.seconds.get((server, "range"), [])),
                    f"{ratio:.3f}",
                    f"{stored['sidecar']}",
                    f"{sample.zstd3_ratio:.3f}",
                ]
            )
    return rows


def report_throughput(part: dict, args: argparse.Namespace) -> str:
    headers = [
        "sample",
        "size",
        "server",
        "PUT MB/s",
        "GET MB/s",
        "1MiB-range MB/s",
        "stored/orig",
        "sidecar B",
        "zstd-3 ref",
    ]
    lines = [
        f"## 1. Through the proxy (boto3, median of {args.rounds} interleaved rounds;"
        " MB = 10^6 bytes of original data)",
        "",
        table(headers, throughput_rows(part, args)),
        "",
        "Samples (repeated corpus bytes up to the size):",
    ]
    lines += [f"  {s.name}: {s.corpus_bytes} corpus bytes from {s.source}" for s in part["samples"]]
    lines.append(f"PUT: upload_file, GET: download_file (TransferConfig {_transfer_text()}; both multipart/ranged);")
    lines.append(f"range: {args.ranges} random 1 MiB get_object Range requests, one after another.")
    lines.append("stored/orig: inner object + .s4index sidecar bytes (FilesystemStore head sizes) / original bytes;")
    lines.append("zstd-3 ref: zstandard level 3, one shot over the whole file.")
    peaks = ", ".join(f"{k} {v / MiB:.0f} MiB" for k, v in part["peaks"].items())
    lines.append(f"Gateway peak RSS (VmHWM) over part 1: {peaks}")
    for server in part["stored"]:
        other = part["stored"][server]["other"]
        if other["keys"]:
            names = ", ".join(other["names"][:4]) + (" ..." if other["keys"] > 4 else "")
            lines.append(
                f"NOTE {server}: {other['keys']} other inner objects in the bucket ({other['object']} B): {names}"
            )
    return "\n".join(lines)


def _transfer_text() -> str:
    return "multipart_threshold=8 MiB, multipart_chunksize=8 MiB, max_concurrency=8, classic client"


def report_ranges(costs: list[RangeCost], args: argparse.Namespace) -> str:
    headers = [
        "object",
        "length",
        "frame",
        "stored/orig",
        "sidecar B",
        "PUT MB/s",
        "range ms (med)",
        "backend B/range med",
        "max",
        "frames/range",
        "fallbacks",
    ]
    rows = [
        [
            c.label,
            "declared" if c.declared else "unknown",
            f"{c.frame_size // MiB} MiB",
            f"{c.stored / c.size:.3f}",
            str(c.sidecar),
            f"{c.size / MB / c.put_seconds:.0f}",
            f"{median(c.seconds) * 1000:.1f}",
            f"{median(c.backend_bytes):.0f}",
            str(max(c.backend_bytes, default=0)),
            f"{statistics.mean(c.frames):.2f}" if c.frames else "-",
            str(c.fallbacks),
        ]
        for c in costs
    ]
    return "\n".join(
        [
            "## 2. Range GET cost against object size"
            f" (in process, no HTTP; {args.store_ranges} random 1 MiB ranges each)",
            "",
            table(headers, rows),
            "",
            "Default FramePolicy; generated text (1 MiB stdlib-text blocks, each stamped), cpu-zstd level 3.",
            "backend B/range: store.stats.backend_bytes_read diffed around each range (stored frame bytes read);",
            "the .s4index sidecar is read whole on every range GET and is NOT in that counter (see 'sidecar B').",
            "'unknown' length: the body has no expected_size (no Content-Length, e.g. HTTP chunked),"
            " so the policy picks unknown_frame.",
        ]
    )


def report_rss(rows: list[dict]) -> str:
    headers = ["gateway", "PUT size", "status", "PUT MB/s", "VmHWM before", "VmHWM after", "VmRSS after", "< 300 MiB"]
    table_rows = [
        [
            r["codec"],
            f"{r['size'] / GiB:g} GiB",
            str(r["status"]),
            f"{r['size'] / MB / r['seconds']:.0f}",
            f"{r['hwm_before'] / MiB:.0f} MiB",
            f"{r['hwm_after'] / MiB:.0f} MiB",
            f"{r['rss_after'] / MiB:.0f} MiB",
            ("yes" if r["hwm_after"] < RSS_GOAL else "NO") if r["status"] == 200 else "-",
        ]
        for r in rows
    ]
    return "\n".join(
        [
            "## 3. Gateway peak RSS across one PUT (fresh process each; raw http.client, UNSIGNED-PAYLOAD,",
            "   Content-Length set, body streamed in 1 MiB blocks of generated text; VmHWM from /proc/<pid>/status)",
            "",
            table(headers, table_rows),
        ]
    )


def problems_text(part1: dict | None, costs: list[RangeCost] | None, rss: list[dict] | None) -> str:
    """Everything that went wrong, verbatim: a benchmark that hides errors hides the gateway's bugs."""
    found = []
    if part1:
        for name, result in part1["results"].items():
            found += [f"part 1 {name}: {p}" for p in result.problems]
        for server, lines in part1["server_problems"].items():
            found += [f"part 1 gateway {server} log: {line}" for line in lines]
    for cost in costs or []:
        found += [f"part 2 {cost.label}: {p}" for p in cost.problems]
        if cost.fallbacks:
            found.append(f"part 2 {cost.label}: {cost.fallbacks} ranges fell back to reading the whole object")
    for row in rss or []:
        found += [f"part 3 {row['codec']}: {p}" for p in row["problems"]]
        found += [f"part 3 gateway {row['codec']} log: {line}" for line in row["server_problems"]]
    return "## Problems\n\n" + ("\n".join(found) if found else "none: every downloaded byte matched, no errors logged")


def to_json(info: dict, part1: dict | None, costs: list[RangeCost] | None, rss: list[dict] | None) -> str:
    def sample_json(part: dict) -> list[dict]:
        out = []
        for s in part["samples"]:
            result: Throughput = part["results"][s.name]
            seconds = {f"{server}/{op}": v for (server, op), v in result.seconds.items()}
            row = {k: v for k, v in dataclasses.asdict(s).items() if k != "path"}
            out.append(
                row
                | {
                    "seconds": seconds,
                    "stored": {g: part["stored"][g][s.name] for g in part["stored"]},
                    "problems": result.problems,
                }
            )
        return out

    document = {"machine": info}
    if part1:
        document["throughput"] = {
            "samples": sample_json(part1),
            "peak_rss": part1["peaks"],
            "other_stored": {g: part1["stored"][g]["other"] for g in part1["stored"]},
            "server_problems": part1["server_problems"],
        }
    if costs is not None:
        document["range_cost"] = [dataclasses.asdict(c) for c in costs]
    if rss is not None:
        document["rss"] = rss
    return json.dumps(document, indent=2)


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="size of each part-1 sample file (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds in part 1 (median reported)")
    parser.add_argument("--ranges", type=int, default=32, help="1 MiB Range GETs per sample and round in part 1")
    parser.add_argument("--big-gib", type=float, default=1.0, help="size of the big object in part 2 (GiB)")
    parser.add_argument("--store-ranges", type=int, default=20, help="1 MiB Range GETs per object in part 2")
    parser.add_argument("--rss-gib", type=float, default=2.0, help="size of the single PUT in part 3 (GiB)")
    parser.add_argument("--skip-rss", action="store_true", help="skip part 3")
    parser.add_argument("--tmp", type=Path, default=None, help="scratch directory (default: the system temp dir)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout; the tables go to stderr")
    args = parser.parse_args(argv)
    if args.size_mib < 2 or args.big_gib * GiB < 2 * MiB:
        parser.error("--size-mib and --big-gib must leave room for a 1 MiB range")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    info["command"] = shlex.join([sys.executable, *sys.argv])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="s4-proxy-bench-", dir=args.tmp) as name:
        tmp = Path(name)
        (tmp / "samples").mkdir()
        part1 = part_throughput(args, tmp)
        costs = asyncio.run(range_costs(args, tmp))
        rss = None if args.skip_rss else part_rss(args, tmp)
    info["loadavg_end"] = _read("/proc/loadavg").split()[:3]
    info["wall_seconds"] = round(time.monotonic() - started, 1)
    text = "\n\n".join(
        [header_text(info), report_throughput(part1, args), report_ranges(costs, args)]
        + ([report_rss(rss)] if rss else [])
        + [problems_text(part1, costs, rss)]
    )
    print(text, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(to_json(info, part1, costs, rss))
    return 0


def header_text(info: dict) -> str:
    return "\n".join(
        [
            "# S4 proxy benchmark",
            f"command: {info['command']}",
            f"machine: {info['nproc']} cores ({info['cpu_model']}), {info['memory_gib']} GiB, {info['platform']}",
            f"python {info['python']}, boto3 {info['boto3']}, botocore {info['botocore']},"
            f" zstandard {info['zstandard']}",
            f"load average at start {' '.join(info['loadavg_start'])}, at end {' '.join(info['loadavg_end'])};"
            f" wall time {info['wall_seconds']} s",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
