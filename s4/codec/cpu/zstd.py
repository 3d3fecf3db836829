"""cpu-zstd: one standard zstd frame per S4 frame."""

from __future__ import annotations

import zstandard

from s4.codec.base import FAST_INLINE_COMPRESS, Codec
from s4.codec.buffer import Buffer
from s4.codec.cpu.zstd_frame import PerThread, decompress_zstd_frame
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

DEFAULT_ZSTD_LEVEL = 3
FAST_LEVEL = 3
"""The highest level whose small frames the CPU pool compresses inline (Codec.inline_compress_limit)."""


def check_zstd_level(level: int) -> int:
    lo, hi = -(1 << 17), zstandard.MAX_COMPRESSION_LEVEL
    if not lo <= level <= hi:
        raise ValueError(f"zstd level {level} outside {lo}..{hi}")
    return level


class CpuZstdCodec(Codec):
    kind = CodecKind.CPU_ZSTD

    def __init__(self, level: int = DEFAULT_ZSTD_LEVEL) -> None:
        self.level = check_zstd_level(level)
        self.inline_compress_limit = FAST_INLINE_COMPRESS if self.level <= FAST_LEVEL else 0
        self._cctx = PerThread(lambda: zstandard.ZstdCompressor(level=self.level))
        self._dctx = PerThread(zstandard.ZstdDecompressor)

    def compress(self, data: Buffer) -> bytes:
        try:
            return self._cctx.get().compress(data)
        except MemoryError:
            raise CodecError.out_of_memory(f"cpu-zstd: out of memory compressing {len(data)} bytes") from None

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        return decompress_zstd_frame(self._dctx.get(), payload, original_size, self.kind.wire_name)
