"""The GPU pool's queue: bounded admission, and frames gathered into batches.

Requests arrive one frame at a time from many concurrent uploads and downloads; a GPU
is only busy when it gets many frames per launch. Workers therefore take frames in
batches: the first waiting frame opens a batch, frames of the same codec join it until
the batch holds ``batch_bytes`` or ``wait_window`` has passed. One worker gathers at a
time, so two idle workers do not split the same burst into two half-empty batches.

The queue holds at most ``max_bytes`` of waiting frames (one larger frame alone is let
in when the queue is empty): submitters wait for room, threads by blocking and
coroutines by awaiting, which is the back-pressure that keeps a burst of uploads from
piling up in memory. A request whose caller gave up before its batch started is
dropped from the queue at once and never reaches the device.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import threading
import time
from collections.abc import Hashable

from s4.codec.errors import CodecError, CodecErrorKind


@dataclasses.dataclass(eq=False, slots=True)
class Job:
    """One frame waiting for the device, and where its result goes."""

    key: Hashable
    """Frames batch together only with frames of the same key (operation, codec, element type)."""
    size: int
    """Bytes this frame counts against the batch and queue bounds."""
    item: object
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)


class QueueClosed(CodecError):
    """The pool is shutting down and takes no new frames."""

    def __init__(self) -> None:
        super().__init__(CodecErrorKind.UNAVAILABLE, "the GPU pool is shutting down")


class BatchQueue:
    def __init__(self, max_bytes: int, batch_bytes: int, wait_window: float) -> None:
        if max_bytes < 1 or batch_bytes < 1 or wait_window < 0:
            raise ValueError("max_bytes and batch_bytes must be positive and wait_window not negative")
        self.max_bytes = max_bytes
        self.batch_bytes = batch_bytes
        self.wait_window = wait_window
        self._jobs: collections.deque[Job] = collections.deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition()
        self._gather = threading.Lock()
        self._room_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- state ------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Frames waiting for a batch."""
        return len(self._jobs)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._closed

    # --- submitting -------------------------------------------------------------------------------

    def put_blocking(self, job: Job) -> None:
        """Enqueue from a thread, waiting for room; QueueClosed once the pool shuts down."""
        with self._cond:
            while not self._closed and not self._fits(job.size):
                self._cond.wait()
            self._enqueue(job)

    async def put(self, job: Job) -> None:
        """Enqueue from a coroutine, awaiting room without blocking the event loop.

        Cancelled while waiting, the frame is simply never queued.
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._closed or self._fits(job.size):
                    self._enqueue(job)
                    return
                waiter = loop.create_future()
                self._room_waiters.append((loop, waiter))
            try:
                await waiter
            finally:
                with self._cond, contextlib.suppress(ValueError):
                    self._room_waiters.remove((loop, waiter))

    def _fits(self, size: int) -> bool:
        return self._bytes + size <= self.max_bytes or not self._jobs

    def _enqueue(self, job: Job) -> None:
        if self._closed:
            raise QueueClosed()
        self._jobs.append(job)
        self._bytes += job.size
        job.future.add_done_callback(lambda _f, job=job: self._discard_if_cancelled(job))
        self._cond.notify_all()

    def _discard_if_cancelled(self, job: Job) -> None:
        """A caller that gave up frees its place at once, not when a worker would have reached it."""
        if not job.future.cancelled():
            return
        with self._cond:
            try:
                self._jobs.remove(job)
            except ValueError:
                return
            self._released(job.size)

    def _released(self, size: int) -> None:
        """Room was made: wake everyone waiting for it (they re-check). Holds ``_cond``."""
        self._bytes -= size
        self._cond.notify_all()
        waiters, self._room_waiters = self._room_waiters, []
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody left waiting
                loop.call_soon_threadsafe(_wake, waiter)

    # --- taking batches ---------------------------------------------------------------------------

    def take_batch(self) -> list[Job] | None:
        """The next batch for a worker: jobs of one key, their futures marked running.

        Blocks until there is work; None once the queue is closed and drained, which
        is a worker's signal to stop.
        """
        with self._gather, self._cond:
            while True:
                first = self._pop_live(None, None)
                if first is not None:
                    break
                if self._closed:
                    return None
                self._cond.wait()
            batch, total = [first], first.size
            deadline = time.monotonic() + self.wait_window
            while total < self.batch_bytes:
                job = self._pop_live(first.key, self.batch_bytes - total)
                if job is not None:
                    batch.append(job)
                    total += job.size
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            return batch

    def _pop_live(self, key: Hashable | None, room: int | None) -> Job | None:
        """The oldest job (of ``key``, if given) that fits in ``room`` and whose caller still waits.

        Stops at the first job of the key that does not fit: frames of one codec keep
        their order. Holds ``_cond``.
        """
        for job in list(self._jobs):
            if key is not None and job.key != key:
                continue
            if room is not None and job.size > room:
                return None
            self._jobs.remove(job)
            self._released(job.size)
            if job.future.set_running_or_notify_cancel():
                return job
        return None

    # --- shutting down ----------------------------------------------------------------------------

    def close(self) -> None:
        """Take no new jobs; jobs already queued are still handed out, so none is lost."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._room_waiters = self._room_waiters, []
            for loop, waiter in waiters:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_wake, waiter)

    def fail_pending(self, error: Exception) -> int:
        """Fail every job still queued (when no worker is left to run them); returns how many."""
        with self._cond:
            jobs = list(self._jobs)
            self._jobs.clear()
            for job in jobs:
                self._released(job.size)
        failed = 0
        for job in jobs:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(error)
                failed += 1
        return failed


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
