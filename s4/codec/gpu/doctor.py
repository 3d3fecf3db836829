"""``s4 doctor``: does each codec run on this node, and if not, exactly why.

The first GPU an operator (or a CI job) points the gateway at should answer in seconds
whether the nvCOMP pool will run, instead of a stack trace at start. The doctor looks
in the order things fail on a real host: the NVIDIA driver (``libcuda.so.1``, asked
directly through ctypes, so it answers without CuPy), a device, CuPy and nvCOMP
importable, a driver at least as new as the CUDA the libraries were built for, and
NVRTC loadable the way CuPy loads it (CuPy 14 wheels carry none; without it the pool's
gather kernel cannot compile). Where all of that holds it starts a one-stream GPU
engine (whose warm-up compiles the kernel) and round-trips a small frame through every
nvCOMP codec, and reads nvcomp-zstd's chunks back with python-zstandard, as a node
without a GPU will.

Every look is a function in ``Probes``, so tests hand in a missing library or a
missing NVRTC through the same code path the real host takes. ``s4 serve`` prints the
codec lines of the same format at start (``codec_lines``).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import importlib
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from s4.codec.errors import CodecError
from s4.codec.format.fcg1 import DEFAULT_CHUNK_SIZE
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.backend import BackendFactory
from s4.codec.gpu.engine import GpuEngine
from s4.codec.gpu.nvcomp import NvcompProbe
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS, read_container
from s4.codec.gpu.setup import GpuSettings, codec_report
from s4.codec.registry import CodecStatus

ROUND_TRIP_BYTES = 1024 * 1024 + 3
"""One whole 64 KiB chunk count plus a short tail: every chunk path of the container in one frame."""


@dataclasses.dataclass(frozen=True)
class DriverInfo:
    """What the driver API says: the newest CUDA it runs (13000 for 13.0) and its devices' names."""

    cuda_version: int
    devices: list[str]


@dataclasses.dataclass(frozen=True)
class Probes:
    """How the doctor looks at the node. Each may raise; the exception's text becomes the reason."""

    driver: Callable[[], DriverInfo]
    cupy: Callable[[], Any]
    nvcomp: Callable[[], Any]
    nvrtc_version: Callable[[Any], int]
    """NVRTC's version (12090 for 12.9), loaded through the imported CuPy as its kernels load it."""
    runtime_version: Callable[[Any], int]
    """The CUDA version the imported CuPy was built for."""


@dataclasses.dataclass
class GpuFindings:
    """Each look's answer (a value, or why not), and the first thing that keeps the GPU from running."""

    driver: str = "not checked"
    device: str | None = None
    cupy: str = "not checked"
    nvcomp: str = "not checked"
    nvrtc: str = "not checked"
    blocker: str | None = None
    """None: everything the GPU pool needs is here."""
    nvcomp_version: str | None = None


@dataclasses.dataclass
class CodecLine:
    kind: CodecKind
    runs: bool
    where: str | None
    detail: str


@dataclasses.dataclass
class DoctorReport:
    gpu: GpuFindings
    codecs: list[CodecLine]
    round_trips: bool
    """True when every nvCOMP codec round-tripped on the device (False also where there is none)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": dataclasses.asdict(self.gpu),
            "gpu_round_trips_ok": self.round_trips,
            "codecs": [
                {"id": int(c.kind), "name": c.kind.wire_name, "runs": c.runs, "where": c.where, "detail": c.detail}
                for c in self.codecs
            ],
        }


# --- the real looks --------------------------------------------------------------------------------


def _cuda_version_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def driver_info() -> DriverInfo:
    """Through ``libcuda.so.1`` itself: no CuPy needed to tell there is no driver or no device."""
    lib = ctypes.CDLL("libcuda.so.1")
    version = ctypes.c_int(0)
    _cu(lib.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
    init = lib.cuInit(0)
    if init == 100:  # CUDA_ERROR_NO_DEVICE
        return DriverInfo(version.value, [])
    _cu(init, "cuInit")
    count = ctypes.c_int(0)
    _cu(lib.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    names = []
    for ordinal in range(count.value):
        handle = ctypes.c_int(0)
        _cu(lib.cuDeviceGet(ctypes.byref(handle), ordinal), "cuDeviceGet")
        name = ctypes.create_string_buffer(256)
        _cu(lib.cuDeviceGetName(name, len(name), handle), "cuDeviceGetName")
        names.append(name.value.decode(errors="replace"))
    return DriverInfo(version.value, names)


def _cu(result: int, call: str) -> None:
    if result != 0:
        raise OSError(f"{call} failed with CUDA driver error {result}")


def _nvrtc_version(cupy: Any) -> int:
    major, minor = cupy.cuda.nvrtc.getVersion()
    return int(major) * 1000 + int(minor) * 10


def _runtime_version(cupy: Any) -> int:
    return int(cupy.cuda.runtime.runtimeGetVersion())


REAL_PROBES = Probes(
    driver=driver_info,
    cupy=lambda: importlib.import_module("cupy"),
    nvcomp=lambda: importlib.import_module("nvidia.nvcomp"),
    nvrtc_version=_nvrtc_version,
    runtime_version=_runtime_version,
)


# --- the diagnosis ---------------------------------------------------------------------------------


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def find_gpu(device: int = 0, probes: Probes = REAL_PROBES) -> GpuFindings:
    """Every look, in the order a host fails them; ``blocker`` is the first that stops the GPU pool."""
    found = GpuFindings()
    extra = "gpu-cu12 or gpu-cu13"
    driver_major = None
    try:
        info = probes.driver()
    except Exception as exc:
        found.driver = f"none ({_why(exc)})"
        found.blocker = "no NVIDIA driver on this node (libcuda.so.1 cannot be loaded)"
    else:
        driver_major = info.cuda_version // 1000
        extra = f"gpu-cu{driver_major}"
        found.driver = f"CUDA {_cuda_version_text(info.cuda_version)}, {len(info.devices)} device(s)"
        if not info.devices:
            found.blocker = "the NVIDIA driver sees no CUDA device"
        elif not 0 <= device < len(info.devices):
            found.blocker = f"CUDA device {device} does not exist (this node has {len(info.devices)})"
        else:
            found.device = f"cuda:{device} ({info.devices[device]})"
    hint = f"install the {extra} extra: pip install 's4[{extra}]'"
    cupy = _import(probes.cupy, "CuPy", hint, found, "cupy")
    nvcomp = _import(probes.nvcomp, "nvidia.nvcomp", hint, found, "nvcomp")
    if nvcomp is not None:
        found.nvcomp_version = str(getattr(nvcomp, "__version__", "?"))
        found.nvcomp = f"{found.nvcomp_version} (CUDA {getattr(nvcomp, '__cuda_version__', '?')})"
    if cupy is None:
        return found
    try:
        runtime = probes.runtime_version(cupy)
        found.cupy = f"{getattr(cupy, '__version__', '?')} (built for CUDA {_cuda_version_text(runtime)})"
        if driver_major is not None and runtime // 1000 > driver_major:
            _block(
                found,
                f"the driver is too old: it runs CUDA {_cuda_version_text(info.cuda_version)}, CuPy is built for CUDA"
                f" {_cuda_version_text(runtime)}; install the gpu-cu{driver_major} extra or a newer driver",
            )
    except Exception as exc:
        found.cupy = f"{getattr(cupy, '__version__', '?')} (CUDA version unknown: {_why(exc)})"
    try:
        found.nvrtc = f"CUDA {_cuda_version_text(probes.nvrtc_version(cupy))}"
    except Exception as exc:
        found.nvrtc = f"missing ({_why(exc)})"
        nvrtc_wheel = "nvidia-cuda-nvrtc" if driver_major == 13 else "nvidia-cuda-nvrtc-cu12"
        _block(
            found,
            f"NVRTC cannot be loaded ({_why(exc)}), so the GPU pool's kernel cannot compile; the {extra} extra"
            f" brings it ({nvrtc_wheel})",
        )
    return found


def _import(load: Callable[[], Any], name: str, hint: str, found: GpuFindings, field: str) -> Any:
    try:
        module = load()
    except Exception as exc:
        setattr(found, field, f"not installed ({_why(exc)})")
        _block(found, f"{name} is not installed ({_why(exc)}); {hint}")
        return None
    setattr(found, field, str(getattr(module, "__version__", "installed")))
    return module


def _block(found: GpuFindings, reason: str) -> None:
    if found.blocker is None:
        found.blocker = reason


def _sample(kind: CodecKind) -> bytes:
    """Log-like text, or for Bitcomp a slowly rising u32 column (what it is for)."""
    if kind is CodecKind.NVCOMP_BITCOMP:
        count = ROUND_TRIP_BYTES // 4
        column = b"".join((1_000_000 + i // 3).to_bytes(4, "little") for i in range(count))
        return column + b"\x01" * (ROUND_TRIP_BYTES - 4 * count)
    rng = random.Random(17)
    words = [b"GET", b"PUT", b"/bucket/key", b"200", b"404", b"latency=17ms", b"\n"]
    out = bytearray()
    while len(out) < ROUND_TRIP_BYTES:
        out += rng.choice(words) + b" "
    return bytes(out[:ROUND_TRIP_BYTES])


def round_trip(engine: GpuEngine, kind: CodecKind) -> str:
    """Compress and decompress one frame on the device; raises with what went wrong."""
    data = _sample(kind)

    async def both() -> tuple[bytes, bytes]:
        payload = await engine.compress(kind, data)
        return payload, await engine.decompress(kind, payload, len(data))

    payload, back = asyncio.run(both())
    if back != data:
        raise CodecError.corrupt(f"{kind.wire_name}: the round trip returned different bytes")
    chunks = read_container(kind, payload, len(data)).chunks
    text = f"{len(data)} B round trip ok, ratio {len(data) / len(payload):.2f}, {len(chunks)} chunks"
    if kind is CodecKind.NVCOMP_ZSTD:
        import zstandard

        from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec

        dctx = zstandard.ZstdDecompressor()
        pieces = [dctx.decompress(bytes(c), max_output_size=DEFAULT_CHUNK_SIZE) for c in chunks]
        if b"".join(pieces) != data or NvcompZstdCpuCodec().decompress(payload, len(data)) != data:
            raise CodecError.corrupt("nvcomp-zstd chunks are not the zstd frames python-zstandard reads")
        text += "; its chunks read by python-zstandard ok"
    return text


def _nvcomp_factory(device: int) -> BackendFactory:
    def build(_index: int) -> Any:
        from s4.codec.gpu.nvcomp import NvcompBackend

        return NvcompBackend(device)

    return build


def diagnose(
    settings: GpuSettings,
    probes: Probes = REAL_PROBES,
    backend_factory: BackendFactory | None = None,
    round_trips: bool = True,
) -> DoctorReport:
    """The doctor's whole answer: the GPU findings, then one line per codec."""
    if settings.mode == "off":
        found = GpuFindings(blocker="the GPU is disabled in this node's configuration (gpu: off)")
    else:
        found = find_gpu(settings.device, probes)
    verdict = NvcompProbe(found.blocker is None, found.blocker, found.device, found.nvcomp_version)
    statuses, _ = codec_report(settings, probe_device=lambda _device: verdict)
    notes: dict[CodecKind, str] = {}
    failed: dict[CodecKind, str] = {}
    all_ok = False
    if verdict.available and round_trips:
        all_ok = True
        try:
            engine = GpuEngine(
                backend_factory or _nvcomp_factory(settings.device), streams=1, wait_window=0.0, start_timeout=120
            )
        except Exception as exc:
            all_ok = False
            for kind in NVCOMP_KINDS:
                failed[kind] = f"the GPU pool could not start: {_why(exc)}"
        else:
            try:
                for kind in sorted(NVCOMP_KINDS):
                    try:
                        notes[kind] = round_trip(engine, kind)
                    except Exception as exc:
                        all_ok = False
                        failed[kind] = f"round trip on {found.device} failed: {_why(exc)}"
            finally:
                engine.close()
    lines = []
    for status in statuses:
        if status.kind in failed:
            cpu = status.kind is CodecKind.NVCOMP_ZSTD
            why = failed[status.kind] + ("; runs on the CPU instead" if cpu else "")
            lines.append(CodecLine(status.kind, cpu, "cpu" if cpu else None, why))
        else:
            lines.append(_line(status, notes.get(status.kind), found))
    return DoctorReport(found, lines, all_ok)


def _line(status: CodecStatus, note: str | None, found: GpuFindings) -> CodecLine:
    if not status.available:
        return CodecLine(status.kind, False, None, status.reason or "unavailable")
    detail = note or ""
    if status.kind is CodecKind.NVCOMP_ZSTD and status.device == "cpu" and found.blocker:
        detail = f"on the CPU (frames any GPU reads); not on a GPU: {found.blocker}"
    return CodecLine(status.kind, True, status.device, detail)


# --- text ------------------------------------------------------------------------------------------


def codec_lines(lines: Iterable[CodecLine]) -> list[str]:
    """One line per codec: "runs here (where)" or "does not run here: why"; ``s4 serve`` logs these too."""
    out = []
    for line in lines:
        verdict = f"runs here ({line.where})" if line.runs else "does not run here"
        detail = f": {line.detail}" if line.detail else ""
        out.append(f"{int(line.kind):>2} {line.kind.wire_name:<16} {verdict}{detail}")
    return out


def status_lines(statuses: Iterable[CodecStatus]) -> list[str]:
    """The codec lines of a registry as the gateway set it up (no round trips: its warm-up did one)."""
    return codec_lines(
        CodecLine(s.kind, s.available, s.device, "" if s.available else (s.reason or "unavailable")) for s in statuses
    )


def format_report(report: DoctorReport) -> str:
    gpu = report.gpu
    head = f"GPU: {gpu.device}" if gpu.blocker is None else f"GPU: none usable here: {gpu.blocker}"
    facts: Mapping[str, str] = {"driver": gpu.driver, "CuPy": gpu.cupy, "nvCOMP": gpu.nvcomp, "NVRTC": gpu.nvrtc}
    lines = [head, *(f"  {name}: {value}" for name, value in facts.items()), *codec_lines(report.codecs)]
    if gpu.blocker is not None:
        lines.append("no GPU here: the codecs marked 'runs here' are what this node serves")
    elif report.round_trips:
        lines.append(f"every nvCOMP codec round-tripped on {gpu.device}")
    else:
        lines.append(f"the GPU is there ({gpu.device}) but not every nvCOMP codec runs on it: see above")
    return "\n".join(lines)
