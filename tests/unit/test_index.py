import struct

import pytest

from s4.codec import CodecError, FrameIndex, IndexEntry, sidecar_key
from s4.codec.format.index import MAX_ETAG_BYTES

ENTRIES = (IndexEntry(0, 100, 0, 60), IndexEntry(100, 50, 60, 40), IndexEntry(150, 0, 100, 28))


def v2(entries=ENTRIES, etag="abc123", stored=128) -> bytes:
    return FrameIndex.from_entries(entries, stored, f'"{etag}"').encode()


def test_v2_layout_and_round_trip():
    data = v2()
    assert data[:4] == b"S4IX"
    assert struct.unpack_from("<IQQQQI", data, 4) == (2, 3, 150, 128, 128, 6)
    assert data[44:50] == b"abc123"
    assert len(data) == 50 + 3 * 32
    index = FrameIndex.decode(data)
    assert index.entries == ENTRIES and index.etag == "abc123" and index.version == 2
    assert index.encode() == data


def test_v1_reads_and_is_never_trusted():
    body = struct.pack("<4sIQQQ", b"S4IX", 1, 1, 100, 60) + struct.pack("<QQQQ", 0, 100, 0, 60)
    index = FrameIndex.decode(body)
    assert index.version == 1 and index.etag is None
    assert not index.matches("anything", 60)


def test_matches_only_the_same_etag_and_size():
    index = FrameIndex.decode(v2())
    assert index.matches('"abc123"', 128)
    assert index.matches("abc123", 128)
    assert not index.matches("abc124", 128)
    assert not index.matches("abc123", 129)
    assert not index.matches(None, 128)


def test_covering_picks_only_the_needed_frames():
    index = FrameIndex.decode(v2())
    assert index.covering(0, 1) == (ENTRIES[0],)
    assert index.covering(99, 101) == ENTRIES[:2]
    assert index.covering(120, 150) == (ENTRIES[1],)
    assert index.covering(150, 200) == ()
    assert index.covering(10, 10) == ()


def test_gateway_sidecar_parses(fixtures_dir):
    index = FrameIndex.decode((fixtures_dir / "multi_zstd.s4index").read_bytes())
    assert index.total_original == 5_040_000
    assert index.source_compressed_size == index.total_padded == 43597
    assert [e.original_size for e in index.entries] == [4 * 1024 * 1024, 5_040_000 - 4 * 1024 * 1024]
    assert index.etag == "2a13d8a717ef421c5210eb6f0fb6b088"


def test_sidecar_key():
    assert sidecar_key("a/b.parquet") == "a/b.parquet.s4index"


GOOD = v2()


def patched(offset: int, fmt: str, *values) -> bytes:
    data = bytearray(GOOD)
    struct.pack_into(fmt, data, offset, *values)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD[:20], "truncated"),
        (b"S4IY" + GOOD[4:], "magic"),
        (patched(4, "<I", 3), "version"),
        (patched(8, "<Q", 16 * 1024 * 1024 + 1), "limit"),
        (patched(8, "<Q", 4), "header says"),
        (GOOD + b"\x00", "header says"),
        (GOOD[:-1], "header says"),
        (patched(40, "<I", MAX_ETAG_BYTES + 1), "ETag"),
        (patched(40, "<I", 10_000_000), "ETag"),
        (patched(44, "<B", 0xFF), "ASCII"),
        (patched(16, "<Q", 151), "cover"),  # total_original disagrees
        (patched(24, "<Q", 127), "past"),  # entries run past the body
        (patched(50 + 32, "<Q", 99), "expected 100"),  # gap in original offsets
        (patched(50 + 32 + 16, "<Q", 59), "overlaps"),  # compressed overlap
        (patched(50 + 24, "<Q", 27), "out of range"),  # record smaller than a header
    ],
)
def test_bad_sidecars_are_corrupt(data, message):
    with pytest.raises(CodecError, match=message) as info:
        FrameIndex.decode(data)
    assert info.value.is_corrupt
