"""Get, Put and Delete of every bucket document: which sub-resource is which document, how its
body is checked, and what S3 answers when a bucket has none.

Each kind of document gets its own three handlers (so that the access log and the metrics name
S3's operation: GetBucketCors, PutBucketLifecycleConfiguration, DeletePublicAccessBlock...); they
share one body. A Put keeps the checked document with the store (``put_bucket_document``), a Get
returns it as kept, or the default S3 has (an ACL, an empty notification configuration), or S3's
404 for that document; a Delete is idempotent, as in S3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from s4.server.access import PublicAccessBlock, is_public_policy, parse_bucket_policy
from s4.server.context import S3Request
from s4.server.cors import CORS_RULES
from s4.server.errors import S3Error
from s4.server.ops.documents import acl, object_acl, settings
from s4.server.ops.documents.common import require_body_digest
from s4.server.ops.documents.cors import validate_cors
from s4.server.ops.documents.lifecycle import validate_lifecycle
from s4.server.ops.documents.policy import validate_policy
from s4.server.xml import document, element

Handler = Callable[[S3Request], Awaitable[web.StreamResponse]]
Validator = Callable[[S3Request, bytes], Awaitable[bytes]]
XML = "application/xml"
OWNERSHIP = settings.OWNERSHIP_DOCUMENT
PUBLIC_ACCESS_BLOCK = "public-access-block"
ACL = acl.ACL_DOCUMENT


def _plain(check: Callable[[bytes], bytes]) -> Validator:
    async def validate(req: S3Request, body: bytes) -> bytes:
        return check(body)

    return validate


async def _policy(req: S3Request, body: bytes) -> bytes:
    checked = validate_policy(body, req.bucket or "")
    block = await req.store.get_bucket_document(req.bucket or "", PUBLIC_ACCESS_BLOCK)
    blocked = block is not None and PublicAccessBlock.from_document(block).block_public_policy
    if blocked and is_public_policy(parse_bucket_policy(checked, req.bucket or "")):
        raise S3Error("AccessDenied", "Access Denied")  # S3's answer to a public policy under BlockPublicPolicy
    return checked


async def get_bucket_policy_status(req: S3Request) -> web.Response:
    """GetBucketPolicyStatus: whether the bucket's policy grants anyone (S3's meaning of public)."""
    kept = await req.store.get_bucket_document(req.bucket or "", "policy")
    if kept is None:
        raise S3Error("NoSuchBucketPolicy", "The bucket policy does not exist", status=404)
    public = is_public_policy(parse_bucket_policy(kept, req.bucket or ""))
    body = document("PolicyStatus", [element("IsPublic", "true" if public else "false")])
    return web.Response(body=body, content_type=XML)


get_bucket_policy_status.__name__ = get_bucket_policy_status.__qualname__ = "GetBucketPolicyStatus"


async def _ownership(req: S3Request, body: bytes) -> bytes:
    """BucketOwnerEnforced turns ACLs off: S3 refuses it while the bucket's ACL grants anyone else."""
    checked = settings.validate_ownership_controls(body)
    if settings.object_ownership(checked) == "BucketOwnerEnforced":
        kept = await req.store.get_bucket_document(req.bucket or "", ACL)
        if kept is not None and not acl.stored_acl(kept).is_private:
            raise S3Error(
                "InvalidBucketAclWithObjectOwnership",
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            )
    return checked


async def _acl(req: S3Request, body: bytes) -> bytes:
    """PutBucketAcl: a canned ACL, grant headers, or an AccessControlPolicy document (one of them)."""
    owner = acl.owner_of(await req.store.get_bucket_document(req.bucket or "", ACL), req.bucket_owner_id)
    chosen = acl.requested_acl(req.headers, body, owner)
    await object_acl.require_acls_allowed(req, chosen)
    return chosen.to_xml()


def _not_found(code: str, message: str) -> Callable[[S3Request], bytes]:
    def missing(req: S3Request) -> bytes:
        raise S3Error(code, message, status=404)

    return missing


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of bucket document, as S3 serves it."""

    subresource: str
    """The query parameter that names it (``?cors``)."""
    name: str
    """The store's name for it (ObjectStore.get_bucket_document)."""
    operations: tuple[str, str, str | None]
    """S3's names of its Get, Put and Delete (None: S3 has no Delete for it)."""
    validate: Validator
    """A Put's body, checked, as the document to keep."""
    missing: Callable[[S3Request], bytes]
    """A Get's answer when the bucket has none: the default document, or S3's 404."""
    put_status: int = 200
    content_type: str = XML
    digest_required: bool = True
    """S3 requires a digest of the Put's body (Content-MD5 or a flexible checksum), as for DeleteObjects."""


KINDS = (
    Kind(
        "cors",
        "cors",
        ("GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
        _plain(validate_cors),
        _not_found("NoSuchCORSConfiguration", "The CORS configuration does not exist"),
    ),
    Kind(
        "lifecycle",
        "lifecycle",
        ("GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle"),
        _plain(validate_lifecycle),
        _not_found("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"),
    ),
    Kind(
        "encryption",
        "encryption",
        ("GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
        _plain(settings.validate_encryption),
        _not_found(
            "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found"
        ),
    ),
    Kind(
        "publicAccessBlock",
        "public-access-block",
        ("GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock"),
        _plain(settings.validate_public_access_block),
        _not_found("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found"),
    ),
    Kind(
        "ownershipControls",
        OWNERSHIP,
        ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls"),
        _ownership,
        _not_found("OwnershipControlsNotFoundError", "The bucket ownership controls were not found"),
    ),
    Kind(
        "notification",
        "notification",
        ("GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration", None),
        _plain(settings.validate_notification),
        lambda req: document("NotificationConfiguration", []),
        digest_required=False,
    ),
    Kind(
        "tagging",
        "tagging",
        ("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
        _plain(settings.validate_bucket_tagging),
        _not_found("NoSuchTagSet", "The TagSet does not exist"),
        put_status=204,
    ),
    Kind(
        "acl",
        ACL,
        ("GetBucketAcl", "PutBucketAcl", None),
        _acl,
        lambda req: acl.default_acl(req.bucket_owner_id).to_xml(),
    ),
    Kind(
        "policy",
        "policy",
        ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
        _policy,
        _not_found("NoSuchBucketPolicy", "The bucket policy does not exist"),
        put_status=204,
        content_type="application/json",
    ),
)


def _forget_cors(req: S3Request, kind: Kind) -> None:
    """This gateway's CORS rules answer at once from the new document (other processes within seconds)."""
    if kind.name == "cors":
        req.http.app[CORS_RULES].forget(req.bucket or "")


def _handlers(kind: Kind) -> dict[str, Handler]:
    async def get(req: S3Request) -> web.Response:
        kept = await req.store.get_bucket_document(req.bucket or "", kind.name)
        body = kind.missing(req) if kept is None else kept
        return web.Response(body=body, content_type=kind.content_type)

    async def put(req: S3Request) -> web.Response:
        body = await req.read_small_body()
        if kind.digest_required and body:
            require_body_digest(req.headers)
        checked = await kind.validate(req, body)
        await req.store.put_bucket_document(req.bucket or "", kind.name, checked)
        _forget_cors(req, kind)
        return web.Response(status=kind.put_status)

    async def delete(req: S3Request) -> web.Response:
        await req.store.delete_bucket_document(req.bucket or "", kind.name)
        _forget_cors(req, kind)
        return web.Response(status=204)

    handlers: dict[str, Handler] = {}
    for method, handler, operation in zip(("GET", "PUT", "DELETE"), (get, put, delete), kind.operations, strict=True):
        if operation is not None:
            handler.__name__ = handler.__qualname__ = operation
            handlers[method] = handler
    return handlers


HANDLERS: dict[str, dict[str, Handler]] = {kind.subresource: _handlers(kind) for kind in KINDS}
"""Sub-resource, then method, to handler."""
OPERATION_NAMES: dict[Handler, str] = {
    handler: handler.__name__
    for by_method in (*HANDLERS.values(), object_acl.HANDLERS, {"GET": get_bucket_policy_status})
    for handler in by_method.values()
}


def route(method: str, key: str | None, query: Mapping[str, str]) -> Handler | None:
    """The handler of a request that names a document's sub-resource (None: it names none): a bucket's
    documents, or an object's ACL."""
    if key is not None:
        if "acl" not in query:
            return None
        handler = object_acl.HANDLERS.get(method)
        if handler is None:
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
        return handler
    if "policyStatus" in query:
        if method != "GET":
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
        return get_bucket_policy_status
    for subresource, by_method in HANDLERS.items():
        if subresource in query:
            handler = by_method.get(method)
            if handler is None:
                raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
            return handler
    return None


async def creation_documents(req: S3Request) -> dict[str, bytes]:
    """The documents CreateBucket's headers ask for (``x-amz-acl``, ``x-amz-grant-*``,
    ``x-amz-object-ownership``), checked before the bucket is made, so a bad header makes none."""
    documents: dict[str, bytes] = {}
    ownership = req.headers.get("x-amz-object-ownership")
    if ownership is not None:
        documents[OWNERSHIP] = settings.ownership_controls(ownership.strip())
    chosen = acl.acl_from_headers(req.headers, req.owner_id)
    if chosen is not None:
        if ownership is not None and ownership.strip() == "BucketOwnerEnforced" and not chosen.is_private:
            raise S3Error(
                "InvalidBucketAclWithObjectOwnership",
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            )
        documents[ACL] = chosen.to_xml()
    return documents


async def keep_creation_documents(req: S3Request, documents: Mapping[str, bytes], recreated: bool) -> None:
    """Keep what creation_documents made. A bucket created again by its owner (us-east-1 answers 200)
    gets its ACL reset, as S3 does: to the one asked for, or to the default."""
    for name, kept in documents.items():
        await req.store.put_bucket_document(req.bucket or "", name, kept)
    if recreated and ACL not in documents:
        await req.store.delete_bucket_document(req.bucket or "", ACL)
