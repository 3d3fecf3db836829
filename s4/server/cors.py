"""CORS applied, so that a browser can use the gateway: preflights answered from the bucket's rules,
and actual responses marked for the browser to let the page read them.

A preflight (``OPTIONS`` on a bucket or an object) carries no credentials, so it is answered
without authentication, from the bucket's CORS configuration alone, as S3 answers it: 400 without
an ``Origin`` or a valid ``Access-Control-Request-Method``, 403 AccessForbidden when the bucket has
no configuration or no rule allows the origin, the method and every requested header, 200 with the
``Access-Control-*`` headers of the first rule that does. An actual request with an ``Origin`` gets
those headers on its response, also on an error, when a rule allows its origin and method.

The rules are read through the store and kept for a few seconds (every browser request carries an
``Origin``; over S3 each read is a request upstream). PutBucketCors and DeleteBucketCors take
effect at once in this process, in other processes serving the same store within CACHE_TTL_S.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from s4.server.auth.sigv4 import AuthContext, PayloadMode
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.documents.cors import CORS_METHODS, CorsRule, cors_rules, match
from s4.store import ObjectStore, StoreError

CACHE_TTL_S = 2.0
CACHE_SIZE = 10_000
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
ANONYMOUS = AuthContext("", PayloadMode.UNSIGNED, None, b"", "", "", "", presigned=False)
"""The identity of a preflight: nobody (browsers send no credentials with one)."""
_HEADERS = "s4.cors_headers"


class CorsRules:
    """Buckets' CORS rules as the store has them, each kept CACHE_TTL_S seconds."""

    def __init__(self, store: ObjectStore, ttl: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._kept: OrderedDict[str, tuple[float, list[CorsRule] | None]] = OrderedDict()
        self._changes = 0
        """PutBucketCors / DeleteBucketCors seen here: rules read while one ran may be the old ones."""

    async def rules(self, bucket: str) -> list[CorsRule] | None:
        """The bucket's rules; None when it has no CORS configuration. StoreError (NoSuchBucket...)."""
        now = self._clock()
        kept = self._kept.get(bucket)
        if kept is not None and kept[0] > now:
            return kept[1]
        changes = self._changes
        document = await self._store.get_bucket_document(bucket, "cors")
        rules = None if document is None else cors_rules(document)
        if changes != self._changes:  # a change here meanwhile: these rules may predate it, not kept
            return rules
        self._kept[bucket] = (now + self._ttl, rules)
        self._kept.move_to_end(bucket)
        while len(self._kept) > CACHE_SIZE:
            self._kept.popitem(last=False)
        return rules

    def forget(self, bucket: str) -> None:
        self._changes += 1
        self._kept.pop(bucket, None)


CORS_RULES = web.AppKey("cors_rules", CorsRules)


def _allowed(rule: CorsRule, origin: str) -> dict[str, str]:
    """The headers S3 answers for a rule that allows ``origin``."""
    headers = {
        "Access-Control-Allow-Origin": "*" if rule.any_origin() else origin,
        "Access-Control-Allow-Methods": ", ".join(rule.methods),
        "Vary": VARY,
    }
    if not rule.any_origin():
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age)
    return headers


def _forbidden(message: str, method: str, resource_type: str) -> S3Error:
    return S3Error(
        "AccessForbidden",
        f"CORSResponse: {message}",
        status=403,
        extra={"Method": method, "ResourceType": resource_type},
    )


async def preflight(req: S3Request) -> web.Response:
    """OPTIONS on a bucket or an object: what the bucket's CORS rules allow this origin to do."""
    origin = req.headers.get("Origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    rules = await req.http.app[CORS_RULES].rules(req.bucket or "")
    method = req.headers.get("Access-Control-Request-Method")
    resource_type = "OBJECT" if req.key else "BUCKET"
    if rules is None:
        raise _forbidden("CORS is not enabled for this bucket.", method or "OPTIONS", resource_type)
    if method not in CORS_METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method or 'null'}")
    requested = [h.strip() for h in req.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()]
    rule = match(rules, origin, method, requested)
    if rule is None:
        raise _forbidden(
            "This CORS request is not allowed. This is usually because the evalution of Origin, request method /"
            " Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the"
            " resource's CORS spec.",
            method,
            resource_type,
        )
    headers = _allowed(rule, origin)
    if requested:
        headers["Access-Control-Allow-Headers"] = ", ".join(requested)
    return web.Response(status=200, headers=headers)


async def remember_headers(request: web.Request, bucket: str) -> None:
    """Work out, before the request is handled, the CORS headers its response (or error) will carry."""
    origin = request.headers.get("Origin")
    if not origin:
        return
    try:
        rules = await request.app[CORS_RULES].rules(bucket)
    except StoreError:
        return  # no bucket, or no answer: nothing to allow; the request itself will say what is wrong
    rule = match(rules or [], origin, request.method)
    if rule is not None:
        request[_HEADERS] = _allowed(rule, origin)


def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Put the remembered CORS headers on the response about to go out."""
    headers = request.get(_HEADERS)
    if headers:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
