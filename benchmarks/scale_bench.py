"""What a PUT and a GET cost the gateway per byte, beside the work itself, and how it scales with workers.

    .venv/bin/python benchmarks/scale_bench.py [--sizes 256,128,64] [--workers 1,2] [--clients C]
        [--rounds 3] [--store-dir DIR] [--out results.json]

On the same three files, in one run:

1. The floor: the CPU the work itself needs, on one thread of this process (``time.thread_time``,
   least of three, before and after the gateways' runs): for a PUT, zstd -3 of its 4 MiB frames
   when that saves at least FLOOR_GAIN of the bytes, MD5 (the ETag), SHA-256 (the signed payload)
   and CRC32 (boto3's checksum); for a GET, decompressing those frames (when they were compressed)
   and the CRC32C check of every byte.
2. The gateway's CPU seconds per GB, per operation and file: utime + stime from
   ``/proc/<pid>/stat`` of the gateway's processes only (``s4 serve --workers 1``: one process;
   with more workers, the supervisor and its workers), around one boto3 ``upload_file`` /
   ``download_file`` made by a client in another process (classic transfer client, 8 MiB parts,
   8 threads); median of ``--rounds``. Downloads are checked (SHA-256) in the first round.
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

import zstandard
from _gateway import Gateway, client_of, start_gateway, tree_cpu_seconds
from awscrt import checksums
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


def _cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    """Least CPU seconds of this thread that ``fn`` took over ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best


def floor(path: Path, earlier: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds per GB the work of a PUT and a GET of ``path`` needs on one core (see the module doc).

    Measured before and after the gateways (``earlier``: the first measure), each part the least of
    both: CPU time per byte grows when other processes share the core's caches, never shrinks.
    """
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
    if earlier is not None:
        parts = {name: min(value, earlier[name]) for name, value in parts.items()}
    crc32 = min(parts["crc32"], parts["zlib_crc32"])
    put = (parts["zstd3"] if gains else 0.0) + parts["md5"] + parts["sha256"] + crc32
    get = (parts["unzstd"] if gains else 0.0) + parts["crc32c"]
    return {"put": put, "get": get, "zstd3_ratio": ratio, "zstd_counted": gains, **parts}


# --- clients, in processes of their own ---------------------------------------------------------------

_CLIENTS: dict[str, object] = {}


def _client(endpoint: str):
    """One boto3 client per endpoint and client process (the spawned process imported this module)."""
    if endpoint not in _CLIENTS:
        _CLIENTS[endpoint] = client_of(endpoint)
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
    gateways: dict[str, Gateway],
    pool,
    files: dict[str, tuple[Path, str]],
    digests: dict[str, str],
    rounds: int,
    scratch: Path,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """CPU seconds per GB of the gateway's processes for each (code tree, file, op), one client at a time.

    With several trees, their gateways take turns op by op (the order turned each round), so the
    noise of a shared machine falls on all of them alike and their ratio holds better than the figures.
    """
    cost = {tree: {name: {"put": [], "get": [], "put_mb_s": [], "get_mb_s": []} for name in files} for tree in gateways}
    order = list(gateways)
    for round_no in range(rounds):
        for name, (path, _) in files.items():
            size = path.stat().st_size
            for op in ("put", "get"):
                for tree in order[round_no % len(order) :] + order[: round_no % len(order)]:
                    gateway = gateways[tree]
                    before = gateway.cpu_seconds()
                    seconds, digest = pool.apply(
                        client_op, (gateway.endpoint, op, f"cost/{name}", str(path), str(scratch / "cost"), True)
                    )
                    cpu = gateway.cpu_seconds() - before
                    if op == "get" and round_no == 0 and digest != digests[name]:
                        raise RuntimeError(f"{tree}: GET of {name} returned other bytes ({digest} != {digests[name]})")
                    cost[tree][name][op].append(cpu * GB / size)
                    cost[tree][name][op + "_mb_s"].append(size / MB / seconds)
                    log(f"cost {tree} {name} {op}: {cpu * GB / size:.2f} cpu-s/GB, {size / MB / seconds:.0f} MB/s")
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
                    before, clients_before = gateway.cpu_seconds(), _clients_cpu()
                    started = time.monotonic()
                    pool.starmap(client_op, jobs, chunksize=1)
                    wall = time.monotonic() - started
                    cpu, clients_cpu = gateway.cpu_seconds() - before, _clients_cpu() - clients_before
                    moved = size * clients
                    figure = {
                        "mb_s": moved / MB / wall,
                        "gateway_cores": cpu / wall,
                        "clients_cores": clients_cpu / wall,
                        "cpu_s_per_gb": cpu * GB / moved,
                    }
                    results[name][op][n].append(figure)
                    log(f"load {name} {op} workers={n}: {figure['mb_s']:.0f} MB/s, gateway {cpu / wall:.2f} cores")
    return results


def _clients_cpu() -> float:
    """CPU seconds of the client processes (this process's multiprocessing children; the gateways are not)."""
    return sum(tree_cpu_seconds(child.pid, descendants=False) for child in multiprocessing.active_children())


# --- report -----------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(floors: dict, cost: dict, load: dict | None, workers: list[int]) -> dict:
    """Medians; with several code trees, each one's cost against the first's (median of per-round ratios)."""
    summary: dict = {"cost": {}, "versus": {}, "scaling": {}}
    trees = list(cost)
    for tree in trees:
        summary["cost"][tree] = {}
        for name in floors:
            row = {}
            for op in ("put", "get"):
                gateway = _median(cost[tree][name][op])
                row[op] = {"gateway": gateway, "floor": floors[name][op], "ratio": gateway / floors[name][op]}
                row[op]["mb_s_one_client"] = _median(cost[tree][name][op + "_mb_s"])
            summary["cost"][tree][name] = row
    for tree in trees[1:]:
        summary["versus"][tree] = {
            name: {
                op: _median([b / a for a, b in zip(cost[trees[0]][name][op], cost[tree][name][op], strict=True) if a])
                for op in ("put", "get")
            }
            for name in floors
        }
    for name in floors if load else ():
        summary["scaling"][name] = {}
        for op in ("put", "get"):
            per_n = {n: _median([f["mb_s"] for f in load[name][op][n]]) for n in workers}
            cores = {n: _median([f["gateway_cores"] for f in load[name][op][n]]) for n in workers}
            clients = {n: _median([f.get("clients_cores", 0.0) for f in load[name][op][n]]) for n in workers}
            base = per_n[workers[0]]
            summary["scaling"][name][op] = {
                str(n): {
                    "mb_s": per_n[n],
                    "speedup": per_n[n] / base if base else float("nan"),
                    "cores": cores[n],
                    "clients_cores": clients[n],
                }
                for n in workers
            }
    return summary


def markdown(summary: dict, workers: list[int], clients: int) -> str:
    parts = []
    trees = list(summary["cost"])
    for tree in trees:
        rows = []
        for name, row in summary["cost"][tree].items():
            put, get = row["put"], row["get"]
            rows.append([name, *_cost_cells(put), *_cost_cells(get)])
        headers = ["file", "PUT gateway cpu-s/GB", "PUT floor", "PUT ratio", "GET gateway", "GET floor", "GET ratio"]
        title = f"Gateway `{tree}`, one client:\n\n" if len(trees) > 1 else ""
        parts.append(title + _md_table(headers, rows))
    if summary["versus"]:
        rows = []
        for name in summary["cost"][trees[0]]:
            for op in ("put", "get"):
                cells = [f"{summary['cost'][tree][name][op]['gateway']:.2f}" for tree in trees]
                cells += [f"{summary['versus'][tree][name][op]:.2f}" for tree in trees[1:]]
                rows.append([name, op.upper(), *cells])
        headers = ["file", "op", *(f"{t} cpu-s/GB" for t in trees), *(f"{t} / {trees[0]}" for t in trees[1:])]
        parts.append("Side by side (ratio: median of the per-round ratios):\n\n" + _md_table(headers, rows))
    if summary["scaling"]:
        rows = []
        last = workers[-1]
        for name, ops in summary["scaling"].items():
            for op, per_n in ops.items():
                figures = [
                    f"{per_n[str(n)]['mb_s']:.0f} ({per_n[str(n)]['cores']:.2f} / {per_n[str(n)]['clients_cores']:.2f})"
                    for n in workers
                ]
                speedup = per_n[str(last)]["speedup"]
                goal = "met" if speedup >= GOAL_SCALING * last / workers[0] else "NOT met"
                rows.append([name, op.upper(), *figures, f"{speedup:.2f}x", goal])
        each = "MB/s (cores: gateway / clients)"
        headers = ["file", "op", *(f"{n} worker{'s' if n > 1 else ''}: {each}" for n in workers)]
        headers += [f"{last} / {workers[0]}", f">= {GOAL_SCALING} x {last // workers[0]}"]
        parts.append(f"Throughput, {clients} boto3 client processes at once:\n\n" + _md_table(headers, rows))
    return "\n\n".join(parts) + "\n"


def _cost_cells(figures: dict) -> list[str]:
    return [f"{figures['gateway']:.2f}", f"{figures['floor']:.2f}", f"{figures['ratio']:.2f}x"]


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def goals(summary: dict) -> list[str]:
    """The issue's goals, against the last code tree measured."""
    lines = []
    for name, row in summary["cost"][list(summary["cost"])[-1]].items():
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
    parser.add_argument(
        "--trees",
        help="NAME=DIR,...: measure the CPU cost of the s4 package of each source tree side by side "
        "(the gateway runs with PYTHONPATH=DIR); the scaling uses the last one",
    )
    parser.add_argument("--skip-scaling", action="store_true", help="measure the CPU cost only")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    args.trees = dict(item.split("=", 1) for item in args.trees.split(",")) if args.trees else {"s4": ""}
    for tree, path in args.trees.items():  # the gateways run from their own directories: absolute paths
        dirs = [Path(d).resolve() for d in path.split(os.pathsep) if d]
        if not all(d.is_dir() for d in dirs):
            parser.error(f"--trees {tree}={path}: no such directory")
        if dirs and not (dirs[0] / "s4" / "__init__.py").is_file():
            parser.error(f"--trees {tree}={path}: {dirs[0]} holds no s4 package")
        args.trees[tree] = os.pathsep.join(str(d) for d in dirs)
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
        started: list[Gateway] = []

        def gateway(tree: str, workers: int) -> Gateway:
            env = {"PYTHONPATH": args.trees[tree]} if args.trees[tree] else {}
            name = f"{tree}-{workers}"
            started.append(start_gateway(tmp_path / name, name, ("--workers", str(workers)), env))
            stack.callback(started[-1].stop)
            started[-1].client().create_bucket(Bucket=BUCKET)
            return started[-1]

        by_tree = {tree: gateway(tree, args.workers[0]) for tree in args.trees}
        by_count = {args.workers[0]: by_tree[list(args.trees)[-1]]}
        if not args.skip_scaling:
            by_count.update({n: gateway(list(args.trees)[-1], n) for n in args.workers[1:]})
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(args.clients))
        pool.starmap(_ready, [()] * args.clients)
        cost = gateway_cost(by_tree, pool, files, digests, args.rounds, tmp_path)
        load = None
        if not args.skip_scaling:
            load = throughput(by_count, pool, args.clients, files, max(1, args.rounds - 1), tmp_path)
        problems = [line for g in started for line in g.problems()]
        peak_rss = {tree: g.proc_status("VmHWM") / MiB for tree, g in by_tree.items() if g.alive()}
        for name, (path, _) in files.items():
            floors[name] = floor(path, floors[name])
    summary = summarize(floors, cost, load, args.workers)
    report = {
        "command": command,
        "machine": info,
        "files": {name: {"source": source, "bytes": args.sizes[name]} for name, (_, source) in files.items()},
        "clients": args.clients,
        "workers": args.workers,
        "floor": floors,
        "cost_raw": cost,
        "trees": args.trees,
        "peak_rss_mib": peak_rss,
        "throughput_raw": {
            k: {op: {str(n): v for n, v in per.items()} for op, per in d.items()} for k, d in (load or {}).items()
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
    print("Peak RSS (VmHWM) of the one-worker gateways: " + ", ".join(f"{t} {m:.0f} MiB" for t, m in peak_rss.items()))
    for line in report["goals"]:
        print(f"- {line}")
    for line in problems:
        print(f"gateway: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
