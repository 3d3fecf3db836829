"""What S3 calls public, and the bucket's PublicAccessBlock that overrides it.

A bucket policy is public (S3's "meaning of public") when one of its Allow statements grants to everyone
(``"*"``, ``{"AWS": "*"}``, or a NotPrincipal) without a condition that fixes who may use it: an
``aws:SourceIp`` range (other than all addresses) under ``IpAddress``, or a fixed value (no wildcard, no
policy variable) of ``aws:SourceArn``, ``aws:SourceVpc``, ``aws:SourceVpce``, ``aws:SourceOwner``,
``aws:SourceAccount``, ``aws:userid``, ``aws:username``, ``aws:PrincipalArn``, ``aws:PrincipalAccount``,
``aws:PrincipalOrgID`` or ``s3:x-amz-server-side-encryption-aws-kms-key-id`` under an equality operator.
Deny statements never make a policy public. An ACL is public when it grants to AllUsers or
AuthenticatedUsers (``acl_permissions.is_public_acl``).

PublicAccessBlock's four flags: BlockPublicAcls refuses public ACLs as they are put (PutBucketAcl,
PutObjectAcl, ``x-amz-acl``/grant headers on PUT, Copy and CreateMultipartUpload); IgnorePublicAcls makes
public grants grant nothing; BlockPublicPolicy refuses a public policy as it is put; RestrictPublicBuckets,
while the bucket's policy is public, keeps that policy from granting anything to callers other than the
bucket's owner (anonymous ones included). The refusals are 403 AccessDenied in S3.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from s4.server.access.acl_permissions import is_public_acl
from s4.server.access.conditions import Condition
from s4.server.access.policy import Policy, Statement
from s4.server.ops.documents.acl import Acl
from s4.server.xml import child_text, parse_xml

_FIXING_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:sourceaccount",
        "aws:userid",
        "aws:username",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    }
)
_EQUALITY = frozenset({"StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "ArnLike", "StringLike"})


def _fixed(value: str) -> bool:
    return "*" not in value and "?" not in value and "${" not in value


def _narrow_range(value: str) -> bool:
    try:
        return ipaddress.ip_network(value.strip(), strict=False).prefixlen > 0
    except ValueError:
        return False


def _fixes(condition: Condition) -> bool:
    """Whether the condition limits a statement to fixed callers, so that it is not public."""
    if condition.if_exists or condition.qualifier == "ForAllValues":
        return False  # holds without the key: fixes nothing
    key = condition.key.lower()
    if key == "aws:sourceip":
        return condition.operator == "IpAddress" and all(_narrow_range(v) for v in condition.values)
    return key in _FIXING_KEYS and condition.operator in _EQUALITY and all(_fixed(v) for v in condition.values)


def _public_statement(statement: Statement) -> bool:
    if statement.effect != "Allow" or statement.principals is None:
        return False
    if not statement.not_principal and not statement.principals.everyone:
        return False
    return not any(_fixes(c) for c in statement.conditions)


def is_public_policy(policy: Policy) -> bool:
    """S3's rule (GetBucketPolicyStatus IsPublic, BlockPublicPolicy, RestrictPublicBuckets): an Allow to
    everyone that no condition fixes to known callers or networks."""
    return any(_public_statement(s) for s in policy.statements)


@dataclasses.dataclass(frozen=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def from_document(cls, xml: bytes | None) -> PublicAccessBlock:
        """The flags of a kept PublicAccessBlockConfiguration (already validated when it was put); all false
        without one. An absent flag is false, as in S3."""
        if not xml:
            return cls()
        root = parse_xml(xml)

        def flag(name: str) -> bool:
            return (child_text(root, name) or "").strip().lower() == "true"

        return cls(
            block_public_acls=flag("BlockPublicAcls"),
            ignore_public_acls=flag("IgnorePublicAcls"),
            block_public_policy=flag("BlockPublicPolicy"),
            restrict_public_buckets=flag("RestrictPublicBuckets"),
        )

    def refuses_acl(self, acl: Acl) -> bool:
        """Whether putting ``acl`` (by PutBucketAcl, PutObjectAcl or the ACL headers of a write) is refused:
        BlockPublicAcls and the ACL is public."""
        return self.block_public_acls and is_public_acl(acl)

    def refuses_policy(self, policy: Policy) -> bool:
        """Whether PutBucketPolicy of ``policy`` is refused: BlockPublicPolicy and the policy is public."""
        return self.block_public_policy and is_public_policy(policy)
