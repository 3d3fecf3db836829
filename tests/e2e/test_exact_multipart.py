"""Multipart uploads as S3 answers them, against a real ``s4 serve`` (issue 13, items 6 and 8, ListParts paging).

The leak tests kill the gateway with SIGKILL for real while a Complete or a PUT is under way
in the inner store, start it again on the same store, and look at the store itself (the
embedded store's SQLite index, or SeaweedFS straight through boto3) to see what was left.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import signal
import sqlite3
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import Gateway, start_gateway

MiB = 1024 * 1024
POLL_LIMIT_S = 120.0
"""Generous: the machine may be loaded; polls end as soon as what they wait for is there."""


def error_code(info) -> str:
    return info.value.response["Error"]["Code"]


def poll(what: str, condition: Callable[[], object], limit: float = POLL_LIMIT_S) -> object:
    deadline = time.monotonic() + limit
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# == item 8: the part that finished last wins =============================================================


class InterruptingBody:
    """``size`` bytes of ``char``, seekable; just before the read that reaches the end returns, ``interrupt``
    runs (ceph s3-tests' FakeWriteFile): the request is in flight, its last bytes not sent yet."""

    def __init__(self, size: int, char: bytes, interrupt: Callable[[], None] | None = None) -> None:
        self.size = size
        self.char = char
        self.interrupt = interrupt
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self.size - self.offset
        count = min(size, self.size - self.offset)
        self.offset += count
        if self.interrupt is not None and self.offset == self.size and count > 0:
            self.interrupt()
        return self.char * count

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.offset = {os.SEEK_SET: offset, os.SEEK_CUR: self.offset + offset, os.SEEK_END: self.size + offset}[whence]
        return self.offset

    def tell(self) -> int:
        return self.offset


@pytest.mark.parametrize("size", [8, 9 * MiB])  # one frame; several (a frame index per part)
def test_resending_a_part_the_send_that_finished_last_wins(gateway, bucket, size):
    """s3-tests ``test_multipart_resend_first_finishes_last``: part 1 is sent as A; while A's last bytes
    are still on their way, part 1 is sent again as B and finishes; then A finishes. The client completes
    with both ETags in the order the answers came (B, then A): A finished last, so A is the object."""
    c = gateway.client()
    key = "resend"
    reads = 0

    def count() -> None:
        nonlocal reads
        reads += 1

    # How many times the client reads a body to its end (checksums first, then the send): only the
    # last of those is the send, when the interruption must come.
    dry = c.create_multipart_upload(Bucket=bucket, Key="dry-run")["UploadId"]
    c.upload_part(Bucket=bucket, Key="dry-run", UploadId=dry, PartNumber=1, Body=InterruptingBody(size, b"C", count))
    c.abort_multipart_upload(Bucket=bucket, Key="dry-run", UploadId=dry)
    assert reads >= 1

    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    answered: list[str] = []
    seen = 0

    def send_b_on_the_last_read() -> None:
        nonlocal seen
        seen += 1
        if seen == reads:
            b = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"B" * size)
            answered.append(b["ETag"])

    a = c.upload_part(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        PartNumber=1,
        Body=InterruptingBody(size, b"A", send_b_on_the_last_read),
    )
    answered.append(a["ETag"])
    assert len(answered) == 2 and answered[1] == '"{}"'.format(hashlib.md5(b"A" * size).hexdigest())
    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, answered[1])]

    parts = [{"PartNumber": 1, "ETag": etag} for etag in answered]
    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"A" * size


# == ListParts: page by page ================================================================================


def test_list_parts_pages_from_the_marker(gateway, bucket):
    """Paging ListParts with small pages gives every part once, in order, with S3's markers; a part that
    has a sidecar (several frames) is one part."""
    c = gateway.client()
    upload_id = c.create_multipart_upload(Bucket=bucket, Key="paged")["UploadId"]
    sizes = {n: (5 * MiB if n == 3 else 10 + n) for n in range(1, 26)}
    etags = {}
    for n, size in sizes.items():
        etags[n] = c.upload_part(Bucket=bucket, Key="paged", UploadId=upload_id, PartNumber=n, Body=b"p" * size)["ETag"]
    seen = []
    marker = 0
    for expected in (range(1, 11), range(11, 21), range(21, 26)):
        page = c.list_parts(Bucket=bucket, Key="paged", UploadId=upload_id, MaxParts=10, PartNumberMarker=marker)
        assert [p["PartNumber"] for p in page["Parts"]] == list(expected)
        assert [(p["ETag"], p["Size"]) for p in page["Parts"]] == [(etags[n], sizes[n]) for n in expected]
        assert page["IsTruncated"] == (expected.stop <= 25)
        if page["IsTruncated"]:
            assert page["NextPartNumberMarker"] == expected.stop - 1
        seen += [p["PartNumber"] for p in page["Parts"]]
        marker = expected.stop - 1
    assert seen == list(range(1, 26))
    paginator = c.get_paginator("list_parts")
    pages = paginator.paginate(Bucket=bucket, Key="paged", UploadId=upload_id, PaginationConfig={"PageSize": 7})
    assert [p["PartNumber"] for page in pages for p in page["Parts"]] == list(range(1, 26))
    c.abort_multipart_upload(Bucket=bucket, Key="paged", UploadId=upload_id)


# == item 6: leftovers of operations killed for real, and DeleteBucket ======================================

HANG_HOOK = '''
"""Test hook (sitecustomize): the inner store's calls named in S4_TEST_HANG hang after S4_TEST_HANG_AFTER of
them went through, so that the test can SIGKILL the gateway in the middle of the operation."""
import asyncio
import functools
import os

_calls = 0


def _hanging(original):
    @functools.wraps(original)
    async def call(*args, **kwargs):
        global _calls
        _calls += 1
        if _calls > int(os.environ["S4_TEST_HANG_AFTER"]):
            await asyncio.Event().wait()
        return await original(*args, **kwargs)

    return call


if os.environ.get("S4_TEST_HANG"):
    from s4.store.filesystem import FilesystemStore
    from s4.store.s3.store import S3Store

    for _name in os.environ["S4_TEST_HANG"].split(","):
        for _cls in (FilesystemStore, S3Store):
            if hasattr(_cls, _name):
                setattr(_cls, _name, _hanging(getattr(_cls, _name)))
'''


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        upstream = start_seaweed(tmp_path_factory.mktemp("exact-mp-seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield upstream
    upstream.stop()


class Store:
    """The store under a test's gateways: the embedded one in a data directory, or SeaweedFS.

    It looks at the inner multipart uploads and objects directly, not through a gateway.
    """

    def __init__(self, tmp: Path, seaweed=None) -> None:
        self.tmp = tmp
        self.seaweed = seaweed
        self.starts = 0

    def start(self, hang: str | None = None, hang_after: int = 0, env: dict[str, str] | None = None) -> Gateway:
        self.starts += 1
        extra = dict(self.seaweed.env()) if self.seaweed is not None else {}
        extra.update(env or {})
        if hang is not None:
            hooks = self.tmp / "hooks"
            hooks.mkdir(exist_ok=True)
            (hooks / "sitecustomize.py").write_text(textwrap.dedent(HANG_HOOK))
            path = [str(hooks), *filter(None, [os.environ.get("PYTHONPATH")])]
            extra.update(PYTHONPATH=os.pathsep.join(path), S4_TEST_HANG=hang, S4_TEST_HANG_AFTER=str(hang_after))
        # The same data directory every time; a log per start.
        gateway = start_gateway(self.tmp / "gateway", extra_env=extra)
        return gateway

    def uploads(self, bucket: str) -> list[tuple[str, str, int]]:
        """``(key, upload id, parts)`` of every inner multipart upload of ``bucket``."""
        if self.seaweed is not None:
            s3 = self.seaweed.client()
            try:
                listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "NoSuchBucket":
                    return []
                raise
            return [
                (
                    u["Key"],
                    u["UploadId"],
                    len(s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])),
                )
                for u in listed
            ]
        with contextlib.closing(sqlite3.connect(self.tmp / "gateway" / "data" / "index.sqlite3", timeout=30)) as db:
            return db.execute(
                "SELECT u.key, u.upload_id, (SELECT COUNT(*) FROM parts p WHERE p.upload_id = u.upload_id)"
                " FROM uploads u WHERE u.bucket = ?",
                (bucket,),
            ).fetchall()

    def keys(self, bucket: str) -> list[str]:
        """Every key the store holds in ``bucket``, the gateway's own included, but for its bucket records
        (``.s4bucket/``: the owner, the savings ledger), which belong to the bucket and go with it."""
        return [k for k in self._all_keys(bucket) if not k.startswith(".s4bucket/")]

    def _all_keys(self, bucket: str) -> list[str]:
        if self.seaweed is not None:
            try:
                return [o["Key"] for o in self.seaweed.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "NoSuchBucket":
                    return []
                raise
        with contextlib.closing(sqlite3.connect(self.tmp / "gateway" / "data" / "index.sqlite3", timeout=30)) as db:
            return [k for (k,) in db.execute("SELECT key FROM objects WHERE bucket = ? ORDER BY key", (bucket,))]

    def buckets(self) -> list[str]:
        if self.seaweed is not None:
            return [b["Name"] for b in self.seaweed.client().list_buckets()["Buckets"]]
        with contextlib.closing(sqlite3.connect(self.tmp / "gateway" / "data" / "index.sqlite3", timeout=30)) as db:
            return [name for (name,) in db.execute("SELECT name FROM buckets")]


@pytest.fixture(params=["embedded", "seaweedfs"])
def store(request, tmp_path):
    return Store(tmp_path, request.getfixturevalue("seaweed") if request.param == "seaweedfs" else None)


def kill(gateway: Gateway) -> None:
    """SIGKILL: no handler runs, nothing is cleaned up."""
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(30)


def in_background(fn: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(Exception):  # the gateway is killed under it
            fn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sigkill_during_complete_then_the_retry_leaves_nothing_behind(store):
    """A Complete killed while it assembles the object in the inner store's own multipart upload; after a
    restart the client retries the Complete, which succeeds, and nothing of the killed one is left: the
    object and the bucket can be deleted and the store holds no upload (before: the killed Complete's
    inner upload stayed, and DeleteBucket answered 409 BucketNotEmpty forever)."""
    bucket = "sigkill-complete"
    part1, part2 = random.Random(6).randbytes(5 * MiB + 1000), b"tail of the object" * 1000
    first = store.start(hang="upload_part,upload_part_copy", hang_after=1)
    try:
        c = first.client(read_timeout=300)
        c.create_bucket(Bucket=bucket)
        upload_id = c.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
        parts = [
            {
                "PartNumber": n,
                "ETag": c.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=n, Body=data)["ETag"],
            }
            for n, data in ((1, part1), (2, part2))
        ]
        complete = functools.partial(
            c.complete_multipart_upload, Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        thread = in_background(complete)
        poll(
            "the Complete's inner upload, with its first part", lambda: [u for u in store.uploads(bucket) if u[2] >= 1]
        )
    finally:
        kill(first)
    thread.join(60)
    assert store.uploads(bucket)  # what the killed Complete left

    second = store.start()
    try:
        c = second.client(read_timeout=300)
        done = c.complete_multipart_upload(**complete.keywords)
        assert done["ETag"].endswith('-2"')
        assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == part1 + part2
        assert store.uploads(bucket) == []
        c.delete_object(Bucket=bucket, Key="big")
        c.delete_bucket(Bucket=bucket)
        assert bucket not in store.buckets()
        assert store.uploads(bucket) == [] and store.keys(bucket) == []
    finally:
        second.stop()


def test_sigkill_during_complete_the_sweep_at_start_aborts_the_inner_upload(store):
    """Killed the same way, but no retry comes: the sweep at the next start (leftovers idle past
    ``sweep.min_age``, 0 here) aborts the inner upload; the client's upload stays, whole, and completes."""
    bucket = "sigkill-sweep"
    part1, part2 = random.Random(7).randbytes(5 * MiB + 1000), b"end" * 1000
    first = store.start(hang="upload_part,upload_part_copy", hang_after=1)
    try:
        c = first.client(read_timeout=300)
        c.create_bucket(Bucket=bucket)
        upload_id = c.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
        parts = [
            {
                "PartNumber": n,
                "ETag": c.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=n, Body=d)["ETag"],
            }
            for n, d in ((1, part1), (2, part2))
        ]
        thread = in_background(
            functools.partial(
                c.complete_multipart_upload,
                Bucket=bucket,
                Key="big",
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        )
        poll(
            "the Complete's inner upload, with its first part", lambda: [u for u in store.uploads(bucket) if u[2] >= 1]
        )
    finally:
        kill(first)
    thread.join(60)

    second = store.start(env={"S4_SWEEP_MIN_AGE": "0"})
    try:
        poll("the sweep at start", lambda: store.uploads(bucket) == [])
        c = second.client(read_timeout=300)
        assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload_id]
        assert [p["PartNumber"] for p in c.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)["Parts"]] == [1, 2]
        c.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts})
        assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == part1 + part2
        assert store.uploads(bucket) == []
        assert store.keys(bucket) == ["big", "big.s4index"]
    finally:
        second.stop()


def test_sigkill_during_a_large_put_the_sweep_at_start_aborts_its_temporary_upload(seaweed, tmp_path):
    """Over S3 a large PUT goes up as a temporary multipart upload under ``.s4mpu/put-…``; a PUT killed
    halfway left it upstream for good. The sweep at the next start aborts it."""
    store = Store(tmp_path, seaweed)
    bucket = "sigkill-put"
    first = store.start(hang="_upload_buffer", hang_after=1)
    try:
        c = first.client(read_timeout=300)
        c.create_bucket(Bucket=bucket)
        body = random.Random(8).randbytes(20 * MiB)
        thread = in_background(functools.partial(c.put_object, Bucket=bucket, Key="large", Body=body))
        poll("the PUT's temporary upload", lambda: [u for u in store.uploads(bucket) if u[0].startswith(".s4mpu/put-")])
    finally:
        kill(first)
    thread.join(60)

    second = store.start(env={"S4_SWEEP_MIN_AGE": "0"})
    try:
        poll("the sweep at start", lambda: store.uploads(bucket) == [], limit=60)
        c = second.client()
        assert c.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
        assert store.keys(bucket) == []
        c.delete_bucket(Bucket=bucket)
        assert bucket not in store.buckets()
    finally:
        second.stop()


def test_delete_bucket_aborts_the_uploads_in_progress(gateway, bucket):
    """S3 deletes a bucket whose only contents are multipart uploads in progress, aborting them (s3-tests'
    cleanup relies on it); before, the gateway answered 409 BucketNotEmpty."""
    c = gateway.client()
    first = c.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    c.upload_part(Bucket=bucket, Key="a", UploadId=first, PartNumber=1, Body=b"x" * 20_000)
    c.upload_part(Bucket=bucket, Key="a", UploadId=first, PartNumber=2, Body=b"y")
    second = c.create_multipart_upload(Bucket=bucket, Key="b/c")["UploadId"]
    c.put_object(Bucket=bucket, Key="kept", Body=b"object")
    with pytest.raises(ClientError) as info:
        c.delete_bucket(Bucket=bucket)
    assert error_code(info) == "BucketNotEmpty"  # an object keeps it, and nothing was aborted
    assert len(c.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2
    c.delete_object(Bucket=bucket, Key="kept")
    assert c.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        c.head_bucket(Bucket=bucket)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    c.create_bucket(Bucket=bucket)
    assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    for key, upload_id in (("a", first), ("b/c", second)):
        with pytest.raises(ClientError) as info:
            c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
        assert error_code(info) == "NoSuchUpload"
    if gateway.upstream is not None:  # nothing left upstream but the new bucket's records (its owner...)
        listed = gateway.upstream.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        assert [o["Key"] for o in listed if not o["Key"].startswith(".s4bucket/")] == []


def test_delete_bucket_with_only_the_gateways_leftovers(gateway, bucket):
    """Leftovers of interrupted operations (a staged part of an upload already gone, an orphan sidecar, a
    temporary, a dictionary nothing uses) are invisible to the client: the bucket lists empty, and
    DeleteBucket deletes it (before: 409 BucketNotEmpty forever)."""
    leftovers = [".s4mpu/00ff/part-00001", "gone.s4index", ".s4mpu/put-00ff", ".s4dict/00ff"]
    if gateway.upstream is not None:
        for key in leftovers:
            gateway.upstream.client().put_object(Bucket=bucket, Key=key, Body=b"leftover")
    else:
        import asyncio

        from s4.store.base import ObjectAttributes
        from s4.store.filesystem import FilesystemStore

        async def put_underneath() -> None:  # a second store on the same directory, as a second process may
            async with await FilesystemStore.open(gateway.data_dir) as inner:
                for key in leftovers:
                    await inner.put_object(bucket, key, _chunks(b"leftover"), ObjectAttributes())

        asyncio.run(put_underneath())
    c = gateway.client()
    assert c.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert c.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert bucket not in [b["Name"] for b in c.list_buckets()["Buckets"]]


async def _chunks(data: bytes):
    yield data
