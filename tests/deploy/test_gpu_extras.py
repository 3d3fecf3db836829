"""The GPU extras bring everything the GPU pool loads, NVRTC included, and Dockerfile.gpu installs the one of its
base image's CUDA major.

CuPy 14 wheels carry no NVRTC, which compiles the pool's gather kernel: an extra without it installs cleanly and
then fails every GPU worker at start on a host with a driver but no CUDA toolkit (issue 17). These read the files;
no GPU, no network.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
CUDA_MAJORS = (12, 13)
NVRTC_WHEEL = {12: "nvidia-cuda-nvrtc-cu12", 13: "nvidia-cuda-nvrtc"}
"""Each CUDA major's NVRTC wheel, where CuPy 14 (cuda-pathfinder) finds it: nvidia/cuda_nvrtc/lib, nvidia/cu13/lib."""


def extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {name: [Requirement(r) for r in reqs] for name, reqs in project["optional-dependencies"].items()}


def brings_nvrtc(reqs: list[Requirement], major: int) -> bool:
    """NVRTC of ``major``: its wheel, pinned to that major, or CuPy's [ctk] extra (which depends on it)."""
    for req in reqs:
        if req.name == NVRTC_WHEEL[major]:
            versions = [f"{major - 1}.9.0", f"{major}.0.0", f"{major}.9.99", f"{major + 1}.0.0"]
            return [req.specifier.contains(v) for v in versions] == [False, True, True, False]
        if req.name == f"cupy-cuda{major}x" and "ctk" in req.extras:
            return True
    return False


@pytest.mark.parametrize("major", CUDA_MAJORS)
def test_each_gpu_extra_brings_nvcomp_cupy_and_nvrtc_of_one_cuda_major(major: int):
    reqs = extras()[f"gpu-cu{major}"]
    names = {r.name for r in reqs}
    assert f"nvidia-nvcomp-cu{major}" in names
    cupy = next(r for r in reqs if r.name == f"cupy-cuda{major}x")
    assert cupy.specifier.contains("14.2.0") and not cupy.specifier.contains("13.6.0"), "CuPy 14 finds wheel NVRTC"
    assert brings_nvrtc(reqs, major), f"gpu-cu{major} must bring NVRTC {major} ({NVRTC_WHEEL[major]})"
    other = 25 - major
    assert not any(str(other) in r.name for r in reqs), f"gpu-cu{major} mixes in CUDA {other} packages"


def test_the_nvrtc_check_refuses_an_extra_without_it():
    without = [Requirement("nvidia-nvcomp-cu12>=6,<7"), Requirement("cupy-cuda12x>=14")]
    assert not brings_nvrtc(without, 12)
    assert not brings_nvrtc([*without, Requirement("nvidia-cuda-nvrtc>=13")], 12)
    assert brings_nvrtc([Requirement("cupy-cuda12x[ctk]>=14")], 12)


def test_dockerfile_gpu_installs_the_extra_of_its_base_images_cuda_major():
    text = (REPO / "Dockerfile.gpu").read_text()
    [image] = re.findall(r"^ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.", text, flags=re.M)
    installed = re.findall(r"pip install [^\n]*\[(gpu-cu\d+)\]", text)
    assert installed == [f"gpu-cu{image}"], installed
    assert brings_nvrtc(extras()[installed[0]], int(image))
