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
import time
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


def s4_env() -> dict[str, str]:
    """The upstream's keys in the standard AWS variables, as an operator has them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S4_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def s4(upstream, *args: object, timeout: int = 120) -> subprocess.CompletedProcess:
    """The ``s4`` command."""
    return subprocess.run(
        [sys.executable, "-m", "s4", *map(str, args)], capture_output=True, env=s4_env(), timeout=timeout, check=False
    )


def upstream_sizes(upstream, bucket: str) -> dict[str, int]:
    """What the bucket holds upstream: objects, sidecars, staging, dictionaries; not the gateway's bucket
    documents (``.s4bucket/``: its owner, policies), which belong to the bucket, not to any object."""
    pages = upstream.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {
        o["Key"]: o["Size"] for page in pages for o in page.get("Contents", []) if not o["Key"].startswith(".s4bucket/")
    }


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
    # The bucket the gateway wrote, estimated on the upstream: its objects are counted as they are stored.
    again = s4(upstream, "estimate", "s3://estimate-stored", "--endpoint-url", upstream.endpoint, "--json")
    answer = json.loads(again.stdout)
    assert [row["class"] for row in answer["classes"]] == ["already S4 (as stored)"]
    assert answer["original_bytes"] == original_total
    assert answer["estimated_stored_bytes"] == sum(v for k, v in stored.items() if not k.endswith(".s4index"))
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
    raw.put_object(Bucket="verified", Key="plain.txt", Body=b"written around the gateway")  # fine as it is
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
    assert (report["objects"], report["s4_objects"], report["plain_objects"], report["staging_objects"]) == (5, 4, 1, 1)
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
        "plain.txt",
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


def plain_objects(count: int) -> dict[str, tuple[bytes, dict]]:
    """Small objects as clients wrote them before the gateway: JSON and logs (compressible), random blobs
    (not), some with metadata, standard headers and tags."""
    r = random.Random(11)
    objects = {}
    for i in range(count):
        key = f"data/{i:04d}" + (".bin" if i % 20 == 7 else ".json" if i % 2 else ".log")
        if key.endswith(".bin"):
            body, extra = r.randbytes(r.randrange(1000, 6000)), {"ContentType": "application/octet-stream"}
        elif key.endswith(".json"):
            rows = [{"id": i * 1000 + j, "sku": f"sku-{r.randrange(500)}", "qty": r.randrange(9)} for j in range(60)]
            body, extra = json.dumps(rows).encode(), {"ContentType": "application/json"}
        else:
            body, extra = log_text(r.randrange(2000, 9000), i), {}
        if i % 50 == 3:
            extra.update(
                Metadata={"owner": f"team-{i}", "source": "legacy"},
                CacheControl="max-age=60",
                ContentDisposition=f'attachment; filename="{i}.txt"',
                Tagging=f"tier=cold&n={i}",
            )
        objects[key] = (body, extra)
    return objects


def test_migrate_interrupted_and_resumed_then_served_byte_identical(upstream, gateway, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    raw = upstream.client(max_pool_connections=16)
    raw.create_bucket(Bucket="legacy")
    objects = plain_objects(1000)
    big = log_text(9 * MiB, 99)  # one upstream multipart object: its ETag is "<md5>-2"
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(lambda kv: raw.put_object(Bucket="legacy", Key=kv[0], Body=kv[1][0], **kv[1][1]), objects.items())
        )
    upload = raw.create_multipart_upload(Bucket="legacy", Key="data/big.log")["UploadId"]
    parts = []
    for n, piece in enumerate((big[: 5 * MiB], big[5 * MiB :]), start=1):
        etag = raw.upload_part(Bucket="legacy", Key="data/big.log", UploadId=upload, PartNumber=n, Body=piece)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    raw.complete_multipart_upload(
        Bucket="legacy", Key="data/big.log", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    objects["data/big.log"] = (big, {})
    etags = {k: raw.head_object(Bucket="legacy", Key=k)["ETag"] for k in ("data/big.log", "data/0003.json")}
    listed_before = {
        o["Key"]: o["ETag"]
        for page in raw.get_paginator("list_objects_v2").paginate(Bucket="legacy")
        for o in page["Contents"]
    }
    checkpoint = tmp_path / "migrate.json"
    common = ("s3://legacy", "--endpoint-url", upstream.endpoint, "--checkpoint", checkpoint, "--concurrency", "16")

    # Interrupted twice: by --limit, then by SIGKILL in the middle of the second run.
    first = s4(upstream, "migrate", *common, "--limit", "300", "--json")
    assert first.returncode == 0, first.stderr.decode()
    report = json.loads(first.stdout)
    assert report["listed"] == 300 and not report["complete"] and report["rewritten"] > 250
    assert json.loads(checkpoint.read_text())["after"] == sorted(objects)[299]
    second = subprocess.Popen(
        [sys.executable, "-m", "s4", "migrate", *map(str, common)], env=s4_env(), stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while json.loads(checkpoint.read_text())["after"] <= sorted(objects)[450] and time.monotonic() < deadline:
        time.sleep(0.05)
    second.kill()
    second.wait()
    after_kill = json.loads(checkpoint.read_text())["after"]
    assert sorted(objects)[450] < after_kill < sorted(objects)[-1]
    third = s4(upstream, "migrate", *common, "--json")
    assert third.returncode == 0, third.stderr.decode()
    report = json.loads(third.stdout)
    assert report["complete"] and report["resumed_after"] == after_kill and report["failed"] == 0
    assert report["listed"] == len([k for k in objects if k > after_kill])
    assert not checkpoint.exists()  # done: the next run starts from the top
    print(f"resumed migrate: {report['listed']} objects in {report['seconds']} s")

    # Every compressible object is stored in the S4 format now, the random ones as they were.
    heads = {}
    with ThreadPoolExecutor(16) as pool:
        for key, head in zip(
            objects, pool.map(lambda k: raw.head_object(Bucket="legacy", Key=k), objects), strict=True
        ):
            heads[key] = head
    for key, head in heads.items():
        assert ("s4-codec" in head["Metadata"]) == (not key.endswith(".bin")), (key, head["Metadata"])
    assert int(heads["data/big.log"]["Metadata"]["s4-original-size"]) == len(big)
    assert "data/big.log.s4index" in upstream_sizes(upstream, "legacy")

    # Through a real gateway: every object byte-identical, with the ETag, metadata, headers and tags it had.
    client = gateway.client(max_pool_connections=16)

    def served(key: str):
        got = client.get_object(Bucket="legacy", Key=key)
        return got["Body"].read(), got

    with ThreadPoolExecutor(16) as pool:
        for key, (body, got) in zip(objects, pool.map(served, objects), strict=True):
            assert body == objects[key][0], key
            assert got["ETag"] == listed_before[key], key
    assert client.head_object(Bucket="legacy", Key="data/big.log")["ETag"] == etags["data/big.log"]
    head = client.head_object(Bucket="legacy", Key="data/0003.json")
    assert head["ETag"] == etags["data/0003.json"]
    assert head["Metadata"] == {"owner": "team-3", "source": "legacy"}
    assert (head["ContentType"], head["CacheControl"]) == ("application/json", "max-age=60")
    tags = client.get_object_tagging(Bucket="legacy", Key="data/0003.json")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("n", "3"), ("tier", "cold")]
    listed = {
        o["Key"]: (o["Size"], o["ETag"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="legacy")
        for o in page["Contents"]
    }
    assert listed == {k: (len(objects[k][0]), listed_before[k]) for k in objects}
    # Run again from the top: what is done is seen to be done.
    again = s4(upstream, "migrate", *common, "--limit", "40", "--json")
    report = json.loads(again.stdout)
    assert report["rewritten"] == 0 and report["already"] + report["not_smaller"] == 40


def test_migrate_never_replaces_what_a_client_wrote_meanwhile(upstream):
    """The rewrite is conditional on the ETag read: a client's write between the read and the rewrite wins."""
    import asyncio
    import base64

    from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
    from s4.codec.policy import FramePolicy
    from s4.config import UpstreamConfig
    from s4.store.s3.store import S3Store
    from s4.tools.location import BucketUrl
    from s4.tools.migrate import Migrator

    raw = upstream.client()
    raw.create_bucket(Bucket="racing")
    for key in ("calm.log", "race.log"):
        raw.put_object(Bucket="racing", Key=key, Body=log_text(20_000, 5))
    # Base64 text shrinks by a quarter only: stored, it still passes the upstream store's 9 MiB single-PUT
    # bound, so its rewrite goes up as a temporary upload copied onto the key, the copy carrying the If-Match.
    large = base64.b64encode(random.Random(3).randbytes(11 * MiB))
    for key in ("calm-large.txt", "race-large.txt"):
        raw.put_object(Bucket="racing", Key=key, Body=large)
    newer = b"written by a client while the migration ran " * 100

    class ClientWritesAfterTheRead:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def get_object(self, bucket, key, *args, **kwargs):
            stream = await self.inner.get_object(bucket, key, *args, **kwargs)
            if key.startswith("race"):
                await asyncio.to_thread(raw.put_object, Bucket=bucket, Key=key, Body=newer)
            return stream

    async def run():
        config = UpstreamConfig(endpoint=upstream.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        async with await S3Store.open(config) as store, CpuCodecPool(CodecRegistry.cpu_default()) as pool:
            migrator = Migrator(ClientWritesAfterTheRead(store), pool, CodecDispatcher(), FramePolicy())
            return await migrator.run(BucketUrl("racing"))

    report = asyncio.run(run())
    assert (report.rewritten, report.changed, report.failed) == (2, 2, 0), report
    for key in ("race.log", "race-large.txt"):
        race = raw.get_object(Bucket="racing", Key=key)
        assert race["Body"].read() == newer and "s4-codec" not in race["Metadata"]
    for key in ("calm.log", "calm-large.txt"):
        assert "s4-codec" in raw.head_object(Bucket="racing", Key=key)["Metadata"]
    assert raw.head_object(Bucket="racing", Key="calm-large.txt")["ContentLength"] > 9 * MiB
    assert not [k for k in upstream_sizes(upstream, "racing") if k.startswith(".s4mpu/")]  # no temporary left


def test_recompress_rewrites_s4_objects_with_another_level_keeping_what_clients_see(upstream, gateway, tmp_path):
    client = gateway.client()
    client.create_bucket(Bucket="recompressed")
    bodies = {f"logs/{i:02d}.log": log_text(30_000 + 1000 * i, 100 + i) for i in range(20)}
    for key, body in bodies.items():
        client.put_object(Bucket="recompressed", Key=key, Body=body, Metadata={"n": key[-6:-4]})
    source = tmp_path / "multipart.log"
    source.write_bytes(log_text(10 * MiB, 7))  # aws-cli sends it in 8 MiB parts
    gateway.aws("s3", "cp", "--quiet", source, "s3://recompressed/multipart.log")
    bodies["multipart.log"] = source.read_bytes()
    before = {k: client.head_object(Bucket="recompressed", Key=k) for k in bodies}
    stored_before = upstream_sizes(upstream, "recompressed")

    done = s4(
        upstream,
        "recompress",
        "s3://recompressed",
        "--endpoint-url",
        upstream.endpoint,
        "--zstd-level",
        "12",
        "--no-checkpoint",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["rewritten"] == len(bodies) and report["stored_after"] < report["stored_before"], report
    stored_after = upstream_sizes(upstream, "recompressed")
    assert sum(stored_after.values()) < sum(stored_before.values())
    for key, body in bodies.items():
        got = client.get_object(Bucket="recompressed", Key=key)
        assert got["Body"].read() == body, key
        assert (got["ETag"], got["Metadata"]) == (before[key]["ETag"], before[key]["Metadata"]), key
    part = client.get_object(Bucket="recompressed", Key="multipart.log", PartNumber=2)
    assert part["Body"].read() == bodies["multipart.log"][8 * MiB :]
    ranged = client.get_object(Bucket="recompressed", Key="multipart.log", Range="bytes=9000000-9000100")
    assert ranged["Body"].read() == bodies["multipart.log"][9000000:9000101]
    checked = s4(upstream, "verify", "s3://recompressed", "--endpoint-url", upstream.endpoint)
    assert checked.returncode == 0, checked.stdout.decode()


def small_events(count: int) -> dict[str, bytes]:
    """Objects of 2-16 KiB as applications write them: JSON event batches and log excerpts."""
    r = random.Random(21)
    events = ["page_view", "add_to_cart", "checkout_started", "payment_failed", "signup", "search"]
    countries = ["DE", "FR", "US", "BR", "JP", "IN", "NG"]
    objects = {}
    for i in range(count):
        target = r.randrange(2 * 1024, 16 * 1024)
        if i % 2:
            rows, size = [], 2
            while size < target:
                row = {
                    "timestamp": f"2026-11-{r.randrange(1, 29):02d}T{r.randrange(24):02d}:{r.randrange(60):02d}:00Z",
                    "event_type": r.choice(events),
                    "user": {"user_id": r.randrange(10**9), "country": r.choice(countries), "plan": r.choice("fpe")},
                    "session_id": f"{r.getrandbits(64):016x}",
                    "properties": {
                        "path": f"/products/{r.randrange(5000)}",
                        "referrer": r.choice(["", "google", "ad"]),
                    },
                }
                rows.append(row)
                size += len(json.dumps(row)) + 1
            objects[f"events/{i:04d}.json"] = json.dumps(rows).encode()[:target]
        else:
            lines = []
            while sum(map(len, lines)) < target:
                lines.append(
                    f"2026-11-23 21:{r.randrange(60):02d}:{r.randrange(60):02d},{r.randrange(1000):03d} "
                    f"{r.choice(['INFO', 'WARN', 'ERROR'])} [{r.choice(['http-nio-8080-exec', 'scheduler', 'kafka'])}"
                    f"-{r.randrange(40)}] c.example.orders.{r.choice(['OrderService', 'PaymentClient'])} - "
                    f"order {r.randrange(10**7)} {r.choice(['accepted', 'retrying payment', 'shipped'])}"
                    f" in {r.randrange(900)} ms\n"
                )
            objects[f"logs/{i:04d}.log"] = "".join(lines).encode()[:target]
    return objects


def test_train_dict_beats_plain_zstd_on_small_objects_and_applies_it(upstream, gateway):
    from concurrent.futures import ThreadPoolExecutor

    client = gateway.client(max_pool_connections=16)
    client.create_bucket(Bucket="small-events")
    objects = small_events(400)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket="small-events", Key=kv[0], Body=kv[1]), objects.items()))
    etags = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket="small-events", MaxKeys=1000)["Contents"]}
    before = sum(upstream_sizes(upstream, "small-events").values())

    trained = s4(upstream, "train-dict", "s3://small-events", "--endpoint-url", upstream.endpoint, "--json")
    assert trained.returncode == 0, trained.stderr.decode()
    report = json.loads(trained.stdout)["train"]
    print(
        f"train-dict: {report['measured_on']} held-out objects, {report['original_bytes']} bytes: cpu-zstd "
        f"{report['stored_plain']}, cpu-zstd-dict {report['stored_dict']} (gain {report['gain']:.1%})"
    )
    for band in report["bands"]:
        print(f"  {band['band']}: {band['objects']} objects, gain {band['gain']:.1%}")
    assert report["stored_dict"] < 0.95 * report["stored_plain"], report
    smallest = report["bands"][0]  # 2-4 KiB objects: where a dictionary matters most
    assert smallest["band"] == "2 KiB-4 KiB" and smallest["gain"] > 0.15, report["bands"]
    dict_key = f".s4dict/{report['dict_id']}"
    assert dict_key in upstream_sizes(upstream, "small-events")

    applied = s4(
        upstream,
        "train-dict",
        "s3://small-events",
        "--endpoint-url",
        upstream.endpoint,
        "--use",
        report["dict_id"],
        "--json",
        "--concurrency",
        "16",
    )
    assert applied.returncode == 0, applied.stderr.decode()
    done = json.loads(applied.stdout)["apply"]
    assert done["rewritten"] == len(objects) and done["failed"] == 0, done
    after = sum(upstream_sizes(upstream, "small-events").values())
    print(f"train-dict --use: bucket {before} -> {after} stored bytes (dictionary included)")
    assert after < before
    raw = upstream.client()
    head = raw.head_object(Bucket="small-events", Key="events/0001.json")["Metadata"]
    assert (head["s4-codec"], head["s4-dict-id"]) == ("cpu-zstd-dict", report["dict_id"])
    with ThreadPoolExecutor(16) as pool:
        got = dict(
            zip(objects, pool.map(lambda k: client.get_object(Bucket="small-events", Key=k), objects), strict=True)
        )
    for key, answer in got.items():
        assert answer["Body"].read() == objects[key] and answer["ETag"] == etags[key], key
    checked = s4(upstream, "verify", "s3://small-events", "--endpoint-url", upstream.endpoint)
    assert checked.returncode == 0, checked.stdout.decode()
