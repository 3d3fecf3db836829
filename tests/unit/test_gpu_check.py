"""``make gpu-check`` (benchmarks/gpu_check.py) where there is no GPU: it stops at once with exit 3 and says why,
and the parts that need none (nvidia-smi's answers, the aws-cli PUT/GET and the stored object read back on
the CPU, the goals from a bench report) run here for real.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
BANNER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+
"""


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_nvidia_smi(tmp_path: Path, banner: str, query: str = "", exit_code: int = 0) -> Path:
    """An nvidia-smi on PATH that answers like the real one (its banner, or its --query-gpu CSV)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "banner.txt").write_text(banner)
    (bin_dir / "query.txt").write_text(query)
    tool = bin_dir / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        f'case "$1" in --query-gpu*) cat "{bin_dir}/query.txt";; *) cat "{bin_dir}/banner.txt";; esac\n'
        f"exit {exit_code}\n"
    )
    tool.chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_without_a_gpu_it_says_so_at_once_and_exits_3(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: make gpu-check would run for real")
    start = time.monotonic()
    r = run_script(tmp_path, [])
    assert r.returncode == 3, r.stderr
    assert time.monotonic() - start < 30
    assert r.stderr.startswith("gpu-check: no GPU here: nvidia-smi is not installed and libcuda.so.1")
    assert "nothing was installed or measured" in r.stderr
    figures = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert figures["gpu"] is None and figures["exit"] == 3 and figures["reason"].startswith("no GPU here")
    assert "install" not in figures  # nothing was installed
    assert (tmp_path / "out" / "gpu-check.md").read_text().startswith("# make gpu-check")


@pytest.mark.parametrize(
    ("banner", "query", "exit_code", "said"),
    [
        ("No devices were found\n", "", 6, "no GPU here: nvidia-smi says: No devices were found"),
        (BANNER, "", 0, "no GPU here: the NVIDIA driver lists no device"),
        (BANNER.replace("13.0", "11.8"), "Tesla T4, 470.82.01, 15360 MiB\n", 0, "driver runs CUDA 11.8"),
    ],
)
def test_a_driver_without_a_usable_gpu_exits_3(tmp_path, banner, query, exit_code, said):
    r = run_script(tmp_path, [fake_nvidia_smi(tmp_path, banner, query, exit_code)])
    assert r.returncode == 3 and said in r.stderr, r.stderr


def test_nvidia_smi_picks_the_extra_of_the_drivers_cuda():
    gc = load()
    info = gc.parse_nvidia_smi(BANNER, "NVIDIA H200, 580.159.04, 143771 MiB\n")
    assert info == {
        "cuda": "13.0",
        "cuda_major": 13,
        "gpus": [{"name": "NVIDIA H200", "driver": "580.159.04", "memory": "143771 MiB"}],
    }
    assert gc.parse_nvidia_smi(BANNER.replace("13.0", "12.4"), "")["cuda_major"] == 12


def test_goals_come_from_the_bench_report():
    gc = load()
    pool = [
        {"sample": "text", "codec": "nvcomp-zstd", "concurrency": 32, "compress_gbps": 12.5},
        {"sample": "text", "codec": "nvcomp-zstd", "concurrency": 1, "compress_gbps": 2.0},
        {"sample": "int-column", "codec": "nvcomp-bitcomp", "concurrency": 64, "compress_gbps": 25.0},
    ]
    saturation = [{"sample": "text", "codec": "nvcomp-zstd", "compress_pct_of_kernel": 83.0}]
    results = {
        "bench": {"report": {"pool": pool, "saturation": saturation}},
        "put-get": {"cpu_decode_equal": True, "metrics": ["s4_gpu_batch_frames_sum 64.0", "s4_codec_x 1.0"]},
    }
    assert gc.goals(results) == {
        "nvcomp_zstd_gbps_32_requests": 12.5,
        "nvcomp_zstd_goal_10_gbps": True,
        "nvcomp_zstd_pct_of_kernel": 83.0,
        "bitcomp_int_column_gbps": 25.0,
        "bitcomp_goal_30_gbps": False,
        "cpu_node_reads_nvcomp_zstd": True,
        "gpu_batch_metrics": ["s4_gpu_batch_frames_sum 64.0"],
    }
    assert gc.goals({})["nvcomp_zstd_goal_10_gbps"] is None


def test_the_put_get_step_runs_here_with_nvcomp_zstd_on_the_cpu(tmp_path):
    """The same step the GPU run takes (aws-cli through s4 serve, the stored object read back and decoded on
    the CPU), with ``--gpu off``: nvcomp-zstd frames written by the CPU codec."""
    gc = load()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    log = gc.Log(tmp_path / "gpu-check.log")
    work = tmp_path / "work"
    work.mkdir()
    result = gc.step_put_get(sys.executable, env, log, 240, work, 24 * 1024 * 1024, gpu="off")
    assert result["ok"], (result, (tmp_path / "gpu-check.log").read_text()[-3000:])
    assert result["bytes_equal"] and result["cpu_decode_equal"]
    assert result["put_gbps"] > 0 and result["get_gbps"] > 0
    stored = result["stored"]
    assert stored["frames_by_codec"].get("nvcomp-zstd", 0) >= 1 and stored["frames_checked_ok"] == stored["frames"]
    assert stored["original_bytes"] == 24 * 1024 * 1024 > stored["stored_bytes"]
    assert any(m.startswith("s4_codec") for m in result["metrics"])
    assert not (work / "object.bin").exists()  # the scratch copies are gone


def fake_wheel(folder: Path, dist: str, module: str) -> Path:
    """A minimal pure wheel: one module, the dist-info pip needs."""
    import zipfile

    path = folder / f"{dist}-1.0-py3-none-any.whl"
    info = f"{dist}-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{module}/__init__.py", "VALUE = 17\n")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    return path


def test_what_is_missing_is_installed_from_the_carried_bundle_without_an_index(tmp_path):
    """As on a device machine (no registry): the bundle of the driver's CUDA major is unpacked and pip-installed
    with --no-index into the interpreter that runs the check; the other major's bundle is left alone."""
    import tarfile
    import venv

    gc = load()
    target = tmp_path / "venv"
    venv.create(target, system_site_packages=True)  # pip from the base interpreter, installing into this venv
    python = str(target / "bin" / "python")
    wheels = tmp_path / "carried"
    wheels.mkdir()
    for major in (12, 13):
        built = tmp_path / f"built{major}"
        built.mkdir()
        wheel = fake_wheel(built, f"s4fake{major}", f"s4fakemod{major}")
        with tarfile.open(
            wheels / f"s4-gpu-cu{major}-py{sys.version_info[0]}{sys.version_info[1]}.tar.xz", "w:xz"
        ) as tar:
            tar.add(wheel, arcname=wheel.name)
    (wheels / "s4-gpu-cu13-py30.tar.xz").write_bytes(b"not even a tar: another Python's bundle is never opened")
    gc.WHEELS, gc.IMPORTS = wheels, ("s4fakemod13", "json")
    env = {**os.environ, "PYTHONPATH": "", "PIP_NO_INDEX": "1"}
    log = gc.Log(tmp_path / "gpu-check.log")
    work = tmp_path / "work"
    work.mkdir()
    assert gc.missing_imports(python, env) == ["s4fakemod13"]
    ok, how = gc.install(python, 13, env, log, work)
    assert ok and how == "1 wheels from carried/", (how, (tmp_path / "gpu-check.log").read_text())
    assert gc.missing_imports(python, env) == []
    check = subprocess.run(
        [python, "-c", "import s4fakemod13; print(s4fakemod13.VALUE)"], capture_output=True, text=True
    )
    assert check.stdout.strip() == "17"
    assert subprocess.run([python, "-c", "import s4fakemod12"], capture_output=True).returncode != 0
    assert gc.install(python, 13, env, log, work) == (True, "everything was already installed")


def test_the_whole_run_on_a_simulated_gpu_records_every_step_and_exits_1(tmp_path, monkeypatch):
    """Every step runs for real here, where they fail (there is no GPU behind the simulated one): each failure is
    recorded with its reason, the figures files are written, the exit status is 1."""
    gc = load()
    gpu = {"cuda": "13.0", "cuda_major": 13, "gpus": [{"name": "Simulated H200", "driver": "580", "memory": "1 MiB"}]}
    monkeypatch.setattr(gc, "find_gpu", lambda _smi: (gpu, ""))
    monkeypatch.setattr(gc, "install", lambda *a: (True, "simulated: nothing installed"))
    out = tmp_path / "out"
    status = gc.main(["--out", str(out), "--work", str(tmp_path), "--put-get-mib", "8", "--budget", "280"])
    figures = json.loads((out / "gpu-check.json").read_text())
    assert status == 1 and figures["exit"] == 1
    assert figures["gpu"] == gpu and figures["install"]["ok"]
    assert figures["failed_steps"] == ["doctor", "pytest", "bench", "put-get"]
    assert figures["doctor"]["exit"] == 4 and figures["doctor"]["report"]["gpu"]["blocker"]
    assert figures["pytest"]["counts"].get("passed", 0) == 0 and figures["pytest"]["counts"]["skipped"] > 0
    assert figures["bench"]["exit"] == 3
    assert "s4 serve did not start" in figures["put-get"]["error"]
    summary = (out / "gpu-check.md").read_text()
    for step in ("install: ok", "doctor: FAILED", "pytest: FAILED", "bench: FAILED", "put-get: FAILED"):
        assert f"- {step}" in summary, summary
    assert "## s4 doctor" in summary
    log = (out / "gpu-check.log").read_text()
    assert "===== doctor" in log and "gpu is on, but no GPU can be used" in log
