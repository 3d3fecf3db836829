"""nvCOMP on a GPU: the device backend of the GPU pool, on the ``nvidia.nvcomp`` Python API (6.x).

Codecs: nvcomp-zstd (FCG1 algo 3), nvcomp-bitcomp (4, element type in the header),
nvcomp-gdeflate (5) and nvcomp-gans (6). Every frame is cut into 64 KiB chunks, each
compressed as a RAW bitstream (``BitstreamKind.RAW``: no nvCOMP header), so an
nvcomp-zstd chunk is a standard zstd frame that any CPU decodes.

One backend per worker thread: its own CUDA stream, its own ``nvcomp.Codec`` objects
(they are not thread-safe) and its own pinned host and device buffers, grown when a
batch needs more and reused otherwise. A batch is: frames packed into pinned memory →
one host-to-device copy → one batched nvCOMP launch → the compressed chunks gathered
into one contiguous device buffer → one device-to-host copy. Several workers on
several streams overlap each other's copies and kernels.

CuPy and nvCOMP are imported when a backend is built (or probed), never at import, so
a node without them starts and says why these codecs are unavailable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from s4.codec.errors import CodecError
from s4.codec.format.fcg1 import DEFAULT_CHUNK_SIZE, BitcompDataType
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.backend import CompressBatch, CompressedChunks, DecodedFrame, DecompressBatch
from s4.codec.gpu.nvcomp_layout import BITCOMP_TYPESTR

ALGORITHM: dict[CodecKind, str] = {
    CodecKind.NVCOMP_ZSTD: "Zstd",
    CodecKind.NVCOMP_BITCOMP: "Bitcomp",
    CodecKind.NVCOMP_GDEFLATE: "GDeflate",
    CodecKind.NVCOMP_GANS: "ANS",
}
"""nvCOMP's algorithm name for each codec."""

INSTALL_HINT = "install the gpu-cu12 or gpu-cu13 extra (see README)"
ALIGN = 16
"""Offset alignment of every buffer handed to nvCOMP (its documented safe choice)."""
_WARM_UP_BYTES = 256 * 1024

_GATHER_SOURCE = r"""
extern "C" __global__
void s4_gather(const unsigned char* __restrict__ src, const unsigned long long stride,
               const unsigned long long* __restrict__ offsets, const unsigned long long* __restrict__ sizes,
               unsigned char* __restrict__ dst) {
    const unsigned long long chunk = blockIdx.x;
    const unsigned char* from = src + chunk * stride;
    unsigned char* to = dst + offsets[chunk];
    const unsigned long long n = sizes[chunk];
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        to[i] = from[i];
    }
}
"""
"""One block per chunk: packs compressed chunks (each at a fixed stride) into one contiguous
buffer, so a single device-to-host copy carries only the bytes that matter."""


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclasses.dataclass(frozen=True, slots=True)
class NvcompProbe:
    available: bool
    reason: str | None = None
    device: str | None = None
    """"cuda:0 (NVIDIA H100 80GB HBM3)" when available."""
    nvcomp_version: str | None = None


def probe(device: int = 0) -> NvcompProbe:
    """Can nvCOMP run on ``device`` here? Imports the libraries and counts devices; allocates nothing."""
    try:
        import cupy
    except Exception as exc:
        return NvcompProbe(False, f"CuPy is not importable ({exc}); {INSTALL_HINT}")
    try:
        import nvidia.nvcomp as nvcomp
    except Exception as exc:
        return NvcompProbe(False, f"nvidia.nvcomp is not importable ({exc}); {INSTALL_HINT}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return NvcompProbe(False, f"no CUDA device: {type(exc).__name__}: {exc}")
    if count < 1:
        return NvcompProbe(False, "no CUDA device")
    if not 0 <= device < count:
        return NvcompProbe(False, f"CUDA device {device} does not exist (this node has {count})")
    try:
        name = cupy.cuda.runtime.getDeviceProperties(device)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return NvcompProbe(False, f"CUDA device {device} is not usable: {type(exc).__name__}: {exc}")
    return NvcompProbe(True, None, f"cuda:{device} ({name})", str(getattr(nvcomp, "__version__", "?")))


class NvcompBackend:
    """The DeviceBackend of one worker: one stream, its codecs, its buffers."""

    def __init__(self, device: int = 0, warm_up: bool = True) -> None:
        import cupy
        import cupyx
        import numpy
        import nvidia.nvcomp as nvcomp

        self._cp, self._cpx, self._np, self._nv = cupy, cupyx, numpy, nvcomp
        self._device_id = device
        self.device = f"cuda:{device}"
        cupy.cuda.Device(device).use()
        self._stream = cupy.cuda.Stream(non_blocking=True)
        self._codecs: dict[tuple[CodecKind, int, int], Any] = {}
        self._max_chunk: dict[tuple[CodecKind, int, int], int] = {}
        self._host: dict[str, Any] = {}
        self._gpu: dict[str, Any] = {}
        self._gather = cupy.RawKernel(_GATHER_SOURCE, "s4_gather")
        if warm_up:
            self._warm_up()

    # --- the DeviceBackend interface --------------------------------------------------------------

    def compress(self, batch: CompressBatch) -> list[CompressedChunks]:
        cp, np = self._cp, self._np
        codec, max_chunk = self._codec(batch.kind, batch.data_type, batch.chunk_size)
        bases, pos = [], 0
        for frame in batch.frames:
            bases.append(pos)
            pos = _align(pos + len(frame))
        host_in = self._host_buffer("in", pos)
        staging = memoryview(host_in)
        for base, frame in zip(bases, batch.frames, strict=True):
            staging[base : base + len(frame)] = frame
        dev_in = self._device_buffer("in", pos)
        self._copy(dev_in.data.ptr, host_in.ctypes.data, pos, to_device=True)
        offsets, sizes, counts = [], [], []
        for index, base in enumerate(bases):
            spans = batch.spans(index)
            counts.append(len(spans))
            for offset, size in spans:
                offsets.append(base + offset)
                sizes.append(size)
        n = len(sizes)
        stride = _align(max_chunk)
        dev_out = self._device_buffer("out", n * stride)
        src = self._nv.as_arrays(
            self._typed(dev_in[:pos], batch.kind, batch.data_type), offsets, sizes, cuda_stream=self._stream.ptr
        )
        out = self._nv.as_arrays(
            dev_out[: n * stride], [i * stride for i in range(n)], [max_chunk] * n, cuda_stream=self._stream.ptr
        )
        encoded = codec.encode(src, out=out)
        comp_sizes = [int(s) for s in encoded.buffer_sizes]  # waits for the kernels
        packed_offsets, total = [], 0
        for size in comp_sizes:
            packed_offsets.append(total)
            total += size
        dev_packed = self._device_buffer("packed", total)
        with self._stream:
            d_offsets = cp.asarray(np.asarray(packed_offsets, dtype=np.uint64))
            d_sizes = cp.asarray(np.asarray(comp_sizes, dtype=np.uint64))
            self._gather((n,), (256,), (dev_out, np.uint64(stride), d_offsets, d_sizes, dev_packed))
        host_out = self._host_buffer("out", total)
        self._copy(host_out.ctypes.data, dev_packed.data.ptr, total, to_device=False)
        self._stream.synchronize()
        results, chunk = [], 0
        for count in counts:
            start = packed_offsets[chunk]
            frame_sizes = comp_sizes[chunk : chunk + count]
            results.append(CompressedChunks(frame_sizes, bytes(host_out[start : start + sum(frame_sizes)])))
            chunk += count
        return results

    def decompress(self, batch: DecompressBatch) -> list[DecodedFrame]:
        codec, _ = self._codec(batch.kind, batch.data_type, batch.chunk_size)
        in_offsets, in_sizes, pos = [], [], 0
        for frame in batch.frames:
            for chunk in frame.chunks:
                in_offsets.append(pos)
                in_sizes.append(len(chunk))
                pos = _align(pos + len(chunk))
        host_in = self._host_buffer("in", pos)
        staging = memoryview(host_in)
        chunks = (chunk for frame in batch.frames for chunk in frame.chunks)
        for offset, chunk in zip(in_offsets, chunks, strict=True):
            staging[offset : offset + len(chunk)] = chunk
        dev_in = self._device_buffer("in", pos)
        self._copy(dev_in.data.ptr, host_in.ctypes.data, pos, to_device=True)
        out_offsets, out_sizes, bases, total = [], [], [], 0
        for frame in batch.frames:
            bases.append(total)
            for i in range(len(frame.chunks)):
                out_offsets.append(total + i * batch.chunk_size)
                out_sizes.append(frame.chunk_original_size(i))
            total = _align(total + frame.original_size)
        dev_out = self._device_buffer("out", total)
        src = self._nv.as_arrays(dev_in[:pos], in_offsets, in_sizes, cuda_stream=self._stream.ptr)
        out = self._nv.as_arrays(
            self._typed(dev_out[:total], batch.kind, batch.data_type),
            out_offsets,
            out_sizes,
            cuda_stream=self._stream.ptr,
        )
        decoded = codec.decode(src, out=out)
        actual = [int(s) for s in decoded.buffer_sizes]  # waits for the kernels
        host_out = self._host_buffer("out", total)
        self._copy(host_out.ctypes.data, dev_out.data.ptr, total, to_device=False)
        self._stream.synchronize()
        results: list[DecodedFrame] = []
        chunk = 0
        for frame, base in zip(batch.frames, bases, strict=True):
            count = len(frame.chunks)
            expected = out_sizes[chunk : chunk + count]
            got = actual[chunk : chunk + count]
            chunk += count
            if got != expected:
                bad = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
                results.append(
                    CodecError.corrupt(
                        f"{batch.kind.wire_name} chunk {bad} decoded to {got[bad]} bytes, expected {expected[bad]}"
                    )
                )
            else:
                results.append(bytes(host_out[base : base + frame.original_size]))
        return results

    def close(self) -> None:
        self._stream.synchronize()
        self._codecs.clear()
        self._host.clear()
        self._gpu.clear()

    # --- measurements for `s4 bench gpu` ----------------------------------------------------------

    def kernel_seconds(self, kind: CodecKind, data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[float, float]:
        """(compress, decompress) seconds of the nvCOMP kernels alone on device-resident chunks."""
        import time

        from s4.codec.gpu.columnar import bitcomp_data_type

        data_type = bitcomp_data_type(data) if kind is CodecKind.NVCOMP_BITCOMP else 0
        codec, max_chunk = self._codec(kind, data_type, chunk_size)
        n = -(-len(data) // chunk_size)
        sizes = [min(chunk_size, len(data) - i * chunk_size) for i in range(n)]
        dev_in = self._device_buffer("bench-in", _align(len(data)))
        host_in = self._host_buffer("bench-host", len(data))
        memoryview(host_in)[: len(data)] = data
        self._copy(dev_in.data.ptr, host_in.ctypes.data, len(data), to_device=True)
        stride = _align(max_chunk)
        dev_out = self._device_buffer("bench-out", n * stride)
        dev_back = self._device_buffer("bench-back", _align(len(data)))
        self._stream.synchronize()
        src = self._nv.as_arrays(
            self._typed(dev_in[: _align(len(data))], kind, data_type),
            [i * chunk_size for i in range(n)],
            sizes,
            cuda_stream=self._stream.ptr,
        )
        out = self._nv.as_arrays(
            dev_out[: n * stride], [i * stride for i in range(n)], [max_chunk] * n, cuda_stream=self._stream.ptr
        )
        start = time.perf_counter()
        encoded = codec.encode(src, out=out)
        comp_sizes = [int(s) for s in encoded.buffer_sizes]
        self._stream.synchronize()
        compress_s = time.perf_counter() - start
        comp = self._nv.as_arrays(
            dev_out[: n * stride], [i * stride for i in range(n)], comp_sizes, cuda_stream=self._stream.ptr
        )
        back = self._nv.as_arrays(
            self._typed(dev_back[: _align(len(data))], kind, data_type),
            [i * chunk_size for i in range(n)],
            sizes,
            cuda_stream=self._stream.ptr,
        )
        start = time.perf_counter()
        decoded = codec.decode(comp, out=back)
        [int(s) for s in decoded.buffer_sizes]
        self._stream.synchronize()
        return compress_s, time.perf_counter() - start

    def copy_seconds(self, nbytes: int) -> tuple[float, float]:
        """(host-to-device, device-to-host) seconds of one pinned copy of ``nbytes``: the PCIe limit."""
        import time

        host = self._host_buffer("bench-copy", nbytes)
        dev = self._device_buffer("bench-copy", nbytes)
        self._stream.synchronize()
        start = time.perf_counter()
        self._copy(dev.data.ptr, host.ctypes.data, nbytes, to_device=True)
        self._stream.synchronize()
        h2d = time.perf_counter() - start
        start = time.perf_counter()
        self._copy(host.ctypes.data, dev.data.ptr, nbytes, to_device=False)
        self._stream.synchronize()
        return h2d, time.perf_counter() - start

    # --- internals --------------------------------------------------------------------------------

    def _codec(self, kind: CodecKind, data_type: int, chunk_size: int) -> tuple[Any, int]:
        """This worker's nvCOMP codec for the kind (and Bitcomp element type), and its largest chunk output."""
        key = (kind, data_type, chunk_size)
        codec = self._codecs.get(key)
        if codec is None:
            options: dict[str, Any] = {
                "algorithm": ALGORITHM[kind],
                "device_id": self._device_id,
                "cuda_stream": self._stream.ptr,
                "uncomp_chunk_size": chunk_size,
                "bitstream_kind": self._nv.BitstreamKind.RAW,
            }
            if kind is CodecKind.NVCOMP_BITCOMP:
                options["data_type"] = BITCOMP_TYPESTR[BitcompDataType(data_type)]
            codec = self._nv.Codec(**options)
            probe_array = self._np.empty(
                chunk_size // self._itemsize(kind, data_type), dtype=self._dtype(kind, data_type)
            )
            self._max_chunk[key] = int(codec.get_max_comp_buffer_size(self._nv.as_array(probe_array)))
            self._codecs[key] = codec
        return codec, self._max_chunk[key]

    def _dtype(self, kind: CodecKind, data_type: int) -> Any:
        if kind is CodecKind.NVCOMP_BITCOMP:
            return self._np.dtype(BITCOMP_TYPESTR[BitcompDataType(data_type)])
        return self._np.dtype(self._np.uint8)

    def _itemsize(self, kind: CodecKind, data_type: int) -> int:
        return int(self._dtype(kind, data_type).itemsize)

    def _typed(self, array: Any, kind: CodecKind, data_type: int) -> Any:
        """Bitcomp reads elements of the frame's type; the other codecs read bytes."""
        dtype = self._dtype(kind, data_type)
        return array if dtype.itemsize == 1 and dtype.kind == "u" else array.view(dtype)

    def _host_buffer(self, name: str, nbytes: int) -> Any:
        """A pinned host buffer of at least ``nbytes``, reused across batches (grown when short)."""
        return _reused(self._host, name, nbytes, lambda n: self._cpx.empty_pinned((n,), dtype=self._np.uint8))

    def _device_buffer(self, name: str, nbytes: int) -> Any:
        """A device buffer of at least ``nbytes``, reused across batches (grown when short)."""
        return _reused(self._gpu, name, nbytes, lambda n: self._cp.empty((n,), dtype=self._cp.uint8))

    def _copy(self, dst: int, src: int, nbytes: int, to_device: bool) -> None:
        runtime = self._cp.cuda.runtime
        kind = runtime.memcpyHostToDevice if to_device else runtime.memcpyDeviceToHost
        if nbytes:
            runtime.memcpyAsync(dst, src, nbytes, kind, self._stream.ptr)

    def _warm_up(self) -> None:
        """Compile the gather kernel and round-trip one buffer, so a broken install fails at start."""
        import zstandard

        from s4.codec.gpu.nvcomp_layout import read_container, write_container

        data = (b"s4 nvCOMP warm-up " * (_WARM_UP_BYTES // 18 + 1))[:_WARM_UP_BYTES]
        view = memoryview(data)
        [packed] = self.compress(CompressBatch(CodecKind.NVCOMP_ZSTD, 0, DEFAULT_CHUNK_SIZE, [view]))
        payload = write_container(CodecKind.NVCOMP_ZSTD, len(data), packed.sizes, packed.data)
        container = read_container(CodecKind.NVCOMP_ZSTD, payload, len(data))
        first = zstandard.ZstdDecompressor().decompress(bytes(container.chunks[0]), max_output_size=DEFAULT_CHUNK_SIZE)
        [back] = self.decompress(DecompressBatch(CodecKind.NVCOMP_ZSTD, 0, DEFAULT_CHUNK_SIZE, [container]))
        if back != data or first != data[:DEFAULT_CHUNK_SIZE]:
            raise RuntimeError("nvCOMP warm-up round trip returned different bytes")


def _grow(nbytes: int) -> int:
    """Allocation size for a buffer of ``nbytes``: a quarter more, in whole MiB, so growth is rare."""
    mib = 1024 * 1024
    return max(mib, -(-(nbytes + nbytes // 4) // mib) * mib)


def _reused(buffers: dict[str, Any], name: str, nbytes: int, allocate: Callable[[int], Any]) -> Any:
    """``buffers[name]`` when it holds ``nbytes``; otherwise the old one is dropped (freed) and a larger one made."""
    buf = buffers.get(name)
    if buf is None or buf.nbytes < nbytes:
        buffers.pop(name, None)
        buf = allocate(_grow(nbytes))
        buffers[name] = buf
    return buf
