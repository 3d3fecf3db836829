"""Serving a ready ObjectStore: the app, the listening sockets, TLS, and telling the user how to connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys

from aiohttp import web

from s4.config import S4Config, ensure_credentials
from s4.metrics import Metrics
from s4.server.app import create_app
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.connections import CappedTCPSite
from s4.server.limits import server_settings
from s4.server.observability import AccessLog, service_app
from s4.server.protocol import S3RequestHandler
from s4.store import ObjectStore

_log = logging.getLogger("s4.serve")


def _ssl_context(config: S4Config) -> ssl.SSLContext | None:
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


async def serve_store(
    store: ObjectStore, config: S4Config, metrics: Metrics, ready: asyncio.Event | None = None
) -> None:
    """Serve ``store`` as S3 until SIGINT or SIGTERM; the caller built the store and closes it."""
    pairs, generated = ensure_credentials(config)
    credentials = Credentials(Credential(p.access_key_id, p.secret_access_key) for p in pairs)
    app = create_app(store, credentials, config, metrics, AccessLog(config.access_log))
    settings = server_settings(config.limits)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **settings)
    await runner.setup()
    tls = _ssl_context(config)
    loop = asyncio.get_running_loop()

    def connection(server: web.Server) -> S3RequestHandler:
        """What ``server()`` would make, answering its HTTP parser's refusals as S3 errors."""
        return S3RequestHandler(server, app, loop=loop, access_log=None, **settings)

    site = CappedTCPSite(
        runner, config.host, config.port, config.limits.max_connections, ssl_context=tls, handler_factory=connection
    )
    await site.start()
    service_runner = None
    if config.metrics_port is not None:
        service_runner = web.AppRunner(service_app(metrics, getattr(store, "check_ready", None)), access_log=None)
        await service_runner.setup()
        await web.TCPSite(service_runner, config.host, config.metrics_port).start()
    port = site.port
    scheme = "https" if tls else "http"
    endpoint = f"{scheme}://{config.host}:{port}"
    _announce(endpoint, config, pairs[0].access_key_id, pairs[0].secret_access_key, generated)
    stop = asyncio.Event()
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
