"""IAM policy documents parsed once, into statements the evaluation reads: bucket policies (as
PutBucketPolicy checks them, with S3's reasons) and identity policies (the config file's, without Principal).

A bucket policy is a JSON object of Version, Id and Statement; every statement has an Effect, a
Principal (or NotPrincipal, with Deny only), S3 actions (or NotAction) and resources in this bucket (or
NotResource), and an optional Condition. Anything else is a PolicyError whose message is S3's reason, which the server
answers as 400 MalformedPolicy. An identity policy is the same language without Principal, with any
resource (``*``, ``arn:aws:s3:::*``...).

Principals are kept as identity names: ``arn:aws:iam::<any account>:user/[path/]NAME``, a bare ``NAME`` and
a ``CanonicalUser`` id (the gateway's canonical ids are identity names) all name the identity NAME;
``"*"`` and ``{"AWS": "*"}`` name everyone, anonymous callers included.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Mapping
from typing import Any

from s4.server.access.conditions import Condition, ConditionError, parse_conditions

MAX_POLICY_BYTES = 20 * 1024
VERSIONS = frozenset({"2008-10-17", "2012-10-17"})
VARIABLES_VERSION = "2012-10-17"
"""Policy variables (``${aws:username}``) are read only in policies of this version, as IAM does."""
USER_ARN_PREFIX = "arn:aws:iam:::user/"
"""The principal of a gateway identity: ``arn:aws:iam:::user/NAME``."""
S3_ARN_PREFIX = "arn:aws:s3:::"
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_PRINCIPAL_KINDS = frozenset({"AWS", "CanonicalUser", "Service", "Federated"})


class PolicyError(Exception):
    """A policy S3 (or IAM, for identity policies) would refuse; ``message`` is the reason S3 gives."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def principal_name(principal: str) -> str:
    """The identity name a principal string stands for: the NAME of ``arn:aws:iam::<account>:user/[path/]NAME``,
    or the string itself when it is no user ARN (a bare name, a canonical id)."""
    if principal.startswith("arn:"):
        parts = principal.split(":", 5)
        if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("user/"):
            return parts[5].rsplit("/", 1)[-1]
    return principal


@dataclasses.dataclass(frozen=True)
class Principals:
    """Whom a statement's Principal (or NotPrincipal) names."""

    everyone: bool = False
    """``"*"`` or ``{"AWS": "*"}``: every caller, anonymous ones included."""
    names: frozenset[str] = frozenset()
    """Identity names (from user ARNs, bare names and CanonicalUser ids)."""

    def matches(self, principal: str | None) -> bool:
        """Whether this names the caller (``principal`` None: anonymous, named only by ``*``)."""
        if self.everyone:
            return True
        return principal is not None and principal_name(principal) in self.names


@dataclasses.dataclass(frozen=True)
class Statement:
    effect: str
    """``Allow`` or ``Deny``."""
    actions: tuple[str, ...]
    """Action patterns (``s3:Get*``, ``*``), matched case-insensitively."""
    resources: tuple[str, ...]
    """Resource ARN patterns (``arn:aws:s3:::bkt/*``, ``*``), matched case-sensitively."""
    principals: Principals | None = None
    """None in an identity policy: the statement is about the identity the policy belongs to."""
    not_principal: bool = False
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclasses.dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    version: str | None = None
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Whether ``${...}`` in its resources and condition values are policy variables."""
        return self.version == VARIABLES_VERSION


def _strings(value: Any) -> list[str] | None:
    """A string or a non-empty list of strings, as a list; None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _one_of(statement: dict[str, Any], field: str) -> tuple[Any, bool]:
    """The value of ``field`` or of ``Not<field>`` (exactly one of the two, as IAM requires), and whether it
    was the ``Not`` form."""
    has, has_not = field in statement, f"Not{field}" in statement
    if has == has_not:
        raise PolicyError(f"Missing required field {field}" if not has else f"Conflicting fields {field}")
    return (statement[field], False) if has else (statement[f"Not{field}"], True)


def _principals(principal: Any) -> Principals:
    if principal == "*":
        return Principals(everyone=True)
    if not isinstance(principal, dict) or not principal or not set(principal) <= _PRINCIPAL_KINDS:
        raise PolicyError("Invalid principal in policy")
    everyone, names = False, set()
    for kind, value in principal.items():
        values = _strings(value)
        if values is None or any(not v for v in values):
            raise PolicyError("Invalid principal in policy")
        if kind == "AWS":
            everyone = everyone or "*" in values
            names.update(principal_name(v) for v in values if v != "*")
        elif kind == "CanonicalUser":
            names.update(values)
        # Service and Federated principals are valid but name no identity of the gateway.
    return Principals(everyone, frozenset(names))


def _actions(actions: Any, *, s3_only: bool) -> tuple[str, ...]:
    names = _strings(actions)
    if names is None:
        raise PolicyError("Policy has invalid action")
    for name in names:
        service, colon, action = name.partition(":")
        if name == "*":
            continue
        if not colon or not service or not action or (s3_only and service.lower() != "s3"):
            raise PolicyError("Policy has invalid action")
    return tuple(names)


def _bucket_resources(resources: Any, bucket: str) -> tuple[str, ...]:
    arns = _strings(resources)
    if arns is None:
        raise PolicyError("Policy has invalid resource")
    for arn in arns:
        if not arn.startswith(S3_ARN_PREFIX):
            raise PolicyError("Policy has invalid resource")
        named = arn[len(S3_ARN_PREFIX) :].split("/", 1)[0]
        if not fnmatch.fnmatchcase(bucket, named.replace("[", "[[]")):
            raise PolicyError("Policy has invalid resource")
    return tuple(arns)


def _identity_resources(resources: Any) -> tuple[str, ...]:
    arns = _strings(resources)
    if arns is None or any(arn != "*" and not arn.startswith("arn:") for arn in arns):
        raise PolicyError("Policy has invalid resource")
    return tuple(arns)


def _effect(statement: dict[str, Any]) -> str:
    effect = statement.get("Effect")
    if effect is None:
        raise PolicyError("Missing required field Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"Invalid effect: {effect}")
    return effect


def _conditions(statement: dict[str, Any]) -> tuple[Condition, ...]:
    if "Condition" not in statement:
        return ()
    try:
        return parse_conditions(statement["Condition"])
    except ConditionError as exc:
        raise PolicyError(str(exc)) from None


def _statement(statement: Any, bucket: str | None) -> Statement:
    """One statement; ``bucket`` None for an identity policy (no Principal, any resource)."""
    if not isinstance(statement, dict):
        raise PolicyError("Statement is not an object")
    for field in statement:
        if field not in _STATEMENT_FIELDS:
            raise PolicyError(f"Unknown field {field}")
    effect = _effect(statement)
    principals, not_principal = None, False
    if bucket is not None:
        principal, not_principal = _one_of(statement, "Principal")
        principals = _principals(principal)
        if not_principal and effect == "Allow":
            # IAM: NotPrincipal must be used with Deny; with Allow it would grant to the whole world but a few.
            raise PolicyError("NotPrincipal is only supported with Effect Deny")
    elif "Principal" in statement or "NotPrincipal" in statement:
        raise PolicyError("Policy document should not specify a principal.")
    actions, not_action = _one_of(statement, "Action")
    resources, not_resource = _one_of(statement, "Resource")
    sid = statement.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError("Invalid Sid")
    return Statement(
        effect=effect,
        actions=_actions(actions, s3_only=bucket is not None),
        resources=_bucket_resources(resources, bucket) if bucket is not None else _identity_resources(resources),
        principals=principals,
        not_principal=not_principal,
        not_action=not_action,
        not_resource=not_resource,
        conditions=_conditions(statement),
        sid=sid,
    )


def _policy(document: Any, bucket: str | None) -> Policy:
    if not isinstance(document, dict):
        raise PolicyError("Policies must be valid JSON and the first byte must be '{'")
    for field in document:
        if field not in ("Version", "Id", "Statement"):
            raise PolicyError(f"Unknown field {field}")
    version = document.get("Version")
    if "Version" in document and version not in VERSIONS:
        raise PolicyError("Invalid policy document version")
    statements = document.get("Statement")
    if statements is None:
        raise PolicyError("Missing required field Statement")
    parsed = tuple(_statement(s, bucket) for s in (statements if isinstance(statements, list) else [statements]))
    if not parsed:
        raise PolicyError("Could not parse the policy: Statement is empty!")
    policy_id = document.get("Id")
    return Policy(parsed, version, policy_id if isinstance(policy_id, str) else None)


def parse_bucket_policy(document: bytes, bucket: str) -> Policy:
    """A PutBucketPolicy body about ``bucket``, parsed; PolicyError with S3's reason when S3 would refuse it."""
    if len(document) > MAX_POLICY_BYTES:
        raise PolicyError(f"Policies must be less than {MAX_POLICY_BYTES // 1024} KB")
    try:
        parsed = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict) or not document.lstrip().startswith(b"{"):
        raise PolicyError("Policies must be valid JSON and the first byte must be '{'")
    return _policy(parsed, bucket)


def parse_identity_policy(document: str | bytes | Mapping[str, Any]) -> Policy:
    """An identity's policy from the config file (JSON text, or the mapping YAML gave): IAM's language
    without Principal; PolicyError with the reason otherwise."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except (UnicodeDecodeError, ValueError):
            raise PolicyError("Policies must be valid JSON and the first byte must be '{'") from None
    if isinstance(document, Mapping):
        document = dict(document)
    return _policy(document, None)


UNREADABLE_POLICY_ID = "s4:unreadable-policy"
_DENY_ALL = Policy(
    (Statement("Deny", ("*",), ("*",), Principals(everyone=True)),), VARIABLES_VERSION, UNREADABLE_POLICY_ID
)


def kept_bucket_policy(document: bytes, bucket: str) -> Policy:
    """A bucket's kept policy, parsed for evaluation. One kept before the parser became stricter (or damaged
    since) fails closed: it denies everything to everyone, except what the bucket's owner may always do
    (read, replace or delete the policy, see ``decision``), instead of failing every request to the bucket."""
    try:
        return parse_bucket_policy(document, bucket)
    except PolicyError:
        return _DENY_ALL
