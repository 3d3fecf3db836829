"""What only a GPU can answer about nvCOMP 6's Python API, asserted the way the nvCOMP backend relies on it.

An offline review (issue 17) matched every call of s4/codec/gpu/nvcomp.py to the real wheel, but three
behaviours are only observable on a device:

1. ``buffer_sizes`` after a decode into our own ``out`` arrays: the real size of each decoded chunk, or just
   the capacity we handed in? The backend compares it with the expected sizes to catch a short chunk; if it
   echoed capacities, that check would be vacuous.
2. How a corrupt chunk is reported: an exception for the whole batch, a short size, or silently wrong bytes?
   Whichever it is, the gateway's path (frame CRC32C) must answer corrupt for that frame only, the other
   frames of the batch must decode, and the device must keep working (no sticky CUDA error).
3. Whether the capacity ``encode`` demands equals ``get_max_comp_buffer_size`` of a 64 KiB chunk (what the
   backend gives each chunk), even for incompressible data.

Each test also records what it saw; with ``S4_GPU_ANSWERS=<file>`` (``make gpu-check`` sets it) the module
writes those observations there as JSON, so the first GPU run answers the questions in figures.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import random

import pytest

from s4.codec import CodecError, CodecKind, CodecRegistry
from s4.codec.format.fcg1 import DEFAULT_CHUNK_SIZE, BitcompDataType
from s4.codec.gpu.backend import CompressBatch, DecompressBatch
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS, read_container
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, setup_gpu
from tests.gpu.test_nvcomp_gpu import compressible

pytestmark = pytest.mark.gpu

CHUNK = DEFAULT_CHUNK_SIZE
KINDS = sorted(NVCOMP_KINDS)
U8 = int(BitcompDataType.U8)
ANSWERS: dict[str, object] = {}


def data_type(kind: CodecKind) -> int:
    return U8 if kind is CodecKind.NVCOMP_BITCOMP else 0


@pytest.fixture(scope="module", autouse=True)
def write_answers():
    yield
    path = os.environ.get("S4_GPU_ANSWERS")
    if path and ANSWERS:
        with open(path, "w") as f:
            json.dump(ANSWERS, f, indent=2, default=str)


@pytest.fixture(scope="module")
def backend():
    from s4.codec.gpu.nvcomp import NvcompBackend

    b = NvcompBackend(0)  # its warm-up compiles the gather kernel and round-trips nvcomp-zstd
    yield b
    b.close()


@pytest.fixture(scope="module")
def pool():
    registry = CodecRegistry.cpu_default()
    setup = setup_gpu(registry, GpuSettings(mode="on", streams=2, batch_wait_ms=5))
    gpu_pool = setup.pool(registry)
    assert isinstance(gpu_pool, GpuCodecPool)
    yield gpu_pool
    gpu_pool.close()


def device_chunks(backend, kind: CodecKind, chunks: list[bytes]):
    """The chunks on the device (each at a 16-byte aligned offset) as an nvCOMP batch of ``kind``."""
    cp, np = backend._cp, backend._np
    offsets, pos = [], 0
    for chunk in chunks:
        offsets.append(pos)
        pos = -(-(pos + len(chunk)) // 16) * 16
    host = np.zeros(max(pos, 16), dtype=np.uint8)
    for offset, chunk in zip(offsets, chunks, strict=True):
        host[offset : offset + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
    dev = cp.asarray(host)
    cp.cuda.runtime.deviceSynchronize()  # nvCOMP runs on the backend's non-blocking stream: the copy must be done
    typed = backend._typed(dev, kind, data_type(kind))
    return dev, backend._nv.as_arrays(typed, offsets, [len(c) for c in chunks], cuda_stream=backend._stream.ptr)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.wire_name)
def test_buffer_sizes_after_decode_into_our_out_are_the_real_chunk_sizes(backend, kind):
    data = compressible(2 * CHUNK + 1000, 5)
    [packed] = backend.compress(CompressBatch(kind, data_type(kind), CHUNK, [memoryview(data)]))
    assert packed.sizes and len(packed.sizes) == 3
    pieces, at = [], 0
    for size in packed.sizes:
        pieces.append(bytes(packed.data[at : at + size]))
        at += size
    _keep, src = device_chunks(backend, kind, pieces)
    cp = backend._cp
    out_dev = cp.zeros(3 * CHUNK, dtype=cp.uint8)
    cp.cuda.runtime.deviceSynchronize()  # the zero fill (default stream) before nvCOMP writes (its own stream)
    # Every chunk is given a whole chunk of room: more than the last one (1000 bytes) decodes to.
    out = backend._nv.as_arrays(
        backend._typed(out_dev, kind, data_type(kind)),
        [0, CHUNK, 2 * CHUNK],
        [CHUNK] * 3,
        cuda_stream=backend._stream.ptr,
    )
    codec, _ = backend._codec(kind, data_type(kind), CHUNK)
    decoded = codec.decode(src, out=out)
    sizes = [int(s) for s in decoded.buffer_sizes]
    backend._stream.synchronize()
    ANSWERS[f"decode_buffer_sizes[{kind.wire_name}]"] = {"capacities": [CHUNK] * 3, "buffer_sizes": sizes}
    assert sizes == [CHUNK, CHUNK, 1000], f"buffer_sizes after decode into our own out: {sizes}"
    assert cp.asnumpy(out_dev).tobytes()[: len(data)] == data


def frame_data(kind: CodecKind, size: int, seed: int) -> bytes:
    """What the codec is for, so the frame is stored with it (not as passthrough): Bitcomp gets integers."""
    if kind is not CodecKind.NVCOMP_BITCOMP:
        return compressible(size, seed)
    column = array.array("i", (1000 * seed + i // (seed + 2) for i in range(size // 4 + 1))).tobytes()
    return column[:size]


def _corrupted(payload: bytes, kind: CodecKind, size: int) -> bytes:
    """The payload with 16 bytes in the middle of its second chunk flipped (the chunk table intact)."""
    chunk = bytes(read_container(kind, payload, size).chunks[1])
    at = payload.find(chunk)
    assert at > 0
    damaged = bytearray(payload)
    middle = at + len(chunk) // 2
    for i in range(middle, min(middle + 16, at + len(chunk))):
        damaged[i] ^= 0xA5
    return bytes(damaged)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.wire_name)
def test_a_corrupt_chunk_is_corrupt_for_its_frame_only_and_the_device_keeps_working(backend, pool, kind):
    size = 3 * CHUNK + 5
    good, other = frame_data(kind, size, 1), frame_data(kind, size, 2)

    async def encode():
        return await asyncio.gather(pool.encode_frame(kind, good), pool.encode_frame(kind, other))

    good_frame, other_frame = asyncio.run(encode())
    assert good_frame.header.codec is kind and other_frame.header.codec is kind
    bad_payload = _corrupted(bytes(other_frame.payload), kind, size)

    # What nvCOMP itself does with the bad chunk (recorded, not asserted: any of these is handled above it).
    container = read_container(kind, bad_payload, size)
    try:
        [raw] = backend.decompress(DecompressBatch(kind, container.data_type, CHUNK, [container]))
        seen = repr(raw) if isinstance(raw, CodecError) else ("same bytes" if raw == other else "different bytes")
    except Exception as exc:
        seen = f"raised {type(exc).__name__}: {exc}"
    ANSWERS[f"corrupt_chunk[{kind.wire_name}]"] = seen

    async def decode_both():
        return await asyncio.gather(
            pool.decode_frame(other_frame.header, bad_payload),
            pool.decode_frame(good_frame.header, good_frame.payload),
            return_exceptions=True,
        )

    bad, fine = asyncio.run(decode_both())
    assert fine == good, f"the good frame of the batch did not decode: {fine!r}"
    assert isinstance(bad, CodecError) and bad.is_corrupt, f"a corrupt chunk came back as {bad!r}"
    # No sticky CUDA error: the same device still decodes the good frame, alone.
    assert asyncio.run(pool.decode_frame(good_frame.header, good_frame.payload)) == good


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.wire_name)
def test_encode_fits_get_max_comp_buffer_size_of_a_64k_chunk_even_incompressible(backend, kind):
    codec, max_chunk = backend._codec(kind, data_type(kind), CHUNK)
    rng = random.Random(9)
    chunks = [rng.randbytes(CHUNK) for _ in range(4)] + [rng.randbytes(777)]
    _keep, src = device_chunks(backend, kind, chunks)
    cp = backend._cp
    stride = -(-max_chunk // 16) * 16
    out_dev = cp.zeros(len(chunks) * stride, dtype=cp.uint8)
    cp.cuda.runtime.deviceSynchronize()
    out = backend._nv.as_arrays(
        out_dev, [i * stride for i in range(len(chunks))], [max_chunk] * len(chunks), cuda_stream=backend._stream.ptr
    )
    encoded = codec.encode(src, out=out)
    sizes = [int(s) for s in encoded.buffer_sizes]
    backend._stream.synchronize()
    answer = {"max_comp_buffer_size_64k": max_chunk, "incompressible_chunk_sizes": sizes}
    ANSWERS[f"encode_capacity[{kind.wire_name}]"] = answer
    assert all(0 < s <= max_chunk for s in sizes), answer
    # One byte less room than that: does encode refuse it (recorded; the backend never gives less)?
    short = backend._nv.as_arrays(
        out_dev,
        [i * stride for i in range(len(chunks))],
        [max_chunk - 1] * len(chunks),
        cuda_stream=backend._stream.ptr,
    )
    try:
        [int(s) for s in codec.encode(src, out=short).buffer_sizes]
        backend._stream.synchronize()
        answer["one_byte_less"] = "accepted"
    except Exception as exc:
        answer["one_byte_less"] = f"refused: {type(exc).__name__}: {exc}"
    # Whatever it did, the device still round-trips.
    data = compressible(CHUNK + 3, 4)
    [packed] = backend.compress(CompressBatch(kind, data_type(kind), CHUNK, [memoryview(data)]))
    assert sum(packed.sizes) == len(packed.data)
