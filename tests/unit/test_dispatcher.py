import gzip
import io
import os
import zipfile

import pytest
import zstandard

from s4.codec import CodecDispatcher, CodecKind, DispatchMode
from s4.codec.dispatcher import byte_entropy, content_type_is_compressed, sniff_signature

TEXT = b"The quick brown fox jumps over the lazy dog. " * 200


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", TEXT)
    return buf.getvalue()


SIGNED = {
    "gzip": gzip.compress(TEXT),
    "zstd": zstandard.ZstdCompressor().compress(TEXT),
    "xz": b"\xfd7zXZ\x00\x00\x04" + TEXT,
    "bzip2": b"BZh91AY&SY" + TEXT,
    "zip": zip_bytes(),
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + TEXT,
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + TEXT,
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF" + TEXT,
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + TEXT,
    "iso-bmff": b"\x00\x00\x00\x18ftypmp42" + TEXT,
    "matroska": b"\x1a\x45\xdf\xa3\x01\x00" + TEXT,
    "pdf": b"%PDF-1.7\n" + TEXT,
}


@pytest.mark.parametrize("name", SIGNED)
def test_compressed_formats_are_recognised_and_passed_through(name):
    assert sniff_signature(SIGNED[name]) == name
    choice = CodecDispatcher().choose(SIGNED[name])
    assert choice.kind is CodecKind.PASSTHROUGH and choice.reason == f"magic:{name}"


def test_plain_text_gets_the_default_codec():
    assert CodecDispatcher().choose(TEXT).kind is CodecKind.CPU_ZSTD
    assert CodecDispatcher(default=CodecKind.CPU_GZIP).choose(TEXT).kind is CodecKind.CPU_GZIP


def test_random_bytes_are_passed_through_by_entropy():
    sample = os.urandom(4096)
    assert byte_entropy(sample) > 7.9
    assert CodecDispatcher().choose(sample).reason == "entropy"


def test_entropy_bounds():
    assert byte_entropy(b"") == 0.0
    assert byte_entropy(b"aaaa") == 0.0
    assert byte_entropy(bytes(range(256))) == pytest.approx(8.0)


def test_only_the_first_4k_are_sampled():
    data = TEXT[:4096] + os.urandom(100_000)
    assert CodecDispatcher().choose(data).kind is CodecKind.CPU_ZSTD


@pytest.mark.parametrize(
    ("content_type", "compressed"),
    [
        ("image/jpeg", True),
        ("video/mp4", True),
        ("audio/mpeg", True),
        ("application/zip", True),
        ("application/gzip", True),
        ("Application/GZIP; charset=binary", True),
        ("image/svg+xml", False),
        ("image/bmp", False),
        ("audio/wav", False),
        ("text/plain", False),
        ("application/json", False),
        ("application/octet-stream", False),
        (None, False),
    ],
)
def test_content_type_hints(content_type, compressed):
    assert content_type_is_compressed(content_type) is compressed
    expected = CodecKind.PASSTHROUGH if compressed else CodecKind.CPU_ZSTD
    assert CodecDispatcher().choose(TEXT, content_type).kind is expected


def test_always_mode_ignores_the_sample():
    d = CodecDispatcher(default=CodecKind.CPU_GZIP, mode=DispatchMode.ALWAYS)
    assert d.choose(SIGNED["jpeg"], "image/jpeg").kind is CodecKind.CPU_GZIP


def test_empty_body_is_passthrough():
    assert CodecDispatcher().choose(b"").kind is CodecKind.PASSTHROUGH


def test_frame_promotion_hook():
    def promote(kind, frame):
        return CodecKind.NVCOMP_ZSTD if len(frame) >= 1000 else kind

    d = CodecDispatcher(promotion=promote)
    assert d.frame_codec(CodecKind.CPU_ZSTD, b"x" * 1000) is CodecKind.NVCOMP_ZSTD
    assert d.frame_codec(CodecKind.CPU_ZSTD, b"x" * 999) is CodecKind.CPU_ZSTD
    assert d.frame_codec(CodecKind.PASSTHROUGH, b"x" * 5000) is CodecKind.PASSTHROUGH
    assert CodecDispatcher().frame_codec(CodecKind.CPU_ZSTD, b"x" * 5000) is CodecKind.CPU_ZSTD
