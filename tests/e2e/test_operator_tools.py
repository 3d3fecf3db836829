"""The operator tools (``s4 estimate``, ``s4 verify``, ``s4 migrate``) against a real SeaweedFS and a real
``s4 serve --backend s3`` over it: what the tools say is held against what the gateway really stores."""

from __future__ import annotations

import gzip
import json
import mimetypes
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gateway import start_gateway
from tests.seaweed import ACCESS_KEY, SECRET_KEY

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        seaweed = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield seaweed
    seaweed.stop()


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("tools-gateway"), extra_env=upstream.env())
    yield gw
    gw.stop()


def s4(upstream, *args: object, timeout: int = 120) -> subprocess.CompletedProcess:
    """The ``s4`` command, with the upstream's keys in the standard AWS variables (as an operator has them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S4_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return subprocess.run(
        [sys.executable, "-m", "s4", *map(str, args)], capture_output=True, env=env, timeout=timeout, check=False
    )


def upstream_sizes(upstream, bucket: str) -> dict[str, int]:
    pages = upstream.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def mixed_corpus(directory: Path) -> Path:
    """Text (a multi-frame log and small JSON), binary (packed records), already compressed (gzip, random)."""
    r = random.Random(7)
    directory.mkdir()
    line = "2026-11-23T21:%02d:%02dZ INFO served path=/api/items/%d status=%d ms=%d user=%s\n"
    users = ["alice", "bob", "carol", "dave"]
    log = "".join(
        line % (i // 60 % 60, i % 60, r.randrange(10**6), r.choice([200, 404]), r.randrange(900), r.choice(users))
        for i in range(75_000)
    ).encode()
    (directory / "app.log").write_bytes(log)  # about 6 MiB: two frames and a sidecar
    for i in range(30):
        rows = [{"id": i * 100 + j, "name": f"item-{j}", "price": r.randrange(10_000)} for j in range(40)]
        (directory / f"items-{i:02d}.json").write_text(json.dumps(rows))
    records = b"".join(struct.pack("<qdi", i, i * 0.25, r.randrange(64)) for i in range(150_000))
    (directory / "records.bin").write_bytes(records)
    (directory / "old-logs.gz").write_bytes(gzip.compress(log[: 2 * MiB]))
    (directory / "blob.dat").write_bytes(r.randbytes(MiB + 12345))
    return directory


def test_estimate_is_within_ten_percent_of_what_the_gateway_stores(upstream, gateway, tmp_path):
    corpus = mixed_corpus(tmp_path / "corpus")
    # The tree estimated from disk, and the same objects estimated in a plain bucket on SeaweedFS.
    local = s4(upstream, "estimate", corpus, "--json")
    assert local.returncode == 0, local.stderr.decode()
    plain = upstream.client()
    plain.create_bucket(Bucket="estimate-plain")
    for path in sorted(corpus.iterdir()):
        content_type = mimetypes.guess_type(path.name)[0] or "binary/octet-stream"
        plain.put_object(Bucket="estimate-plain", Key=path.name, Body=path.read_bytes(), ContentType=content_type)
    remote = s4(upstream, "estimate", "s3://estimate-plain", "--endpoint-url", upstream.endpoint, "--json")
    assert remote.returncode == 0, remote.stderr.decode()
    # What the gateway stores for them, read off the upstream: data objects and their sidecars.
    gateway.client().create_bucket(Bucket="estimate-stored")
    gateway.aws("s3", "cp", "--recursive", "--quiet", corpus, "s3://estimate-stored/")
    stored = upstream_sizes(upstream, "estimate-stored")
    assert any(k.endswith(".s4index") for k in stored)  # the multi-frame log's sidecar is counted too
    stored_total = sum(stored.values())
    original_total = sum(p.stat().st_size for p in corpus.iterdir())
    for answer in (json.loads(local.stdout), json.loads(remote.stdout)):
        assert answer["original_bytes"] == original_total
        assert answer["objects"] == len(list(corpus.iterdir()))
        assert abs(answer["estimated_stored_bytes"] - stored_total) <= 0.10 * stored_total, (answer, stored_total)
        classes = {row["class"]: row for row in answer["classes"]}
        assert {"text", "binary"} <= classes.keys()
        assert sum(row["original_bytes"] for row in classes.values()) == original_total
        print(f"estimate {answer['source']}: {answer['estimated_stored_bytes']} bytes; gateway stored {stored_total}")
    # The table: per class and in total, with the price it used.
    table = s4(upstream, "estimate", "s3://estimate-plain", "--endpoint-url", upstream.endpoint)
    text = table.stdout.decode()
    assert table.returncode == 0 and "total" in text and "$0.023/GB-month" in text, text


def log_text(size: int, seed: int) -> bytes:
    r = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b"2026-11-23T21:00:00Z WARN slow request id=%08d ms=%d\n" % (r.randrange(10**8), r.randrange(5000))
    return bytes(out[:size])


def test_verify_reports_then_repairs_sidecars_orphans_and_staging_but_never_data(upstream, gateway):
    client, raw = gateway.client(), upstream.client()
    client.create_bucket(Bucket="verified")
    bodies = {f"big{i}.log": log_text(6 * MiB, i) for i in (1, 2, 3)}
    bodies["small.txt"] = b"hello " * 1000
    for key, body in bodies.items():
        client.put_object(Bucket="verified", Key=key, Body=body)
    sidecar = raw.get_object(Bucket="verified", Key="big1.log.s4index")["Body"].read()
    # Damage done straight on the upstream: a lost sidecar, an orphan one, one on a single-frame object,
    # a flipped byte in a frame of big3.log (metadata kept), and a staging temporary left by a dead PUT.
    raw.delete_object(Bucket="verified", Key="big1.log.s4index")
    raw.copy_object(
        Bucket="verified", Key="ghost.log.s4index", CopySource={"Bucket": "verified", "Key": "big2.log.s4index"}
    )
    raw.put_object(Bucket="verified", Key="small.txt.s4index", Body=sidecar)
    stored = raw.get_object(Bucket="verified", Key="big3.log")
    body = bytearray(stored["Body"].read())
    body[len(body) * 3 // 4] ^= 0x40
    raw.put_object(Bucket="verified", Key="big3.log", Body=bytes(body), Metadata=stored["Metadata"])
    raw.put_object(Bucket="verified", Key=".s4mpu/put-0123456789abcdef", Body=b"x" * 1000)
    before = upstream_sizes(upstream, "verified")

    checked = s4(upstream, "verify", "s3://verified", "--endpoint-url", upstream.endpoint, "--json")
    assert checked.returncode == 1, checked.stderr.decode()
    report = json.loads(checked.stdout)
    assert {(f["key"], f["kind"]) for f in report["findings"]} == {
        ("big1.log", "sidecar-missing"),
        ("big3.log", "corrupt"),
        ("ghost.log.s4index", "orphan-sidecar"),
        ("small.txt", "sidecar-unneeded"),
    }, report["findings"]
    assert not any(f["repaired"] for f in report["findings"])
    assert (report["objects"], report["s4_objects"], report["staging_objects"]) == (4, 4, 1)
    assert upstream_sizes(upstream, "verified") == before  # a check writes nothing

    repaired = s4(
        upstream, "verify", "s3://verified", "--endpoint-url", upstream.endpoint, "--repair", "--min-age", "0", "--json"
    )
    assert repaired.returncode == 1, repaired.stderr.decode()  # the corrupt object is still reported
    report = json.loads(repaired.stdout)
    assert {f["key"]: f["repaired"] for f in report["findings"]} == {
        "big1.log": True,
        "big3.log": False,
        "ghost.log.s4index": True,
        "small.txt": True,
    }
    assert report["swept_objects"] >= 1
    after = upstream_sizes(upstream, "verified")
    assert set(after) == {
        "big1.log",
        "big1.log.s4index",
        "big2.log",
        "big2.log.s4index",
        "big3.log",
        "big3.log.s4index",
        "small.txt",
    }
    assert (
        raw.get_object(Bucket="verified", Key="big1.log.s4index")["Body"].read() == sidecar
    )  # as the gateway wrote it
    assert raw.get_object(Bucket="verified", Key="big3.log")["Body"].read() == bytes(body)  # data never rewritten
    ranged = client.get_object(Bucket="verified", Key="big1.log", Range="bytes=4194000-4195000")["Body"].read()
    assert ranged == bodies["big1.log"][4194000:4195001]

    client.delete_object(Bucket="verified", Key="big3.log")
    clean = s4(upstream, "verify", "s3://verified", "--endpoint-url", upstream.endpoint)
    assert clean.returncode == 0, clean.stdout.decode() + clean.stderr.decode()
    assert clean.stdout.decode().rstrip().endswith("OK")
