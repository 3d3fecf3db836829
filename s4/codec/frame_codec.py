"""One S4F2 frame through the registry: the unit of work the codec pools run.

Encoding checks the compressed payload is worth keeping and falls back to a
passthrough frame otherwise; decoding checks the decoded size and CRC so that no
caller can forget to.
"""

from __future__ import annotations

import dataclasses

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.crc import crc32c
from s4.codec.format.frame import FrameHeader
from s4.codec.format.kinds import CodecKind
from s4.codec.registry import CodecRegistry


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedFrame:
    header: FrameHeader
    payload: bytes

    @property
    def pieces(self) -> tuple[bytes, bytes]:
        """Header and payload, to write without concatenating a large payload."""
        return self.header.pack(), self.payload


def encode_frame(registry: CodecRegistry, kind: CodecKind, data: Buffer) -> EncodedFrame:
    """Compress one frame with ``kind``; a payload that does not shrink is stored as passthrough."""
    crc = crc32c(data)
    size = len(data)
    if kind is not CodecKind.PASSTHROUGH and size:
        payload = registry.compress(kind, data)
        if len(payload) < size:
            return EncodedFrame(FrameHeader(kind, size, len(payload), crc), payload)
    return EncodedFrame(FrameHeader(CodecKind.PASSTHROUGH, size, size, crc), bytes(data))


def decode_frame(registry: CodecRegistry, header: FrameHeader, payload: Buffer) -> bytes:
    """The frame's original bytes, verified against its header's size and CRC32C."""
    if len(payload) != header.compressed_size:
        raise CodecError.corrupt(f"frame payload is {len(payload)} bytes, its header says {header.compressed_size}")
    out = registry.decompress(header.codec, payload, header.original_size)
    if len(out) != header.original_size:
        raise CodecError.corrupt(
            f"{header.codec.wire_name} frame decoded to {len(out)} bytes, header says {header.original_size}"
        )
    actual = crc32c(out)
    if actual != header.crc32c:
        raise CodecError.corrupt(
            f"{header.codec.wire_name} frame CRC32C mismatch: stored {header.crc32c}, decoded {actual}"
        )
    return out
