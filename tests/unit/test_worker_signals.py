"""A worker's signals before it serves: a SIGHUP (reload) sent while a worker starts is not lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from s4.config import S4Config
from s4.server.runner import take_sighup
from s4.workers import Supervisor

RELOADED, NOT_RELOADED = 0, 3


def _worker_reloaded_by_an_early_sighup(config: S4Config, slot: int, metrics_dir: str, ready: int) -> int:
    """A worker that is sent SIGHUP before its loop takes the signal (the supervisor forwarding an
    operator's reload while it was starting), then starts serving: the reload must still happen."""
    os.kill(os.getpid(), signal.SIGHUP)  # neither ends the worker nor is lost
    time.sleep(0.05)
    loop = asyncio.new_event_loop()
    reloaded = asyncio.Event()

    async def serve() -> int:
        take_sighup(loop, reloaded.set)
        try:
            await asyncio.wait_for(reloaded.wait(), 5)
        except TimeoutError:
            return NOT_RELOADED
        return RELOADED

    try:
        return loop.run_until_complete(serve())
    finally:
        loop.close()


def test_a_sighup_sent_while_a_worker_starts_reloads_it_once_it_serves(tmp_path):
    """Ignored until the worker's loop took it, a reload sent while a worker restarted after a crash was
    lost: that worker kept a revoked key until the next SIGHUP (found by a review agent)."""
    supervisor = Supervisor(S4Config(data_dir=tmp_path), 1, _worker_reloaded_by_an_early_sighup)
    read, supervisor._ready_write = os.pipe()
    try:
        supervisor._start(supervisor.config, 0)
        (pid,) = supervisor.children
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read)
        os.close(supervisor._ready_write)
    assert os.WIFEXITED(status), f"the worker was ended by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == RELOADED
