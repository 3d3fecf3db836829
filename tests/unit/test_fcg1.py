import struct

import pytest

from s4.codec import CodecError, Fcg1Algo, decode_fcg1, encode_fcg1
from s4.codec.format.fcg1 import FCG1_HEADER_SIZE, Fcg1Container


def container(original_size=150_000, chunk_size=65536, algo=Fcg1Algo.ZSTD, data_type=0) -> bytes:
    n = -(-original_size // chunk_size)
    chunks = [bytes([i]) * (i + 1) for i in range(n)]
    return encode_fcg1(algo, original_size, chunks, chunk_size, data_type)


def test_layout_matches_the_format():
    payload = container()
    magic, algo, reserved, original, chunk_size, count = struct.unpack_from("<4sB3sQII", payload)
    assert (magic, algo, reserved, original, chunk_size, count) == (b"FCG1", 3, bytes(3), 150_000, 65536, 3)
    assert struct.unpack_from("<3I", payload, FCG1_HEADER_SIZE) == (1, 2, 3)
    assert payload[FCG1_HEADER_SIZE + 12 :] == b"\x00" + b"\x01\x01" + b"\x02\x02\x02"


def test_round_trip_and_chunk_sizes():
    c = decode_fcg1(container())
    assert c == Fcg1Container(Fcg1Algo.ZSTD, 150_000, 65536, (b"\x00", b"\x01\x01", b"\x02\x02\x02"))
    assert [c.chunk_original_size(i) for i in range(3)] == [65536, 65536, 150_000 - 131072]
    assert c.encode() == container()


def test_bitcomp_keeps_its_data_type():
    c = decode_fcg1(container(algo=Fcg1Algo.BITCOMP, data_type=9))
    assert c.data_type == 9
    assert decode_fcg1(c.encode()).data_type == 9


def test_empty_container():
    assert decode_fcg1(encode_fcg1(Fcg1Algo.ZSTD, 0, [])).chunks == ()


GOOD = container()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (GOOD[:10], "truncated"),
        (b"FCG2" + GOOD[4:], "magic"),
        (GOOD[:4] + b"\x09" + GOOD[5:], "algorithm"),
        (container(algo=Fcg1Algo.BITCOMP, data_type=12), "data type"),
        (GOOD[:12] + struct.pack("<Q", 6 * 1024**3) + GOOD[20:], "limit"),
        (GOOD[:16] + struct.pack("<I", 0) + GOOD[20:], "chunk size is zero"),
        (GOOD[:20] + struct.pack("<I", 4) + GOOD[24:], "chunks"),
        (GOOD[:-1], "chunks total"),
        (GOOD + b"x", "chunks total"),
        (GOOD[: FCG1_HEADER_SIZE + 4], "table"),
        (GOOD[:FCG1_HEADER_SIZE] + struct.pack("<3I", 1, 2, 2**31) + GOOD[FCG1_HEADER_SIZE + 12 :], "chunks total"),
    ],
)
def test_bad_containers_are_corrupt(payload, message):
    with pytest.raises(CodecError, match=message) as info:
        decode_fcg1(payload)
    assert info.value.is_corrupt


def test_huge_chunk_count_is_refused_without_allocating():
    # 4 GiB in 1-byte chunks would be a 16 GiB table: the payload must actually hold it.
    n = 2**32 - 1
    payload = struct.pack("<4sB3sQII", b"FCG1", 3, bytes(3), n, 1, n)
    with pytest.raises(CodecError, match="table runs past"):
        decode_fcg1(payload)
