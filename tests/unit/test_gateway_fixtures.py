"""Every object the Rust S4 gateway wrote decodes here: the interoperability contract."""

import pytest

from s4.codec import ChunkManifest, CodecError, CodecKind, FrameIndex, crc32c, decode_body, iter_frames
from tests.conftest import GATEWAY_OBJECTS, gateway_dictionary, load_meta, manifest_of


@pytest.mark.parametrize("name", GATEWAY_OBJECTS)
def test_gateway_object_decodes_to_its_original(fixtures_dir, registry, name):
    manifest = manifest_of(fixtures_dir, name)
    if manifest is not None and manifest.dict_id:
        assert manifest.dict_id == gateway_dictionary(fixtures_dir).dict_id
        registry = registry.with_dictionary(gateway_dictionary(fixtures_dir))
    out = decode_body((fixtures_dir / f"{name}.body").read_bytes(), manifest, registry)
    original = fixtures_dir / f"{name}.orig"
    if original.exists():
        assert out == original.read_bytes()
    else:
        assert (len(out), crc32c(out)) == (manifest.original_size, manifest.crc32c)


def test_manifests_parse_as_expected(fixtures_dir):
    kinds = {n: (m.codec if (m := manifest_of(fixtures_dir, n)) else None) for n in GATEWAY_OBJECTS}
    assert kinds == {
        "text_zstd": CodecKind.CPU_ZSTD,
        "multi_zstd": CodecKind.CPU_ZSTD,
        "parquet_zstd": CodecKind.CPU_ZSTD,
        "text_gzip": CodecKind.CPU_GZIP,
        "dict_event": CodecKind.CPU_ZSTD_DICT,
        "raw": None,
    }
    assert not manifest_of(fixtures_dir, "text_gzip").framed


def test_multi_zstd_sidecar_matches_its_frames(fixtures_dir):
    body = (fixtures_dir / "multi_zstd.body").read_bytes()
    index = FrameIndex.decode((fixtures_dir / "multi_zstd.s4index").read_bytes())
    frames = list(iter_frames([body], stream_length=len(body)))
    assert len(frames) == len(index.entries) == 2
    original_offset = 0
    for frame, entry in zip(frames, index.entries, strict=True):
        assert entry.compressed_offset == frame.offset
        assert entry.compressed_size == frame.header.record_size
        assert entry.original_offset == original_offset
        assert entry.original_size == frame.header.original_size
        original_offset += entry.original_size
    assert index.total_original == manifest_of(fixtures_dir, "multi_zstd").original_size
    assert index.matches("2a13d8a717ef421c5210eb6f0fb6b088", len(body))


def test_dict_object_without_its_dictionary_is_unavailable_not_wrong(fixtures_dir, registry):
    manifest = manifest_of(fixtures_dir, "dict_event")
    with pytest.raises(CodecError) as info:
        decode_body((fixtures_dir / "dict_event.body").read_bytes(), manifest, registry)
    assert not info.value.is_corrupt


def test_writing_the_fixtures_again_gives_readable_s4_objects(fixtures_dir, registry):
    """Our writer's output for the same originals is read back by our reader with the gateway's metadata keys."""
    from s4.codec import encode_body

    for name in ("text_zstd", "parquet_zstd"):
        original = (fixtures_dir / f"{name}.orig").read_bytes()
        ours = encode_body(original, CodecKind.CPU_ZSTD, registry)
        theirs = ChunkManifest.from_metadata(load_meta(fixtures_dir, name))
        assert ours.manifest.crc32c == theirs.crc32c
        assert ours.manifest.original_size == theirs.original_size
        assert decode_body(ours.stored, ours.manifest, registry) == original
