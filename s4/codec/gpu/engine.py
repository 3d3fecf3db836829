"""The GPU worker pool: one worker thread per CUDA stream, frames from many requests per batch.

Each worker owns one backend (its stream, its nvCOMP codecs, its pinned and device
buffers) and loops: take a batch from the queue, run it, hand every frame its result.
With two or more streams, one worker copies its batch to the device while another's
kernels run and a third copies results back, so copies and kernels of consecutive
batches overlap without any worker juggling events.

Device failures never lose or corrupt a frame. A batch that runs out of device memory
is split in halves and retried; a single frame that still does not fit fails with an
out-of-memory CodecError, and the caller (GpuCodecPool) compresses it on the CPU
instead. A decompress batch that fails is split until the failing frame is alone, so
one bad frame fails only its own request. Every batch run, good or bad, is reported
as one CompressTelemetry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Sequence

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError, looks_like_oom
from s4.codec.format.fcg1 import DEFAULT_CHUNK_SIZE
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.backend import BackendFactory, CompressBatch, DecompressBatch, DeviceBackend
from s4.codec.gpu.columnar import bitcomp_data_type
from s4.codec.gpu.nvcomp_layout import NVCOMP_KINDS, read_container, write_container
from s4.codec.gpu.queue import BatchQueue, Job
from s4.codec.telemetry import CodecOp, CompressTelemetry, TelemetryCallback

MiB = 1024 * 1024
DEFAULT_BATCH_BYTES = 64 * MiB
DEFAULT_WAIT_WINDOW = 0.002
DEFAULT_QUEUE_BYTES = 256 * MiB
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class EngineStats:
    """Counters of the engine's life, read by metrics and tests."""

    batches: int = 0
    frames: int = 0
    oom_batches: int = 0
    """Batch runs that ran out of device memory (each split or failed frame counts once)."""
    oom_splits: int = 0
    failed_frames: int = 0
    """Frames that got an error back (the caller may still have decoded or encoded them on the CPU)."""


class GpuEngine:
    """Runs frames of the nvCOMP codecs on a device, batched across concurrent callers.

    Coroutines use ``compress`` / ``decompress``; threads (the registry's synchronous
    codecs) use the ``*_blocking`` forms. Both wait for room in the bounded queue.
    """

    def __init__(
        self,
        factory: BackendFactory,
        *,
        streams: int = 2,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        wait_window: float = DEFAULT_WAIT_WINDOW,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        kinds: Iterable[CodecKind] = NVCOMP_KINDS,
        telemetry: TelemetryCallback | None = None,
        start_timeout: float = 300.0,
    ) -> None:
        if streams < 1:
            raise ValueError("streams must be at least 1")
        self.kinds = frozenset(kinds)
        unknown = self.kinds - NVCOMP_KINDS
        if unknown:
            raise ValueError(f"not nvCOMP codecs: {sorted(k.wire_name for k in unknown)}")
        self.chunk_size = chunk_size
        self.telemetry = telemetry
        self.queue = BatchQueue(queue_bytes, batch_bytes, wait_window)
        self.stats = EngineStats()
        self.device = "gpu"
        self._lock = threading.Lock()
        self._in_flight = 0
        self._factory = factory
        self._threads: list[threading.Thread] = []
        self._start(streams, start_timeout)

    # --- life -------------------------------------------------------------------------------------

    def _start(self, streams: int, timeout: float) -> None:
        """Start the workers and wait until each has built its backend (or failed to)."""
        started: list[tuple[threading.Event, list[object]]] = []
        for index in range(streams):
            event, outcome = threading.Event(), []
            thread = threading.Thread(
                target=self._work, args=(index, event, outcome), name=f"s4-gpu-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            started.append((event, outcome))
        deadline = time.monotonic() + timeout
        errors: list[BaseException] = []
        for event, outcome in started:
            if not event.wait(max(0.0, deadline - time.monotonic())):
                errors.append(TimeoutError("the GPU worker did not start in time"))
            elif isinstance(outcome[0], BaseException):
                errors.append(outcome[0])
            else:
                self.device = outcome[0].device
        self.workers = streams - len(errors)
        if errors and self.workers:
            _log.warning("%d of %d GPU workers failed to start: %s", len(errors), streams, errors[0])
        if not self.workers:
            self.queue.close()
            raise CodecError.unavailable(f"no GPU worker could start: {type(errors[0]).__name__}: {errors[0]}")

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop taking frames, finish every frame already queued, then free the devices."""
        self.queue.close()
        for thread in self._threads:
            thread.join(timeout)
        self.queue.fail_pending(CodecError.unavailable("the GPU pool shut down before this frame ran"))

    @property
    def in_flight(self) -> int:
        """Frames in batches the workers are running now."""
        return self._in_flight

    @property
    def queue_depth(self) -> int:
        """Frames waiting for a batch."""
        return self.queue.depth

    # --- submitting -------------------------------------------------------------------------------

    async def compress(self, kind: CodecKind, data: Buffer) -> bytes:
        """The FCG1 payload of one frame; CodecError (out-of-memory or backend) if the device failed."""
        job = self._compress_job(kind, data)
        if isinstance(job, bytes):
            return job
        await self.queue.put(job)
        return await asyncio.wrap_future(job.future)

    async def decompress(self, kind: CodecKind, payload: Buffer, original_size: int) -> bytes:
        """Exactly ``original_size`` bytes; a corrupt container fails before it is queued."""
        job = self._decompress_job(kind, payload, original_size)
        if isinstance(job, bytes):
            return job
        await self.queue.put(job)
        return await asyncio.wrap_future(job.future)

    def compress_blocking(self, kind: CodecKind, data: Buffer) -> bytes:
        """``compress`` for threads (never the event loop's)."""
        return self.compress_many_blocking(kind, [data])[0]

    def decompress_blocking(self, kind: CodecKind, payload: Buffer, original_size: int) -> bytes:
        return self.decompress_many_blocking(kind, [payload], [original_size])[0]

    def compress_many_blocking(self, kind: CodecKind, frames: Sequence[Buffer]) -> list[bytes]:
        """Queue every frame before waiting for any, so they can share batches."""
        jobs = [self._compress_job(kind, f) for f in frames]
        return self._wait_all(jobs)

    def decompress_many_blocking(
        self, kind: CodecKind, payloads: Sequence[Buffer], original_sizes: Sequence[int]
    ) -> list[bytes]:
        jobs = [self._decompress_job(kind, p, n) for p, n in zip(payloads, original_sizes, strict=True)]
        return self._wait_all(jobs)

    def _wait_all(self, jobs: list[Job | bytes]) -> list[bytes]:
        for job in jobs:
            if isinstance(job, Job):
                self.queue.put_blocking(job)
        return [job if isinstance(job, bytes) else job.future.result() for job in jobs]

    def _compress_job(self, kind: CodecKind, data: Buffer) -> Job | bytes:
        self._check_kind(kind)
        view = memoryview(data).cast("B")
        data_type = bitcomp_data_type(view) if kind is CodecKind.NVCOMP_BITCOMP else 0
        if not len(view):
            return write_container(kind, 0, [], b"", self.chunk_size, data_type)
        return Job((CodecOp.COMPRESS, kind, data_type, self.chunk_size), len(view), view)

    def _decompress_job(self, kind: CodecKind, payload: Buffer, original_size: int) -> Job | bytes:
        self._check_kind(kind)
        container = read_container(kind, payload, original_size)
        if not container.chunks:
            return b""
        key = (CodecOp.DECOMPRESS, kind, container.data_type, container.chunk_size)
        return Job(key, original_size, container)

    def _check_kind(self, kind: CodecKind) -> None:
        if kind not in self.kinds:
            raise CodecError.unavailable(f"codec {kind.wire_name} does not run on this node's GPU pool")

    # --- the workers ------------------------------------------------------------------------------

    def _work(self, index: int, started: threading.Event, outcome: list[object]) -> None:
        try:
            backend = self._factory(index)
        except BaseException as exc:
            outcome.append(exc)
            started.set()
            return
        outcome.append(backend)
        started.set()
        try:
            while (jobs := self.queue.take_batch()) is not None:
                with self._lock:
                    self._in_flight += len(jobs)
                    self.stats.batches += 1
                    self.stats.frames += len(jobs)
                try:
                    self._run(backend, jobs)
                finally:
                    with self._lock:
                        self._in_flight -= len(jobs)
        finally:
            try:
                backend.close()
            except Exception:
                _log.exception("closing GPU backend %s failed", backend.device)

    def _run(self, backend: DeviceBackend, jobs: list[Job]) -> None:
        """Run one batch; whatever happens, every job's future is resolved."""
        try:
            op = jobs[0].key[0]
            if op is CodecOp.COMPRESS:
                self._compress(backend, jobs)
            else:
                self._decompress(backend, jobs)
        except BaseException as exc:
            _log.exception("GPU batch failed unexpectedly")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(CodecError.backend(f"GPU batch failed: {type(exc).__name__}: {exc}"))
            if not isinstance(exc, Exception):
                raise

    def _compress(self, backend: DeviceBackend, jobs: list[Job]) -> None:
        _, kind, data_type, chunk_size = jobs[0].key
        frames = [job.item for job in jobs]
        bytes_in = sum(len(f) for f in frames)
        start = time.perf_counter()
        try:
            results = backend.compress(CompressBatch(kind, data_type, chunk_size, frames))
            if len(results) != len(jobs):
                raise RuntimeError(f"backend returned {len(results)} results for {len(jobs)} frames")
            payloads = [
                write_container(kind, len(f), r.sizes, r.data, chunk_size, data_type)
                for f, r in zip(frames, results, strict=True)
            ]
        except Exception as exc:
            if self._failed(backend, kind, CodecOp.COMPRESS, jobs, bytes_in, start, exc):
                self._compress(backend, jobs[: len(jobs) // 2])
                self._compress(backend, jobs[len(jobs) // 2 :])
            return
        seconds = time.perf_counter() - start
        self._report(kind, backend, CodecOp.COMPRESS, bytes_in, sum(map(len, payloads)), seconds, False, len(jobs))
        for job, payload in zip(jobs, payloads, strict=True):
            job.future.set_result(payload)

    def _decompress(self, backend: DeviceBackend, jobs: list[Job]) -> None:
        _, kind, data_type, chunk_size = jobs[0].key
        containers = [job.item for job in jobs]
        bytes_in = sum(c.compressed_bytes for c in containers)
        start = time.perf_counter()
        try:
            outputs = backend.decompress(DecompressBatch(kind, data_type, chunk_size, containers))
            if len(outputs) != len(jobs):
                raise RuntimeError(f"backend returned {len(outputs)} results for {len(jobs)} frames")
        except Exception as exc:
            if self._failed(backend, kind, CodecOp.DECOMPRESS, jobs, bytes_in, start, exc):
                self._decompress(backend, jobs[: len(jobs) // 2])
                self._decompress(backend, jobs[len(jobs) // 2 :])
            return
        seconds = time.perf_counter() - start
        good = sum(len(out) for out in outputs if not isinstance(out, CodecError))
        self._report(kind, backend, CodecOp.DECOMPRESS, bytes_in, good, seconds, False, len(jobs))
        for job, container, out in zip(jobs, containers, outputs, strict=True):
            if isinstance(out, CodecError):
                self._count_failed(1)
                job.future.set_exception(out)
            elif len(out) != container.original_size:
                self._count_failed(1)
                job.future.set_exception(
                    CodecError.corrupt(
                        f"{kind.wire_name} frame decoded to {len(out)} bytes on {backend.device},"
                        f" expected {container.original_size}"
                    )
                )
            else:
                job.future.set_result(out)

    def _failed(
        self,
        backend: DeviceBackend,
        kind: CodecKind,
        op: CodecOp,
        jobs: list[Job],
        bytes_in: int,
        start: float,
        exc: Exception,
    ) -> bool:
        """Report a failed batch run; True when it should be split and retried, else its jobs get the error.

        Out of memory: smaller batches may fit. Any decompress failure: halves isolate the
        frame that fails, so the others still decode. A compress failure that is not OOM
        fails the whole batch at once: the callers compress those frames on the CPU.
        """
        oom = looks_like_oom(exc)
        self._report(kind, backend, op, bytes_in, 0, time.perf_counter() - start, oom, len(jobs))
        if oom:
            with self._lock:
                self.stats.oom_batches += 1
        if len(jobs) > 1 and (oom or op is CodecOp.DECOMPRESS):
            if oom:
                with self._lock:
                    self.stats.oom_splits += 1
            return True
        verb = "compress" if op is CodecOp.COMPRESS else "decompress"
        self._count_failed(len(jobs))
        for job in jobs:
            if oom:
                error = CodecError.out_of_memory(f"{kind.wire_name}: {backend.device} ran out of memory: {exc}")
            elif isinstance(exc, CodecError):
                error = CodecError(exc.kind, exc.message)
            else:
                error = CodecError.backend(
                    f"{kind.wire_name} could not {verb} on {backend.device}: {type(exc).__name__}: {exc}"
                )
            job.future.set_exception(error)
        return False

    def _count_failed(self, n: int) -> None:
        with self._lock:
            self.stats.failed_frames += n

    def _report(
        self,
        kind: CodecKind,
        backend: DeviceBackend,
        op: CodecOp,
        bytes_in: int,
        bytes_out: int,
        seconds: float,
        oom: bool,
        frames: int,
    ) -> None:
        if self.telemetry is None:
            return
        record = CompressTelemetry(kind, backend.device, op, bytes_in, bytes_out, seconds, oom=oom, frames=frames)
        try:
            self.telemetry(record)
        except Exception:  # a broken metrics hook must not fail a batch
            _log.exception("telemetry callback failed")
