"""What a PUT and a GET cost the gateway per byte, beside the work itself, and how it scales with workers.

    .venv/bin/python benchmarks/scale_bench.py [--sizes 256,128,64] [--workers 1,2] [--clients C]
        [--rounds 3] [--store-dir DIR] [--out results.json]

On the same three files, in one run:

1. The floor: the CPU the work itself needs, on one thread of this process (``time.thread_time``,
   best of two): for a PUT, zstd -3 of its 4 MiB frames when that saves at least FLOOR_GAIN of the
   bytes, MD5 (the ETag), SHA-256 (the signed payload) and CRC32 (boto3's checksum); for a GET,
   decompressing those frames (when they were compressed) and the CRC32C check of every byte.
2. The gateway's CPU seconds per GB, per operation and file: utime + stime from
   ``/proc/<pid>/stat`` of the gateway's processes only (``s4 serve --workers 1``: the supervisor
   and its worker), around one boto3 ``upload_file`` / ``download_file`` made by a client in another
   process (classic transfer client, 8 MiB parts, 8 threads); median of ``--rounds``. Downloads are
   checked (SHA-256) in the first round.
3. Throughput (MB/s) with 1, 2, ... workers: ``--clients`` client processes (default two per worker
   of the largest count, the same for every count) each upload, then download, the file under a key
   of their own at once; bytes moved over the wall time of the slowest. Gateways of every count run
   side by side and take turns, round by round.

Files: text = the Debian package index of this machine's apt lists (``lz4 -dc``), repeated
(generated text from the stdlib sources where there is none); binary = shared libraries from
/usr/lib; incompressible = .deb archives from /var/cache/apt/archives (random bytes where there
are none). The gateway's data directory and the files lie in ``--store-dir`` (default /dev/shm:
tmpfs, so the disk's noise stays out; pass a directory on disk to include it). Only 127.0.0.1 is
contacted; every process started here is stopped by its own handle.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import zstandard
from _gateway import ACCESS_KEY, REGION, SECRET_KEY, Gateway, start_gateway
from awscrt import checksums
from botocore.config import Config
from proxy_bench import log, machine, transfer_config

from s4.bench.corpus import stdlib_text

MiB = 1024 * 1024
GB = 1e9
MB = 1e6
BUCKET = "scale"
CLASSES = ("text", "binary", "incompressible")
FRAME = 4 * MiB
"""The gateway's frame size for bodies of 1-100 MiB (an 8 MiB part): the floor compresses the same frames."""
FLOOR_GAIN = 0.03
"""zstd counts in the floor only where it saves at least this share of the bytes (the gateway stores the
rest as it is, and an ideal one would not try)."""
APT_LISTS = Path("/var/lib/apt/lists")
APT_ARCHIVES = Path("/var/cache/apt/archives")
LIB_DIRS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib"))
GOAL_FLOOR_RATIO = 1.3
GOAL_SCALING = 0.8


# --- the files --------------------------------------------------------------------------------------


def _fill(path: Path, size: int, pieces: Callable[[], Iterator[bytes]]) -> None:
    """Write ``size`` bytes to ``path`` from ``pieces()``, started again as often as needed."""
    written = 0
    with path.open("wb") as out:
        while written < size:
            for piece in pieces():
                piece = piece[: size - written]
                out.write(piece)
                written += len(piece)
                if written >= size:
                    break


def _package_index() -> tuple[bytes, str] | None:
    for packed in sorted(APT_LISTS.glob("*_Packages.lz4")):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            data = subprocess.run(["lz4", "-dc", str(packed)], capture_output=True, check=True, timeout=120).stdout
            if len(data) > 8 * MiB:
                return data, f"Debian package index {packed.name} ({len(data) / MiB:.0f} MiB), repeated"
    for plain in sorted(APT_LISTS.glob("*_Packages")):
        data = plain.read_bytes()
        if len(data) > 8 * MiB:
            return data, f"Debian package index {plain.name} ({len(data) / MiB:.0f} MiB), repeated"
    return None


def _files_of(directories: tuple[Path, ...], pattern: str, limit: int) -> list[Path]:
    """Regular files matching ``pattern`` (sorted, so every run reads the same ones) up to ``limit`` bytes."""
    found, total = [], 0
    for directory in directories:
        for path in sorted(directory.glob(pattern)):
            if path.is_file() and not path.is_symlink() and total < limit:
                found.append(path)
                total += path.stat().st_size
    return found if total >= limit else []


def _stream(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with contextlib.suppress(OSError):
            yield path.read_bytes()


def _random_pieces() -> Iterator[bytes]:
    while True:
        yield os.urandom(4 * MiB)


def build_files(directory: Path, sizes: dict[str, int]) -> dict[str, tuple[Path, str]]:
    """The three files of the benchmark, and where their bytes come from."""
    files: dict[str, tuple[Path, str]] = {}
    index = _package_index()
    if index is not None:
        text, source = index
    else:
        text = stdlib_text(32 * MiB).data
        source = "the standard library's sources (no Debian package index here), repeated"
    files["text"] = (directory / "text.bin", source)
    _fill(files["text"][0], sizes["text"], lambda: iter([text]))
    libraries = _files_of(LIB_DIRS, "*.so*", sizes["binary"])
    files["binary"] = (directory / "binary.bin", f"{len(libraries)} shared libraries from {LIB_DIRS[0]}")
    _fill(files["binary"][0], sizes["binary"], lambda: _stream(libraries))
    debs = _files_of((APT_ARCHIVES,), "*.deb", sizes["incompressible"])
    if debs:
        files["incompressible"] = (directory / "incompressible.bin", f"{len(debs)} .deb archives from {APT_ARCHIVES}")
        _fill(files["incompressible"][0], sizes["incompressible"], lambda: _stream(debs))
    else:
        files["incompressible"] = (directory / "incompressible.bin", "random bytes (no .deb archives here)")
        _fill(files["incompressible"][0], sizes["incompressible"], _random_pieces)
    return files


# --- 1. the floor -------------------------------------------------------------------------------------


def _cpu(fn: Callable[[], object], repeat: int = 2) -> float:
    """Least CPU seconds of this thread that ``fn`` took over ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best


def floor(path: Path) -> dict[str, float]:
    """CPU seconds per GB the work of a PUT and a GET of ``path`` needs on one core (see the module doc)."""
    data = path.read_bytes()
    view = memoryview(data)
    frames = [view[i : i + FRAME] for i in range(0, len(view), FRAME)]
    compressor = zstandard.ZstdCompressor(level=3)
    compressed = [compressor.compress(frame) for frame in frames]
    ratio = sum(map(len, compressed)) / len(data)
    gains = ratio <= 1 - FLOOR_GAIN
    decompressor = zstandard.ZstdDecompressor()
    per_gb = GB / len(data)
    parts = {
        "zstd3": _cpu(lambda: [compressor.compress(frame) for frame in frames]) * per_gb,
        "md5": _cpu(lambda: hashlib.md5(data).digest()) * per_gb,
        "sha256": _cpu(lambda: hashlib.sha256(data).digest()) * per_gb,
        "crc32": _cpu(lambda: checksums.crc32(data)) * per_gb,
        "zlib_crc32": _cpu(lambda: zlib.crc32(data)) * per_gb,
        "unzstd": _cpu(lambda: [decompressor.decompress(c, max_output_size=FRAME) for c in compressed]) * per_gb,
        "crc32c": _cpu(lambda: [checksums.crc32c(frame) for frame in frames]) * per_gb,
    }
    crc32 = min(parts["crc32"], parts["zlib_crc32"])
    put = (parts["zstd3"] if gains else 0.0) + parts["md5"] + parts["sha256"] + crc32
    get = (parts["unzstd"] if gains else 0.0) + parts["crc32c"]
    return {"put": put, "get": get, "zstd3_ratio": ratio, "zstd_counted": gains, **parts}


# --- clients, in processes of their own ---------------------------------------------------------------

_CLIENTS: dict[str, object] = {}


def _client(endpoint: str):
    """One boto3 client per endpoint and client process (the spawned process imported this module)."""
    if endpoint not in _CLIENTS:
        _CLIENTS[endpoint] = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=16),
        )
    return _CLIENTS[endpoint]


def client_op(endpoint: str, op: str, key: str, path: str, scratch: str, check: bool) -> tuple[float, str | None]:
    """One upload_file or download_file (in a client process); its wall seconds and, if asked, the
    SHA-256 of what was downloaded."""
    client = _client(endpoint)
    started = time.monotonic()
    if op == "put":
        client.upload_file(path, BUCKET, key, Config=transfer_config())
    else:
        client.download_file(BUCKET, key, scratch, Config=transfer_config())
    seconds = time.monotonic() - started
    digest = None
    if op == "get" and check:
        digest = _sha256(Path(scratch))
    if op == "get":
        os.unlink(scratch)
    return seconds, digest


def _ready() -> int:
    """Start a client process before anything is timed (its imports are done by then)."""
    return os.getpid()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


# --- 2. the gateway's CPU per GB ----------------------------------------------------------------------


def gateway_cost(
    gateway: Gateway, pool, files: dict[str, tuple[Path, str]], digests: dict[str, str], rounds: int, scratch: Path
) -> dict[str, dict[str, list[float]]]:
    """CPU seconds per GB of the gateway's processes for each (file, op), one client at a time."""
    cost: dict[str, dict[str, list[float]]] = {
        name: {"put": [], "get": [], "put_mb_s": [], "get_mb_s": []} for name in files
    }
    for round_no in range(rounds):
        for name, (path, _) in files.items():
            size = path.stat().st_size
            for op in ("put", "get"):
                before = gateway.cpu_seconds()
                seconds, digest = pool.apply(
                    client_op, (gateway.endpoint, op, f"cost/{name}", str(path), str(scratch / f"cost-{name}"), True)
                )
                cpu = gateway.cpu_seconds() - before
                if op == "get" and round_no == 0 and digest != digests[name]:
                    raise RuntimeError(f"GET of {name} returned other bytes (sha256 {digest} != {digests[name]})")
                cost[name][op].append(cpu * GB / size)
                cost[name][op + "_mb_s"].append(size / MB / seconds)
                log(f"cost {name} {op}: {cpu * GB / size:.2f} cpu-s/GB, {size / MB / seconds:.0f} MB/s")
    return cost


# --- 3. throughput against workers --------------------------------------------------------------------


def throughput(
    gateways: dict[int, Gateway], pool, clients: int, files: dict[str, tuple[Path, str]], rounds: int, scratch: Path
) -> dict[str, dict[str, dict[int, list[dict[str, float]]]]]:
    """MB/s of ``clients`` concurrent transfers of each file, for every worker count, taking turns."""
    results: dict[str, dict[str, dict[int, list[dict[str, float]]]]] = {
        name: {op: {n: [] for n in gateways} for op in ("put", "get")} for name in files
    }
    for _ in range(rounds):
        for name, (path, _) in files.items():
            size = path.stat().st_size
            for op in ("put", "get"):
                for n, gateway in gateways.items():
                    jobs = [
                        (gateway.endpoint, op, f"load/{name}/{c}", str(path), str(scratch / f"load-{c}"), False)
                        for c in range(clients)
                    ]
                    before = gateway.cpu_seconds()
                    started = time.monotonic()
                    pool.starmap(client_op, jobs, chunksize=1)
                    wall = time.monotonic() - started
                    cpu = gateway.cpu_seconds() - before
                    moved = size * clients
                    figure = {"mb_s": moved / MB / wall, "gateway_cores": cpu / wall, "cpu_s_per_gb": cpu * GB / moved}
                    results[name][op][n].append(figure)
                    log(f"load {name} {op} workers={n}: {figure['mb_s']:.0f} MB/s, gateway {cpu / wall:.2f} cores")
    return results


# --- report -----------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(floors: dict, cost: dict, load: dict, workers: list[int]) -> dict:
    summary: dict = {"cost": {}, "scaling": {}}
    for name in floors:
        row = {}
        for op in ("put", "get"):
            gateway = _median(cost[name][op])
            row[op] = {"gateway": gateway, "floor": floors[name][op], "ratio": gateway / floors[name][op]}
            row[op]["mb_s_one_client"] = _median(cost[name][op + "_mb_s"])
        summary["cost"][name] = row
        summary["scaling"][name] = {}
        for op in ("put", "get"):
            per_n = {n: _median([f["mb_s"] for f in load[name][op][n]]) for n in workers}
            base = per_n[workers[0]]
            summary["scaling"][name][op] = {
                str(n): {"mb_s": per_n[n], "speedup": per_n[n] / base if base else float("nan")} for n in workers
            }
    return summary


def markdown(summary: dict, workers: list[int], clients: int) -> str:
    cost_rows = []
    for name, row in summary["cost"].items():
        put, get = row["put"], row["get"]
        cost_rows.append(
            [
                name,
                f"{put['gateway']:.2f}",
                f"{put['floor']:.2f}",
                f"{put['ratio']:.2f}x",
                f"{get['gateway']:.2f}",
                f"{get['floor']:.2f}",
                f"{get['ratio']:.2f}x",
            ]
        )
    cost = _md_table(
        ["file", "PUT gateway cpu-s/GB", "PUT floor", "PUT ratio", "GET gateway", "GET floor", "GET ratio"],
        cost_rows,
    )
    scale_rows = []
    last = workers[-1]
    for name, ops in summary["scaling"].items():
        for op, per_n in ops.items():
            figures = [f"{per_n[str(n)]['mb_s']:.0f}" for n in workers]
            speedup = per_n[str(last)]["speedup"]
            goal = "met" if speedup >= GOAL_SCALING * last / workers[0] else "NOT met"
            scale_rows.append([name, op.upper(), *figures, f"{speedup:.2f}x", goal])
    headers = ["file", "op", *(f"{n} worker{'s' if n > 1 else ''} MB/s" for n in workers)]
    headers += [f"{last} / {workers[0]}", f">= {GOAL_SCALING}x{last // workers[0]}"]
    scale = _md_table(headers, scale_rows)
    return f"{cost}\n\nThroughput, {clients} boto3 client processes at once:\n\n{scale}\n"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def goals(summary: dict) -> list[str]:
    lines = []
    for name, row in summary["cost"].items():
        put, get = row["put"], row["get"]
        if name != "incompressible":
            met = "met" if put["ratio"] <= GOAL_FLOOR_RATIO else "NOT met"
            lines.append(f"{name}: PUT <= {GOAL_FLOOR_RATIO}x floor ({put['ratio']:.2f}x): {met}")
        if get["floor"] > 1.0:
            met = "met" if get["ratio"] <= GOAL_FLOOR_RATIO else "NOT met"
            lines.append(f"{name}: GET <= {GOAL_FLOOR_RATIO}x floor ({get['ratio']:.2f}x): {met}")
    return lines


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,128,64", help="MiB of the text, binary and incompressible files")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (the first is the base)")
    parser.add_argument("--clients", type=int, help="client processes for the throughput (default 2 x max workers)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the CPU measure (throughput: one fewer)")
    parser.add_argument("--store-dir", default="/dev/shm", help="where the files and the data directories go")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if len(sizes) != len(CLASSES) or min(sizes) < 1:
        parser.error("--sizes takes three sizes in MiB")
    args.sizes = dict(zip(CLASSES, (s * MiB for s in sizes), strict=True))
    args.workers = sorted({int(n) for n in args.workers.split(",")})
    args.clients = args.clients or 2 * args.workers[-1]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    command = "benchmarks/scale_bench.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    base = Path(args.store_dir) if Path(args.store_dir).is_dir() else None
    with tempfile.TemporaryDirectory(prefix="s4-scale-", dir=base) as tmp, contextlib.ExitStack() as stack:
        tmp_path = Path(tmp)
        info["store_dir"] = str(tmp_path)
        info["store_fs"] = subprocess.run(
            ["stat", "-f", "-c", "%T", tmp], capture_output=True, text=True
        ).stdout.strip()
        log(f"building the files in {tmp} ({info['store_fs']})")
        files = build_files(tmp_path, args.sizes)
        digests = {name: _sha256(path) for name, (path, _) in files.items()}
        floors = {}
        for name, (path, source) in files.items():
            floors[name] = floor(path)
            log(f"floor {name} ({source}): PUT {floors[name]['put']:.2f}, GET {floors[name]['get']:.2f} cpu-s/GB")
        gateways: dict[int, Gateway] = {}
        for n in args.workers:
            gateways[n] = start_gateway(tmp_path / f"gateway-{n}", f"workers-{n}", ("--workers", str(n)))
            stack.callback(gateways[n].stop)
            gateways[n].client().create_bucket(Bucket=BUCKET)
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(args.clients))
        pool.starmap(_ready, [()] * args.clients)
        cost = gateway_cost(gateways[args.workers[0]], pool, files, digests, args.rounds, tmp_path)
        load = throughput(gateways, pool, args.clients, files, max(1, args.rounds - 1), tmp_path)
        problems = [line for g in gateways.values() for line in g.problems()]
    summary = summarize(floors, cost, load, args.workers)
    report = {
        "command": command,
        "machine": info,
        "files": {name: {"source": source, "bytes": args.sizes[name]} for name, (_, source) in files.items()},
        "clients": args.clients,
        "workers": args.workers,
        "floor": floors,
        "cost_raw": cost,
        "throughput_raw": {
            k: {op: {str(n): v for n, v in per.items()} for op, per in d.items()} for k, d in load.items()
        },
        "summary": summary,
        "goals": goals(summary),
        "problems": problems,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"Command: `{command}`\n")
    print(f"Machine: {info['nproc']} cores ({info['cpu_model']}), Python {info['python']}, boto3 {info['boto3']}; ")
    print(f"store and files on {info['store_fs']}; load average at start {' '.join(info['loadavg_start'])}\n")
    for name, meta in report["files"].items():
        print(f"- {name}: {meta['bytes'] // MiB} MiB, {meta['source']}")
    print()
    print(markdown(summary, args.workers, args.clients))
    for line in report["goals"]:
        print(f"- {line}")
    for line in problems:
        print(f"gateway: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
