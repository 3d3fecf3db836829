"""The gateway's CPU per request, whatever its size: HEAD and a 1 KB GET, one client at a time.

    .venv/bin/python benchmarks/request_cost.py [--requests 1000] [--store-dir /dev/shm]

What a GB costs beyond its bytes depends on how many requests carry it (boto3's transfer client:
one per 8 MiB part), so the per-byte figures of scale_bench.py hold this cost too. The gateway
(``s4 serve --workers 1`` on the embedded store) is measured from outside, utime + stime of its
process from /proc, around ``--requests`` HEADs and as many GETs of a 1000-byte object made by a
boto3 client in a process of its own (so the client's CPU does not count). Only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
from pathlib import Path

from _gateway import client_of, start_gateway

BUCKET = "request-cost"
KEY = "small"
WARM_UP = 50


def _requests(endpoint: str, count: int) -> None:
    """``count`` HEADs, then ``count`` GETs read to their end (in a client process)."""
    client = client_of(endpoint)
    for _ in range(count):
        client.head_object(Bucket=BUCKET, Key=KEY)
    for _ in range(count):
        client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="HEADs, and as many GETs")
    parser.add_argument("--store-dir", default="/dev/shm", help="where the gateway's data directory goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.store_dir, prefix="s4-request-cost-") as tmp:
        gateway = start_gateway(Path(tmp), "request-cost", ("--workers", "1"))
        try:
            client = gateway.client()
            client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 1000)
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                pool.apply(_requests, (gateway.endpoint, WARM_UP))  # imports and connections, not timed
                before = gateway.cpu_seconds()
                pool.apply(_requests, (gateway.endpoint, args.requests))
                cpu = gateway.cpu_seconds() - before
        finally:
            gateway.stop()
    per_request = cpu / (2 * args.requests)
    print(f"{per_request * 1e3:.2f} ms of gateway CPU per request ({2 * args.requests} requests, HEAD and 1 KB GET)")
    print(f"with 8 MiB parts: {per_request * 1e9 / (8 * 1024 * 1024):.3f} cpu-s per GB on top of the bytes' own cost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
