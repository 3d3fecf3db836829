"""A CPU stand-in for a GPU behind the pool's DeviceBackend interface, with faults on demand.

nvcomp-zstd chunks are real zstd frames (so the CPU codec must read what the stand-in
writes, exactly as it must read nvCOMP's); the other codecs' chunks are zlib streams,
which only the stand-in reads back, as only nvCOMP reads real Bitcomp. Everything the
pool does around the device (queueing, batching, splitting, fallbacks, shutdown) is
the production code; only the bytes of a chunk are the stand-in's.
"""

from __future__ import annotations

import dataclasses
import threading
import zlib

import zstandard

from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.backend import CompressBatch, CompressedChunks, DecodedFrame, DecompressBatch
from s4.codec.telemetry import CodecOp


class OutOfMemoryError(Exception):
    """Named like CuPy's, worded like CUDA's: what looks_like_oom must recognise."""


@dataclasses.dataclass(frozen=True)
class SeenBatch:
    op: CodecOp
    kind: CodecKind
    data_type: int
    frames: tuple[bytes, ...]
    """Compress: the frames' original bytes. Decompress: their first compressed chunk."""


class StandInDevice:
    """Shared state of all stand-in backends of one engine: what they saw, and the faults to inject.

    ``gate``: cleared, every backend blocks at the start of its next batch until it is set
    again (``entered`` counts arrivals), so a test can hold work in flight.
    ``oom_when``: called with each batch; True makes that batch run out of memory.
    ``fail_when``: called with each batch; True makes it fail with a device fault.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[SeenBatch] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.oom_when = lambda op, frames: False
        self.fail_when = lambda op, frames: False
        self.closed = 0

    def factory(self, index: int) -> StandInBackend:
        return StandInBackend(self, f"standin:{index}")

    def frames_seen(self, op: CodecOp) -> list[bytes]:
        with self.lock:
            return [f for b in self.batches if b.op is op for f in b.frames]

    def batch_sizes(self, op: CodecOp) -> list[int]:
        with self.lock:
            return [len(b.frames) for b in self.batches if b.op is op]


class StandInBackend:
    def __init__(self, device: StandInDevice, name: str) -> None:
        self.state = device
        self.device = name
        self._zstd_c = zstandard.ZstdCompressor(level=3)
        self._zstd_d = zstandard.ZstdDecompressor()

    def _enter(self, op: CodecOp, kind: CodecKind, data_type: int, frames: list[bytes]) -> None:
        self.state.entered.release()
        self.state.gate.wait()
        with self.state.lock:
            self.state.batches.append(SeenBatch(op, kind, data_type, tuple(frames)))
        if self.state.oom_when(op, frames):
            raise OutOfMemoryError(f"Out of memory allocating {sum(map(len, frames))} bytes (standin)")
        if self.state.fail_when(op, frames):
            raise RuntimeError("an illegal memory access was encountered (standin)")

    def compress(self, batch: CompressBatch) -> list[CompressedChunks]:
        frames = [bytes(f) for f in batch.frames]
        self._enter(CodecOp.COMPRESS, batch.kind, batch.data_type, frames)
        results = []
        for index, frame in enumerate(frames):
            chunks = [self._compress_chunk(batch.kind, frame[o : o + n]) for o, n in batch.spans(index)]
            results.append(CompressedChunks([len(c) for c in chunks], b"".join(chunks)))
        return results

    def decompress(self, batch: DecompressBatch) -> list[DecodedFrame]:
        self._enter(CodecOp.DECOMPRESS, batch.kind, batch.data_type, [bytes(f.chunks[0]) for f in batch.frames])
        results: list[DecodedFrame] = []
        for frame in batch.frames:
            pieces = []
            for i, chunk in enumerate(frame.chunks):
                # A real device fails the whole launch on a bad chunk: so does the stand-in.
                pieces.append(self._decompress_chunk(batch.kind, bytes(chunk), frame.chunk_original_size(i)))
            out = b"".join(pieces)
            results.append(out if len(out) == frame.original_size else CodecError.corrupt("standin: wrong size"))
        return results

    def close(self) -> None:
        with self.state.lock:
            self.state.closed += 1

    def _compress_chunk(self, kind: CodecKind, chunk: bytes) -> bytes:
        if kind is CodecKind.NVCOMP_ZSTD:
            return self._zstd_c.compress(chunk)
        return zlib.compress(chunk, 1)

    def _decompress_chunk(self, kind: CodecKind, chunk: bytes, size: int) -> bytes:
        if kind is CodecKind.NVCOMP_ZSTD:
            return self._zstd_d.decompress(chunk, max_output_size=size)
        return zlib.decompress(chunk, bufsize=size)
