"""The registry's entry for a codec that the GPU engine runs.

The registry answers ``is_available`` / ``status`` (``s4 codecs``, readiness, the
``--codec`` check) and serves synchronous callers (tools, benchmarks). This Codec
makes the GPU engine one more codec there: its calls block the calling thread until
the engine's batch with the frame is done. The server's hot path does not come
through here: GpuCodecPool hands frames to the engine directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from s4.codec.base import Codec
from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.engine import GpuEngine


class DeviceCodec(Codec):
    def __init__(self, kind: CodecKind, engine: GpuEngine, cpu_fallback: Codec | None = None) -> None:
        self.kind = kind
        self.device = engine.device
        self.engine = engine
        self.cpu_fallback = cpu_fallback
        """A CPU codec writing and reading the same format (nvcomp-zstd), used when the device fails."""

    def compress(self, data: Buffer) -> bytes:
        return self.compress_batch([data])[0]

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        return self.decompress_batch([payload], [original_size])[0]

    def compress_batch(self, frames: Sequence[Buffer]) -> list[bytes]:
        try:
            return self.engine.compress_many_blocking(self.kind, frames)
        except CodecError as exc:
            if exc.is_corrupt or self.cpu_fallback is None:
                raise
            return [self.cpu_fallback.compress(f) for f in frames]

    def decompress_batch(self, payloads: Sequence[Buffer], original_sizes: Sequence[int]) -> list[bytes]:
        try:
            return self.engine.decompress_many_blocking(self.kind, payloads, original_sizes)
        except CodecError as exc:
            if exc.is_corrupt or self.cpu_fallback is None:
                raise
            return [self.cpu_fallback.decompress(p, n) for p, n in zip(payloads, original_sizes, strict=True)]
