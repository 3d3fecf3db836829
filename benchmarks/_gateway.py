"""A real ``s4 serve`` process on 127.0.0.1 for benchmarks (trimmed from tests/e2e/gateway.py).

The benchmarks measure the gateway as users run it: a separate process, reached over
loopback HTTP with boto3. Its log is kept (not echoed) so a table is not interleaved
with server lines, and shown only when something went wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "S4BENCHKEY000000001"
SECRET_KEY = "s4-bench-secret-key-not-for-production"
REGION = "us-east-1"
START_TIMEOUT = 30


@dataclasses.dataclass
class Gateway:
    name: str
    process: subprocess.Popen
    endpoint: str
    data_dir: Path
    output: list[str] = dataclasses.field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.endpoint.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def client(self):
        """One boto3 client; no retries, so a failing request shows instead of being hidden."""
        return client_of(self.endpoint)

    def proc_status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` size field (VmHWM, VmRSS) in bytes: peak RSS is read from outside."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{field} not in /proc/{self.process.pid}/status")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the gateway's processes: the supervisor and its workers."""
        return tree_cpu_seconds(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def problems(self) -> list[str]:
        """Server log lines that say something went wrong (the bench reports them verbatim)."""
        marks = ("ERROR", "WARNING", "Traceback", "Error", "CRITICAL")
        return [line.rstrip() for line in self.output if any(m in line for m in marks)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def client_of(endpoint: str):
    """A boto3 client of the gateway at ``endpoint`` (also in client processes, which have only the
    endpoint); no retries, so a failing request shows instead of being hidden."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=16),
    )


def start_gateway(
    tmp: Path, name: str, extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
) -> Gateway:
    """Start ``python -m s4 serve`` on a free loopback port and wait for its ``endpoint:`` line."""
    tmp = tmp.resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "data"
    args = [sys.executable, "-m", "s4", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S4_", "AWS_"))}
    env.update(PYTHONUNBUFFERED="1", S4_ACCESS_KEY_ID=ACCESS_KEY, S4_SECRET_ACCESS_KEY=SECRET_KEY)
    env.update(extra_env or {})
    # Run from the gateway's own directory: ``python -m`` puts the working directory first on sys.path,
    # so started from the repository it imported the repository's s4 whatever PYTHONPATH named (every
    # --trees comparison measured one tree against itself). From here, PYTHONPATH decides, and without
    # it the environment's installed s4.
    process = subprocess.Popen([*args, *extra_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump(stream) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            lines.put(line)
            output.append(line)

    for stream in (process.stdout, process.stderr):
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                raise RuntimeError(f"s4 serve exited with {process.returncode}: {''.join(output)}") from None
            continue
        if line.startswith("endpoint: "):
            return Gateway(name, process, line.split(" ", 1)[1].strip(), data_dir, output)
    process.kill()
    raise RuntimeError(f"s4 serve did not print its endpoint in {START_TIMEOUT}s: {''.join(output)}")


# --- the gateway's CPU, read from outside ------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from ``/proc/<pid>/task/*/children``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in children.read_text().split()]
    return found


def tree_cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU seconds of a process (and its live descendants), from ``/proc/<pid>/stat``."""
    total = 0
    for member in process_tree(pid) if descendants else [pid]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / os.sysconf("SC_CLK_TCK")
