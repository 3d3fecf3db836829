"""ACLs and what is public: the permission each action needs on the bucket's or the object's ACL, who a
grant names (identities by canonical id, AllUsers, AuthenticatedUsers), S3's rule for public ACLs and
public bucket policies, and PublicAccessBlock read from its kept document."""

from __future__ import annotations

import json

import pytest

from s4.server.access import (
    PublicAccessBlock,
    acl_allows,
    acl_permission,
    is_public_acl,
    is_public_policy,
    parse_bucket_policy,
)
from s4.server.ops.documents.acl import ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY, Acl, Grant, canned_acl
from s4.server.ops.documents.settings import validate_public_access_block

ALICE = "arn:aws:iam:::user/alice"
BOB = "arn:aws:iam:::user/bob"


@pytest.mark.parametrize(
    ("action", "needed"),
    [
        ("s3:ListBucket", ("bucket", "READ")),
        ("s3:ListBucketVersions", ("bucket", "READ")),
        ("s3:ListBucketMultipartUploads", ("bucket", "READ")),
        ("s3:PutObject", ("bucket", "WRITE")),
        ("s3:DeleteObject", ("bucket", "WRITE")),
        ("s3:DeleteObjectVersion", ("bucket", "WRITE")),
        ("s3:AbortMultipartUpload", ("bucket", "WRITE")),
        ("s3:ListMultipartUploadParts", ("bucket", "WRITE")),
        ("s3:GetBucketAcl", ("bucket", "READ_ACP")),
        ("s3:PutBucketAcl", ("bucket", "WRITE_ACP")),
        ("s3:GetObject", ("object", "READ")),
        ("s3:getobject", ("object", "READ")),
        ("s3:GetObjectVersion", ("object", "READ")),
        ("s3:GetObjectAcl", ("object", "READ_ACP")),
        ("s3:GetObjectVersionAcl", ("object", "READ_ACP")),
        ("s3:PutObjectAcl", ("object", "WRITE_ACP")),
        ("s3:PutObjectVersionAcl", ("object", "WRITE_ACP")),
        ("s3:PutBucketPolicy", None),
        ("s3:GetObjectTagging", None),
        ("s3:DeleteBucket", None),
        ("s3:CreateBucket", None),
    ],
)
def test_the_permission_each_action_needs(action, needed):
    assert acl_permission(action) == needed


def _acl(*grants: tuple[str, str, str]) -> Acl:
    return Acl("alice", tuple(Grant(*g) for g in grants))


ACL_CASES = [
    # grants, action, caller, expected
    ((("CanonicalUser", "bob", "READ"),), "s3:GetObject", BOB, True),
    ((("CanonicalUser", "bob", "READ"),), "s3:GetObject", ALICE, False),
    ((("CanonicalUser", "bob", "READ"),), "s3:GetObject", None, False),
    ((("CanonicalUser", "bob", "READ"),), "s3:ListBucket", BOB, True),
    ((("CanonicalUser", "bob", "READ"),), "s3:PutObject", BOB, False),
    ((("CanonicalUser", "bob", "READ"),), "s3:GetObjectAcl", BOB, False),
    ((("CanonicalUser", "bob", "WRITE"),), "s3:PutObject", BOB, True),
    ((("CanonicalUser", "bob", "WRITE"),), "s3:DeleteObject", BOB, True),
    ((("CanonicalUser", "bob", "WRITE"),), "s3:GetObject", BOB, False),
    ((("CanonicalUser", "bob", "READ_ACP"),), "s3:GetBucketAcl", BOB, True),
    ((("CanonicalUser", "bob", "READ_ACP"),), "s3:PutBucketAcl", BOB, False),
    ((("CanonicalUser", "bob", "WRITE_ACP"),), "s3:PutObjectAcl", BOB, True),
    ((("CanonicalUser", "bob", "WRITE_ACP"),), "s3:GetObjectAcl", BOB, False),
    ((("CanonicalUser", "bob", "FULL_CONTROL"),), "s3:GetObject", BOB, True),
    ((("CanonicalUser", "bob", "FULL_CONTROL"),), "s3:PutObject", BOB, True),
    ((("CanonicalUser", "bob", "FULL_CONTROL"),), "s3:PutBucketAcl", BOB, True),
    ((("CanonicalUser", "bob", "FULL_CONTROL"),), "s3:PutBucketPolicy", BOB, False),
    ((("Group", ALL_USERS, "READ"),), "s3:GetObject", None, True),
    ((("Group", ALL_USERS, "READ"),), "s3:GetObject", BOB, True),
    ((("Group", ALL_USERS, "READ"),), "s3:PutObject", None, False),
    ((("Group", ALL_USERS, "WRITE"),), "s3:PutObject", None, True),
    ((("Group", AUTHENTICATED_USERS, "READ"),), "s3:GetObject", BOB, True),
    ((("Group", AUTHENTICATED_USERS, "READ"),), "s3:GetObject", None, False),
    ((("Group", LOG_DELIVERY, "WRITE"),), "s3:PutObject", BOB, False),
    ((("AmazonCustomerByEmail", "bob@example.com", "READ"),), "s3:GetObject", BOB, False),
    # The owner named in the ACL may always read and write the ACL, even with no grant at all.
    ((), "s3:GetBucketAcl", ALICE, True),
    ((), "s3:PutObjectAcl", ALICE, True),
    ((), "s3:GetObject", ALICE, False),
    ((), "s3:GetBucketAcl", BOB, False),
]


@pytest.mark.parametrize(("grants", "action", "caller", "expected"), ACL_CASES)
def test_acl_grants(grants, action, caller, expected):
    assert acl_allows(_acl(*grants), action, caller) is expected


def test_canned_acls_grant_what_their_names_say():
    assert acl_allows(canned_acl("private", "alice"), "s3:GetObject", ALICE)
    assert not acl_allows(canned_acl("private", "alice"), "s3:GetObject", BOB)
    assert acl_allows(canned_acl("public-read", "alice"), "s3:GetObject", None)
    assert not acl_allows(canned_acl("public-read", "alice"), "s3:PutObject", None)
    assert acl_allows(canned_acl("public-read-write", "alice"), "s3:PutObject", None)
    assert acl_allows(canned_acl("authenticated-read", "alice"), "s3:ListBucket", BOB)
    assert not acl_allows(canned_acl("authenticated-read", "alice"), "s3:ListBucket", None)
    full = canned_acl("bucket-owner-full-control", "bob", bucket_owner="alice")
    assert acl_allows(full, "s3:GetObject", ALICE) and acl_allows(full, "s3:PutObjectAcl", ALICE)
    read = canned_acl("bucket-owner-read", "bob", bucket_owner="alice")
    assert acl_allows(read, "s3:GetObject", ALICE) and not acl_allows(read, "s3:PutObjectAcl", ALICE)


def test_ignoring_public_acls_drops_only_the_public_groups():
    acl = _acl(("Group", ALL_USERS, "READ"), ("Group", AUTHENTICATED_USERS, "READ"), ("CanonicalUser", "bob", "READ"))
    assert acl_allows(acl, "s3:GetObject", None)
    assert not acl_allows(acl, "s3:GetObject", None, ignore_public=True)
    assert not acl_allows(acl, "s3:GetObject", "arn:aws:iam:::user/carol", ignore_public=True)
    assert acl_allows(acl, "s3:GetObject", BOB, ignore_public=True)


@pytest.mark.parametrize(
    ("canned", "public"),
    [
        ("private", False),
        ("public-read", True),
        ("public-read-write", True),
        ("authenticated-read", True),
        ("bucket-owner-full-control", False),
        ("log-delivery-write", False),
    ],
)
def test_public_acls(canned, public):
    assert is_public_acl(canned_acl(canned, "alice", bucket_owner="bob")) is public


def _policy(**fields):
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
    statement.update(fields)
    statement = {k: v for k, v in statement.items() if v is not None}
    return parse_bucket_policy(json.dumps({"Version": "2012-10-17", "Statement": [statement]}).encode(), "bkt")


@pytest.mark.parametrize(
    ("fields", "public"),
    [
        ({}, True),
        ({"Principal": {"AWS": "*"}}, True),
        ({"Principal": {"AWS": ["arn:aws:iam:::user/bob", "*"]}}, True),
        ({"Principal": {"AWS": "arn:aws:iam:::user/bob"}}, False),
        ({"Principal": {"CanonicalUser": "bob"}}, False),
        ({"Effect": "Deny", "Principal": None, "NotPrincipal": {"AWS": "arn:aws:iam:::user/bob"}}, False),
        ({"Effect": "Deny"}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}}}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "::/0"}}}, True),
        ({"Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}, False),
        ({"Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::other"}}}, False),
        ({"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, False),
        ({"Condition": {"StringEquals": {"aws:username": "bob"}}}, False),
        ({"Condition": {"StringLike": {"aws:SourceVpc": "vpc-*"}}}, True),
        ({"Condition": {"StringLike": {"aws:SourceAccount": "*"}}}, True),
        ({"Condition": {"StringEquals": {"aws:username": "${aws:username}"}}}, True),
        ({"Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}}, True),
        ({"Condition": {"StringEquals": {"s3:prefix": "public/"}}}, True),
        ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, True),
    ],
)
def test_public_policies(fields, public):
    assert is_public_policy(_policy(**fields)) is public


def test_a_policy_is_public_when_any_allow_is():
    statements = [
        {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "s3:*", "Resource": "arn:aws:s3:::bkt/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bkt"},
    ]
    document = json.dumps({"Statement": statements}).encode()
    assert is_public_policy(parse_bucket_policy(document, "bkt"))
    assert not is_public_policy(parse_bucket_policy(json.dumps({"Statement": statements[:1]}).encode(), "bkt"))


def _block_document(**flags: bool) -> bytes:
    body = "".join(f"<{k}>{str(v).lower()}</{k}>" for k, v in flags.items())
    xmlns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    return validate_public_access_block(
        f"<PublicAccessBlockConfiguration {xmlns}>{body}</PublicAccessBlockConfiguration>".encode()
    )


def test_public_access_block_from_its_kept_document():
    assert PublicAccessBlock.from_document(None) == PublicAccessBlock()
    assert PublicAccessBlock.from_document(b"") == PublicAccessBlock()
    every = _block_document(
        BlockPublicAcls=True, IgnorePublicAcls=True, BlockPublicPolicy=True, RestrictPublicBuckets=True
    )
    assert PublicAccessBlock.from_document(every) == PublicAccessBlock(True, True, True, True)
    some = _block_document(IgnorePublicAcls=True, BlockPublicPolicy=False)
    assert PublicAccessBlock.from_document(some) == PublicAccessBlock(ignore_public_acls=True)
    flag = b"<RestrictPublicBuckets>true</RestrictPublicBuckets>"
    bare = b"<PublicAccessBlockConfiguration>" + flag + b"</PublicAccessBlockConfiguration>"
    assert PublicAccessBlock.from_document(bare) == PublicAccessBlock(restrict_public_buckets=True)


def test_blocking_public_acls_and_policies_as_they_are_put():
    block = PublicAccessBlock(block_public_acls=True, block_public_policy=True)
    assert block.refuses_acl(canned_acl("public-read", "alice"))
    assert block.refuses_acl(canned_acl("authenticated-read", "alice"))
    assert not block.refuses_acl(canned_acl("private", "alice"))
    assert block.refuses_policy(_policy())
    assert not block.refuses_policy(_policy(Principal={"AWS": "bob"}))
    assert not PublicAccessBlock().refuses_acl(canned_acl("public-read", "alice"))
    assert not PublicAccessBlock(ignore_public_acls=True).refuses_policy(_policy())
