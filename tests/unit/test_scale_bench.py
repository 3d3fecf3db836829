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
