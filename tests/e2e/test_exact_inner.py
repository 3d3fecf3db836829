"""The inner stores keep S3's promises under stress: reads during overwrites, a full disk, private files.

Each test runs a real ``s4 serve`` over the embedded store and, where the case touches the
inner store's protocol, over a real SeaweedFS upstream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.e2e.gateway import start_gateway

KiB = 1024
MiB = 1024 * KiB

SMALL_FRAMES = "frames:\n  single_frame_max: 65536\n  medium_frame: 65536\n  unknown_frame: 65536\n"
"""64 KiB frames: objects of a few hundred KiB are multi-frame, so Range GETs use sidecars and frame walks."""


def _start(tmp, backend: str, config: str = SMALL_FRAMES):
    """A gateway over the embedded store or over a fresh SeaweedFS; returns (gateway, upstream or None)."""
    tmp.mkdir(parents=True, exist_ok=True)
    config_path = tmp / "s4.yaml"
    config_path.write_text(config)
    upstream = None
    env = None
    if backend == "s3-http":
        from tests.seaweed import SeaweedUnavailable, start_seaweed

        try:
            upstream = start_seaweed(tmp / "seaweed")
        except SeaweedUnavailable as exc:
            pytest.skip(f"SeaweedFS cannot run here: {exc}")
        env = upstream.env()
    gateway = start_gateway(tmp / "gateway", extra_args=("--config", str(config_path)), extra_env=env)
    return gateway, upstream


@pytest.fixture(params=["embedded", "s3-http"])
def small_frame_gateway(request, tmp_path):
    gateway, upstream = _start(tmp_path, request.param)
    yield gateway
    gateway.stop()
    if upstream is not None:
        upstream.stop()


# --- item 7: reads under concurrent overwrite ---------------------------------------------------------------


def _text(seed: int, size: int) -> bytes:
    """Compressible bytes that differ per seed (stored as zstd frames)."""
    line = b"version %03d line %08d: the quick brown fox jumps over the lazy dog\n"
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line % (seed, n)
        n += 1
    return bytes(out[:size])


def _versions() -> list[bytes]:
    """Distinct sizes, so a Content-Range's total names the version; framed and raw ones mixed."""
    rng = random.Random(7)
    versions = []
    for i in range(8):
        size = 200 * KiB + i * 37 * KiB + i
        versions.append(_text(i, size) if i % 3 else rng.randbytes(size))  # every third one incompressible
    return versions


def _etag(version: bytes) -> str:
    """S3's ETag of a version: MD5, or for the multipart one (parts of 5 MiB) the MD5 of the parts' MD5s."""
    if len(version) <= 5 * MiB:
        return f'"{hashlib.md5(version).hexdigest()}"'
    parts = [version[: 5 * MiB], version[5 * MiB :]]
    return f'"{hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()}-2"'


def _is_one_of(versions: list[bytes], body: bytes, etag: str, first: int, total: int) -> bool:
    """The bytes and ETag of one version (versions have distinct sizes, so ``total`` names it)."""
    for version in versions:
        if len(version) == total:
            return version[first : first + len(body)] == body and etag == _etag(version)
    return False


def test_reads_during_overwrites_serve_one_whole_version(small_frame_gateway):
    """16 writers and 16 readers on one key: every GET, Range GET and GET of part 1 (partNumber=1) succeeds
    with the bytes of exactly one version (S3 never fails a read because of a concurrent write). A part
    was read at the offsets of a HEAD's version from whatever version a GET then found."""
    gateway = small_frame_gateway
    setup = gateway.client()
    setup.create_bucket(Bucket="race")
    versions = _versions()
    multipart = _text(99, 5 * MiB + 100 * KiB)  # one writer also completes multipart versions
    setup.put_object(Bucket="race", Key="hot", Body=versions[0])
    stop = time.monotonic() + 20
    failures: list[str] = []
    counts = {"put": 0, "get": 0, "range": 0, "part": 0}
    lock = threading.Lock()

    def note(kind: str, problem: str | None = None) -> None:
        with lock:
            if problem is None:
                counts[kind] += 1
            elif len(failures) < 20:
                failures.append(f"{kind}: {problem}")

    def writer(n: int) -> None:
        client = gateway.client()
        i = n
        while time.monotonic() < stop:
            try:
                if n == 0 and i % 4 == 0:
                    upload = client.create_multipart_upload(Bucket="race", Key="hot")["UploadId"]
                    parts = []
                    for number, piece in enumerate((multipart[: 5 * MiB], multipart[5 * MiB :]), 1):
                        etag = client.upload_part(
                            Bucket="race", Key="hot", UploadId=upload, PartNumber=number, Body=piece
                        )["ETag"]
                        parts.append({"PartNumber": number, "ETag": etag})
                    client.complete_multipart_upload(
                        Bucket="race", Key="hot", UploadId=upload, MultipartUpload={"Parts": parts}
                    )
                else:
                    client.put_object(Bucket="race", Key="hot", Body=versions[i % len(versions)])
                note("put")
            except (ClientError, BotoCoreError) as exc:
                note("put", repr(exc))
            i += 1

    def reader(n: int) -> None:
        client = gateway.client()
        rng = random.Random(n)
        candidates = [*versions, multipart]
        while time.monotonic() < stop:
            roll = rng.random()
            kind = "get" if roll < 0.25 else "part" if roll < 0.45 else "range"
            try:
                if kind == "part":
                    answer = client.get_object(Bucket="race", Key="hot", PartNumber=1)
                    body = answer["Body"].read()
                    # Part 1: all of a simple version, the first 5 MiB of the multipart one.
                    ok = any(
                        answer["ETag"] == _etag(v) and body == (v[: 5 * MiB] if len(v) > 5 * MiB else v)
                        for v in candidates
                    )
                elif kind == "get":
                    answer = client.get_object(Bucket="race", Key="hot")
                    body = answer["Body"].read()
                    ok = _is_one_of(candidates, body, answer["ETag"], 0, len(body))
                else:
                    shape = rng.random()
                    if shape < 0.15:
                        wanted = f"bytes=-{rng.randrange(1, 300 * KiB)}"
                    elif shape < 0.25:
                        wanted = "bytes=0-"
                    else:
                        first = rng.randrange(0, 190 * KiB)
                        wanted = f"bytes={first}-{first + rng.randrange(0, 100 * KiB)}"
                    answer = client.get_object(Bucket="race", Key="hot", Range=wanted)
                    body = answer["Body"].read()
                    span, _, total = answer["ContentRange"].removeprefix("bytes ").partition("/")
                    first = int(span.split("-")[0])
                    ok = len(body) == answer["ContentLength"] and _is_one_of(
                        candidates, body, answer["ETag"], first, int(total)
                    )
                if ok:
                    note(kind)
                else:
                    note(kind, "bytes that are no single version")
            except (ClientError, BotoCoreError) as exc:
                note(kind, repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert counts["put"] > 16 and counts["get"] > 5 and counts["range"] > 16 and counts["part"] > 5, counts


# --- smaller promise: the data directory is private ---------------------------------------------------------


def test_data_directory_and_credentials_are_private_whatever_the_umask(tmp_path):
    """Under umask 000, every directory the embedded store makes is 0700 and every file 0600, the
    generated credentials included (others on the machine must not read objects, index or secret)."""
    previous = os.umask(0)
    try:
        gateway = start_gateway(tmp_path / "gateway", env_credentials=False)
    finally:
        os.umask(previous)
    try:
        saved = json.loads((gateway.data_dir / "credentials.json").read_text())
        client = boto3.client(
            "s3",
            endpoint_url=gateway.endpoint,
            aws_access_key_id=saved["access_key_id"],
            aws_secret_access_key=saved["secret_access_key"],
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="private")
        client.put_object(Bucket="private", Key="small", Body=b"hello")
        client.put_object(Bucket="private", Key="big", Body=_text(1, 3 * MiB))
        upload = client.create_multipart_upload(Bucket="private", Key="mp")["UploadId"]
        client.upload_part(Bucket="private", Key="mp", UploadId=upload, PartNumber=1, Body=_text(2, 5 * MiB))
        modes = {}
        for directory, _, files in os.walk(gateway.data_dir):
            for name in [directory, *(os.path.join(directory, f) for f in files)]:
                modes[os.path.relpath(name, gateway.data_dir)] = stat.S_IMODE(os.stat(name).st_mode)
        assert modes["credentials.json"] == 0o600
        assert modes["index.sqlite3"] == 0o600 and modes["index.sqlite3-wal"] == 0o600
        assert any(name.startswith("objects/") and len(name) > 20 for name in modes)  # object files were seen
        wrong = {
            name: oct(mode)
            for name, mode in modes.items()
            if mode != (0o700 if os.path.isdir(gateway.data_dir / name) else 0o600)
        }
        assert not wrong, wrong
    finally:
        gateway.stop()


# --- item 10: a full disk ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real small filesystem (a tmpfs of 40 MiB) for the data directory: writes there meet ENOSPC."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a small filesystem for the disk-full tests needs root (mount -t tmpfs)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_disk_gateway(small_disk, tmp_path):
    gateway = start_gateway(tmp_path / "gateway", extra_args=("--data-dir", str(small_disk / "data")))
    gateway.data_dir = small_disk / "data"
    yield gateway
    gateway.stop()


def _fill(path) -> None:
    """Write ``path`` until the filesystem has not one block left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (256 * KiB, 4 * KiB, 1):
            data = os.urandom(chunk)
            with contextlib.suppress(OSError):
                while os.write(fd, data):
                    pass
    finally:
        os.close(fd)


def _ready(gateway) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(gateway.endpoint + "/ready", timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _storage_full(exc: ClientError) -> bool:
    error = exc.response["Error"]
    return (
        exc.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        and error["Code"] == "XMinioStorageFull"
        and "minimum free drive threshold" in error["Message"]
        and bool(exc.response["ResponseMetadata"].get("RequestId"))
    )


def test_a_full_disk_is_507_and_not_ready_until_room_is_made(full_disk_gateway):
    """Filled by something else: PUT and UploadPart answer 507 XMinioStorageFull, reads still work,
    /ready is 503 naming the condition; once room is made, all is well again without a restart."""
    gateway = full_disk_gateway
    client = gateway.client()
    client.create_bucket(Bucket="full")
    kept = os.urandom(300 * KiB)
    client.put_object(Bucket="full", Key="kept", Body=kept)
    upload = client.create_multipart_upload(Bucket="full", Key="mp")["UploadId"]
    assert _ready(gateway)[0] == 200
    ballast = gateway.data_dir.parent / "ballast"
    _fill(ballast)
    for attempt in (
        lambda: client.put_object(Bucket="full", Key="new", Body=os.urandom(200 * KiB)),
        lambda: client.put_object(Bucket="full", Key="tiny", Body=b"x"),
        lambda: client.upload_part(Bucket="full", Key="mp", UploadId=upload, PartNumber=1, Body=os.urandom(KiB)),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert _storage_full(refused.value), refused.value.response
    assert client.get_object(Bucket="full", Key="kept")["Body"].read() == kept
    status, reason = _ready(gateway)
    assert status == 503 and "storage full" in reason, (status, reason)
    assert not list((gateway.data_dir / "tmp").iterdir())  # nothing half-written left behind

    ballast.unlink()
    deadline = time.monotonic() + 60
    while _ready(gateway)[0] != 200:
        assert time.monotonic() < deadline, _ready(gateway)
        time.sleep(0.5)
    fresh = os.urandom(200 * KiB)
    client.put_object(Bucket="full", Key="new", Body=fresh)
    assert client.get_object(Bucket="full", Key="new")["Body"].read() == fresh


def test_filling_the_disk_with_objects_answers_507_and_deletes_make_room(full_disk_gateway):
    gateway = full_disk_gateway
    client = gateway.client()
    client.create_bucket(Bucket="fill")
    stored: dict[str, bytes] = {}
    for n in range(100):
        data = os.urandom(MiB)
        try:
            client.put_object(Bucket="fill", Key=f"k{n}", Body=data)
        except ClientError as exc:
            assert _storage_full(exc), exc.response
            break
        stored[f"k{n}"] = data
    else:
        pytest.fail("100 MiB fitted on a 40 MiB filesystem")
    assert len(stored) > 10
    assert not list((gateway.data_dir / "tmp").iterdir())
    for key, data in stored.items():
        assert client.get_object(Bucket="fill", Key=key)["Body"].read() == data
    for key in list(stored)[:3]:
        client.delete_object(Bucket="fill", Key=key)
    client.put_object(Bucket="fill", Key="again", Body=os.urandom(MiB))


def test_complete_needs_no_second_copy_of_the_upload(full_disk_gateway):
    """24 MiB of parts on a 40 MiB filesystem: Complete used to copy them (twice: the inner parts, then
    the assembled object) and failed for want of room; now the parts become the object."""
    gateway = full_disk_gateway
    client = gateway.client()
    client.create_bucket(Bucket="mpu")
    parts = [os.urandom(8 * MiB) for _ in range(3)]
    upload = client.create_multipart_upload(Bucket="mpu", Key="big")["UploadId"]
    etags = [
        client.upload_part(Bucket="mpu", Key="big", UploadId=upload, PartNumber=n, Body=part)["ETag"]
        for n, part in enumerate(parts, 1)
    ]
    client.complete_multipart_upload(
        Bucket="mpu",
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]},
    )
    whole = b"".join(parts)
    assert client.get_object(Bucket="mpu", Key="big")["Body"].read() == whole
    ranged = client.get_object(Bucket="mpu", Key="big", Range=f"bytes={8 * MiB - 5}-{8 * MiB + 4}")
    assert ranged["Body"].read() == whole[8 * MiB - 5 : 8 * MiB + 5]
    client.delete_object(Bucket="mpu", Key="big")
    client.put_object(Bucket="mpu", Key="after", Body=os.urandom(20 * MiB))  # the room came back
