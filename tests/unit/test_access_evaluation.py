"""One policy against one request, as IAM evaluates it: actions (case-insensitive wildcards), resources
(case-sensitive ARNs, wildcards crossing ``/``, policy variables in 2012-10-17 policies), principals
(``*``, ``{"AWS": ...}`` in every form, anonymous callers), the ``Not...`` forms, conditions, and an
explicit Deny winning over an Allow."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.server.access import AccessRequest, Effect, evaluate, parse_bucket_policy, parse_identity_policy
from s4.server.access.conditions import wildcard_match

ALICE = "arn:aws:iam:::user/alice"
BOB = "arn:aws:iam:::user/bob"


def _bucket_policy(*statements: dict, version: str = "2012-10-17"):
    return parse_bucket_policy(json.dumps({"Version": version, "Statement": list(statements)}).encode(), "bkt")


def _allow(**fields) -> dict:
    base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def _get(key: str = "k", principal: str | None = BOB, **context) -> AccessRequest:
    return AccessRequest("s3:GetObject", "bkt", key, principal, context)


def test_request_resources():
    assert AccessRequest("s3:GetObject", "bkt", "a/b").resource == "arn:aws:s3:::bkt/a/b"
    assert AccessRequest("s3:ListBucket", "bkt").resource == "arn:aws:s3:::bkt"
    assert AccessRequest("s3:ListAllMyBuckets", None).resource == "arn:aws:s3:::*"
    assert AccessRequest("s3:GetObject", "bkt", "").resource == "arn:aws:s3:::bkt/"


@pytest.mark.parametrize(
    ("actions", "action", "expected"),
    [
        ("s3:GetObject", "s3:GetObject", Effect.ALLOW),
        ("s3:GetObject", "s3:getobject", Effect.ALLOW),
        ("S3:GETOBJECT", "s3:GetObject", Effect.ALLOW),
        ("s3:Get*", "s3:GetObjectAcl", Effect.ALLOW),
        ("s3:*", "s3:DeleteObject", Effect.ALLOW),
        ("*", "s3:PutObject", Effect.ALLOW),
        ("s3:GetObject?cl", "s3:GetObjectAcl", Effect.ALLOW),
        ("s3:GetObject", "s3:GetObjectAcl", Effect.NONE),
        ("s3:Put*", "s3:GetObject", Effect.NONE),
        (["s3:PutObject", "s3:Get*"], "s3:GetObject", Effect.ALLOW),
    ],
)
def test_action_patterns_are_case_insensitive_wildcards(actions, action, expected):
    policy = _bucket_policy(_allow(Action=actions))
    assert evaluate(policy, AccessRequest(action, "bkt", "k", BOB)) is expected


@pytest.mark.parametrize(
    ("resources", "bucket", "key", "expected"),
    [
        ("arn:aws:s3:::bkt/*", "bkt", "a/b/c", Effect.ALLOW),
        ("arn:aws:s3:::bkt/*", "bkt", None, Effect.NONE),
        ("arn:aws:s3:::bkt", "bkt", None, Effect.ALLOW),
        ("arn:aws:s3:::bkt", "bkt", "k", Effect.NONE),
        ("arn:aws:s3:::bkt/public/*", "bkt", "public/x", Effect.ALLOW),
        ("arn:aws:s3:::bkt/public/*", "bkt", "Public/x", Effect.NONE),
        ("arn:aws:s3:::bkt/public/*", "bkt", "private/public/x", Effect.NONE),
        ("arn:aws:s3:::bkt/*.jpg", "bkt", "a/b.jpg", Effect.ALLOW),
        ("arn:aws:s3:::bkt/file?", "bkt", "file1", Effect.ALLOW),
        ("arn:aws:s3:::bkt/file?", "bkt", "file12", Effect.NONE),
        ("arn:aws:s3:::b*", "bkt", None, Effect.ALLOW),
        ("arn:aws:s3:::b*", "bkt", "any/key", Effect.ALLOW),
        ("arn:aws:s3:::*", "bkt", "k", Effect.ALLOW),
        ("arn:aws:s3:::bkt/[a]", "bkt", "a", Effect.NONE),
    ],
)
def test_resource_patterns_are_case_sensitive_arns(resources, bucket, key, expected):
    policy = _bucket_policy(_allow(Action="s3:*", Resource=resources))
    assert evaluate(policy, AccessRequest("s3:GetObject", bucket, key, BOB)) is expected


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", BOB, Effect.ALLOW),
        ("*", None, Effect.ALLOW),
        ({"AWS": "*"}, None, Effect.ALLOW),
        ({"AWS": "*"}, ALICE, Effect.ALLOW),
        ({"AWS": BOB}, BOB, Effect.ALLOW),
        ({"AWS": BOB}, ALICE, Effect.NONE),
        ({"AWS": BOB}, None, Effect.NONE),
        ({"AWS": [ALICE, BOB]}, ALICE, Effect.ALLOW),
        ({"AWS": "bob"}, BOB, Effect.ALLOW),
        ({"AWS": "arn:aws:iam::123456789012:user/bob"}, BOB, Effect.ALLOW),
        ({"CanonicalUser": "bob"}, BOB, Effect.ALLOW),
        ({"CanonicalUser": "bob"}, "bob", Effect.ALLOW),
        ({"Service": "s3.amazonaws.com"}, BOB, Effect.NONE),
    ],
)
def test_principals(principal, caller, expected):
    assert evaluate(_bucket_policy(_allow(Principal=principal)), _get(principal=caller)) is expected


def test_not_principal_applies_to_everyone_else_anonymous_included():
    policy = _bucket_policy(_allow(Effect="Deny", Principal=None, NotPrincipal={"AWS": BOB}))
    assert evaluate(policy, _get(principal=ALICE)) is Effect.DENY
    assert evaluate(policy, _get(principal=None)) is Effect.DENY
    assert evaluate(policy, _get(principal=BOB)) is Effect.NONE


def test_not_action_and_not_resource():
    everything_but_delete = _bucket_policy(_allow(Action=None, NotAction="s3:Delete*"))
    assert evaluate(everything_but_delete, _get()) is Effect.ALLOW
    assert evaluate(everything_but_delete, AccessRequest("s3:DeleteObject", "bkt", "k", BOB)) is Effect.NONE
    assert evaluate(everything_but_delete, AccessRequest("s3:deleteobject", "bkt", "k", BOB)) is Effect.NONE
    outside_secret = _bucket_policy(_allow(Resource=None, NotResource="arn:aws:s3:::bkt/secret/*"))
    assert evaluate(outside_secret, _get("public/a")) is Effect.ALLOW
    assert evaluate(outside_secret, _get("secret/a")) is Effect.NONE
    assert evaluate(outside_secret, AccessRequest("s3:GetObject", "bkt", None, BOB)) is Effect.ALLOW


def test_an_explicit_deny_wins_over_an_allow_in_any_order():
    allow = _allow(Action="s3:*")
    deny = _allow(Effect="Deny", Principal={"AWS": BOB}, Action="s3:GetObject")
    for statements in ((allow, deny), (deny, allow)):
        policy = _bucket_policy(*statements)
        assert evaluate(policy, _get(principal=BOB)) is Effect.DENY
        assert evaluate(policy, _get(principal=ALICE)) is Effect.ALLOW
        assert evaluate(policy, AccessRequest("s3:PutObject", "bkt", "k", BOB)) is Effect.ALLOW


def test_a_deny_that_does_not_apply_denies_nothing():
    policy = _bucket_policy(_allow(Effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert evaluate(policy, _get(**{"aws:SecureTransport": "true"})) is Effect.NONE
    assert evaluate(policy, _get(**{"aws:SecureTransport": "false"})) is Effect.DENY
    assert evaluate(policy, _get()) is Effect.NONE  # key absent: Bool false, the Deny does not apply


def test_conditions_gate_statements():
    policy = _bucket_policy(
        _allow(
            Action="s3:ListBucket",
            Resource="arn:aws:s3:::bkt",
            Condition={"StringLike": {"s3:prefix": "home/*"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        )
    )
    listing = {"s3:prefix": "home/x", "aws:SourceIp": "10.1.1.1"}
    assert evaluate(policy, AccessRequest("s3:ListBucket", "bkt", None, BOB, listing)) is Effect.ALLOW
    elsewhere = {**listing, "aws:SourceIp": "192.0.2.1"}
    assert evaluate(policy, AccessRequest("s3:ListBucket", "bkt", None, BOB, elsewhere)) is Effect.NONE
    assert evaluate(policy, AccessRequest("s3:ListBucket", "bkt", None, BOB, {"s3:prefix": "home/x"})) is Effect.NONE


def test_policy_variables_in_resources():
    home = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bkt/home/${aws:username}/*"}
    policy = parse_identity_policy({"Version": "2012-10-17", "Statement": [home]})
    assert evaluate(policy, _get("home/bob/a", principal=BOB)) is Effect.ALLOW
    assert evaluate(policy, _get("home/alice/a", principal=BOB)) is Effect.NONE
    assert evaluate(policy, _get("home/alice/a", principal=ALICE)) is Effect.ALLOW
    assert evaluate(policy, _get("home/${aws:username}/a", principal=BOB)) is Effect.NONE
    # The caller's name is literal in the pattern, never a wildcard.
    sneaky = "arn:aws:iam:::user/*"
    assert evaluate(policy, _get("home/bob/a", principal=sneaky)) is Effect.NONE
    # In a 2008-10-17 policy (or one without Version) ${...} is text, as IAM reads it.
    old = parse_identity_policy({"Version": "2008-10-17", "Statement": [home]})
    assert evaluate(old, _get("home/bob/a", principal=BOB)) is Effect.NONE
    assert evaluate(old, _get("home/${aws:username}/a", principal=BOB)) is Effect.ALLOW


def test_principal_keys_are_derived_for_conditions():
    by_name = _bucket_policy(_allow(Condition={"StringEquals": {"aws:username": "bob"}}))
    assert evaluate(by_name, _get(principal=BOB)) is Effect.ALLOW
    assert evaluate(by_name, _get(principal=ALICE)) is Effect.NONE
    assert evaluate(by_name, _get(principal=None)) is Effect.NONE
    anonymous_only = _bucket_policy(_allow(Condition={"StringEquals": {"aws:PrincipalType": "Anonymous"}}))
    assert evaluate(anonymous_only, _get(principal=None)) is Effect.ALLOW
    assert evaluate(anonymous_only, _get(principal=BOB)) is Effect.NONE
    by_arn = _bucket_policy(_allow(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam:::user/b*"}}))
    assert evaluate(by_arn, _get(principal=BOB)) is Effect.ALLOW
    assert evaluate(by_arn, _get(principal=ALICE)) is Effect.NONE


def test_identity_policy_statements_are_about_their_identity():
    policy = parse_identity_policy({"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]})
    assert evaluate(policy, _get(principal=BOB)) is Effect.ALLOW
    assert evaluate(policy, AccessRequest("s3:ListAllMyBuckets", None, None, BOB)) is Effect.NONE
    listing = parse_identity_policy(
        {"Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}]}
    )
    assert evaluate(listing, AccessRequest("s3:ListAllMyBuckets", None, None, BOB)) is Effect.ALLOW
    one_bucket = parse_identity_policy(
        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bkt"}]}
    )
    assert evaluate(one_bucket, AccessRequest("s3:ListAllMyBuckets", None, None, BOB)) is Effect.NONE


def _reference_match(pattern: str, value: str) -> bool:
    """A plain recursive glob (``*`` any run, ``?`` one character) to check the compiled matcher against."""
    if not pattern:
        return not value
    if pattern[0] == "*":
        return any(_reference_match(pattern[1:], value[i:]) for i in range(len(value) + 1))
    if not value:
        return False
    return (pattern[0] == "?" or pattern[0] == value[0]) and _reference_match(pattern[1:], value[1:])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/.*?", max_size=8), st.text(alphabet="ab/.*?", max_size=8))
def test_wildcards_match_as_a_plain_glob_does(pattern, value):
    assert wildcard_match(pattern, value) is _reference_match(pattern, value)


_STATEMENTS = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Principal": st.sampled_from(["*", {"AWS": BOB}, {"AWS": [ALICE, "bob"]}, {"CanonicalUser": "alice"}]),
        "Action": st.sampled_from(["s3:*", "s3:Get*", "s3:GetObject", "s3:PutObject", ["s3:List*", "s3:Get*"]]),
        "Resource": st.sampled_from(
            ["arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt", "arn:aws:s3:::bkt/a*", "arn:aws:s3:::*"]
        ),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_STATEMENTS, min_size=1, max_size=5),
    st.sampled_from(["s3:GetObject", "s3:PutObject", "s3:ListBucket"]),
    st.sampled_from([None, "a1", "b"]),
    st.sampled_from([None, ALICE, BOB]),
)
def test_an_applying_deny_always_wins(statements, action, key, principal):
    request = AccessRequest(action, "bkt", key, principal)
    effect = evaluate(_bucket_policy(*statements), request)
    deny_everything = {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "arn:aws:s3:::*"}
    for position in (0, len(statements)):
        with_deny = [*statements[:position], deny_everything, *statements[position:]]
        assert evaluate(_bucket_policy(*with_deny), request) is Effect.DENY
    # Dropping the Deny statements never takes an Allow away.
    allows = [s for s in statements if s["Effect"] == "Allow"]
    if effect is Effect.ALLOW:
        assert evaluate(_bucket_policy(*allows), request) is Effect.ALLOW
    if allows and effect is not Effect.DENY:
        assert evaluate(_bucket_policy(*allows), request) is effect
