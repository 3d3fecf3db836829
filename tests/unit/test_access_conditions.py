"""IAM's Condition operators, one table row per behaviour: each operator matching and not, a key the request
lacks (false for positive operators, true for negated ones), ``...IfExists``, ``Null``, the set qualifiers
``ForAnyValue``/``ForAllValues`` (with IAM's empty-set rules), wildcards and policy variables."""

from __future__ import annotations

import pytest

from s4.server.access.conditions import (
    ConditionError,
    all_hold,
    lowered,
    parse_conditions,
    substitute,
    wildcard_match,
)


def _holds(block: dict, context: dict) -> bool:
    return all_hold(parse_conditions(block), lowered(context))


CASES = [
    # operator, key's policy value(s), context, expected
    ("StringEquals", "a", {"k": "a"}, True),
    ("StringEquals", "a", {"k": "A"}, False),
    ("StringEquals", ["x", "a"], {"k": "a"}, True),
    ("StringEquals", "a", {}, False),
    ("StringNotEquals", "a", {"k": "b"}, True),
    ("StringNotEquals", "a", {"k": "a"}, False),
    ("StringNotEquals", ["a", "b"], {"k": "b"}, False),
    ("StringNotEquals", "a", {}, True),
    ("StringEqualsIgnoreCase", "Hello", {"k": "hELLO"}, True),
    ("StringEqualsIgnoreCase", "Hello", {"k": "hello!"}, False),
    ("StringNotEqualsIgnoreCase", "Hello", {"k": "HELLO"}, False),
    ("StringNotEqualsIgnoreCase", "Hello", {"k": "bye"}, True),
    ("StringLike", "home/*", {"k": "home/a/b"}, True),
    ("StringLike", "home/*", {"k": "Home/a"}, False),
    ("StringLike", "a?c", {"k": "abc"}, True),
    ("StringLike", "a?c", {"k": "abbc"}, False),
    ("StringLike", "exact", {"k": "exact"}, True),
    ("StringLike", "home/*", {}, False),
    ("StringNotLike", "home/*", {"k": "other/x"}, True),
    ("StringNotLike", "home/*", {"k": "home/x"}, False),
    ("StringNotLike", "home/*", {}, True),
    ("NumericEquals", "10", {"k": "10"}, True),
    ("NumericEquals", 10, {"k": "10.0"}, True),
    ("NumericEquals", "10", {"k": "11"}, False),
    ("NumericEquals", "10", {"k": "ten"}, False),
    ("NumericNotEquals", "10", {"k": "11"}, True),
    ("NumericNotEquals", "10", {"k": "10"}, False),
    ("NumericLessThan", "10", {"k": "9"}, True),
    ("NumericLessThan", "10", {"k": "10"}, False),
    ("NumericLessThanEquals", "10", {"k": "10"}, True),
    ("NumericLessThanEquals", "10", {"k": "11"}, False),
    ("NumericGreaterThan", "10", {"k": "11"}, True),
    ("NumericGreaterThan", "10", {"k": "10"}, False),
    ("NumericGreaterThanEquals", "10", {"k": "10"}, True),
    ("NumericGreaterThanEquals", "10", {"k": "9.5"}, False),
    ("NumericLessThan", "10", {}, False),
    ("DateLessThan", "2030-01-01T00:00:00Z", {"k": "2026-12-02T07:00:00Z"}, True),
    ("DateLessThan", "2020-01-01T00:00:00Z", {"k": "2026-12-02T07:00:00Z"}, False),
    ("DateGreaterThan", "2020-01-01", {"k": "2026-12-02T07:00:00Z"}, True),
    ("DateEquals", "2026-01-01T00:00:00Z", {"k": "1767225600"}, True),
    ("DateNotEquals", "2026-01-01T00:00:00Z", {"k": "2026-01-01T00:00:01Z"}, True),
    ("DateLessThanEquals", "2026-01-01T00:00:00Z", {"k": "2026-01-01T00:00:00+00:00"}, True),
    ("DateGreaterThanEquals", "2026-01-01T00:00:00Z", {"k": "not a date"}, False),
    ("Bool", "true", {"k": "true"}, True),
    ("Bool", True, {"k": "True"}, True),
    ("Bool", "true", {"k": "false"}, False),
    ("Bool", False, {"k": "false"}, True),
    ("Bool", "true", {}, False),
    ("BinaryEquals", "QmluYXJ5", {"k": "QmluYXJ5"}, True),
    ("IpAddress", "10.0.0.0/8", {"k": "10.1.2.3"}, True),
    ("IpAddress", "10.0.0.0/8", {"k": "11.1.2.3"}, False),
    ("IpAddress", "192.0.2.7", {"k": "192.0.2.7"}, True),
    ("IpAddress", ["10.0.0.0/8", "127.0.0.0/8"], {"k": "127.0.0.1"}, True),
    ("IpAddress", "2001:db8::/32", {"k": "2001:db8::1"}, True),
    ("IpAddress", "2001:db8::/32", {"k": "10.0.0.1"}, False),
    ("IpAddress", "127.0.0.0/8", {"k": "::ffff:127.0.0.1"}, True),
    ("IpAddress", "10.0.0.0/8", {"k": "not an ip"}, False),
    ("IpAddress", "10.0.0.0/8", {}, False),
    ("NotIpAddress", "10.0.0.0/8", {"k": "11.0.0.1"}, True),
    ("NotIpAddress", "10.0.0.0/8", {"k": "10.0.0.1"}, False),
    ("NotIpAddress", "10.0.0.0/8", {}, True),
    ("ArnEquals", "arn:aws:s3:::b", {"k": "arn:aws:s3:::b"}, True),
    ("ArnLike", "arn:aws:s3:::b*", {"k": "arn:aws:s3:::bucket"}, True),
    ("ArnLike", "arn:aws:s3:::b*", {"k": "arn:aws:s3:::other"}, False),
    ("ArnNotEquals", "arn:aws:s3:::b", {"k": "arn:aws:s3:::c"}, True),
    ("ArnNotLike", "arn:aws:s3:::b*", {"k": "arn:aws:s3:::bucket"}, False),
    ("ArnNotLike", "arn:aws:s3:::b*", {}, True),
    # ...IfExists: true when the key is absent, the operator otherwise.
    ("StringEqualsIfExists", "a", {}, True),
    ("StringEqualsIfExists", "a", {"k": "a"}, True),
    ("StringEqualsIfExists", "a", {"k": "b"}, False),
    ("StringLikeIfExists", "x*", {}, True),
    ("StringNotEqualsIfExists", "a", {"k": "a"}, False),
    ("NumericLessThanIfExists", "10", {}, True),
    ("NumericLessThanIfExists", "10", {"k": "20"}, False),
    ("IpAddressIfExists", "10.0.0.0/8", {}, True),
    ("BoolIfExists", "true", {}, True),
    ("BoolIfExists", "true", {"k": "false"}, False),
    # Null: "true" holds when the key is absent, "false" when it is present.
    ("Null", "true", {}, True),
    ("Null", "true", {"k": "x"}, False),
    ("Null", "false", {"k": "x"}, True),
    ("Null", False, {}, False),
    # Set qualifiers over multi-valued keys.
    ("ForAnyValue:StringEquals", ["a", "b"], {"k": ["c", "b"]}, True),
    ("ForAnyValue:StringEquals", ["a", "b"], {"k": ["c", "d"]}, False),
    ("ForAnyValue:StringEquals", ["a"], {"k": []}, False),
    ("ForAnyValue:StringEquals", ["a"], {}, False),
    ("ForAnyValue:StringNotEquals", ["a"], {"k": ["a", "z"]}, True),
    ("ForAnyValue:StringNotEquals", ["a"], {"k": ["a"]}, False),
    ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "b"]}, True),
    ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "c"]}, False),
    ("ForAllValues:StringEquals", ["a"], {"k": []}, True),
    ("ForAllValues:StringEquals", ["a"], {}, True),
    ("ForAllValues:StringNotEquals", ["a"], {"k": ["b", "c"]}, True),
    ("ForAllValues:StringNotEquals", ["a"], {"k": ["b", "a"]}, False),
    ("ForAllValues:StringLike", ["tag-*"], {"k": ["tag-1", "tag-2"]}, True),
    ("ForAnyValue:StringLikeIfExists", ["tag-*"], {}, True),
    # Without a qualifier a multi-valued key matches when any value does (negated: when none does).
    ("StringEquals", "a", {"k": ["b", "a"]}, True),
    ("StringNotEquals", "a", {"k": ["b", "a"]}, False),
]


@pytest.mark.parametrize(("operator", "values", "context", "expected"), CASES)
def test_each_operator(operator, values, context, expected):
    assert _holds({operator: {"k": values}}, context) is expected


def test_condition_keys_are_case_insensitive_and_values_are_not():
    assert _holds({"StringEquals": {"AWS:SourceIp": "1.2.3.4"}}, {"aws:sourceip": "1.2.3.4"})
    assert _holds({"stringequals": {"s3:Prefix": "x"}}, {"S3:PREFIX": "x"})
    assert not _holds({"StringEquals": {"s3:prefix": "X"}}, {"s3:prefix": "x"})


def test_every_operator_and_every_key_must_hold():
    block = {"StringLike": {"s3:prefix": "home/*"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert _holds(block, {"s3:prefix": "home/a", "aws:SourceIp": "10.0.0.1"})
    assert not _holds(block, {"s3:prefix": "home/a", "aws:SourceIp": "11.0.0.1"})
    assert not _holds(block, {"s3:prefix": "work/a", "aws:SourceIp": "10.0.0.1"})
    two_keys = {"StringEquals": {"a": "1", "b": "2"}}
    assert _holds(two_keys, {"a": "1", "b": "2"})
    assert not _holds(two_keys, {"a": "1", "b": "3"})
    assert _holds({}, {})


def test_policy_variables_in_condition_values():
    block = {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/*"]}}
    assert _holds(block, {"aws:username": "alice", "s3:prefix": "home/alice/docs"})
    assert not _holds(block, {"aws:username": "bob", "s3:prefix": "home/alice/docs"})
    assert not _holds(block, {"s3:prefix": "home/alice/docs"})  # unresolved variable: no match
    assert _holds(block, {"s3:prefix": "shared/x"})
    assert _holds({"StringEquals": {"s3:prefix": "${aws:username}"}}, {"aws:username": "a*", "s3:prefix": "a*"})
    # A variable's value is literal: "*" in a user name is no wildcard.
    assert not _holds({"StringLike": {"k": "${aws:username}"}}, {"aws:username": "a*", "k": "abc"})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "a/b/c", True),
        ("a*c", "a/b/c", True),
        ("a?c", "a/c", True),
        ("a.c", "abc", False),
        ("a+c", "a+c", True),
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("x", "X", False),
        ("line*", "line1\nline2", True),
    ],
)
def test_wildcards_are_star_and_question_mark_only(pattern, value, expected):
    assert wildcard_match(pattern, value) is expected


def test_wildcards_ignoring_case_and_special_variables():
    assert wildcard_match("s3:get*", "s3:GetObject", ignore_case=True)
    assert not wildcard_match("s3:get*", "s3:GetObject")
    assert wildcard_match("a${*}b", "a*b", {}, variables=True)
    assert not wildcard_match("a${*}b", "axb", {}, variables=True)
    assert wildcard_match("a${?}${$}", "a?$", {}, variables=True)
    assert substitute("home/${aws:username}/", {"aws:username": ("bob",)}) == "home/bob/"
    assert substitute("home/${aws:username}/", {}) is None
    assert substitute("tenant$user", {}) == "tenant$user"


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ("x", "Invalid Condition"),
        ({"StringEquals": "x"}, "Invalid Condition"),
        ({"StringEquals": {}}, "Invalid Condition"),
        ({"StringEquals": {"k": []}}, "Invalid Condition"),
        ({"StringEquals": {"k": {"nested": 1}}}, "Invalid Condition value"),
        ({"StringEquals": {"k": None}}, "Invalid Condition value"),
        ({"StringSortOf": {"k": "v"}}, "Invalid Condition type : StringSortOf"),
        ({"ForSomeValues:StringEquals": {"k": "v"}}, "Invalid Condition type : ForSomeValues:StringEquals"),
        ({"NullIfExists": {"k": "true"}}, "Invalid Condition type : NullIfExists"),
        ({"Null": {"k": "maybe"}}, "Invalid Condition value for Null"),
    ],
)
def test_conditions_iam_would_refuse(block, reason):
    with pytest.raises(ConditionError) as caught:
        parse_conditions(block)
    assert str(caught.value) == reason


def test_parsed_conditions_keep_operator_qualifier_and_if_exists():
    (condition,) = parse_conditions({"ForAllValues:StringLikeIfExists": {"s3:RequestObjectTagKeys": ["a", 1, True]}})
    assert (condition.operator, condition.qualifier, condition.if_exists) == ("StringLike", "ForAllValues", True)
    assert condition.values == ("a", "1", "true")
