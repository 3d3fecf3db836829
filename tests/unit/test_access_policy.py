"""Policy documents parsed as S3 (bucket policies) and IAM (identity policies) parse them: what a parsed
policy holds, and each refusal with the reason S3 gives, which PutBucketPolicy answers as MalformedPolicy."""

from __future__ import annotations

import json

import pytest

from s4.server.access import PolicyError, parse_bucket_policy, parse_identity_policy, principal_name
from s4.server.access.policy import Principals
from s4.server.errors import S3Error
from s4.server.ops.documents.policy import validate_policy


def _doc(*statements: dict, **top) -> bytes:
    return json.dumps({"Version": "2012-10-17", **top, "Statement": list(statements)}).encode()


def _statement(**fields) -> dict:
    base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_a_bucket_policy_parses_into_statements():
    policy = parse_bucket_policy(
        _doc(
            _statement(Sid="one", Condition={"StringLike": {"s3:prefix": "a/*"}}),
            _statement(
                Effect="Deny",
                Principal=None,
                NotPrincipal={"AWS": ["arn:aws:iam:::user/alice", "bob"], "CanonicalUser": "carol"},
                Action=None,
                NotAction=["s3:Get*", "s3:List*"],
                Resource=None,
                NotResource="arn:aws:s3:::bkt/public/*",
            ),
            Id="x",
        ),
        "bkt",
    )
    assert (policy.version, policy.id, policy.variables) == ("2012-10-17", "x", True)
    first, second = policy.statements
    assert (first.sid, first.effect, first.actions, first.resources) == (
        "one",
        "Allow",
        ("s3:GetObject",),
        ("arn:aws:s3:::bkt/*",),
    )
    assert first.principals == Principals(everyone=True)
    assert first.conditions[0].operator == "StringLike"
    assert second.not_principal and second.not_action and second.not_resource
    assert second.principals == Principals(False, frozenset({"alice", "bob", "carol"}))
    assert second.actions == ("s3:Get*", "s3:List*")


@pytest.mark.parametrize(
    ("principal", "everyone", "names"),
    [
        ("*", True, set()),
        ({"AWS": "*"}, True, set()),
        ({"AWS": ["*"]}, True, set()),
        ({"AWS": "arn:aws:iam:::user/bob"}, False, {"bob"}),
        ({"AWS": "arn:aws:iam::123456789012:user/team/bob"}, False, {"bob"}),
        ({"AWS": ["bob", "arn:aws:iam:::user/alice"]}, False, {"alice", "bob"}),
        ({"CanonicalUser": "alice"}, False, {"alice"}),
        ({"Service": "logging.s3.amazonaws.com"}, False, set()),
        ({"AWS": ["*", "bob"]}, True, {"bob"}),
    ],
)
def test_principal_forms(principal, everyone, names):
    (statement,) = parse_bucket_policy(_doc(_statement(Principal=principal)), "bkt").statements
    assert statement.principals == Principals(everyone, frozenset(names))


def test_principal_names():
    assert principal_name("arn:aws:iam:::user/alice") == "alice"
    assert principal_name("arn:aws:iam::123456789012:user/path/to/alice") == "alice"
    assert principal_name("alice") == "alice"
    assert principal_name("arn:aws:iam::123456789012:root") == "arn:aws:iam::123456789012:root"
    assert Principals(names=frozenset({"alice"})).matches("arn:aws:iam:::user/alice")
    assert not Principals(names=frozenset({"alice"})).matches(None)
    assert Principals(everyone=True).matches(None)


def test_accepted_variants():
    single = json.dumps({"Statement": _statement(Action="*", Resource=["arn:aws:s3:::bkt", "arn:aws:s3:::b*/x"])})
    policy = parse_bucket_policy(single.encode(), "bkt")
    assert policy.version is None and not policy.variables
    assert parse_bucket_policy(_doc(_statement(Action="S3:getobject")), "bkt")
    assert parse_bucket_policy(_doc(_statement(Resource="arn:aws:s3:::*")), "bkt")
    assert parse_bucket_policy(b"  " + _doc(_statement()), "bkt")
    assert parse_bucket_policy(_doc(_statement(), Version="2008-10-17"), "bkt").version == "2008-10-17"


BUCKET_REFUSALS = [
    (b"not json", "Policies must be valid JSON and the first byte must be '{'"),
    (b"[1, 2]", "Policies must be valid JSON and the first byte must be '{'"),
    (b"\xff{}", "Policies must be valid JSON and the first byte must be '{'"),
    (b"{" + b" " * (20 * 1024) + b"}", "Policies must be less than 20 KB"),
    (json.dumps({"Version": "2012-10-17"}).encode(), "Missing required field Statement"),
    (json.dumps({"Version": "2099-01-01", "Statement": []}).encode(), "Invalid policy document version"),
    (
        json.dumps({"Version": "2012-10-17", "Statement": []}).encode(),
        "Could not parse the policy: Statement is empty!",
    ),
    (json.dumps({"Statement": [_statement()], "Extra": 1}).encode(), "Unknown field Extra"),
    (_doc("not an object"), "Statement is not an object"),
    (_doc(_statement(Colour="blue")), "Unknown field Colour"),
    (_doc(_statement(Effect="Maybe")), "Invalid effect: Maybe"),
    (_doc(_statement(Effect=None)), "Missing required field Effect"),
    (_doc(_statement(Principal=None)), "Missing required field Principal"),
    (_doc(_statement(NotPrincipal={"AWS": "bob"})), "Conflicting fields Principal"),
    (_doc(_statement(Principal=None, NotPrincipal={"AWS": "bob"})), "NotPrincipal is only supported with Effect Deny"),
    (_doc(_statement(Principal="bob")), "Invalid principal in policy"),
    (_doc(_statement(Principal={"Martian": "x"})), "Invalid principal in policy"),
    (_doc(_statement(Principal={})), "Invalid principal in policy"),
    (_doc(_statement(Principal={"AWS": []})), "Invalid principal in policy"),
    (_doc(_statement(Principal={"AWS": ""})), "Invalid principal in policy"),
    (_doc(_statement(Action=None)), "Missing required field Action"),
    (_doc(_statement(NotAction="s3:PutObject")), "Conflicting fields Action"),
    (_doc(_statement(Action="ec2:RunInstances")), "Policy has invalid action"),
    (_doc(_statement(Action="GetObject")), "Policy has invalid action"),
    (_doc(_statement(Action="s3:")), "Policy has invalid action"),
    (_doc(_statement(Action=[])), "Policy has invalid action"),
    (_doc(_statement(Action=7)), "Policy has invalid action"),
    (_doc(_statement(Resource=None)), "Missing required field Resource"),
    (_doc(_statement(Resource="arn:aws:s3:::another-bucket/*")), "Policy has invalid resource"),
    (_doc(_statement(Resource="*")), "Policy has invalid resource"),
    (_doc(_statement(Resource=["arn:aws:s3:::bkt/*", "arn:aws:ec2:::x"])), "Policy has invalid resource"),
    (_doc(_statement(Condition="x")), "Invalid Condition"),
    (_doc(_statement(Condition={"StringEquals": {}})), "Invalid Condition"),
    (_doc(_statement(Condition={"Stringy": {"k": "v"}})), "Invalid Condition type : Stringy"),
    (_doc(_statement(Sid=5)), "Invalid Sid"),
]


@pytest.mark.parametrize(("document", "reason"), BUCKET_REFUSALS)
def test_bucket_policies_s3_refuses_with_its_reason(document, reason):
    with pytest.raises(PolicyError) as caught:
        parse_bucket_policy(document, "bkt")
    assert caught.value.message == reason
    # PutBucketPolicy answers the same refusal as 400 MalformedPolicy with the same reason.
    with pytest.raises(S3Error) as answered:
        validate_policy(document, "bkt")
    assert (answered.value.code, answered.value.message) == ("MalformedPolicy", reason)


def test_put_bucket_policy_keeps_the_document_byte_for_byte():
    document = b'{ "Statement" : [' + json.dumps(_statement()).encode() + b"]}\n"
    assert validate_policy(document, "bkt") is document


def test_an_identity_policy_has_no_principal_and_any_resource():
    policy = parse_identity_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:Get*", "s3:ListBucket"], "Resource": "*"},
                {"Effect": "Deny", "NotAction": "s3:Get*", "NotResource": "arn:aws:s3:::logs/*"},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:::key/x"},
            ],
        }
    )
    assert [s.principals for s in policy.statements] == [None, None, None]
    assert policy.statements[1].not_action and policy.statements[1].not_resource
    text = json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}})
    assert parse_identity_policy(text).statements[0].actions == ("s3:*",)
    assert parse_identity_policy(text.encode()).statements[0].resources == ("arn:aws:s3:::b/*",)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{nope", "Policies must be valid JSON and the first byte must be '{'"),
        ([], "Policies must be valid JSON and the first byte must be '{'"),
        (
            {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}},
            "Policy document should not specify a principal.",
        ),
        ({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "bucket/*"}}, "Policy has invalid resource"),
        ({"Statement": {"Effect": "Allow", "Action": "s3:*"}}, "Missing required field Resource"),
        ({"Statement": {"Effect": "Allow", "Action": "GetObject", "Resource": "*"}}, "Policy has invalid action"),
        ({"Statement": {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}}, "Invalid effect: Permit"),
        ({"Statement": []}, "Could not parse the policy: Statement is empty!"),
    ],
)
def test_identity_policies_iam_refuses(document, reason):
    with pytest.raises(PolicyError) as caught:
        parse_identity_policy(document)
    assert caught.value.message == reason
