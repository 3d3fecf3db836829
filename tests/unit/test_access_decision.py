"""The whole decision, every source weighed as AWS weighs them: an explicit Deny anywhere wins; then the
identity policy, ownership, the bucket policy or the ACL may allow; nothing allowing is a refusal. With the
canned identity policies and PublicAccessBlock's IgnorePublicAcls and RestrictPublicBuckets, and a matrix of
identities x operations on alice's bucket."""

from __future__ import annotations

import json

import pytest

from s4.server.access import (
    CANNED_POLICIES,
    AccessRequest,
    Decision,
    PublicAccessBlock,
    canned_identity_policy,
    decide,
    kept_bucket_policy,
    parse_bucket_policy,
    parse_identity_policy,
)
from s4.server.ops.documents.acl import canned_acl, default_acl

ALICE = "arn:aws:iam:::user/alice"
BOB = "arn:aws:iam:::user/bob"
READER = "arn:aws:iam:::user/reader"
ADMIN = "arn:aws:iam:::user/admin"
READWRITE = canned_identity_policy("readwrite")


def _bucket_policy(*statements: dict):
    return parse_bucket_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}).encode(), "bkt")


def _decide(action="s3:GetObject", key="k", principal=BOB, *, identity=READWRITE, owner=False, **sources) -> Decision:
    request = AccessRequest(action, "bkt", key, principal, sources.pop("context", {}))
    return decide(
        request,
        identity_policy=identity if principal is not None else None,
        is_owner=owner,
        bucket_policy=sources.get("bucket_policy"),
        acl=sources.get("acl"),
        public_access_block=sources.get("block"),
    )


GRANT_BOB_READ = {
    "Effect": "Allow",
    "Principal": {"AWS": BOB},
    "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
}
DENY_BOB_GET = {"Effect": "Deny", "Principal": {"AWS": BOB}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
PUBLIC_READ_POLICY = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}


def test_nothing_allows_is_an_implicit_deny():
    assert _decide() == Decision(False, "no statement allows")
    assert not _decide(principal=None)
    assert not _decide(acl=default_acl("alice"))


def test_each_source_can_allow():
    assert _decide(identity=canned_identity_policy("readonly")) == Decision(True, "allowed by identity policy")
    assert _decide(owner=True) == Decision(True, "allowed as bucket owner")
    assert _decide(bucket_policy=_bucket_policy(GRANT_BOB_READ)) == Decision(True, "allowed by bucket policy")
    assert _decide(acl=canned_acl("public-read", "alice")) == Decision(True, "allowed by ACL")


def test_an_explicit_deny_wins_over_every_allow():
    deny = _bucket_policy(GRANT_BOB_READ, DENY_BOB_GET)
    expected = Decision(False, "explicit deny in bucket policy")
    assert _decide(bucket_policy=deny) == expected
    assert _decide(bucket_policy=deny, identity=canned_identity_policy("admin")) == expected
    assert _decide(bucket_policy=deny, owner=True) == expected
    assert _decide(bucket_policy=deny, acl=canned_acl("public-read", "alice")) == expected
    assert _decide("s3:ListBucket", None, bucket_policy=deny)  # the Deny is about GetObject only
    no_deletes = parse_identity_policy(
        {
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
            ]
        }
    )
    assert _decide("s3:DeleteObject", identity=no_deletes, owner=True) == Decision(
        False, "explicit deny in identity policy"
    )
    assert _decide(
        "s3:DeleteObject", identity=no_deletes, bucket_policy=_bucket_policy(PUBLIC_READ_POLICY | {"Action": "s3:*"})
    ).reason == ("explicit deny in identity policy")
    assert _decide("s3:GetObject", identity=no_deletes)


def test_the_owner_may_always_manage_the_bucket_policy():
    lockout = _bucket_policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"]}
    )
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert _decide(action, None, ALICE, owner=True, bucket_policy=lockout).allowed
        assert not _decide(action, None, BOB, bucket_policy=lockout).allowed
    assert not _decide("s3:GetObject", "k", ALICE, owner=True, bucket_policy=lockout).allowed
    assert not _decide("s3:PutBucketAcl", None, ALICE, owner=True, bucket_policy=lockout).allowed


def test_anonymous_callers_get_only_what_is_granted_to_everyone():
    assert _decide(principal=None, bucket_policy=_bucket_policy(PUBLIC_READ_POLICY))
    assert not _decide(principal=None, bucket_policy=_bucket_policy(GRANT_BOB_READ))
    assert _decide(principal=None, acl=canned_acl("public-read", "alice"))
    assert not _decide(principal=None, acl=canned_acl("authenticated-read", "alice"))
    assert _decide(principal=BOB, acl=canned_acl("authenticated-read", "alice"))
    assert not _decide("s3:PutObject", principal=None, acl=canned_acl("public-read", "alice"))
    # An identity policy never speaks for an anonymous caller.
    request = AccessRequest("s3:GetObject", "bkt", "k", None)
    kwargs = {"is_owner": False, "bucket_policy": None, "acl": None, "public_access_block": None}
    assert not decide(request, identity_policy=canned_identity_policy("admin"), **kwargs)


def test_ignore_public_acls():
    block = PublicAccessBlock(ignore_public_acls=True)
    public = canned_acl("public-read", "alice")
    assert not _decide(principal=None, acl=public, block=block)
    assert not _decide(principal=BOB, acl=public, block=block)
    assert _decide(principal=ALICE, acl=public, block=block)  # the owner's own grant is no public grant
    # A public *policy* is untouched by IgnorePublicAcls.
    assert _decide(principal=None, bucket_policy=_bucket_policy(PUBLIC_READ_POLICY), block=block)


def test_restrict_public_buckets():
    block = PublicAccessBlock(restrict_public_buckets=True)
    public = _bucket_policy(PUBLIC_READ_POLICY, GRANT_BOB_READ)
    assert _decide(principal=None, bucket_policy=public, block=block) == Decision(
        False, "public bucket policy restricted by RestrictPublicBuckets"
    )
    # Even the non-public statement granting bob is cut while the policy is public (S3: no cross-account
    # access at all), but the owner keeps its rights and an ACL still grants.
    assert not _decide(principal=BOB, bucket_policy=public, block=block)
    assert _decide(principal=ALICE, owner=True, bucket_policy=public, block=block)
    assert _decide(principal=BOB, bucket_policy=public, block=block, acl=canned_acl("authenticated-read", "alice"))
    # A policy that is not public is not restricted.
    assert _decide(principal=BOB, bucket_policy=_bucket_policy(GRANT_BOB_READ), block=block)
    # Fixed by a narrow source range, the policy is not public and keeps granting.
    fixed = _bucket_policy(PUBLIC_READ_POLICY | {"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    assert _decide(principal=None, bucket_policy=fixed, block=block, context={"aws:SourceIp": "10.0.0.1"})
    assert not _decide(principal=None, bucket_policy=fixed, block=block, context={"aws:SourceIp": "192.0.2.1"})


def test_conditions_reach_the_decision():
    only_tls = _bucket_policy(
        GRANT_BOB_READ,
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::bkt/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    assert _decide(bucket_policy=only_tls, context={"aws:SecureTransport": "true"})
    assert not _decide(bucket_policy=only_tls, context={"aws:SecureTransport": "false"})


def test_canned_identity_policies():
    assert set(CANNED_POLICIES) == {"admin", "readwrite", "readonly", "writeonly"}
    assert canned_identity_policy("superuser") is None
    assert canned_identity_policy("admin") is CANNED_POLICIES["admin"]


# Identities x operations on alice's bucket, with no bucket policy and alice's default ACLs: what each
# canned policy lets each identity do on a bucket it does not own (alice owns it).
MATRIX_ACTIONS = [
    ("s3:ListAllMyBuckets", None, None),
    ("s3:CreateBucket", "other", None),
    ("s3:ListBucket", "bkt", None),
    ("s3:GetObject", "bkt", "k"),
    ("s3:GetObjectAcl", "bkt", "k"),
    ("s3:GetObjectTagging", "bkt", "k"),
    ("s3:GetBucketPolicy", "bkt", None),
    ("s3:PutObject", "bkt", "k"),
    ("s3:AbortMultipartUpload", "bkt", "k"),
    ("s3:ListMultipartUploadParts", "bkt", "k"),
    ("s3:ListBucketMultipartUploads", "bkt", None),
    ("s3:DeleteObject", "bkt", "k"),
    ("s3:PutObjectAcl", "bkt", "k"),
    ("s3:PutBucketPolicy", "bkt", None),
    ("s3:DeleteBucket", "bkt", None),
]
EXPECTED = {
    "admin": set(range(len(MATRIX_ACTIONS))),
    "readonly": {0, 2, 3, 4, 5, 6, 9, 10},  # s3:Get* and s3:List* (multipart listings are List*)
    "writeonly": {7, 8, 9, 10},
    "readwrite": {0, 1},
    "anonymous": set(),
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_matrix_of_canned_identities_on_another_owners_bucket(who):
    principal = None if who == "anonymous" else f"arn:aws:iam:::user/{who}"
    policy = None if who == "anonymous" else canned_identity_policy(who)
    allowed = set()
    for index, (action, bucket, key) in enumerate(MATRIX_ACTIONS):
        request = AccessRequest(action, bucket, key, principal)
        acl = default_acl("alice") if bucket == "bkt" else None
        decision = decide(
            request, identity_policy=policy, is_owner=False, bucket_policy=None, acl=acl, public_access_block=None
        )
        if decision.allowed:
            allowed.add(index)
    assert {MATRIX_ACTIONS[i][0] for i in allowed} == {MATRIX_ACTIONS[i][0] for i in EXPECTED[who]}


def test_the_owner_with_readwrite_does_everything_on_its_bucket():
    for action, bucket, key in MATRIX_ACTIONS:
        if bucket == "bkt":
            request = AccessRequest(action, bucket, key, ALICE)
            decision = decide(
                request,
                identity_policy=READWRITE,
                is_owner=True,
                bucket_policy=None,
                acl=default_acl("alice"),
                public_access_block=None,
            )
            assert decision.allowed, action


def test_a_kept_policy_that_no_longer_parses_fails_closed_but_the_owner_can_replace_it():
    good = json.dumps({"Statement": [PUBLIC_READ_POLICY]}).encode()
    assert kept_bucket_policy(good, "bkt") == parse_bucket_policy(good, "bkt")
    unreadable = kept_bucket_policy(b"{not json", "bkt")
    assert not _decide(principal=None, bucket_policy=unreadable, acl=canned_acl("public-read", "alice"))
    assert not _decide("s3:GetObject", principal=ALICE, owner=True, bucket_policy=unreadable)
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert _decide(action, None, ALICE, owner=True, bucket_policy=unreadable)
