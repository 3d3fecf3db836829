"""A whole stored body in both directions.

``FramedBodyWriter`` follows frames as they are appended and yields what the object
needs besides its bytes: the manifest (sizes, whole-object CRC) and the sidecar
entries. ``BodyDecoder`` turns a stored body, fed in chunks of any size, back into
the original bytes, checking every frame and, at the end, the manifest's totals. The
store wraps both around its streaming; ``encode_body``/``decode_body`` are the
in-memory forms used by the offline tools, tests and benchmarks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.crc import crc32c, crc32c_combine
from s4.codec.format.frame import MAX_FRAME_BYTES, FrameStreamReader
from s4.codec.format.index import FrameIndex, IndexEntry
from s4.codec.format.kinds import CodecKind
from s4.codec.format.manifest import ChunkManifest
from s4.codec.frame_codec import EncodedFrame, decode_frame, encode_frame
from s4.codec.registry import CodecRegistry

DEFAULT_FRAME_SIZE = 4 * 1024 * 1024


class FramedBodyWriter:
    """Bookkeeping for an S4F2 body being written frame by frame."""

    def __init__(self) -> None:
        self.stored_size = 0
        self.original_size = 0
        self.crc32c = 0
        self.entries: list[IndexEntry] = []
        self._passthrough_frames = 0

    @property
    def frame_count(self) -> int:
        return len(self.entries)

    @property
    def all_passthrough(self) -> bool:
        """True when nothing compressed: the caller may then store the body raw."""
        return self._passthrough_frames == len(self.entries)

    def append(self, frame: EncodedFrame) -> tuple[bytes, bytes]:
        """Record ``frame`` as the next one; returns the header and payload to write."""
        header = frame.header
        self.entries.append(IndexEntry(self.original_size, header.original_size, self.stored_size, header.record_size))
        self.crc32c = crc32c_combine(self.crc32c, header.crc32c, header.original_size)
        self.original_size += header.original_size
        self.stored_size += header.record_size
        if header.codec is CodecKind.PASSTHROUGH:
            self._passthrough_frames += 1
        return frame.pieces

    def manifest(
        self,
        codec: CodecKind,
        logical_etag: str | None = None,
        multipart: bool = False,
        dict_id: str | None = None,
    ) -> ChunkManifest:
        return ChunkManifest(
            codec=codec,
            original_size=self.original_size,
            compressed_size=self.stored_size,
            crc32c=self.crc32c,
            framed=True,
            multipart=multipart,
            logical_etag=logical_etag,
            dict_id=dict_id,
        )

    def index(self, stored_etag: str) -> FrameIndex:
        """The v2 sidecar for this body, bound to the ETag the inner store gave it."""
        return FrameIndex.from_entries(self.entries, self.stored_size, stored_etag)


class ManifestTotals:
    """Running size and CRC32C of a body's original bytes, held against its manifest.

    Frames that are each intact can still be out of order, missing or repeated; only
    the whole-object totals catch that, so every decoder of whole bodies keeps these.
    """

    def __init__(self, manifest: ChunkManifest) -> None:
        self.manifest = manifest
        self.size = 0
        self.crc = 0

    def add(self, length: int, crc: int) -> None:
        self.crc = crc32c_combine(self.crc, crc, length)
        self.size += length
        if self.size > self.manifest.original_size:
            raise CodecError.corrupt(f"body decodes to more than the manifest's {self.manifest.original_size} bytes")

    def check(self) -> None:
        m = self.manifest
        if self.size != m.original_size:
            raise CodecError.corrupt(f"body decoded to {self.size} bytes, manifest says {m.original_size}")
        if m.crc32c is not None and self.crc != m.crc32c:
            raise CodecError.corrupt(f"whole-object CRC32C mismatch: manifest {m.crc32c}, decoded {self.crc}")


class BodyDecoder:
    """Stored bytes in, original bytes out, with every check the format allows.

    ``manifest`` None means the object was never written by a gateway: its bytes are
    the original. Unframed compressed bodies (old S4 objects, gzip blobs) are one
    payload and can only be decoded once complete, so they are buffered, bounded by
    the frame limit. The last piece is held back until the manifest's totals check
    out, so a body that fails them never comes out at its full length.
    """

    def __init__(self, manifest: ChunkManifest | None, registry: CodecRegistry) -> None:
        self._manifest = manifest
        self._registry = registry
        self._totals = ManifestTotals(manifest) if manifest is not None else None
        self._stored = 0
        self._held: bytes | None = None
        self._reader: FrameStreamReader | None = None
        self._pending = bytearray()
        if manifest is not None and manifest.framed:
            self._reader = FrameStreamReader(stream_length=manifest.compressed_size)

    @property
    def raw(self) -> bool:
        """Whether stored bytes pass through untouched."""
        m = self._manifest
        return m is None or (not m.framed and m.codec is CodecKind.PASSTHROUGH)

    def feed(self, chunk: Buffer) -> list[bytes]:
        self._stored += len(chunk)
        if self.raw:
            data = bytes(chunk)
            self._account(data)
            return self._release([data] if data else [])
        if self._reader is not None:
            out = []
            for frame in self._reader.feed(chunk):
                data = decode_frame(self._registry, frame.header, frame.payload)
                self._account(data, frame.header.crc32c)
                out.append(data)
            return self._release(out)
        limit = self._manifest.compressed_size if self._manifest.compressed_size is not None else MAX_FRAME_BYTES
        if len(self._pending) + len(chunk) > limit:
            raise CodecError.corrupt(f"unframed body is longer than {limit} bytes")
        self._pending += chunk
        return []

    def finish(self) -> list[bytes]:
        """End of the stored body: decode what was buffered, check the totals, release the rest."""
        m = self._manifest
        if self._reader is not None:
            self._reader.finish()
        elif not self.raw:
            data = self._registry.decompress(m.codec, self._pending, m.original_size)
            self._pending = bytearray()
            self._account(data)
            self._release([data])
        if self._totals is not None:
            self._totals.check()
            if m.compressed_size is not None and self._stored != m.compressed_size:
                raise CodecError.corrupt(f"stored body is {self._stored} bytes, manifest says {m.compressed_size}")
        held, self._held = self._held, None
        return [held] if held is not None else []

    def _release(self, pieces: list[bytes]) -> list[bytes]:
        """Everything but the newest piece, which waits for the next one or for finish()."""
        if not pieces or self._manifest is None:
            return pieces
        out = [self._held, *pieces[:-1]] if self._held is not None else pieces[:-1]
        self._held = pieces[-1]
        return out

    def _account(self, data: bytes, known_crc: int | None = None) -> None:
        if self._totals is not None:
            self._totals.add(len(data), crc32c(data) if known_crc is None else known_crc)


def iter_decoded(chunks: Iterable[Buffer], manifest: ChunkManifest | None, registry: CodecRegistry) -> Iterator[bytes]:
    """Original bytes of a stored body, piece by piece; raises CodecError instead of completing it wrongly.

    Every piece is a frame whose own CRC32C checked out, but frames dropped, repeated or
    reordered as whole records are only caught by the whole-object CRC32C at the end: such
    pieces may come out before the error. The last piece is held back until that check
    passes, so a consumer never sees a wrong body reach its full length.
    """
    decoder = BodyDecoder(manifest, registry)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.finish()


def decode_body(stored: Buffer, manifest: ChunkManifest | None, registry: CodecRegistry) -> bytes:
    return b"".join(iter_decoded([stored], manifest, registry))


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedBody:
    stored: bytes
    manifest: ChunkManifest
    entries: tuple[IndexEntry, ...]
    """Frame positions for a sidecar (empty when the body is stored raw)."""


def encode_body(
    data: Buffer,
    kind: CodecKind,
    registry: CodecRegistry,
    frame_size: int = DEFAULT_FRAME_SIZE,
    logical_etag: str | None = None,
    dict_id: str | None = None,
) -> EncodedBody:
    """Frame and compress a whole body in memory, the way the store does it streaming.

    Passthrough objects, and objects none of whose frames shrank, are stored raw with
    a passthrough manifest so incompressible data stays byte-identical in the bucket.
    """
    if frame_size <= 0:
        raise ValueError("frame_size must be positive")
    view = memoryview(data).cast("B")
    if kind is not CodecKind.PASSTHROUGH:
        writer = FramedBodyWriter()
        pieces: list[bytes] = []
        for start in range(0, len(view), frame_size):
            pieces.extend(writer.append(encode_frame(registry, kind, view[start : start + frame_size])))
        if writer.frame_count and not writer.all_passthrough:
            manifest = writer.manifest(kind, logical_etag, dict_id=dict_id)
            return EncodedBody(b"".join(pieces), manifest, tuple(writer.entries))
    raw = bytes(view)
    manifest = ChunkManifest(
        codec=CodecKind.PASSTHROUGH,
        original_size=len(raw),
        compressed_size=len(raw),
        crc32c=crc32c(raw),
        logical_etag=logical_etag,
    )
    return EncodedBody(raw, manifest, ())
