"""glibc malloc settings side by side: the gateway's CPU per GB and the pages it faults in, per setting.

    .venv/bin/python benchmarks/malloc_settings.py [--rounds 6] [--files text,binary] [--settings a,b,...]

Each setting is a set of glibc's own MALLOC_* variables given to one ``s4 serve --workers 1`` (any of
them switches s4/allocator.py's tuning off, so the variables alone decide); ``serving`` gives none and
measures what s4 serve sets itself. The gateways take turns op by op, the order turned each round (the
first round only warms up), and each figure is the median of the rounds' ratios to the first setting.
Faults are the gateway's minor page faults (``/proc/<pid>/stat``) times the page size, per byte moved.
Files are scale_bench.py's (text, binary, incompressible), built in --dir; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from pathlib import Path

from _gateway import Gateway, start_gateway
from scale_bench import BUCKET, MiB, build_files, transfer_config

SETTINGS: dict[str, dict[str, str]] = {
    "old": {"MALLOC_MMAP_THRESHOLD_": str(32 * MiB), "MALLOC_TRIM_THRESHOLD_": str(32 * MiB), "MALLOC_ARENA_MAX": "2"},
    "trim128-arenas2": {
        "MALLOC_MMAP_THRESHOLD_": str(16 * MiB),
        "MALLOC_TRIM_THRESHOLD_": str(128 * MiB),
        "MALLOC_ARENA_MAX": "2",
    },
    "trim128": {"MALLOC_MMAP_THRESHOLD_": str(16 * MiB), "MALLOC_TRIM_THRESHOLD_": str(128 * MiB)},
    # Out of the tunable's range, so glibc ignores it: its own defaults, with s4's tuning switched off.
    "glibc-default": {"MALLOC_ARENA_MAX": "0"},
    "serving": {},
}
SIZES = {"text": 256 * MiB, "binary": 128 * MiB, "incompressible": 64 * MiB}


def minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--files", default="text,binary")
    parser.add_argument("--settings", default="old,trim128-arenas2,trim128,serving")
    parser.add_argument("--dir", type=Path, default=None, help="where the files and data go (default: a temp dir)")
    args = parser.parse_args()
    labels = args.settings.split(",")
    names = args.files.split(",")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        files = build_files(work, SIZES)
        gateways: dict[str, Gateway] = {}
        try:
            for label in labels:
                gateways[label] = start_gateway(work / label, label, ("--workers", "1"), SETTINGS[label])
                gateways[label].client().create_bucket(Bucket=BUCKET)
            cost, faults = measure(gateways, {name: files[name][0] for name in names}, args.rounds, work)
            report(gateways, cost, faults, labels, names)
        finally:
            for gateway in gateways.values():
                gateway.stop()
    return 0


def measure(gateways: dict[str, Gateway], files: dict[str, Path], rounds: int, work: Path):
    cost: dict[tuple[str, str, str], list[float]] = {}
    faults: dict[tuple[str, str, str], list[float]] = {}
    clients = {label: gateway.client() for label, gateway in gateways.items()}
    labels = list(gateways)
    page = resource.getpagesize()
    for round_no in range(rounds + 1):
        for name, path in files.items():
            size = path.stat().st_size
            for op in ("put", "get"):
                for label in labels[round_no % len(labels) :] + labels[: round_no % len(labels)]:
                    gateway, client = gateways[label], clients[label]
                    faults_before, cpu_before = minor_faults(gateway.process.pid), gateway.cpu_seconds()
                    if op == "put":
                        client.upload_file(str(path), BUCKET, name, Config=transfer_config())
                    else:
                        client.download_file(BUCKET, name, str(work / "download"), Config=transfer_config())
                    if round_no == 0:
                        continue  # warm-up
                    cost.setdefault((label, name, op), []).append((gateway.cpu_seconds() - cpu_before) * 1e9 / size)
                    faulted = (minor_faults(gateway.process.pid) - faults_before) * page / size
                    faults.setdefault((label, name, op), []).append(faulted)
    return cost, faults


def report(gateways, cost, faults, labels: list[str], names: list[str]) -> None:
    base = labels[0]
    for name in names:
        for op in ("put", "get"):
            cells = []
            for label in labels:
                ratios = [a / b for a, b in zip(cost[(label, name, op)], cost[(base, name, op)], strict=True)]
                cells.append(
                    f"{label} {statistics.median(cost[(label, name, op)]):.2f} cpu-s/GB"
                    f" (x{statistics.median(ratios):.3f}, faulted {statistics.median(faults[(label, name, op)]):.3f})"
                )
            print(f"{name} {op}: " + "; ".join(cells))
    for label, gateway in gateways.items():
        peak, now = gateway.proc_status("VmHWM") >> 20, gateway.proc_status("VmRSS") >> 20
        print(f"{label}: peak RSS {peak} MiB, now {now} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
