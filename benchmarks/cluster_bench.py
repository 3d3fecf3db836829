"""Aggregate throughput of 1, 2 and 3 gateways behind HAProxy, under the same client load.

    .venv/bin/python benchmarks/cluster_bench.py [--gateways 1,2,3] [--workers 2] [--clients 4]
                                                 [--threads 4] [--seconds 20] [--size-kib 1024] [--out r.json]

For each gateway count it starts the scale-out topology of the tests (tests/cluster/topology.py:
HAProxy health-checking ``/ready``, ``s4 serve --backend s3 --workers N`` gateways, SeaweedFS as
master, three volume servers with replication 001, filer and s3), then runs the same load through
the load balancer: ``--clients`` separate client processes (no GIL shared with each other) of
``--threads`` boto3 threads each, first PUTting objects of ``--size-kib`` (half compressible, half
random) for ``--seconds``, then GETting them back for ``--seconds``, every GET compared with what
was PUT. Reported: requests, errors, MB/s (of object bytes, as the clients see them) per phase,
and the ratio to one gateway. The run fails on any error or mismatch.

Everything shares this machine's cores: clients, gateways, HAProxy and SeaweedFS. Where the cores
are the limit, more gateways cannot add throughput, and the ratio says so; on separate machines
each gateway brings its own cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.topology import Cluster, start_cluster  # noqa: E402

MiB = 1024 * 1024


def body(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    if seed % 2:
        return rng.randbytes(size)
    block = rng.randbytes(4096)
    return (block * (size // 4096 + 1))[:size]


def client_process(args: argparse.Namespace) -> int:
    """One client process: ``--threads`` boto3 threads doing one phase against the endpoint; JSON on stdout."""
    import boto3
    from botocore.config import Config

    from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY

    stop_at = time.monotonic() + args.seconds
    totals = {"requests": 0, "errors": 0, "mismatches": 0, "bytes": 0}
    written: list[int] = []
    lock = threading.Lock()
    size = args.size_kib * 1024

    def worker(thread: int) -> None:
        s3 = boto3.client(
            "s3",
            endpoint_url=args.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
        )
        n = 0
        while time.monotonic() < stop_at:
            seed = args.client * 1_000_000 + thread * 10_000 + (n % args.keys_per_thread if args.phase == "get" else n)
            key = f"c{args.client}/t{thread}/{seed}"
            data = body(seed, size)
            outcome = "ok"
            try:
                if args.phase == "put":
                    s3.put_object(Bucket=args.bucket, Key=key, Body=data)
                else:
                    got = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
                    if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
                        outcome = "mismatch"
            except Exception:
                outcome = "error"
            n += 1
            with lock:
                totals["requests"] += 1
                if outcome == "ok":
                    totals["bytes"] += size
                else:
                    totals["errors" if outcome == "error" else "mismatches"] += 1
        with lock:
            written.append(n)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals["min_keys"] = min(written)
    print(json.dumps(totals))
    return 0


def run_phase(cluster: Cluster, bucket: str, phase: str, args: argparse.Namespace, keys_per_thread: int) -> dict:
    """All client processes at once; their totals summed, MB/s over the phase's wall time."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, __file__, "--client-mode", "--endpoint", cluster.endpoint, "--bucket", bucket]
    command += ["--phase", phase, "--seconds", str(args.seconds), "--threads", str(args.threads)]
    command += ["--size-kib", str(args.size_kib), "--keys-per-thread", str(keys_per_thread)]
    began = time.monotonic()
    processes = [
        subprocess.Popen([*command, "--client", str(i)], stdout=subprocess.PIPE, env=env) for i in range(args.clients)
    ]
    totals = {"requests": 0, "errors": 0, "mismatches": 0, "bytes": 0}
    min_keys = []
    for process in processes:
        out, _ = process.communicate(timeout=args.seconds + 300)
        for name, value in json.loads(out).items():
            if name == "min_keys":
                min_keys.append(value)
            else:
                totals[name] += value
    totals["keys_per_thread"] = min(min_keys)
    elapsed = time.monotonic() - began
    totals["seconds"] = round(elapsed, 1)
    totals["mb_per_s"] = round(totals["bytes"] / elapsed / 1e6, 1)
    return totals


def measure(gateways: int, args: argparse.Namespace, directory: Path) -> dict:
    cluster = start_cluster(directory / f"g{gateways}", gateways=gateways, volumes=3, workers=args.workers)
    try:
        bucket = "bench"
        cluster.client(max_attempts=5).create_bucket(Bucket=bucket)
        put = run_phase(cluster, bucket, "put", args, 0)
        # The GET phase reads back keys every PUT thread stored (the first ones, as many as the slowest wrote).
        get = run_phase(cluster, bucket, "get", args, max(1, put.pop("keys_per_thread")))
        get.pop("keys_per_thread")
        return {"gateways": gateways, "put": put, "get": get}
    finally:
        cluster.stop()


def table(results: list[dict]) -> str:
    base = results[0]
    lines = [
        "| gateways | PUT requests | PUT MB/s | PUT ratio | GET requests | GET MB/s | GET ratio | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        put_ratio = r["put"]["mb_per_s"] / base["put"]["mb_per_s"] if base["put"]["mb_per_s"] else 0
        get_ratio = r["get"]["mb_per_s"] / base["get"]["mb_per_s"] if base["get"]["mb_per_s"] else 0
        errors = sum(r[p]["errors"] + r[p]["mismatches"] for p in ("put", "get"))
        lines.append(
            f"| {r['gateways']} | {r['put']['requests']} | {r['put']['mb_per_s']} | {put_ratio:.2f} |"
            f" {r['get']['requests']} | {r['get']['mb_per_s']} | {get_ratio:.2f} | {errors} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gateways", default="1,2,3")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per gateway")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="boto3 threads per client process")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--out", type=Path)
    # Internal: one client process.
    parser.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("put", "get"), help=argparse.SUPPRESS)
    parser.add_argument("--keys-per-thread", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client_mode:
        return client_process(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="s4-cluster-bench-") as tmp:
        for count in (int(n) for n in args.gateways.split(",")):
            results.append(measure(count, args, Path(tmp)))
            print(f"{count} gateway(s): {json.dumps(results[-1])}", flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmachine: {os.cpu_count()} cores, load average {load} at the end (other processes share the cores);")
    print(f"{args.clients} client processes x {args.threads} threads,")
    print(f"{args.size_kib} KiB objects, {args.seconds:g} s per phase, --workers {args.workers} per gateway\n")
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    failed = any(r[p]["errors"] or r[p]["mismatches"] for r in results for p in ("put", "get"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
