"""The batch interface between the GPU pool and a device: what one batch is, what comes back.

The pool (queueing, batching across requests, OOM splitting, shutdown) knows nothing
about CUDA; a backend knows nothing about requests. The nvCOMP backend implements this
on a GPU, and the tests put a CPU stand-in behind the same interface, so the pool's
logic is exercised by exactly the code that runs in production.

A backend belongs to one worker thread (one CUDA stream) and is only ever called from
it, which is what lets it keep non-thread-safe nvCOMP codecs and reusable buffers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.nvcomp_layout import ChunkedPayload, chunk_spans


@dataclasses.dataclass(frozen=True, slots=True)
class CompressBatch:
    """Frames of one codec (and one Bitcomp element type), to be cut into ``chunk_size`` chunks."""

    kind: CodecKind
    data_type: int
    chunk_size: int
    frames: Sequence[memoryview]

    def spans(self, index: int) -> list[tuple[int, int]]:
        """``(offset, size)`` of the chunks of frame ``index``, in order."""
        return chunk_spans(len(self.frames[index]), self.chunk_size)

    @property
    def total_bytes(self) -> int:
        return sum(len(f) for f in self.frames)


@dataclasses.dataclass(frozen=True, slots=True)
class CompressedChunks:
    """One frame's compressed chunks: their sizes, and the chunks themselves concatenated."""

    sizes: list[int]
    data: bytes | bytearray | memoryview


@dataclasses.dataclass(frozen=True, slots=True)
class DecompressBatch:
    """Parsed FCG1 containers of one codec (and one Bitcomp element type)."""

    kind: CodecKind
    data_type: int
    chunk_size: int
    frames: Sequence[ChunkedPayload]

    @property
    def total_bytes(self) -> int:
        return sum(f.original_size for f in self.frames)


DecodedFrame = bytes | CodecError
"""A frame's original bytes, or why this one frame failed while the rest of its batch did not."""


class DeviceBackend(Protocol):
    device: str
    """Where the work runs, for telemetry and ``s4 codecs``: "cuda:0"."""

    def compress(self, batch: CompressBatch) -> list[CompressedChunks]:
        """One CompressedChunks per frame, in order; raises when the batch as a whole failed."""
        ...

    def decompress(self, batch: DecompressBatch) -> list[DecodedFrame]:
        """Each frame's original bytes (exactly ``original_size``) or its own CodecError, in order;
        raises when the batch as a whole failed (out of memory, a device fault)."""
        ...

    def close(self) -> None:
        """Free device and pinned memory; called once, from the backend's own thread."""
        ...


BackendFactory = Callable[[int], DeviceBackend]
"""Builds the backend of worker ``index`` inside that worker's thread (CUDA state is per thread)."""
