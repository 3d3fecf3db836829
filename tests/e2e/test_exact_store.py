"""Issue 13, the compressing store's part: answers that are exactly S3's, against a real ``s4 serve``.

Each case runs over the embedded store and over a real SeaweedFS upstream (where the
listing carries no metadata and the gateway HEADs and caches what it lists):

- listings never show an old ETag or LastModified (identical rewrite, REPLACE copy, a
  bucket deleted and re-created), and list the same second HEAD answers;
- an object stored uncompressed is still checked before any byte of it is sent;
- a sidecar that cannot be written (a key too long for one) never fails a stored write,
  and 1024-byte keys work for every operation.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import time

import botocore.exceptions
import pytest
import urllib3.exceptions

from tests.e2e.gateway import start_gateway

MiB = 1024 * 1024
READ_ERRORS = (
    botocore.exceptions.BotoCoreError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
)
_names = itertools.count()


@pytest.fixture(scope="module", params=["embedded", "seaweedfs"])
def gw(request, tmp_path_factory):
    """A gateway over the embedded store, or over a real SeaweedFS (``gw.upstream`` then set)."""
    tmp = tmp_path_factory.mktemp(f"exact-{request.param}")
    upstream = None
    if request.param == "seaweedfs":
        from tests.seaweed import SeaweedUnavailable, start_seaweed

        try:
            upstream = start_seaweed(tmp / "seaweed")
        except SeaweedUnavailable as exc:
            pytest.skip(f"SeaweedFS cannot run here: {exc}")
    gateway = start_gateway(tmp / "gateway", extra_env=upstream.env() if upstream else None)
    gateway.upstream = upstream
    yield gateway
    gateway.stop()
    if upstream is not None:
        upstream.stop()


@pytest.fixture
def bucket(gw):
    name = f"exact-{next(_names)}"
    gw.client().create_bucket(Bucket=name)
    return name


def text(size: int, seed: int = 0) -> bytes:
    line = b"2026-12-02T10:00:00Z INFO seed=%d request served path=/api/items status=200 n=%08d\n"
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line % (seed, n)
        n += 1
    return bytes(out[:size])


def listed(client, bucket: str, key: str, v1: bool = False) -> dict:
    answer = client.list_objects(Bucket=bucket) if v1 else client.list_objects_v2(Bucket=bucket)
    found = [o for o in answer.get("Contents", []) if o["Key"] == key]
    assert len(found) == 1, answer.get("Contents")
    return found[0]


def assert_listing_matches_head(client, bucket: str, key: str) -> dict:
    """Both listings show exactly what HEAD shows: ETag, size, and LastModified to the second (S3 lists .000Z)."""
    head = client.head_object(Bucket=bucket, Key=key)
    for v1 in (False, True):
        entry = listed(client, bucket, key, v1)
        assert entry["ETag"] == head["ETag"], (v1, entry, head)
        assert entry["Size"] == head["ContentLength"], (v1, entry, head)
        assert entry["LastModified"] == head["LastModified"], (v1, entry["LastModified"], head["LastModified"])
    return entry


def next_second() -> None:
    """Sleep into a later second than now, so a rewrite gets another LastModified."""
    time.sleep(1.05 + (1 - time.time() % 1))


# -- item 1: listings tell only what is still true ----------------------------------------------------------


def test_sync_after_an_identical_rewrite_uploads_nothing(gw, bucket, tmp_path):
    """aws s3 sync uploads a file newer than the listed object; a stale listed time re-uploads forever."""
    folder = tmp_path / "dir"
    folder.mkdir()
    data = text(300_000)
    (folder / "a.log").write_bytes(data)
    old = time.time() - 3600
    os.utime(folder / "a.log", (old, old))
    target = f"s3://{bucket}/dir"
    assert b"upload:" in gw.aws("s3", "sync", folder, target).stdout
    assert b"upload:" not in gw.aws("s3", "sync", folder, target).stdout  # lists (and caches) the object
    next_second()
    touched = time.time()
    os.utime(folder / "a.log", (touched, touched))  # same bytes, newer time: sync uploads them again
    next_second()
    assert b"upload:" in gw.aws("s3", "sync", folder, target).stdout
    for _ in range(2):
        assert b"upload:" not in gw.aws("s3", "sync", folder, target).stdout
    client = gw.client()
    assert_listing_matches_head(client, bucket, "dir/a.log")
    assert listed(client, bucket, "dir/a.log")["LastModified"].timestamp() >= int(touched)


def test_replace_copy_lists_what_head_answers_and_listed_conditions_hold(gw, bucket):
    client = gw.client()
    data = text(2 * MiB + 5, seed=1)  # several frames: a sidecar too
    client.put_object(Bucket=bucket, Key="k", Body=data, Metadata={"v": "1"})
    before = assert_listing_matches_head(client, bucket, "k")
    next_second()
    client.copy_object(
        Bucket=bucket,
        Key="k",
        CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    entry = assert_listing_matches_head(client, bucket, "k")
    assert entry["LastModified"] > before["LastModified"]
    # What a client does with a listing (s3fs, sync tools): conditions on the listed ETag and time hold.
    got = client.get_object(Bucket=bucket, Key="k", IfMatch=entry["ETag"])
    assert got["Body"].read() == data and got["Metadata"] == {"v": "2"}
    got = client.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=entry["LastModified"])
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    got["Body"].close()


def test_a_recreated_bucket_lists_its_new_objects(gw):
    client = gw.client()
    name = f"exact-recreated-{next(_names)}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="same", Body=text(100_000, seed=2))
    client.put_object(Bucket=name, Key="other", Body=text(100_000, seed=3))
    assert_listing_matches_head(client, name, "same")
    assert_listing_matches_head(client, name, "other")
    for key in ("same", "other"):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)
    next_second()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="same", Body=text(100_000, seed=2))  # identical bytes
    new = text(100_000, seed=4)
    client.put_object(Bucket=name, Key="other", Body=new)
    assert_listing_matches_head(client, name, "same")
    entry = assert_listing_matches_head(client, name, "other")
    assert entry["ETag"] == f'"{hashlib.md5(new).hexdigest()}"'
