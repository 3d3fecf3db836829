import hashlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from s4.codec import (
    BodyDecoder,
    ChunkManifest,
    CodecError,
    CodecKind,
    CodecRegistry,
    FramedBodyWriter,
    FrameIndex,
    crc32c,
    decode_body,
    encode_body,
    encode_frame,
    iter_decoded,
)
from s4.codec.format.frame import encode_padding

REGISTRY = CodecRegistry.cpu_default()
TEXT = b"".join(b"%08d some fairly compressible text\n" % i for i in range(30_000))
COMPRESSING = [CodecKind.CPU_ZSTD, CodecKind.CPU_GZIP, CodecKind.NVCOMP_ZSTD]
bodies = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda n, s: TEXT[s : s + n], st.integers(0, 5000), st.integers(0, 1000)),
)


def chunked(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("kind", COMPRESSING)
@pytest.mark.parametrize("size", [0, 1, 1000, 65536, 300_000, len(TEXT)])
def test_round_trip_with_manifest_and_index(kind, size):
    data = TEXT[:size]
    body = encode_body(data, kind, REGISTRY, frame_size=100_000, logical_etag=hashlib.md5(data).hexdigest())
    m = body.manifest
    assert (m.original_size, m.crc32c) == (size, crc32c(data))
    assert m.compressed_size == len(body.stored)
    if size <= 1:  # nothing to gain: stored raw
        assert (m.codec, m.framed, body.stored) == (CodecKind.PASSTHROUGH, False, data)
    else:
        assert (m.codec, m.framed) == (kind, True)
        assert len(body.entries) == -(-size // 100_000)
    # through the metadata dict, the way it comes back from a store
    manifest = ChunkManifest.from_metadata(m.to_metadata())
    assert decode_body(body.stored, manifest, REGISTRY) == data
    assert b"".join(iter_decoded(chunked(body.stored, 777), manifest, REGISTRY)) == data


def test_incompressible_bodies_are_stored_raw():
    import os

    data = os.urandom(300_000)
    body = encode_body(data, CodecKind.CPU_ZSTD, REGISTRY, frame_size=100_000)
    assert body.stored == data
    assert (body.manifest.codec, body.manifest.framed, body.entries) == (CodecKind.PASSTHROUGH, False, ())
    assert decode_body(body.stored, body.manifest, REGISTRY) == data


def test_mixed_frames_keep_passthrough_frames_where_compression_does_not_pay():
    import os

    data = TEXT[:100_000] + os.urandom(100_000) + TEXT[:100_000]
    body = encode_body(data, CodecKind.CPU_ZSTD, REGISTRY, frame_size=100_000)
    assert len(body.entries) == 3
    assert body.entries[1].compressed_size == 100_000 + 28  # stored as passthrough
    assert decode_body(body.stored, body.manifest, REGISTRY) == data


def test_writer_index_matches_the_stream():
    writer = FramedBodyWriter()
    parts = []
    for piece in (TEXT[:5000], TEXT[5000:5001], b"", TEXT[:70_000]):
        parts.extend(writer.append(encode_frame(REGISTRY, CodecKind.CPU_ZSTD, piece)))
    stored = b"".join(parts)
    index = FrameIndex.decode(writer.index('"etag-1"').encode())
    assert index.matches("etag-1", len(stored))
    assert index.total_original == 75_001 == writer.original_size
    for e in index.entries:
        assert stored[e.compressed_offset : e.compressed_offset + 4] == b"S4F2"
    assert writer.crc32c == crc32c(TEXT[:5001] + TEXT[:70_000])


def test_padding_between_frames_is_skipped():
    a = encode_frame(REGISTRY, CodecKind.CPU_ZSTD, TEXT[:1000])
    b = encode_frame(REGISTRY, CodecKind.CPU_ZSTD, TEXT[1000:3000])
    stored = b"".join([*a.pieces, encode_padding(100), *b.pieces, encode_padding(3)])
    m = ChunkManifest(CodecKind.CPU_ZSTD, 3000, len(stored), crc32c(TEXT[:3000]), framed=True)
    assert decode_body(stored, m, REGISTRY) == TEXT[:3000]


def test_unframed_payloads_and_raw_objects():
    gz = REGISTRY.compress(CodecKind.CPU_GZIP, TEXT[:5000])
    m = ChunkManifest(CodecKind.CPU_GZIP, 5000, len(gz), crc32c(TEXT[:5000]))
    assert b"".join(iter_decoded(chunked(gz, 100), m, REGISTRY)) == TEXT[:5000]
    assert decode_body(b"anything at all", None, REGISTRY) == b"anything at all"
    too_long = ChunkManifest(CodecKind.CPU_GZIP, 5000, len(gz) - 1)
    with pytest.raises(CodecError, match="longer"):
        decode_body(gz, too_long, REGISTRY)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("original_size", 29_999, "more than"),
        ("original_size", 30_001, "decoded to"),
        ("crc32c", 1, "CRC32C"),
        ("compressed_size", None, None),
    ],
)
def test_manifest_totals_are_checked(field, value, message):
    body = encode_body(TEXT[:30_000], CodecKind.CPU_ZSTD, REGISTRY, frame_size=10_000)
    import dataclasses

    m = dataclasses.replace(body.manifest, **{field: value})
    if message is None:
        assert decode_body(body.stored, m, REGISTRY) == TEXT[:30_000]
    else:
        with pytest.raises(CodecError, match=message):
            decode_body(body.stored, m, REGISTRY)


def test_decoder_emits_nothing_for_a_frame_until_it_is_verified():
    body = encode_body(TEXT[:30_000], CodecKind.CPU_ZSTD, REGISTRY, frame_size=10_000)
    stored = bytearray(body.stored)
    stored[body.entries[1].compressed_offset + 24] ^= 0xFF  # second frame's CRC
    decoder = BodyDecoder(body.manifest, REGISTRY)
    out = decoder.feed(bytes(stored[: body.entries[1].compressed_offset]))
    assert out == []  # the newest piece waits for the next one (or for the totals at the end)
    with pytest.raises(CodecError, match="CRC32C mismatch"):
        decoder.feed(bytes(stored[body.entries[1].compressed_offset :]))


def test_intact_frames_in_the_wrong_order_never_come_out_complete():
    body = encode_body(TEXT[:30_000], CodecKind.CPU_ZSTD, REGISTRY, frame_size=10_000)
    e = body.entries
    records = [body.stored[x.compressed_offset : x.compressed_end] for x in e]
    swapped = records[1] + records[0] + records[2]
    decoder = BodyDecoder(body.manifest, REGISTRY)
    out = decoder.feed(swapped)
    with pytest.raises(CodecError, match="whole-object CRC32C"):
        decoder.finish()
    assert sum(map(len, out)) < 30_000


@given(bodies, st.sampled_from([*COMPRESSING, CodecKind.PASSTHROUGH]), st.integers(1, 3000), st.integers(1, 999))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bodies_round_trip(data, kind, frame_size, chunk):
    body = encode_body(data, kind, REGISTRY, frame_size=frame_size)
    assert b"".join(iter_decoded(chunked(body.stored, chunk), body.manifest, REGISTRY)) == data


ENCODED = {kind: encode_body(TEXT[:20_000], kind, REGISTRY, frame_size=7000) for kind in COMPRESSING}


@given(st.sampled_from(COMPRESSING), st.data())
@settings(max_examples=400)
def test_single_byte_corruption_never_yields_wrong_data(kind, data):
    body = ENCODED[kind]
    position = data.draw(st.integers(0, len(body.stored) - 1))
    value = data.draw(st.integers(0, 255))
    assume(body.stored[position] != value)
    corrupt = bytearray(body.stored)
    corrupt[position] = value
    try:
        out = decode_body(bytes(corrupt), body.manifest, REGISTRY)
    except CodecError:
        return
    assert out == TEXT[:20_000]


@given(st.binary(max_size=600), st.sampled_from(COMPRESSING), st.booleans())
@settings(max_examples=300)
def test_arbitrary_bytes_give_codec_error_or_nothing_wrong(garbage, kind, framed):
    manifest = ChunkManifest(kind, 100, None, None, framed=framed)
    try:
        out = decode_body(garbage, manifest, REGISTRY)
    except CodecError:
        return
    assert len(out) == 100  # only a genuinely valid body of 100 bytes could get here


@given(st.binary(min_size=4, max_size=200))
@settings(max_examples=200)
def test_arbitrary_bytes_after_a_valid_magic(tail):
    manifest = ChunkManifest(CodecKind.CPU_ZSTD, 10, None, None, framed=True)
    with pytest.raises(CodecError):
        decode_body(b"S4F2" + tail, manifest, REGISTRY)
