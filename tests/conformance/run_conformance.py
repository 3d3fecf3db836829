"""ceph/s3-tests against a real ``s4 serve`` on the embedded store: ``make conformance``, and part of ``make test``.

Starts the gateway on a free port with two identities (the second is the suite's alt user),
runs ``../shared/conformance/run-s3-tests.sh`` (the core set, or ``S3TESTS_SET=all``), prints the
summary line and, with ``--check``, fails when fewer tests pass than the floor committed in
``floor.json`` beside this script. Raise the floor when more tests pass; never lower it to make
a change pass.

The suite lives outside the repository (``../shared/conformance``); where it is absent this
says so and exits 0, as the fixture tests skip with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT.parent / "shared" / "conformance" / "run-s3-tests.sh"
FLOOR = Path(__file__).with_name("floor.json")
MAIN = ("S4CONFORMANCEMAIN001", "conformance-main-secret-000000000000000001", "s3main")
ALT = ("S4CONFORMANCEALT0001", "conformance-alt-secret-0000000000000000001", "s3alt")
"""Key, secret and identity name: run-s3-tests.sh gives the suite's main and alt users the user ids ``s3main``
and ``s3alt``, which the suite expects as owner IDs (and grants ACLs to), so the identities bear those names."""
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_gateway(workdir: Path, port: int) -> subprocess.Popen:
    config = workdir / "config.yaml"
    config.write_text(
        "credentials:\n"
        + "".join(f"  - {{access_key_id: {k}, secret_access_key: {s}, name: {n}}}\n" for k, s, n in (MAIN, ALT))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S4_", "AWS_"))}
    log = (workdir / "gateway.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s4",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--data-dir",
            str(workdir / "data"),
            "--access-log",
            str(workdir / "access.log"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with {process.returncode}:\n{(workdir / 'gateway.log').read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the gateway did not start listening within a minute")


def passed_count(output: str) -> int:
    """The ``N passed`` of pytest's last summary line (0 when nothing passed)."""
    summary = [line for line in output.splitlines() if re.search(r"\b(passed|failed|error|errors)\b", line)]
    match = re.search(r"(\d+) passed", summary[-1]) if summary else None
    return int(match.group(1)) if match else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail below the committed floor")
    parser.add_argument("--verbose", action="store_true", help="print the suite's whole output (why tests failed)")
    parser.add_argument("pytest_args", nargs="*", help="passed to the suite's pytest (after --)")
    args = parser.parse_args(argv)
    test_set = os.environ.get("S3TESTS_SET", "core")
    if not RUNNER.is_file():
        print(f"conformance: skipped, {RUNNER} is not here (the s3-tests snapshot lives in ../shared)")
        return 0
    with tempfile.TemporaryDirectory(prefix="s4-conformance-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        gateway = _start_gateway(workdir, port)
        try:
            run = subprocess.run(
                ["bash", str(RUNNER), str(port), *MAIN[:2], *ALT[:2], "--", *args.pytest_args],
                capture_output=True,
                text=True,
                env={**os.environ, "S3TESTS_SET": test_set},
            )
        finally:
            gateway.terminate()
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
    output = run.stdout + run.stderr
    if args.verbose:
        print(output)
    failing = [line.split(" - ")[0] for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    for line in failing:
        print(line)
    summary = next((line for line in reversed(output.splitlines()) if " in " in line and "passed" in line), "")
    passed = passed_count(output)
    print(f"conformance ({test_set}): {passed} passed; {summary.strip('= ')}")
    if run.returncode not in (0, 1):  # 1: some tests failed, which the floor judges; anything else broke
        print(output[-4000:])
        print(f"conformance: the suite itself failed to run (exit {run.returncode})")
        return 2
    if args.check:
        floor = json.loads(FLOOR.read_text())[test_set]
        if passed < floor:
            print(f"conformance: {passed} passed, below the floor of {floor} in {FLOOR.relative_to(ROOT)}")
            return 1
        print(f"conformance: at or above the floor of {floor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
