"""cpu-gzip: one RFC 1952 gzip member per payload (what S4 stores for gzip objects)."""

from __future__ import annotations

import zlib

from s4.codec.base import Codec
from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

DEFAULT_GZIP_LEVEL = 6
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class CpuGzipCodec(Codec):
    kind = CodecKind.CPU_GZIP

    def __init__(self, level: int = DEFAULT_GZIP_LEVEL) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level {level} outside 0..9")
        self.level = level

    def compress(self, data: Buffer) -> bytes:
        # zlib writes the gzip header with mtime 0, so equal input gives equal bytes.
        cobj = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
        return cobj.compress(data) + cobj.flush()

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        dobj = zlib.decompressobj(_GZIP_WBITS)
        try:
            # max_length of 0 would mean "unbounded", hence the +1; one byte over is enough to notice.
            out = dobj.decompress(payload, original_size + 1)
        except zlib.error as exc:
            raise CodecError.corrupt(f"cpu-gzip: payload does not decode ({exc})") from None
        if not dobj.eof:
            raise CodecError.corrupt("cpu-gzip: payload is truncated or longer than its stated size")
        if dobj.unused_data or dobj.unconsumed_tail:
            raise CodecError.corrupt("cpu-gzip: trailing bytes after the gzip member")
        if len(out) != original_size:
            raise CodecError.corrupt(f"cpu-gzip: decoded {len(out)} bytes, expected {original_size}")
        return out
