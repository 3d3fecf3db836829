"""Failure drills on the scale-out topology, with a mixed workload running through the load balancer.

    python -m tests.cluster.drills [--seconds 20] [--out drills.json]     (make drills)

Each drill runs the workload (tests/cluster/workload.py) on a fresh bucket, breaks one part of
the deployment, brings it back, and reads every object the clients were told was stored:

- ``gateway``: one gateway (supervisor and workers) killed with SIGKILL and started again; a
  multipart upload begun on it goes on through the other gateway.
- ``volume``: one of the three volume servers killed; every object is read back while it is
  still down (replication ``001``), then it is started again.
- ``filer`` / ``s3``: ``weed filer`` (or ``weed s3``) killed and started again; meanwhile the
  gateways answer 503 (SlowDown / ServiceUnavailable) and their ``/ready`` says why, and they
  recover without being restarted.

Per drill: requests and errors the clients saw (by code), objects stored and lost (must be 0),
the outage, how long clients saw errors after the fault, and the time from the repair to the
whole topology serving again.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from tests.cluster.topology import Cluster, start_cluster, wait_until
from tests.cluster.workload import MiB, Workload, body_of, error_code

IN_FLIGHT_S = 3.0
"""Requests that fail within this long after the fault were in flight when it struck: any clean error will do."""


def service_unavailable(error: str) -> bool:
    """A 503 as the client saw it: SlowDown or ServiceUnavailable, or a bare 503 (a HEAD has no body)."""
    return error in ("503 SlowDown", "503 ServiceUnavailable", "503 503") or error in (
        "awscli SlowDown",
        "awscli ServiceUnavailable",
        "awscli 503",
    )


def wait_serving(cluster: Cluster, bucket: str, timeout: float = 120) -> float:
    """Monotonic time at which every gateway is ready, in the load balancer, and a write and read work."""
    s3 = cluster.client()

    def check() -> bool:
        if any(gateway.ready()[0] != 200 for gateway in cluster.gateways):
            return False
        if len(cluster.lb.up()) != len(cluster.gateways):
            return False
        try:
            s3.put_object(Bucket=bucket, Key="probe/serving", Body=b"serving")
            return s3.get_object(Bucket=bucket, Key="probe/serving")["Body"].read() == b"serving"
        except Exception:
            return False

    wait_until(check, timeout, "the topology serves again", interval=0.2)
    return time.monotonic()


class Drill:
    """One fault, its repair and what to look at meanwhile; ``run`` returns the report."""

    name = "drill"

    def __init__(self, cluster: Cluster, directory: Path, seconds: float, boto3_threads: int, cli_threads: int):
        self.cluster = cluster
        self.directory = directory
        self.seconds = seconds
        self.boto3_threads = boto3_threads
        self.cli_threads = cli_threads
        self.notes: dict[str, object] = {}

    def inject(self) -> None:
        raise NotImplementedError

    def during(self) -> None:
        """Observations while the fault holds (called right after ``inject``)."""

    def repair(self) -> None:
        raise NotImplementedError

    def run(self) -> dict[str, object]:
        bucket = f"drill-{self.name}-{int(time.time())}"
        setup = self.cluster.client(max_attempts=8)
        setup.create_bucket(Bucket=bucket)
        self.bucket = bucket
        workload = Workload(
            self.cluster, bucket, self.directory / self.name, self.boto3_threads, self.cli_threads, multipart_every=10
        )
        pids = {g.name: g.process.popen.pid for g in self.cluster.gateways}
        phases: dict[str, float] = {}
        workload.start()
        began = time.monotonic()
        time.sleep(self.seconds * 0.3)
        fault_at = time.monotonic()
        self.inject()
        phases["inject"] = time.monotonic() - fault_at
        self.during()
        phases["during"] = time.monotonic() - fault_at
        time.sleep(max(0.0, fault_at + self.seconds * 0.4 - time.monotonic()))
        repaired_at = time.monotonic()
        self.repair()
        serving_at = wait_serving(self.cluster, bucket)
        time.sleep(self.seconds * 0.3)
        stopping = time.monotonic()
        workload.stop()
        ended = time.monotonic()
        phases["workload_stop"] = ended - stopping
        verified = self.verify(workload)
        phases["verify"] = time.monotonic() - ended
        last_error = workload.last_error_after(fault_at)
        report: dict[str, object] = {
            "drill": self.name,
            "seconds": round(ended - began, 1),
            **workload.summary(),
            "errors_during_fault": workload.summary(fault_at, serving_at)["errors_by_code"],
            # Past the requests in flight at the fault (a response cut short cannot become a 503).
            "errors_after_in_flight": workload.summary(fault_at + IN_FLIGHT_S, serving_at)["errors_by_code"],
            "objects": verified["objects"],
            "bytes": verified["bytes"],
            "objects_lost": len(verified["lost"]) + len(verified["mismatched_reads"]),
            "lost": verified["lost"][:10],
            "mismatched_reads": verified["mismatched_reads"][:10],
            "unexpected_objects": verified["unexpected"][:10],
            "abandoned_operations": verified["abandoned"],
            "outage_s": round(repaired_at - fault_at, 2),
            "client_errors_for_s": round(last_error - fault_at, 2) if last_error else 0.0,
            "recovery_s": round(serving_at - repaired_at, 2),
            "gateways_restarted": sorted(g.name for g in self.cluster.gateways if g.process.popen.pid != pids[g.name]),
            **self.notes,
            "phases_s": {name: round(value, 1) for name, value in phases.items()},
        }
        return report

    def verify(self, workload: Workload) -> dict[str, object]:
        return workload.verify()


LB_TAKES_OUT_S = 5.0
"""Seconds from a gateway's death for the load balancer to mark it down (fall 2 x inter 1s, with room)."""


class GatewayDrill(Drill):
    """SIGKILL of gateway 0 (its supervisor: the workers die with it), then started again.

    Besides the workload, three things are under way on gateway 0 itself when it dies: a
    multipart upload (its first part stored), a PUT half sent and a GET half read. The two
    requests must fail (an error, never a partial object or a short read taken for whole), and
    succeed through the load balancer when retried; the upload goes on through gateway 1.
    """

    name = "gateway"

    def inject(self) -> None:
        victim = self.cluster.gateways[0]
        rng = random.Random(7)
        direct = self.cluster.client(endpoint=victim.endpoint)
        self.parts = [body_of(rng, 5 * MiB), b"tail of the upload" * 1000]
        upload = direct.create_multipart_upload(Bucket=self.bucket, Key="across-the-kill")["UploadId"]
        first = direct.upload_part(
            Bucket=self.bucket, Key="across-the-kill", UploadId=upload, PartNumber=1, Body=self.parts[0]
        )
        self.upload = upload
        self.etags = [first["ETag"]]
        # A GET and a PUT in flight on gateway 0: presigned, sent by hand, so they can stop halfway.
        self.big = body_of(rng, 12 * MiB)
        self.cluster.client(max_attempts=5).put_object(Bucket=self.bucket, Key="in-flight/read", Body=self.big)
        get_url = direct.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "in-flight/read"})
        put_url = direct.generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": "in-flight/write"})
        self.reading = _open(get_url, "GET")
        self.reading_response = self.reading.getresponse()
        self.head_bytes = self.reading_response.read(MiB)
        self.writing = _open(put_url, "PUT", len(self.big))
        self.writing.send(self.big[:MiB])
        victim.kill()

    def during(self) -> None:
        # The requests in flight: both must fail.
        outcomes = {}
        try:
            rest = self.reading_response.read()
            whole = self.head_bytes + rest
            # Whole and right: it had all left gateway 0 before the kill (http.client raises on a short body).
            outcomes["get"] = "completed before the kill" if whole == self.big else f"WRONG: {len(whole)} bytes"
        except (OSError, http.client.HTTPException) as exc:
            outcomes["get"] = f"failed: {type(exc).__name__}"
        try:
            self.writing.send(self.big[MiB:])
            status = self.writing.getresponse().status
            outcomes["put"] = f"WRONG: answered {status}"
        except (OSError, http.client.HTTPException) as exc:
            outcomes["put"] = f"failed: {type(exc).__name__}"
        s3 = self.cluster.client(max_attempts=5)
        try:
            s3.head_object(Bucket=self.bucket, Key="in-flight/write")
            outcomes["put"] += "; WRONG: an object was stored"
        except s3.exceptions.ClientError as exc:
            outcomes["put"] += f"; nothing stored ({error_code(exc)})"
        # Retried through the load balancer (gateway 1 only now): both succeed.
        s3.put_object(Bucket=self.bucket, Key="in-flight/write", Body=self.big)
        retried = s3.get_object(Bucket=self.bucket, Key="in-flight/read")["Body"].read() == self.big
        retried &= s3.get_object(Bucket=self.bucket, Key="in-flight/write")["Body"].read() == self.big
        outcomes["retried_through_lb"] = "bytes verified" if retried else "WRONG"
        self.notes["in_flight"] = outcomes
        # The rest of the upload through the load balancer, which has only gateway 1 left.
        second = s3.upload_part(
            Bucket=self.bucket, Key="across-the-kill", UploadId=self.upload, PartNumber=2, Body=self.parts[1]
        )
        self.etags.append(second["ETag"])
        s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key="across-the-kill",
            UploadId=self.upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(self.etags, 1)]},
        )
        data = s3.get_object(Bucket=self.bucket, Key="across-the-kill")["Body"].read()
        self.notes["multipart_across_kill"] = "completed, bytes verified" if data == b"".join(self.parts) else "WRONG"
        # HAProxy takes a dead server out after two failed checks a second apart (deploy/haproxy): the
        # requests above may all be done before that on a quiet machine, so give it LB_TAKES_OUT_S.
        with contextlib.suppress(TimeoutError):  # what it has then is the finding
            wait_until(lambda: "g0" not in self.cluster.lb.up(), LB_TAKES_OUT_S, "g0 out of `ready`", interval=0.2)
        self.notes["lb_ready_during_fault"] = sorted(self.cluster.lb.up())

    def repair(self) -> None:
        self.cluster.gateways[0].start()

    def verify(self, workload: Workload) -> dict[str, object]:
        workload.ledger.stored(self.bucket, "across-the-kill", b"".join(self.parts))
        workload.ledger.stored(self.bucket, "in-flight/read", self.big)
        workload.ledger.stored(self.bucket, "in-flight/write", self.big)
        return workload.verify()


def _open(url: str, method: str, length: int | None = None) -> http.client.HTTPConnection:
    """A request started by hand (headers sent; the body, if any, is for the caller to send)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.connect()
    # A small receive window: the gateway cannot push the whole response into the kernel before it dies.
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    connection.putrequest(method, f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    if length is not None:
        connection.putheader("Content-Length", str(length))
    connection.endheaders()
    return connection


class VolumeDrill(Drill):
    """SIGKILL of one of the volume servers; every object read back while it is down, then restarted."""

    name = "volume"

    def inject(self) -> None:
        self.cluster.seaweed.volumes[0].kill()

    def repair(self) -> None:
        # Kept down: verify() reads everything while it still is, then starts it.
        pass

    def verify(self, workload: Workload) -> dict[str, object]:
        self.notes["data_nodes_while_verifying"] = self.cluster.seaweed.data_nodes()
        verified = workload.verify()
        volume = self.cluster.seaweed.volumes[0]
        volume.start()
        wait_until(lambda: self.cluster.seaweed.data_nodes() == len(self.cluster.seaweed.volumes), 60, "volume rejoins")
        return verified


class UpstreamProcessDrill(Drill):
    """SIGKILL of ``weed filer`` or ``weed s3``; the gateways stay up, answer 503 and say why on /ready."""

    def __init__(self, *args, process: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.name = process
        self.process = getattr(self.cluster.seaweed, process)

    def inject(self) -> None:
        self.process.kill()

    def during(self) -> None:
        s3 = self.cluster.client()

        def not_ready() -> list[tuple[int, str]] | None:
            states = [gateway.ready() for gateway in self.cluster.gateways]
            return states if all(status == 503 for status, _ in states) else None

        states = wait_until(not_ready, 30, "every gateway's /ready answers 503")
        self.notes["ready_during_fault"] = sorted({body.strip()[:160] for _, body in states})
        wait_until(lambda: not self.cluster.lb.up(), 10, "the load balancer takes the gateways out of `ready`")
        answers = []
        for _ in range(3):
            try:
                s3.put_object(Bucket=self.bucket, Key="probe/during", Body=b"x")
                answers.append("200")
            except Exception as exc:
                answers.append(error_code(exc))
        self.notes["probe_answers_during_fault"] = answers

    def repair(self) -> None:
        self.process.start()


DRILLS: dict[str, Callable[..., Drill]] = {
    "gateway": GatewayDrill,
    "volume": VolumeDrill,
    "filer": lambda *a, **k: UpstreamProcessDrill(*a, process="filer", **k),
    "s3": lambda *a, **k: UpstreamProcessDrill(*a, process="s3", **k),
}


def run_drills(
    directory: Path, names: list[str], seconds: float, boto3_threads: int = 4, cli_threads: int = 1, gateways: int = 2
) -> list[dict[str, object]]:
    cluster = start_cluster(directory, gateways=gateways)
    try:
        return [
            DRILLS[name](cluster, directory / "workload", seconds, boto3_threads, cli_threads).run() for name in names
        ]
    finally:
        cluster.stop()


def table(reports: list[dict[str, object]]) -> str:
    lines = [
        "| drill | requests | client errors | objects (MiB) | lost | outage s | errors for s | recovery s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        lines.append(
            f"| {r['drill']} | {r['requests']} | {r['errors']} | {r['objects']} ({int(r['bytes']) / MiB:.0f}) |"
            f" {r['objects_lost']} | {r['outage_s']} | {r['client_errors_for_s']} | {r['recovery_s']} |"
        )
    return "\n".join(lines)


def passed(report: dict[str, object]) -> list[str]:
    """What is wrong with a drill's outcome (empty: it passed)."""
    problems = []
    if report["objects_lost"]:
        problems.append(f"{report['objects_lost']} objects lost")
    if report["abandoned_operations"]:
        problems.append(f"operations never succeeded: {report['abandoned_operations']}")
    if report["unexpected_objects"]:
        problems.append(f"deleted objects came back: {report['unexpected_objects']}")
    if report["drill"] != "gateway" and report["gateways_restarted"]:
        problems.append(f"gateways restarted: {report['gateways_restarted']}")
    if report["drill"] == "gateway" and report.get("multipart_across_kill") != "completed, bytes verified":
        problems.append("the multipart upload across the kill did not complete with its bytes")
    if "WRONG" in str(report.get("in_flight", "")):
        problems.append(f"requests in flight on the killed gateway: {report['in_flight']}")
    if report["drill"] in ("filer", "s3"):
        seen = set(report["errors_after_in_flight"]) | set(report.get("probe_answers_during_fault", []))
        other = sorted(error for error in seen if not service_unavailable(error))
        if other:
            problems.append(
                f"errors other than 503 SlowDown/ServiceUnavailable while {report['drill']} was down: {other}"
            )
        if not all(line.startswith("not ready:") for line in report.get("ready_during_fault", [])):
            problems.append(f"/ready did not say why: {report.get('ready_during_fault')}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--drills", default="gateway,volume,filer,s3")
    parser.add_argument("--seconds", type=float, default=30, help="length of each drill's workload")
    parser.add_argument("--boto3-threads", type=int, default=4)
    parser.add_argument("--cli-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="the reports as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the topology's directory (logs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="s4-drills-") as tmp:
        directory = Path(tmp)
        try:
            reports = run_drills(directory, args.drills.split(","), args.seconds, args.boto3_threads, args.cli_threads)
        finally:  # the logs of a drill that could not finish are the ones worth keeping
            if args.keep:
                kept = Path(tempfile.mkdtemp(prefix="s4-drills-kept-"))
                shutil.copytree(directory, kept, dirs_exist_ok=True)
                print(f"logs kept in {kept}")
    print(table(reports))
    failed = False
    for report in reports:
        print(f"\n{report['drill']}: " + json.dumps({k: v for k, v in report.items() if k != "drill"}, default=str))
        problems = passed(report)
        if problems:
            failed = True
            print(f"  FAILED: {'; '.join(problems)}")
    if args.out:
        args.out.write_text(json.dumps(reports, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
