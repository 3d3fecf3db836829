"""The S4F2 frame stream (FORMAT.md section 3): record headers, a writer and an incremental reader.

Only framing lives here: payloads are opaque bytes, so this module knows no codec
beyond the id in the header. The reader accepts bytes in chunks of any size, the way
they arrive from a socket or the inner store, and hands out complete frames.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Iterator

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

FRAME_MAGIC = b"S4F2"
PADDING_MAGIC = b"S4P1"
FRAME_HEADER = struct.Struct("<4sIQQI")
PADDING_HEADER = struct.Struct("<4sQ")
FRAME_HEADER_SIZE = FRAME_HEADER.size  # 28
PADDING_HEADER_SIZE = PADDING_HEADER.size  # 12
MAX_FRAMES = 16 * 1024 * 1024
"""Most frames one stream (and one sidecar) may hold."""
MAX_FRAME_BYTES = 5 * 1024**3
"""Largest original or compressed frame a reader accepts (FORMAT.md section 3)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FrameHeader:
    codec: CodecKind
    original_size: int
    compressed_size: int
    crc32c: int

    @property
    def record_size(self) -> int:
        """Bytes the whole record takes in the stream, header included."""
        return FRAME_HEADER_SIZE + self.compressed_size

    def pack(self) -> bytes:
        return FRAME_HEADER.pack(FRAME_MAGIC, int(self.codec), self.original_size, self.compressed_size, self.crc32c)


@dataclasses.dataclass(frozen=True, slots=True)
class PaddingHeader:
    length: int

    @property
    def record_size(self) -> int:
        return PADDING_HEADER_SIZE + self.length


RecordHeader = FrameHeader | PaddingHeader


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One complete frame and where its record starts in the stored body."""

    header: FrameHeader
    payload: Buffer
    """bytes (a payload split across chunks is gathered and joined once)."""
    offset: int


def encode_frame(header: FrameHeader, payload: Buffer) -> bytes:
    """Header and payload as one record; the header must describe this payload."""
    if len(payload) != header.compressed_size:
        raise ValueError("frame header's compressed_size does not match the payload")
    return header.pack() + bytes(payload)


def encode_padding(length: int) -> bytes:
    """An S4P1 record; we never write these, but tests need them to check the reader skips them."""
    return PADDING_HEADER.pack(PADDING_MAGIC, length) + bytes(length)


def min_header_bytes(prefix: Buffer) -> int:
    """How many bytes the record header starting with ``prefix`` (at least 4 bytes) needs."""
    magic = bytes(prefix[:4])
    if magic == FRAME_MAGIC:
        return FRAME_HEADER_SIZE
    if magic == PADDING_MAGIC:
        return PADDING_HEADER_SIZE
    raise CodecError.corrupt(f"unknown record magic {magic!r} in frame stream")


def parse_record_header(data: Buffer, offset: int = 0) -> RecordHeader:
    """Parse the frame or padding header at the start of ``data``, checked against the limits.

    ``offset`` only improves error messages. Callers hopping from header to header with
    ranged reads use this directly: read 28 bytes, parse, skip ``record_size``.
    """
    if len(data) < 4:
        raise CodecError.corrupt(f"truncated record header at offset {offset}")
    needed = min_header_bytes(data)
    if len(data) < needed:
        raise CodecError.corrupt(f"truncated record header at offset {offset}")
    if needed == PADDING_HEADER_SIZE:
        _, length = PADDING_HEADER.unpack_from(data)
        if length > MAX_FRAME_BYTES:
            raise CodecError.corrupt(f"padding of {length} bytes at offset {offset} exceeds the limit")
        return PaddingHeader(length)
    _, codec_id, original_size, compressed_size, crc = FRAME_HEADER.unpack_from(data)
    codec = CodecKind.from_id(codec_id)
    if original_size > MAX_FRAME_BYTES or compressed_size > MAX_FRAME_BYTES:
        raise CodecError.corrupt(
            f"frame at offset {offset} claims {original_size} original / {compressed_size} stored bytes,"
            f" over the {MAX_FRAME_BYTES}-byte limit"
        )
    if codec is CodecKind.PASSTHROUGH and original_size != compressed_size:
        raise CodecError.corrupt(f"passthrough frame at offset {offset} has differing sizes")
    return FrameHeader(codec, original_size, compressed_size, crc)


class FrameStreamReader:
    """Turns a framed body, fed in arbitrary chunks, into complete frames.

    Memory stays bounded by one frame, whose size is checked against the limits before
    anything is buffered for it; padding is checked and dropped as it arrives. A frame
    that lies whole inside one chunk is sliced out of it with a single copy; one that
    spans chunks is gathered as pieces joined once into its payload. Knowing
    ``stream_length`` lets a header that claims more bytes than remain be refused at
    once instead of after the whole body has been read.
    """

    def __init__(self, stream_length: int | None = None, max_frames: int = MAX_FRAMES) -> None:
        self._stream_length = stream_length
        self._max_frames = max_frames
        self._frames = 0
        self._offset = 0  # stream offset of the record being read
        self._received = 0
        self._head = bytearray()  # a record header split across chunks
        self._header: FrameHeader | None = None
        self._payload: list[Buffer] = []  # the pieces of a payload split across chunks, joined once
        self._payload_left = 0
        self._padding_left = 0
        self._finished = False

    @property
    def frames_read(self) -> int:
        return self._frames

    @property
    def bytes_consumed(self) -> int:
        """Stream bytes belonging to complete records (frames and padding)."""
        return self._offset

    def feed(self, data: Buffer) -> list[Frame]:
        """Take the next bytes of the stream and return every frame they complete."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        view = memoryview(data).cast("B")
        # Pieces of an immutable chunk are held as views until their payload is complete; others are copied,
        # as their producer may reuse them.
        immutable = isinstance(data, bytes)
        self._received += len(view)
        if self._stream_length is not None and self._received > self._stream_length:
            raise CodecError.corrupt(f"frame stream is longer than its stated {self._stream_length} bytes")
        frames: list[Frame] = []
        pos, end = 0, len(view)
        while pos < end:
            if self._padding_left:
                pos = self._skip_padding(view, pos)
            elif self._header is not None:
                take = min(self._payload_left, end - pos)
                piece = view[pos : pos + take]
                self._payload.append(piece if immutable else bytes(piece))
                self._payload_left -= take
                pos += take
                if not self._payload_left:
                    # One copy of each byte, into memory allocated once: growing a bytearray piece by
                    # piece (and copying it again into bytes to decode) cost a GET more than its CRC.
                    payload, self._payload = b"".join(self._payload), []
                    frames.append(self._complete(payload))
            else:
                pos = self._read_header(view, pos)
                header = self._header
                if header is not None and end - pos >= header.compressed_size:
                    # The whole payload is in this chunk: one copy, no gathering.
                    frames.append(self._complete(bytes(view[pos : pos + header.compressed_size])))
                    pos += header.compressed_size
        return frames

    def finish(self) -> None:
        """The stream ended: anything left over is a truncated record."""
        self._finished = True
        if self._padding_left:
            raise CodecError.corrupt(f"frame stream ends inside padding at offset {self._offset}")
        if self._header is not None:
            arrived = self._header.compressed_size - self._payload_left
            raise CodecError.corrupt(
                f"frame stream truncated: the frame at offset {self._offset} needs"
                f" {self._header.compressed_size} payload bytes, {arrived} arrived"
            )
        if self._head:
            raise CodecError.corrupt(
                f"frame stream truncated: {len(self._head)} bytes of a record header at offset {self._offset}"
            )
        if self._stream_length is not None and self._offset != self._stream_length:
            raise CodecError.corrupt(f"frame stream ended after {self._offset} bytes, expected {self._stream_length}")

    def _read_header(self, view: memoryview, pos: int) -> int:
        """Consume header bytes from ``view[pos:]``; sets ``_header`` or ``_padding_left`` once complete."""
        if not self._head and len(view) - pos >= FRAME_HEADER_SIZE:
            raw = view[pos : pos + FRAME_HEADER_SIZE]
            needed = min_header_bytes(raw)
            self._start_record(parse_record_header(raw, self._offset))
            return pos + needed
        want = 4 if len(self._head) < 4 else min_header_bytes(self._head)
        take = min(want - len(self._head), len(view) - pos)
        self._head += view[pos : pos + take]
        pos += take
        if len(self._head) >= 4 and len(self._head) == min_header_bytes(self._head):
            header = parse_record_header(self._head, self._offset)
            self._head = bytearray()
            self._start_record(header)
        return pos

    def _start_record(self, header: RecordHeader) -> None:
        remaining = None if self._stream_length is None else self._stream_length - self._offset
        if remaining is not None and header.record_size > remaining:
            raise CodecError.corrupt(
                f"record at offset {self._offset} claims {header.record_size} bytes,"
                f" only {remaining} remain in the stream"
            )
        if isinstance(header, PaddingHeader):
            self._offset += PADDING_HEADER_SIZE
            self._padding_left = header.length
            return
        if self._frames >= self._max_frames:
            raise CodecError.corrupt(f"frame stream holds more than {self._max_frames} frames")
        self._header = header
        self._payload_left = header.compressed_size

    def _skip_padding(self, view: memoryview, pos: int) -> int:
        take = min(self._padding_left, len(view) - pos)
        if bytes(view[pos : pos + take]).count(0) != take:
            raise CodecError.corrupt(f"non-zero byte in padding near offset {self._offset}")
        self._padding_left -= take
        self._offset += take
        return pos + take

    def _complete(self, payload: Buffer) -> Frame:
        header = self._header
        frame = Frame(header, payload, self._offset)
        self._offset += header.record_size
        self._frames += 1
        self._header = None
        self._payload_left = 0
        return frame


def iter_frames(chunks: Iterable[Buffer], stream_length: int | None = None) -> Iterator[Frame]:
    """Every frame of a framed body given as an iterable of chunks; raises CodecError on bad framing."""
    reader = FrameStreamReader(stream_length=stream_length)
    for chunk in chunks:
        yield from reader.feed(chunk)
    reader.finish()
