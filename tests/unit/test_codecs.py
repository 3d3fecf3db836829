import gzip
import os
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.codec import CodecError, CodecKind, Fcg1Algo, ZstdDictionary, decode_fcg1, encode_fcg1
from s4.codec.cpu.gzip import CpuGzipCodec
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.cpu.passthrough import PassthroughCodec
from s4.codec.cpu.zstd import CpuZstdCodec
from s4.codec.cpu.zstd_dict import CpuZstdDictCodec

TEXT = b"".join(b"line %d of a log, status=ok latency=%dms\n" % (i, i % 97) for i in range(40_000))
DICTIONARY = ZstdDictionary(
    zstandard.train_dictionary(4096, [b'{"user": %d, "event": "click"}' % i for i in range(500)]).as_bytes()
)

CODECS = {
    "passthrough": PassthroughCodec(),
    "cpu-zstd": CpuZstdCodec(),
    "cpu-zstd-1": CpuZstdCodec(1),
    "cpu-zstd-19": CpuZstdCodec(19),
    "cpu-gzip": CpuGzipCodec(),
    "cpu-zstd-dict": CpuZstdDictCodec(DICTIONARY),
    "nvcomp-zstd-cpu": NvcompZstdCpuCodec(),
}
SIZES = [0, 1, 2, 100, 4095, 65535, 65536, 65537, 3 * 65536, len(TEXT)]


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_every_codec_and_size(name, size):
    codec = CODECS[name]
    data = TEXT[:size]
    payload = codec.compress(data)
    assert codec.decompress(payload, size) == data


@pytest.mark.parametrize("name", CODECS)
def test_random_bytes_round_trip(name):
    data = os.urandom(200_000)
    codec = CODECS[name]
    assert codec.decompress(codec.compress(data), len(data)) == data


@given(st.binary(max_size=3000))
@settings(max_examples=60)
def test_arbitrary_bodies_round_trip(data):
    for codec in CODECS.values():
        assert codec.decompress(codec.compress(data), len(data)) == data


@pytest.mark.parametrize("name", [n for n in CODECS if n != "passthrough"])
def test_wrong_expected_size_is_corrupt(name):
    codec = CODECS[name]
    payload = codec.compress(TEXT[:5000])
    for wrong in (4999, 5001, 0):
        with pytest.raises(CodecError) as info:
            codec.decompress(payload, wrong)
        assert info.value.is_corrupt


def test_zstd_output_is_bounded_without_a_content_size():
    # A streamed frame (no content size, like the Rust gateway writes) that expands to 100 MB
    # must not be decoded past the size the frame header promised.
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(100_000_000))
    assert zstandard.frame_content_size(bomb) == -1
    with pytest.raises(CodecError, match="zstd frame does not decode"):
        CpuZstdCodec().decompress(bomb, 1000)


def test_zstd_content_size_that_disagrees_is_refused_before_decoding():
    payload = zstandard.ZstdCompressor().compress(b"x" * 100)
    with pytest.raises(CodecError, match="declares 100 bytes"):
        CpuZstdCodec().decompress(payload, 99)


@pytest.mark.parametrize(
    "payload", [b"", b"not zstd", zstandard.ZstdCompressor().compress(b"ab") * 2, b"\x28\xb5\x2f\xfd\x00"]
)
def test_zstd_garbage_is_corrupt(payload):
    with pytest.raises(CodecError) as info:
        CpuZstdCodec().decompress(payload, 2)
    assert info.value.is_corrupt


def test_zstd_level_is_used():
    fast = CpuZstdCodec(1).compress(TEXT)
    strong = CpuZstdCodec(19).compress(TEXT)
    assert len(strong) < len(fast)
    with pytest.raises(ValueError):
        CpuZstdCodec(99)


def test_gzip_is_a_standard_rfc1952_member():
    payload = CpuGzipCodec().compress(TEXT)
    assert payload[:2] == b"\x1f\x8b"
    assert gzip.decompress(payload) == TEXT
    assert CpuGzipCodec().decompress(gzip.compress(TEXT), len(TEXT)) == TEXT


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x1f\x8b",
        gzip.compress(b"abc")[:-4],  # trailer cut: ISIZE missing
        gzip.compress(b"abc") + b"x",  # trailing garbage
        gzip.compress(b"abc") + gzip.compress(b""),  # a second member
        zlib.compress(b"abc"),  # zlib, not gzip
    ],
)
def test_gzip_garbage_is_corrupt(payload):
    with pytest.raises(CodecError) as info:
        CpuGzipCodec().decompress(payload, 3)
    assert info.value.is_corrupt


def test_gzip_crc_mismatch_is_corrupt():
    payload = bytearray(gzip.compress(b"abcdef"))
    payload[-8] ^= 1  # CRC32 of the member
    with pytest.raises(CodecError):
        CpuGzipCodec().decompress(bytes(payload), 6)


def test_gzip_bomb_is_bounded():
    bomb = gzip.compress(bytes(50_000_000))
    with pytest.raises(CodecError):
        CpuGzipCodec().decompress(bomb, 10)


def test_dict_codec_needs_its_own_dictionary():
    payload = CODECS["cpu-zstd-dict"].compress(b'{"user": 7, "event": "click"}')
    other = ZstdDictionary(
        zstandard.train_dictionary(4096, [b"other %d sample text" % i for i in range(500)]).as_bytes()
    )
    with pytest.raises(CodecError):
        CpuZstdDictCodec(other).decompress(payload, 29)
    with pytest.raises(CodecError):
        CpuZstdCodec().decompress(payload, 29)


def test_dictionary_id_is_sha256_prefix(fixtures_dir):
    d = ZstdDictionary((fixtures_dir / "zstd_dict.bin").read_bytes())
    assert d.dict_id == "9867d0e5cf974014"  # the id the Rust gateway stored it under
    assert d.object_key == ".s4dict/" + d.dict_id


def test_nvcomp_zstd_cpu_writes_64k_chunks_of_plain_zstd():
    payload = NvcompZstdCpuCodec().compress(TEXT[:200_000])
    c = decode_fcg1(payload)
    assert (c.algo, c.chunk_size, len(c.chunks)) == (Fcg1Algo.ZSTD, 65536, 4)
    assert zstandard.ZstdDecompressor().decompress(c.chunks[0]) == TEXT[:65536]


def test_nvcomp_zstd_cpu_decodes_foreign_chunk_sizes():
    data = TEXT[:100_000]
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    chunks = [cctx.compress(data[i : i + 30_000]) for i in range(0, len(data), 30_000)]
    payload = encode_fcg1(Fcg1Algo.ZSTD, len(data), chunks, 30_000)
    assert NvcompZstdCpuCodec().decompress(payload, len(data)) == data


def test_nvcomp_zstd_cpu_refuses_other_algorithms_and_sizes():
    data = TEXT[:1000]
    chunk = zstandard.ZstdCompressor().compress(data)
    with pytest.raises(CodecError, match="BITCOMP"):
        NvcompZstdCpuCodec().decompress(encode_fcg1(Fcg1Algo.BITCOMP, 1000, [chunk]), 1000)
    with pytest.raises(CodecError, match="expected 999"):
        NvcompZstdCpuCodec().decompress(encode_fcg1(Fcg1Algo.ZSTD, 1000, [chunk]), 999)
    # a chunk that decodes to another length than its slot
    short = zstandard.ZstdCompressor().compress(data[:999])
    with pytest.raises(CodecError):
        NvcompZstdCpuCodec().decompress(encode_fcg1(Fcg1Algo.ZSTD, 1000, [short]), 1000)


def test_passthrough_checks_the_size():
    with pytest.raises(CodecError):
        PassthroughCodec().decompress(b"abc", 4)


def test_kinds():
    assert {c.kind for c in CODECS.values()} == {
        CodecKind.PASSTHROUGH,
        CodecKind.CPU_ZSTD,
        CodecKind.CPU_GZIP,
        CodecKind.CPU_ZSTD_DICT,
        CodecKind.NVCOMP_ZSTD,
    }


def test_batch_form_defaults_to_one_call_per_frame():
    codec = CODECS["cpu-zstd"]
    frames = [TEXT[:10], TEXT[:0], TEXT[:70_000]]
    payloads = codec.compress_batch(frames)
    assert codec.decompress_batch(payloads, [len(f) for f in frames]) == frames
