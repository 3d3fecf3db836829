"""ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web

from s4.digits import decimal
from s4.server.access.authorize import POLICY_DOCUMENT, PUBLIC_ACCESS_BLOCK_DOCUMENT, legacy_owner
from s4.server.access.owners import OWNER_DOCUMENT, bucket_owner, keep_owner
from s4.server.addressing import check_bucket_name
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.documents import acl as acls
from s4.server.ops.documents import settings
from s4.server.ops.documents.handlers import creation_documents, keep_creation_documents
from s4.server.ops.listing import decode_token, encode_token
from s4.server.xml import child_text, document, element, iso8601, local_name, optional, owner_xml, parse_xml
from s4.store import BucketInfo, StoreError

_log = logging.getLogger(__name__)

XML = "application/xml"


MAX_BUCKETS = 10_000
"""ListBuckets' page size when a client paginates (max-buckets, prefix, continuation-token or bucket-region
given), and the most max-buckets may ask for; without any of them, every bucket in one answer (as AWS)."""


async def list_buckets(req: S3Request) -> web.Response:
    """The buckets the caller owns (an admin: every bucket, as an account's root user sees its account's),
    by name, a page at a time when the client asks for pages (AWS's ListBuckets parameters of 2024)."""
    query = req.query
    paged = any(name in query for name in ("max-buckets", "prefix", "continuation-token", "bucket-region"))
    page_size = _max_buckets(query.get("max-buckets"))
    prefix = query.get("prefix", "")
    token = query.get("continuation-token")
    after = decode_token(token) if token else ""
    region = query.get("bucket-region")
    buckets = sorted(await req.store.list_buckets(), key=lambda b: b.name)
    if region is not None and region != req.config.region:
        buckets = []  # one store, one region: no bucket lies in another
    candidates = [b for b in buckets if b.name.startswith(prefix) and b.name > after]
    wanted = page_size + 1 if paged else len(candidates)  # one past the page tells whether more remain
    if req.identity is None or not req.identity.is_admin:
        buckets = await _owned(req, candidates, wanted)
    else:
        buckets = candidates[:wanted]
    more = paged and len(buckets) > page_size
    buckets = buckets[:page_size] if paged else buckets
    entries = "".join(
        f"<Bucket>{element('Name', b.name)}{element('CreationDate', iso8601(b.created))}"
        f"{element('BucketRegion', req.config.region)}</Bucket>"
        for b in buckets
    )
    parts = [
        owner_xml(req.owner_id),
        f"<Buckets>{entries}</Buckets>",
        optional("ContinuationToken", encode_token(buckets[-1].name) if more else None),
        optional("Prefix", prefix if "prefix" in query else None),
    ]
    return web.Response(body=document("ListAllMyBucketsResult", parts), content_type=XML)


OWNER_BATCH = 64
"""Owner documents read at once, at least: each is a store read (an upstream GET), and a caller owning
few of many buckets would otherwise wait for them one after another."""


async def _owned(req: S3Request, candidates: list[BucketInfo], wanted: int) -> list[BucketInfo]:
    """The first ``wanted`` of ``candidates`` the caller owns, reading owner documents a batch at a time
    and no further than the page needs (a page after a token would otherwise read every bucket past it)."""
    owned: list[BucketInfo] = []
    position = 0
    while position < len(candidates) and len(owned) < wanted:
        batch = candidates[position : position + max(wanted - len(owned), OWNER_BATCH)]
        owners = await asyncio.gather(*(_owner_or_none(req, b.name) for b in batch))
        owned += [b for b, owner in zip(batch, owners, strict=True) if owner == req.owner_id]
        position += len(batch)
    return owned[:wanted]


def _max_buckets(raw: str | None) -> int:
    if raw is None:
        return MAX_BUCKETS
    count = decimal(raw)
    if count is None or not 1 <= count <= MAX_BUCKETS:
        raise S3Error("InvalidArgument", f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}")
    return count


async def create_bucket(req: S3Request) -> web.Response:
    check_bucket_name(req.bucket)
    body = await req.read_small_body()
    if body.strip():
        root = parse_xml(body)
        if local_name(root.tag) != "CreateBucketConfiguration":
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate")
        child_text(root, "LocationConstraint")  # any region is accepted: there is one store
    documents = await creation_documents(req)  # ACL and object ownership headers, checked first
    # Ownership is never re-assigned, whatever the upstream answers: us-east-1 answers 200 to a CreateBucket
    # of a bucket the gateway's one upstream identity already has, whichever client asked for it.
    existed = await _existing_owner(req) is not None
    recreated = False
    made = False
    try:
        await req.store.create_bucket(req.bucket)
    except StoreError as exc:
        # us-east-1 answers a repeated CreateBucket by the owner with 200, every other region with 409.
        if exc.code != "BucketAlreadyOwnedByYou":
            raise
        if await bucket_owner(req.store, req.bucket, legacy_owner(req)) != req.owner_id:
            raise _already_exists() from None
        if req.config.region != "us-east-1":
            raise
        recreated = True
    else:
        made = not existed
        # Checked again at the record: another creator may have made the bucket since the first look.
        kept = await req.store.get_bucket_document(req.bucket, OWNER_DOCUMENT)
        if kept is not None and kept.decode("utf-8", "replace") != req.owner_id:
            raise _already_exists()
        made = made and kept is None  # a record there: another request made it (and answers for it)
        if existed and req.config.region != "us-east-1":
            raise S3Error(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
        if kept is None and not existed:
            await _or_undone(req, made, keep_owner(req.store, req.bucket, req.owner_id))
        recreated = existed
    await _or_undone(req, made, keep_creation_documents(req, documents, recreated))
    return web.Response(status=200, headers={"Location": f"/{req.bucket}"})


async def _or_undone(req: S3Request, made: bool, step: Awaitable[None]) -> None:
    """A step of making a bucket after the store made it (its owner record, its ACL); failing, the bucket
    this request ``made`` is deleted again before the error is answered. Kept, it had no owner record (it
    fell to the legacy owner: its creator refused, and every retry answered BucketAlreadyExists)."""
    try:
        await step
    except BaseException:
        if made:
            try:
                await req.store.delete_bucket(req.bucket)
            except Exception as exc:
                _log.error("bucket %s made without its owner record or ACL, and not deleted: %r", req.bucket, exc)
        raise


async def _existing_owner(req: S3Request) -> str | None:
    """The owner of the bucket CreateBucket names, if it exists (None: no such bucket); BucketAlreadyExists
    when it belongs to another identity, before the upstream is asked to make it."""
    try:
        owner = await _owner_or_none(req, req.bucket or "")
    except StoreError as exc:
        if exc.code != "AccessDenied":
            raise
        return None  # a name the upstream's other accounts hold (AWS): its CreateBucket answers BucketAlreadyExists
    if owner is not None and owner != req.owner_id:
        raise _already_exists()
    return owner


def _already_exists() -> S3Error:
    return S3Error(
        "BucketAlreadyExists",
        "The requested bucket name is not available. The bucket namespace is shared by all users of the"
        " system. Please select a different name and try again.",
    )


async def _owner_or_none(req: S3Request, bucket: str) -> str | None:
    """A listed bucket's owner; None for one deleted since it was listed."""
    try:
        return await bucket_owner(req.store, bucket, legacy_owner(req))
    except StoreError as exc:
        if exc.code == "NoSuchBucket":
            return None
        raise


ACCESS_DOCUMENTS = (
    OWNER_DOCUMENT,
    POLICY_DOCUMENT,
    acls.ACL_DOCUMENT,
    PUBLIC_ACCESS_BLOCK_DOCUMENT,
    settings.OWNERSHIP_DOCUMENT,
)
"""The documents that say who may do what to a bucket: put back when a DeleteBucket fails after its store
cleared them (over S3 the documents go first, as they would keep the bucket from being deleted)."""


async def delete_bucket(req: S3Request) -> web.Response:
    bucket = req.bucket or ""
    kept = await asyncio.gather(*(req.store.get_bucket_document(bucket, name) for name in ACCESS_DOCUMENTS))
    try:
        await req.store.delete_bucket(bucket)
    except StoreError as exc:
        if exc.code != "NoSuchBucket":
            await _restore(req, dict(zip(ACCESS_DOCUMENTS, kept, strict=True)))
        raise
    return web.Response(status=204)


async def _restore(req: S3Request, kept: dict[str, bytes | None]) -> None:
    """Put back the access documents of a bucket that outlived its DeleteBucket (a write landed after the
    emptiness check, or the upstream refused): without them it would pass to the legacy owner, with no
    policy Deny nor public access block."""
    for name, kept_document in kept.items():
        if kept_document is not None and await req.store.get_bucket_document(req.bucket or "", name) is None:
            await req.store.put_bucket_document(req.bucket or "", name, kept_document)


async def head_bucket(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    return web.Response(status=200, headers={"x-amz-bucket-region": req.config.region})


async def get_bucket_location(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    region = "" if req.config.region == "us-east-1" else req.config.region
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region}</LocationConstraint>'
    ).encode()
    return web.Response(body=body, content_type=XML)
