"""Health, readiness, metrics and the access log: what operators see of the gateway.

``/health``, ``/ready`` and ``/metrics`` need no credentials. An S3 request for a
bucket named ``health`` (or ``ready``, ``metrics``) is always signed, and these
endpoints answer only unsigned GET/HEAD requests, so the two never collide;
``/_s4/health`` etc. are also served, unambiguously (``_`` is not valid in a bucket
name).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from s4.metrics import CONTENT_TYPE, Metrics

SERVICE_PATHS = {"/health": "health", "/ready": "ready", "/metrics": "metrics"}
PREFIXED = {f"/_s4{path}": name for path, name in SERVICE_PATHS.items()}
Readiness = Callable[[], Awaitable[str | None]]


def service_endpoint(request: web.Request) -> str | None:
    """Which operator endpoint this request is for, if any."""
    path = request.path
    if path in PREFIXED:
        return PREFIXED[path]
    if path not in SERVICE_PATHS or request.method not in ("GET", "HEAD"):
        return None
    signed = "Authorization" in request.headers or any(
        k in request.query for k in ("X-Amz-Signature", "Signature", "X-Amz-Credential")
    )
    return None if signed else SERVICE_PATHS[path]


async def serve_endpoint(name: str, metrics: Metrics | None, readiness: Readiness | None) -> web.Response:
    if name == "health":
        return web.Response(text="ok\n")
    if name == "ready":
        reason = await readiness() if readiness is not None else None
        if reason is not None:
            return web.Response(status=503, text=f"not ready: {reason}\n")
        return web.Response(text="ready\n")
    if metrics is None:
        return web.Response(status=404, text="metrics are disabled\n")
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def service_app(metrics: Metrics | None, readiness: Readiness | None) -> web.Application:
    """The operator endpoints alone, for ``--metrics-port``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        name = SERVICE_PATHS.get(request.path) or PREFIXED.get(request.path)
        if name is None:
            return web.Response(status=404, text="not found\n")
        return await serve_endpoint(name, metrics, readiness)

    async def server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "S4"  # not aiohttp's, which names Python's and its own versions

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    app.on_response_prepare.append(server_header)
    return app


class AccessLog:
    """One JSON line per request, to stdout or a file."""

    def __init__(self, target: str | None) -> None:
        self._logger: logging.Logger | None = None
        if target is None:
            return
        logger = logging.getLogger("s4.access")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.handlers.clear()
        handler = logging.StreamHandler(sys.stdout) if target == "-" else logging.FileHandler(target)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        self._logger = logger

    def write(self, **fields: Any) -> None:
        if self._logger is None:
            return
        # pid: which process served it, with several workers on the port (s4 serve --workers).
        fields = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "pid": os.getpid()} | fields
        self._logger.info(json.dumps(fields, separators=(",", ":"), default=str))


class JsonLogFormatter(logging.Formatter):
    """``--log-format json``: application logs as JSON lines, like the access log."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
