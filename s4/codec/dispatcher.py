"""Chooses the codec for a PUT before its bytes are compressed.

Compressing what is already compressed (JPEG, MP4, zip, zstd…) costs CPU and gains
nothing, so in ``sampling`` mode the first 4 KiB decide: a known compressed-format
signature, a content type that promises compressed media, or near-random bytes
(entropy ≥ 7.5 bits/byte) all mean passthrough.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter
from collections.abc import Callable

from s4.codec.buffer import Buffer
from s4.codec.format.kinds import CodecKind

SAMPLE_SIZE = 4096
ENTROPY_THRESHOLD = 7.5


class DispatchMode(enum.Enum):
    ALWAYS = "always"
    SAMPLING = "sampling"


@dataclasses.dataclass(frozen=True, slots=True)
class Dispatch:
    kind: CodecKind
    reason: str
    """Why: "configured", "sampled", "magic:<format>", "content-type", "entropy", "empty"."""


FramePromotion = Callable[[CodecKind, Buffer], CodecKind]
"""Per-frame hook: given the object's codec and one frame, the codec for that frame.

The GPU pool installs one that moves large frames to nvcomp-zstd when a device is present.
"""

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1f\x8b", "gzip"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"BZh", "bzip2"),
    (0, b"\x04\x22\x4d\x18", "lz4"),
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),
    (0, b"PK\x07\x08", "zip"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (4, b"ftyp", "iso-bmff"),  # MP4, MOV, HEIF, AVIF
    (0, b"\x1a\x45\xdf\xa3", "matroska"),  # MKV, WebM
    (0, b"%PDF-", "pdf"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"ID3", "mp3"),
    (0, b"\xff\x06\x00\x00sNaPpY", "snappy"),
)

_COMPRESSED_TYPES = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/zstd",
        "application/x-zstd",
        "application/x-xz",
        "application/x-bzip2",
        "application/x-7z-compressed",
        "application/vnd.rar",
        "application/x-rar-compressed",
        "application/x-lz4",
        "application/pdf",
    }
)
_COMPRESSED_FAMILIES = ("image/", "video/", "audio/")
# Members of those families that are stored uncompressed and do shrink.
_UNCOMPRESSED_MEDIA = frozenset(
    {"image/svg+xml", "image/bmp", "image/x-ms-bmp", "image/tiff", "audio/wav", "audio/x-wav", "audio/wave"}
)


def sniff_signature(sample: Buffer) -> str | None:
    """The compressed format whose magic bytes open ``sample``, if any."""
    head = bytes(sample[:16])
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def byte_entropy(sample: Buffer) -> float:
    """Shannon entropy of the byte histogram, in bits per byte (0..8)."""
    n = len(sample)
    if n == 0:
        return 0.0
    counts = Counter(bytes(sample)).values()
    return -sum(c / n * math.log2(c / n) for c in counts)


def content_type_is_compressed(content_type: str | None) -> bool:
    if not content_type:
        return False
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _UNCOMPRESSED_MEDIA:
        return False
    return base in _COMPRESSED_TYPES or base.startswith(_COMPRESSED_FAMILIES)


class CodecDispatcher:
    def __init__(
        self,
        default: CodecKind = CodecKind.CPU_ZSTD,
        mode: DispatchMode = DispatchMode.SAMPLING,
        entropy_threshold: float = ENTROPY_THRESHOLD,
        promotion: FramePromotion | None = None,
    ) -> None:
        self.default = default
        self.mode = mode
        self.entropy_threshold = entropy_threshold
        self.promotion = promotion

    def choose(self, sample: Buffer, content_type: str | None = None) -> Dispatch:
        """The object's codec, from its first bytes (at most SAMPLE_SIZE are looked at)."""
        if self.mode is DispatchMode.ALWAYS:
            return Dispatch(self.default, "configured")
        sample = sample[:SAMPLE_SIZE]
        if not len(sample):
            return Dispatch(CodecKind.PASSTHROUGH, "empty")
        if content_type_is_compressed(content_type):
            return Dispatch(CodecKind.PASSTHROUGH, "content-type")
        signature = sniff_signature(sample)
        if signature is not None:
            return Dispatch(CodecKind.PASSTHROUGH, f"magic:{signature}")
        if byte_entropy(sample) >= self.entropy_threshold:
            return Dispatch(CodecKind.PASSTHROUGH, "entropy")
        return Dispatch(self.default, "sampled")

    def frame_codec(self, object_kind: CodecKind, frame: Buffer) -> CodecKind:
        """The codec for one frame of an object: the object's, unless the promotion hook moves it."""
        if self.promotion is None or object_kind is CodecKind.PASSTHROUGH:
            return object_kind
        return self.promotion(object_kind, frame)
