"""``s4 doctor``: one line per codec, runs here or exactly why not, and exit 0 whenever it could tell.

The real command runs on this machine (no NVIDIA driver here): it must say so plainly and
exit 0. Every other host is given to the same diagnosis through its ``Probes`` (a missing
library, a missing NVRTC, an old driver, no device), and the device round trips run on the
CPU stand-in behind the DeviceBackend interface, as in tests/unit/test_gpu_pool.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from s4.codec import CodecKind
from s4.codec.gpu.backend import CompressBatch, CompressedChunks
from s4.codec.gpu.doctor import DriverInfo, Probes, diagnose, find_gpu, format_report
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS
from s4.codec.gpu.setup import GpuSettings
from tests.unit.gpu_standin import StandInBackend, StandInDevice

GPU_ONLY = sorted(k for k in NVCOMP_KINDS if k is not CodecKind.NVCOMP_ZSTD)
CUPY = types.SimpleNamespace(__version__="14.2.0")
NVCOMP = types.SimpleNamespace(__version__="6.0.0.12", __cuda_version__="13.0")


def missing(name: str):
    def load():
        raise ModuleNotFoundError(f"No module named {name!r}")

    return load


def probes(
    driver=lambda: DriverInfo(13000, ["NVIDIA H200"]),
    cupy=lambda: CUPY,
    nvcomp=lambda: NVCOMP,
    nvrtc=lambda _cupy: 13000,
    runtime=lambda _cupy: 13000,
) -> Probes:
    """A host where everything is there, but for what a test replaces."""
    return Probes(driver=driver, cupy=cupy, nvcomp=nvcomp, nvrtc_version=nvrtc, runtime_version=runtime)


def no_libcuda():
    raise OSError("libcuda.so.1: cannot open shared object file: No such file or directory")


def no_nvrtc(_cupy):
    raise OSError("libnvrtc.so.12: cannot open shared object file: No such file or directory")


def lines_by_kind(report) -> dict[CodecKind, object]:
    return {line.kind: line for line in report.codecs}


def s4(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s4", *args], capture_output=True, text=True, timeout=60)


# --- the real command on this machine ------------------------------------------------------------


def test_doctor_here_says_plainly_there_is_no_gpu_and_exits_0():
    found = find_gpu()
    if found.blocker is None:
        pytest.skip(f"this machine has a usable GPU ({found.device}): tests/gpu covers it")
    r = s4("doctor")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("GPU: none usable here: ")
    assert out[-1].startswith("no GPU here")
    codec_lines = [line for line in out if line[:2].strip().isdigit()]
    assert [int(line[:2]) for line in codec_lines] == [int(k) for k in CodecKind]
    by_name = {line.split()[1]: line for line in codec_lines}
    for name in ("passthrough", "cpu-zstd", "cpu-gzip", "nvcomp-zstd"):
        assert "runs here (cpu)" in by_name[name]
    for kind in GPU_ONLY:
        assert "does not run here: needs an NVIDIA GPU" in by_name[kind.wire_name]


def test_doctor_json_and_require_gpu_here():
    if find_gpu().blocker is None:
        pytest.skip("this machine has a usable GPU")
    r = s4("doctor", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["gpu"]["blocker"] and data["gpu_round_trips_ok"] is False
    assert {c["name"]: c["runs"] for c in data["codecs"]}["cpu-zstd"] is True
    required = s4("doctor", "--require-gpu")
    assert required.returncode == 4 and required.stdout.startswith("GPU: none usable here")


# --- other hosts, through the same looks ---------------------------------------------------------


def test_no_driver():
    found = find_gpu(probes=probes(driver=no_libcuda, cupy=missing("cupy"), nvcomp=missing("nvidia")))
    assert found.blocker == "no NVIDIA driver on this node (libcuda.so.1 cannot be loaded)"
    assert "libcuda.so.1" in found.driver and "not installed" in found.cupy


def test_a_driver_without_devices():
    found = find_gpu(probes=probes(driver=lambda: DriverInfo(12040, [])))
    assert found.blocker == "the NVIDIA driver sees no CUDA device"


def test_a_device_index_beyond_the_devices():
    assert find_gpu(3, probes()).blocker == "CUDA device 3 does not exist (this node has 1)"


@pytest.mark.parametrize(("driver", "extra"), [(12080, "gpu-cu12"), (13000, "gpu-cu13")])
def test_a_missing_library_names_the_extra_of_the_drivers_cuda(driver, extra):
    found = find_gpu(probes=probes(driver=lambda: DriverInfo(driver, ["GPU"]), cupy=missing("cupy")))
    assert found.blocker.startswith("CuPy is not installed (ModuleNotFoundError: No module named 'cupy')")
    assert f"pip install 's4[{extra}]'" in found.blocker
    found = find_gpu(probes=probes(driver=lambda: DriverInfo(driver, ["GPU"]), nvcomp=missing("nvidia")))
    assert found.blocker.startswith("nvidia.nvcomp is not installed") and extra in found.blocker


def test_missing_nvrtc_is_named_with_the_wheel_that_brings_it():
    found = find_gpu(
        probes=probes(driver=lambda: DriverInfo(12080, ["NVIDIA L4"]), runtime=lambda _c: 12090, nvrtc=no_nvrtc)
    )
    assert found.blocker.startswith("NVRTC cannot be loaded (OSError: libnvrtc.so.12: cannot open shared object")
    assert "the gpu-cu12 extra brings it (nvidia-cuda-nvrtc-cu12)" in found.blocker
    assert found.nvrtc.startswith("missing")
    cu12 = probes(driver=lambda: DriverInfo(12080, ["L4"]), runtime=lambda _c: 12090, nvrtc=no_nvrtc)
    report = diagnose(GpuSettings(), cu12)
    assert "NVRTC cannot be loaded" in lines_by_kind(report)[CodecKind.NVCOMP_BITCOMP].detail


def test_a_driver_older_than_the_cuda_cupy_was_built_for():
    found = find_gpu(probes=probes(driver=lambda: DriverInfo(12040, ["A100"]), runtime=lambda _c: 13000))
    assert found.blocker == (
        "the driver is too old: it runs CUDA 12.4, CuPy is built for CUDA 13.0;"
        " install the gpu-cu12 extra or a newer driver"
    )


def test_gpu_off_runs_nothing():
    def never():
        raise AssertionError("gpu: off must not look at the driver")

    report = diagnose(GpuSettings(mode="off"), probes(driver=never))
    assert "gpu: off" in report.gpu.blocker
    assert not report.round_trips


# --- round trips on a device (the CPU stand-in behind the same interface) -----------------------


def test_every_nvcomp_codec_round_trips_and_zstd_chunks_are_read_by_python_zstandard():
    device = StandInDevice()
    report = diagnose(GpuSettings(), probes(), backend_factory=device.factory)
    assert report.round_trips and report.gpu.blocker is None
    lines = lines_by_kind(report)
    for kind in NVCOMP_KINDS:
        assert lines[kind].runs and lines[kind].where == "cuda:0 (NVIDIA H200)", lines[kind]
        assert "round trip ok" in lines[kind].detail
    assert "read by python-zstandard ok" in lines[CodecKind.NVCOMP_ZSTD].detail
    assert device.closed == 1
    text = format_report(report)
    assert text.startswith("GPU: cuda:0 (NVIDIA H200)\n  driver: CUDA 13.0, 1 device(s)")
    assert text.endswith("every nvCOMP codec round-tripped on cuda:0 (NVIDIA H200)")


class ZstdThatIsNotZstd(StandInBackend):
    """A device whose nvcomp-zstd chunks only it can read: what the python-zstandard check exists for."""

    def compress(self, batch: CompressBatch) -> list[CompressedChunks]:
        if batch.kind is not CodecKind.NVCOMP_ZSTD:
            return super().compress(batch)
        plain = [bytes(f) for f in batch.frames]
        return super().compress(CompressBatch(CodecKind.NVCOMP_BITCOMP, 0, batch.chunk_size, plain))

    def decompress(self, batch):
        return super().decompress(type(batch)(CodecKind.NVCOMP_BITCOMP, 0, batch.chunk_size, batch.frames))


def test_a_codec_whose_round_trip_fails_is_named_and_the_others_still_run():
    device = StandInDevice()
    report = diagnose(GpuSettings(), probes(), backend_factory=lambda i: ZstdThatIsNotZstd(device, f"standin:{i}"))
    assert not report.round_trips
    zstd = lines_by_kind(report)[CodecKind.NVCOMP_ZSTD]
    assert zstd.runs and zstd.where == "cpu"
    assert zstd.detail.startswith("round trip on cuda:0 (NVIDIA H200) failed: ")
    assert zstd.detail.endswith("; runs on the CPU instead")
    for kind in GPU_ONLY:
        assert lines_by_kind(report)[kind].runs


def test_a_pool_that_cannot_start_is_the_reason_of_every_nvcomp_codec():
    def factory(_index):
        raise OSError("nvrtc: error: failed to load builtins for compute_90")

    report = diagnose(GpuSettings(), probes(), backend_factory=factory)
    assert not report.round_trips
    lines = lines_by_kind(report)
    for kind in GPU_ONLY:
        assert not lines[kind].runs
        assert lines[kind].detail.startswith("the GPU pool could not start: CodecError: no GPU worker could start")
        assert "failed to load builtins" in lines[kind].detail
    assert lines[CodecKind.NVCOMP_ZSTD].runs and lines[CodecKind.NVCOMP_ZSTD].where == "cpu"
    assert format_report(report).endswith("not every nvCOMP codec runs on it: see above")


def test_look_only_runs_nothing_on_the_device():
    def factory(_index):
        raise AssertionError("--no-round-trip must not start a GPU engine")

    report = diagnose(GpuSettings(), probes(), backend_factory=factory, round_trips=False)
    assert not report.round_trips
    assert lines_by_kind(report)[CodecKind.NVCOMP_BITCOMP].runs
