"""PutBucketPolicy's document: an IAM policy in JSON, checked as S3 checks it before keeping it.

The policy is kept byte for byte (GetBucketPolicy returns exactly what was put, as S3 does) once
it is a well-formed policy about this bucket: a JSON object of Version, Id and Statement; every
statement with an Effect, a principal, actions of S3 and resources in this bucket. Anything else
is 400 MalformedPolicy with S3's reason. Evaluating the policy is the access-control layer's work.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from s4.server.errors import S3Error

MAX_POLICY_BYTES = 20 * 1024
VERSIONS = frozenset({"2008-10-17", "2012-10-17"})
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_PRINCIPAL_KINDS = frozenset({"AWS", "CanonicalUser", "Service", "Federated"})
_ARN_PREFIX = "arn:aws:s3:::"


def _malformed(reason: str) -> S3Error:
    return S3Error("MalformedPolicy", reason)


def _strings(value: Any) -> list[str] | None:
    """A string or a non-empty list of strings, as a list; None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _one_of(statement: dict[str, Any], field: str) -> Any:
    """The value of ``field`` or of ``Not<field>``: exactly one of the two, as IAM requires."""
    has, has_not = field in statement, f"Not{field}" in statement
    if has == has_not:
        raise _malformed(f"Missing required field {field}" if not has else f"Conflicting fields {field}")
    return statement[field] if has else statement[f"Not{field}"]


def _check_principal(principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal or not set(principal) <= _PRINCIPAL_KINDS:
        raise _malformed("Invalid principal in policy")
    for value in principal.values():
        if _strings(value) is None:
            raise _malformed("Invalid principal in policy")


def _check_actions(actions: Any) -> None:
    names = _strings(actions)
    if names is None:
        raise _malformed("Policy has invalid action")
    for name in names:
        service, _, action = name.partition(":")
        if name != "*" and (service.lower() != "s3" or not action):
            raise _malformed("Policy has invalid action")


def _check_resources(resources: Any, bucket: str) -> None:
    arns = _strings(resources)
    if arns is None:
        raise _malformed("Policy has invalid resource")
    for arn in arns:
        if not arn.startswith(_ARN_PREFIX):
            raise _malformed("Policy has invalid resource")
        named = arn[len(_ARN_PREFIX) :].split("/", 1)[0]
        if not fnmatch.fnmatchcase(bucket, named.replace("[", "[[]")):
            raise _malformed("Policy has invalid resource")


def _check_condition(condition: Any) -> None:
    if not isinstance(condition, dict):
        raise _malformed("Invalid Condition")
    for keys in condition.values():
        if not isinstance(keys, dict) or not keys:
            raise _malformed("Invalid Condition")
        for value in keys.values():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, (str, bool, int, float)) for v in values):
                raise _malformed("Invalid Condition")


def _check_statement(statement: Any, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise _malformed("Statement is not an object")
    for field in statement:
        if field not in _STATEMENT_FIELDS:
            raise _malformed(f"Unknown field {field}")
    effect = statement.get("Effect")
    if effect is None:
        raise _malformed("Missing required field Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed(f"Invalid effect: {effect}")
    _check_principal(_one_of(statement, "Principal"))
    _check_actions(_one_of(statement, "Action"))
    _check_resources(_one_of(statement, "Resource"), bucket)
    if "Condition" in statement:
        _check_condition(statement["Condition"])


def validate_policy(body: bytes, bucket: str) -> bytes:
    """The policy to keep, unchanged, once it passed; MalformedPolicy with S3's reason otherwise."""
    if len(body) > MAX_POLICY_BYTES:
        raise _malformed(f"Policies must be less than {MAX_POLICY_BYTES // 1024} KB")
    try:
        policy = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        policy = None
    if not isinstance(policy, dict) or not body.lstrip().startswith(b"{"):
        raise _malformed("Policies must be valid JSON and the first byte must be '{'")
    for field in policy:
        if field not in ("Version", "Id", "Statement"):
            raise _malformed(f"Unknown field {field}")
    if "Version" in policy and policy["Version"] not in VERSIONS:
        raise _malformed("Invalid policy document version")
    statements = policy.get("Statement")
    if statements is None:
        raise _malformed("Missing required field Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        _check_statement(statement, bucket)
    if isinstance(statements, list) and not statements:
        raise _malformed("Could not parse the policy: Statement is empty!")
    return body
