"""PutBucketLifecycleConfiguration's document, checked as S3 checks it.

What is kept is the document in S3's form, each rule with an ID (S3 makes one up for a rule that
has none, and returns it). Which rules are carried out, and how, is the store's side: see
s4.store.lifecycle (the embedded store) and s4.store.s3.documents (an upstream's own lifecycle).
"""

from __future__ import annotations

import datetime as dt
import secrets
from xml.etree.ElementTree import Element

from s4.server.errors import S3Error
from s4.server.ops.documents.common import (
    check_children,
    integer,
    malformed,
    only,
    root_of,
    serialized,
    text,
)
from s4.server.xml import children, local_name

MAX_RULES = 1000
MAX_ID_LENGTH = 255
STORAGE_CLASSES = frozenset(
    {"GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR"}
)
_ACTIONS = frozenset(
    {
        "Expiration",
        "Transition",
        "NoncurrentVersionExpiration",
        "NoncurrentVersionTransition",
        "AbortIncompleteMultipartUpload",
    }
)
_RULE_CHILDREN = frozenset({"ID", "Prefix", "Filter", "Status"}) | _ACTIONS
_FILTER_CHILDREN = frozenset({"Prefix", "Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})


def _argument(message: str) -> S3Error:
    return S3Error("InvalidArgument", message)


def _positive(value: str, what: str) -> int:
    """A count of days S3 wants above zero; ``what`` names it as S3's message does."""
    number = integer(value)
    if number <= 0:
        raise _argument(f"{what} must be a positive integer")
    return number


def _midnight(value: str) -> dt.datetime:
    """An action's Date: ISO 8601, at midnight UTC, as S3 requires."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise malformed() from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    when = when.astimezone(dt.UTC)
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise _argument("'Date' must be at midnight GMT")
    return when


def _tag(node: Element) -> None:
    check_children(node, {"Key", "Value"})
    text(node, "Key")
    text(node, "Value")


def _filter(node: Element) -> bool:
    """Check a Filter; True when it selects by tags."""
    check_children(node, _FILTER_CHILDREN)
    if len(node) > 1:
        raise malformed()  # one condition, or And of several
    tagged = False
    for child in node:
        name = local_name(child.tag)
        if name == "Tag":
            _tag(child)
            tagged = True
        elif name == "And":
            check_children(child, {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
            text(child, "Prefix", required=False)
            for tag in children(child, "Tag"):
                _tag(tag)
                tagged = True
            for bound in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
                value = text(child, bound, required=False)
                if value is not None:
                    integer(value)
        elif name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
            integer(child.text or "")
        elif len(child):
            raise malformed()
    return tagged


def _expiration(node: Element, tagged: bool) -> None:
    check_children(node, {"Days", "Date", "ExpiredObjectDeleteMarker"})
    if len(node) != 1:
        raise malformed()
    days = text(node, "Days", required=False)
    date = text(node, "Date", required=False)
    marker = text(node, "ExpiredObjectDeleteMarker", required=False)
    if days is not None:
        _positive(days, "'Days' for Expiration action")
    if date is not None:
        _midnight(date)
    if marker is not None:
        if marker.strip() not in ("true", "false"):
            raise malformed()
        if tagged:
            raise S3Error("InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with tags.")


def _transition(node: Element, noncurrent: bool) -> None:
    when = {"NoncurrentDays", "NewerNoncurrentVersions"} if noncurrent else {"Days", "Date"}
    check_children(node, when | {"StorageClass"})
    storage_class = text(node, "StorageClass")
    if storage_class not in STORAGE_CLASSES:
        raise malformed()
    if noncurrent:
        integer(text(node, "NoncurrentDays") or "")
        return
    days, date = text(node, "Days", required=False), text(node, "Date", required=False)
    if (days is None) == (date is None):
        raise malformed()
    if days is not None and integer(days) < 0:
        raise _argument("'Days' for Transition action must be a non-negative integer")
    if date is not None:
        _midnight(date)


def _rule(node: Element, ids: set[str]) -> None:
    check_children(node, _RULE_CHILDREN)
    status = text(node, "Status")
    if status not in ("Enabled", "Disabled"):
        raise malformed()
    rule_id = text(node, "ID", required=False)
    if rule_id is None or not rule_id:
        for old in children(node, "ID"):
            node.remove(old)
        rule_id = secrets.token_urlsafe(36)
        node.insert(0, _element("ID", rule_id))
    if len(rule_id) > MAX_ID_LENGTH:
        raise _argument(f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
    if rule_id in ids:
        raise _argument("Rule ID must be unique. Found same ID for more than one rule")
    ids.add(rule_id)
    prefix, condition = only(node, "Prefix", required=False), only(node, "Filter", required=False)
    if (prefix is None) == (condition is None):
        raise malformed()  # one of the two, as S3's schema has it
    if prefix is not None and len(prefix):
        raise malformed()
    tagged = condition is not None and _filter(condition)
    actions = [child for child in node if local_name(child.tag) in _ACTIONS]
    if not actions:
        raise S3Error("InvalidRequest", "At least one action needs to be specified in a rule")
    for name in ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
        only(node, name, required=False)
    for action in actions:
        name = local_name(action.tag)
        if name == "Expiration":
            _expiration(action, tagged)
        elif name in ("Transition", "NoncurrentVersionTransition"):
            _transition(action, noncurrent=name.startswith("Noncurrent"))
        elif name == "NoncurrentVersionExpiration":
            check_children(action, {"NoncurrentDays", "NewerNoncurrentVersions"})
            _positive(text(action, "NoncurrentDays") or "", "'NoncurrentDays' for NoncurrentVersionExpiration action")
            newer = text(action, "NewerNoncurrentVersions", required=False)
            if newer is not None:
                _positive(newer, "'NewerNoncurrentVersions'")
        else:
            check_children(action, {"DaysAfterInitiation"})
            days = text(action, "DaysAfterInitiation") or ""
            _positive(days, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action")
            if tagged:
                raise S3Error("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.")


def _element(name: str, value: str) -> Element:
    node = Element(name)
    node.text = value
    return node


def validate_lifecycle(body: bytes) -> bytes:
    """The document to keep: checked, in S3's form, every rule with an ID."""
    root = root_of(body, "LifecycleConfiguration")
    check_children(root, {"Rule"})
    rules = children(root, "Rule")
    if not rules:
        raise malformed()
    if len(rules) > MAX_RULES:
        raise _argument(f"The number of lifecycle rules should not exceed allowed limit of {MAX_RULES} rules")
    ids: set[str] = set()
    for rule in rules:
        _rule(rule, ids)
    return serialized(root)
