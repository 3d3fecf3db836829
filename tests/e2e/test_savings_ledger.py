"""The savings ledger through a real ``s4 serve``, on the embedded store and over a real SeaweedFS.

A scripted mix of PUT, overwrite, multipart (one completed, one left in progress), copy, delete and,
on a versioned bucket, new versions, a delete marker and a delete of a version by id; then ``s4
savings --json`` is held against the truth: the objects and original sizes the gateway lists
(every version of the versioned bucket), and the stored sizes of what the store really holds (every
version upstream, or in the embedded store's data directory), data, sidecars and staging apart. Then
the gateway restarts, writes more, and the ledger (now two writers' records) is still exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from s4.store.compressing.ledger import classify
from s4.store.compressing.metering import VERSIONING_TTL
from tests.e2e.gateway import start_gateway

MiB = 1024 * 1024
FLUSH = {
    "S4_LEDGER_FLUSH_INTERVAL": "0.2",
    "S4_LEDGER_METRICS_INTERVAL": "0.5",
    "S4_SWEEP_ENABLED": "false",
    "S4_WORKERS": "2",  # several writers per gateway (e2e gateways run one worker unless asked)
}


@pytest.fixture(params=["embedded", "seaweedfs"])
def backend(request, tmp_path_factory):
    if request.param == "embedded":
        yield None
        return
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        seaweed = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield seaweed
    seaweed.stop()


def text(size: int, seed: int) -> bytes:
    r = random.Random(seed)
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"%d" % seed]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(r.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def savings(gw, backend, *extra: str) -> dict:
    args = [sys.executable, "-m", "s4", "savings", "--json", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S4_"))}
    if backend is None:
        args += ["--data-dir", str(gw.data_dir)]
    else:
        from tests.seaweed import ACCESS_KEY, SECRET_KEY

        args += ["--endpoint-url", backend.endpoint]
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run(args, capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)["buckets"]


def stored_versions(gw, backend, bucket: str) -> list[tuple[str, int]]:
    """(key, size) of every version the store holds in ``bucket``, read from the store itself."""
    if backend is not None:
        client = backend.client()
        out = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out += [(v["Key"], v["Size"]) for v in page.get("Versions", [])]
        return out

    async def embedded() -> list[tuple[str, int]]:
        from s4.store.filesystem import FilesystemStore

        store = await FilesystemStore.open(gw.data_dir)
        try:
            out, key_marker, version_marker = [], None, None
            while True:
                page = await store.list_object_versions(bucket, "", None, key_marker, version_marker, 1000)
                out += [(v.key, v.size) for v in page.versions if not v.delete_marker]
                if not page.is_truncated:
                    return out
                key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
        finally:
            await store.close()

    return asyncio.run(embedded())


def truth(gw, backend, bucket: str) -> dict[str, int]:
    client = gw.client()
    versions = [
        v
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for v in page.get("Versions", [])
    ]
    expected = {"objects": len(versions), "original_bytes": sum(v["Size"] for v in versions)}
    for kind in ("data", "sidecar", "staging"):
        expected[f"{kind}_bytes"] = 0
    expected.update(sidecar_objects=0, staging_objects=0)
    for key, size in stored_versions(gw, backend, bucket):
        kind = classify(key)
        if kind is None:
            continue
        expected[f"{kind}_bytes"] += size
        if kind != "data":
            expected[f"{kind}_objects"] += 1
    return expected


def check(gw, backend, buckets: list[str]) -> dict:
    time.sleep(1.0)  # the flush interval is 0.2 s
    ledger = savings(gw, backend)
    for bucket in buckets:
        expected = truth(gw, backend, bucket)
        got = {k: ledger[bucket][k] for k in expected}
        assert got == expected, bucket
    return ledger


def gauges(gw) -> dict[tuple[str, str], float]:
    """The ``s4_ledger_*`` series of the gateway's /metrics, by (series with labels, bucket)."""
    with urllib.request.urlopen(f"{gw.endpoint}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out = {}
    for line in text.splitlines():
        match = re.match(r'(s4_ledger_\w+)\{bucket="([^"]+)"(?:,kind="(\w+)")?\} (\S+)', line)
        if match:
            name, bucket, kind, value = match.groups()
            out[(name + (f":{kind}" if kind else ""), bucket)] = float(value)
    return out


def test_ledger_exact_after_mixed_writes_and_restart(backend, tmp_path):
    extra = FLUSH | (backend.env() if backend is not None else {})
    gw = start_gateway(tmp_path / "gw", extra_env=extra)
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="a.txt", Body=text(100_000, 1))
        s3.put_object(Bucket="plain", Key="big.log", Body=text(9 * MiB, 2))  # several frames: a sidecar
        s3.put_object(Bucket="plain", Key="small", Body=b"x" * 100)
        s3.put_object(Bucket="plain", Key="a.txt", Body=text(300_000, 3))  # overwrite
        up = s3.create_multipart_upload(Bucket="plain", Key="mp")["UploadId"]
        parts = []
        for n, body in ((1, text(5 * MiB, 4)), (2, text(MiB, 5))):
            parts.append(
                {
                    "PartNumber": n,
                    "ETag": s3.upload_part(Bucket="plain", Key="mp", UploadId=up, PartNumber=n, Body=body)["ETag"],
                }
            )
        s3.complete_multipart_upload(Bucket="plain", Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
        s3.copy_object(Bucket="plain", Key="big-copy.log", CopySource={"Bucket": "plain", "Key": "big.log"})
        s3.copy_object(Bucket="plain", Key="small", CopySource={"Bucket": "plain", "Key": "a.txt"})  # copy over
        s3.delete_object(Bucket="plain", Key="big.log")
        pending = s3.create_multipart_upload(Bucket="plain", Key="later")["UploadId"]
        s3.upload_part(Bucket="plain", Key="later", UploadId=pending, PartNumber=1, Body=text(5 * MiB, 6))

        s3.create_bucket(Bucket="versioned")
        s3.put_object(Bucket="versioned", Key="before", Body=text(50_000, 7))  # the null version
        s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
        time.sleep(VERSIONING_TTL + 0.5)  # every worker sees the change (S3 asks to wait after it, too)
        first = s3.put_object(Bucket="versioned", Key="v", Body=text(200_000, 8))["VersionId"]
        s3.put_object(Bucket="versioned", Key="v", Body=text(9 * MiB, 9))
        s3.put_object(Bucket="versioned", Key="before", Body=text(60_000, 10))
        s3.delete_object(Bucket="versioned", Key="v")  # a delete marker: every version stays
        s3.delete_object(Bucket="versioned", Key="v", VersionId=first)  # one version gone for good
        s3.copy_object(Bucket="versioned", Key="w", CopySource={"Bucket": "versioned", "Key": "before"})
        # A multipart upload completed in a versioned bucket: its staging is gone for good, and counted so.
        up = s3.create_multipart_upload(Bucket="versioned", Key="mp")["UploadId"]
        etag = s3.upload_part(Bucket="versioned", Key="mp", UploadId=up, PartNumber=1, Body=text(30_000, 14))["ETag"]
        done = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        s3.complete_multipart_upload(Bucket="versioned", Key="mp", UploadId=up, MultipartUpload=done)

        ledger = check(gw, backend, ["plain", "versioned"])
        assert ledger["plain"]["staging_bytes"] > 0 and ledger["plain"]["sidecar_bytes"] > 0
        assert ledger["versioned"]["staging_objects"] == 0
        assert ledger["versioned"]["objects"] == 5  # before (null, new), v (9 MiB), w, mp; not the marker
        assert ledger["plain"]["original_bytes"] > 2 * ledger["plain"]["data_bytes"]
    finally:
        gw.stop()

    gw = start_gateway(tmp_path / "gw", extra_env=extra)  # same store: a new writer
    try:
        s3 = gw.client()
        s3.put_object(Bucket="plain", Key="after-restart", Body=text(70_000, 11))
        s3.delete_object(Bucket="plain", Key="a.txt")
        s3.abort_multipart_upload(Bucket="plain", Key="later", UploadId=pending)
        s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Suspended"})
        time.sleep(VERSIONING_TTL + 0.5)
        s3.put_object(Bucket="versioned", Key="before", Body=text(10_000, 12))  # replaces the null version
        ledger = check(gw, backend, ["plain", "versioned"])
        assert ledger["plain"]["staging_bytes"] == 0
        time.sleep(1.0)  # the gauges are read from the store every 0.5 s
        series = gauges(gw)
        for bucket in ("plain", "versioned"):
            assert series[("s4_ledger_objects", bucket)] == ledger[bucket]["objects"]
            assert series[("s4_ledger_original_bytes", bucket)] == ledger[bucket]["original_bytes"]
            for kind in ("data", "sidecar", "staging"):
                assert series[(f"s4_ledger_stored_bytes:{kind}", bucket)] == ledger[bucket][f"{kind}_bytes"]

        # Objects written around the gateway are not in the ledger until it is counted afresh.
        if backend is not None:
            backend.client().put_object(Bucket="plain", Key="straight-upstream", Body=b"z" * 12345)
            time.sleep(0.5)
            assert savings(gw, backend)["plain"]["objects"] == ledger["plain"]["objects"]
        recounted = savings(gw, backend, "--recount")
        s3.put_object(Bucket="plain", Key="after-recount", Body=text(40_000, 13))  # the live writer goes on
        s3.delete_object(Bucket="plain", Key="after-restart")
        after = check(gw, backend, ["plain", "versioned"])
        assert recounted["plain"]["objects"] == ledger["plain"]["objects"] + (backend is not None)
        assert after["plain"]["objects"] == recounted["plain"]["objects"]
    finally:
        gw.stop()


def test_ledger_exact_with_two_gateways_writing_at_once(backend, tmp_path):
    """Two gateways (each with its worker processes: several writers) over one store, eight clients
    writing, overwriting and deleting their own keys at the same time: the ledger is still exact."""
    extra = FLUSH | (backend.env() if backend is not None else {})
    first = start_gateway(tmp_path / "one", extra_env=extra)
    # The embedded store: the second gateway over the first one's data directory.
    second = start_gateway(tmp_path / ("two" if backend is not None else "one"), extra_env=extra)
    try:
        first.client().create_bucket(Bucket="shared")

        def client_work(n: int) -> None:
            s3 = (first if n % 2 else second).client()
            for i in range(12):
                key = f"c{n}/k{i % 5}"
                s3.put_object(Bucket="shared", Key=key, Body=text(1000 * (i + 1) * (n + 1), n * 100 + i))
                if i % 4 == 3:
                    s3.delete_object(Bucket="shared", Key=f"c{n}/k{(i + 2) % 5}")

        threads = [threading.Thread(target=client_work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(first, backend, ["shared"])
    finally:
        second.stop()
        first.stop()


@pytest.mark.parametrize("versioning", [None, "Suspended", "Enabled"])
def test_ledger_exact_with_two_gateways_changing_the_same_keys(backend, tmp_path, versioning):
    """Two gateways (each with two worker processes) over one store, eight clients writing, overwriting
    and deleting the *same* three keys at once, so changes of one key by different processes overlap
    all the time: each change still counts against what it really removed (over SeaweedFS, commits
    under If-Match / If-None-Match of what was looked at, looked at again when refused).

    Enabled: half the clients then delete versions by their ids while the others write; each version
    by one client, as SeaweedFS 4.48 lets two conditional deletes of one version both succeed (5
    rounds of 20 with 8 at once). Suspended: every write replaces the current null version; no
    deletes there, as a delete of a key with no current object cannot be conditioned (README: what
    the ledger does not hold exactly).

    On the embedded store a third of the writes are multipart uploads. Over SeaweedFS they are not:
    SeaweedFS 4.48 does not check CompleteMultipartUpload's If-Match / If-None-Match atomically with
    the commit (8 Completes of one key at once under If-None-Match: *, more than one succeeded in 9
    rounds of 20; PutObject's held in 20 of 20), so Completes of one key at once can miscount there."""
    if versioning is not None and backend is None:
        pytest.skip("the embedded store says what each commit removed: the unversioned case covers it")
    extra = FLUSH | (backend.env() if backend is not None else {})
    first = start_gateway(tmp_path / "one", extra_env=extra)
    second = start_gateway(tmp_path / ("two" if backend is not None else "one"), extra_env=extra)
    try:
        setup = first.client()
        setup.create_bucket(Bucket="contended")
        if versioning is not None:
            setup.put_bucket_versioning(Bucket="contended", VersioningConfiguration={"Status": "Enabled"})
            for n in range(3):  # versions with ids under the null versions to come
                setup.put_object(Bucket="contended", Key=f"k{n}", Body=text(500 + n, n))
            setup.put_bucket_versioning(Bucket="contended", VersioningConfiguration={"Status": versioning})
            time.sleep(VERSIONING_TTL + 0.5)  # both gateways see the status
            for n in range(3):  # Suspended: a current null version over the versions with ids
                setup.put_object(Bucket="contended", Key=f"k{n}", Body=text(700 + n, n))
        start = threading.Barrier(8)
        versions: list[tuple[str, str]] = []
        failures: list[BaseException] = []

        def client_work(n: int) -> None:
            try:
                changes(n)
            except BaseException as exc:
                failures.append(exc)
                start.abort()
                raise

        def changes(n: int) -> None:
            s3 = (first if n % 2 else second).client()
            start.wait()
            if versions and n % 2:  # while the even clients write new versions and markers
                for key, version_id in versions[n // 2 :: 4]:  # each id by one client (see the docstring)
                    s3.delete_object(Bucket="contended", Key=key, VersionId=version_id)
                return
            for i in range(15):
                key = f"k{(n + i) % 3}"
                # Sizes differ per write: a change counted against the wrong object shows.
                data = text(1000 + 997 * n + 131 * i, n * 100 + i)
                if i % 3 == 2 and versioning != "Suspended":
                    s3.delete_object(Bucket="contended", Key=key)
                elif i % 3 == 1 and backend is None:  # see the docstring for why not over SeaweedFS
                    upload = s3.create_multipart_upload(Bucket="contended", Key=key)["UploadId"]
                    etag = s3.upload_part(Bucket="contended", Key=key, UploadId=upload, PartNumber=1, Body=data)["ETag"]
                    done = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
                    s3.complete_multipart_upload(Bucket="contended", Key=key, UploadId=upload, MultipartUpload=done)
                else:
                    s3.put_object(Bucket="contended", Key=key, Body=data)

        def run_clients() -> None:
            threads = [threading.Thread(target=client_work, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        run_clients()
        if versioning == "Enabled":
            listed = setup.list_object_versions(Bucket="contended")
            versions[:] = [(v["Key"], v["VersionId"]) for v in listed.get("Versions", [])][::2]
            assert len(versions) > 10
            start = threading.Barrier(8)
            run_clients()
        assert not failures, failures  # every change answered as S3 would, none refused by the bookkeeping
        check(first, backend, ["contended"])
    finally:
        second.stop()
        first.stop()


def test_changes_of_a_deleted_bucket_do_not_land_in_a_new_one_of_its_name(backend, tmp_path):
    """A gateway still holding a change of a bucket (not yet flushed) that another gateway deletes and
    makes again: the change belonged to the old bucket and stays out of the new one's ledger."""
    extra = FLUSH | {"S4_WORKERS": "1"} | (backend.env() if backend is not None else {})
    slow = start_gateway(tmp_path / "one", extra_env=extra | {"S4_LEDGER_FLUSH_INTERVAL": "5"})
    # The embedded store: the second gateway over the first one's data directory.
    fast = start_gateway(tmp_path / ("two" if backend is not None else "one"), extra_env=extra)
    try:
        fast.client().create_bucket(Bucket="again")
        slow.client().put_object(Bucket="again", Key="k", Body=text(50_000, 1))  # held for 5 s
        fast.client().delete_object(Bucket="again", Key="k")
        fast.client().delete_bucket(Bucket="again")
        time.sleep(2.5)  # creation dates are to the second (SeaweedFS), and a second's tolerance for clocks
        fast.client().create_bucket(Bucket="again")
        time.sleep(3)  # the slow gateway's flush
        fast.client().put_object(Bucket="again", Key="new", Body=text(20_000, 2))
        ledger = check(fast, backend, ["again"])
        assert ledger["again"]["objects"] == 1
    finally:
        fast.stop()
        slow.stop()
