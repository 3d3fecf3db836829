"""The composition root: settings become the codec pool, dispatcher, frame policy, inner store and
CompressingStore, which the server then serves.

The only module that knows every layer, so that none of the layers has to: the server receives
a ready ObjectStore, the store receives a ready codec pool, the codecs know nothing of either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable

from s4.allocator import tune_allocator
from s4.codec import CodecDispatcher, CodecError, CodecKind, CodecRegistry, CpuCodecPool, DispatchMode
from s4.codec.gpu.doctor import status_lines
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, setup_gpu
from s4.codec.policy import FramePolicy
from s4.codec.registry import CodecStatus
from s4.config import ConfigError, S4Config
from s4.metrics import Metrics, use_multiprocess_dir
from s4.server.observability import JsonLogFormatter
from s4.server.runner import serve_store
from s4.store.compressing import CompressingStore
from s4.store.compressing.encoding import DictionaryBinding
from s4.store.compressing.ledger import Ledger, read_all_ledgers
from s4.store.factory import open_inner_store
from s4.store.lifecycle import LifecycleWorker
from s4.workers import Supervisor, usable_cpus, worker_count


def build_codecs(config: S4Config, metrics: Metrics | None = None) -> tuple[CpuCodecPool, CodecDispatcher, FramePolicy]:
    """The codec pool, dispatcher and frame policy the settings ask for; ConfigError if unusable."""
    telemetry = metrics.codec_telemetry if metrics is not None else None
    registry = CodecRegistry.cpu_default(zstd_level=config.zstd_level, telemetry=telemetry)
    try:
        kind = CodecKind.from_name(config.codec)
    except CodecError as exc:
        raise ConfigError(f"--codec: {exc}") from None
    try:
        gpu = setup_gpu(registry, GpuSettings.from_mapping(config.gpu.model_dump()))
    except CodecError as exc:
        raise ConfigError(str(exc)) from None
    status = registry.status(kind)
    if not status.available:
        if gpu.engine is not None:
            gpu.engine.close()
        raise ConfigError(f"--codec {kind.wire_name} cannot run here: {status.reason}")
    dispatcher = CodecDispatcher(kind, DispatchMode(config.dispatcher), promotion=gpu.promotion)
    # Codec threads per process: the cores shared among the workers (N workers x all cores would be N^2).
    pool = gpu.pool(registry, threads=max(1, usable_cpus() // worker_count(config)))
    if metrics is not None and isinstance(pool, GpuCodecPool):
        metrics.watch_gpu(pool)
    return pool, dispatcher, FramePolicy(**config.frames.model_dump())


async def open_store(config: S4Config, metrics: Metrics | None = None) -> CompressingStore:
    """The store the server serves: the configured inner store, compressed with the configured codecs."""
    pool, dispatcher, policy = build_codecs(config, metrics)
    try:
        inner = await open_inner_store(config)
    except BaseException:
        pool.close()
        raise
    ledger = Ledger(inner, config.ledger.flush_interval) if config.ledger.enabled else None
    bindings = [DictionaryBinding(d.bucket, d.prefix, d.id, d.max_size) for d in config.dictionaries]
    store = CompressingStore(inner, pool, dispatcher, policy, ledger=ledger, dictionaries=bindings)
    if metrics is not None:
        metrics.watch_store(store.stats)
    return store


def lifecycle_worker(store: CompressingStore, config: S4Config) -> LifecycleWorker:
    """The worker that carries out buckets' lifecycle rules, but for the Expiration an inner store that
    runs lifecycle rules does itself (an upstream S3 with a bucket per client bucket: s4.store.lifecycle)."""
    upstream = bool(getattr(store.inner, "lifecycle_upstream", False))
    return LifecycleWorker(store, upstream_expires=upstream, day=config.lifecycle.day_seconds)


async def serve(
    config: S4Config,
    ready: asyncio.Event | None = None,
    reload: Callable[[], S4Config] | None = None,
    worker: int | None = None,
) -> None:
    """``s4 serve``: build everything, serve until SIGINT/SIGTERM, then release the store and codecs.

    ``worker``: this process's slot among several on the port (None: the only process); only slot 0
    sweeps leftovers and carries out lifecycle rules, the others would only repeat its work.
    """
    metrics = Metrics(bucket_label=config.metrics_bucket_label)
    store = await open_store(config, metrics)
    if not worker:  # once per gateway, not once per worker process
        _log_codecs(store.pool.registry.statuses())
    sweeping = None
    if config.sweep.enabled and not worker:  # the leftovers of operations that died, at start and then periodically
        sweeping = asyncio.create_task(store.sweep.periodically(config.sweep.interval, config.sweep.min_age))
    lifecycle = None
    if config.lifecycle.enabled and not worker:  # buckets' lifecycle rules, at start and then periodically
        lifecycle = asyncio.create_task(lifecycle_worker(store, config).periodically(config.lifecycle.interval))
    ledgers = None
    if config.ledger.enabled and not worker:  # the s4_ledger_* gauges, read from the store periodically
        ledgers = asyncio.create_task(_watch_ledgers(store, metrics, config))
    try:
        await serve_store(store, config, metrics, ready, reload=reload, worker=worker is not None)
    finally:
        for task in (sweeping, lifecycle, ledgers):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await store.close()
        store.pool.close()


async def _watch_ledgers(store: CompressingStore, metrics: Metrics, config: S4Config) -> None:
    """Every bucket's savings ledger into the metrics, now and every ``ledger.metrics_interval`` seconds."""
    while True:
        try:
            metrics.set_ledgers(await read_all_ledgers(store.inner), config.ledger.metrics_max_buckets)
        except Exception as exc:  # an unreachable store: the gauges keep their last values
            logging.getLogger("s4.gateway").warning("could not read the savings ledgers: %s", exc)
        await asyncio.sleep(config.ledger.metrics_interval)


def run(config: S4Config, reload: Callable[[], S4Config] | None = None) -> int:
    """Logging, then one process serving (``workers: 1``) or a supervisor of several (s4/workers.py).

    ``reload`` reads the configuration again, for SIGHUP. Returns the exit status.
    """
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])
    tune_allocator()  # before any worker is forked: each inherits it
    count = worker_count(config)
    if count > 1:

        def worker(config: S4Config, slot: int, metrics_dir: str, ready_fd: int) -> int:
            config = _current_credentials(config, reload)
            use_multiprocess_dir(metrics_dir)
            _install_uvloop()
            asyncio.run(_serve_worker(config, slot, reload, ready_fd))
            return 0

        return Supervisor(config, count, worker).run()
    _install_uvloop()
    asyncio.run(serve(config, reload=reload))
    return 0


def _current_credentials(config: S4Config, reload: Callable[[], S4Config] | None) -> S4Config:
    """A worker (re)started after a SIGHUP must accept what the others accept now: the credentials are
    read again; everything else stays as the supervisor started (port, data directory)."""
    if reload is None:
        return config
    try:
        return config.model_copy(update={"credentials": reload().credentials})
    except Exception as exc:  # the file does not load now: the others keep their set, this one the start's
        logging.getLogger("s4.workers").error("worker start: the configuration did not load: %s", exc)
        return config


async def _serve_worker(config: S4Config, slot: int, reload: Callable[[], S4Config] | None, ready_fd: int) -> None:
    """One worker of several: tells the supervisor (one byte on ``ready_fd``) once it listens."""
    ready = asyncio.Event()

    async def report() -> None:
        await ready.wait()
        os.set_blocking(ready_fd, False)  # nobody reads it after the first start: never block on it
        with contextlib.suppress(BlockingIOError):
            os.write(ready_fd, b"r")

    reporter = asyncio.create_task(report())
    try:
        await serve(config, ready, reload=reload, worker=slot)
    finally:
        reporter.cancel()


def _log_codecs(statuses: list[CodecStatus]) -> None:
    """What runs here and why the rest does not, in ``s4 doctor``'s words, as one block at start."""
    lines = "\n".join(f"  {line}" for line in status_lines(statuses))
    logging.getLogger("s4.gateway").info("codecs on this node (s4 doctor tells more):\n%s", lines)


def _install_uvloop() -> None:
    try:
        import uvloop  # optional: faster event loop when installed

        uvloop.install()
    except ImportError:
        pass
