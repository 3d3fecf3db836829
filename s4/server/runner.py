"""``s4 serve``: open the store, build the app, listen, and tell the user how to connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys

from aiohttp import web

from s4.codec import CodecDispatcher, CodecError, CodecKind, CodecRegistry, CpuCodecPool, DispatchMode
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, setup_gpu
from s4.codec.policy import FramePolicy
from s4.config import ConfigError, S4Config, ensure_credentials
from s4.metrics import Metrics
from s4.server.app import create_app
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.connections import CappedTCPSite
from s4.server.limits import server_settings
from s4.server.observability import AccessLog, JsonLogFormatter, service_app
from s4.store.compressing.store import CompressingStore
from s4.store.factory import open_inner_store

_log = logging.getLogger("s4.serve")


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
    pool = gpu.pool(registry)
    if metrics is not None and isinstance(pool, GpuCodecPool):
        metrics.watch_gpu(pool)
    return pool, dispatcher, FramePolicy(**config.frames.model_dump())


def _ssl_context(config: S4Config) -> ssl.SSLContext | None:
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


async def serve(config: S4Config, ready: asyncio.Event | None = None) -> None:
    pairs, generated = ensure_credentials(config)
    credentials = Credentials(Credential(p.access_key_id, p.secret_access_key) for p in pairs)
    metrics = Metrics(bucket_label=config.metrics_bucket_label)
    codecs = build_codecs(config, metrics)
    store = CompressingStore(await open_inner_store(config), *codecs)
    metrics.watch_store(store.stats)
    app = create_app(store, credentials, config, metrics, AccessLog(config.access_log))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **server_settings(config.limits))
    await runner.setup()
    tls = _ssl_context(config)
    site = CappedTCPSite(runner, config.host, config.port, config.limits.max_connections, ssl_context=tls)
    await site.start()
    service_runner = None
    if config.metrics_port is not None:
        service_runner = web.AppRunner(service_app(metrics, store.check_ready), access_log=None)
        await service_runner.setup()
        await web.TCPSite(service_runner, config.host, config.metrics_port).start()
    port = site.port
    scheme = "https" if tls else "http"
    endpoint = f"{scheme}://{config.host}:{port}"
    _announce(endpoint, config, pairs[0].access_key_id, pairs[0].secret_access_key, generated)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if service_runner is not None:
            await service_runner.cleanup()
        await store.close()
        store.pool.close()


def _announce(endpoint: str, config: S4Config, key: str, secret: str, generated: bool) -> None:
    """Endpoint and credentials on start. A secret the user configured (env or file) is never printed:
    container logs are widely readable. The data dir's own generated pair is, so `make serve` just works."""
    saved = config.data_dir / "credentials.json"
    if config.credentials:
        shown, source = "(hidden)", "from your configuration"
    else:
        shown, source = secret, (f"generated and saved in {saved}" if generated else f"from {saved}")
    lines = [
        f"S4 is serving S3 at {endpoint} (data in {config.data_dir.resolve()})",
        f"  access key id:     {key}",
        f"  secret access key: {shown}   ({source})",
        "  try:",
        f"    AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={shown if shown != '(hidden)' else '...'} \\",
        f"      aws --endpoint-url {endpoint} s3 mb s3://my-bucket",
    ]
    print("\n".join(lines), flush=True)
    print(f"endpoint: {endpoint}", file=sys.stderr, flush=True)


def run(config: S4Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])
    try:
        import uvloop  # optional: faster event loop when installed

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(config))
