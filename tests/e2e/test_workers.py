"""``s4 serve --workers 2`` (issue 16): two processes on one port behave as one gateway.

Each request goes out on a new connection, so the kernel (SO_REUSEPORT) picks a worker for it;
with 20 and more of them, the chance that one worker gets them all is below one in a million.
The access log's ``pid`` says which worker answered.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict

import boto3
import pytest
from botocore.config import Config

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY, start_gateway
from tests.e2e.raw import sign

MiB = 1024 * 1024


@pytest.fixture
def two(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"credentials:\n  - {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}}}\n")
    gw = start_gateway(tmp_path / "gw", extra_args=("--workers", "2", "--config", str(config)), env_credentials=False)
    gw.config_file = config
    yield gw
    gw.stop()


def fresh_client(gw, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
    """A client with a connection pool of its own: its first request is a new connection."""
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=1),
    )


def access_log(gw) -> list[dict]:
    path = gw.data_dir.parent / "access.log"
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def workers_of(gw) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(gw.process.pid)], capture_output=True, text=True)
    return sorted(int(pid) for pid in out.stdout.split())


def test_a_multipart_upload_spread_over_both_workers(two):
    s3 = fresh_client(two)
    s3.create_bucket(Bucket="spread")
    upload = fresh_client(two).create_multipart_upload(Bucket="spread", Key="big")["UploadId"]
    parts, data = [], []
    for number in range(1, 21):
        piece = hashlib.sha256(str(number).encode()).hexdigest().encode() * (5 * MiB // 64 + (number == 20))
        data.append(piece)
        etag = fresh_client(two).upload_part(
            Bucket="spread", Key="big", UploadId=upload, PartNumber=number, Body=piece
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    fresh_client(two).complete_multipart_upload(
        Bucket="spread", Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert fresh_client(two).get_object(Bucket="spread", Key="big")["Body"].read() == b"".join(data)
    served = defaultdict(set)
    for line in access_log(two):
        served[line["op"]].add(line["pid"])
    assert len(served["UploadPart"]) == 2, served  # both workers took parts of one upload
    completer = served["CompleteMultipartUpload"]
    assert len(completer) == 1 and served["UploadPart"] - completer  # parts the completing worker never saw


def test_metrics_count_every_request_of_both_workers(two):
    s3 = fresh_client(two)
    s3.create_bucket(Bucket="counted")
    for n in range(30):
        fresh_client(two).put_object(Bucket="counted", Key=f"k{n}", Body=b"x" * n)
    for n in range(30):
        fresh_client(two).head_object(Bucket="counted", Key=f"k{n}")
    pids = Counter(line["pid"] for line in access_log(two) if line["op"] in ("PutObject", "HeadObject"))
    assert len(pids) == 2, pids
    scrapes = []
    for _ in range(12):  # each scrape on a new connection: answered by either worker, the same totals
        conn = http.client.HTTPConnection("127.0.0.1", two.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        scrapes.append(
            {
                line.split(" ")[0]: float(line.split(" ")[1])
                for line in text.splitlines()
                if line.startswith("s4_requests_total{") and 'status="200"' in line
            }
        )
    for totals in scrapes:
        assert totals['s4_requests_total{op="PutObject",status="200"}'] == 30
        assert totals['s4_requests_total{op="HeadObject",status="200"}'] == 30
        assert totals['s4_requests_total{op="CreateBucket",status="200"}'] == 1


def test_a_worker_that_dies_is_replaced(two):
    s3 = fresh_client(two)
    s3.create_bucket(Bucket="phoenix")
    before = workers_of(two)
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = workers_of(two)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no new worker: {workers_of(two)}")
    for n in range(20):  # both workers answer; nothing was lost
        fresh_client(two).put_object(Bucket="phoenix", Key=f"k{n}", Body=b"y" * n)
    assert fresh_client(two).list_objects_v2(Bucket="phoenix")["KeyCount"] == 20


def test_sighup_reloads_credentials_in_every_worker(two):
    assert len(workers_of(two)) == 2
    new_key, new_secret = "S4RELOADEDKEY0000001", "reloaded-secret-00000000000000000000001"
    two.config_file.write_text(
        "credentials:\n"
        f"  - {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}}}\n"
        f"  - {{access_key_id: {new_key}, secret_access_key: {new_secret}}}\n"
    )
    os.kill(two.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    accepted = 0
    while accepted < 20 and time.monotonic() < deadline:  # 20 new connections in a row, over both workers
        try:
            fresh_client(two, new_key, new_secret).list_buckets()
            accepted += 1
        except Exception:
            accepted = 0
            time.sleep(0.2)
    assert accepted == 20
    two.config_file.write_text("credentials: [this is not a list of credentials")  # a bad file keeps the old
    os.kill(two.process.pid, signal.SIGHUP)
    time.sleep(1)
    for _ in range(10):
        fresh_client(two, new_key, new_secret).list_buckets()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_requests_in_flight_then_exits(tmp_path, workers):
    """aiohttp's own shutdown stops reading every connection: an upload whose body was still coming
    failed with RequestTimeout a minute later. The body's rest arrives after SIGTERM here."""
    two = start_gateway(tmp_path / "gw", extra_args=("--workers", workers))
    fresh_client(two).create_bucket(Bucket="drain")
    body = b"draining " * (MiB // 8)
    url = f"{two.endpoint}/drain/slow"
    headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Length": str(len(body))}
    request = sign("PUT", url, headers)
    conn = http.client.HTTPConnection("127.0.0.1", two.port, timeout=120)
    conn.putrequest("PUT", "/drain/slow", skip_host=True, skip_accept_encoding=True)
    signed = dict(request.headers.items())
    signed.setdefault("Host", url.split("/")[2])
    for name, value in signed.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    time.sleep(1)  # the worker has the request in hand
    os.kill(two.process.pid, signal.SIGTERM)
    time.sleep(1)
    finished = threading.Event()

    def rest() -> None:
        conn.send(body[len(body) // 2 :])
        finished.set()

    threading.Thread(target=rest, daemon=True).start()
    response = conn.getresponse()
    assert response.status == 200, response.read()
    conn.close()
    assert two.process.wait(90) == 0
    two.stop()
    # The object is there for the next gateway on this data directory.
    again = start_gateway(two.data_dir.parent, extra_args=("--workers", "1"))
    try:
        assert again.client().get_object(Bucket="drain", Key="slow")["Body"].read() == body
    finally:
        again.stop()


def test_killing_the_gateway_kills_its_workers(two):
    """kill -9 of the gateway's process is a crash of the gateway, as with one process: no orphan worker
    keeps serving (and holding the port and the store) without a supervisor."""
    workers = workers_of(two)
    assert len(workers) == 2
    two.process.kill()
    two.process.wait(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_restarted_after_sighup_accepts_the_reloaded_credentials(two):
    new_key, new_secret = "S4RELOADEDKEY0000002", "reloaded-secret-00000000000000000000002"
    two.config_file.write_text(f"credentials:\n  - {{access_key_id: {new_key}, secret_access_key: {new_secret}}}\n")
    os.kill(two.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the old key is refused everywhere once both workers reloaded
        try:
            fresh_client(two).list_buckets()
            time.sleep(0.2)
        except Exception:
            if all(_refused(two) for _ in range(10)):
                break
    before = workers_of(two)
    os.kill(before[0], signal.SIGKILL)
    while time.monotonic() < deadline and (len(workers_of(two)) != 2 or before[0] in workers_of(two)):
        time.sleep(0.2)
    time.sleep(2)  # the new worker listens
    for _ in range(20):  # new connections over both workers, the restarted one included
        fresh_client(two, new_key, new_secret).list_buckets()
        assert _refused(two)


def _refused(gw) -> bool:
    try:
        fresh_client(gw).list_buckets()
    except Exception:
        return True
    return False
