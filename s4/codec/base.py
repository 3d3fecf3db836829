"""The neutral codec interface every CPU and device codec implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

Buffer = bytes | bytearray | memoryview

FAST_INLINE_COMPRESS = 16 * 1024
"""What zstd at level 3 or below compresses in about a thread hop's time: 16 KiB of text took 31-94
us at levels 1-3 (64 KiB took 100-314 us, level 6 987 us, level 19 17 ms)."""
MAX_FRAME_BYTES = 5 * 1024**3
"""Largest original or compressed frame a reader accepts (FORMAT.md section 3)."""


class Codec(abc.ABC):
    """Compresses and decompresses one frame payload.

    Implementations must be safe to call from several threads at once (the CPU pool
    runs them on a thread pool); per-thread state such as a zstd context is the
    codec's own business.
    """

    kind: CodecKind
    device: str = "cpu"
    inline_compress_limit: int = 0
    """Frames below this many bytes compress in about the time a hand-over to a pool thread costs
    (~60 us of CPU) or less, so the CPU pool compresses them on the calling thread (see
    s4/codec/pool.py). 0, the default: always on a thread (slow levels, device codecs)."""

    @abc.abstractmethod
    def compress(self, data: Buffer) -> bytes:
        """Return the payload for one frame of original bytes."""

    @abc.abstractmethod
    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        """Return exactly ``original_size`` bytes, or raise CodecError.

        ``original_size`` comes from a frame header or manifest that was already checked
        against the limits; implementations must never produce (or allocate for) more.
        """

    def compress_batch(self, frames: Sequence[Buffer]) -> list[bytes]:
        """Many frames in one call; device codecs override this to fill one kernel launch."""
        return [self.compress(frame) for frame in frames]

    def decompress_batch(self, payloads: Sequence[Buffer], original_sizes: Sequence[int]) -> list[bytes]:
        """Many payloads in one call; the device pool uses this to batch across requests."""
        if len(payloads) != len(original_sizes):
            raise ValueError("payloads and original_sizes differ in length")
        return [self.decompress(p, n) for p, n in zip(payloads, original_sizes, strict=True)]


def check_decoded_size(kind: CodecKind, decoded: Buffer, original_size: int) -> None:
    """A payload that decodes to another length than promised is corrupt, whatever the codec."""
    if len(decoded) != original_size:
        raise CodecError.corrupt(f"{kind.wire_name} payload decoded to {len(decoded)} bytes, expected {original_size}")
