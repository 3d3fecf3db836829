"""Object ACLs: GetObjectAcl, PutObjectAcl, and ``x-amz-acl`` / ``x-amz-grant-*`` on PutObject.

An object's ACL is kept as a document of its bucket, ``object-acl/<SHA-256 of the key>``, together
with the identity of the object it was given to (key, ETag, Last-Modified): an object written
again, without an ACL, has S3's default ACL again (its owner's FULL_CONTROL), as on S3, without
any write having to look at ACLs. The ACL of an object that was deleted stays unused until the
bucket goes. Kept and returned, not enforced (the access-control layer's work).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from aiohttp import web

from s4.server.access import PublicAccessBlock, is_public_acl
from s4.server.access.identities import IDENTITIES
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.documents import acl, settings
from s4.server.ops.documents.common import require_body_digest
from s4.server.ops.versions import require_existing_version
from s4.store import ObjectInfo, ObjectStore, StoreError

XML = "application/xml"
PREFIX = "object-acl/"
PUBLIC_ACCESS_BLOCK = "public-access-block"


def _name(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _identity(info: ObjectInfo) -> dict[str, str]:
    return {"key": info.key, "etag": info.etag, "modified": info.last_modified.isoformat()}


async def require_acls_allowed(req: S3Request, chosen: acl.Acl) -> None:
    """A bucket whose ownership is BucketOwnerEnforced takes no ACL but the default (400 otherwise); one whose
    public access block has BlockPublicAcls takes no public ACL (403 AccessDenied, as S3 answers)."""
    kept = await req.store.get_bucket_document(req.bucket or "", settings.OWNERSHIP_DOCUMENT)
    if settings.object_ownership(kept) == "BucketOwnerEnforced" and not _owner_full_control(req):
        raise S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs")
    if chosen.is_private:
        return
    identities = req.http.app.get(IDENTITIES)
    known = {chosen.owner, req.bucket_owner_id}  # an owner may be anonymous, or no longer configured
    for grant in chosen.grants:  # a grant to nobody the gateway knows: S3's answer to an unknown canonical ID
        if grant.kind != "CanonicalUser" or grant.grantee in known or identities is None:
            continue
        if not identities.knows(grant.grantee):
            extra = {"ArgumentName": "CanonicalUser/ID", "ArgumentValue": grant.grantee}
            raise S3Error("InvalidArgument", "Invalid id", extra=extra)
    if is_public_acl(chosen):
        block = await req.store.get_bucket_document(req.bucket or "", PUBLIC_ACCESS_BLOCK)
        if block is not None and PublicAccessBlock.from_document(block).block_public_acls:
            raise S3Error("AccessDenied", "Access Denied")


def _owner_full_control(req: S3Request) -> bool:
    """The request's ACL is the canned bucket-owner-full-control, the one BucketOwnerEnforced takes."""
    grants = any(name in req.headers for name in acl.GRANT_HEADERS)
    return not grants and req.headers.get("x-amz-acl", "").strip() == "bucket-owner-full-control"


async def kept_acl(store: ObjectStore, bucket: str, key: str) -> acl.Acl | None:
    """The ACL given to the object now at ``key``, if any (for the access check: the object is looked at
    only when an ACL was ever given to that key). None also when there is no such object."""
    document = await store.get_bucket_document(bucket, _name(key))
    if document is None:
        return None
    try:
        info = await store.head_object(bucket, key)
    except StoreError as exc:
        if exc.code in ("NoSuchKey", "MethodNotAllowed"):
            return None
        raise
    kept = json.loads(document)
    if {k: kept.get(k) for k in ("key", "etag", "modified")} != _identity(info):
        return None
    return acl.stored_acl(kept["acl"].encode())


async def _kept(req: S3Request, info: ObjectInfo) -> acl.Acl | None:
    """The ACL given to exactly this object, if any."""
    document = await req.store.get_bucket_document(req.bucket or "", _name(info.key))
    if document is None:
        return None
    kept = json.loads(document)
    if {k: kept.get(k) for k in ("key", "etag", "modified")} != _identity(info):
        return None  # given to an object of that key that has been replaced since
    return acl.stored_acl(kept["acl"].encode())


async def _keep(req: S3Request, info: ObjectInfo, chosen: acl.Acl) -> None:
    document = json.dumps({**_identity(info), "acl": chosen.to_xml().decode()})
    await req.store.put_bucket_document(req.bucket or "", _name(info.key), document.encode())


async def _bucket_owner(req: S3Request) -> str:
    return acl.owner_of(await req.store.get_bucket_document(req.bucket or "", acl.ACL_DOCUMENT), req.bucket_owner_id)


async def get_object_acl(req: S3Request) -> web.Response:
    await require_existing_version(req)
    info = await req.store.head_object(req.bucket or "", req.key or "")
    chosen = await _kept(req, info) or acl.default_acl(req.bucket_owner_id)
    return web.Response(body=chosen.to_xml(), content_type=XML)


async def put_object_acl(req: S3Request) -> web.Response:
    await require_existing_version(req)
    body = await req.read_small_body()
    if body:
        require_body_digest(req.headers)
    info = await req.store.head_object(req.bucket or "", req.key or "")
    kept = await _kept(req, info)
    owner = kept.owner if kept is not None else req.bucket_owner_id
    chosen = acl.requested_acl(req.headers, body, owner, await _bucket_owner(req))
    await require_acls_allowed(req, chosen)
    await _keep(req, info, chosen)
    return web.Response(status=200)


async def upload_acl(req: S3Request) -> acl.Acl | None:
    """The ACL an upload's headers ask for (PutObject, CopyObject, CreateMultipartUpload), checked before its
    body is read; None for the default (the bucket's owner's). Who owns the object, as S3's object ownership
    says: the writer (ObjectWriter, or no ownership controls: another identity's object gets its writer's
    default ACL, kept); the bucket's owner under BucketOwnerEnforced (which takes no ACL but
    bucket-owner-full-control: 400 AccessControlListNotSupported) and, under BucketOwnerPreferred, for an
    upload with bucket-owner-full-control."""
    by_owner = req.owner_id == req.bucket_owner_id
    grants = any(name in req.headers for name in acl.GRANT_HEADERS)
    asked = "x-amz-acl" in req.headers or grants
    if not asked and by_owner:
        return None  # the owner's own plain upload: no document to read
    kept = await req.store.get_bucket_document(req.bucket or "", settings.OWNERSHIP_DOCUMENT)
    ownership = settings.object_ownership(kept)
    owner_full_control = _owner_full_control(req)
    if ownership == "BucketOwnerEnforced":
        if asked and not owner_full_control:
            raise S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs")
        return None
    if not asked:
        return acl.default_acl(req.owner_id)
    if ownership == "BucketOwnerPreferred" and owner_full_control:
        return None
    # bucket-owner-read / -full-control grant the bucket's owner too.
    chosen = acl.acl_from_headers(req.headers, req.owner_id, await _bucket_owner(req))
    if chosen is None or (chosen.is_private and by_owner):
        return None
    await require_acls_allowed(req, chosen)
    return chosen


async def keep_upload_acl(req: S3Request, chosen: acl.Acl | None) -> None:
    """Give the object PutObject just wrote the ACL upload_acl found (the default needs nothing kept)."""
    if chosen is not None:
        await keep_acl(req, req.key or "", chosen)


async def keep_acl(req: S3Request, key: str, chosen: acl.Acl) -> None:
    """Give the object now at ``key`` the ACL ``chosen``."""
    await _keep(req, await req.store.head_object(req.bucket or "", key), chosen)


async def form_acl(req: S3Request, fields: Mapping[str, str], key: str) -> acl.Acl | None:
    """The ACL of a form upload's ``acl`` field (a canned ACL), or its signer's default in another's bucket."""
    if "acl" not in fields:
        return None if req.owner_id == req.bucket_owner_id else acl.default_acl(req.owner_id)
    chosen = acl.acl_from_headers({"x-amz-acl": fields["acl"]}, req.owner_id, await _bucket_owner(req))
    if chosen is None or (chosen.is_private and req.owner_id == req.bucket_owner_id):
        return None
    await require_acls_allowed(req, chosen)
    return chosen


HANDLERS = {"GET": get_object_acl, "PUT": put_object_acl}
get_object_acl.__name__ = get_object_acl.__qualname__ = "GetObjectAcl"
put_object_acl.__name__ = put_object_acl.__qualname__ = "PutObjectAcl"
