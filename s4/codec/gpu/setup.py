"""Putting a GPU to work (or not) at start: ``gpu: auto | on | off``.

``auto`` uses a GPU when nvCOMP finds one and runs on the CPU otherwise; ``on`` makes
a missing GPU a start-up error; ``off`` never touches one. Either way every codec ends
up in the registry as available (and where) or unavailable with the reason, which is
what ``s4 codecs``, readiness and the ``--codec`` check report. Nothing here fails
because a library is missing: that is a reason, not a crash.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from s4.codec.base import Codec
from s4.codec.dispatcher import FramePromotion
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.backend import BackendFactory, DeviceBackend
from s4.codec.gpu.device_codec import DeviceCodec
from s4.codec.gpu.dietgpu import load_dietgpu
from s4.codec.gpu.engine import DEFAULT_BATCH_BYTES, DEFAULT_QUEUE_BYTES, DEFAULT_WAIT_WINDOW, GpuEngine
from s4.codec.gpu.nvcomp import NvcompProbe, probe
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.promotion import GpuPromotion
from s4.codec.pool import CpuCodecPool
from s4.codec.registry import CodecRegistry, CodecStatus

GpuMode = Literal["auto", "on", "off"]
GPU_ONLY_KINDS = frozenset(k for k in NVCOMP_KINDS if k.needs_gpu_to_decode)
"""nvCOMP codecs without a CPU implementation here (nvcomp-zstd has one)."""
OFF_REASON = "the GPU is disabled in this node's configuration (gpu: off)"
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GpuSettings:
    """The ``gpu:`` section of the configuration, as the codec layer needs it."""

    mode: GpuMode = "auto"
    device: int = 0
    streams: int = 2
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_wait_ms: float = DEFAULT_WAIT_WINDOW * 1000
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    min_bytes: int | None = 1024 * 1024
    """Frames at least this large of cpu-zstd objects run as nvcomp-zstd on the GPU; None: never."""
    prefer_columnar: bool = False
    dietgpu_library: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GpuSettings:
        """From the configuration's ``gpu`` section as plain values (paths become strings)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in fields}
        if known.get("dietgpu_library") is not None:
            known["dietgpu_library"] = str(known["dietgpu_library"])
        return cls(**known)


@dataclasses.dataclass
class GpuSetup:
    """What start-up found: the engine (None without a GPU), the promotion hook, and why not."""

    engine: GpuEngine | None
    promotion: FramePromotion | None
    device: str | None
    reason: str | None
    cpu_twins: dict[CodecKind, Codec] = dataclasses.field(default_factory=dict)
    """CPU codecs of the same format as a GPU codec (nvcomp-zstd), for when the device fails."""

    def pool(self, registry: CodecRegistry, threads: int | None = None) -> CpuCodecPool:
        """The store's codec pool: the GPU pool when there is an engine, else the CPU pool; ``threads``
        CPU codec threads (default: one per core; fewer when several processes share the cores)."""
        if self.engine is None:
            return CpuCodecPool(registry, threads)
        return GpuCodecPool(registry, self.engine, cpu_decoders=self.cpu_twins, workers=threads)


def setup_gpu(
    registry: CodecRegistry,
    settings: GpuSettings,
    backend_factory: BackendFactory | None = None,
    probe_device: Callable[[int], NvcompProbe] | None = None,
) -> GpuSetup:
    """Start the GPU engine if the settings and the node allow it, and register what runs where.

    Raises CodecError(unavailable) only for ``mode: on`` without a usable GPU.
    """
    if settings.mode == "off":
        for kind in (*GPU_ONLY_KINDS, CodecKind.DIETGPU_ANS):
            registry.mark_unavailable(kind, OFF_REASON)
        return GpuSetup(None, None, None, OFF_REASON)
    found = (probe_device or probe)(settings.device)
    engine, reason = None, found.reason
    if found.available:
        factory = backend_factory or _nvcomp_factory(settings.device)
        try:
            engine = GpuEngine(
                factory,
                streams=settings.streams,
                batch_bytes=settings.batch_bytes,
                wait_window=settings.batch_wait_ms / 1000,
                queue_bytes=settings.queue_bytes,
                telemetry=registry.telemetry,
            )
        except CodecError as exc:
            reason = exc.message
    _setup_dietgpu(registry, settings)
    if engine is None:
        if settings.mode == "on":
            raise CodecError.unavailable(f"gpu is on, but no GPU can be used: {reason}")
        _log.info("no GPU in use: %s", reason)
        for kind in GPU_ONLY_KINDS:
            registry.mark_unavailable(kind, f"needs an NVIDIA GPU with nvCOMP: {reason}")
        return GpuSetup(None, None, None, reason)
    twins = {k: registry.get(k) for k in engine.kinds if registry.is_available(k)}
    for kind in sorted(engine.kinds):
        registry.register(DeviceCodec(kind, engine, twins.get(kind)))
    promotion = None
    if settings.min_bytes is not None:
        promotion = GpuPromotion(engine.kinds, settings.min_bytes, settings.prefer_columnar)
    _log.info(
        "GPU pool on %s: %d streams, codecs %s",
        found.device,
        engine.workers,
        ", ".join(k.wire_name for k in sorted(engine.kinds)),
    )
    return GpuSetup(engine, promotion, found.device, None, twins)


def _nvcomp_factory(device: int) -> BackendFactory:
    def build(_index: int) -> DeviceBackend:
        from s4.codec.gpu.nvcomp import NvcompBackend

        return NvcompBackend(device)

    return build


def _setup_dietgpu(registry: CodecRegistry, settings: GpuSettings) -> None:
    try:
        registry.register(load_dietgpu(settings.dietgpu_library, settings.device))
    except CodecError as exc:
        registry.mark_unavailable(CodecKind.DIETGPU_ANS, exc.message)


def codec_report(
    settings: GpuSettings, probe_device: Callable[[int], NvcompProbe] | None = None
) -> tuple[list[CodecStatus], str]:
    """Every codec, available here or not and why, plus a line about the GPU; starts no engine."""
    registry = CodecRegistry.cpu_default()
    if settings.mode == "off":
        gpu_line = f"GPU: not used ({OFF_REASON})"
        found = NvcompProbe(False, OFF_REASON)
    else:
        _setup_dietgpu(registry, settings)
        found = (probe_device or probe)(settings.device)
        gpu_line = (
            f"GPU: {found.device}, nvCOMP {found.nvcomp_version}" if found.available else f"GPU: none ({found.reason})"
        )
    statuses = []
    for status in registry.statuses():
        if status.kind in NVCOMP_KINDS and found.available:
            status = CodecStatus(status.kind, True, found.device, None)
        elif status.kind in GPU_ONLY_KINDS:
            why = OFF_REASON if settings.mode == "off" else f"needs an NVIDIA GPU with nvCOMP: {found.reason}"
            status = CodecStatus(status.kind, False, None, why)
        elif status.kind is CodecKind.DIETGPU_ANS and settings.mode == "off":
            status = CodecStatus(status.kind, False, None, OFF_REASON)
        statuses.append(status)
    return statuses, gpu_line
