"""Which codec serves which kind on this node, and the telemetry around every call."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from s4.codec.base import Codec
from s4.codec.buffer import Buffer
from s4.codec.cpu.gzip import DEFAULT_GZIP_LEVEL, CpuGzipCodec
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.cpu.passthrough import PassthroughCodec
from s4.codec.cpu.zstd import DEFAULT_ZSTD_LEVEL, CpuZstdCodec
from s4.codec.cpu.zstd_dict import CpuZstdDictCodec, ZstdDictionary
from s4.codec.errors import CodecError, looks_like_oom
from s4.codec.format.kinds import CodecKind
from s4.codec.telemetry import CodecOp, CompressTelemetry, TelemetryCallback

NO_GPU_REASON = "needs an NVIDIA GPU with nvCOMP; this node has none configured"
NO_DICT_REASON = "needs the dictionary named by the object's s4-dict-id"
NO_DIETGPU_REASON = "needs the DietGPU library (torch.ops.dietgpu); none is configured"
_DICT_CACHE_SIZE = 64
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class CodecStatus:
    kind: CodecKind
    available: bool
    device: str | None
    reason: str | None


class CodecRegistry:
    """Maps each CodecKind to the codec that runs it here, or to the reason none can.

    Every codec call that goes through ``*_with_telemetry`` reports a CompressTelemetry
    to the callback (metrics install one) and comes back either as bytes or as a
    CodecError: exceptions from codec libraries are translated here, once.
    """

    def __init__(
        self,
        codecs: Iterable[Codec] = (),
        unavailable: dict[CodecKind, str] | None = None,
        telemetry: TelemetryCallback | None = None,
    ) -> None:
        self._codecs: dict[CodecKind, Codec] = {}
        self._unavailable: dict[CodecKind, str] = dict(unavailable or {})
        self.telemetry = telemetry
        self._dict_codecs: OrderedDict[str, CpuZstdDictCodec] = OrderedDict()
        self._dict_lock = threading.Lock()
        self._zstd_level = DEFAULT_ZSTD_LEVEL
        for codec in codecs:
            self.register(codec)

    @classmethod
    def cpu_default(
        cls,
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        telemetry: TelemetryCallback | None = None,
    ) -> CodecRegistry:
        """Every codec a CPU-only node runs; device codecs are registered later by the GPU pool."""
        registry = cls(
            [
                PassthroughCodec(),
                CpuZstdCodec(zstd_level),
                CpuGzipCodec(gzip_level),
                NvcompZstdCpuCodec(zstd_level),
            ],
            unavailable={
                CodecKind.NVCOMP_BITCOMP: NO_GPU_REASON,
                CodecKind.NVCOMP_GANS: NO_GPU_REASON,
                CodecKind.NVCOMP_GDEFLATE: NO_GPU_REASON,
                CodecKind.DIETGPU_ANS: NO_DIETGPU_REASON,
                CodecKind.CPU_ZSTD_DICT: NO_DICT_REASON,
            },
            telemetry=telemetry,
        )
        registry._zstd_level = zstd_level
        return registry

    def register(self, codec: Codec) -> None:
        self._codecs[codec.kind] = codec
        self._unavailable.pop(codec.kind, None)

    def mark_unavailable(self, kind: CodecKind, reason: str) -> None:
        self._codecs.pop(kind, None)
        self._unavailable[kind] = reason

    def get(self, kind: CodecKind) -> Codec:
        codec = self._codecs.get(kind)
        if codec is None:
            reason = self._unavailable.get(kind, "not registered on this node")
            raise CodecError.unavailable(f"codec {kind.wire_name} is unavailable: {reason}")
        return codec

    def is_available(self, kind: CodecKind) -> bool:
        return kind in self._codecs

    def status(self, kind: CodecKind) -> CodecStatus:
        codec = self._codecs.get(kind)
        if codec is not None:
            return CodecStatus(kind, True, codec.device, None)
        return CodecStatus(kind, False, None, self._unavailable.get(kind, "not registered on this node"))

    def statuses(self) -> list[CodecStatus]:
        return [self.status(kind) for kind in CodecKind]

    def with_dictionary(self, dictionary: ZstdDictionary) -> CodecRegistry:
        """A registry that also runs cpu-zstd-dict with ``dictionary`` (codecs and telemetry shared)."""
        view = CodecRegistry(self._codecs.values(), self._unavailable, self.telemetry)
        view._dict_codecs = self._dict_codecs
        view._dict_lock = self._dict_lock
        view._zstd_level = self._zstd_level
        view.register(self._dict_codec(dictionary))
        return view

    def _dict_codec(self, dictionary: ZstdDictionary) -> CpuZstdDictCodec:
        with self._dict_lock:
            codec = self._dict_codecs.get(dictionary.dict_id)
            if codec is not None:
                self._dict_codecs.move_to_end(dictionary.dict_id)
                return codec
        codec = CpuZstdDictCodec(dictionary, self._zstd_level)
        with self._dict_lock:
            self._dict_codecs[dictionary.dict_id] = codec
            while len(self._dict_codecs) > _DICT_CACHE_SIZE:
                self._dict_codecs.popitem(last=False)
        return codec

    def compress(self, kind: CodecKind, data: Buffer) -> bytes:
        return self.compress_with_telemetry(kind, data)[0]

    def decompress(self, kind: CodecKind, payload: Buffer, original_size: int) -> bytes:
        return self.decompress_with_telemetry(kind, payload, original_size)[0]

    def compress_with_telemetry(self, kind: CodecKind, data: Buffer) -> tuple[bytes, CompressTelemetry]:
        codec = self.get(kind)
        return self._timed(codec, CodecOp.COMPRESS, len(data), lambda: codec.compress(data))

    def decompress_with_telemetry(
        self, kind: CodecKind, payload: Buffer, original_size: int
    ) -> tuple[bytes, CompressTelemetry]:
        codec = self.get(kind)
        return self._timed(codec, CodecOp.DECOMPRESS, len(payload), lambda: codec.decompress(payload, original_size))

    def _timed(self, codec: Codec, op: CodecOp, bytes_in: int, call) -> tuple[bytes, CompressTelemetry]:
        start = time.perf_counter()
        try:
            out = call()
        except Exception as exc:
            oom = looks_like_oom(exc)
            elapsed = time.perf_counter() - start
            self._report(CompressTelemetry(codec.kind, codec.device, op, bytes_in, 0, elapsed, oom=oom))
            if isinstance(exc, CodecError):
                raise
            if oom:
                raise CodecError.out_of_memory(f"{codec.kind.wire_name} ran out of memory: {exc}") from exc
            raise CodecError.backend(f"{codec.kind.wire_name} failed: {type(exc).__name__}: {exc}") from exc
        record = CompressTelemetry(codec.kind, codec.device, op, bytes_in, len(out), time.perf_counter() - start)
        self._report(record)
        return out, record

    def _report(self, record: CompressTelemetry) -> None:
        if self.telemetry is None:
            return
        try:
            self.telemetry(record)
        except Exception:  # a broken metrics hook must not fail a codec call
            _log.exception("telemetry callback failed")
