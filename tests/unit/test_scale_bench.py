"""benchmarks/scale_bench.py (``make bench-scale``) end to end on files of 1 MiB: a smoke test of the
script, not a measure (its figures come from a run of the full sizes, see docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "scale_bench.py"


def test_a_tiny_run_reports_the_floor_the_gateways_cost_and_the_goals(tmp_path):
    out = tmp_path / "scale.json"
    args = ["--sizes", "1,1,1", "--rounds", "1", "--workers", "1", "--clients", "1", "--skip-scaling"]
    args += ["--store-dir", str(tmp_path), "--out", str(out)]
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert set(report["files"]) == {"text", "binary", "incompressible"}
    for name, row in report["summary"]["cost"]["s4"].items():
        assert report["floor"][name]["put"] > 0
        assert row["put"]["gateway"] >= 0 and row["get"]["gateway"] >= 0
    assert report["floor"]["text"]["zstd_counted"]
    assert "| file | PUT gateway cpu-s/GB | PUT floor | PUT ratio |" in run.stdout
    assert report["problems"] == []


def test_a_gateway_of_another_tree_runs_that_tree_s_code(tmp_path, monkeypatch):
    """``--trees NAME=DIR`` starts the gateway with PYTHONPATH=DIR; it ran the repository's s4 instead
    (``python -m`` puts the working directory, the repository, first on sys.path), so every side by
    side comparison measured one tree against itself."""
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _gateway import start_gateway

    tree = tmp_path / "tree"
    (tree / "s4").mkdir(parents=True)
    (tree / "s4" / "__init__.py").write_text("")
    main = "import time\nprint('endpoint: ' + __file__, flush=True)\ntime.sleep(60)\n"
    (tree / "s4" / "__main__.py").write_text(main)
    gateway = start_gateway(tmp_path / "gw", "other", extra_env={"PYTHONPATH": str(tree)})
    try:
        assert gateway.endpoint == str(tree / "s4" / "__main__.py")
    finally:
        gateway.stop()
