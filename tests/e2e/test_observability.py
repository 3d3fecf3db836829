"""What operators see: /health, /ready, /metrics (scraped by a real Prometheus) and the access log."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.gateway import start_gateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw-observed")
    metrics_port = free_port()
    gw = start_gateway(tmp, extra_args=("--metrics-port", str(metrics_port), "--access-log", str(tmp / "access.log")))
    gw.metrics_port = metrics_port
    gw.access_log = tmp / "access.log"
    yield gw
    gw.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            return float(value)
    return None


def traffic(gw) -> None:
    c = gw.client()
    c.create_bucket(Bucket="observed")
    c.put_object(Bucket="observed", Key="text.log", Body=b"observability line\n" * 50_000)
    assert c.get_object(Bucket="observed", Key="text.log")["Body"].read().startswith(b"observability")
    gw.aws("s3", "ls", "s3://observed/")


def test_health_and_ready_need_no_credentials(observed):
    assert get(f"{observed.endpoint}/health") == (200, "ok\n")
    assert get(f"{observed.endpoint}/ready") == (200, "ready\n")
    assert get(f"{observed.endpoint}/_s4/health") == (200, "ok\n")
    assert get(f"http://127.0.0.1:{observed.metrics_port}/ready")[0] == 200


def test_a_bucket_named_metrics_is_still_an_s3_bucket(observed):
    c = observed.client()
    c.create_bucket(Bucket="metrics")
    c.put_object(Bucket="metrics", Key="k", Body=b"v")
    assert [o["Key"] for o in c.list_objects_v2(Bucket="metrics")["Contents"]] == ["k"]
    status, text = get(f"{observed.endpoint}/metrics")  # unsigned: the gateway's own metrics
    assert status == 200 and "s4_requests_total" in text


def test_metrics_after_traffic(observed):
    traffic(observed)
    status, text = get(f"{observed.endpoint}/metrics")
    assert status == 200
    assert metric_value(text, "s4_requests_total", op="PutObject", status="200") >= 1
    assert metric_value(text, "s4_requests_total", op="ListObjectsV2", status="200") >= 1
    assert metric_value(text, "s4_request_duration_seconds_count", op="GetObject") >= 1
    assert metric_value(text, "s4_time_to_first_byte_seconds_count", op="GetObject") >= 1
    assert metric_value(text, "s4_bytes_in_total") >= 950_000
    assert metric_value(text, "s4_bytes_out_total") >= 950_000
    assert 0 < metric_value(text, "s4_backend_bytes_in_total") < 200_000  # stored compressed
    assert metric_value(text, "s4_codec_input_bytes_total", codec="cpu-zstd") >= 950_000
    assert metric_value(text, "s4_compress_seconds_count", codec="cpu-zstd", device="cpu") >= 1
    assert metric_value(text, "s4_decompress_seconds_count", codec="cpu-zstd", device="cpu") >= 1
    assert metric_value(text, "s4_requests_in_flight") is not None
    for gpu in ("s4_gpu_oom_total", "s4_gpu_queue_depth", "s4_gpu_in_flight", "s4_gpu_batch_frames_count"):
        assert metric_value(text, gpu) == 0, gpu
    assert metric_value(text, "s4_corrupt_frames_total") == 0


def test_access_log_has_one_json_line_per_request(observed):
    observed.client().put_object(Bucket="observed", Key="logged.txt", Body=b"x" * 10_000)
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [json.loads(line) for line in observed.access_log.read_text().splitlines() if line.strip()]
        puts = [e for e in lines if e["op"] == "PutObject" and e["key"] == "logged.txt"]
        if puts:
            break
        time.sleep(0.1)
    entry = puts[-1]
    assert abs(dt.datetime.fromisoformat(entry["time"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert entry["status"] == 200 and entry["bytes_in"] == 10_000 and entry["bucket"] == "observed"
    assert entry["codec"] == "cpu-zstd" and 0 < entry["ratio"] < 0.1
    assert entry["principal"] and entry["request_id"]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian package prometheus is not installed")
def test_a_real_prometheus_scrapes_the_gateway(observed, tmp_path):
    traffic_done = observed.client().list_buckets()
    assert traffic_done
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: s4\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{observed.metrics_port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        query = urllib.parse.urlencode({"query": 'sum(s4_requests_total{op="PutObject"})'})
        deadline = time.time() + 60
        result = []
        while time.time() < deadline and not result:
            time.sleep(1)
            assert prometheus.poll() is None, "prometheus exited"
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/v1/query?{query}")
            except urllib.error.URLError:  # not listening yet: it can take seconds to start on a busy machine
                continue
            if status == 200:
                result = json.loads(body)["data"]["result"]
        assert result, "Prometheus never returned s4_requests_total"
        assert float(result[0]["value"][1]) >= 1
    finally:
        prometheus.terminate()
        prometheus.wait(10)
