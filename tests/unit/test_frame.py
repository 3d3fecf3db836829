import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.codec import MAX_FRAME_BYTES, CodecError, CodecKind, FrameHeader, FrameStreamReader, iter_frames
from s4.codec.format.frame import (
    FRAME_HEADER_SIZE,
    PaddingHeader,
    encode_frame,
    encode_padding,
    parse_record_header,
)


def frame(payload: bytes, original_size: int = 0, codec=CodecKind.CPU_ZSTD, crc: int = 7) -> bytes:
    return encode_frame(FrameHeader(codec, original_size, len(payload), crc), payload)


def test_header_layout_is_28_little_endian_bytes():
    h = FrameHeader(CodecKind.CPU_GZIP, 0x0102030405, 3, 0xAABBCCDD)
    packed = h.pack()
    assert len(packed) == FRAME_HEADER_SIZE == 28
    assert packed == b"S4F2" + struct.pack("<IQQI", 7, 0x0102030405, 3, 0xAABBCCDD)
    assert parse_record_header(packed) == h


def test_reader_yields_frames_and_skips_padding():
    body = b"".join([frame(b"abc", 10), encode_padding(5), frame(b"", 0, CodecKind.PASSTHROUGH), frame(b"xy", 4)])
    frames = list(iter_frames([body], stream_length=len(body)))
    assert [f.payload for f in frames] == [b"abc", b"", b"xy"]
    assert [f.offset for f in frames] == [0, 31 + 17, 31 + 17 + 28]
    assert frames[0].header.original_size == 10


@given(st.lists(st.binary(max_size=300), max_size=6), st.data())
@settings(max_examples=150)
def test_any_chunking_gives_the_same_frames(payloads, data):
    records = []
    for i, p in enumerate(payloads):
        records.append(frame(p, len(p) + 1))
        if i % 2:
            records.append(encode_padding(i * 3))
    body = b"".join(records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    reader = FrameStreamReader(stream_length=len(body))
    got = [f.payload for c in chunks for f in reader.feed(c)]
    reader.finish()
    assert got == payloads
    assert reader.bytes_consumed == len(body)


def test_a_payload_split_across_chunks_comes_out_as_bytes_and_survives_a_reused_buffer():
    """Gathered pieces are joined once into bytes (which a passthrough decode then hands on without
    another copy); a producer that reuses its bytearray for the next chunk cannot change them."""
    payload = bytes(range(256)) * 40
    body = frame(payload, len(payload))
    reader = FrameStreamReader(stream_length=len(body))
    buffer = bytearray(1000)
    got = []
    for start in range(0, len(body), 1000):
        piece = body[start : start + 1000]
        buffer[: len(piece)] = piece
        got += reader.feed(memoryview(buffer)[: len(piece)])
        buffer[:] = b"\xee" * len(buffer)  # the producer reuses its buffer
    reader.finish()
    assert len(got) == 1
    assert type(got[0].payload) is bytes
    assert got[0].payload == payload


def test_empty_stream_has_no_frames():
    assert list(iter_frames([b""], stream_length=0)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (frame(b"abc", 10)[:-1], "truncated"),
        (frame(b"abc", 10)[:20], "truncated"),
        (b"S4F", "truncated"),
        (frame(b"abc", 10) + b"junk", "unknown record magic"),
        (b"S4F3" + bytes(24), "unknown record magic"),
        (encode_padding(4)[:-2], "padding"),
        (b"S4P1" + struct.pack("<Q", 3) + b"\x00\x01\x00", "non-zero"),
        (b"S4F2" + struct.pack("<IQQI", 99, 1, 1, 0) + b"x", "unknown codec id 99"),
        (b"S4F2" + struct.pack("<IQQI", 0, 2, 1, 0) + b"x", "passthrough frame"),
        (b"S4F2" + struct.pack("<IQQI", 1, MAX_FRAME_BYTES + 1, 1, 0) + b"x", "limit"),
        (b"S4F2" + struct.pack("<IQQI", 1, 1, 2**63, 0), "limit"),
        (b"S4P1" + struct.pack("<Q", 2**62), "limit"),
    ],
)
def test_bad_streams_are_corrupt(body, message):
    with pytest.raises(CodecError, match=message) as info:
        list(iter_frames([body]))
    assert info.value.is_corrupt


def test_stated_length_rejects_lying_headers_at_once():
    # A header claiming 4 GiB is refused as soon as it arrives; nothing is buffered for it.
    header = FrameHeader(CodecKind.CPU_ZSTD, 10, 4 * 1024**3, 0).pack()
    reader = FrameStreamReader(stream_length=1000)
    with pytest.raises(CodecError, match="only 1000 remain"):
        reader.feed(header)


def test_stated_length_rejects_trailing_bytes_and_short_streams():
    body = frame(b"abc", 10)
    with pytest.raises(CodecError, match="longer"):
        list(iter_frames([body + bytes(12)], stream_length=len(body)))
    with pytest.raises(CodecError, match="expected"):
        list(iter_frames([body], stream_length=len(body) + 12))


def test_frame_count_limit():
    body = frame(b"", 0, CodecKind.PASSTHROUGH) * 3
    reader = FrameStreamReader(max_frames=2)
    with pytest.raises(CodecError, match="more than 2 frames"):
        reader.feed(body)


def test_padding_header_parses():
    assert parse_record_header(encode_padding(9)) == PaddingHeader(9)
    assert PaddingHeader(9).record_size == 21
