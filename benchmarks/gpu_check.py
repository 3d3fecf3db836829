#!/usr/bin/env python3
"""``make gpu-check``: the first contact of the nvCOMP pool with a GPU, every figure in one file (issue 17).

On a machine with an NVIDIA GPU, in about five minutes:

1. reads the driver's CUDA version (nvidia-smi, else libcuda itself) and picks the extra: gpu-cu12 / gpu-cu13;
2. installs what is missing: from a wheel bundle in ``.whl/`` when there is one (machines with no network:
   the device machines of this workplace reach no registry), else ``pip install -e '.[gpu-cuNN,dev]'``;
3. ``s4 doctor --require-gpu`` (driver, CuPy, nvCOMP, NVRTC; a round trip per nvCOMP codec);
4. ``pytest -m gpu tests/gpu`` (with ``S4_GPU_ANSWERS``: what nvCOMP did with our own out arrays, a corrupt
   chunk and a 64 KiB chunk's capacity);
5. ``s4 bench gpu --json`` (through the pool at 1-64 concurrent requests, kernels alone, pinned PCIe copies,
   cpu-zstd on every core, the 64 KiB-64 MiB frame sweep);
6. 1 GiB PUT and GET with aws-cli through ``s4 serve --codec nvcomp-zstd --gpu on`` (bytes compared, the
   gateway's ``s4_gpu_*`` metrics kept), then the stored object read back on the CPU: its frames counted by
   codec and checked (``s4 inspect``'s code) and decoded by ``s4 decode`` with no GPU visible.

Each step has a cap (STEP_CAPS) inside one --budget (300 s); a step that overruns is recorded as timed out
(with what it printed) and the next one still runs.

Everything lands in ``--out`` (default ``$OUT``, else /tmp/s4-gpu-check): ``gpu-check.json`` (every figure),
``gpu-check.md`` (the summary) and ``gpu-check.log`` (each step's output). Exit status: 0 every step passed;
1 a step failed (the figures are still written); 2 the libraries could not be installed; 3 no usable GPU here
(says why, installs and runs nothing).

Wheels for a machine with no network, built where pip reaches PyPI (``make gpu-wheels``)::

    python3 benchmarks/gpu_check.py --bundle-wheels --cuda 13      # -> .whl/s4-gpu-cu13-py312.tar.xz

The bundle holds what this workplace's H200 image lacks (its Python 3.12 has CuPy 14 for CUDA 13 and the
NVRTC wheel): nvCOMP and the gateway's, tests' and aws-cli's dependencies, under 64 MiB once slimmed
(botocore's service models but S3's, aws-cli's help examples, nvCOMP's bindings for other Pythons) and
recompressed. ``--with-cupy`` adds CuPy and NVRTC for other hosts.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / ".whl"
EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_NO_GPU = 0, 1, 2, 3
GiB = 1024**3
MiB = 1024**2
NVCOMP_VERSION = "6.0.0.12"
IMPORTS = ("cupy", "nvidia.nvcomp", "zstandard", "pydantic", "awscrt", "defusedxml", "boto3", "awscli", "yaml")
IMPORTS += ("aiohttp", "prometheus_client", "pytest")
"""What the gateway, its GPU tests and aws-cli import."""
BUNDLE = ["zstandard", "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "awscrt", "defusedxml"]
BUNDLE += ["typing-extensions", "boto3", "botocore", "s3transfer", "jmespath", "awscli", "docutils", "rsa", "pyasn1"]
"""Distributions of the wheel bundle besides nvCOMP: what the H200 image lacks (its package list:
/work/.library/device/KINDS.md), with no dependency it already has (aiohttp, PyYAML, urllib3, ...)."""
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64")
PLATFORMS += ("manylinux2014_x86_64", "manylinux1_x86_64")
STEP_CAPS = {"install": 90, "doctor": 60, "pytest": 120, "bench": 150, "put-get": 90}
"""Seconds each step may take at most; all of them share --budget."""
ACCESS_KEY, SECRET_KEY = "S4GPUCHECK000000001", "s4-gpu-check-secret-not-for-production"


# --- the GPU -------------------------------------------------------------------------------------------------


def parse_nvidia_smi(header: str, query: str) -> dict[str, Any]:
    """The driver's CUDA version (nvidia-smi's banner) and each GPU (``--query-gpu=name,driver_version,...``)."""
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header)
    gpus = []
    for line in query.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0]:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return {
        "cuda": f"{found.group(1)}.{found.group(2)}" if found else None,
        "cuda_major": int(found.group(1)) if found else None,
        "gpus": gpus,
    }


def _libcuda() -> dict[str, Any]:
    """The same, from libcuda.so.1 itself, where nvidia-smi is not installed."""
    lib = ctypes.CDLL("libcuda.so.1")
    version, count = ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDriverGetVersion(ctypes.byref(version))
    if lib.cuInit(0) == 0:
        lib.cuDeviceGetCount(ctypes.byref(count))
    major, minor = version.value // 1000, version.value % 1000 // 10
    return {"cuda": f"{major}.{minor}", "cuda_major": major, "gpus": [{"name": "?"}] * count.value}


def find_gpu(nvidia_smi: str | None) -> tuple[dict[str, Any] | None, str]:
    """The GPUs and the driver's CUDA here, or None and why not."""
    if nvidia_smi:
        try:
            banner = subprocess.run([nvidia_smi], capture_output=True, text=True, timeout=60)
            query = subprocess.run(
                [nvidia_smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"no GPU here: {nvidia_smi} did not answer ({exc})"
        if banner.returncode != 0:
            said = (banner.stdout + banner.stderr).strip().splitlines()
            return None, f"no GPU here: nvidia-smi says: {said[-1] if said else f'exit {banner.returncode}'}"
        info = parse_nvidia_smi(banner.stdout, query.stdout if query.returncode == 0 else "")
    else:
        try:
            info = _libcuda()
        except OSError:
            return (
                None,
                "no GPU here: nvidia-smi is not installed and libcuda.so.1 (the NVIDIA driver) cannot be loaded",
            )
    if not info["gpus"]:
        return None, "no GPU here: the NVIDIA driver lists no device"
    if info["cuda_major"] not in (12, 13):
        return None, f"no usable GPU here: the driver runs CUDA {info['cuda']}; the gpu extras need CUDA 12 or 13"
    return info, ""


# --- installing ----------------------------------------------------------------------------------------------


def missing_imports(python: str, env: dict[str, str]) -> list[str]:
    code = (
        "import importlib.util, json\n"
        "def there(name):\n"
        "    try:\n"
        "        return importlib.util.find_spec(name) is not None\n"
        "    except ImportError:\n"
        "        return False\n"
        f"print(json.dumps([m for m in {list(IMPORTS)!r} if not there(m)]))"
    )
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return json.loads(r.stdout) if r.returncode == 0 else list(IMPORTS)


def bundled_wheels(work: Path, major: int, python_tag: str) -> list[Path]:
    """Wheels carried in .whl/: loose ones, and those of the bundle of this CUDA major and Python (``312``)."""
    wheels = sorted(WHEELS.glob("*.whl"))
    for bundle in sorted(WHEELS.glob(f"s4-gpu-cu{major}-py{python_tag}.tar.xz")):
        with tarfile.open(bundle) as tar:
            tar.extractall(work, filter="data")
        wheels += sorted(work.glob("*.whl"))
    return [w for w in wheels if not re.search(r"cu(12|13)", w.name) or f"cu{major}" in w.name]


def install(python: str, major: int, env: dict[str, str], log: Log, work: Path) -> tuple[bool, str]:
    """Make every import of IMPORTS work, from the wheel bundle or from the index. Mutates ``env`` (PYTHONPATH)."""
    missing = missing_imports(python, env)
    if not missing:
        return True, "everything was already installed"
    log.write(f"missing: {' '.join(missing)}\n")
    tag = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    wheels = bundled_wheels(work / "wheels", major, tag)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
    if wheels:
        how = f"{len(wheels)} wheels from {WHEELS.name}/"
        r = log.run([*pip, "--no-index", "--no-deps", *map(str, wheels)], env=env, timeout=STEP_CAPS["install"])
        if r != 0:  # an environment we may not write to: a folder of our own on PYTHONPATH
            site = work / "site"
            how += f" into {site}"
            r = log.run([*pip, "--no-index", "--no-deps", "--target", str(site), *map(str, wheels)], env=env)
            env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    else:
        how = f"pip install -e '.[gpu-cu{major},dev]'"
        r = log.run([*pip, "-e", f"{REPO}[gpu-cu{major},dev]"], env=env, timeout=STEP_CAPS["install"])
    still = missing_imports(python, env)
    if still:
        hint = "" if wheels else f" (no network? build a bundle with `make gpu-wheels GPU_CUDA={major}` and carry .whl)"
        return False, f"{how}: still missing {' '.join(still)}{hint}"
    return True, how if r == 0 else f"{how} (pip reported an error, but every import works)"


# --- the steps -----------------------------------------------------------------------------------------------


class Log:
    """gpu-check.log: every command and its output, in order."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8", errors="replace")

    def write(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()

    def run(self, cmd: list[str], env: dict[str, str], timeout: float | None = None, cwd: Path = REPO) -> int:
        self.write(f"\n$ {' '.join(cmd)}\n")
        try:
            r = subprocess.run(cmd, stdout=self.file, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.write(f"[timed out after {timeout:.0f} s]\n")
            return 124
        self.write(f"[exit {r.returncode}]\n")
        return r.returncode

    def capture(self, cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
        """Run, keep stdout (returned) apart from stderr (logged)."""
        self.write(f"\n$ {' '.join(cmd)}\n")
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=self.file, env=env, cwd=REPO, timeout=timeout)
        except subprocess.TimeoutExpired as exc:  # what it printed so far is still a figure
            out = (exc.stdout or b"").decode(errors="replace")
            self.write(out[-20000:] + f"\n[timed out after {timeout:.0f} s]\n")
            return 124, out
        out = r.stdout.decode(errors="replace")
        self.write(out[-20000:] + f"\n[exit {r.returncode}]\n")
        return r.returncode, out


def step_doctor(python: str, env: dict[str, str], log: Log, timeout: float) -> dict[str, Any]:
    rc, out = log.capture([python, "-m", "s4", "doctor", "--json", "--require-gpu"], env, timeout)
    result: dict[str, Any] = {"ok": rc == 0, "exit": rc}
    with contextlib.suppress(ValueError):
        result["report"] = json.loads(out)
    return result


def step_pytest(python: str, env: dict[str, str], log: Log, timeout: float, out: Path) -> dict[str, Any]:
    answers = out / "answers.json"
    env = {**env, "S4_GPU_ANSWERS": str(answers)}
    cmd = [python, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rA", "-p", "no:cacheprovider"]
    rc, text = log.capture(cmd, env, timeout)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", last)}
    result: dict[str, Any] = {"ok": rc == 0 and counts.get("passed", 0) > 0, "exit": rc, "counts": counts}
    result["failed"] = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)
    if answers.exists():
        result["answers"] = json.loads(answers.read_text())
        answers.unlink()
    return result


def step_bench(python: str, env: dict[str, str], log: Log, timeout: float, extra: list[str]) -> dict[str, Any]:
    cmd = [python, "-m", "s4", "bench", "gpu", "--json", *extra]
    rc, out = log.capture(cmd, env, timeout)
    result: dict[str, Any] = {"ok": rc == 0, "exit": rc, "args": extra}
    with contextlib.suppress(ValueError):
        result["report"] = json.loads(out)
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def write_log_like(path: Path, size: int) -> None:
    """Compressible, not trivially so: 1 MiB of random log words, each MiB rotated differently."""
    rng = random.Random(1)
    words = [b"GET", b"PUT", b"/bucket/key", b"200", b"404", b"503", b"latency=%d" % rng.randrange(999), b"\n"]
    block = bytearray()
    while len(block) < MiB:
        block += rng.choice(words) + b" " + str(rng.randrange(10**6)).encode() + b" "
    block = bytes(block[:MiB])
    with path.open("wb") as f:
        for i in range(size // MiB):
            r = (i * 7919) % MiB
            f.write(block[r:] + block[:r])


def step_put_get(
    python: str, env: dict[str, str], log: Log, timeout: float, work: Path, size: int, gpu: str = "on"
) -> dict[str, Any]:
    """PUT and GET ``size`` bytes with aws-cli through ``s4 serve --codec nvcomp-zstd --gpu <gpu>``, then the
    stored object read back with no GPU visible. (``gpu="off"``: nvcomp-zstd on the CPU, for the tests here.)"""
    deadline = time.monotonic() + timeout
    data_dir, big, back = work / "data", work / "object.bin", work / "back.bin"
    write_log_like(big, size)
    result: dict[str, Any] = {"ok": False, "bytes": size}
    metrics_port = _free_port()
    serve_env = {**env, "S4_ACCESS_KEY_ID": ACCESS_KEY, "S4_SECRET_ACCESS_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    cmd = [python, "-m", "s4", "serve", "--port", "0", "--data-dir", str(data_dir), "--codec", "nvcomp-zstd"]
    cmd += ["--gpu", gpu, "--workers", "1", "--metrics-port", str(metrics_port), "--access-log", str(work / "a.log")]
    log.write(f"\n$ {' '.join(cmd)}\n")
    gateway = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=serve_env, cwd=REPO)
    endpoint: list[str] = []

    def pump() -> None:
        assert gateway.stdout is not None
        for raw in gateway.stdout:
            line = raw.decode(errors="replace")
            log.write("[s4] " + line)
            if line.startswith("endpoint: ") and not endpoint:
                endpoint.append(line.split(" ", 1)[1].strip())

    threading.Thread(target=pump, daemon=True).start()
    try:
        while not endpoint and gateway.poll() is None and time.monotonic() < deadline - 60:
            time.sleep(0.2)
        if not endpoint:
            result["error"] = f"s4 serve did not start (exit {gateway.poll()}); see gpu-check.log"
            return result
        aws_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        aws_env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(work / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(work / "aws-credentials"),
        )
        aws = [python, "-m", "awscli", "--endpoint-url", endpoint[0]]
        left = lambda: max(5.0, deadline - time.monotonic())  # noqa: E731
        if log.run([*aws, "s3", "mb", "s3://gpu-check"], aws_env, left()) != 0:
            result["error"] = "aws s3 mb failed"
            return result
        for name, args, dest in (
            ("put", [str(big), "s3://gpu-check/object.bin"], None),
            ("get", ["s3://gpu-check/object.bin", str(back)], back),
        ):
            start = time.perf_counter()
            rc = log.run([*aws, "s3", "cp", "--only-show-errors", *args], aws_env, left())
            seconds = time.perf_counter() - start
            result[f"{name}_seconds"] = round(seconds, 3)
            result[f"{name}_gbps"] = round(size / seconds / 1e9, 3)
            if rc != 0 or (dest is not None and not dest.exists()):
                result["error"] = f"aws s3 cp ({name}) failed"
                return result
        result["bytes_equal"] = _sha256(big) == _sha256(back)
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
                text = r.read().decode()
            result["metrics"] = [
                line
                for line in text.splitlines()
                if line.startswith(("s4_gpu", "s4_codec")) and "_created" not in line and " 0.0" not in line
            ][:200]
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(10)
        back.unlink(missing_ok=True)
    # The stored object, read back on the CPU: no GPU visible to these processes.
    cpu_env = {**env, "CUDA_VISIBLE_DEVICES": ""}
    stored = work / "stored"
    stored.mkdir(exist_ok=True)
    helper = [python, str(Path(__file__).resolve()), "--dump-stored", str(data_dir), "gpu-check", "object.bin"]
    rc, out = log.capture([*helper, str(stored)], cpu_env, max(10.0, deadline - time.monotonic()))
    with contextlib.suppress(ValueError):
        result["stored"] = json.loads(out)
    decoded = work / "decoded.bin"
    body, meta = stored / "body", stored / "meta.json"
    rc = log.run(
        [python, "-m", "s4", "decode", str(body), "--meta", str(meta), "-o", str(decoded)],
        cpu_env,
        max(10.0, deadline - time.monotonic()),
    )
    result["cpu_decode_equal"] = rc == 0 and decoded.exists() and _sha256(decoded) == _sha256(big)
    frames = result.get("stored", {}).get("frames_by_codec", {})
    result["ok"] = bool(result.get("bytes_equal") and result["cpu_decode_equal"] and frames.get("nvcomp-zstd", 0) > 0)
    for path in (decoded, big, body):
        path.unlink(missing_ok=True)
    return result


def dump_stored(data_dir: str, bucket: str, key: str, dest: str) -> int:
    """The stored body and metadata of an embedded store's object, and its frames checked on the CPU (JSON)."""
    import asyncio
    from collections import Counter

    from s4.codec import ChunkManifest, CodecRegistry
    from s4.store.filesystem import FilesystemStore
    from s4.tools.inspect import inspect_body

    out = Path(dest)

    async def read() -> dict[str, str]:
        store = await FilesystemStore.open(data_dir)
        try:
            stream = await store.get_object(bucket, key)
            try:
                with (out / "body").open("wb") as f:
                    async for chunk in stream.body:
                        f.write(chunk)
            finally:
                await stream.aclose()
            return dict(stream.info.attributes.metadata)
        finally:
            await store.close()

    metadata = asyncio.run(read())
    (out / "meta.json").write_text(json.dumps(metadata))
    report = inspect_body(out / "body", ChunkManifest.from_metadata(metadata), CodecRegistry.cpu_default())
    summary = {
        "stored_bytes": report.stored_size,
        "original_bytes": report.original_size,
        "frames_by_codec": dict(Counter(p.codec.wire_name for p in report.payloads)),
        "frames_checked_ok": sum(p.check == "ok" for p in report.payloads),
        "frames": len(report.payloads),
        "problems": report.problems[:10],
        "ok": report.ok and not report.unavailable,
    }
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


# --- figures -------------------------------------------------------------------------------------------------


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals on an H200, from the measured figures (None: not measured)."""
    bench = results.get("bench", {}).get("report") or {}
    pool = bench.get("pool", [])

    def best(codec: str, sample: str | None = None, concurrency: int | None = None) -> float | None:
        rows = [
            r
            for r in pool
            if r["codec"] == codec
            and (sample is None or r["sample"] == sample)
            and (concurrency is None or r["concurrency"] == concurrency)
        ]
        return max((r["compress_gbps"] for r in rows), default=None)

    zstd32 = best("nvcomp-zstd", concurrency=32)
    bitcomp = best("nvcomp-bitcomp", "int-column")
    sat = [s for s in bench.get("saturation", []) if s["codec"] == "nvcomp-zstd"]
    put_get = results.get("put-get", {})
    return {
        "nvcomp_zstd_gbps_32_requests": zstd32,
        "nvcomp_zstd_goal_10_gbps": None if zstd32 is None else zstd32 >= 10,
        "nvcomp_zstd_pct_of_kernel": max((s["compress_pct_of_kernel"] for s in sat), default=None),
        "bitcomp_int_column_gbps": bitcomp,
        "bitcomp_goal_30_gbps": None if bitcomp is None else bitcomp >= 30,
        "cpu_node_reads_nvcomp_zstd": put_get.get("cpu_decode_equal"),
        "gpu_batch_metrics": [m for m in put_get.get("metrics", []) if m.startswith("s4_gpu_batch")][:20],
    }


def summary(results: dict[str, Any]) -> str:
    lines = ["# make gpu-check", ""]
    gpu = results.get("gpu")
    lines.append(f"- GPU: {json.dumps(gpu) if gpu else results.get('reason')}")
    for name in ("install", "doctor", "pytest", "bench", "put-get"):
        step = results.get(name)
        if step is None:
            continue
        state = "ok" if step.get("ok") else ("skipped" if step.get("skipped") else "FAILED")
        lines.append(f"- {name}: {state} ({step.get('seconds', 0):.0f} s){_step_note(name, step)}")
    doctor = results.get("doctor", {}).get("report")
    if doctor:
        lines += ["", "## s4 doctor", ""]
        lines += [
            f"    {c['id']:>2} {c['name']:<16} {'runs' if c['runs'] else 'no'}: {c['detail']}" for c in doctor["codecs"]
        ]
    bench = results.get("bench", {}).get("report")
    if bench:
        lines += ["", f"## s4 bench gpu ({bench.get('device')}; GB/s of original bytes, compress / decompress)", ""]
        for r in bench.get("pool", []) + bench.get("frames", []):
            frame = f" {r['frame_size'] // 1024} KiB frames" if r.get("frame_size") else ""
            lines.append(
                f"    {r['sample']:<11} {r['codec']:<16} {r['concurrency']:>3} reqs{frame}: ratio {r['ratio']:.2f},"
                f" {r['compress_gbps']:.2f} / {r['decompress_gbps']:.2f}"
            )
        for k in bench.get("kernels", []):
            lines.append(
                f"    kernels alone {k['sample']:<11} {k['codec']:<16}"
                f" {k['compress_gbps']:.2f} / {k['decompress_gbps']:.2f}"
            )
        for c in bench.get("cpu", []):
            lines.append(
                f"    cpu-zstd {c['threads']} threads {c['sample']:<11}"
                f" {c['compress_gbps']:.2f} / {c['decompress_gbps']:.2f}"
            )
        lines.append(
            f"    pinned copies: host-to-device {bench.get('h2d_gbps')} GB/s,"
            f" device-to-host {bench.get('d2h_gbps')} GB/s"
        )
    answers = results.get("pytest", {}).get("answers")
    if answers:
        lines += ["", "## nvCOMP answers (tests/gpu)", "", "```", json.dumps(answers, indent=1), "```"]
    lines += ["", "## goals", "", "```", json.dumps(results.get("goals", {}), indent=1), "```"]
    return "\n".join(lines) + "\n"


def _step_note(name: str, step: dict[str, Any]) -> str:
    if name == "pytest":
        return f": {step.get('counts')} {step.get('failed') or ''}"
    if name == "put-get":
        keys = ("put_gbps", "get_gbps", "bytes_equal", "cpu_decode_equal", "error")
        return ": " + ", ".join(f"{k}={step[k]}" for k in keys if k in step)
    if name in ("install", "doctor") and step.get("detail"):
        return f": {step['detail']}"
    return ""


# --- the run -------------------------------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    out = Path(args.out or os.environ.get("OUT") or "/tmp/s4-gpu-check")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def finish(status: int) -> int:
        results["seconds"] = round(time.monotonic() - started, 1)
        results["exit"] = status
        results["goals"] = goals(results)
        (out / "gpu-check.json").write_text(json.dumps(results, indent=2, default=str))
        (out / "gpu-check.md").write_text(summary(results))
        print(summary(results))
        print(f"gpu-check: figures in {out / 'gpu-check.json'} (exit {status})", file=sys.stderr)
        return status

    gpu, reason = find_gpu(shutil.which("nvidia-smi"))
    results["gpu"] = gpu
    if gpu is None:
        results["reason"] = reason
        print(f"gpu-check: {reason}; nothing was installed or measured", file=sys.stderr)
        return finish(EXIT_NO_GPU)
    python = args.python or sys.executable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env["PYTHONUNBUFFERED"] = "1"
    log = Log(out / "gpu-check.log")
    deadline = started + args.budget
    with tempfile.TemporaryDirectory(prefix="s4-gpu-check-", dir=args.work) as tmp:
        work = Path(tmp)
        t = time.monotonic()
        ok, how = install(python, gpu["cuda_major"], env, log, work)
        results["install"] = {"ok": ok, "detail": how, "seconds": round(time.monotonic() - t, 1)}
        if not ok:
            print(f"gpu-check: could not install the gpu-cu{gpu['cuda_major']} extra: {how}", file=sys.stderr)
            return finish(EXIT_SETUP)
        steps = {
            "doctor": lambda s: step_doctor(python, env, log, s),
            "pytest": lambda s: step_pytest(python, env, log, s, out),
            "bench": lambda s: step_bench(python, env, log, s, args.bench_args.split()),
            "put-get": lambda s: step_put_get(python, env, log, s, work, args.put_get_mib * MiB),
        }
        for name, run in steps.items():
            if name in args.skip:
                results[name] = {"ok": True, "skipped": True}
                continue
            seconds = min(STEP_CAPS[name], deadline - time.monotonic())
            if seconds < 15:
                results[name] = {"ok": False, "skipped": True, "detail": "out of time (--budget)"}
                continue
            t = time.monotonic()
            log.write(f"\n===== {name} ({seconds:.0f} s at most) =====\n")
            try:
                results[name] = run(seconds)
            except Exception as exc:  # a step's own failure is a figure too; the others still run
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            results[name]["seconds"] = round(time.monotonic() - t, 1)
    failed = [n for n in steps if not results[n].get("ok")]
    results["failed_steps"] = failed
    return finish(EXIT_FAILED if failed else EXIT_OK)


# --- the wheel bundle ------------------------------------------------------------------------------------------


def _pinned(names: list[str]) -> list[str]:
    """Each distribution at the version this interpreter has (what the tests here passed with), else unpinned."""
    from importlib import metadata

    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


KEEP_SERVICES = frozenset({"s3", "sts", "sso", "sso-oidc"})
"""botocore's service models kept in the bundle: S3 and what credentials may need. The other 400-odd
(about 15 MB compressed) never load for ``boto3.client("s3")``; left in, the bundle does not fit the
64 MiB a device call carries. aws-cli's own copy stays whole: its customizations look services up by name."""


def _dropped(member: str, python_tag: str) -> bool:
    """What the bundle leaves out: aws-cli's help examples, botocore's unused service models, nvCOMP's
    bindings for other Pythons."""
    if member.startswith("awscli/examples/"):
        return True
    model = re.match(r"botocore/data/([^/]+)/", member)
    if model and model.group(1) not in KEEP_SERVICES:
        return True
    binding = re.match(r"nvidia/nvcomp/nvcomp_impl\.cpython-(\d+t?)-", member)
    return bool(binding and binding.group(1) != python_tag)


def _restored(wheel: Path, dest: Path, python_tag: str) -> Path:
    """The wheel slimmed (``_dropped``) with every member stored uncompressed, so xz compresses it once, well.
    pip installs such a wheel (it writes its own RECORD of what it installed)."""
    target = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            if not _dropped(item.filename, python_tag):
                dst.writestr(item, src.read(item), compress_type=zipfile.ZIP_STORED)
    return target


def bundle_wheels(args: argparse.Namespace) -> int:
    major, py = args.cuda, args.bundle_python
    names = [f"nvidia-nvcomp-cu{major}=={NVCOMP_VERSION}", f"nvidia-libnvcomp-cu{major}=={NVCOMP_VERSION}"]
    names += _pinned(BUNDLE)
    if args.with_cupy:
        names += [f"cupy-cuda{major}x>=14,<15", "cuda-pathfinder"]
        names += ["nvidia-cuda-nvrtc-cu12>=12,<13" if major == 12 else "nvidia-cuda-nvrtc>=13,<14"]
    WHEELS.mkdir(exist_ok=True)
    name = f"s4-gpu-cu{major}-py{py.replace('.', '')}"
    with tempfile.TemporaryDirectory() as tmp:
        raw, stored = Path(tmp) / "raw", Path(tmp) / "stored"
        stored.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(raw)]
        cmd += ["--python-version", py, "--implementation", "cp"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        print("$ " + " ".join(cmd + names), file=sys.stderr)
        if subprocess.run(cmd + names).returncode != 0:
            return EXIT_SETUP
        wheels = [_restored(w, stored, py.replace(".", "")) for w in sorted(raw.glob("*.whl"))]
        archive = WHEELS / f"{name}.tar.xz"
        xz = shutil.which("xz")
        with open(archive, "wb") as f:
            if xz:  # threaded, several times faster than Python's lzma
                tar = subprocess.Popen(["tar", "-C", str(stored), "-cf", "-", *[w.name for w in wheels]], stdout=-1)
                subprocess.run([xz, "-T0", "-6", "-c"], stdin=tar.stdout, stdout=f, check=True)
                tar.wait()
            else:
                with tarfile.open(fileobj=f, mode="w:xz", preset=6) as tar_xz:
                    for w in wheels:
                        tar_xz.add(w, arcname=w.name)
    listing = "\n".join(w.name for w in wheels)
    (WHEELS / f"{name}.txt").write_text(listing + "\n")
    size = archive.stat().st_size
    print(f"{archive}: {size / MiB:.1f} MiB, {len(wheels)} wheels\n{listing}", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder of gpu-check.json/.md/.log (default $OUT, else /tmp/s4-gpu-check)")
    parser.add_argument("--python", help="interpreter to install into and run with (default: this one)")
    parser.add_argument("--budget", type=float, default=300, help="seconds for all the steps together")
    parser.add_argument("--work", help="scratch folder (default: the system's temporary folder)")
    parser.add_argument("--put-get-mib", type=int, default=1024, help="size of the aws-cli PUT/GET object")
    parser.add_argument(
        "--bench-args",
        default="--max-mib 64 --rounds 1 --concurrency 1 8 32 64 --sweep-concurrency 32"
        " --sweep-codecs nvcomp-zstd nvcomp-bitcomp",
        help="arguments of s4 bench gpu",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(STEP_CAPS), help="steps left out")
    parser.add_argument("--bundle-wheels", action="store_true", help="build .whl/s4-gpu-cuNN-pyNN.tar.xz and stop")
    parser.add_argument("--cuda", type=int, choices=[12, 13], default=13, help="CUDA major of the bundle")
    parser.add_argument("--bundle-python", default="3.12", help="Python version of the bundle")
    parser.add_argument("--with-cupy", action="store_true", help="the bundle also holds CuPy and NVRTC")
    parser.add_argument("--dump-stored", nargs=4, metavar=("DATA_DIR", "BUCKET", "KEY", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump_stored:
        return dump_stored(*args.dump_stored)
    if args.bundle_wheels:
        return bundle_wheels(args)
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
