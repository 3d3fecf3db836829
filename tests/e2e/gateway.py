"""A real ``s4 serve`` process on loopback, and the real clients that talk to it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "S4TESTKEY0000000001"
SECRET_KEY = "s4-test-secret-key-not-for-production"
START_TIMEOUT = 30


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s4 test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclasses.dataclass
class Gateway:
    process: subprocess.Popen
    endpoint: str
    data_dir: Path
    ca_bundle: Path | None
    home: Path
    output: list[str] = dataclasses.field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def client_env(self, secret: str = SECRET_KEY) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=secret,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(self.home / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "aws-credentials"),
            HOME=str(self.home),
        )
        if self.ca_bundle is not None:
            env["AWS_CA_BUNDLE"] = str(self.ca_bundle)
        return env

    def aws(self, *args: object, secret: str = SECRET_KEY, check: bool = True, timeout: int = 300):
        """Run the real aws-cli against the gateway."""
        cmd = [sys.executable, "-m", "awscli", "--endpoint-url", self.endpoint, *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, env=self.client_env(secret), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(map(str, args))} failed: {result.stderr.decode()}")
        return result

    def client(self, secret: str = SECRET_KEY, **config):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            verify=str(self.ca_bundle) if self.ca_bundle else None,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_gateway(
    tmp: Path,
    tls: bool = False,
    extra_args: tuple[str, ...] = (),
    env_credentials: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Gateway:
    """Start ``s4 serve`` exactly as ``make serve`` does, on a free port, and wait for its endpoint line."""
    tmp.mkdir(parents=True, exist_ok=True)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    # The access log goes to a file: on stdout it would bury the test output.
    args = [
        sys.executable,
        "-m",
        "s4",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(tmp / "data"),
        "--access-log",
        str(tmp / "access.log"),
        *extra_args,
    ]
    ca = None
    if tls:
        cert, key = make_certificate(tmp)
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
        ca = cert
    env = {k: v for k, v in os.environ.items() if k not in ("S4_ACCESS_KEY_ID", "S4_SECRET_ACCESS_KEY")}
    env["PYTHONUNBUFFERED"] = "1"
    # One worker process unless a test asks for more (--workers, S4_WORKERS): the suite starts a hundred
    # gateways on a 2-core CI machine, and a second worker per gateway only doubles their start-up cost;
    # tests/e2e/test_workers.py, the savings ledger's and the cluster's tests run several on purpose.
    env.setdefault("S4_WORKERS", "1")
    if env_credentials:
        env.update(S4_ACCESS_KEY_ID=ACCESS_KEY, S4_SECRET_ACCESS_KEY=SECRET_KEY)
    env.update(extra_env or {})
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump(stream) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            lines.put(line)
            output.append(line)
            sys.stderr.write("[s4] " + line)

    for stream in (process.stdout, process.stderr):
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    deadline = dt.datetime.now() + dt.timedelta(seconds=START_TIMEOUT)
    while dt.datetime.now() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                raise RuntimeError(f"s4 serve exited with {process.returncode}") from None
            continue
        if line.startswith("endpoint: "):
            return Gateway(process, line.split(" ", 1)[1].strip(), tmp / "data", ca, home, output)
    process.kill()
    raise RuntimeError("s4 serve did not print its endpoint in time")
