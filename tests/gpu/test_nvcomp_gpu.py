"""nvCOMP on a real GPU: every codec round trip from 0 B to 64 MiB, nvcomp-zstd read by plain zstd on
the CPU, 32 concurrent requests through one pool, and a PUT/GET through ``s4 serve --codec nvcomp-zstd``.

Skipped with the reason where there is no CUDA device or nvidia.nvcomp does not import.
"""

from __future__ import annotations

import array
import asyncio
import functools
import random

import pytest
import zstandard

from s4.codec import CodecKind, CodecRegistry, decode_frame
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS, read_container
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, setup_gpu

pytestmark = pytest.mark.gpu

KiB = 1024
MiB = 1024 * KiB
SIZES = [0, 1, 4095, 65536, 65537, MiB + 3, 64 * MiB]


@functools.cache
def _block(seed: int) -> bytes:
    rng = random.Random(seed)
    words = [b"GET", b"PUT", b"/bucket/key", b"200", b"404", b"latency=%d" % seed, b"\n"]
    out = bytearray()
    while len(out) < MiB:
        out += rng.choice(words) + b" "
    return bytes(out[:MiB])


def compressible(size: int, seed: int = 0) -> bytes:
    """Log-like text: 1 MiB blocks of random words, each block rotated so none repeats exactly."""
    block = _block(seed)
    pieces = [block[i % 997 :] + block[: i % 997] for i in range(-(-size // MiB))]
    return b"".join(pieces)[:size]


@functools.cache
def int_column(size: int) -> bytes:
    count = size // 4
    return array.array("i", (i // 3 for i in range(count))).tobytes() + b"\x07" * (size - 4 * count)


@pytest.fixture(scope="module")
def pool():
    registry = CodecRegistry.cpu_default()
    setup = setup_gpu(registry, GpuSettings(mode="on", streams=2, batch_wait_ms=1))
    gpu_pool = setup.pool(registry)
    assert isinstance(gpu_pool, GpuCodecPool)
    yield gpu_pool
    gpu_pool.close()


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("kind", sorted(NVCOMP_KINDS), ids=lambda k: k.wire_name)
@pytest.mark.parametrize("size", SIZES)
def test_every_codec_round_trips_every_size(pool, kind, size):
    data = int_column(size) if kind is CodecKind.NVCOMP_BITCOMP else compressible(size, size)

    async def main():
        payload = await pool.engine.compress(kind, data)
        container = read_container(kind, payload, size)
        assert len(container.chunks) == -(-size // 65536)
        return await pool.engine.decompress(kind, payload, size)

    assert run(main()) == data


def test_random_bytes_round_trip_too(pool):
    data = random.Random(3).randbytes(3 * MiB + 17)
    for kind in sorted(NVCOMP_KINDS):
        payload = run(pool.engine.compress(kind, data))
        assert run(pool.engine.decompress(kind, payload, len(data))) == data


def test_bitcomp_records_the_element_type_it_compressed_with(pool):
    data = int_column(4 * MiB)
    payload = run(pool.engine.compress(CodecKind.NVCOMP_BITCOMP, data))
    assert read_container(CodecKind.NVCOMP_BITCOMP, payload, len(data)).data_type == 3  # u32


def test_nvcomp_zstd_chunks_are_plain_zstd_frames(pool):
    data = compressible(5 * MiB + 99, 7)
    payload = run(pool.engine.compress(CodecKind.NVCOMP_ZSTD, data))
    container = read_container(CodecKind.NVCOMP_ZSTD, payload, len(data))
    dctx = zstandard.ZstdDecompressor()
    pieces = [
        dctx.decompress(bytes(c), max_output_size=container.chunk_original_size(i))
        for i, c in enumerate(container.chunks)
    ]
    assert b"".join(pieces) == data
    assert NvcompZstdCpuCodec().decompress(payload, len(data)) == data
    # ... and what the CPU writes, the GPU reads.
    cpu_payload = NvcompZstdCpuCodec().compress(data)
    assert run(pool.engine.decompress(CodecKind.NVCOMP_ZSTD, cpu_payload, len(data))) == data


def test_32_concurrent_requests_through_one_pool(pool):
    datas = [compressible(random.Random(i).randrange(1, 8 * MiB), i) for i in range(32)]
    before = (pool.engine.stats.batches, pool.engine.stats.frames)

    async def request(data: bytes) -> bytes:
        frame = await pool.encode_frame(CodecKind.NVCOMP_ZSTD, data)
        assert frame.header.codec is CodecKind.NVCOMP_ZSTD
        assert decode_frame(CodecRegistry.cpu_default(), frame.header, frame.payload) == data
        return await pool.decode_frame(frame.header, frame.payload)

    async def main():
        return await asyncio.gather(*(request(d) for d in datas))

    assert run(main()) == datas
    batches = pool.engine.stats.batches - before[0]
    frames = pool.engine.stats.frames - before[1]
    assert frames == 64 and batches < frames  # frames of different requests shared launches
    assert pool.gpu_stats.cpu_fallback_frames == 0


def test_put_and_get_through_the_server_with_nvcomp_zstd(tmp_path):
    from tests.e2e.gateway import start_gateway

    gateway = start_gateway(tmp_path, extra_args=("--codec", "nvcomp-zstd", "--gpu", "on"))
    try:
        client = gateway.client()
        client.create_bucket(Bucket="gpu")
        data = compressible(20 * MiB + 5, 11)
        client.put_object(Bucket="gpu", Key="logs.txt", Body=data)
        assert client.get_object(Bucket="gpu", Key="logs.txt")["Body"].read() == data
        ranged = client.get_object(Bucket="gpu", Key="logs.txt", Range="bytes=5000000-5000099")["Body"].read()
        assert ranged == data[5_000_000:5_000_100]
    finally:
        gateway.stop()
