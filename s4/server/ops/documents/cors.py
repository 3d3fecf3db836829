"""A bucket's CORS configuration: PutBucketCors's document checked as S3 checks it, and its rules,
which answer browsers' preflights and mark actual responses (s4.server.cors).

A rule allows an origin when one of its AllowedOrigin patterns matches it (each may hold one ``*``,
standing for any run of characters), a method when it is one of its AllowedMethod, and the headers a
preflight announces when each matches one of its AllowedHeader patterns (one ``*`` each, case-blind).
The first rule that allows all three is the one that answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from s4.server.errors import S3Error
from s4.server.ops.documents.common import check_children, integer, malformed, root_of, serialized
from s4.server.xml import children, local_name

CORS_METHODS = frozenset({"GET", "PUT", "HEAD", "POST", "DELETE"})
MAX_RULES = 100
MAX_ID_LENGTH = 255
_RULE_CHILDREN = frozenset({"ID", "AllowedHeader", "AllowedMethod", "AllowedOrigin", "ExposeHeader", "MaxAgeSeconds"})


def _wildcard_match(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*`` (any run of characters, also none) against the whole ``value``."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


@dataclasses.dataclass(frozen=True)
class CorsRule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None

    def allows_origin(self, origin: str) -> bool:
        return any(_wildcard_match(pattern, origin) for pattern in self.origins)

    def allows_headers(self, requested: Sequence[str]) -> bool:
        patterns = [h.lower() for h in self.allowed_headers]
        return all(any(_wildcard_match(p, header.lower()) for p in patterns) for header in requested)

    def any_origin(self) -> bool:
        """Whether the rule allows every origin (``*``): S3 then answers ``*``, not the origin."""
        return "*" in self.origins


def match(rules: Sequence[CorsRule], origin: str, method: str, headers: Sequence[str] = ()) -> CorsRule | None:
    """The first rule that allows the origin, the method and every one of ``headers``."""
    for rule in rules:
        if method in rule.methods and rule.allows_origin(origin) and rule.allows_headers(headers):
            return rule
    return None


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidRequest", message)


def _rule(node: Element) -> CorsRule:
    check_children(node, _RULE_CHILDREN)
    values: dict[str, list[str]] = {name: [] for name in _RULE_CHILDREN}
    for child in node:
        if len(child):
            raise malformed()
        values[local_name(child.tag)].append(child.text or "")
    if not values["AllowedMethod"] or not values["AllowedOrigin"] or len(values["ID"]) > 1:
        raise malformed()
    if values["ID"] and len(values["ID"][0]) > MAX_ID_LENGTH:
        raise S3Error("InvalidArgument", f"The ID of a CORS rule cannot be longer than {MAX_ID_LENGTH} characters")
    for method in values["AllowedMethod"]:
        if method not in CORS_METHODS:
            raise _invalid(f"Found unsupported HTTP method in CORS config. Unsupported method is {method}")
    for origin in values["AllowedOrigin"]:
        if origin.count("*") > 1:
            raise _invalid(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
    for header in values["AllowedHeader"]:
        if header.count("*") > 1:
            raise _invalid(f'AllowedHeader "{header}" can not have more than one wildcard.')
    for header in values["ExposeHeader"]:
        if "*" in header:
            raise _invalid(
                f'ExposeHeader "{header}" contains wildcard. We currently do not support wildcard for ExposeHeader.'
            )
    if len(values["MaxAgeSeconds"]) > 1:
        raise malformed()
    max_age = integer(values["MaxAgeSeconds"][0]) if values["MaxAgeSeconds"] else None
    return CorsRule(
        origins=tuple(values["AllowedOrigin"]),
        methods=tuple(values["AllowedMethod"]),
        allowed_headers=tuple(values["AllowedHeader"]),
        expose_headers=tuple(values["ExposeHeader"]),
        max_age=max_age,
    )


def _rules(root: Element) -> list[CorsRule]:
    check_children(root, {"CORSRule"})
    nodes = children(root, "CORSRule")
    if not nodes:
        raise malformed()
    if len(nodes) > MAX_RULES:
        raise _invalid(f"The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules.")
    return [_rule(node) for node in nodes]


def validate_cors(body: bytes) -> bytes:
    """PutBucketCors's document, checked; what is kept is S3's form of it."""
    root = root_of(body, "CORSConfiguration")
    _rules(root)
    return serialized(root)


def cors_rules(document: bytes) -> list[CorsRule]:
    """The rules of a stored CORS configuration (one validate_cors let through)."""
    return _rules(root_of(document, "CORSConfiguration"))
