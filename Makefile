PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: .venv venv test lint serve bench bench-proxy bench-load bench-scale clean system-deps conformance drills

# The environment: created once, refreshed when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# `make .venv` (or `make venv`): the environment with the dev extras.
.venv venv: $(BIN)/.installed

# Debian tools the tests drive for real: Prometheus (the server and promtool), docker-compose
# (to validate the compose files; no engine needed) and HAProxy (the load balancer of the
# scale-out topology, tests/cluster). Installed only when missing.
system-deps:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v docker-compose >/dev/null \
		|| ! { command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null; then \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus docker-compose haproxy >/dev/null; \
		else echo "apt-get not found: tests needing prometheus/docker-compose/haproxy will be skipped"; fi; \
	fi

lint: venv
	$(BIN)/ruff check s4 tests benchmarks
	$(BIN)/ruff format --check s4 tests benchmarks

# The whole suite. The end-to-end tests (real gateways, SeaweedFS, aws-cli, HAProxy) mostly wait on processes
# and sockets and leave a 2-core machine half idle, so the unit tests and the s3-tests conformance run beside
# them (19.9 min one after the other on the 2-core CI machine, over its 20-minute budget). The end-to-end
# output is printed whole when they end; the target fails if any part does.
test: venv lint system-deps
	@log=$$(mktemp); \
	$(BIN)/python -m pytest -q tests/e2e tests/cluster > $$log 2>&1 & e2e=$$!; \
	$(BIN)/python -m pytest -q --ignore=tests/e2e --ignore=tests/cluster; unit=$$?; \
	$(BIN)/python tests/conformance/run_conformance.py --check; conformance=$$?; \
	wait $$e2e; end_to_end=$$?; cat $$log; rm -f $$log; \
	echo "make test: unit $$unit, end-to-end $$end_to_end, conformance $$conformance (0: passed)"; \
	[ $$unit = 0 ] && [ $$end_to_end = 0 ] && [ $$conformance = 0 ]

# ceph/s3-tests (../shared/conformance) against a gateway on the embedded store; S3TESTS_SET=all for the
# whole functional suite. `make test` runs the core set and fails below tests/conformance/floor.json.
conformance: venv
	$(BIN)/python tests/conformance/run_conformance.py

serve: venv
	$(BIN)/s4 serve

bench: venv
	$(BIN)/s4 bench codecs

bench-proxy: venv
	$(BIN)/python benchmarks/proxy_bench.py

# 64 clients for 60 s per store (embedded, then over SeaweedFS); fails on any error or mismatch.
# Options pass through: make bench-load LOAD_ARGS="--clients 8 --seconds 10 --out /tmp/load.json"
bench-load: venv
	$(BIN)/python benchmarks/load_bench.py $(LOAD_ARGS)

# The gateway's CPU per GB beside the floor, and MB/s with 1 and 2 workers (docs/BENCHMARKS.md).
# Options pass through: make bench-scale SCALE_ARGS="--sizes 64,32,16 --workers 1,2,4 --out /tmp/scale.json"
bench-scale: venv
	$(BIN)/python benchmarks/scale_bench.py $(SCALE_ARGS)

# Failure drills on the scale-out topology (tests/cluster: HAProxy, gateways, SeaweedFS as separate
# processes): a gateway, a volume server, the filer, the S3 process; fails if an object is lost.
# Options pass through: make drills DRILL_ARGS="--drills gateway,filer --seconds 60 --out /tmp/drills.json"
drills: venv system-deps
	$(BIN)/python -m tests.cluster.drills $(DRILL_ARGS)

# The first contact with a GPU (issue 17), under 5 minutes: the gpu-cu12/13 extra of the driver's CUDA, s4 doctor,
# pytest -m gpu tests/gpu, 1 GiB through s4 serve --codec nvcomp-zstd with aws-cli, s4 bench gpu; every figure in
# $(GPU_CHECK_OUT)/gpu-check.json. Exit 3 at once where there is no GPU. No venv needed: it installs what is
# missing into the interpreter it runs with (from .whl/ when there is no network; see gpu-wheels).
GPU_CHECK_OUT ?= $(or $(OUT),/tmp/s4-gpu-check)
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_CUDA ?= 13
.PHONY: gpu-check gpu-wheels
gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

# Wheels for a GPU machine with no network (.whl/s4-gpu-cu$(GPU_CUDA)-py312.tar.xz, under 64 MiB): carry .whl there.
gpu-wheels:
	$(GPU_PYTHON) benchmarks/gpu_check.py --bundle-wheels --cuda $(GPU_CUDA) $(GPU_WHEELS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
