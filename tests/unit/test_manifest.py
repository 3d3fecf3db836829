import pytest

from s4.codec import ChunkManifest, CodecError, CodecKind
from s4.codec.format.manifest import normalize_metadata, strip_reserved

FULL = {
    "s4-codec": "cpu-zstd",
    "s4-original-size": "5040000",
    "s4-compressed-size": "43597",
    "s4-crc32c": "483258656",
    "s4-framed": "true",
    "s4-multipart": "true",
    "s4-logical-etag": "0123456789abcdef0123456789abcdef-3",
    "s4-dict-id": "9867d0e5cf974014",
}


def test_round_trip_through_metadata():
    m = ChunkManifest.from_metadata(FULL)
    assert m == ChunkManifest(
        CodecKind.CPU_ZSTD,
        5040000,
        43597,
        483258656,
        True,
        True,
        "0123456789abcdef0123456789abcdef-3",
        "9867d0e5cf974014",
    )
    assert m.to_metadata() == FULL
    assert ChunkManifest.from_metadata(m.to_metadata()) == m


def test_no_codec_means_not_written_by_a_gateway():
    assert ChunkManifest.from_metadata({}) is None
    assert ChunkManifest.from_metadata({"color": "blue"}) is None


def test_prefixed_and_mixed_case_keys_are_accepted():
    meta = {"X-Amz-Meta-S4-Codec": "cpu-gzip", "x-amz-meta-s4-original-size": "10"}
    m = ChunkManifest.from_metadata(meta)
    assert m.codec is CodecKind.CPU_GZIP and m.original_size == 10
    assert normalize_metadata(meta) == {"s4-codec": "cpu-gzip", "s4-original-size": "10"}


def test_old_objects_with_only_the_first_keys_parse():
    m = ChunkManifest.from_metadata({"s4-codec": "cpu-gzip", "s4-original-size": "63900"})
    assert (m.compressed_size, m.crc32c, m.framed, m.multipart, m.logical_etag) == (None, None, False, False, None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("s4-codec", "lzma"),
        ("s4-original-size", "-1"),
        ("s4-original-size", "12a"),
        ("s4-original-size", "1e6"),
        ("s4-original-size", ""),
        ("s4-original-size", str(6 * 1024**4)),
        ("s4-compressed-size", "0x10"),
        ("s4-crc32c", str(2**32)),
        ("s4-framed", "yes"),
        ("s4-multipart", "1"),
        ("s4-logical-etag", "not-an-etag"),
        ("s4-logical-etag", "0123456789abcdef0123456789abcdef-0"),
        ("s4-dict-id", "xyz"),
    ],
)
def test_malformed_values_are_corrupt(key, value):
    with pytest.raises(CodecError) as info:
        ChunkManifest.from_metadata({**FULL, key: value})
    assert info.value.is_corrupt


def test_missing_original_size_is_corrupt():
    with pytest.raises(CodecError, match="s4-original-size"):
        ChunkManifest.from_metadata({"s4-codec": "cpu-zstd"})


def test_dict_codec_needs_a_dict_id():
    meta = {k: v for k, v in FULL.items() if k != "s4-dict-id"} | {"s4-codec": "cpu-zstd-dict"}
    with pytest.raises(CodecError, match="s4-dict-id"):
        ChunkManifest.from_metadata(meta)


def test_client_metadata_loses_every_reserved_key():
    meta = {"x-amz-meta-S4-Codec": "evil", "S4-crc32c": "1", "color": "blue", "x-amz-meta-owner": "me"}
    assert strip_reserved(meta) == {"color": "blue", "x-amz-meta-owner": "me"}
