"""The codec pool of a GPU node: nvCOMP frames to the GPU engine, everything else to the CPU threads.

The compressing store talks to one pool (``encode_frame``, ``decode_frame``,
``compress``, ``decompress``); this one has the CPU pool's interface and bound, so the
store does not know a GPU exists. Frames of the engine's codecs are batched with other
requests' frames on the device; their CRC32C runs on a CPU thread meanwhile.

When the device cannot do a frame (out of memory after splitting, a device fault), the
frame is not lost: it is compressed with cpu-zstd on the CPU instead and counted, and
an nvcomp-zstd frame is decoded on the CPU (its chunks are standard zstd frames).
Other nvCOMP codecs have no CPU decoder: their failure reaches the caller as a
CodecError, never as bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from s4.codec.base import Codec
from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.crc import crc32c
from s4.codec.format.frame import FrameHeader
from s4.codec.format.kinds import CodecKind
from s4.codec.frame_codec import EncodedFrame
from s4.codec.gpu.engine import GpuEngine
from s4.codec.pool import CpuCodecPool
from s4.codec.registry import CodecRegistry

FALLBACK_KIND = CodecKind.CPU_ZSTD
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class GpuPoolStats:
    cpu_fallback_frames: int = 0
    """Frames the device could not compress, compressed with cpu-zstd instead."""
    cpu_decoded_frames: int = 0
    """nvcomp-zstd frames the device could not decode, decoded on the CPU instead."""


class GpuCodecPool(CpuCodecPool):
    """A CpuCodecPool whose nvCOMP codecs run on a GPU engine."""

    def __init__(
        self,
        registry: CodecRegistry,
        engine: GpuEngine,
        cpu_decoders: dict[CodecKind, Codec] | None = None,
        workers: int | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        super().__init__(registry, workers, max_in_flight)
        self.engine = engine
        self.cpu_decoders = dict(cpu_decoders or {})
        """CPU codecs that read what the device writes (nvcomp-zstd), for when the device fails."""
        self.gpu_stats = GpuPoolStats()

    def with_registry(self, registry: CodecRegistry) -> GpuCodecPool:
        view = object.__new__(GpuCodecPool)
        view.__dict__.update(self.__dict__)
        view.registry = registry
        return view

    @property
    def gpu_in_flight(self) -> int:
        return self.engine.in_flight

    @property
    def gpu_queue_depth(self) -> int:
        return self.engine.queue_depth

    def _on_gpu(self, kind: CodecKind) -> bool:
        return kind in self.engine.kinds

    # --- the store's interface --------------------------------------------------------------------

    async def encode_frame(self, kind: CodecKind, data: Buffer) -> EncodedFrame:
        """As CpuCodecPool.encode_frame: compressed if it shrinks, else passthrough; cpu-zstd if the GPU failed."""
        if not self._on_gpu(kind) or not len(data):
            return await super().encode_frame(kind, data)
        crc, payload = await asyncio.gather(
            self._run(crc32c, data), self.engine.compress(kind, data), return_exceptions=True
        )
        if isinstance(crc, BaseException):
            raise crc
        if isinstance(payload, CodecError) and not payload.is_corrupt:
            _log.warning("GPU could not compress a %d-byte frame, cpu-zstd instead: %s", len(data), payload)
            self.gpu_stats.cpu_fallback_frames += 1
            return await super().encode_frame(FALLBACK_KIND, data)
        if isinstance(payload, BaseException):
            raise payload
        size = len(data)
        if len(payload) < size:
            return EncodedFrame(FrameHeader(kind, size, len(payload), crc), payload)
        return EncodedFrame(FrameHeader(CodecKind.PASSTHROUGH, size, size, crc), bytes(data))

    async def decode_frame(self, header: FrameHeader, payload: Buffer) -> bytes:
        """As CpuCodecPool.decode_frame: sizes and CRC32C checked, whoever decoded."""
        if not self._on_gpu(header.codec):
            return await super().decode_frame(header, payload)
        if len(payload) != header.compressed_size:
            raise CodecError.corrupt(f"frame payload is {len(payload)} bytes, its header says {header.compressed_size}")
        out = await self.decompress(header.codec, payload, header.original_size)
        if len(out) != header.original_size:
            raise CodecError.corrupt(
                f"{header.codec.wire_name} frame decoded to {len(out)} bytes, header says {header.original_size}"
            )
        actual = await self._run(crc32c, out)
        if actual != header.crc32c:
            raise CodecError.corrupt(
                f"{header.codec.wire_name} frame CRC32C mismatch: stored {header.crc32c}, decoded {actual}"
            )
        return out

    async def compress(self, kind: CodecKind, data: Buffer) -> bytes:
        """A payload of ``kind`` itself (no codec change is possible here): on device failure, only
        nvcomp-zstd has a CPU encoder of the same format; the other codecs raise the CodecError."""
        if not self._on_gpu(kind):
            return await super().compress(kind, data)
        try:
            return await self.engine.compress(kind, data)
        except CodecError as exc:
            fallback = self.cpu_decoders.get(kind)
            if exc.is_corrupt or fallback is None:
                raise
            self.gpu_stats.cpu_fallback_frames += 1
            return await self._run(fallback.compress, data)

    async def decompress(self, kind: CodecKind, payload: Buffer, original_size: int) -> bytes:
        if not self._on_gpu(kind):
            return await super().decompress(kind, payload, original_size)
        try:
            return await self.engine.decompress(kind, payload, original_size)
        except CodecError as exc:
            fallback = self.cpu_decoders.get(kind)
            if exc.is_corrupt or fallback is None:
                raise
            _log.warning("GPU could not decode a %s frame, decoding on the CPU: %s", kind.wire_name, exc)
            self.gpu_stats.cpu_decoded_frames += 1
            return await self._run(fallback.decompress, payload, original_size)

    def close(self) -> None:
        self.engine.close()
        super().close()
