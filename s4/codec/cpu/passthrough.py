"""Identity codec: what incompressible frames and objects are stored as."""

from __future__ import annotations

from s4.codec.base import Codec, check_decoded_size
from s4.codec.buffer import Buffer
from s4.codec.format.kinds import CodecKind


class PassthroughCodec(Codec):
    kind = CodecKind.PASSTHROUGH
    inline_compress_limit = 64 * 1024  # its "compression" is one copy of the bytes

    def compress(self, data: Buffer) -> bytes:
        return bytes(data)

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        check_decoded_size(self.kind, payload, original_size)
        return bytes(payload)
