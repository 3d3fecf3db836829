"""The chunk manifest: the ``s4-*`` user metadata of a stored object (FORMAT.md section 1)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

META_PREFIX = "x-amz-meta-"
RESERVED_META_PREFIX = "s4-"
MAX_OBJECT_BYTES = 5 * 1024**4
"""S3's largest object (5 TiB): no size in a manifest may claim more."""

KEY_CODEC = "s4-codec"
KEY_ORIGINAL_SIZE = "s4-original-size"
KEY_COMPRESSED_SIZE = "s4-compressed-size"
KEY_CRC32C = "s4-crc32c"
KEY_FRAMED = "s4-framed"
KEY_MULTIPART = "s4-multipart"
KEY_LOGICAL_ETAG = "s4-logical-etag"
KEY_DICT_ID = "s4-dict-id"

_DECIMAL = re.compile(r"[0-9]{1,20}")
_ETAG = re.compile(r"[0-9a-f]{32}(-[1-9][0-9]{0,4})?")
_DICT_ID = re.compile(r"[0-9a-f]{16}")


def normalize_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Lower-case keys without the ``x-amz-meta-`` prefix, as S3 clients and stores vary in both."""
    out = {}
    for key, value in metadata.items():
        k = key.lower()
        if k.startswith(META_PREFIX):
            k = k[len(META_PREFIX) :]
        out[k] = value
    return out


def strip_reserved(metadata: Mapping[str, str]) -> dict[str, str]:
    """The client's own metadata: every ``s4-`` key, in any case, removed."""
    return {k: v for k, v in metadata.items() if not k.lower().removeprefix(META_PREFIX).startswith("s4-")}


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkManifest:
    codec: CodecKind
    original_size: int
    compressed_size: int | None = None
    crc32c: int | None = None
    framed: bool = False
    multipart: bool = False
    logical_etag: str | None = None
    dict_id: str | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> ChunkManifest | None:
        """The manifest in an object's metadata, or None for an object no gateway wrote.

        Optional keys may be missing (older S4 objects carry only a few); a key that is
        present but malformed is corrupt data.
        """
        meta = normalize_metadata(metadata)
        if KEY_CODEC not in meta:
            return None
        codec = CodecKind.from_name(meta[KEY_CODEC])
        if KEY_ORIGINAL_SIZE not in meta:
            raise CodecError.corrupt(f"manifest has {KEY_CODEC} but no {KEY_ORIGINAL_SIZE}")
        original_size = _size(meta, KEY_ORIGINAL_SIZE)
        compressed_size = _size(meta, KEY_COMPRESSED_SIZE) if KEY_COMPRESSED_SIZE in meta else None
        crc = _size(meta, KEY_CRC32C) if KEY_CRC32C in meta else None
        if crc is not None and crc > 0xFFFFFFFF:
            raise CodecError.corrupt(f"{KEY_CRC32C} {crc} is not a 32-bit value")
        etag = meta.get(KEY_LOGICAL_ETAG)
        if etag is not None:
            etag = etag.strip().strip('"').lower()
            if not _ETAG.fullmatch(etag):
                raise CodecError.corrupt(f"malformed {KEY_LOGICAL_ETAG} {meta[KEY_LOGICAL_ETAG]!r}")
        dict_id = meta.get(KEY_DICT_ID)
        if dict_id is not None and not _DICT_ID.fullmatch(dict_id.strip().lower()):
            raise CodecError.corrupt(f"malformed {KEY_DICT_ID} {dict_id!r}")
        if codec is CodecKind.CPU_ZSTD_DICT and dict_id is None:
            raise CodecError.corrupt(f"{codec.wire_name} object without {KEY_DICT_ID}")
        return cls(
            codec=codec,
            original_size=original_size,
            compressed_size=compressed_size,
            crc32c=crc,
            framed=_flag(meta, KEY_FRAMED),
            multipart=_flag(meta, KEY_MULTIPART),
            logical_etag=etag,
            dict_id=dict_id.strip().lower() if dict_id is not None else None,
        )

    def to_metadata(self) -> dict[str, str]:
        """Metadata keys without the ``x-amz-meta-`` prefix; absent fields are left out."""
        meta = {KEY_CODEC: self.codec.wire_name, KEY_ORIGINAL_SIZE: str(self.original_size)}
        if self.compressed_size is not None:
            meta[KEY_COMPRESSED_SIZE] = str(self.compressed_size)
        if self.crc32c is not None:
            meta[KEY_CRC32C] = str(self.crc32c)
        if self.framed:
            meta[KEY_FRAMED] = "true"
        if self.multipart:
            meta[KEY_MULTIPART] = "true"
        if self.logical_etag is not None:
            meta[KEY_LOGICAL_ETAG] = self.logical_etag
        if self.dict_id is not None:
            meta[KEY_DICT_ID] = self.dict_id
        return meta


def _size(meta: Mapping[str, str], key: str) -> int:
    text = meta[key].strip()
    if not _DECIMAL.fullmatch(text):
        raise CodecError.corrupt(f"{key} is not a decimal number: {meta[key]!r}")
    value = int(text)
    if value > MAX_OBJECT_BYTES and key != KEY_CRC32C:
        raise CodecError.corrupt(f"{key} {value} exceeds the 5 TiB object limit")
    return value


def _flag(meta: Mapping[str, str], key: str) -> bool:
    value = meta.get(key)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise CodecError.corrupt(f"{key} must be true or false, not {value!r}")
    return lowered == "true"
