"""The decision on one request, weighing every source as AWS does.

An explicit Deny in the identity's policy or in the bucket policy refuses, whatever allows. Otherwise the
request is allowed when the identity's policy allows it, when the caller owns the bucket (the gateway's
identities are like accounts of their own: an owner may do anything to its bucket and what is in it,
unless a policy denies), when the bucket policy allows this caller, or when the ACL grants the
permission the action needs. Nothing allowing is a refusal (an implicit deny).

Two exceptions, both S3's: the bucket's owner may always read, replace and delete the bucket policy, even
when it denies the owner (AWS keeps that right for the owning account, so that a policy cannot lock a
bucket for good); and PublicAccessBlock's RestrictPublicBuckets (a public bucket policy grants nothing to
others than the owner) and IgnorePublicAcls (public grants grant nothing).
"""

from __future__ import annotations

import dataclasses

from s4.server.access.acl_permissions import acl_allows
from s4.server.access.evaluation import AccessRequest, Effect, evaluate
from s4.server.access.policy import Policy
from s4.server.access.public_access import PublicAccessBlock, is_public_policy
from s4.server.ops.documents.acl import Acl

POLICY_MANAGEMENT = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"})
"""What the bucket's owner may do whatever the bucket policy denies."""


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """Why, for the access log: ``explicit deny in bucket policy``, ``allowed by ACL``, ``no statement allows``..."""

    def __bool__(self) -> bool:
        return self.allowed


def decide(
    request: AccessRequest,
    *,
    identity_policy: Policy | None,
    is_owner: bool,
    bucket_policy: Policy | None,
    acl: Acl | None,
    public_access_block: PublicAccessBlock | None,
) -> Decision:
    """Whether ``request`` is allowed. ``identity_policy``: the caller's (None when anonymous, or to weigh
    none); ``is_owner``: the caller owns the bucket; ``acl``: the one ``acl_permission(action)`` names (the
    bucket's for bucket actions and object writes, the object's for object reads and object ACLs), None to
    weigh none; ``public_access_block``: the bucket's, None when it has none."""
    block = public_access_block or PublicAccessBlock()
    identity = Effect.NONE
    if identity_policy is not None and request.principal is not None:
        identity = evaluate(identity_policy, request)
    bucket = evaluate(bucket_policy, request) if bucket_policy is not None else Effect.NONE
    if identity is Effect.DENY:
        return Decision(False, "explicit deny in identity policy")
    if bucket is Effect.DENY and not (is_owner and request.action.lower() in POLICY_MANAGEMENT):
        return Decision(False, "explicit deny in bucket policy")
    if identity is Effect.ALLOW:
        return Decision(True, "allowed by identity policy")
    if is_owner:
        return Decision(True, "allowed as bucket owner")
    restricted = False
    if bucket is Effect.ALLOW:
        if block.restrict_public_buckets and bucket_policy is not None and is_public_policy(bucket_policy):
            restricted = True
        else:
            return Decision(True, "allowed by bucket policy")
    if acl is not None and acl_allows(acl, request.action, request.principal, ignore_public=block.ignore_public_acls):
        return Decision(True, "allowed by ACL")
    if restricted:
        return Decision(False, "public bucket policy restricted by RestrictPublicBuckets")
    return Decision(False, "no statement allows")
