"""nvcomp-zstd on the CPU: FCG1 containers whose chunks are standard zstd frames.

nvCOMP's Zstd chunks in RAW bitstream mode are ordinary zstd frames, so a node with
no GPU can still read objects a GPU node wrote. Encoding here produces the same
layout, which lets tests and CPU-only nodes build nvcomp-zstd payloads too.
"""

from __future__ import annotations

import zstandard

from s4.codec.base import Codec, check_decoded_size
from s4.codec.buffer import Buffer
from s4.codec.cpu.zstd import DEFAULT_ZSTD_LEVEL, check_zstd_level
from s4.codec.cpu.zstd_frame import PerThread, decompress_zstd_frame
from s4.codec.errors import CodecError
from s4.codec.format.fcg1 import DEFAULT_CHUNK_SIZE, Fcg1Algo, decode_fcg1, encode_fcg1
from s4.codec.format.kinds import CodecKind


class NvcompZstdCpuCodec(Codec):
    kind = CodecKind.NVCOMP_ZSTD
    device = "cpu"

    def __init__(self, level: int = DEFAULT_ZSTD_LEVEL, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.level = check_zstd_level(level)
        self.chunk_size = chunk_size
        self._cctx = PerThread(lambda: zstandard.ZstdCompressor(level=self.level))
        self._dctx = PerThread(zstandard.ZstdDecompressor)

    def compress(self, data: Buffer) -> bytes:
        view = memoryview(data).cast("B")
        cctx = self._cctx.get()
        step = self.chunk_size
        chunks = [cctx.compress(view[i : i + step]) for i in range(0, len(view), step)]
        return encode_fcg1(Fcg1Algo.ZSTD, len(view), chunks, step)

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        container = decode_fcg1(payload)
        if container.algo is not Fcg1Algo.ZSTD:
            raise CodecError.corrupt(f"nvcomp-zstd payload holds FCG1 algorithm {container.algo.name}")
        if container.original_size != original_size:
            raise CodecError.corrupt(
                f"nvcomp-zstd container holds {container.original_size} bytes, expected {original_size}"
            )
        dctx = self._dctx.get()
        out = b"".join(
            decompress_zstd_frame(dctx, chunk, container.chunk_original_size(i), f"nvcomp-zstd chunk {i}")
            for i, chunk in enumerate(container.chunks)
        )
        check_decoded_size(self.kind, out, original_size)
        return out
