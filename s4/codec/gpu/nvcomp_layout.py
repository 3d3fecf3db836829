"""The bytes of the nvCOMP codecs' payloads (FORMAT.md section 4), with no GPU in sight.

Which FCG1 algorithm each nvCOMP codec writes, how a frame is cut into 64 KiB chunks,
Bitcomp's element type in the first reserved byte, and a container read back as views
of its chunks. The GPU backend, the CPU stand-in of the tests and the CPU readers all
go through these functions, so there is one definition of the layout to get right.
"""

from __future__ import annotations

import dataclasses
import struct

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.fcg1 import (
    DEFAULT_CHUNK_SIZE,
    FCG1_HEADER,
    FCG1_MAGIC,
    BitcompDataType,
    Fcg1Algo,
    decode_fcg1,
    expected_chunk_count,
)
from s4.codec.format.kinds import CodecKind

ALGO_OF: dict[CodecKind, Fcg1Algo] = {
    CodecKind.NVCOMP_ZSTD: Fcg1Algo.ZSTD,
    CodecKind.NVCOMP_BITCOMP: Fcg1Algo.BITCOMP,
    CodecKind.NVCOMP_GDEFLATE: Fcg1Algo.GDEFLATE,
    CodecKind.NVCOMP_GANS: Fcg1Algo.ANS,
}
"""The FCG1 algorithm byte each nvCOMP codec writes (and must find when reading)."""

NVCOMP_KINDS = frozenset(ALGO_OF)

BITCOMP_TYPESTR: dict[BitcompDataType, str] = {
    BitcompDataType.CHAR: "|i1",  # nvCOMP's char is signed
    BitcompDataType.U8: "|u1",
    BitcompDataType.U16: "<u2",
    BitcompDataType.U32: "<u4",
    BitcompDataType.U64: "<u8",
    BitcompDataType.I8: "|i1",
    BitcompDataType.I16: "<i2",
    BitcompDataType.I32: "<i4",
    BitcompDataType.I64: "<i8",
    BitcompDataType.F32: "<f4",
    BitcompDataType.F64: "<f8",
    # nvCOMP has no bfloat16 element; Bitcomp compresses its bits losslessly as 16-bit integers.
    BitcompDataType.BF16: "<u2",
}
"""Bitcomp element type byte → the array-protocol type string nvCOMP's Python API takes."""


def element_size(data_type: int) -> int:
    """Bytes per Bitcomp element: every chunk but the last is a whole number of them by construction."""
    return int(BITCOMP_TYPESTR[BitcompDataType(data_type)][2:])


def chunk_spans(length: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[tuple[int, int]]:
    """``(offset, size)`` of every chunk of a ``length``-byte frame: all ``chunk_size`` but the last."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    return [(start, min(chunk_size, length - start)) for start in range(0, length, chunk_size)]


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkedPayload:
    """A parsed FCG1 container whose chunks are views of the payload (nothing copied)."""

    kind: CodecKind
    original_size: int
    chunk_size: int
    data_type: int
    chunks: tuple[memoryview, ...]

    def chunk_original_size(self, index: int) -> int:
        return min(self.chunk_size, self.original_size - index * self.chunk_size)

    @property
    def compressed_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)


def read_container(kind: CodecKind, payload: Buffer, original_size: int) -> ChunkedPayload:
    """Check a container against the codec and the frame header, and view its chunks.

    Every inconsistency is a corrupt-data CodecError, before anything is allocated for
    the output: the algorithm must be the codec's, the sizes must agree with the frame
    header, and the chunk table must account for every byte of the payload.
    """
    algo = ALGO_OF.get(kind)
    if algo is None:
        raise ValueError(f"{kind.wire_name} does not use FCG1 containers")
    try:
        container = decode_fcg1(payload, views=True)
    except CodecError as exc:
        raise CodecError.corrupt(f"{kind.wire_name}: {exc}") from None
    if container.algo is not algo:
        raise CodecError.corrupt(
            f"{kind.wire_name} payload holds FCG1 algorithm {int(container.algo)}, expected {int(algo)}"
        )
    if container.original_size != original_size:
        raise CodecError.corrupt(
            f"{kind.wire_name} container holds {container.original_size} bytes, expected {original_size}"
        )
    chunks = tuple(memoryview(c) for c in container.chunks)
    return ChunkedPayload(kind, container.original_size, container.chunk_size, container.data_type, chunks)


def write_container(
    kind: CodecKind,
    original_size: int,
    chunk_sizes: list[int],
    chunks: Buffer,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_type: int = 0,
) -> bytes:
    """An FCG1 container from the frame's compressed chunks, already concatenated in order.

    Device backends hand their chunks back in one contiguous buffer (one copy off the
    device), so the container is header + table + that buffer, joined once.
    """
    algo = ALGO_OF[kind]
    if len(chunk_sizes) != expected_chunk_count(original_size, chunk_size):
        raise ValueError(f"{len(chunk_sizes)} chunks do not cover {original_size} bytes in {chunk_size}-byte chunks")
    body = memoryview(chunks).cast("B")
    if sum(chunk_sizes) != len(body):
        raise ValueError(f"chunk sizes total {sum(chunk_sizes)} bytes, the chunks are {len(body)}")
    if algo is not Fcg1Algo.BITCOMP:
        data_type = 0
    header = FCG1_HEADER.pack(
        FCG1_MAGIC, int(algo), bytes([data_type, 0, 0]), original_size, chunk_size, len(chunk_sizes)
    )
    return b"".join((header, struct.pack(f"<{len(chunk_sizes)}I", *chunk_sizes), body))
