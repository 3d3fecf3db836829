"""Object ACLs: GetObjectAcl, PutObjectAcl, and ``x-amz-acl`` / ``x-amz-grant-*`` on PutObject.

An object's ACL is kept as a document of its bucket, ``object-acl/<SHA-256 of the key>``, together
with the identity of the object it was given to (key, version id, ETag, Last-Modified), one entry per
version given one (an ACL given to one version never opens another, as S3 keeps one per version; PutObjectAcl
and GetObjectAcl with ``versionId`` act on that version's): an object written
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
from s4.server.ops.versions import requested_version, require_existing_version
from s4.store import ObjectInfo, ObjectStore, StoreError

XML = "application/xml"
PREFIX = "object-acl/"
PUBLIC_ACCESS_BLOCK = "public-access-block"


def _name(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _identity(info: ObjectInfo) -> dict[str, str | None]:
    """What binds an ACL to one object: its key, version id (None in a bucket never versioned), ETag and
    Last-Modified. An ACL given to one version never applies to another (S3 keeps an ACL per version)."""
    return {"key": info.key, "version": info.version_id, "etag": info.etag, "modified": info.last_modified.isoformat()}


def _entries(document: bytes | None) -> list[dict[str, str | None]]:
    """The ACLs a key's document holds, one per version given one (a document kept before versions were
    told apart holds one, without a version: it binds an object of a bucket never versioned only)."""
    if document is None:
        return []
    kept = json.loads(document)
    return list(kept["versions"]) if "versions" in kept else [kept]


def _given(document: bytes | None, info: ObjectInfo) -> acl.Acl | None:
    """The ACL given to exactly the object ``info``, if any."""
    identity = _identity(info)
    for entry in _entries(document):
        if {k: entry.get(k) for k in identity} == identity:
            return acl.stored_acl(str(entry["acl"]).encode())
    return None  # none given, or given to an object of that key that has been replaced since


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


async def kept_acl(store: ObjectStore, bucket: str, key: str, version: str | None = None) -> acl.Acl | None:
    """The ACL given to the object now at ``key`` (or to its version ``version``), if any (for the access
    check: the object is looked at only when an ACL was ever given to that key). None also when there is
    no such object."""
    document = await store.get_bucket_document(bucket, _name(key))
    if document is None:
        return None
    try:
        info = await store.head_object(bucket, key, **({} if version is None else {"version_id": version}))
    except StoreError as exc:
        if exc.code in ("NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
            return None
        raise
    return _given(document, info)


async def _kept(req: S3Request, info: ObjectInfo) -> acl.Acl | None:
    """The ACL given to exactly this object, if any."""
    return _given(await req.store.get_bucket_document(req.bucket or "", _name(info.key)), info)


async def _keep(req: S3Request, info: ObjectInfo, chosen: acl.Acl) -> None:
    """Give ``info`` (that one version) the ACL ``chosen``; the other versions' ACLs stay theirs."""
    name = _name(info.key)
    others = [
        entry
        for entry in _entries(await req.store.get_bucket_document(req.bucket or "", name))
        if info.version_id is not None and entry.get("version") not in (None, info.version_id)
    ]
    entry = {**_identity(info), "acl": chosen.to_xml().decode()}
    document = json.dumps({"key": info.key, "versions": [*others, entry]})
    await req.store.put_bucket_document(req.bucket or "", name, document.encode())


async def _bucket_owner(req: S3Request) -> str:
    return acl.owner_of(await req.store.get_bucket_document(req.bucket or "", acl.ACL_DOCUMENT), req.bucket_owner_id)


def _version_of(req: S3Request) -> dict[str, str]:
    """The ``version_id`` a Get/PutObjectAcl with ``versionId`` acts on (that version's own ACL)."""
    version = requested_version(req)
    return {} if version is None else {"version_id": version}


async def get_object_acl(req: S3Request) -> web.Response:
    await require_existing_version(req)
    info = await req.store.head_object(req.bucket or "", req.key or "", **_version_of(req))
    chosen = await _kept(req, info) or acl.default_acl(req.bucket_owner_id)
    return web.Response(body=chosen.to_xml(), content_type=XML)


async def put_object_acl(req: S3Request) -> web.Response:
    await require_existing_version(req)
    body = await req.read_small_body()
    if body:
        require_body_digest(req.headers)
    info = await req.store.head_object(req.bucket or "", req.key or "", **_version_of(req))
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


async def keep_upload_acl(req: S3Request, chosen: acl.Acl | None, written: ObjectInfo) -> None:
    """Give the object PutObject just wrote (``written``, the store's answer) the ACL upload_acl found (the
    default needs nothing kept)."""
    if chosen is not None:
        await keep_acl(req, req.key or "", chosen, written)


async def keep_acl(req: S3Request, key: str, chosen: acl.Acl, written: ObjectInfo) -> None:
    """Give the object a write just made (``written``, the store's answer) the ACL ``chosen``: that version
    when the write made one, else the object at ``key`` if it still is that write's. An object another
    writer put there since gets none of this ACL (it keeps its owner's default): a concurrent write never
    inherits another writer's ACL."""
    version = {} if written.version_id is None else {"version_id": written.version_id}
    try:
        info = await req.store.head_object(req.bucket or "", key, **version)
    except StoreError as exc:
        if exc.code in ("NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
            return  # replaced or deleted since: no object of this write's left to give it to
        raise
    if info.etag == written.etag and info.version_id == written.version_id:
        await _keep(req, info, chosen)


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
