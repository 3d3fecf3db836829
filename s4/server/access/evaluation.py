"""One policy against one request: which statements apply, and whether an explicit Deny is among them.

A statement applies when its principal names the caller (bucket policies; an identity policy's statements
are about its identity), its actions name the request's action (case-insensitive, ``*`` and ``?``), its
resources name the request's resource (the ARN ``arn:aws:s3:::bucket`` or ``arn:aws:s3:::bucket/key``,
case-sensitive, ``*`` and ``?`` crossing ``/``; ``${aws:username}`` and other variables in 2012-10-17
policies), each with its ``Not...`` form inverted, and every condition holds. Within a policy an applying
Deny wins over an applying Allow; with neither, the policy says nothing (``Effect.NONE``), which is not a
refusal by itself: the decision (``decision.py``) weighs the other sources.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from s4.server.access.conditions import all_hold, lowered, wildcard_match
from s4.server.access.policy import S3_ARN_PREFIX, Policy, Statement, principal_name

ALL_BUCKETS_ARN = S3_ARN_PREFIX + "*"
"""The resource of requests about no bucket (ListBuckets: ``s3:ListAllMyBuckets``), which ``*`` and
``arn:aws:s3:::*`` name, as in IAM."""


@dataclasses.dataclass(frozen=True)
class AccessRequest:
    """What a request asks: one action on one resource, by one caller, with the request's condition keys."""

    action: str
    """``s3:GetObject``, ``s3:ListBucket``..."""
    bucket: str | None
    """None for requests about no bucket (ListBuckets)."""
    key: str | None = None
    """The object key of object actions; None for bucket actions."""
    principal: str | None = None
    """``arn:aws:iam:::user/NAME``; None for an anonymous (unsigned) request."""
    context: Mapping[str, str | Sequence[str]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Condition keys to values: ``aws:SourceIp``, ``aws:SecureTransport``, ``s3:prefix``, ``s3:x-amz-acl``,
    ``s3:ExistingObjectTag/<k>``... ``aws:username``, ``aws:userid``, ``aws:PrincipalArn`` and
    ``aws:PrincipalType`` are derived from ``principal`` when absent."""

    @property
    def resource(self) -> str:
        """The resource's ARN, as policies name it."""
        if self.bucket is None:
            return ALL_BUCKETS_ARN
        if self.key is None:
            return S3_ARN_PREFIX + self.bucket
        return f"{S3_ARN_PREFIX}{self.bucket}/{self.key}"

    def condition_context(self) -> dict[str, tuple[str, ...]]:
        """The context as conditions read it: lower-case keys, tuple values, principal keys derived."""
        context = lowered(self.context)
        if self.principal is None:
            context.setdefault("aws:principaltype", ("Anonymous",))
        else:
            name = principal_name(self.principal)
            context.setdefault("aws:username", (name,))
            context.setdefault("aws:userid", (name,))
            context.setdefault("aws:principalarn", (self.principal,))
            context.setdefault("aws:principaltype", ("User",))
        return context


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "None"
    """No statement of the policy applies."""


def action_matches(patterns: Sequence[str], action: str) -> bool:
    """Whether any of the Action patterns names ``action`` (IAM compares actions case-insensitively)."""
    return any(wildcard_match(pattern, action, ignore_case=True) for pattern in patterns)


def resource_matches(
    patterns: Sequence[str], resource: str, context: Mapping[str, tuple[str, ...]], *, variables: bool
) -> bool:
    """Whether any of the Resource patterns names ``resource`` (case-sensitive; variables resolved)."""
    return any(wildcard_match(p, resource, context, variables=variables) for p in patterns)


def statement_applies(
    statement: Statement, request: AccessRequest, context: Mapping[str, tuple[str, ...]], *, variables: bool
) -> bool:
    """Whether the statement is about this caller, action and resource, and its conditions hold."""
    principals = statement.principals
    if principals is not None and principals.matches(request.principal) == statement.not_principal:
        return False
    if action_matches(statement.actions, request.action) == statement.not_action:
        return False
    if resource_matches(statement.resources, request.resource, context, variables=variables) == statement.not_resource:
        return False
    return all_hold(statement.conditions, context)


def evaluate(policy: Policy, request: AccessRequest) -> Effect:
    """What ``policy`` says about ``request``: DENY if an applying statement denies, else ALLOW if one allows,
    else NONE."""
    context = request.condition_context()
    allowed = False
    for statement in policy.statements:
        if statement_applies(statement, request, context, variables=policy.variables):
            if statement.effect == "Deny":
                return Effect.DENY
            allowed = True
    return Effect.ALLOW if allowed else Effect.NONE
