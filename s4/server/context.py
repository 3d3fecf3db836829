"""One authenticated S3 request, as the operation handlers see it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from s4.config import S4Config
from s4.server.auth.sigv4 import AuthContext, Credentials
from s4.server.body.verified import VerifiedBody
from s4.server.errors import S3Error
from s4.server.limits import BodyRate, idle_bounded
from s4.store import ObjectStore

if TYPE_CHECKING:
    from s4.server.access.identities import Identity

MAX_XML_BODY = 2 * 1024 * 1024
MAX_OBJECT_BYTES = 5 * 1024**3
ANONYMOUS_OWNER = "anonymous"
"""The owner ID of what an anonymous request writes (into a bucket whose policy or ACL lets anyone)."""


@dataclasses.dataclass
class S3Request:
    http: web.Request
    request_id: str
    bucket: str | None
    key: str | None
    auth: AuthContext
    store: ObjectStore
    config: S4Config
    body: VerifiedBody | None = None
    """The request body once a handler asked for it (its size feeds the metrics)."""
    credentials: Credentials | None = None
    """The gateway's keys, for a handler that authenticates from the body (a form upload's fields)."""
    identity: Identity | None = None
    """Who signed the request (s4.server.access.identities); None for an anonymous one."""
    bucket_owner: str | None = None
    """The name of the bucket's owner, once the access check has read it."""

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.http.headers

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.http.query

    @property
    def method(self) -> str:
        return self.http.method

    @property
    def resource(self) -> str:
        return "/" + "/".join(p for p in (self.bucket, self.key) if p)

    @property
    def owner_id(self) -> str:
        """The requester's owner ID (canonical ID and display name alike): its identity's name."""
        if self.identity is not None:
            return self.identity.name
        return self.auth.access_key_id or ANONYMOUS_OWNER

    @property
    def bucket_owner_id(self) -> str:
        """The owner ID of the bucket (as the access check read it), of what it holds unless given another."""
        return self.bucket_owner or self.owner_id

    def verified_body(self, max_size: int = MAX_OBJECT_BYTES, *, header_checksums: bool = True) -> VerifiedBody:
        """The request body, decoded (aws-chunked) and checked (signature, MD5, checksums) as it streams.

        A body that stops arriving for ``limits.idle_timeout``, or averages less than
        ``limits.min_body_rate``, fails with RequestTimeout, so a stalled or trickling client cannot
        hold the handler (and the upload it is staging) forever. The bytes are the ones sent: a
        Content-Encoding (gzip, ...) is never decoded (aiohttp's auto_decompress is off).
        """
        declared = self.http.content_length
        if declared is None and "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.")
        limits = self.config.limits
        rate = BodyRate(limits.min_body_rate, limits.min_body_rate_window)
        source = idle_bounded(self.http.content, limits.idle_timeout, rate)
        self.body = VerifiedBody(source, self.headers, self.auth, max_size=max_size, header_checksums=header_checksums)
        return self.body

    async def read_small_body(self, limit: int = MAX_XML_BODY, *, header_checksums: bool = True) -> bytes:
        """A request document (XML), verified like any body and refused past ``limit``.

        Past the limit it is S3's MaxMessageLengthExceeded, as for a document too big to parse,
        not EntityTooLarge, which S3 keeps for object data.
        """
        if self.http.content_length is None and not self.http.body_exists:
            return b""
        data = bytearray()
        try:
            async for chunk in self.verified_body(max_size=limit, header_checksums=header_checksums):
                data += chunk
        except S3Error as exc:
            if exc.code == "EntityTooLarge":
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", extra=exc.extra) from None
            raise
        return bytes(data)
