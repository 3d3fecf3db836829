"""The FCG1 chunked container that carries nvCOMP payloads (FORMAT.md section 4).

nvCOMP compresses a frame as independent chunks (64 KiB by default) so a GPU can work
on them in parallel; the container records each chunk's compressed length so a reader
can hand the chunks back to nvCOMP, or, for Zstd, to any zstd decoder.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Sequence

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.frame import MAX_FRAME_BYTES

FCG1_MAGIC = b"FCG1"
FCG1_HEADER = struct.Struct("<4sB3sQII")
FCG1_HEADER_SIZE = FCG1_HEADER.size  # 24
DEFAULT_CHUNK_SIZE = 65536


class Fcg1Algo(enum.IntEnum):
    SNAPPY = 1
    LZ4 = 2
    ZSTD = 3
    BITCOMP = 4
    GDEFLATE = 5
    ANS = 6  # our extension


class BitcompDataType(enum.IntEnum):
    """Bitcomp's element type, kept in the first reserved byte."""

    CHAR = 0
    U8 = 1
    U16 = 2
    U32 = 3
    U64 = 4
    I8 = 5
    I16 = 6
    I32 = 7
    I64 = 8
    F32 = 9
    F64 = 10
    BF16 = 11


@dataclasses.dataclass(frozen=True, slots=True)
class Fcg1Container:
    algo: Fcg1Algo
    original_size: int
    chunk_size: int
    chunks: tuple[Buffer, ...]
    """bytes, or memoryviews of the payload from ``decode_fcg1(..., views=True)``."""
    data_type: int = 0
    """Bitcomp's element type; zero for every other algorithm."""

    def chunk_original_size(self, index: int) -> int:
        """Original bytes in chunk ``index``: ``chunk_size`` for all but the last."""
        start = index * self.chunk_size
        return min(self.chunk_size, self.original_size - start)

    def encode(self) -> bytes:
        return encode_fcg1(self.algo, self.original_size, self.chunks, self.chunk_size, self.data_type)


def expected_chunk_count(original_size: int, chunk_size: int) -> int:
    return -(-original_size // chunk_size)


def encode_fcg1(
    algo: Fcg1Algo,
    original_size: int,
    chunks: Sequence[Buffer],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_type: int = 0,
) -> bytes:
    """Build a container from already-compressed chunks, in order."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if len(chunks) != expected_chunk_count(original_size, chunk_size):
        raise ValueError(f"{len(chunks)} chunks do not cover {original_size} bytes in {chunk_size}-byte chunks")
    reserved = bytes([data_type, 0, 0])
    sizes = struct.pack(f"<{len(chunks)}I", *(len(c) for c in chunks))
    header = FCG1_HEADER.pack(FCG1_MAGIC, int(algo), reserved, original_size, chunk_size, len(chunks))
    return b"".join([header, sizes, *(bytes(c) for c in chunks)])


def decode_fcg1(payload: Buffer, views: bool = False) -> Fcg1Container:
    """Parse and check a container; every inconsistency is a corrupt-data CodecError.

    ``views``: the chunks are memoryviews of ``payload`` instead of copies, for readers that
    hand them straight to a decoder (the GPU backend packs them into pinned memory itself).
    """
    view = memoryview(payload).cast("B")
    if len(view) < FCG1_HEADER_SIZE:
        raise CodecError.corrupt(f"FCG1 container truncated: {len(view)} bytes")
    magic, algo_id, reserved, original_size, chunk_size, num_chunks = FCG1_HEADER.unpack_from(view)
    if magic != FCG1_MAGIC:
        raise CodecError.corrupt(f"bad FCG1 magic {bytes(magic)!r}")
    try:
        algo = Fcg1Algo(algo_id)
    except ValueError:
        raise CodecError.corrupt(f"unknown FCG1 algorithm {algo_id}") from None
    data_type = reserved[0] if algo is Fcg1Algo.BITCOMP else 0
    if algo is Fcg1Algo.BITCOMP and data_type not in BitcompDataType._value2member_map_:
        raise CodecError.corrupt(f"unknown Bitcomp data type {data_type}")
    if original_size > MAX_FRAME_BYTES:
        raise CodecError.corrupt(f"FCG1 original size {original_size} exceeds the limit")
    if chunk_size == 0:
        raise CodecError.corrupt("FCG1 chunk size is zero")
    if num_chunks != expected_chunk_count(original_size, chunk_size):
        raise CodecError.corrupt(
            f"FCG1 has {num_chunks} chunks, {original_size} bytes in {chunk_size}-byte chunks need"
            f" {expected_chunk_count(original_size, chunk_size)}"
        )
    table_end = FCG1_HEADER_SIZE + 4 * num_chunks
    if table_end > len(view):
        raise CodecError.corrupt("FCG1 chunk table runs past the end of the payload")
    sizes = struct.unpack_from(f"<{num_chunks}I", view, FCG1_HEADER_SIZE)
    if table_end + sum(sizes) != len(view):
        raise CodecError.corrupt(
            f"FCG1 chunks total {sum(sizes)} bytes, the payload holds {len(view) - table_end} after the table"
        )
    chunks = []
    pos = table_end
    for size in sizes:
        chunk = view[pos : pos + size]
        chunks.append(chunk if views else bytes(chunk))
        pos += size
    return Fcg1Container(algo, original_size, chunk_size, tuple(chunks), data_type)
