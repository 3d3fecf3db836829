"""A mixed S3 workload through the load balancer that counts every error and remembers every byte.

boto3 threads (PUT, GET, ranged GET, HEAD, LIST, DELETE, multipart uploads) and an aws-cli
thread (``s3 cp`` up, above aws-cli's multipart threshold too, and down, ``s3api head-object``,
``s3 ls``) run until stopped. Neither retries on its own (botocore ``total_max_attempts`` 1,
``AWS_MAX_ATTEMPTS`` 1): the workload retries each operation itself, so every failed attempt is an error a client saw,
counted with its code, and the operation goes on until it succeeds (or a deadline passes).
Each thread owns its keys, so the ledger of what must be stored is exact; ``verify()`` reads
every object back and compares SHA-256 digests. A GET that answers wrong bytes is a lost object,
not an error.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import random
import threading
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from tests.cluster.topology import Cluster

MiB = 1024 * 1024
PART = 5 * MiB
SIZES = (1024, 40_000, 300_000, 2 * MiB)
RETRY_DEADLINE_S = 120.0


def body_of(rng: random.Random, size: int) -> bytes:
    """Half compressible (a repeated random block), half random: both paths of the gateway."""
    if rng.random() < 0.5:
        block = rng.randbytes(512)
        return (block * (size // 512 + 1))[:size]
    return rng.randbytes(size)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(exc: BaseException) -> str:
    """What the client saw: the S3 code (with HTTP status), or the transport failure's class."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{status} {error.get('Code') or '?'}"
    return type(exc).__name__


class CliError(RuntimeError):
    """aws-cli exited non-zero; the message is its error, shortened."""


class Mismatch(Exception):
    """A read answered other bytes than the ledger says were stored."""


@dataclasses.dataclass
class Attempt:
    at: float
    client: str
    op: str
    error: str | None


class Ledger:
    """What must be stored: (bucket, key) to SHA-256 and size; attempts made, errors and mismatches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], tuple[str, int]] = {}
        self.attempts: list[Attempt] = []
        self.mismatches: list[str] = []
        self.abandoned: list[str] = []
        """Operations whose retries ran out: their object may hold either version."""
        self.uncertain: dict[tuple[str, str], set[str | None]] = {}

    def record(self, client: str, op: str, error: str | None) -> None:
        with self.lock:
            self.attempts.append(Attempt(time.monotonic(), client, op, error))

    def stored(self, bucket: str, key: str, data: bytes) -> None:
        with self.lock:
            self.objects[(bucket, key)] = (digest(data), len(data))

    def deleted(self, bucket: str, key: str) -> None:
        with self.lock:
            self.objects.pop((bucket, key), None)

    def expected(self, bucket: str, key: str) -> tuple[str, int] | None:
        with self.lock:
            return self.objects.get((bucket, key))


class Stop(Exception):
    pass


class Workload:
    """``boto3_threads`` boto3 clients and ``cli_threads`` aws-cli runners on ``bucket``, until ``stop()``."""

    def __init__(
        self,
        cluster: Cluster,
        bucket: str,
        directory: Path,
        boto3_threads: int = 4,
        cli_threads: int = 1,
        seed: int = 19,
        multipart_every: int = 12,
    ) -> None:
        self.cluster = cluster
        self.bucket = bucket
        self.directory = directory
        self.boto3_threads = boto3_threads
        self.cli_threads = cli_threads
        self.seed = seed
        self.multipart_every = multipart_every
        self.ledger = Ledger()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.boto3_threads):
            self._spawn(f"boto3-{i}", self._boto3_loop, i)
        for i in range(self.cli_threads):
            self._spawn(f"awscli-{i}", self._cli_loop, i)

    def _spawn(self, name: str, target, index: int) -> None:
        def run() -> None:
            try:
                target(name, index)
            except Stop:
                pass
            except BaseException as exc:
                self.failures.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout: float = 180) -> None:
        """Let every operation under way finish (retrying as needed), then stop."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
        if self.failures:
            raise self.failures[0]

    def retry(self, client: str, op: str, call):
        """``call()`` until it succeeds; every failure is recorded as an error the client saw."""
        deadline = time.monotonic() + RETRY_DEADLINE_S
        delay = 0.1
        while True:
            try:
                result = call()
            except Mismatch as exc:
                with self.ledger.lock:
                    self.ledger.mismatches.append(f"{client} {op}: {exc}")
                self.ledger.record(client, op, "mismatch")
                return None
            except (ClientError, BotoCoreError, OSError, CliError) as exc:
                self.ledger.record(client, op, error_code(exc))
                if time.monotonic() > deadline:
                    with self.ledger.lock:
                        self.ledger.abandoned.append(f"{client} {op}: {error_code(exc)}")
                    raise Stop from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.ledger.record(client, op, None)
            return result

    # -- boto3 ------------------------------------------------------------------------------------

    def _boto3_loop(self, name: str, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        s3 = self.cluster.client()
        keys: list[str] = []
        n = 0
        while not self.stopping.is_set():
            n += 1
            roll = rng.random()
            if n % self.multipart_every == 0:
                self._multipart(name, s3, rng, f"{name}/mpu{n}", keys)
            elif not keys or roll < 0.40:
                key = rng.choice(keys) if keys and rng.random() < 0.3 else f"{name}/obj{n}"
                self._put(name, s3, rng, key, keys)
            elif roll < 0.65:
                self._get(name, s3, rng.choice(keys))
            elif roll < 0.75:
                self._ranged_get(name, s3, rng, rng.choice(keys))
            elif roll < 0.82:
                key = rng.choice(keys)
                self.retry(name, "HeadObject", lambda key=key: self._head(s3, key))
            elif roll < 0.90:
                self.retry(name, "ListObjectsV2", lambda: s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{name}/"))
            else:
                key = keys.pop(rng.randrange(len(keys)))
                self.retry(name, "DeleteObject", lambda key=key: s3.delete_object(Bucket=self.bucket, Key=key))
                self.ledger.deleted(self.bucket, key)

    def _put(self, name: str, s3, rng: random.Random, key: str, keys: list[str]) -> None:
        data = body_of(rng, rng.choice(SIZES))
        self.retry(name, "PutObject", lambda: s3.put_object(Bucket=self.bucket, Key=key, Body=data))
        self.ledger.stored(self.bucket, key, data)
        if key not in keys:
            keys.append(key)

    def _read_checked(self, s3, key: str, **extra) -> bytes:
        data = s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        return data

    def _get(self, name: str, s3, key: str) -> None:
        expected = self.ledger.expected(self.bucket, key)

        def call() -> None:
            data = self._read_checked(s3, key)
            if expected and digest(data) != expected[0]:
                raise Mismatch(f"GET {key}: {len(data)} bytes, sha256 {digest(data)[:12]}, expected {expected}")

        self.retry(name, "GetObject", call)

    def _ranged_get(self, name: str, s3, rng: random.Random, key: str) -> None:
        expected = self.ledger.expected(self.bucket, key)
        if expected is None or expected[1] < 2:
            return
        size = expected[1]
        start = rng.randrange(size - 1)
        end = min(size - 1, start + rng.randrange(1, 200_000))

        def call() -> None:
            part = self._read_checked(s3, key, Range=f"bytes={start}-{end}")
            if len(part) != end - start + 1:
                raise Mismatch(f"GET {key} bytes={start}-{end}: {len(part)} bytes")

        self.retry(name, "GetObject(range)", call)

    def _head(self, s3, key: str) -> None:
        expected = self.ledger.expected(self.bucket, key)
        length = s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        if expected and length != expected[1]:
            raise Mismatch(f"HEAD {key}: {length} bytes, expected {expected[1]}")

    def _multipart(self, name: str, s3, rng: random.Random, key: str, keys: list[str]) -> None:
        """Create, three parts (5 MiB, 5 MiB, the rest), Complete: each step retried on its own."""
        parts = [body_of(rng, PART), body_of(rng, PART), body_of(rng, rng.randrange(1, 500_000))]
        upload = self.retry(
            name, "CreateMultipartUpload", lambda: s3.create_multipart_upload(Bucket=self.bucket, Key=key)
        )["UploadId"]
        done = []
        for number, data in enumerate(parts, 1):
            response = self.retry(
                name,
                "UploadPart",
                lambda number=number, data=data: s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
                ),
            )
            done.append({"PartNumber": number, "ETag": response["ETag"]})
        self.retry(
            name,
            "CompleteMultipartUpload",
            lambda: s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
            ),
        )
        self.ledger.stored(self.bucket, key, b"".join(parts))
        keys.append(key)

    # -- aws-cli ----------------------------------------------------------------------------------

    def _cli_loop(self, name: str, index: int) -> None:
        rng = random.Random(self.seed * 7919 + index)
        home = self.directory / name
        home.mkdir(parents=True, exist_ok=True)
        n = 0
        while not self.stopping.is_set():
            n += 1
            # Every fourth file is past aws-cli's 8 MiB multipart threshold: a multipart upload.
            size = 9 * MiB if n % 4 == 0 else rng.choice(SIZES)
            data = body_of(rng, size)
            source = home / f"up{n}"
            source.write_bytes(data)
            key = f"{name}/file{n}"
            self.retry(name, "aws s3 cp (up)", lambda key=key, source=source: self._aws(home, "s3", "cp", source, key))
            self.ledger.stored(self.bucket, key, data)
            source.unlink()
            target = home / f"down{n}"

            def download(key=key, target=target, data=data) -> None:
                self._aws(home, "s3", "cp", key, target)
                got = target.read_bytes()
                if digest(got) != digest(data):
                    raise Mismatch(f"aws s3 cp {key}: {len(got)} bytes, sha256 differs")

            self.retry(name, "aws s3 cp (down)", download)
            target.unlink(missing_ok=True)
            self.retry(name, "aws s3api head-object", lambda key=key: self._aws(home, "s3api", "head-object", key))
            if n % 3 == 0:
                self.retry(name, "aws s3 ls", lambda: self._aws(home, "s3", "ls", f"{name}/"))

    def _aws(self, home: Path, group: str, command: str, *args) -> None:
        def url(value) -> str:
            return f"s3://{self.bucket}/{value}" if isinstance(value, str) and "/" in value else str(value)

        if group == "s3api":
            argv = [group, command, "--bucket", self.bucket, "--key", args[0]]
        else:
            argv = [group, command, *map(url, args)]
            if command == "ls":
                argv = [group, command, f"s3://{self.bucket}/{args[0]}"]
        result = self.cluster.aws(home, *argv)
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip().splitlines()
            raise CliError(_cli_error(message[-1] if message else f"exit {result.returncode}"))

    # -- afterwards -------------------------------------------------------------------------------

    def verify(self) -> dict[str, object]:
        """Every object the ledger holds, read back through the load balancer (with SDK retries).

        Keys under ``probe/`` are the drills' own (is the topology serving?) and not counted.
        """
        s3 = self.cluster.client(max_attempts=8)
        listed: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            listed.update(o["Key"] for o in page.get("Contents", []))
        expected = {key: value for (bucket, key), value in self.ledger.objects.items() if bucket == self.bucket}
        lost = []
        for key, (sha, size) in sorted(expected.items()):
            if key not in listed:
                lost.append(f"{key}: not listed")
                continue
            data = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            if digest(data) != sha:
                lost.append(f"{key}: {len(data)} bytes read, {size} stored, digests differ")
        resurrected = sorted(key for key in listed - set(expected) if not key.startswith("probe/"))
        return {
            "objects": len(expected),
            "bytes": sum(size for _, size in expected.values()),
            "lost": lost,
            "unexpected": resurrected,
            "mismatched_reads": list(self.ledger.mismatches),
            "abandoned": list(self.ledger.abandoned),
        }

    def summary(self, since: float | None = None, until: float | None = None) -> dict[str, object]:
        """Attempts and errors (by code and by operation), between two monotonic times if given."""
        chosen = [
            a for a in self.ledger.attempts if (since is None or a.at >= since) and (until is None or a.at <= until)
        ]
        errors = [a for a in chosen if a.error is not None]
        return {
            "requests": len(chosen),
            "errors": len(errors),
            "errors_by_code": dict(collections.Counter(a.error for a in errors).most_common()),
            "errors_by_op": dict(collections.Counter(a.op for a in errors).most_common()),
            "requests_by_client": dict(collections.Counter(a.client.split("-")[0] for a in chosen)),
        }

    def last_error_after(self, moment: float) -> float | None:
        times = [a.at for a in self.ledger.attempts if a.error is not None and a.at >= moment]
        return max(times) if times else None


def _cli_error(line: str) -> str:
    """aws-cli's last stderr line, shortened to what the error counts group by."""
    for marker in ("An error occurred (", "Could not connect", "Connection was closed", "Read timeout"):
        at = line.find(marker)
        if at >= 0:
            if marker == "An error occurred (":
                return "awscli " + line[at + len(marker) :].split(")", 1)[0]
            return "awscli " + marker
    return "awscli " + line[:80]
