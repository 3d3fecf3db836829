"""The ``<key>.s4index`` frame-index sidecar (FORMAT.md section 5).

It maps original byte ranges to the stored frames that hold them, so a Range GET
fetches only those frames. It is a hint, never the truth: a reader trusts it only
when it is v2 and its ETag and source size match the object it sits beside.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
from collections.abc import Iterable, Sequence

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.frame import FRAME_HEADER_SIZE, MAX_FRAME_BYTES, MAX_FRAMES

INDEX_MAGIC = b"S4IX"
SIDECAR_SUFFIX = ".s4index"
V1_HEADER = struct.Struct("<4sIQQQ")  # 32 bytes
V2_TAIL = struct.Struct("<QI")  # source_compressed_size, etag_len
ENTRY = struct.Struct("<QQQQ")  # 32 bytes
MAX_ETAG_BYTES = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class IndexEntry:
    original_offset: int
    original_size: int
    compressed_offset: int
    """Where the frame's "S4F2" starts in the stored body."""
    compressed_size: int
    """The whole record: 28-byte header plus payload."""

    @property
    def original_end(self) -> int:
        return self.original_offset + self.original_size

    @property
    def compressed_end(self) -> int:
        return self.compressed_offset + self.compressed_size


@dataclasses.dataclass(frozen=True, slots=True)
class FrameIndex:
    entries: tuple[IndexEntry, ...]
    total_original: int
    total_padded: int
    """Length of the stored body, padding included."""
    source_compressed_size: int | None = None
    """v2: the stored body's size when the index was written (None for v1)."""
    etag: str | None = None
    """v2: the inner store's ETag of the stored body, unquoted (None for v1)."""
    version: int = 2

    def __post_init__(self) -> None:
        _check_entries(self.entries, self.total_original, self.total_padded)

    @classmethod
    def from_entries(cls, entries: Iterable[IndexEntry], stored_size: int, etag: str) -> FrameIndex:
        """A v2 index for a body just written: ``stored_size`` and ``etag`` bind it to that body."""
        items = tuple(entries)
        total_original = sum(e.original_size for e in items)
        return cls(items, total_original, stored_size, stored_size, _unquote(etag), 2)

    def matches(self, etag: str | None, stored_size: int) -> bool:
        """Whether this index describes the object a HEAD just returned."""
        if self.version < 2 or etag is None or self.etag is None:
            return False
        return self.etag == _unquote(etag) and self.source_compressed_size == stored_size

    def covering(self, start: int, end: int) -> Sequence[IndexEntry]:
        """Entries whose original bytes intersect ``[start, end)``; empty frames are skipped."""
        if start >= end or not self.entries:
            return ()
        first = bisect.bisect_right(self.entries, start, key=lambda e: e.original_end)
        picked = []
        for entry in self.entries[first:]:
            if entry.original_offset >= end:
                break
            if entry.original_size:
                picked.append(entry)
        return tuple(picked)

    def encode(self) -> bytes:
        """Always v2: the sidecar we write is bound to its object's ETag and size."""
        if self.etag is None or self.source_compressed_size is None:
            raise ValueError("a v2 sidecar needs the stored body's ETag and size")
        etag = self.etag.encode()
        if len(etag) > MAX_ETAG_BYTES:
            raise ValueError("ETag too long for a sidecar")
        parts = [
            V1_HEADER.pack(INDEX_MAGIC, 2, len(self.entries), self.total_original, self.total_padded),
            V2_TAIL.pack(self.source_compressed_size, len(etag)),
            etag,
        ]
        parts.extend(
            ENTRY.pack(e.original_offset, e.original_size, e.compressed_offset, e.compressed_size) for e in self.entries
        )
        return b"".join(parts)

    @classmethod
    def decode(cls, data: Buffer) -> FrameIndex:
        """Parse a v1 or v2 sidecar; anything malformed is a corrupt-data CodecError."""
        view = memoryview(data).cast("B")
        if len(view) < V1_HEADER.size:
            raise CodecError.corrupt(f"sidecar truncated: {len(view)} bytes")
        magic, version, total_frames, total_original, total_padded = V1_HEADER.unpack_from(view)
        if magic != INDEX_MAGIC:
            raise CodecError.corrupt(f"bad sidecar magic {bytes(magic)!r}")
        if version not in (1, 2):
            raise CodecError.corrupt(f"unsupported sidecar version {version}")
        if total_frames > MAX_FRAMES:
            raise CodecError.corrupt(f"sidecar claims {total_frames} frames, over the {MAX_FRAMES} limit")
        pos = V1_HEADER.size
        source_size: int | None = None
        etag: str | None = None
        if version == 2:
            if len(view) < pos + V2_TAIL.size:
                raise CodecError.corrupt("sidecar v2 header truncated")
            source_size, etag_len = V2_TAIL.unpack_from(view, pos)
            pos += V2_TAIL.size
            if etag_len > MAX_ETAG_BYTES:
                raise CodecError.corrupt(f"sidecar ETag of {etag_len} bytes exceeds {MAX_ETAG_BYTES}")
            if len(view) < pos + etag_len:
                raise CodecError.corrupt("sidecar ETag truncated")
            try:
                etag = bytes(view[pos : pos + etag_len]).decode("ascii")
            except UnicodeDecodeError:
                raise CodecError.corrupt("sidecar ETag is not ASCII") from None
            pos += etag_len
        expected = pos + ENTRY.size * total_frames
        if len(view) != expected:
            raise CodecError.corrupt(f"sidecar is {len(view)} bytes, its header says {expected}")
        entries = tuple(IndexEntry(*ENTRY.unpack_from(view, pos + i * ENTRY.size)) for i in range(total_frames))
        try:
            return cls(entries, total_original, total_padded, source_size, etag, version)
        except ValueError as exc:
            raise CodecError.corrupt(f"sidecar entries inconsistent: {exc}") from None


def sidecar_key(key: str) -> str:
    return key + SIDECAR_SUFFIX


def _unquote(etag: str) -> str:
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def _check_entries(entries: Sequence[IndexEntry], total_original: int, total_padded: int) -> None:
    """Entries must tile the original bytes in order and sit in order, apart, inside the body."""
    original_pos = 0
    compressed_pos = 0
    for n, e in enumerate(entries):
        if e.original_offset != original_pos:
            raise ValueError(f"entry {n} starts at original offset {e.original_offset}, expected {original_pos}")
        if e.original_size > MAX_FRAME_BYTES:
            raise ValueError(f"entry {n} original size {e.original_size} exceeds the limit")
        if not FRAME_HEADER_SIZE <= e.compressed_size <= MAX_FRAME_BYTES + FRAME_HEADER_SIZE:
            raise ValueError(f"entry {n} compressed size {e.compressed_size} out of range")
        if e.compressed_offset < compressed_pos:
            raise ValueError(f"entry {n} overlaps the previous frame")
        original_pos = e.original_end
        compressed_pos = e.compressed_end
    if original_pos != total_original:
        raise ValueError(f"entries cover {original_pos} original bytes, header says {total_original}")
    if compressed_pos > total_padded:
        raise ValueError(f"entries reach byte {compressed_pos}, past the {total_padded}-byte body")
