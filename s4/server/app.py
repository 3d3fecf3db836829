"""The aiohttp application: request ids, authentication before anything else, S3 errors.

Every request is authenticated before its operation runs, and before ``100
Continue`` is sent: a client that waits for 100 never uploads a body the gateway
would refuse. Errors of every layer leave as S3 XML errors with the request id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from s4.config import S4Config
from s4.metrics import Metrics
from s4.server import cors
from s4.server.access.authorize import IDENTITIES, READS, access_denied, authorize, may_list_key, refused
from s4.server.access.identities import Identities
from s4.server.addressing import split_target
from s4.server.auth.post_signature import PENDING
from s4.server.auth.sigv4 import AuthContext, Credentials, PayloadMode, authenticate
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.http import http_date
from s4.server.limits import RequestLimiter, body_bytes_sent, check_header_section, finish_within, slow_down
from s4.server.observability import AccessLog, serve_endpoint, service_endpoint
from s4.server.routes import FORM_AUTHENTICATED, operation_name, route
from s4.store import ObjectStore, StoreError, StoreErrorKind
from s4.store.stats import WRITE_OUTCOME

_log = logging.getLogger("s4.server")
STORE = web.AppKey("store", ObjectStore)
CONFIG = web.AppKey("config", S4Config)
CREDENTIALS = web.AppKey("credentials", Credentials)
METRICS = web.AppKey("metrics", object)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
READINESS = web.AppKey("readiness", object)
LIMITER = web.AppKey("limiter", RequestLimiter)
# Store errors that are the client's doing, not the backend's: they do not count as backend errors.
CLIENT_STORE_ERRORS = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchUpload",
        "BucketAlreadyOwnedByYou",
        "BucketNotEmpty",
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "InvalidRange",
        "PreconditionFailed",
        "ConditionalRequestConflict",
        "InvalidArgument",
        "KeyTooLongError",
        "MalformedXML",
        "AccessDenied",
        "InvalidRequest",
    }
)
_AUTH = "s4.auth"
_PREPARED_AT = "s4.prepared_at"
_RID = "s4.request_id"
_PREPARED = "s4.prepared"
_RESPONSE = "s4.response"
_UNSENT_BODY = "s4.unsent_body"
SERVER = "S4"
"""The Server header of every answer (S3 says AmazonS3): no software versions for a scanner to match."""
QUIET_SERVER_CODES = frozenset({"SlowDown", "NotImplemented"})
"""5xx answers that are no fault of the gateway (load shedding, a refused sub-resource): an INFO line."""
OPERATOR_OPERATIONS = {"health": "Health", "ready": "Ready", "metrics": "Metrics"}


def request_id(request: web.Request) -> str:
    rid = request.get(_RID)
    if rid is None:
        rid = secrets.token_hex(8).upper()
        request[_RID] = rid
    return rid


ANONYMOUS = AuthContext("", PayloadMode.UNSIGNED, None, b"", "", "", "", presigned=False)
"""A request with no signature at all: judged as nobody (principal None) by the access check."""
_SIGNATURE_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "AWSAccessKeyId", "Signature")


def _anonymous(request: web.Request) -> bool:
    """No Authorization header and no presigned query (a partial one goes to authenticate, which says why)."""
    return "Authorization" not in request.headers and not any(p in request.query for p in _SIGNATURE_PARAMS)


def _authenticate(request: web.Request) -> AuthContext:
    auth = request.get(_AUTH)
    if auth is None and _anonymous(request):
        auth = request[_AUTH] = ANONYMOUS
    if auth is None:
        raw_path, _, raw_query = request.raw_path.partition("?")
        auth = authenticate(
            request.method,
            raw_path,
            raw_query,
            request.headers,
            request.app[CREDENTIALS],
            dt.datetime.now(dt.UTC),
        )
        request[_AUTH] = auth
    return auth


def error_response(request: web.Request, error: S3Error) -> web.Response:
    rid = request_id(request)
    headers = dict(error.headers)
    if request.method == "HEAD" or error.status == 304:
        return web.Response(status=error.status, headers=headers)
    bucket, key = _target_or_none(request)
    resource = "/" + "/".join(p for p in (bucket, key) if p)
    return web.Response(
        status=error.status, body=error.to_xml(rid, resource), content_type="application/xml", headers=headers
    )


def _target_or_none(request: web.Request) -> tuple[str | None, str | None]:
    try:
        return split_target(request.host, request.raw_path, request.app[CONFIG].domain)
    except Exception:  # an error page must not fail on a strange Host header
        return None, None


def requests_in_flight(app: web.Application) -> int:
    """S3 requests being served now (admitted ones: a refusal is answered at once); a stopping server
    waits for them (see runner.serve_store)."""
    return app[LIMITER].in_flight


def translate(error: Exception) -> S3Error:
    """Errors of the layers below, as the S3 error a client should see."""
    if isinstance(error, S3Error):
        return error
    if isinstance(error, StoreError):
        # A delete marker answers for itself (x-amz-delete-marker, x-amz-version-id), as on S3.
        headers = {"x-amz-delete-marker": "true"} if error.delete_marker else {}
        if error.version_id is not None and (error.delete_marker or error.code == "NoSuchVersion"):
            headers["x-amz-version-id"] = error.version_id
        if error.delete_marker and error.last_modified is not None:
            headers["Last-Modified"] = http_date(error.last_modified)
        extra = {"VersionId": error.version_id} if error.code == "NoSuchVersion" and error.version_id else None
        return S3Error(error.code, error.message, resource=error.resource, headers=headers, extra=extra)
    return S3Error("InternalError", "We encountered an internal error. Please try again.")


async def handle(request: web.Request) -> web.StreamResponse:
    endpoint = service_endpoint(request)
    started = time.perf_counter()
    if endpoint is not None:
        response = await serve_endpoint(endpoint, request.app[METRICS], request.app[READINESS])
        # In the access log like any request, but not in the S3 request metrics: probes are not traffic.
        _finish(request, _Record(op=OPERATOR_OPERATIONS[endpoint], status=response.status, response=response), started)
        return response
    metrics = request.app[METRICS]
    record = _Record()
    limiter = request.app[LIMITER]
    admitted = limiter.try_acquire()
    if metrics is not None:
        metrics.in_flight.inc()
    try:
        response = await _handle_s3(request, record, admitted)
        record.status = response.status
        record.streamed = response.prepared
        # Sent here, not by aiohttp after we return: bounded in time, and the slot is held until it is out.
        await finish_within(request, response, request.app[CONFIG].limits.idle_timeout)
        return response
    finally:
        if admitted:
            limiter.release()
        if metrics is not None:
            metrics.in_flight.dec()
        _finish(request, record, started)


@dataclasses.dataclass
class _Record:
    """What the metrics and the access log learn about one request as it goes."""

    op: str = "Unknown"
    """Named before any check can refuse the request (routes.operation_name); "Unknown" only if even
    the target could not be read."""
    bucket: str | None = None
    key: str | None = None
    request: S3Request | None = None
    """Once authenticated: who asked (its identity, or None for an anonymous request)."""
    status: int = 500
    response: web.StreamResponse | None = None
    streamed: bool = False
    """The handler sent the response itself (a GET) with write_within, which counts what went out."""
    body: object | None = None


async def _handle_s3(request: web.Request, record: _Record, admitted: bool) -> web.StreamResponse:
    try:
        config = request.app[CONFIG]
        bucket, key = split_target(request.host, request.raw_path, config.domain)
        record.bucket, record.key = bucket, key
        record.op = operation_name(request.method, bucket, key, request.query, request.headers)
        # Refused before any work (routing, signature): these guard the gateway's own resources.
        check_header_section(request, config.limits.max_header_bytes)
        if not admitted:
            raise slow_down()
        handler = route(request.method, bucket, key, request.query, request.headers)
        if handler is cors.preflight:  # a browser's preflight carries no credentials: the bucket's rules answer
            anonymous = S3Request(request, request_id(request), bucket, key, cors.ANONYMOUS, request.app[STORE], config)
            record.response = await handler(anonymous)
            return record.response
        if bucket is not None:  # before authentication, so that a refusal carries them too
            await cors.remember_headers(request, bucket)
        # A form upload is signed in its body: its handler authenticates it from the fields.
        form = handler in FORM_AUTHENTICATED
        auth = PENDING if form else _authenticate(request)
        store, credentials, identities = request.app[STORE], request.app[CREDENTIALS], request.app[IDENTITIES]
        req = S3Request(request, request_id(request), bucket, key, auth, store, config, credentials=credentials)
        req.identity = identities.of(auth.access_key_id)
        record.request = req
        if not form:  # a form upload is authorized by its handler, once its fields say who and where
            await authorize(req, record.op)
        response = await handler(req)
        record.response, record.body = response, req.body
        return response
    except Exception as exc:  # every failure becomes an S3 error, or a cut connection once bytes went out
        metrics = request.app[METRICS]
        if (
            isinstance(exc, StoreError)
            and exc.kind is StoreErrorKind.BACKEND
            and exc.code not in CLIENT_STORE_ERRORS
            and metrics is not None
        ):
            metrics.backend_errors.labels(exc.code).inc()
        if request.get(_PREPARED):
            # Too late for an error document: cutting the connection is the only honest answer. The log
            # keeps the status that went out and the bytes that reached the client before the cut.
            started_response = request.get(_RESPONSE)
            if started_response is not None:
                record.response, record.status, record.streamed = started_response, started_response.status, True
            level = logging.INFO if isinstance(exc, ConnectionError) else logging.ERROR
            _log.log(level, "request %s failed after the response started: %r", request_id(request), exc)
            raise
        error = translate(exc)
        if error.code == "NoSuchKey" and record.op in READS and record.request is not None:
            error = await _hidden_if_unlistable(record.request, error)
        if error.code in QUIET_SERVER_CODES:
            _log.info("request %s refused: %s", request_id(request), error)
        elif error.status >= 500:
            _log.exception("request %s failed: %s", request_id(request), exc, exc_info=exc)
        response = error_response(request, error)
        if request.body_exists and not request.content.is_eof():
            # Answered before its body was read (an access check or an upstream failure ahead of the handler):
            # the rest of the body must not be read as the next request on a kept-alive connection (a load
            # balancer that reuses connections then got 400 MalformedRequest for another client's request).
            request[_UNSENT_BODY] = True
        record.response = response
        return response


def _finish(request: web.Request, record: _Record, started: float) -> None:
    elapsed = time.perf_counter() - started
    response = record.response
    bytes_out = 0
    if record.streamed:
        bytes_out = body_bytes_sent(request)
    elif response is not None and response.body_length:  # body_length: set once the whole response went out
        bytes_out = len(getattr(response, "body", b"") or b"")
    bytes_in = getattr(record.body, "size", 0) or 0
    metrics = request.app[METRICS]
    if metrics is not None and record.op not in OPERATOR_OPERATIONS.values():
        metrics.observe_request(record.op, record.status, elapsed, bytes_in, bytes_out, record.bucket)
        prepared_at = request.get(_PREPARED_AT)
        metrics.ttfb.labels(record.op).observe((prepared_at or time.perf_counter()) - started)
    outcome = WRITE_OUTCOME.get()
    denied = refused(request)
    request.app[ACCESS_LOG].write(
        request_id=request_id(request),
        principal=_principal(record.request),
        op=record.op,
        bucket=record.bucket,
        key=record.key,
        status=record.status,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        duration=round(elapsed, 6),
        codec=outcome[0] if outcome else None,
        ratio=round(outcome[2] / outcome[1], 4) if outcome and outcome[1] else None,
        **({"refused_action": denied[0], "refused_because": denied[1]} if denied else {}),
    )


async def _hidden_if_unlistable(req: S3Request, error: S3Error) -> S3Error:
    """A missing object is 403 AccessDenied to whoever may not list its key, as S3 answers (see may_list_key)."""
    try:
        return error if await may_list_key(req) else access_denied()
    except Exception:  # the original answer stands if the check itself cannot be made
        return error


def _principal(req: S3Request | None) -> str | None:
    """The access log's principal: the identity's ARN, "anonymous", or None before authentication."""
    if req is None or (req.auth.access_key_id == "" and req.auth is not ANONYMOUS):
        return None  # not authenticated (refused first, or a form whose fields were never verified)
    return "anonymous" if req.identity is None else req.identity.principal


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` only once the request's headers authenticate and fit the limits."""
    if request.version != (1, 1) or request.headers.get("Expect", "").lower() != "100-continue":
        return None
    try:
        check_header_section(request, request.app[CONFIG].limits.max_header_bytes)
        if request.app[LIMITER].full:
            raise slow_down()  # no body the gateway has no room for
        if not _authenticated_by_form(request):
            auth = _authenticate(request)
            if not await _authorized(request, auth):
                # No 100: the handler answers 403 at once (logged), and the connection closes after it, since
                # the body the headers announced never comes (it would be read as the next request).
                request[_UNSENT_BODY] = True
                return None
    except (S3Error, StoreError) as exc:  # a store's failure in the access check is an S3 error too, not a bare 500
        error = translate(exc)
        if isinstance(exc, StoreError) and error.status >= 500:
            # The access check could not read what it needs (the upstream is failing): no early answer, which
            # a load balancer in front may not pair with the body its client then never sends (the next request
            # on that client connection was read as this body and refused as malformed). The body comes, and
            # the handler answers the same failure after it.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        response = error_response(request, error)
        # No 100, so the body the headers announced never comes: the connection closes after this answer, or
        # the next request on it (another client's, behind a load balancer that reuses connections) would be
        # read as that body and answered 400 MalformedRequest.
        response.force_close()
        response.headers["Connection"] = "close"
        return response
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def _authorized(request: web.Request, auth: AuthContext) -> bool:
    """The access check, ahead of the body a client waits to send (the handler's own check finds the bucket's
    documents read already, on the request)."""
    config = request.app[CONFIG]
    bucket, key = split_target(request.host, request.raw_path, config.domain)
    req = S3Request(request, request_id(request), bucket, key, auth, request.app[STORE], config)
    req.identity = request.app[IDENTITIES].of(auth.access_key_id)
    try:
        await authorize(req, operation_name(request.method, bucket, key, request.query, request.headers))
    except S3Error as exc:
        if exc.code == "AccessDenied":
            return False
        raise
    return True


def _authenticated_by_form(request: web.Request) -> bool:
    """A form upload, whose signature is in the body the client waits to send."""
    try:
        bucket, key = split_target(request.host, request.raw_path, request.app[CONFIG].domain)
        return route(request.method, bucket, key, request.query, request.headers) in FORM_AUTHENTICATED
    except S3Error:
        return False


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request[_PREPARED] = True  # from here on a failure can only cut the connection
    request[_PREPARED_AT] = time.perf_counter()
    request[_RESPONSE] = response
    rid = request_id(request)
    response.headers["x-amz-request-id"] = rid
    response.headers["x-amz-id-2"] = rid
    # Set, not defaulted: aiohttp has already put its own (Python and aiohttp versions) there by now.
    response.headers["Server"] = SERVER
    cors.add_headers(request, response)
    if request.get(_UNSENT_BODY):  # said in the headers too: aiohttp wrote its Connection header already
        response.force_close()
        response.headers["Connection"] = "close"


@web.middleware
async def _unrouted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request target the router cannot match (``*``, which is no path) goes the S3 way too:
    an XML error with a request id and an access log line, not aiohttp's text 404."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return await handle(request)


def create_app(
    store: ObjectStore,
    credentials: Credentials,
    config: S4Config,
    metrics: Metrics | None = None,
    access_log: AccessLog | None = None,
    identities: Identities | None = None,
) -> web.Application:
    """The S3 app. ``identities``: who signs with each key (s4.server.access.identities); by default every
    key is an admin, as an app made in-process for a test wants."""
    app = web.Application(client_max_size=0, middlewares=[_unrouted])
    app[STORE] = store
    app[CONFIG] = config
    app[CREDENTIALS] = credentials
    app[IDENTITIES] = identities if identities is not None else Identities(None)
    app[METRICS] = metrics
    app[ACCESS_LOG] = access_log or AccessLog(None)
    app[READINESS] = getattr(store, "check_ready", None)
    app[LIMITER] = RequestLimiter(config.limits.max_concurrent_requests)
    app[cors.CORS_RULES] = cors.CorsRules(store)
    # [\s\S]: every path, also keys with a newline ('.' stops at one; the router would answer 404 in text).
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle, expect_handler=expect_continue)
    app.on_response_prepare.append(_add_request_id)
    return app
