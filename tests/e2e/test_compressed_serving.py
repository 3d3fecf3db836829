"""A real ``s4 serve`` stores what boto3 puts in the S4 format, serves what the Rust gateway wrote,
and never hands a client wrong bytes from a damaged object.

The test process opens the server's data directory with a second FilesystemStore (several
processes may share one) to look at, and tamper with, what the server stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import http.client
import itertools
import random

import botocore.exceptions
import pytest
import urllib3.exceptions

from s4.codec import ChunkManifest, FrameIndex, crc32c, iter_frames
from s4.codec.format.frame import FRAME_HEADER_SIZE
from s4.codec.format.manifest import normalize_metadata
from s4.store.base import ObjectAttributes
from s4.store.filesystem import FilesystemStore
from tests.conftest import GATEWAY_OBJECTS, load_meta
from tests.e2e.gateway import start_gateway

MiB = 1024 * 1024
BOUNDARY = 4194304  # multi_zstd's frame boundary
DICT_KEY = ".s4dict/9867d0e5cf974014"
READ_ERRORS = (
    botocore.exceptions.BotoCoreError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
)
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("gw-compressed"))
    yield gw
    gw.stop()


@pytest.fixture
def bucket(server):
    name = f"compressed-{next(_names)}"
    server.client().create_bucket(Bucket=name)
    return name


def log_text(size: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines, total, t = [], 0, 1_700_000_000_000
    while total < size:
        t += rng.randrange(1, 5000)
        line = (
            f"{t // 1000}.{t % 1000:03d} {rng.choice(('INFO', 'WARN', 'ERROR', 'DEBUG'))} "
            f"[{rng.choice(('auth', 'search', 'orders', 'mailer'))}] GET /api/v{rng.randrange(1, 4)}/items/"
            f"{rng.randrange(100000)} status={rng.choice((200, 204, 304, 404, 500))} ms={rng.random() * 800:.2f}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def on_data_dir(server, action):
    """Run ``action(store)`` against the server's data directory, through our own FilesystemStore."""

    async def main():
        store = await FilesystemStore.open(server.data_dir)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def _one(data: bytes):
    yield data


async def read_inner(store: FilesystemStore, bucket: str, key: str):
    stream = await store.get_object(bucket, key)
    try:
        return b"".join([chunk async for chunk in stream.body]), stream.info
    finally:
        await stream.aclose()


def read_until_error(response) -> tuple[bytes, Exception | None]:
    """What a client actually receives: the bytes before the stream ends or breaks, and the break."""
    body = response["Body"]
    got = bytearray()
    try:
        while chunk := body.read(256 * 1024):
            got += chunk
    except READ_ERRORS as exc:
        return bytes(got), exc
    finally:
        body.close()
    return bytes(got), None


def fetch(client, bucket: str, key: str, byte_range: str | None = None) -> tuple[bytes, Exception | None, int]:
    """(bytes received, the error that cut them short or None, the Content-Length announced)."""
    kwargs = {"Range": byte_range} if byte_range else {}
    try:
        response = client.get_object(Bucket=bucket, Key=key, **kwargs)
    except READ_ERRORS as exc:
        return b"", exc, -1
    got, error = read_until_error(response)
    return got, error, response["ContentLength"]


# -- (a) what boto3 puts is stored compressed ---------------------------------------------------------------


def test_text_put_by_boto3_is_stored_compressed(server, bucket):
    data = log_text(3 * MiB + 12345, seed=1)
    client = server.client()
    put = client.put_object(Bucket=bucket, Key="logs/app.log", Body=data, Metadata={"owner": "ann"})
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'

    stored, info = on_data_dir(server, lambda store: read_inner(store, bucket, "logs/app.log"))
    assert stored[:4] == b"S4F2"
    assert len(stored) < len(data) / 2
    frames = list(iter_frames([stored], stream_length=len(stored)))
    assert sum(f.header.original_size for f in frames) == len(data)
    manifest = ChunkManifest.from_metadata(info.attributes.metadata)
    assert (manifest.original_size, manifest.compressed_size, manifest.crc32c) == (
        len(data),
        len(stored),
        crc32c(data),
    )
    assert manifest.logical_etag == hashlib.md5(data).hexdigest()

    head = client.head_object(Bucket=bucket, Key="logs/app.log")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == put["ETag"]
    assert head["Metadata"] == {"owner": "ann"}
    assert client.get_object(Bucket=bucket, Key="logs/app.log")["Body"].read() == data
    ranged = client.get_object(Bucket=bucket, Key="logs/app.log", Range="bytes=1048570-2097160")
    assert ranged["Body"].read() == data[1048570:2097161]
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("logs/app.log", len(data), put["ETag"])]


# -- (b) objects the Rust gateway wrote ----------------------------------------------------------------------


def test_gateway_objects_are_served(server, bucket, fixtures_dir):
    async def place(store: FilesystemStore):
        for name in GATEWAY_OBJECTS:
            data = (fixtures_dir / f"{name}.body").read_bytes()
            attributes = ObjectAttributes(metadata=load_meta(fixtures_dir, name))
            await store.put_object(bucket, name, _one(data), attributes)
        sidecar = (fixtures_dir / "multi_zstd.s4index").read_bytes()
        await store.put_object(bucket, "multi_zstd.s4index", _one(sidecar), ObjectAttributes())
        dictionary = (fixtures_dir / "zstd_dict.bin").read_bytes()
        await store.put_object(bucket, DICT_KEY, _one(dictionary), ObjectAttributes())

    on_data_dir(server, place)
    client = server.client()
    sizes = {}
    for name in GATEWAY_OBJECTS:
        full = client.get_object(Bucket=bucket, Key=name)["Body"].read()
        original = fixtures_dir / f"{name}.orig"
        if original.exists():
            assert full == original.read_bytes(), name
        else:
            manifest = ChunkManifest.from_metadata(load_meta(fixtures_dir, name))
            assert (len(full), crc32c(full)) == (manifest.original_size, manifest.crc32c)
        head = client.head_object(Bucket=bucket, Key=name)
        assert head["ContentLength"] == len(full), name
        assert not any(k.lower().startswith("s4-") for k in head["Metadata"]), name
        sizes[name] = len(full)
        got = client.get_object(Bucket=bucket, Key=name, Range="bytes=10-99")["Body"].read()
        assert got == full[10:100], name

    full = client.get_object(Bucket=bucket, Key="multi_zstd")["Body"].read()
    for first, last in ((BOUNDARY - 1, BOUNDARY), (BOUNDARY - 5000, BOUNDARY + 5000), (BOUNDARY, len(full) - 1)):
        ranged = client.get_object(Bucket=bucket, Key="multi_zstd", Range=f"bytes={first}-{last}")
        assert ranged["ContentLength"] == last - first + 1
        assert ranged["Body"].read() == full[first : last + 1]

    listed = client.list_objects_v2(Bucket=bucket)
    assert sorted((o["Key"], o["Size"]) for o in listed["Contents"]) == sorted(sizes.items())
    rolled = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert "CommonPrefixes" not in rolled or rolled["CommonPrefixes"] == []
    assert sorted(o["Key"] for o in rolled["Contents"]) == sorted(GATEWAY_OBJECTS)
    for reserved in ("multi_zstd.s4index", DICT_KEY):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.get_object(Bucket=bucket, Key=reserved)
        assert info.value.response["Error"]["Code"] in ("AccessDenied", "InvalidArgument")


# -- (c) a damaged object never comes back as complete wrong bytes -------------------------------------------


def _put_and_damage(server, bucket: str, key: str, data: bytes, damage) -> list:
    server.client().put_object(Bucket=bucket, Key=key, Body=data)

    async def tamper(store: FilesystemStore):
        stored, info = await read_inner(store, bucket, key)
        frames = list(iter_frames([stored], stream_length=len(stored)))
        damaged = damage(bytearray(stored), frames)
        await store.put_object(bucket, key, _one(bytes(damaged)), info.attributes)
        assert normalize_metadata((await store.head_object(bucket, key)).attributes.metadata)["s4-framed"] == "true"
        return frames

    return on_data_dir(server, tamper)


def _flip_in_frame(index: int):
    def damage(stored: bytearray, frames) -> bytearray:
        frame = frames[index]
        stored[frame.offset + FRAME_HEADER_SIZE + frame.header.compressed_size // 2] ^= 0x5A
        return stored

    return damage


def test_a_damaged_frame_cuts_the_response_short(server, bucket):
    data = log_text(10 * MiB + 777, seed=2)
    frames = _put_and_damage(server, bucket, "damaged.log", data, _flip_in_frame(1))
    assert len(frames) >= 3
    damaged_from = frames[0].header.original_size
    client = server.client()
    cases = [None, "bytes=0-", f"bytes={damaged_from - 10}-{damaged_from + 10}", f"bytes={damaged_from}-"]
    for byte_range in cases:
        got, error, announced = fetch(client, bucket, "damaged.log", byte_range)
        first = 0 if byte_range is None else int(byte_range[6:].split("-")[0])
        expected = data[first:] if byte_range is None or byte_range.endswith("-") else data[first : first + 21]
        assert got == expected[: len(got)], byte_range  # never a wrong byte
        assert len(got) < len(expected), byte_range  # never the whole body
        assert error is not None or announced == -1 or len(got) < announced, byte_range
    # The undamaged first frame is still served, and the server is still up.
    assert client.get_object(Bucket=bucket, Key="damaged.log", Range="bytes=0-999")["Body"].read() == data[:1000]
    assert server.process.poll() is None


def test_a_truncated_body_cuts_the_response_short(server, bucket):
    data = log_text(9 * MiB, seed=3)
    _put_and_damage(server, bucket, "cut.log", data, lambda stored, frames: stored[: len(stored) - 1000])
    got, error, announced = fetch(server.client(), bucket, "cut.log")
    assert got == data[: len(got)]
    assert len(got) < len(data)
    assert error is not None or announced == -1 or len(got) < announced


def test_reordered_frames_never_reach_a_client_as_a_complete_body(server, bucket):
    data = log_text(10 * MiB, seed=4)

    def swap(stored: bytearray, frames) -> bytearray:
        a, b = frames[0], frames[1]
        assert a.header.original_size == b.header.original_size
        end = b.offset + b.header.record_size
        return stored[: a.offset] + stored[b.offset : end] + stored[a.offset : b.offset] + stored[end:]

    _put_and_damage(server, bucket, "swapped.log", data, swap)
    client = server.client(response_checksum_validation="when_required")
    got, error, _ = fetch(client, bucket, "swapped.log")
    assert got != data  # the frames really are out of order
    assert error is not None or len(got) < len(data)


def test_sidecar_of_a_multi_frame_put_is_bound_to_the_stored_object(server, bucket):
    data = log_text(9 * MiB + 5, seed=5)
    server.client().put_object(Bucket=bucket, Key="big.log", Body=data)

    async def look(store: FilesystemStore):
        stored, info = await read_inner(store, bucket, "big.log")
        sidecar, _ = await read_inner(store, bucket, "big.log.s4index")
        return stored, info, FrameIndex.decode(sidecar)

    stored, info, index = on_data_dir(server, look)
    assert index.matches(info.etag, info.size)
    frames = list(iter_frames([stored], stream_length=len(stored)))
    assert [(e.compressed_offset, e.compressed_size) for e in index.entries] == [
        (f.offset, f.header.record_size) for f in frames
    ]
    names = [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert names == ["big.log"]


def test_aws_cli_multipart_stores_within_five_percent_of_a_single_put(server, bucket, tmp_path):
    """40 MB of text sent by aws-cli in 8 MiB parts vs the same bytes in one PUT: no padding, same frames."""
    data = log_text(40_000_000, seed=40)
    source = tmp_path / "big.log"
    source.write_bytes(data)
    server.aws("s3", "cp", source, f"s3://{bucket}/multipart.log")  # aws-cli's default: 8 MiB parts
    server.client().put_object(Bucket=bucket, Key="single.log", Body=data)

    async def sizes(store):
        multi = await store.head_object(bucket, "multipart.log")
        single = await store.head_object(bucket, "single.log")
        return multi, single

    multi, single = on_data_dir(server, sizes)
    assert normalize_metadata(multi.attributes.metadata)["s4-multipart"] == "true"
    print(f"stored: multipart {multi.size} B, single PUT {single.size} B, original {len(data)} B")
    assert multi.size <= single.size * 1.05, (multi.size, single.size)
    assert single.size < len(data) / 3
    back = tmp_path / "back.log"
    server.aws("s3", "cp", f"s3://{bucket}/multipart.log", back)
    assert back.read_bytes() == data


# -- (d) an object this node cannot decode is refused before the response starts -----------------------------


def test_an_object_only_a_gpu_can_decode_is_a_503_naming_the_codec(server, bucket):
    """nvcomp-bitcomp has no CPU decoder: on a node without a GPU the client gets a 503 that says why,
    for full and ranged reads alike, not a 200 whose body is cut."""
    server.client().put_object(Bucket=bucket, Key="columns.bin", Body=log_text(64 * 1024, seed=5))

    async def relabel(store: FilesystemStore):
        stored, info = await read_inner(store, bucket, "columns.bin")
        metadata = {
            name: ("nvcomp-bitcomp" if name.lower().endswith("s4-codec") else value)
            for name, value in info.attributes.metadata.items()
        }
        assert metadata != info.attributes.metadata
        attributes = dataclasses.replace(info.attributes, metadata=metadata)
        await store.put_object(bucket, "columns.bin", _one(stored), attributes)

    on_data_dir(server, relabel)
    client = server.client()
    for extra in ({}, {"Range": "bytes=10-99"}):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.get_object(Bucket=bucket, Key="columns.bin", **extra)
        response = info.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert response["Error"]["Code"] == "ServiceUnavailable"
        assert "nvcomp-bitcomp" in response["Error"]["Message"]
