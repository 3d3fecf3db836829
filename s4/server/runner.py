"""Serving a ready ObjectStore: the app, the listening sockets, TLS, and telling the user how to connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from s4.config import ConfigError, CredentialConfig, S4Config, ensure_credentials
from s4.metrics import Metrics
from s4.server.access.identities import Identities, IdentityError
from s4.server.app import create_app, requests_in_flight
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.connections import CappedTCPSite
from s4.server.limits import server_settings
from s4.server.observability import AccessLog, service_app
from s4.server.protocol import LargeReads, S3RequestHandler
from s4.store import ObjectStore

_log = logging.getLogger("s4.serve")
DRAIN_TIMEOUT_S = 60.0
"""How long a stopping server lets the requests in flight finish (aiohttp's own shutdown timeout)."""


def _ssl_context(config: S4Config) -> ssl.SSLContext | None:
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


async def serve_store(
    store: ObjectStore,
    config: S4Config,
    metrics: Metrics,
    ready: asyncio.Event | None = None,
    *,
    reload: Callable[[], S4Config] | None = None,
    worker: bool = False,
) -> None:
    """Serve ``store`` as S3 until SIGINT or SIGTERM; the caller built the store and closes it.

    SIGHUP re-reads the configuration through ``reload`` and applies the credentials (a file that does
    not load keeps the old ones, and says why). ``worker``: one of several processes on this port
    (SO_REUSEPORT); the supervisor, not each worker, tells the user the endpoint.
    """
    pairs, generated = ensure_credentials(config)
    credentials = Credentials(Credential(p.access_key_id, p.secret_access_key) for p in pairs)
    identities = identities_of(pairs)
    app = create_app(store, credentials, config, metrics, AccessLog(config.access_log), identities)
    settings = server_settings(config.limits)
    # shutdown_timeout: what aiohttp gives the handlers still running after our own drain (see _drain).
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0, **settings)
    await runner.setup()
    tls = _ssl_context(config)
    loop = asyncio.get_running_loop()

    def connection(server: web.Server) -> LargeReads:
        """What ``server()`` would make, answering its HTTP parser's refusals as S3 errors, reading large."""
        return LargeReads(S3RequestHandler(server, app, loop=loop, access_log=None, **settings))

    site = CappedTCPSite(
        runner,
        config.host,
        config.port,
        config.limits.max_connections,
        ssl_context=tls,
        handler_factory=connection,
        reuse_port=worker,
    )
    await site.start()
    service_runner = None
    if config.metrics_port is not None:
        service_runner = web.AppRunner(service_app(metrics, getattr(store, "check_ready", None)), access_log=None)
        await service_runner.setup()
        await web.TCPSite(service_runner, config.host, config.metrics_port, reuse_port=worker or None).start()
    port = site.port
    scheme = "https" if tls else "http"
    endpoint = f"{scheme}://{config.host}:{port}"
    if not worker:
        announce(endpoint, config, pairs[0].access_key_id, pairs[0].secret_access_key, generated)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        with contextlib.suppress(NotImplementedError):
            take_sighup(loop, _reloader(reload, credentials, identities))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await site.stop()  # no new connections; the requests in flight finish first
        await _drain(app, DRAIN_TIMEOUT_S)
        await runner.cleanup()
        if service_runner is not None:
            await service_runner.cleanup()


def take_sighup(loop: asyncio.AbstractEventLoop, handler: Callable[[], object]) -> None:
    """SIGHUP runs ``handler`` on ``loop`` from now on, including one sent before (held blocked since the
    worker started, see s4.workers: a reload is never lost to a worker that was starting)."""
    loop.add_signal_handler(signal.SIGHUP, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def identities_of(pairs: Sequence[CredentialConfig]) -> Identities:
    """The configured keys' identities; ConfigError (the reason in words) for a policy that cannot be used."""
    try:
        return Identities.from_config(pairs)
    except IdentityError as exc:
        raise ConfigError(str(exc)) from None


async def _drain(app: web.Application, timeout: float) -> None:
    """Wait until no S3 request is in flight, at most ``timeout`` seconds.

    aiohttp's own shutdown stops reading from every connection at once (RequestHandler ignores
    data once closing), so an upload in progress would never receive the rest of its body; the
    requests finish here first, with their connections still read, then aiohttp closes the idle ones.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while requests_in_flight(app) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if requests_in_flight(app):
        _log.warning("stopping with %d request(s) still in flight after %.0f s", requests_in_flight(app), timeout)


def _reloader(reload: Callable[[], S4Config], credentials: Credentials, identities: Identities) -> Callable[[], None]:
    def on_sighup() -> None:
        try:
            pairs, _ = ensure_credentials(reload())
            parsed = Identities.parse(pairs)  # every policy readable, or none of the new file is used
        except Exception as exc:  # a bad file must not take the server down: keep serving as before
            _log.error("SIGHUP: the configuration did not load, keeping the current one: %s", exc)
            return
        # Both at once, with no await between: a request sees the old keys and identities or the new ones.
        credentials.replace(Credential(p.access_key_id, p.secret_access_key) for p in pairs)
        identities.replace(parsed)
        names = sorted({identity.name for identity in parsed.values()})
        _log.info("SIGHUP: configuration reloaded (%d credential(s), identities %s)", len(credentials), names)

    return on_sighup


def announce(endpoint: str, config: S4Config, key: str, secret: str, generated: bool, workers: int = 1) -> None:
    """Endpoint and credentials on start. A secret the user configured (env or file) is never printed:
    container logs are widely readable. The data dir's own generated pair is, so `make serve` just works."""
    saved = config.data_dir / "credentials.json"
    if config.credentials:
        shown, source = "(hidden)", "from your configuration"
    else:
        shown, source = secret, (f"generated and saved in {saved}" if generated else f"from {saved}")
    lines = [
        f"S4 is serving S3 at {endpoint} (data in {config.data_dir.resolve()})"
        + (f" with {workers} worker processes" if workers > 1 else ""),
        f"  access key id:     {key}",
        f"  secret access key: {shown}   ({source})",
        "  try:",
        f"    AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={shown if shown != '(hidden)' else '...'} \\",
        f"      aws --endpoint-url {endpoint} s3 mb s3://my-bucket",
    ]
    print("\n".join(lines), flush=True)
    print(f"endpoint: {endpoint}", file=sys.stderr, flush=True)
