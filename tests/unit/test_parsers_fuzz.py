"""Arbitrary input to every parser of stored data: a CodecError or a valid result, nothing else."""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s4.codec import (
    ChunkManifest,
    CodecError,
    CodecKind,
    FrameIndex,
    FrameStreamReader,
    IndexEntry,
    decode_fcg1,
    encode_fcg1,
    parse_record_header,
)
from s4.codec.format.fcg1 import Fcg1Algo
from s4.codec.format.manifest import KEY_CODEC, KEY_CRC32C, KEY_FRAMED, KEY_LOGICAL_ETAG, KEY_ORIGINAL_SIZE


def mutate(base: bytes):
    """Valid bytes with a few positions overwritten, truncated or extended."""
    return st.tuples(
        st.lists(st.tuples(st.integers(0, max(len(base) - 1, 0)), st.integers(0, 255)), max_size=4),
        st.integers(0, len(base)),
        st.binary(max_size=8),
    ).map(lambda t: _apply(base, *t))


def _apply(base: bytes, edits, cut, tail) -> bytes:
    data = bytearray(base)
    for pos, value in edits:
        if data:
            data[pos] = value
    return bytes(data[:cut]) + tail


FCG1 = encode_fcg1(Fcg1Algo.ZSTD, 150_000, [b"a" * 10, b"b" * 20, b"c" * 5])
INDEX = FrameIndex.from_entries([IndexEntry(0, 10, 0, 40), IndexEntry(10, 5, 40, 30)], 70, "etag").encode()


@given(st.one_of(st.binary(max_size=200), mutate(FCG1)))
@settings(max_examples=400)
def test_fcg1_parser(data):
    try:
        c = decode_fcg1(data)
    except CodecError:
        return
    assert sum(len(ch) for ch in c.chunks) + 24 + 4 * len(c.chunks) == len(data)


@given(st.one_of(st.binary(max_size=200), mutate(INDEX), st.binary(max_size=64).map(lambda b: b"S4IX" + b)))
@settings(max_examples=400)
def test_sidecar_parser(data):
    try:
        index = FrameIndex.decode(data)
    except CodecError:
        return
    assert index.total_original == sum(e.original_size for e in index.entries)


@given(st.binary(min_size=0, max_size=40))
@settings(max_examples=300)
def test_record_header_parser(data):
    try:
        header = parse_record_header(data)
    except CodecError:
        return
    assert header.record_size >= 0


@given(st.lists(st.binary(max_size=60), max_size=6))
@settings(max_examples=300)
def test_frame_stream_on_garbage_chunks(chunks):
    reader = FrameStreamReader()
    try:
        for chunk in chunks:
            for frame in reader.feed(b"S4F2" + struct.pack("<I", 1) + chunk):
                assert len(frame.payload) == frame.header.compressed_size
        reader.finish()
    except CodecError:
        pass


metadata_values = st.one_of(
    st.text(max_size=30), st.integers(-5, 2**70).map(str), st.sampled_from([k.wire_name for k in CodecKind])
)


@given(
    st.dictionaries(
        st.sampled_from(
            [KEY_CODEC, KEY_ORIGINAL_SIZE, KEY_CRC32C, KEY_FRAMED, KEY_LOGICAL_ETAG, "s4-dict-id", "other"]
        ),
        metadata_values,
    )
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_manifest_parser(meta):
    try:
        m = ChunkManifest.from_metadata(meta)
    except CodecError:
        return
    if m is not None:
        assert ChunkManifest.from_metadata(m.to_metadata()) == m
