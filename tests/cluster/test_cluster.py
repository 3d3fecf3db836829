"""The scale-out topology in ``make test``: two drills, short, on one topology.

HAProxy over two ``s4 serve --backend s3 --workers 2`` over SeaweedFS as separate processes
(tests/cluster/topology.py), with boto3 and aws-cli running a mixed workload through the load
balancer. The long drills, all four of them, are ``make drills`` (tests/cluster/drills.py).
"""

from __future__ import annotations

import pytest

from tests.cluster.drills import GatewayDrill, UpstreamProcessDrill, passed
from tests.cluster.topology import TopologyUnavailable, start_cluster
from tests.seaweed import SeaweedUnavailable


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        topology = start_cluster(tmp_path_factory.mktemp("cluster"), gateways=2, volumes=3, workers=2)
    except (TopologyUnavailable, SeaweedUnavailable) as exc:
        pytest.skip(f"the scale-out topology cannot run here: {exc}")
    yield topology
    topology.stop()


def test_load_balancer_spreads_over_ready_gateways(cluster):
    assert cluster.lb.up() == {"g0", "g1"}
    assert cluster.seaweed.data_nodes() == 3
    s3 = cluster.client(max_attempts=3)
    s3.create_bucket(Bucket="spread")
    for i in range(8):
        s3.put_object(Bucket="spread", Key=f"k{i}", Body=b"spread" * i)
    # Round robin: both gateways answered (each access log has PUTs).
    for gateway in cluster.gateways:
        log = (gateway.process.directory / "access.log").read_text()
        assert "PutObject" in log or "PUT" in log, gateway.name


def test_a_gateway_killed_and_restarted_loses_nothing(cluster, tmp_path):
    report = GatewayDrill(cluster, tmp_path, seconds=6, boto3_threads=2, cli_threads=1).run()
    print(report)
    assert passed(report) == [], report
    assert report["objects"] > 0 and report["requests"] > 0
    in_flight = report["in_flight"]
    assert in_flight["get"].startswith("failed") or in_flight["get"] == "completed before the kill", in_flight
    assert in_flight["put"].startswith("failed") and "nothing stored" in in_flight["put"], in_flight
    assert in_flight["retried_through_lb"] == "bytes verified"
    assert report["lb_ready_during_fault"] == ["g1"]


def test_the_filer_restarted_is_503_and_ready_says_why(cluster, tmp_path):
    """SeaweedFS answers 500 while its filer is down: the gateways answer 503 and recover by themselves."""
    report = UpstreamProcessDrill(cluster, tmp_path, seconds=6, boto3_threads=2, cli_threads=1, process="filer").run()
    print(report)
    assert passed(report) == [], report
    assert report["probe_answers_during_fault"] == ["503 ServiceUnavailable"] * 3, report
    ready = report["ready_during_fault"]
    assert ready and all(line.startswith("not ready: store unreachable") for line in ready), ready
    assert report["gateways_restarted"] == []
