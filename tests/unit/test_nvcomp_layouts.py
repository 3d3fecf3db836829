"""The FCG1 layouts of the nvCOMP codecs (FORMAT.md section 4), checked on the CPU byte by byte."""

from __future__ import annotations

import itertools
import random
import struct

import pytest
import zstandard

from s4.codec import CodecError, CodecKind, decode_fcg1, encode_fcg1
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.format.fcg1 import BitcompDataType, Fcg1Algo
from s4.codec.gpu.columnar import bitcomp_data_type, integer_column_type
from s4.codec.gpu.nvcomp_layout import (
    ALGO_OF,
    BITCOMP_TYPESTR,
    NVCOMP_KINDS,
    chunk_spans,
    element_size,
    read_container,
    write_container,
)

KiB = 64 * 1024


def test_algorithm_bytes_are_the_frozen_ones():
    assert {k: int(a) for k, a in ALGO_OF.items()} == {
        CodecKind.NVCOMP_ZSTD: 3,
        CodecKind.NVCOMP_BITCOMP: 4,
        CodecKind.NVCOMP_GDEFLATE: 5,
        CodecKind.NVCOMP_GANS: 6,
    }
    assert set(ALGO_OF) == NVCOMP_KINDS


@pytest.mark.parametrize("length", [1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 7])
def test_chunk_spans_cover_the_frame_in_64k_pieces(length):
    spans = chunk_spans(length)
    assert spans[0][0] == 0
    assert all(n == 65536 for _, n in spans[:-1])
    assert sum(n for _, n in spans) == length
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))
    assert chunk_spans(0) == []


@pytest.mark.parametrize("kind", sorted(NVCOMP_KINDS))
def test_header_layout_byte_by_byte(kind):
    chunks = [b"a" * 10, b"bb" * 7, b"c"]
    original = 2 * KiB + 5
    data_type = int(BitcompDataType.I32) if kind is CodecKind.NVCOMP_BITCOMP else 0
    payload = write_container(kind, original, [len(c) for c in chunks], b"".join(chunks), data_type=data_type)
    assert payload[:4] == b"FCG1"
    assert payload[4] == int(ALGO_OF[kind])
    assert payload[5:8] == bytes([data_type, 0, 0])
    assert struct.unpack_from("<QII", payload, 8) == (original, 65536, 3)
    assert struct.unpack_from("<3I", payload, 24) == (10, 14, 1)
    assert payload[36:] == b"".join(chunks)
    # The shared FCG1 parser agrees, and so does our view-based reader.
    parsed = decode_fcg1(payload)
    assert (parsed.algo, parsed.original_size, parsed.chunks, parsed.data_type) == (
        ALGO_OF[kind],
        original,
        tuple(chunks),
        data_type,
    )
    container = read_container(kind, payload, original)
    assert [bytes(c) for c in container.chunks] == chunks
    assert container.data_type == data_type
    assert [container.chunk_original_size(i) for i in range(3)] == [65536, 65536, 5]
    assert container.compressed_bytes == 25


def test_data_type_byte_is_written_only_for_bitcomp():
    payload = write_container(CodecKind.NVCOMP_ZSTD, 1, [1], b"x", data_type=7)
    assert payload[5] == 0


def test_empty_frame_is_a_header_with_no_chunks():
    payload = write_container(CodecKind.NVCOMP_GDEFLATE, 0, [], b"")
    assert payload == encode_fcg1(Fcg1Algo.GDEFLATE, 0, [])
    assert read_container(CodecKind.NVCOMP_GDEFLATE, payload, 0).chunks == ()


def test_reader_accepts_what_the_shared_encoder_writes():
    chunks = [bytes([i]) * (i + 1) for i in range(4)]
    payload = encode_fcg1(Fcg1Algo.BITCOMP, 3 * 65536 + 1, chunks, data_type=int(BitcompDataType.U16))
    container = read_container(CodecKind.NVCOMP_BITCOMP, payload, 3 * 65536 + 1)
    assert [bytes(c) for c in container.chunks] == chunks
    assert container.data_type == int(BitcompDataType.U16)


def _valid() -> bytes:
    return write_container(CodecKind.NVCOMP_GANS, 70_000, [3, 4], b"abcdefg")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda p: b"FCG2" + p[4:], "magic"),
        (lambda p: p[:4] + bytes([3]) + p[5:], "algorithm"),
        (lambda p: p[:10], "truncated"),
        (lambda p: p[:-1], "chunks total"),
        (lambda p: p + b"x", "chunks total"),
        (lambda p: p[:20] + struct.pack("<I", 3) + p[24:], "chunks"),
        (lambda p: p[:16] + struct.pack("<I", 0) + p[20:], "chunk size is zero"),
    ],
)
def test_reader_rejects_malformed_containers(mutate, words):
    with pytest.raises(CodecError) as info:
        read_container(CodecKind.NVCOMP_GANS, mutate(_valid()), 70_000)
    assert info.value.is_corrupt
    assert words in str(info.value)


def test_reader_rejects_a_size_that_disagrees_with_the_frame_header():
    with pytest.raises(CodecError, match="expected 69999"):
        read_container(CodecKind.NVCOMP_GANS, _valid(), 69_999)


def test_reader_rejects_an_unknown_bitcomp_type():
    payload = bytearray(write_container(CodecKind.NVCOMP_BITCOMP, 1, [1], b"x"))
    payload[5] = 12
    with pytest.raises(CodecError, match="Bitcomp data type 12"):
        read_container(CodecKind.NVCOMP_BITCOMP, bytes(payload), 1)


def test_reader_refuses_codecs_without_containers():
    with pytest.raises(ValueError, match="cpu-zstd"):
        read_container(CodecKind.CPU_ZSTD, _valid(), 70_000)


def test_writer_checks_its_inputs():
    with pytest.raises(ValueError, match="do not cover"):
        write_container(CodecKind.NVCOMP_ZSTD, 70_000, [1], b"x")
    with pytest.raises(ValueError, match="total"):
        write_container(CodecKind.NVCOMP_ZSTD, 10, [2], b"x")


def test_zstd_chunks_in_our_container_decode_with_the_cpu_codec_and_back():
    data = b"".join(b"line %d of an nvcomp-zstd frame\n" % i for i in range(9000))
    cctx = zstandard.ZstdCompressor()
    chunks = [cctx.compress(data[o : o + n]) for o, n in chunk_spans(len(data))]
    payload = write_container(CodecKind.NVCOMP_ZSTD, len(data), [len(c) for c in chunks], b"".join(chunks))
    cpu = NvcompZstdCpuCodec()
    assert cpu.decompress(payload, len(data)) == data
    # ... and what the CPU codec writes reads back through the view reader as plain zstd chunks.
    container = read_container(CodecKind.NVCOMP_ZSTD, cpu.compress(data), len(data))
    dctx = zstandard.ZstdDecompressor()
    assert b"".join(dctx.decompress(bytes(c)) for c in container.chunks) == data


def test_bitcomp_type_strings_and_sizes():
    assert BITCOMP_TYPESTR[BitcompDataType.I64] == "<i8"
    assert BITCOMP_TYPESTR[BitcompDataType.U16] == "<u2"
    assert BITCOMP_TYPESTR[BitcompDataType.CHAR] == "|i1"
    assert set(BITCOMP_TYPESTR) == set(BitcompDataType)
    assert [element_size(t) for t in (0, 1, 2, 3, 4, 7, 9, 10, 11)] == [1, 1, 2, 4, 8, 4, 4, 8, 2]


def test_integer_columns_are_recognised_and_text_is_not():
    rng = random.Random(5)
    assert integer_column_type(struct.pack("<4096q", *range(4096))) is BitcompDataType.U64
    stamps = [1_700_000_000_000 + 37 * i + rng.randrange(5) for i in range(1024)]
    assert integer_column_type(struct.pack("<1024q", *stamps)) is BitcompDataType.U64
    assert integer_column_type(struct.pack("<2048i", *(rng.randrange(-900, 900) for _ in range(2048)))) is (
        BitcompDataType.I32
    )
    assert integer_column_type(struct.pack("<4096H", *(rng.randrange(200) for _ in range(4096)))) is (
        BitcompDataType.U16
    )
    text = b"".join(b"user=%d action=login ok\n" % i for i in range(500))
    assert integer_column_type(text) is None
    assert integer_column_type(rng.randbytes(8192)) is None
    assert integer_column_type(bytes(8192)) is None  # all zeros: zstd does that as well
    assert integer_column_type(b"\x01" * 20) is None  # too short to judge


def test_bitcomp_element_type_must_divide_the_frame():
    column = struct.pack("<1000i", *range(1000))
    assert bitcomp_data_type(column) == BitcompDataType.U32
    assert bitcomp_data_type(column + b"\x00") == BitcompDataType.CHAR
    assert bitcomp_data_type(b"plain text, not numbers " * 100) == BitcompDataType.CHAR
