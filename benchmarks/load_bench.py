"""Many concurrent S3 clients against a real gateway, every byte checked: the load test of "Hardening".

    .venv/bin/python benchmarks/load_bench.py [--clients 64] [--seconds 60] [--stores embedded,s3]
                                              [--max-rss-mib N] [--seed 1] [--out results.json]

For each store (``embedded``: ``s4 serve`` on its local-disk store; ``s3``: ``s4 serve --backend s3``
over a real SeaweedFS started here) it starts a fresh gateway on 127.0.0.1, creates a bucket and
runs ``--clients`` concurrent clients for ``--seconds``. Each client owns the key prefix
``cNN/`` (so it knows exactly what every key and every listing of its prefix must hold without
coordinating with the others) and loops over a weighted random mix:

- PUT of a new key and overwrite of one of its keys: 1 KiB to 4 MiB (log-uniform), half text-like
  (compressible stdlib source) and half incompressible; the returned ETag must be the body's MD5;
- GET: the whole body streamed and compared with what was PUT, plus its length and ETag;
- Range GET: ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` at random; exactly that slice, and the
  Content-Range header;
- ListObjectsV2 of its prefix, paged with a random MaxKeys: exactly its committed keys, each with
  the size and ETag it was given;
- multipart: 2 or 3 parts of at least 5 MiB but the last; each part's ETag is its MD5 and the
  object's is ``md5(part MD5s)-N``; then a GET of the whole object;
- DELETE, then a GET that must answer 404 NoSuchKey.

Some keys carry spaces, non-ASCII letters and ``+=&`` so the signing and URL-decoding paths run
under load too.

Content is never kept: a version is ``(size, seed, kind)`` and any byte range of it is rebuilt on
demand from two pools made once at start (stdlib text, seeded random bytes), 64 KiB blocks each
stamped with the seed and block number, so a stale or misplaced read cannot pass. GET bodies are
compared chunk by chunk as they arrive, so verifying needs no memory beyond one chunk.

Every exception or unexpected status is an *error*, every wrong byte, length, ETag or listing a
*mismatch*; they are counted separately, the first few of each are printed with the request id,
and the run exits non-zero if either count is non-zero. Server-side 5xx lines of the gateway's
access log (a file here) and its WARNING/ERROR log lines are reported beside them.

The gateway's RSS (VmRSS of the process and any children, from ``/proc``) is sampled every 0.5 s
by a thread; start, peak and end are reported beside the main process's VmHWM (the kernel's own
peak, which catches a spike between two samples), and ``--max-rss-mib`` fails the run when the
higher of the two peaks passes the bound.

Why asyncio + aiobotocore and not boto3 threads: on a small machine the load generator shares the
cores with the gateway (and SeaweedFS). 64 boto3 threads contend for the GIL and switch constantly;
one event loop with one aiobotocore client whose connection pool holds ``--clients`` connections
keeps 64 requests in flight from one thread, so the generator's CPU goes into signing and
checking, not scheduling. Latency is measured per request from before the call to the last body
byte, minus the time spent comparing bytes (that is the checker's cost, not the gateway's). When
the generator saturates its core, the figures are a floor for the gateway, which the report's
load average and the machine's core count let the reader judge.

Only 127.0.0.1 is contacted; every process started here is stopped by its own handle, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiobotocore
import aiobotocore.session
import boto3
import botocore
from _gateway import ACCESS_KEY, REGION, SECRET_KEY, Gateway, process_tree, start_gateway, tree_cpu_seconds
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from seaweed import SeaweedFS, start_seaweed  # noqa: E402

from s4.bench.corpus import stdlib_text  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
MB = 1e6
BUCKET = "load"
STORES = ("embedded", "s3")
BLOCK = 64 * KiB
"""Content is built from blocks this size, so a range is rebuilt from the few blocks it covers."""
TEXT_POOL = 16 * MiB
NOISE_POOL = 32 * MiB
"""Incompressible blocks are slices of this much seeded random data: at 64 KiB per block two
blocks of one object rarely overlap, so zstd finds nothing to match."""
MIN_SIZE, MAX_SIZE = 1 * KiB, 4 * MiB
PART_MIN = 5 * MiB
MAX_KEYS_PER_CLIENT = 16
"""Past this a client overwrites instead of adding keys: the bucket stays small, listings one page
or a few."""
CHUNK = 256 * KiB
RSS_INTERVAL = 0.5
SHOWN = 10
"""How many error and mismatch details are kept per store (all are counted)."""
OPS = ("put", "overwrite", "get", "range", "list", "multipart", "delete")
WEIGHTS = {"put": 18, "overwrite": 8, "get": 28, "range": 24, "list": 10, "multipart": 3, "delete": 6}
NAME_SHAPES = ("obj-{n:05d}", "dir a/obj b-{n:05d}", "ünï/çødé-{n:05d}", "x+y=z&q-{n:05d}")
READ_TIMEOUT = 120


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- content: any byte range of any version, rebuilt on demand ------------------------------------


class Pools:
    """The bytes every version is cut from, made once: text compresses like source code, noise not at all."""

    def __init__(self) -> None:
        text = stdlib_text(TEXT_POOL).data
        if len(text) < 4 * BLOCK:
            raise RuntimeError("too little stdlib text found for the text pool")
        self.text = text
        self.noise = random.Random(0x5EED).randbytes(NOISE_POOL)


POOLS: Pools | None = None


@dataclasses.dataclass(frozen=True)
class Content:
    """One version of an object: its bytes are a pure function of these three fields."""

    size: int
    seed: int
    kind: str  # "text" or "noise"

    def block(self, index: int) -> bytes:
        """Block ``index``: a stamp naming the version and block, then a slice of a pool."""
        assert POOLS is not None
        pool = POOLS.text if self.kind == "text" else POOLS.noise
        stamp = f"<{self.seed:016x}:{index:08x}>\n".encode()
        span = BLOCK - len(stamp)
        start = ((self.seed ^ (index * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFF) % (len(pool) - span)
        block = stamp + pool[start : start + span]
        last = self.size - index * BLOCK
        return block[:last] if last < BLOCK else block

    def slice(self, start: int, end: int) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive)."""
        if start >= end:
            return b""
        first, last = start // BLOCK, (end - 1) // BLOCK
        joined = b"".join(self.block(i) for i in range(first, last + 1))
        base = first * BLOCK
        return joined[start - base : end - base]

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from ``start`` to ``end`` a block at a time (PUT bodies are joined from these)."""
        end = self.size if end is None else end
        offset = start
        while offset < end:
            stop = min(end, (offset // BLOCK + 1) * BLOCK)
            yield self.slice(offset, stop)
            offset = stop

    def data(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.chunks(start, end))


class Checker:
    """Compares a streamed body with the bytes expected at ``start..end``, chunk by chunk."""

    def __init__(self, content: Content, start: int, end: int) -> None:
        self.content, self.offset, self.end = content, start, end
        self.first_difference: int | None = None
        self.seconds = 0.0

    def feed(self, chunk: bytes) -> None:
        began = time.perf_counter()
        if self.first_difference is None:
            stop = self.offset + len(chunk)
            expected = self.content.slice(self.offset, min(stop, self.end))
            if chunk != expected:
                diff = next((i for i, (a, b) in enumerate(zip(chunk, expected, strict=False)) if a != b), None)
                self.first_difference = self.offset + (diff if diff is not None else min(len(chunk), len(expected)))
        self.offset += len(chunk)
        self.seconds += time.perf_counter() - began

    def problem(self) -> str | None:
        if self.first_difference is not None:
            return f"bytes differ from offset {self.first_difference}"
        if self.offset != self.end:
            return f"body ended at offset {self.offset}, expected {self.end}"
        return None


# --- what a run counts ----------------------------------------------------------------------------


class Failure(Exception):
    """An unexpected status or answer shape: counted as an error."""


class Mismatch(Exception):
    """Wrong bytes, length, ETag or listing: counted as a mismatch."""


@dataclasses.dataclass
class Stats:
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: {op: [] for op in OPS})
    payload: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OPS, 0))
    errors: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OPS, 0))
    mismatches: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OPS, 0))
    error_details: list[str] = dataclasses.field(default_factory=list)
    mismatch_details: list[str] = dataclasses.field(default_factory=list)

    def ok(self, op: str, seconds: float, nbytes: int = 0) -> None:
        self.latencies[op].append(seconds)
        self.payload[op] += nbytes

    def error(self, op: str, key: str, detail: str) -> None:
        self.errors[op] += 1
        if len(self.error_details) < SHOWN:
            self.error_details.append(f"{op} {key!r}: {detail}")

    def mismatch(self, op: str, key: str, detail: str) -> None:
        self.mismatches[op] += 1
        if len(self.mismatch_details) < SHOWN:
            self.mismatch_details.append(f"{op} {key!r}: {detail}")


def describe(exc: BaseException) -> str:
    """An exception as one line, with the S3 error code, status and request id when there is one."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return (
            f"HTTP {meta.get('HTTPStatusCode')} {error.get('Code')}: {error.get('Message')}"
            f" (request id {meta.get('RequestId')})"
        )
    return f"{type(exc).__name__}: {exc}"


def request_id(response: dict) -> str:
    return str(response.get("ResponseMetadata", {}).get("RequestId"))


def etag_of(data_md5: bytes) -> str:
    return f'"{data_md5.hex()}"'


@dataclasses.dataclass
class Version:
    content: Content
    etag: str


# --- one client ------------------------------------------------------------------------------------


class Worker:
    """One client: sequential requests under its own prefix, so it always knows the truth of that prefix."""

    def __init__(self, client: Any, index: int, seed: int, stats: Stats, deadline: float) -> None:
        self.client, self.index, self.stats, self.deadline = client, index, stats, deadline
        self.rng = random.Random(seed * 1_000_003 + index)
        self.prefix = f"c{index:02d}/"
        self.known: dict[str, Version] = {}
        self.doubtful: set[str] = set()
        """Keys whose last write or delete failed: they may or may not exist, so listings skip them."""
        self.names = 0

    async def run(self) -> None:
        ops, weights = list(WEIGHTS), list(WEIGHTS.values())
        while time.monotonic() < self.deadline:
            op = self.rng.choices(ops, weights)[0]
            if op in ("get", "range", "list", "overwrite", "delete") and not self.known:
                op = "put"
            if op == "put" and len(self.known) >= MAX_KEYS_PER_CLIENT:
                op = "overwrite"
            key = self.pick_key(op)
            try:
                await getattr(self, f"op_{op}")(key)
            except Mismatch as exc:
                self.stats.mismatch(op, key, str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every other failure is an error, counted, and the loop goes on
                self.stats.error(op, key, describe(exc))
                if op in ("put", "overwrite", "multipart", "delete"):
                    self.known.pop(key, None)
                    self.doubtful.add(key)

    def pick_key(self, op: str) -> str:
        if op in ("put", "multipart") and (op == "put" or len(self.known) < MAX_KEYS_PER_CLIENT):
            self.names += 1
            shape = self.rng.choice(NAME_SHAPES) if self.rng.random() < 0.3 else NAME_SHAPES[0]
            return self.prefix + shape.format(n=self.names)
        if op == "list":
            return self.prefix
        return self.rng.choice(sorted(self.known))

    def new_content(self, size: int | None = None) -> Content:
        if size is None:
            size = int(math.exp(self.rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
        return Content(size, self.rng.getrandbits(63), self.rng.choice(("text", "noise")))

    # -- the operations --

    async def op_put(self, key: str) -> None:
        content = self.new_content()
        body = content.data()
        began = time.perf_counter()
        response = await self.client.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.stats.ok("put" if key not in self.known else "overwrite", time.perf_counter() - began, len(body))
        expected = etag_of(hashlib.md5(body).digest())
        self.doubtful.discard(key)
        self.known[key] = Version(content, response.get("ETag", ""))
        if response.get("ETag") != expected:
            raise Mismatch(f"PUT ETag {response.get('ETag')} != MD5 {expected} (request id {request_id(response)})")

    async def op_overwrite(self, key: str) -> None:
        await self.op_put(key)

    async def read_checked(self, key: str, version: Version, start: int, end: int, **range_arg: str) -> tuple:
        """GET (ranged when asked), the body streamed into a Checker: (response, checker, seconds)."""
        checker = Checker(version.content, start, end)
        began = time.perf_counter()
        response = await self.client.get_object(Bucket=BUCKET, Key=key, **range_arg)
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                checker.feed(chunk)
        return response, checker, time.perf_counter() - began - checker.seconds

    async def op_get(self, key: str) -> None:
        version = self.known[key]
        size = version.content.size
        response, checker, seconds = await self.read_checked(key, version, 0, size)
        self.stats.ok("get", seconds, checker.offset)
        rid = request_id(response)
        if (problem := checker.problem()) is not None:
            raise Mismatch(f"GET of {size} bytes: {problem} (request id {rid})")
        if response.get("ContentLength") != size:
            raise Mismatch(f"GET Content-Length {response.get('ContentLength')} != {size} (request id {rid})")
        if response.get("ETag") != version.etag:
            raise Mismatch(f"GET ETag {response.get('ETag')} != PUT ETag {version.etag} (request id {rid})")

    async def op_range(self, key: str) -> None:
        version = self.known[key]
        size = version.content.size
        shape = self.rng.random()
        if shape < 0.15:  # suffix: the last n bytes
            n = self.rng.randint(1, size)
            header, start, end = f"bytes=-{n}", size - n, size
        elif shape < 0.3:  # open-ended: from a to the end
            start = self.rng.randrange(size)
            header, end = f"bytes={start}-", size
        else:
            start = self.rng.randrange(size)
            length = int(math.exp(self.rng.uniform(0, math.log(min(size - start, 2 * MiB)))))
            end = start + max(1, length)
            header = f"bytes={start}-{end - 1}"
        response, checker, seconds = await self.read_checked(key, version, start, end, Range=header)
        self.stats.ok("range", seconds, checker.offset - start)
        rid = request_id(response)
        want = f"bytes {start}-{end - 1}/{size}"
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        if status != 206:
            raise Failure(f"Range {header} of {size} bytes: HTTP {status}, expected 206 (request id {rid})")
        if (problem := checker.problem()) is not None:
            raise Mismatch(f"Range {header} of {size} bytes: {problem} (request id {rid})")
        if response.get("ContentRange") != want:
            got = response.get("ContentRange")
            raise Mismatch(f"Range {header}: Content-Range {got!r} != {want!r} (request id {rid})")

    async def op_list(self, prefix: str) -> None:
        listed: dict[str, tuple[int, str]] = {}
        token: str | None = None
        max_keys = self.rng.choice((3, 7, 1000))
        began = time.perf_counter()
        pages = 0
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=max_keys, **extra)
            pages += 1
            for entry in page.get("Contents", []):
                if entry["Key"] in listed:
                    raise Mismatch(f"key {entry['Key']!r} listed twice (MaxKeys={max_keys}, page {pages})")
                listed[entry["Key"]] = (entry["Size"], entry["ETag"])
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
            if not token:
                raise Failure(f"truncated listing without NextContinuationToken (request id {request_id(page)})")
        self.stats.ok("list", time.perf_counter() - began)
        problems = []
        for key, version in self.known.items():
            if key not in listed:
                problems.append(f"{key!r} missing")
            elif listed[key] != (version.content.size, version.etag):
                problems.append(f"{key!r} listed as {listed[key]}, PUT as {(version.content.size, version.etag)}")
        extra_keys = sorted(set(listed) - set(self.known) - self.doubtful)
        problems += [f"{key!r} listed but not committed (deleted?)" for key in extra_keys]
        if problems:
            raise Mismatch(f"ListObjectsV2 (MaxKeys={max_keys}, {pages} pages): " + "; ".join(problems[:5]))

    async def op_multipart(self, key: str) -> None:
        count = self.rng.choice((2, 3))
        sizes = [PART_MIN + self.rng.choice((0, self.rng.randrange(1, MiB))) for _ in range(count - 1)]
        sizes.append(self.rng.randint(MIN_SIZE, PART_MIN))
        content = self.new_content(sum(sizes))
        began = time.perf_counter()
        seconds = 0.0
        created = await self.client.create_multipart_upload(Bucket=BUCKET, Key=key)
        upload = created["UploadId"]
        seconds += time.perf_counter() - began
        parts, digests, offset = [], [], 0
        try:
            for number, size in enumerate(sizes, start=1):
                body = content.data(offset, offset + size)
                offset += size
                began = time.perf_counter()
                answer = await self.client.upload_part(
                    Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body
                )
                seconds += time.perf_counter() - began
                digest = hashlib.md5(body).digest()
                if answer.get("ETag") != etag_of(digest):
                    raise Mismatch(f"UploadPart {number} ETag {answer.get('ETag')} != MD5 {etag_of(digest)}")
                digests.append(digest)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            began = time.perf_counter()
            done = await self.client.complete_multipart_upload(
                Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
            seconds += time.perf_counter() - began
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload)
            raise
        self.stats.ok("multipart", seconds, content.size)
        self.doubtful.discard(key)
        self.known[key] = Version(content, done.get("ETag", ""))
        expected = f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{count}"'
        if done.get("ETag") != expected:
            raise Mismatch(f"Complete ETag {done.get('ETag')} != {expected} (request id {request_id(done)})")
        await self.op_get(key)  # verified like any GET, and timed as one

    async def op_delete(self, key: str) -> None:
        began = time.perf_counter()
        await self.client.delete_object(Bucket=BUCKET, Key=key)
        self.stats.ok("delete", time.perf_counter() - began)
        del self.known[key]
        self.doubtful.discard(key)
        try:
            response = await self.client.get_object(Bucket=BUCKET, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 404 and code == "NoSuchKey":
                return
            raise Failure(f"GET after DELETE: {describe(exc)}, expected 404 NoSuchKey") from None
        async with response["Body"] as body:
            await body.read()
        raise Mismatch(f"GET after DELETE answered {response['ResponseMetadata']['HTTPStatusCode']}, not 404")


# --- the gateway's memory --------------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """VmRSS of a process and its descendants, in bytes (0 for one that has gone)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * KiB
    return total


class RssSampler(threading.Thread):
    """Samples RSS every RSS_INTERVAL on its own thread, so a busy event loop cannot delay it."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[int] = [tree_rss(pid)]
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(RSS_INTERVAL):
            self.samples.append(tree_rss(self.pid))

    def stop(self) -> dict[str, float]:
        self.halt.set()
        self.join()
        self.samples.append(tree_rss(self.pid))
        return {
            "start_mib": self.samples[0] / MiB,
            "peak_mib": max(self.samples) / MiB,
            "end_mib": self.samples[-1] / MiB,
            "samples": len(self.samples),
        }


# --- one store -------------------------------------------------------------------------------------


async def drive(endpoint: str, clients: int, seconds: float, seed: int) -> tuple[Stats, float]:
    """``clients`` workers over one aiobotocore client whose pool holds a connection for each."""
    config = AioConfig(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},  # a failing request shows instead of being retried away
        max_pool_connections=clients,
        connect_timeout=10,
        read_timeout=READ_TIMEOUT,
    )
    session = aiobotocore.session.get_session()
    stats = Stats()
    async with session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=config,
    ) as client:
        began = time.monotonic()
        workers = [Worker(client, i, seed, stats, began + seconds) for i in range(clients)]
        await asyncio.gather(*(w.run() for w in workers))
        elapsed = time.monotonic() - began
    return stats, elapsed


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 values is the 99th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def server_findings(gateway: Gateway, access_log: Path) -> dict[str, Any]:
    """5xx lines of the access log and WARNING/ERROR lines of the application log, verbatim."""
    fivexx, statuses = [], {}
    with contextlib.suppress(OSError):
        for line in access_log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                status = int(json.loads(line).get("status") or 0)
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 500:
                    fivexx.append(line)
    problems = gateway.problems()
    return {
        "access_log_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "access_log_5xx": len(fivexx),
        "access_log_5xx_lines": fivexx[:SHOWN],
        "log_problems": len(problems),
        "log_problem_lines": problems[: 4 * SHOWN],
    }


def run_store(store: str, args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    """Start the store's processes, load them, stop them; the figures of one store."""
    extra_env: dict[str, str] = {}
    seaweed: SeaweedFS | None = None
    if store == "s3":
        log("starting SeaweedFS")
        seaweed = start_seaweed(tmp / "seaweed")
        stack.callback(seaweed.stop)
        extra_env = seaweed.env()
    access_log = tmp / "gateway" / "access.log"
    access_log.parent.mkdir(parents=True, exist_ok=True)
    gateway = start_gateway(tmp / "gateway", f"s4-{store}", ("--access-log", str(access_log)), extra_env)
    stack.callback(gateway.stop)
    log(f"{store}: gateway pid {gateway.process.pid} at {gateway.endpoint}")
    gateway.client().create_bucket(Bucket=BUCKET)
    sampler = RssSampler(gateway.process.pid)
    sampler.start()
    log(f"{store}: {args.clients} clients for {args.seconds:g} s")
    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    watched = {"gateway": gateway.process.pid, "load generator": os.getpid()}
    if seaweed is not None and seaweed.process is not None:
        watched["seaweedfs"] = seaweed.process.pid
    # This process is the parent of the gateway and SeaweedFS: count it alone.
    cpu_before = {name: tree_cpu_seconds(pid, pid != os.getpid()) for name, pid in watched.items()}
    try:
        stats, elapsed = asyncio.run(drive(gateway.endpoint, args.clients, args.seconds, args.seed))
    finally:
        rss = sampler.stop()
    # CPU seconds per wall second: near 1.0 for the generator means its one thread was the limit.
    cpu = {
        name: (tree_cpu_seconds(pid, pid != os.getpid()) - cpu_before[name]) / elapsed for name, pid in watched.items()
    }
    rss["hwm_mib"] = gateway.proc_status("VmHWM") / MiB if gateway.alive() else float("nan")
    alive = gateway.alive()
    gateway.stop()
    if seaweed is not None:
        seaweed.stop()
    ops = {}
    for op in OPS:
        latencies = stats.latencies[op]
        ops[op] = {
            "count": len(latencies),
            "errors": stats.errors[op],
            "mismatches": stats.mismatches[op],
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "mb_per_s": stats.payload[op] / MB / elapsed,
            "payload_bytes": stats.payload[op],
        }
    total_ops = sum(v["count"] for v in ops.values())
    return {
        "store": store,
        "clients": args.clients,
        "seconds": elapsed,
        "ops": ops,
        "total_ops": total_ops,
        "ops_per_s": total_ops / elapsed,
        "errors": sum(stats.errors.values()),
        "mismatches": sum(stats.mismatches.values()),
        "error_details": stats.error_details,
        "mismatch_details": stats.mismatch_details,
        "rss": rss,
        "cpu_per_wall_second": cpu,
        "gateway_alive_at_end": alive,
        "loadavg_before": loadavg_before,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "server": server_findings(gateway, access_log),
    }


# --- report ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on; they mean little without it."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024 * MiB), 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "aiobotocore": aiobotocore.__version__,
        "botocore": botocore.__version__,
        "boto3": boto3.__version__,
    }


def print_store(result: dict[str, Any]) -> None:
    rule = "-" * 78
    print(f"\n{result['store']}: {result['clients']} clients, {result['seconds']:.1f} s")
    print(rule)
    print(f"{'operation':<10} {'count':>7} {'errors':>7} {'mismatch':>8} {'p50 ms':>9} {'p99 ms':>9} {'MB/s':>8}")
    print(rule)
    for op, row in result["ops"].items():
        mbs = f"{row['mb_per_s']:8.1f}" if row["payload_bytes"] else f"{'':>8}"
        print(
            f"{op:<10} {row['count']:>7} {row['errors']:>7} {row['mismatches']:>8}"
            f" {row['p50_ms']:>9.1f} {row['p99_ms']:>9.1f} {mbs}"
        )
    print(rule)
    print(
        f"{'all':<10} {result['total_ops']:>7} {result['errors']:>7} {result['mismatches']:>8}"
        f"   {result['ops_per_s']:.1f} ops/s"
    )
    rss = result["rss"]
    print(
        f"gateway RSS: start {rss['start_mib']:.0f} MiB, peak {rss['peak_mib']:.0f} MiB, end {rss['end_mib']:.0f} MiB"
        f" (VmHWM {rss['hwm_mib']:.0f} MiB, {rss['samples']} samples)"
    )
    cores = ", ".join(f"{name} {share:.2f}" for name, share in result["cpu_per_wall_second"].items())
    print(f"CPU seconds per second: {cores}")
    print(f"load average before / after: {' '.join(result['loadavg_before'])} / {' '.join(result['loadavg_after'])}")
    server = result["server"]
    print(f"access log statuses: {server['access_log_statuses']}; server WARNING/ERROR lines: {server['log_problems']}")
    for title, lines in (
        ("errors", result["error_details"]),
        ("mismatches", result["mismatch_details"]),
        ("access log 5xx", server["access_log_5xx_lines"]),
        ("server log", server["log_problem_lines"]),
    ):
        if lines:
            print(f"first {title}:")
            for line in lines:
                print(f"  {line}")


def verdict(result: dict[str, Any], max_rss_mib: float | None) -> list[str]:
    """Why a store's run failed (nothing when it passed); also recorded in its result."""
    store, reasons = result["store"], []
    if result["errors"]:
        reasons.append(f"{store}: {result['errors']} errors")
    if result["mismatches"]:
        reasons.append(f"{store}: {result['mismatches']} mismatches")
    if not result["gateway_alive_at_end"]:
        reasons.append(f"{store}: the gateway exited during the run")
    # VmHWM catches a spike between two samples; the samples catch children VmHWM does not count.
    peak = max(result["rss"]["peak_mib"], result["rss"]["hwm_mib"])
    if max_rss_mib is not None and peak > max_rss_mib:
        reasons.append(f"{store}: RSS peak {peak:.0f} MiB > --max-rss-mib {max_rss_mib:g}")
    result["failures"] = reasons
    return reasons


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--seconds", type=float, default=60, help="load duration per store (default 60)")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated: embedded, s3 (default both)")
    parser.add_argument("--max-rss-mib", type=float, default=None, help="fail when the gateway's RSS peaks above")
    parser.add_argument("--seed", type=int, default=1, help="seed of the operation mix and contents (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.store_list = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = sorted(set(args.store_list) - set(STORES))
    if unknown or not args.store_list:
        parser.error(f"unknown store(s) {unknown}; choose from {', '.join(STORES)}")
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    return args


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C, so the finally blocks stop every process started here."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    global POOLS
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Also when started in the background, where SIGINT arrives ignored: Ctrl-C and kill -INT both stop it cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    info = machine()
    log(f"building content pools ({TEXT_POOL // MiB} MiB text, {NOISE_POOL // MiB} MiB noise)")
    POOLS = Pools()
    print(f"command: {command}")
    print(f"machine: {info['nproc']} cores ({info['cpu_model']}), {info['memory_gib']} GiB, Python {info['python']}")
    results, failures = [], []
    with tempfile.TemporaryDirectory(prefix="s4-load-") as scratch:
        for store in args.store_list:
            with contextlib.ExitStack() as stack:
                result = run_store(store, args, Path(scratch) / store, stack)
            results.append(result)
            print_store(result)  # as soon as it is known: a later store's failure does not lose it
            sys.stdout.flush()
            failures += verdict(result, args.max_rss_mib)
    if args.out is not None:
        document = {"command": command, "machine": info, "args": vars(args) | {"out": str(args.out)}, "stores": results}
        document["args"].pop("store_list", None)
        args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
        log(f"wrote {args.out}")
    print("\nresult:", "FAIL: " + "; ".join(failures) if failures else "PASS (zero errors, zero mismatches)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the processes were stopped on the way out, by their ExitStacks
        log("interrupted: every process started here was stopped")
        sys.exit(130)
