"""The policy document of a browser form upload (POST Object), and what it allows.

A form upload carries no Authorization header: whoever signs the ``policy`` field vouches
for every field of the form, so the form is only as safe as the policy is strict. The rules
are S3's (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html):

* the document is base64 JSON with exactly the keys ``expiration`` (ISO 8601, UTC) and
  ``conditions`` (a list); their names are case-sensitive;
* a condition is ``{"field": "value"}`` (exact match), ``["eq", "$field", "value"]``,
  ``["starts-with", "$field", "prefix"]`` or ``["content-length-range", min, max]``; operators
  and field names are case-insensitive, values are compared exactly;
* every form field (the bucket of the URL counts as the field ``bucket``) must be named by at
  least one condition, except the signature fields, ``file``, ``policy`` and ``x-ignore-*``.

A document S3 would not parse is InvalidPolicyDocument (400); a form it does not allow is
AccessDenied (403) with S3's "Invalid according to Policy: ..." message.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from s4.server.errors import S3Error

EXEMPT_PREFIX = "x-ignore-"
"""Fields a page may add for itself (S3 never looks at them)."""
_EXPIRATION_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
_MATCH_OPERATORS = ("eq", "starts-with")
_LENGTH_RANGE = "content-length-range"
_MAX_LENGTH_DIGITS = 20
"""A bound of more digits is past any object size (and int() refuses over 4300 digits)."""


@dataclasses.dataclass(frozen=True)
class Condition:
    """One eq / starts-with condition on a form field."""

    operator: str
    """``eq`` or ``starts-with``."""
    field: str
    """Lower-case, without the ``$``."""
    value: str
    text: str
    """The condition as S3 quotes it in an error: ``["starts-with", "$key", "user/"]``."""

    def holds(self, fields: Mapping[str, str]) -> bool:
        # An absent field is an empty one: ["starts-with", "$x", ""] allows a form without x.
        actual = fields.get(self.field, "")
        return actual == self.value if self.operator == "eq" else actual.startswith(self.value)


@dataclasses.dataclass(frozen=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None = None
    """Inclusive (min, max) of the file's size; several ranges narrow one another."""

    def check(self, fields: Mapping[str, str], exempt: Collection[str], now: datetime) -> None:
        """AccessDenied unless the policy is current and allows every field of the form.

        ``fields`` are the form's fields by lower-case name, with ``bucket`` the bucket of the URL
        and ``key`` after ``${filename}`` substitution; ``exempt`` the names (lower-case) the
        signature version leaves out of the rule that every field needs a condition.
        """
        if now > self.expiration:
            raise _denied("Policy expired.")
        for condition in self.conditions:
            if not condition.holds(fields):
                raise _denied(f"Policy Condition failed: {condition.text}")
        named = {condition.field for condition in self.conditions}
        for name in fields:
            if name not in named and name not in exempt and not name.startswith(EXEMPT_PREFIX):
                raise _denied(f"Extra input fields: {name}")

    def check_size(self, size: int, *, final: bool) -> None:
        """EntityTooLarge as soon as ``size`` bytes of the file exceed the range; EntityTooSmall at
        the end (``final``) of a file shorter than it."""
        if self.length_range is None:
            return
        low, high = self.length_range
        if size > high:
            raise S3Error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                extra={"ProposedSize": str(size), "MaxSizeAllowed": str(high)},
            )
        if final and size < low:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                extra={"ProposedSize": str(size), "MinSizeAllowed": str(low)},
            )


def _quote(item: object) -> str:
    """A condition as S3 writes it in a message: JSON, with ", " between items."""
    return json.dumps(item, ensure_ascii=False)


def _denied(reason: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {reason}")


def _invalid(reason: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {reason}", status=400)


def parse_policy(encoded: str) -> PostPolicy:
    """The policy of a form's ``policy`` field (base64 JSON), or InvalidPolicyDocument."""
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=False)
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeError, binascii.Error, ValueError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in document:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in document:
        raise _invalid("Policy missing conditions.")
    unexpected = sorted(set(document) - {"expiration", "conditions"})
    if unexpected:
        raise _invalid(f"Unexpected field: {unexpected[0]}")
    expiration = _parse_expiration(document["expiration"])
    raw_conditions = document["conditions"]
    if not isinstance(raw_conditions, list):
        raise _invalid("Invalid 'conditions' value: must be a list.")
    conditions: list[Condition] = []
    length_range: tuple[int, int] | None = None
    for item in raw_conditions:
        if isinstance(item, dict):
            conditions.append(_simple_condition(item))
        elif isinstance(item, list) and item and isinstance(item[0], str) and item[0].lower() == _LENGTH_RANGE:
            low, high = _length_range(item)
            if length_range is not None:
                low, high = max(low, length_range[0]), min(high, length_range[1])
            length_range = (low, high)
        elif isinstance(item, list):
            conditions.append(_match_condition(item))
        else:
            raise _invalid(f"Invalid condition: {_quote(item)}")
    return PostPolicy(expiration, tuple(conditions), length_range)


def _parse_expiration(value: object) -> datetime:
    if isinstance(value, str):
        for layout in _EXPIRATION_FORMATS:
            try:
                return datetime.strptime(value, layout).replace(tzinfo=UTC)
            except ValueError:
                continue
    raise _invalid(f"Invalid 'expiration' value: '{value}'")


def _simple_condition(item: dict) -> Condition:
    if len(item) != 1:
        raise _invalid("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
    [(name, value)] = item.items()
    if not isinstance(value, str):
        raise _invalid(f"Invalid Simple-Condition: value of {name} must be a string.")
    field = name.lower().removeprefix("$")
    return Condition("eq", field, value, _quote(["eq", f"${name.removeprefix('$')}", value]))


def _match_condition(item: list) -> Condition:
    if len(item) != 3 or not all(isinstance(part, str) for part in item):
        raise _invalid(f"Invalid Condition: {_quote(item)}")
    operator, name, value = item
    if operator.lower() not in _MATCH_OPERATORS:
        raise _invalid(f"Invalid Condition: unknown operation {_quote(operator)}.")
    if not name.startswith("$") or len(name) == 1:
        raise _invalid(f"Invalid Condition: the field of {_quote(item)} must start with '$'.")
    return Condition(operator.lower(), name[1:].lower(), value, _quote(item))


def _length_range(item: list) -> tuple[int, int]:
    if len(item) != 3:
        raise _invalid(f"Invalid content-length-range condition: {_quote(item)}")
    low, high = _length_bound(item, item[1]), _length_bound(item, item[2])
    if low > high:
        raise _invalid(f"Invalid content-length-range condition: {_quote(item)}")
    return low, high


def _length_bound(item: list, value: object) -> int:
    """A non-negative integer; S3 also takes one written as a string of digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) if len(value) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _invalid(f"Invalid content-length-range condition: {_quote(item)}")
