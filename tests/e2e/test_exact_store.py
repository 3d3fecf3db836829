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

import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import sqlite3
import time

import pytest

from s4.codec import FrameIndex
from s4.codec.format.manifest import normalize_metadata
from s4.store.base import StoreError
from s4.store.filesystem import FilesystemStore
from tests.e2e.gateway import start_gateway
from tests.e2e.test_compressed_serving import fetch

MiB = 1024 * 1024
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


# -- item 4: an object stored uncompressed is checked before any byte of it is sent -------------------------


def inner_object(gw, bucket: str, key: str) -> tuple[bytes, dict[str, str], str | None]:
    """The stored bytes, metadata and content type of an inner object, read past the gateway."""
    if gw.upstream is not None:
        got = gw.upstream.client().get_object(Bucket=bucket, Key=key)
        return got["Body"].read(), got["Metadata"], got.get("ContentType")

    async def read(store: FilesystemStore):
        stream = await store.get_object(bucket, key)
        try:
            data = b"".join([chunk async for chunk in stream.body])
        finally:
            await stream.aclose()
        return data, stream.info.attributes.metadata, stream.info.attributes.content_type

    return on_data_dir(gw, read)


def on_data_dir(gw, action):
    """``action(store)`` on the embedded gateway's data directory, through a FilesystemStore of our own."""

    async def main():
        store = await FilesystemStore.open(gw.data_dir)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


def flip_at_rest(gw, bucket: str, key: str, position: int) -> None:
    """Damage one stored byte the way a disk or a bucket does: behind the gateway's back.

    Embedded store: in the object's file, in place (its ETag, and so its sidecar, still match).
    SeaweedFS: the damaged bytes PUT straight to the upstream with the same metadata.
    """
    if gw.upstream is None:
        with contextlib.closing(sqlite3.connect(f"file:{gw.data_dir / 'index.sqlite3'}?mode=ro", uri=True)) as db:
            (file_id,) = db.execute("SELECT file FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
        path = gw.data_dir / "objects" / file_id[:2] / file_id[2:4] / file_id
        with path.open("r+b") as f:
            f.seek(position)
            byte = f.read(1)
            f.seek(position)
            f.write(bytes([byte[0] ^ 0x5A]))
        return
    stored, metadata, content_type = inner_object(gw, bucket, key)
    damaged = bytearray(stored)
    damaged[position] ^= 0x5A
    extra = {"ContentType": content_type} if content_type else {}
    gw.upstream.client().put_object(Bucket=bucket, Key=key, Body=bytes(damaged), Metadata=metadata, **extra)


def other_sidecar_path(gw, bucket: str, key: str) -> bool:
    """Switch the gateway's ranged reads to the other way of finding frames; False when there is no sidecar.

    Embedded (sidecar still bound after an in-place flip): remove it, so reads walk the frames.
    SeaweedFS (sidecar stale after the re-PUT): bind it to the damaged object, so reads trust it.
    """
    sidecar = key + ".s4index"
    if gw.upstream is None:

        async def remove(store: FilesystemStore) -> bool:
            try:
                await store.head_object(bucket, sidecar)
            except StoreError:
                return False
            await store.delete_object(bucket, sidecar)
            return True

        return on_data_dir(gw, remove)
    upstream = gw.upstream.client()
    try:
        index = FrameIndex.decode(upstream.get_object(Bucket=bucket, Key=sidecar)["Body"].read())
    except upstream.exceptions.NoSuchKey:
        return False
    head = upstream.head_object(Bucket=bucket, Key=key)
    rebound = FrameIndex.from_entries(index.entries, head["ContentLength"], head["ETag"].strip('"'))
    upstream.put_object(Bucket=bucket, Key=sidecar, Body=rebound.encode())
    return True


def assert_never_wrong(client, bucket: str, key: str, data: bytes, damaged_at: int) -> None:
    """Full and ranged GETs around the damage: an error or a cut body, never a wrong byte; the rest reads fine."""
    cases = [
        (None, 0, len(data)),
        ("bytes=0-", 0, len(data)),
        (f"bytes={damaged_at - 1000}-{damaged_at + 1000}", damaged_at - 1000, 2001),
        (f"bytes={damaged_at}-{damaged_at}", damaged_at, 1),
        (f"bytes={damaged_at - 5}-", damaged_at - 5, len(data) - damaged_at + 5),
        (f"bytes=-{len(data) - damaged_at + 7}", damaged_at - 7, len(data) - damaged_at + 7),
    ]
    for byte_range, first, length in cases:
        got, error, announced = fetch(client, bucket, key, byte_range)
        assert got == data[first : first + len(got)], f"wrong bytes sent for {byte_range}"
        assert len(got) < length, f"{byte_range}: a damaged body came back whole"
        assert error is not None or announced == -1 or len(got) < announced, byte_range
    # The frame before the damage is intact and still served.
    assert client.get_object(Bucket=bucket, Key=key, Range="bytes=0-999")["Body"].read() == data[:1000]


@pytest.mark.parametrize("kind", ["random", "jpeg"])
def test_a_byte_flipped_at_rest_in_an_incompressible_object_is_never_served(gw, bucket, kind):
    rng = random.Random(kind)
    if kind == "random":
        data, content_type = rng.randbytes(10 * MiB + 777), "application/octet-stream"
    else:  # JPEG magic: stored uncompressed by its signature, whatever follows
        data, content_type = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + text(9 * MiB, seed=5), "image/jpeg"
    client = gw.client()
    client.put_object(Bucket=bucket, Key="photo", Body=data, ContentType=content_type)
    stored, metadata, _ = inner_object(gw, bucket, "photo")
    assert normalize_metadata(metadata)["s4-codec"] == "passthrough"
    position = len(stored) // 2
    flip_at_rest(gw, bucket, "photo", position)
    # The original offset of the damaged byte: just under ``position``, whatever the framing costs.
    damaged_at = position - (len(stored) - len(data))
    assert_never_wrong(client, bucket, "photo", data, damaged_at)
    if other_sidecar_path(gw, bucket, "photo"):
        assert_never_wrong(client, bucket, "photo", data, damaged_at)
    assert gw.process.poll() is None


# -- item 5: a write that is stored is answered as stored; 1024-byte keys work -----------------------------------


def long_key(length: int, tail: str) -> str:
    """A key of ``length`` UTF-8 bytes in 200-byte folders (SeaweedFS keeps every path segment within 255 bytes)."""
    folders = ("d" * 199 + "/") * ((length - 1) // 200)
    return folders + tail * (length - len(folders))


def test_keys_up_to_1024_bytes_work_for_every_operation(gw, bucket):
    """Their ``.s4index`` name would pass 1024 bytes: the objects do without a sidecar, nothing fails."""
    client = gw.client()
    data = text(4 * MiB + 300_000, seed=6)  # two 4 MiB frames: an object that would get a sidecar
    for length in (1017, 1020, 1024):
        key = long_key(length, "k")
        assert len(key.encode()) == length
        put = client.put_object(Bucket=bucket, Key=key, Body=data)
        assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data
        span = f"bytes={4 * MiB - 10}-{4 * MiB + 10}"  # across the frame boundary
        assert client.get_object(Bucket=bucket, Key=key, Range=span)["Body"].read() == data[4 * MiB - 10 : 4 * MiB + 11]
    key = long_key(1024, "k")
    assert_listing_matches_head(client, bucket, key)

    copy = long_key(1024, "c")
    client.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": key})
    assert client.get_object(Bucket=bucket, Key=copy, Range="bytes=-100")["Body"].read() == data[-100:]

    multi = long_key(1024, "m")
    parts = [text(5 * MiB, seed=7), text(1 * MiB, seed=8)]
    upload = client.create_multipart_upload(Bucket=bucket, Key=multi)["UploadId"]
    etags = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(Bucket=bucket, Key=multi, UploadId=upload, PartNumber=n, Body=p)["ETag"],
        }
        for n, p in enumerate(parts, start=1)
    ]
    done = client.complete_multipart_upload(Bucket=bucket, Key=multi, UploadId=upload, MultipartUpload={"Parts": etags})
    again = client.complete_multipart_upload(
        Bucket=bucket, Key=multi, UploadId=upload, MultipartUpload={"Parts": etags}
    )
    assert again["ETag"] == done["ETag"]  # a retried Complete answers the same
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    whole = b"".join(parts)
    got = client.get_object(Bucket=bucket, Key=multi, Range=f"bytes={5 * MiB - 3}-{5 * MiB + 3}")
    assert got["Body"].read() == whole[5 * MiB - 3 : 5 * MiB + 4]

    for k in (*[long_key(n, "k") for n in (1017, 1020, 1024)], copy, multi):
        assert client.delete_object(Bucket=bucket, Key=k)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    client.delete_bucket(Bucket=bucket)


def test_a_sidecar_the_upstream_refuses_does_not_fail_the_write(gw, bucket):
    """A 250-byte file name: fine for the object, but SeaweedFS refuses the 258-byte ``.s4index`` segment.

    (The embedded store takes both: there the object simply gets its sidecar.)
    """
    client = gw.client()
    key = "folder/" + "f" * 250
    data = text(4 * MiB + 123_456, seed=9)
    put = client.put_object(Bucket=bucket, Key=key, Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert (
        client.get_object(Bucket=bucket, Key=key, Range="bytes=4194300-4194310")["Body"].read() == data[4194300:4194311]
    )
    copy = "folder/" + "g" * 250
    client.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": key})
    assert client.get_object(Bucket=bucket, Key=copy, Range="bytes=-10")["Body"].read() == data[-10:]
