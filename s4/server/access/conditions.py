"""The Condition element of IAM policies: operators, set qualifiers, ``...IfExists``, and the wildcards and
policy variables that Resource and the string operators share.

Read as IAM reads it: every operator of a Condition block must hold, every key of an operator must hold,
and a key holds when the request's value matches any of the policy's values. A key the request does not
carry makes a positive operator false and a negated one (``StringNotEquals``, ``NotIpAddress``...) true,
except ``...IfExists`` (true when absent) and ``Null`` (which tests presence). ``ForAnyValue:`` holds when
one of the request's values matches (false without values); ``ForAllValues:`` when every one does (true
without values, as IAM has it). Condition keys are case-insensitive, values case-sensitive except for the
``...IgnoreCase`` operators and ``Bool``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence

Context = Mapping[str, "str | Sequence[str]"]
"""Condition keys (any case) to the request's value or values."""

QUALIFIERS = ("ForAnyValue", "ForAllValues")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


class ConditionError(ValueError):
    """A Condition block IAM would refuse; the message is the reason."""


def lowered(context: Context) -> dict[str, tuple[str, ...]]:
    """The context with lower-case keys and every value a tuple, as the evaluation looks values up."""
    return {k.lower(): (v,) if isinstance(v, str) else tuple(v) for k, v in context.items()}


# --- wildcards and policy variables -----------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _tokens(pattern: str, variables: bool) -> tuple[tuple[str, str], ...]:
    """``pattern`` as (kind, text) tokens: ``lit``, ``*``, ``?`` and ``var`` (a policy variable's key)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _VARIABLE.finditer(pattern) if variables else ():
        tokens += _plain_tokens(pattern[position : match.start()])
        name = match.group(1).strip()
        tokens.append(("lit", _SPECIAL[name]) if name in _SPECIAL else ("var", name.lower()))
        position = match.end()
    return (*tokens, *_plain_tokens(pattern[position:]))


def _plain_tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for piece in re.split(r"([*?])", text):
        if piece in ("*", "?"):
            out.append((piece, piece))
        elif piece:
            out.append(("lit", piece))
    return out


def substitute(value: str, context: Mapping[str, tuple[str, ...]], *, variables: bool = True) -> str | None:
    """``value`` with its ``${key}`` variables replaced by the request's values; None when one is missing
    (IAM: an element whose variable cannot be resolved matches nothing)."""
    parts = []
    for kind, text in _tokens(value, variables):
        if kind == "var":
            found = context.get(text)
            if not found or len(found) != 1:
                return None
            parts.append(found[0])
        else:
            parts.append(text)
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _static_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return _regex(_tokens(pattern, False), {}, ignore_case)


def _regex(tokens: tuple[tuple[str, str], ...], context: Mapping[str, tuple[str, ...]], ignore_case: bool):
    parts = []
    for kind, text in tokens:
        if kind == "*":
            parts.append(".*")
        elif kind == "?":
            parts.append(".")
        elif kind == "var":
            found = context.get(text)
            if not found or len(found) != 1:
                return None
            parts.append(re.escape(found[0]))
        else:
            parts.append(re.escape(text))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(
    pattern: str,
    value: str,
    context: Mapping[str, tuple[str, ...]] | None = None,
    *,
    ignore_case: bool = False,
    variables: bool = False,
) -> bool:
    """Whether ``value`` matches ``pattern``: ``*`` any run of characters (``/`` included), ``?`` one
    character, ``${key}`` (when ``variables``) the request's value of ``key``, taken literally."""
    if not variables or "${" not in pattern:
        return _static_regex(pattern, ignore_case).fullmatch(value) is not None
    regex = _regex(_tokens(pattern, True), context or {}, ignore_case)
    return regex is not None and regex.fullmatch(value) is not None


# --- operators ---------------------------------------------------------------------------------------------


def _string_equals(value: str, wanted: str, context: Mapping[str, tuple[str, ...]]) -> bool:
    return substitute(wanted, context) == value


def _string_equals_ignore_case(value: str, wanted: str, context: Mapping[str, tuple[str, ...]]) -> bool:
    resolved = substitute(wanted, context)
    return resolved is not None and resolved.casefold() == value.casefold()


def _string_like(value: str, wanted: str, context: Mapping[str, tuple[str, ...]]) -> bool:
    return wildcard_match(wanted, value, context, variables=True)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str, Mapping], bool]:
    def match(value: str, wanted: str, _context: Mapping[str, tuple[str, ...]]) -> bool:
        have, want = _number(value), _number(wanted)
        return have is not None and want is not None and compare(have, want)

    return match


def _instant(text: str) -> float | None:
    """A date as IAM takes it: ISO 8601 (``2026-01-01T00:00:00Z``, or a date) or epoch seconds."""
    number = _number(text)
    if number is not None:
        return number
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _date(compare: Callable[[float, float], bool]) -> Callable[[str, str, Mapping], bool]:
    def match(value: str, wanted: str, _context: Mapping[str, tuple[str, ...]]) -> bool:
        have, want = _instant(value), _instant(wanted)
        return have is not None and want is not None and compare(have, want)

    return match


def _bool(value: str, wanted: str, _context: Mapping[str, tuple[str, ...]]) -> bool:
    return value.strip().lower() == wanted.strip().lower()


def _ip(value: str, wanted: str, _context: Mapping[str, tuple[str, ...]]) -> bool:
    try:
        address = ipaddress.ip_address(value.strip())
        network = ipaddress.ip_network(wanted.strip(), strict=False)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.version == network.version and address in network


Matcher = Callable[[str, str, Mapping[str, tuple[str, ...]]], bool]

OPERATORS: dict[str, tuple[Matcher, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "DateEquals": (_date(lambda a, b: a == b), False),
    "DateNotEquals": (_date(lambda a, b: a == b), True),
    "DateLessThan": (_date(lambda a, b: a < b), False),
    "DateLessThanEquals": (_date(lambda a, b: a <= b), False),
    "DateGreaterThan": (_date(lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_date(lambda a, b: a >= b), False),
    "Bool": (_bool, False),
    "BinaryEquals": (_string_equals, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (_string_like, False),
    "ArnLike": (_string_like, False),
    "ArnNotEquals": (_string_like, True),
    "ArnNotLike": (_string_like, True),
}
"""Each operator (without ``IfExists`` or a qualifier): how one request value matches one policy value,
and whether the operator is negated (holds when no value matches)."""
_BY_LOWER = {name.lower(): name for name in [*OPERATORS, "Null"]}


@dataclasses.dataclass(frozen=True)
class Condition:
    """One key of one operator of a Condition block, e.g. ``"StringLike": {"s3:prefix": ["home/*"]}``."""

    operator: str
    """The base operator, canonical spelling: ``StringLike``, ``IpAddress``, ``Null``..."""
    key: str
    """The condition key as written (compared case-insensitively)."""
    values: tuple[str, ...]
    """The policy's values; booleans as ``true``/``false``, numbers as written by JSON."""
    qualifier: str | None = None
    """``ForAnyValue``, ``ForAllValues`` or None."""
    if_exists: bool = False

    @property
    def negated(self) -> bool:
        return self.operator != "Null" and OPERATORS[self.operator][1]

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        """Whether this condition holds for a request whose context is ``lowered`` already."""
        present = context.get(self.key.lower())
        if self.operator == "Null":
            absent = not present
            return any((v.lower() == "true") == absent for v in self.values)
        if present is None or (self.qualifier is None and not present):
            if self.if_exists:
                return True
            if self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.negated
        match, negated = OPERATORS[self.operator]

        def hit(value: str) -> bool:
            return any(match(value, wanted, context) for wanted in self.values)

        if self.qualifier == "ForAllValues":
            return all(hit(v) != negated for v in present)
        if self.qualifier == "ForAnyValue":
            return any(hit(v) != negated for v in present)
        found = any(hit(v) for v in present)
        return not found if negated else found


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    raise ConditionError("Invalid Condition value")


def _operator(name: str) -> tuple[str, str | None, bool]:
    """(base operator, qualifier, if_exists) of an operator as written, e.g. ``ForAnyValue:StringLikeIfExists``."""
    qualifier = None
    prefix, colon, rest = name.partition(":")
    if colon:
        qualifier = next((q for q in QUALIFIERS if q.lower() == prefix.lower()), None)
        if qualifier is None:
            raise ConditionError(f"Invalid Condition type : {name}")
        name = rest
    if_exists = name.lower().endswith("ifexists") and name.lower() != "ifexists"
    base = _BY_LOWER.get(name[: -len("IfExists")].lower() if if_exists else name.lower())
    if base is None or (base == "Null" and (if_exists or qualifier)):
        raise ConditionError(f"Invalid Condition type : {name if not colon else prefix + ':' + name}")
    return base, qualifier, if_exists


def parse_conditions(block: object) -> tuple[Condition, ...]:
    """A policy statement's Condition element as conditions; ConditionError (with IAM's reason) otherwise."""
    if not isinstance(block, dict):
        raise ConditionError("Invalid Condition")
    conditions = []
    for operator, keys in block.items():
        if not isinstance(keys, dict) or not keys:
            raise ConditionError("Invalid Condition")
        base, qualifier, if_exists = _operator(operator)
        for key, value in keys.items():
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ConditionError("Invalid Condition")
            texts = tuple(_value_text(v) for v in values)
            if base == "Null" and any(t.lower() not in ("true", "false") for t in texts):
                raise ConditionError("Invalid Condition value for Null")
            conditions.append(Condition(base, key, texts, qualifier, if_exists))
    return tuple(conditions)


def all_hold(conditions: Sequence[Condition], context: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether every condition holds (an empty Condition block always does)."""
    return all(condition.holds(context) for condition in conditions)
