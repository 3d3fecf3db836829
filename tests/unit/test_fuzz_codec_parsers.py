"""Fuzzing the parsers of stored data with structured mutations of valid encodings.

tests/unit/test_parsers_fuzz.py throws short arbitrary bytes at each parser; this file
starts from *valid* S4F2 bodies, FCG1 containers, S4IX sidecars and manifests and breaks
them a little (flipped bits, truncations, inserted or duplicated bytes, whole records
dropped or repeated), which reaches the checks arbitrary bytes never get past. The
property throughout: a CodecError, or exactly the right data; never a wrong byte at the
full length, a hang, or an allocation sized by what a header claims.

Each ``target_*`` takes raw bytes so that tests/fuzz_corpus/<target>/ replays through the
same checks (test_fuzz_corpus.py), as does the atheris harness in fuzz/.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct

import pytest
import zstandard
from hypothesis import example, given
from hypothesis import strategies as st

from s4.codec import (
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    BodyDecoder,
    ChunkManifest,
    CodecError,
    CodecKind,
    CodecRegistry,
    FrameHeader,
    FrameIndex,
    FrameStreamReader,
    IndexEntry,
    crc32c,
    decode_fcg1,
    decode_frame,
    encode_fcg1,
    encode_frame,
)
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.format.fcg1 import FCG1_HEADER, FCG1_MAGIC, Fcg1Algo
from s4.codec.format.frame import FRAME_HEADER, FRAME_MAGIC, PADDING_HEADER_SIZE, encode_padding
from s4.codec.format.index import ENTRY, INDEX_MAGIC, V1_HEADER, V2_TAIL
from s4.codec.format.manifest import KEY_CODEC, KEY_COMPRESSED_SIZE, KEY_ORIGINAL_SIZE, MAX_OBJECT_BYTES
from tests.unit.fuzz_support import MiB, fuzz_settings, measure, mutations

REGISTRY = CodecRegistry.cpu_default()
TEXT = b"".join(b"%05d the quick brown fox jumps over the lazy dog\n" % i for i in range(40))
GiB = 1024**3


# --- S4F2 bodies -----------------------------------------------------------------------------------------


def _frame_record(kind: CodecKind, data: bytes) -> bytes:
    header, payload = encode_frame(REGISTRY, kind, data).pieces
    return header + payload


def _fcg1_frame_record(data: bytes, chunk_size: int) -> bytes:
    """nvcomp-zstd with small chunks, so the FCG1 inside has a real chunk table."""
    payload = NvcompZstdCpuCodec(chunk_size=chunk_size).compress(data)
    return FrameHeader(CodecKind.NVCOMP_ZSTD, len(data), len(payload), crc32c(data)).pack() + payload


ORIGINAL = TEXT
SEED_RECORDS = [
    _frame_record(CodecKind.CPU_ZSTD, ORIGINAL[:600]),
    encode_padding(7),
    _frame_record(CodecKind.CPU_GZIP, ORIGINAL[600:1100]),
    _fcg1_frame_record(ORIGINAL[1100:1800], 256),
    encode_padding(0),
    _frame_record(CodecKind.PASSTHROUGH, ORIGINAL[1800:1830]),
    _frame_record(CodecKind.CPU_ZSTD, ORIGINAL[1830:]),
]
SEED_BODY = b"".join(SEED_RECORDS)
MANIFEST = ChunkManifest(CodecKind.CPU_ZSTD, len(ORIGINAL), len(SEED_BODY), crc32c(ORIGINAL), framed=True)
MANIFEST_NO_LENGTH = ChunkManifest(CodecKind.CPU_ZSTD, len(ORIGINAL), None, crc32c(ORIGINAL), framed=True)


def decode_pieces(stored: bytes, manifest: ChunkManifest, cuts: list[int] = ()) -> tuple[bytes, CodecError | None]:
    """What a client would receive from ``stored`` fed in pieces, and the error that ended it."""
    decoder = BodyDecoder(manifest, REGISTRY)
    out = bytearray()
    points = sorted({c % (len(stored) + 1) for c in cuts} | {0, len(stored)})
    try:
        for start, stop in itertools.pairwise(points):
            for piece in decoder.feed(stored[start:stop]):
                out += piece
        for piece in decoder.finish():
            out += piece
    except CodecError as error:
        return bytes(out), error
    return bytes(out), None


def check_body_outcome(stored: bytes, manifest: ChunkManifest, cuts: list[int] = ()) -> bool:
    """CodecError before the full length, or exactly the original; the same however the body is split."""
    released, error = decode_pieces(stored, manifest, cuts)
    if error is None:
        assert released == ORIGINAL, "a changed body decoded to other bytes"
    else:
        assert len(released) < len(ORIGINAL), "a body that failed its checks came out at full length"
    whole, whole_error = decode_pieces(stored, manifest)
    assert (whole_error is None) == (error is None)
    if error is None:
        assert whole == released
    return error is None


def target_s4f2_body(data: bytes) -> bool:
    """A (mutated) stored body against the seed's manifest, with and without a stated length.

    The stated length is the input's own, so that a corpus file written by another zstd
    version (other compressed bytes, same original) still replays as a valid body.
    """
    stated = dataclasses.replace(MANIFEST, compressed_size=len(data))
    accepted = check_body_outcome(data, MANIFEST_NO_LENGTH, list(range(0, len(data), 7)))
    assert check_body_outcome(data, stated) == accepted
    return accepted


def test_seed_body_decodes():
    assert decode_pieces(SEED_BODY, MANIFEST) == (ORIGINAL, None)
    assert decode_pieces(SEED_BODY, MANIFEST, list(range(len(SEED_BODY)))) == (ORIGINAL, None)
    target_s4f2_body(SEED_BODY)


@st.composite
def record_shuffles(draw) -> bytes:
    """Whole records dropped, repeated or swapped: each frame still intact, the body as a whole wrong."""
    records = list(SEED_RECORDS)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "repeat", "swap"]))
        i = draw(st.integers(0, len(records) - 1))
        j = draw(st.integers(0, len(records) - 1))
        if op == "drop" and len(records) > 1:
            del records[i]
        elif op == "repeat":
            records.insert(j, records[i])
        else:
            records[i], records[j] = records[j], records[i]
    return b"".join(records)


@given(
    st.one_of(mutations(SEED_BODY), record_shuffles()),
    st.lists(st.integers(0, 2**16), max_size=5),
)
@example(SEED_BODY[:-1], [])
@example(SEED_BODY + b"\x00", [])
@fuzz_settings(300)
def test_a_mutated_body_decodes_to_the_original_or_fails(stored, cuts):
    check_body_outcome(stored, MANIFEST, cuts)
    check_body_outcome(stored, MANIFEST_NO_LENGTH, cuts)


@pytest.mark.parametrize("record", range(len(SEED_RECORDS)))
def test_every_truncation_fails(record):
    """Cut anywhere inside the body (checked record by record to keep each case small): always a CodecError."""
    start = sum(len(r) for r in SEED_RECORDS[:record])
    for cut in range(start, start + len(SEED_RECORDS[record])):
        released, error = decode_pieces(SEED_BODY[:cut], MANIFEST_NO_LENGTH)
        assert error is not None and len(released) < len(ORIGINAL), cut


def target_s4f2_stream(data: bytes) -> bool:
    """Arbitrary bytes as a frame stream: CodecError, or frames whose sizes add up, however it is fed."""

    def frames(pieces: list[bytes]) -> tuple:
        reader = FrameStreamReader()
        got = []
        try:
            for piece in pieces:
                got.extend((f.header, bytes(f.payload), f.offset) for f in reader.feed(piece))
            reader.finish()
        except CodecError:
            return ("error", tuple(got))
        return ("ok", tuple(got))

    whole = frames([data])
    bytewise = frames([data[i : i + 1] for i in range(len(data))])
    # A refused stream may have handed out fewer frames when fed whole (feed() raised mid-chunk).
    assert whole[0] == bytewise[0] and bytewise[1][: len(whole[1])] == whole[1]
    offset = 0
    for header, payload, at in bytewise[1]:
        assert len(payload) == header.compressed_size and at >= offset
        offset = at + header.record_size
        try:
            out = decode_frame(REGISTRY, header, payload)
        except CodecError:
            continue
        assert len(out) == header.original_size and crc32c(out) == header.crc32c
    return bytewise[0] == "ok"


@given(st.one_of(st.binary(max_size=200), mutations(SEED_BODY, 6)))
@fuzz_settings(200)
def test_frame_stream(data):
    target_s4f2_stream(data)


# --- FCG1 ---------------------------------------------------------------------------------------------

FCG1_DATA = TEXT[:900]
FCG1_SEED = NvcompZstdCpuCodec(chunk_size=200).compress(FCG1_DATA)


def target_fcg1(data: bytes) -> bool:
    """A (mutated) nvcomp-zstd container: CodecError, or bytes of the right length, and exactly the seed's
    once the S4F2 frame CRC is checked. FCG1 has no checksum of its own (nor do the zstd frames in it):
    a flipped literal decodes to other bytes of the same length, which only the frame CRC can catch."""
    try:
        container = decode_fcg1(data)
    except CodecError:
        pass
    else:
        assert 24 + 4 * len(container.chunks) + sum(len(c) for c in container.chunks) == len(data)
        assert sum(container.chunk_original_size(i) for i in range(len(container.chunks))) == container.original_size
        if container.algo is Fcg1Algo.ZSTD:
            # At the size the container itself claims: what a frame header agreeing with it would ask for.
            try:
                out = REGISTRY.decompress(CodecKind.NVCOMP_ZSTD, data, container.original_size)
            except CodecError:
                pass
            else:
                assert len(out) == container.original_size
    try:
        out = REGISTRY.decompress(CodecKind.NVCOMP_ZSTD, data, len(FCG1_DATA))
    except CodecError:
        pass
    else:
        assert len(out) == len(FCG1_DATA)
    header = FrameHeader(CodecKind.NVCOMP_ZSTD, len(FCG1_DATA), len(data), crc32c(FCG1_DATA))
    try:
        out = decode_frame(REGISTRY, header, data)
    except CodecError:
        return False
    assert out == FCG1_DATA
    return True


@given(st.one_of(mutations(FCG1_SEED, 4), st.binary(max_size=120)))
@example(FCG1_SEED)
@fuzz_settings(300)
def test_fcg1(data):
    target_fcg1(data)


# --- S4IX sidecars -----------------------------------------------------------------------------------------

INDEX_SEED = FrameIndex.from_entries(
    [IndexEntry(0, 600, 0, 200), IndexEntry(600, 0, 219, 28), IndexEntry(600, 500, 247, 90)], 400, '"0123abcd-2"'
).encode()
INDEX_V1_SEED = V1_HEADER.pack(INDEX_MAGIC, 1, 1, 10, 50) + ENTRY.pack(0, 10, 0, 38)


def target_s4ix(data: bytes) -> bool:
    """A sidecar: CodecError, or an index that re-encodes to exactly these bytes (v2) and is self-consistent."""
    try:
        index = FrameIndex.decode(data)
    except CodecError:
        return False
    assert index.total_original == sum(e.original_size for e in index.entries)
    assert all(e.compressed_end <= index.total_padded for e in index.entries)
    if index.version == 2:
        assert index.encode() == data
    for start, end in ((0, 1), (0, index.total_original), (index.total_original // 2, index.total_original + 5)):
        for entry in index.covering(start, end):
            assert entry.original_size and entry.original_offset < end and entry.original_end > start
    return True


@given(st.one_of(mutations(INDEX_SEED, 4), mutations(INDEX_V1_SEED, 4), st.binary(max_size=120)))
@example(INDEX_SEED)
@example(INDEX_V1_SEED)
@fuzz_settings(300)
def test_s4ix(data):
    target_s4ix(data)


# --- manifests ----------------------------------------------------------------------------------------------


def manifest_from_bytes(data: bytes) -> dict[str, str]:
    """``key: value`` lines, as object metadata arrives from a store (any case, with or without x-amz-meta-)."""
    meta = {}
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        key, sep, value = line.partition(":")
        if sep:
            meta[key] = value
    return meta


def target_manifest(data: bytes) -> bool:
    """Metadata: CodecError, None (not ours), or a manifest that survives its own round trip."""
    meta = manifest_from_bytes(data)
    try:
        manifest = ChunkManifest.from_metadata(meta)
    except CodecError:
        return False
    if manifest is None:
        assert not any(k.lower().removeprefix("x-amz-meta-") == KEY_CODEC for k in meta)
        return False
    assert 0 <= manifest.original_size <= MAX_OBJECT_BYTES
    assert manifest.crc32c is None or 0 <= manifest.crc32c <= 0xFFFFFFFF
    assert ChunkManifest.from_metadata(manifest.to_metadata()) == manifest
    return True


MANIFEST_SEED = "\n".join(f"x-amz-meta-{k}:{v}" for k, v in MANIFEST.to_metadata().items()).encode()


@given(
    st.one_of(
        mutations(MANIFEST_SEED, 4),
        st.lists(
            st.tuples(
                st.sampled_from([*MANIFEST.to_metadata(), "S4-Codec", "x-amz-meta-s4-original-size", "s4-dict-id"]),
                st.one_of(
                    st.text(max_size=24),
                    st.sampled_from(["1" * 25, "²", " 12 ", "-0", "TRUE", "cpu-zstd-dict", '"' + "a" * 32 + '-1"']),
                ),
            ),
            max_size=8,
        ).map(lambda pairs: "\n".join(f"{k}:{v}" for k, v in pairs).encode("utf-8", "surrogateescape")),
    )
)
@example(MANIFEST_SEED)
@fuzz_settings(300)
def test_manifest(data):
    target_manifest(data)


# --- allocation bounded by the input, not by what a header claims ------------------------------------------------


def _zstd_claiming(size: int) -> bytes:
    """A 16-byte zstd frame whose header claims ``size`` content bytes (its one block is garbage)."""
    return struct.pack("<I", 0xFD2FB528) + bytes([0b11100000]) + struct.pack("<Q", size) + b"\x01\x00\x00"


def test_zstd_claim_is_the_fixture_it_says():
    assert zstandard.frame_content_size(_zstd_claiming(5 * GiB)) == 5 * GiB


HUGE_CLAIMS = {
    "s4f2-compressed-5gib": lambda: _feed_and_finish(
        FRAME_HEADER.pack(FRAME_MAGIC, 1, 100, MAX_FRAME_BYTES, 0) + b"x" * 4096
    ),
    "s4f2-padding-5gib": lambda: _feed_and_finish(struct.pack("<4sQ", b"S4P1", MAX_FRAME_BYTES) + bytes(4096)),
    "s4f2-over-limit": lambda: _feed_and_finish(FRAME_HEADER.pack(FRAME_MAGIC, 1, 2**64 - 1, 2**64 - 1, 0)),
    "zstd-frame-claims-5gib": lambda: decode_frame(
        REGISTRY, FrameHeader(CodecKind.CPU_ZSTD, 5 * GiB, 16, 0), _zstd_claiming(5 * GiB)
    ),
    "zstd-frame-no-size-5gib": lambda: decode_frame(
        REGISTRY, FrameHeader(CodecKind.CPU_ZSTD, 5 * GiB, 6, 0), struct.pack("<I", 0xFD2FB528) + b"\x00\x01"
    ),
    "gzip-frame-claims-5gib": lambda: decode_frame(
        REGISTRY, FrameHeader(CodecKind.CPU_GZIP, 5 * GiB, 20, 0), b"\x1f\x8b\x08" + bytes(17)
    ),
    "fcg1-chunk-claims-4gib": lambda: REGISTRY.decompress(
        CodecKind.NVCOMP_ZSTD,
        encode_fcg1(
            Fcg1Algo.ZSTD, 5 * GiB, [_zstd_claiming(2**32 - 1), _zstd_claiming(5 * GiB - 2**32 + 1)], 2**32 - 1
        ),
        5 * GiB,
    ),
    "fcg1-many-chunks": lambda: decode_fcg1(FCG1_HEADER.pack(FCG1_MAGIC, 3, b"\0\0\0", 2**32 - 1, 1, 2**32 - 1)),
    "s4ix-max-frames": lambda: FrameIndex.decode(V1_HEADER.pack(INDEX_MAGIC, 1, MAX_FRAMES, 0, 0) + bytes(64)),
    "s4ix-u32-frames": lambda: FrameIndex.decode(V1_HEADER.pack(INDEX_MAGIC, 2, 2**32 - 1, 0, 0) + bytes(64)),
    "s4ix-etag-4gib": lambda: FrameIndex.decode(
        V1_HEADER.pack(INDEX_MAGIC, 2, 0, 0, 0) + V2_TAIL.pack(0, 2**32 - 1) + b"e" * 64
    ),
    "manifest-5tib-unframed": lambda: _feed_unframed(),
    "manifest-huge-sizes": lambda: ChunkManifest.from_metadata(
        {KEY_CODEC: "cpu-zstd", KEY_ORIGINAL_SIZE: "9" * 20, KEY_COMPRESSED_SIZE: "1"}
    ),
}


def _feed_and_finish(data: bytes) -> None:
    reader = FrameStreamReader()
    for i in range(0, len(data), 512):
        assert reader.feed(data[i : i + 512]) == []
    reader.finish()


def _feed_unframed() -> None:
    """An unframed body whose manifest claims 5 TiB: buffered as it arrives, and refused when it ends short."""
    manifest = ChunkManifest(CodecKind.CPU_GZIP, MAX_OBJECT_BYTES, MAX_OBJECT_BYTES)
    decoder = BodyDecoder(manifest, REGISTRY)
    for _ in range(16):
        assert decoder.feed(b"z" * 65536) == []
    decoder.finish()


@pytest.mark.parametrize("claim", sorted(HUGE_CLAIMS))
def test_huge_claims_fail_without_allocating_them(claim):
    """Each fails with at most 1 MiB allocated beyond the bytes it was actually given (1 MiB fed, at most)."""
    measured = measure(HUGE_CLAIMS[claim])
    assert isinstance(measured.error, CodecError), measured.error
    fed = MiB if claim == "manifest-5tib-unframed" else 0
    assert measured.peak_bytes < fed + 1.5 * MiB, f"{measured.peak_bytes / MiB:.1f} MiB"
    assert measure(HUGE_CLAIMS[claim], trace_memory=False).seconds < 1.0


def test_the_zstd_ratio_bound_admits_real_extremes():
    """The tightest real zstd (zeros, any level) stays inside the bound the decoder enforces."""
    data = bytes(8 * MiB)
    for level in (1, 19):
        payload = zstandard.ZstdCompressor(level=level).compress(data)
        header = FrameHeader(CodecKind.CPU_ZSTD, len(data), len(payload), crc32c(data))
        assert decode_frame(REGISTRY, header, payload) == data


def test_deep_padding_runs_and_one_byte_feeds_are_linear():
    """A body of 10,000 empty padding records, fed a byte at a time, parses in well under a second."""
    body = encode_padding(0) * 10_000
    reader = FrameStreamReader(stream_length=len(body))
    measured = measure(lambda: [reader.feed(body[i : i + 1]) for i in range(0, len(body), 1)], trace_memory=False)
    assert measured.error is None and measured.seconds < 3.0, measured.seconds
    reader.finish()
    assert reader.bytes_consumed == 10_000 * PADDING_HEADER_SIZE
