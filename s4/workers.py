"""``s4 serve --workers N``: N gateway processes on one port, and the supervisor that keeps them.

One Python process is bounded by its event loop and its GIL; the gateway keeps no state a
client could see in process memory (uploads, objects and sidecars live in the store, caches are
keyed by the stored object's identity), so processes can share the port. The kernel spreads
connections over the workers (each listens with SO_REUSEPORT on the port the supervisor
reserved). The supervisor:

- creates what must exist once before any worker starts (generated credentials, the port when
  asked for 0, an empty directory for the shared metrics) and prints the endpoint;
- restarts a worker that dies (not faster than once a second per worker);
- on SIGTERM or SIGINT passes SIGTERM on: each worker stops accepting, finishes the requests
  in flight (aiohttp's shutdown) and exits; then the supervisor exits;
- on SIGHUP passes SIGHUP on: each worker re-reads its configuration (credentials).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import pathlib
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

from s4.config import S4Config, ensure_credentials
from s4.server.runner import announce, identities_of

Worker = Callable[[S4Config, int, str, int], int]
"""What a worker process runs: (config, slot, shared metrics directory, fd to write one byte to once it
listens) -> exit code."""

_log = logging.getLogger("s4.workers")
RESTART_DELAY_S = 1.0
"""A worker that keeps dying is restarted at most this often, so a broken setup does not spin."""
START_TIMEOUT_S = 120.0
"""How long the first workers may take to listen before the supervisor gives up."""
STOP_GRACE_S = 90.0
"""How long the supervisor waits for workers to stop before it kills them: their drain (60 s at most,
runner.DRAIN_TIMEOUT_S), aiohttp's closing of what is left (5 s), and closing the store."""
PR_SET_PDEATHSIG = 1
_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def worker_count(config: S4Config) -> int:
    """The configured number of workers; by default one per core this process may use."""
    return config.workers if config.workers is not None else usable_cpus()


def usable_cpus() -> int:
    """Cores this process may run on: its CPU affinity, bounded by a cgroup v2 CPU quota (a container's
    ``--cpus``), which the affinity does not show."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = pathlib.Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) with SO_REUSEPORT on ``host:port``: it holds the port, and tells the
    kernel-chosen one when ``port`` is 0, while the workers' listening sockets share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    """Forks the workers and keeps them running; ``worker`` is what each runs (it returns an exit code)."""

    def __init__(self, config: S4Config, count: int, worker: Worker) -> None:
        self.config = config
        self.count = count
        self.worker = worker
        self.children: dict[int, int] = {}
        """pid -> worker slot."""
        self.metrics_dir = ""

    def run(self) -> int:
        pairs, generated = ensure_credentials(self.config)  # once, before the workers: they all read this pair
        identities_of(pairs)  # a policy that cannot be used stops here, said once, not by every worker
        reserved = reserve_port(self.config.host, self.config.port)
        port = reserved.getsockname()[1]
        metrics_port = metrics_socket = None
        if self.config.metrics_port is not None:
            metrics_socket = reserve_port(self.config.host, self.config.metrics_port)
            metrics_port = metrics_socket.getsockname()[1]
        config = self.config.model_copy(update={"port": port, "metrics_port": metrics_port})
        self.metrics_dir = tempfile.mkdtemp(prefix="s4-metrics-")
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        ready_read, self._ready_write = os.pipe()
        try:
            for slot in range(self.count):
                self._start(config, slot)
            if not self._wait_listening(ready_read):
                self._signal_all(signal.SIGTERM)
                self._supervise(config, stopping=True)
                return 1
            scheme = "https" if config.tls_cert is not None else "http"
            announce(
                f"{scheme}://{config.host}:{port}",
                config,
                pairs[0].access_key_id,
                pairs[0].secret_access_key,
                generated,
                workers=self.count,
            )
            return self._supervise(config)
        finally:
            os.close(ready_read)
            os.close(self._ready_write)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            reserved.close()
            if metrics_socket is not None:
                metrics_socket.close()

    def _wait_listening(self, ready_read: int) -> bool:
        """Every first worker listens (one byte each on the pipe), or one died / time ran out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        listening = 0
        while listening < self.count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or any(pid for pid, _ in _reaped_peek(self.children)):
                _log.error("the workers did not all start; stopping")
                return False
            readable, _, _ = select.select([ready_read], [], [], min(remaining, 0.5))
            if readable:
                listening += len(os.read(ready_read, self.count))
        return True

    def _start(self, config: S4Config, slot: int) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _die_with(supervisor)
                # Until the worker's loop takes SIGHUP (once it serves: s4.server.runner.take_sighup), one must
                # neither end it nor be lost: held blocked, it is delivered then (a reload sent while it started).
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
                signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_SIGNALS) - {signal.SIGHUP})
                os.environ["S4_WORKER"] = str(slot)
                code = self.worker(config, slot, self.metrics_dir, self._ready_write)
            except BaseException:
                _log.exception("worker %d failed", slot)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = slot

    def _supervise(self, config: S4Config, stopping: bool = False) -> int:
        from s4.metrics import forget_process

        last_start: dict[int, float] = {}
        deadline = time.monotonic() + STOP_GRACE_S if stopping else None
        while self.children:
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            info = signal.sigtimedwait(_SIGNALS, timeout)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT) and not stopping:
                stopping = True
                deadline = time.monotonic() + STOP_GRACE_S
                self._signal_all(signal.SIGTERM)
            elif info is not None and info.si_signo == signal.SIGHUP:
                self._signal_all(signal.SIGHUP)
            if deadline is not None and time.monotonic() >= deadline:
                _log.warning("workers still running after %.0f s: killed", STOP_GRACE_S)
                self._signal_all(signal.SIGKILL)
                deadline = None
            for pid, status in _reaped():
                slot = self.children.pop(pid, None)
                if slot is None:
                    continue
                forget_process(self.metrics_dir, pid)
                if stopping:
                    continue
                _log.error("worker %d (pid %d) exited (%s); starting another", slot, pid, _describe(status))
                wait = RESTART_DELAY_S - (time.monotonic() - last_start.get(slot, 0.0))
                if wait > 0:
                    time.sleep(wait)
                last_start[slot] = time.monotonic()
                self._start(config, slot)
        return 0

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _die_with(supervisor: int) -> None:
    """A worker goes when its supervisor goes, even by SIGKILL: killing the gateway's process kills the
    gateway, as with one process, and no orphan keeps serving unsupervised (Linux's PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: workers outlive a killed supervisor
        return
    if os.getppid() != supervisor:  # it died before the prctl took effect
        os._exit(1)


def _reaped_peek(children: dict[int, int]) -> list[tuple[int, int]]:
    """Children that died already (during start-up: a worker that cannot start); they are reaped."""
    dead = _reaped()
    for pid, _ in dead:
        children.pop(pid, None)
    return dead


def _reaped() -> list[tuple[int, int]]:
    """Every child that has exited since the last call, with its wait status."""
    out = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, status))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
