"""The enforcement point: may this request's identity do what it asks, on this bucket and key?

Called by the app once a request is authenticated, before its handler runs (so a refused request changes
nothing and reads no body), and by the handlers that learn what they act on only later: a form upload once
its fields are read, DeleteObjects for each key, and CopyObject / UploadPartCopy for their source. It
gathers what the decision needs (s4.server.access.decide, AWS's order of evaluation): the caller's identity
and its policy, the bucket's owner, policy, ACL (the object's own for reads of an object) and public access
block, and the request's condition keys (``aws:SourceIp`` from the peer, ``s3:prefix``...). A refusal is
403 AccessDenied, and the access log names the action refused and why.

A bucket that does not exist is not judged here: the handler answers NoSuchBucket, as S3 does to anyone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl

from s4.server.access import AccessRequest, PublicAccessBlock, decide, parse_bucket_policy
from s4.server.access.actions import COPIES, OBJECT_READS, PER_KEY, action_of, copy_source, copy_source_version
from s4.server.access.identities import IDENTITIES, Identity
from s4.server.access.owners import OWNER_DOCUMENT, owner_named
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.documents import acl as acls
from s4.server.ops.documents.object_acl import kept_acl
from s4.store import ObjectStore, StoreError

REFUSED = "s4.refused"
"""Where a refusal leaves (action, reason) on the aiohttp request, for the access log."""
POLICY_DOCUMENT = "policy"
PUBLIC_ACCESS_BLOCK_DOCUMENT = "public-access-block"
OWN_BUCKET_POLICIES = frozenset({"admin", "readwrite", None})
"""Identities with full control of the buckets they own: the canned admin and readwrite, and an identity
with a policy document (it owns only what its policy let it create). readonly and writeonly create nothing."""
_FACTS = "s4.bucket_facts"
READS = frozenset({"GetObject", "HeadObject"})
"""Reads whose answer for a missing key depends on the right to list it (see may_list_key)."""
_LISTINGS = frozenset({"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"})


def access_denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied", status=403)


@dataclasses.dataclass(frozen=True)
class BucketFacts:
    """What a bucket's documents say about access to it, read once per request."""

    owner: str
    policy: object | None
    acl: acls.Acl
    public_access_block: PublicAccessBlock | None
    reads_object_tags: bool = False
    """The policy has ``s3:ExistingObjectTag/<key>`` conditions: an object's tags are read for its requests."""


async def bucket_facts(store: ObjectStore, bucket: str, legacy_owner: str, current: bool = False) -> BucketFacts:
    """The bucket's owner, policy, ACL and public access block. StoreError NoSuchBucket.

    ``current``: each read as the store has it now (get_bucket_document), for a request that changes the
    bucket; otherwise as get_bucket_documents answers, which may be a few seconds old (an upstream's)."""
    names = (OWNER_DOCUMENT, POLICY_DOCUMENT, acls.ACL_DOCUMENT, PUBLIC_ACCESS_BLOCK_DOCUMENT)
    if current:
        found = await asyncio.gather(*(store.get_bucket_document(bucket, name) for name in names))
        kept = dict(zip(names, found, strict=True))
    else:
        kept = await store.get_bucket_documents(bucket, names)
    owner = owner_named(kept[OWNER_DOCUMENT], legacy_owner)
    policy, acl, block = kept[POLICY_DOCUMENT], kept[acls.ACL_DOCUMENT], kept[PUBLIC_ACCESS_BLOCK_DOCUMENT]
    return BucketFacts(
        owner,
        None if policy is None else parse_bucket_policy(policy, bucket),
        acls.default_acl(owner) if acl is None else acls.stored_acl(acl),
        None if block is None else PublicAccessBlock.from_document(block),
        policy is not None and b"existingobjecttag" in policy.lower(),
    )


async def _existing_tags(req: S3Request, bucket: str, key: str) -> dict[str, str]:
    """``s3:ExistingObjectTag/<key>`` of the object the request names (none when there is no such object)."""
    version = req.query.get("versionId") if bucket == req.bucket and key == req.key else None
    try:
        tags = await req.store.get_object_tagging(bucket, key, **({"version_id": version} if version else {}))
    except StoreError:
        return {}
    return {f"s3:ExistingObjectTag/{k}": v for k, v in tags.items()}


async def _facts(req: S3Request, bucket: str) -> BucketFacts:
    cache: dict[str, BucketFacts] = req.http.setdefault(_FACTS, {})
    facts = cache.get(bucket)
    if facts is None:
        facts = cache[bucket] = await bucket_facts(req.store, bucket, legacy_owner(req), _changes_bucket(req, bucket))
    return facts


def _changes_bucket(req: S3Request, bucket: str) -> bool:
    """A PUT or DELETE of the bucket itself (DeleteBucket, a document's Put or Delete): decided on its
    documents as they are now, since what it does lasts."""
    return bucket == req.bucket and req.key is None and req.http.method in ("PUT", "DELETE")


def condition_context(req: S3Request, action: str, identity: Identity | None) -> dict[str, str | Sequence[str]]:
    """The condition keys this request has (a key it does not have is absent, as the Null operator expects)."""
    http = req.http
    now = dt.datetime.now(dt.UTC)
    context: dict[str, str | Sequence[str]] = {
        "aws:SecureTransport": "true" if http.secure else "false",
        "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now.timestamp())),
        "aws:PrincipalType": "Anonymous" if identity is None else "User",
    }
    if http.remote:
        context["aws:SourceIp"] = http.remote
    if identity is not None:
        context["aws:username"] = context["aws:userid"] = identity.name
        context["aws:PrincipalArn"] = identity.principal
    for header, key in (("Referer", "aws:Referer"), ("User-Agent", "aws:UserAgent")):
        if header in req.headers:
            context[key] = req.headers[header]
    if action in _LISTINGS:
        for name in ("prefix", "delimiter", "max-keys"):
            if name in req.query:
                context[f"s3:{name}"] = req.query[name]
    if "versionId" in req.query:
        context["s3:versionid"] = req.query["versionId"]
    for name, value in req.headers.items():
        lowered = name.lower()
        if lowered.startswith(("x-amz-acl", "x-amz-grant-", "x-amz-copy-source", "x-amz-server-side-encryption")) or (
            lowered in ("x-amz-metadata-directive", "x-amz-storage-class", "x-amz-content-sha256")
        ):
            context[f"s3:{lowered}"] = value
    tagging = req.headers.get("x-amz-tagging")
    if tagging is not None:
        tags = parse_qsl(tagging, keep_blank_values=True)
        context["s3:RequestObjectTagKeys"] = [k for k, _ in tags]
        for k, v in tags:
            context[f"s3:RequestObjectTag/{k}"] = v
    return context


def legacy_owner(req: S3Request) -> str:
    """Who owns the buckets that have no owner record (see owners)."""
    return req.http.app[IDENTITIES].legacy_owner


async def allowed(
    req: S3Request,
    action: str,
    bucket: str | None,
    key: str | None,
    extra: Mapping[str, str] | None = None,
    *,
    version: str | None = None,
) -> bool:
    """Whether the request's identity may do ``action`` on ``bucket`` / ``key`` (its version ``version``, None:
    the current one); a refusal is noted for the access log. A bucket that does not exist allows (the
    operation answers NoSuchBucket).

    An object's own ACL is read only when nothing else decides: an owner's or an admin's reads cost no lookup.
    """
    identity: Identity | None = req.identity
    facts = None
    if bucket is not None and action != "s3:CreateBucket":
        try:
            facts = await _facts(req, bucket)
        except StoreError as exc:
            if exc.code == "NoSuchBucket":
                return True
            raise
        if bucket == req.bucket:  # not a copy's source bucket
            req.bucket_owner = facts.owner
    tags = {}
    if facts is not None and facts.reads_object_tags and bucket is not None and key is not None:
        tags = await _existing_tags(req, bucket, key)
    request = AccessRequest(
        action=action,
        bucket=bucket,
        key=key,
        principal=None if identity is None else identity.principal,
        context=condition_context(req, action, identity) | tags | dict(extra or {}),
    )
    owner_rights = identity is not None and identity.policy_name in OWN_BUCKET_POLICIES
    weigh = functools.partial(
        decide,
        request,
        identity_policy=None if identity is None else identity.policy,
        is_owner=facts is not None and owner_rights and identity is not None and facts.owner == identity.name,
        bucket_policy=None if facts is None else facts.policy,
        public_access_block=None if facts is None else facts.public_access_block,
    )
    object_read = facts is not None and bucket is not None and key is not None and action in OBJECT_READS
    # Without an ACL of its own, an object has its owner's default ACL, which grants only what owning does.
    decision = weigh(acl=None if facts is None or object_read else facts.acl)
    if object_read and not decision.allowed and not decision.reason.startswith("explicit deny"):
        object_acl = await kept_acl(req.store, bucket, key, version)
        if object_acl is not None:
            decision = weigh(acl=object_acl)
    if not decision.allowed:
        req.http[REFUSED] = (action, decision.reason)
    return decision.allowed


async def require(req: S3Request, action: str, bucket: str | None, key: str | None, version: str | None = None) -> None:
    """AccessDenied unless ``allowed``."""
    if not await allowed(req, action, bucket, key, version=version):
        raise access_denied()


async def authorize(req: S3Request, operation: str) -> None:
    """Refuse (403 AccessDenied) what the request's identity may not do; see the module docstring."""
    action = action_of(operation, req.query)
    if operation in PER_KEY:  # each key is checked by the handler; the expected owner, here, before any
        await _check_expected_owner_of_request(req)
    if action is None or operation in PER_KEY:
        return
    version = req.query.get("versionId") or None
    if operation in READS and not await allowed(req, action, req.bucket, req.key, version=version):
        # A refused read never reaches its handler: the answer is 404 (to whoever may list a missing key) or
        # 403, given here. A read of a version is refused whether it exists or not, as S3 answers it.
        missing = None if "versionId" in req.query else await _missing_and_listable(req)
        if missing is None:
            raise access_denied()
        req.http.pop(REFUSED, None)
        raise missing
    else:
        await require(req, action, req.bucket, req.key, version)
    _check_expected_owner(req, req.bucket, "x-amz-expected-bucket-owner")
    if operation in COPIES:
        source = copy_source(req.headers)
        if source is not None:
            await require(req, source[2], source[0], source[1], copy_source_version(req.headers))
            _check_expected_owner(req, source[0], "x-amz-source-expected-bucket-owner")


async def _check_expected_owner_of_request(req: S3Request) -> None:
    """``x-amz-expected-bucket-owner`` of a request whose access is checked later (per key, or once a form's
    fields are read): its bucket's owner is read for it."""
    if req.bucket is None or "x-amz-expected-bucket-owner" not in req.headers:
        return
    try:
        await _facts(req, req.bucket)
    except StoreError as exc:
        if exc.code != "NoSuchBucket":
            raise
        return  # the handler answers NoSuchBucket
    _check_expected_owner(req, req.bucket, "x-amz-expected-bucket-owner")


def _check_expected_owner(req: S3Request, bucket: str | None, header: str) -> None:
    """``x-amz-expected-bucket-owner`` (and the copy source's): 403 when the bucket belongs to another, as S3."""
    expected = req.headers.get(header)
    facts = req.http.get(_FACTS, {}).get(bucket) if bucket is not None else None
    if expected is not None and facts is not None and expected != facts.owner:
        raise access_denied()


async def may_list_key(req: S3Request) -> bool:
    """Whether the caller may learn that the request's key does not exist: S3 answers a read of a missing
    object 404 NoSuchKey to whoever may list it (``s3:ListBucket`` with ``s3:prefix`` the key), 403 to others."""
    refused_before = req.http.get(REFUSED)
    may = await allowed(req, "s3:ListBucket", req.bucket, None, {"s3:prefix": req.key or ""})
    if refused_before is None:
        req.http.pop(REFUSED, None)
    else:
        req.http[REFUSED] = refused_before
    return may


async def _missing_and_listable(req: S3Request) -> StoreError | None:
    """The NoSuchKey to answer a refused read of the current object with, when there is none and the caller
    may list its key; None when the answer is 403 (the object exists, or the caller may not list it)."""
    try:
        await req.store.head_object(req.bucket or "", req.key or "")
        return None
    except StoreError as exc:
        if exc.code != "NoSuchKey":
            return None
        missing = exc
    return missing if await may_list_key(req) else None


async def authorize_form(req: S3Request, key: str) -> None:
    """A form upload (PostObject), once its fields are verified: its signer may put ``key``, or AccessDenied."""
    req.identity = req.http.app[IDENTITIES].of(req.auth.access_key_id)
    await require(req, "s3:PutObject", req.bucket, key)
    _check_expected_owner(req, req.bucket, "x-amz-expected-bucket-owner")


def refused(request: Mapping[str, object]) -> tuple[str, str] | None:
    """The action refused to this request and why (for the access log), if one was."""
    found = request.get(REFUSED)
    return found if isinstance(found, tuple) else None
