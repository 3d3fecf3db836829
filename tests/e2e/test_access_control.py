"""Identities and access control (issue 15) against a real ``s4 serve``: the matrix of who may do what to
alice's bucket, bucket policies (an Allow for bob, then a Deny that wins), public-read objects fetched with
plain HTTP, the aws-cli scenario, the access log, and SIGHUP reloading the identities.

One gateway for the module: alice and bob (readwrite), carol (readonly), the environment's admin pair, and
anonymous requests (no signature at all).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY, start_gateway

KEYS = {
    "alice": ("ALICEKEY0000000001", "alice-secret-0000000001"),
    "bob": ("BOBKEY000000000001", "bob-secret-00000000001"),
    "carol": ("CAROLKEY0000000001", "carol-secret-0000000001"),
    "admin": (ACCESS_KEY, SECRET_KEY),
}
CONFIG = (
    "credentials:\n"
    "  - {access_key_id: ALICEKEY0000000001, secret_access_key: alice-secret-0000000001, name: alice}\n"
    "  - {access_key_id: BOBKEY000000000001, secret_access_key: bob-secret-00000000001, name: bob}\n"
    "  - {access_key_id: CAROLKEY0000000001, secret_access_key: carol-secret-0000000001, name: carol,"
    " policy: readonly}\n"
)
DAVE = "  - {access_key_id: DAVEKEY00000000001, secret_access_key: dave-secret-00000000001, name: dave}\n"
BUCKET = "alpha"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    config = tmp / "s4.yaml"
    config.write_text(CONFIG)
    gw = start_gateway(tmp / "gateway", extra_args=("--config", str(config), "--workers", "1"))
    gw.config_path = config
    yield gw
    gw.stop()


def client(gateway, who: str):
    if who == "anonymous":
        config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
        return boto3.client("s3", endpoint_url=gateway.endpoint, region_name="us-east-1", config=config)
    key, secret = KEYS[who]
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


def error_code(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] or str(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return None


@pytest.fixture(scope="module")
def alpha(gateway):
    """alice's bucket: one object with a tag, and one multipart upload in progress."""
    alice = client(gateway, "alice")
    alice.create_bucket(Bucket=BUCKET)
    alice.put_object(Bucket=BUCKET, Key="k", Body=b"alice's data", Tagging="team=a")
    upload = alice.create_multipart_upload(Bucket=BUCKET, Key="mpu")["UploadId"]
    return upload


def state(gateway) -> tuple:
    """Everything a refused request could have changed, as alice sees it."""
    alice = client(gateway, "alice")
    keys = [o["Key"] for o in alice.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    body = alice.get_object(Bucket=BUCKET, Key="k")["Body"].read()
    tags = alice.get_object_tagging(Bucket=BUCKET, Key="k")["TagSet"]
    uploads = [u["UploadId"] for u in alice.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    acl = alice.get_bucket_acl(Bucket=BUCKET)["Grants"]
    cors = error_code(lambda: alice.get_bucket_cors(Bucket=BUCKET))
    return keys, body, tags, uploads, acl, cors, [b["Name"] for b in alice.list_buckets()["Buckets"]]


def operations(upload_id: str) -> dict[str, Callable]:
    """Each operation on alice's bucket, as a call on a client; writes are of new keys or harmless values."""
    cors = {"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}
    return {
        "ListObjectsV2": lambda c: c.list_objects_v2(Bucket=BUCKET),
        "ListObjects": lambda c: c.list_objects(Bucket=BUCKET),
        "ListObjectVersions": lambda c: c.list_object_versions(Bucket=BUCKET),
        "HeadBucket": lambda c: c.head_bucket(Bucket=BUCKET),
        "GetBucketLocation": lambda c: c.get_bucket_location(Bucket=BUCKET),
        "GetObject": lambda c: c.get_object(Bucket=BUCKET, Key="k")["Body"].read(),
        "HeadObject": lambda c: c.head_object(Bucket=BUCKET, Key="k"),
        "GetObjectTagging": lambda c: c.get_object_tagging(Bucket=BUCKET, Key="k"),
        "GetObjectAcl": lambda c: c.get_object_acl(Bucket=BUCKET, Key="k"),
        "GetBucketAcl": lambda c: c.get_bucket_acl(Bucket=BUCKET),
        "ListMultipartUploads": lambda c: c.list_multipart_uploads(Bucket=BUCKET),
        "ListParts": lambda c: c.list_parts(Bucket=BUCKET, Key="mpu", UploadId=upload_id),
        "PutObject": lambda c: c.put_object(Bucket=BUCKET, Key="k", Body=b"overwritten"),
        "CopyObject": lambda c: c.copy_object(Bucket=BUCKET, Key="copy", CopySource=f"{BUCKET}/k"),
        "PutObjectTagging": lambda c: c.put_object_tagging(
            Bucket=BUCKET, Key="k", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]}
        ),
        "DeleteObjectTagging": lambda c: c.delete_object_tagging(Bucket=BUCKET, Key="k"),
        "CreateMultipartUpload": lambda c: c.create_multipart_upload(Bucket=BUCKET, Key="other"),
        "AbortMultipartUpload": lambda c: c.abort_multipart_upload(Bucket=BUCKET, Key="mpu", UploadId=upload_id),
        "DeleteObject": lambda c: c.delete_object(Bucket=BUCKET, Key="k"),
        "PutBucketAcl": lambda c: c.put_bucket_acl(Bucket=BUCKET, ACL="public-read"),
        "PutBucketCors": lambda c: c.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors),
        "PutBucketPolicy": lambda c: c.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(public_read_policy())),
        "DeleteBucket": lambda c: c.delete_bucket(Bucket=BUCKET),
    }


READS = frozenset(
    {
        "ListObjectsV2",
        "ListObjects",
        "ListObjectVersions",
        "HeadBucket",
        "GetBucketLocation",
        "GetObject",
        "HeadObject",
        "GetObjectTagging",
        "GetObjectAcl",
        "GetBucketAcl",
        "ListMultipartUploads",
        "ListParts",
    }
)


def public_read_policy(bucket: str = BUCKET) -> dict:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize("who", ["bob", "carol", "anonymous"])
def test_others_are_refused_and_change_nothing(gateway, alpha, who):
    """bob (another readwrite identity) and anonymous callers may do nothing to alice's bucket; carol
    (readonly) may read it and nothing more. A refused request changes nothing."""
    before = state(gateway)
    caller = client(gateway, who)
    outcomes = {name: error_code(lambda call=call: call(caller)) for name, call in operations(alpha).items()}
    if who == "carol":
        expected = {name: (None if name in READS else "AccessDenied") for name in outcomes}
    else:
        # HEAD has no body: boto3 shows the status (403) as the code.
        expected = {name: ("403" if name.startswith("Head") else "AccessDenied") for name in outcomes}
    assert outcomes == expected
    assert state(gateway) == before


def test_refused_delete_objects_reports_each_key(gateway, alpha):
    before = state(gateway)
    answer = client(gateway, "bob").delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "k"}, {"Key": "nope"}]})
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("k", "AccessDenied"), ("nope", "AccessDenied")]
    assert not answer.get("Deleted")
    assert state(gateway) == before


def test_a_refused_upload_gets_no_100_continue(gateway, alpha):
    """A client that waits for 100 Continue never sends a body the access check refuses: 403 comes first."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.e2e.raw import first_response_line

    headers = {"Expect": "100-continue", "Content-Length": "10", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    lines = {}
    for who in ("bob", "alice"):
        request = AWSRequest(method="PUT", url=f"{gateway.endpoint}/{BUCKET}/expect", headers=dict(headers))
        SigV4Auth(Credentials(*KEYS[who]), "s3", "us-east-1").add_auth(request)
        lines[who] = first_response_line(gateway, request)
    assert lines == {"bob": b"HTTP/1.1 403 Forbidden", "alice": b"HTTP/1.1 100 Continue"}
    # A store's answer in the access check (a missing key, to whoever may list it) is an S3 error too.
    client(gateway, "alice").create_bucket(Bucket="listed", ACL="public-read")
    request = AWSRequest(method="GET", url=f"{gateway.endpoint}/listed/none", headers=dict(headers))
    SigV4Auth(Credentials(*KEYS["bob"]), "s3", "us-east-1").add_auth(request)
    assert first_response_line(gateway, request) == b"HTTP/1.1 404 Not Found"


def test_copy_needs_read_of_the_source(gateway, alpha):
    """bob copies into his own bucket: refused without s3:GetObject on alice's object."""
    bob = client(gateway, "bob")
    bob.create_bucket(Bucket="bobs")
    assert error_code(lambda: bob.copy_object(Bucket="bobs", Key="stolen", CopySource=f"{BUCKET}/k")) == "AccessDenied"
    assert "Contents" not in bob.list_objects_v2(Bucket="bobs")
    # alice may not write into bob's bucket either, even from her own object.
    alice = client(gateway, "alice")
    assert error_code(lambda: alice.copy_object(Bucket="bobs", Key="gift", CopySource=f"{BUCKET}/k")) == "AccessDenied"


def test_owners_and_listings(gateway, alpha):
    alice, bob, admin = client(gateway, "alice"), client(gateway, "bob"), client(gateway, "admin")
    assert error_code(lambda: bob.create_bucket(Bucket=BUCKET)) == "BucketAlreadyExists"
    alice.create_bucket(Bucket=BUCKET)  # its owner again: us-east-1 answers 200
    mine = alice.list_buckets()
    assert mine["Owner"] == {"ID": "alice", "DisplayName": "alice"}
    assert BUCKET in [b["Name"] for b in mine["Buckets"]]
    assert BUCKET not in [b["Name"] for b in bob.list_buckets()["Buckets"]]
    assert BUCKET in [b["Name"] for b in admin.list_buckets()["Buckets"]]
    listing = alice.list_objects_v2(Bucket=BUCKET, FetchOwner=True)["Contents"]
    assert {o["Owner"]["ID"] for o in listing} == {"alice"}
    assert alice.get_bucket_acl(Bucket=BUCKET)["Owner"]["ID"] == "alice"
    assert admin.get_object_acl(Bucket=BUCKET, Key="k")["Owner"]["ID"] == "alice"
    uploads = admin.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert {(u["Initiator"]["ID"], u["Owner"]["ID"]) for u in uploads} == {("alice", "alice")}
    assert error_code(lambda: client(gateway, "carol").create_bucket(Bucket="carols")) == "AccessDenied"
    alice.get_object(Bucket=BUCKET, Key="k", ExpectedBucketOwner="alice")
    assert error_code(lambda: alice.get_object(Bucket=BUCKET, Key="k", ExpectedBucketOwner="bob")) == "AccessDenied"
    assert error_code(lambda: client(gateway, "anonymous").list_buckets()) == "AccessDenied"


def test_list_buckets_pages_through_the_callers_own_buckets(gateway):
    """ListBuckets' pagination (max-buckets, continuation-token, prefix, bucket-region), as AWS answers it:
    pages of the caller's buckets by name, a token while more remain, another owner's bucket never counted."""
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    for name in ("pages-a2", "pages-c9"):  # alice's: between bob's, and after his last
        alice.create_bucket(Bucket=name)
    for name in ("pages-b4", "pages-b1", "pages-b3"):
        bob.create_bucket(Bucket=name)
    first = bob.list_buckets(Prefix="pages-", MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["pages-b1", "pages-b3"]
    assert first["Prefix"] == "pages-"
    assert {b["BucketRegion"] for b in first["Buckets"]} == {"us-east-1"}
    second = bob.list_buckets(Prefix="pages-", MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == ["pages-b4"]
    assert "ContinuationToken" not in second
    exact = bob.list_buckets(Prefix="pages-", MaxBuckets=3)
    assert [b["Name"] for b in exact["Buckets"]] == ["pages-b1", "pages-b3", "pages-b4"]
    assert "ContinuationToken" not in exact
    everything = bob.list_buckets()
    assert {"pages-b1", "pages-b3", "pages-b4"} <= {b["Name"] for b in everything["Buckets"]}
    assert not {"pages-a2", "pages-c9"} & {b["Name"] for b in everything["Buckets"]}
    assert "ContinuationToken" not in everything and "Prefix" not in everything
    assert bob.list_buckets(BucketRegion="eu-west-1")["Buckets"] == []
    assert [b["Name"] for b in alice.list_buckets(Prefix="pages-")["Buckets"]] == ["pages-a2", "pages-c9"]
    one_by_one, token = [], None
    while True:
        page = bob.list_buckets(Prefix="pages-", MaxBuckets=1, **({"ContinuationToken": token} if token else {}))
        one_by_one += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if token is None:
            break
    assert one_by_one == ["pages-b1", "pages-b3", "pages-b4"]
    unchecked = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=KEYS["bob"][0],
        aws_secret_access_key=KEYS["bob"][1],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    for wrong in (0, 10_001):
        assert error_code(lambda wrong=wrong: unchecked.list_buckets(MaxBuckets=wrong)) == "InvalidArgument"


def test_bucket_policy_grants_then_deny_wins(gateway):
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    alice.create_bucket(Bucket="shared")
    alice.put_object(Bucket="shared", Key="doc", Body=b"for bob")
    assert error_code(lambda: bob.get_object(Bucket="shared", Key="doc")) == "AccessDenied"
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam:::user/bob"]},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"],
    }
    alice.put_bucket_policy(Bucket="shared", Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    assert bob.get_object(Bucket="shared", Key="doc")["Body"].read() == b"for bob"
    assert [o["Key"] for o in bob.list_objects_v2(Bucket="shared")["Contents"]] == ["doc"]
    assert error_code(lambda: bob.put_object(Bucket="shared", Key="doc", Body=b"no")) == "AccessDenied"
    assert error_code(lambda: client(gateway, "carol").get_object_acl(Bucket="shared", Key="doc")) is None
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam:::user/bob"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [grant, deny]}
    alice.put_bucket_policy(Bucket="shared", Policy=json.dumps(policy))
    assert error_code(lambda: bob.get_object(Bucket="shared", Key="doc")) == "AccessDenied"
    assert [o["Key"] for o in bob.list_objects_v2(Bucket="shared")["Contents"]] == ["doc"]  # still allowed
    # A Deny in the bucket policy binds even the readonly identity's own policy.
    everyone = {**deny, "Principal": "*", "Action": "s3:GetObjectAcl"}
    alice.put_bucket_policy(Bucket="shared", Policy=json.dumps({"Version": "2012-10-17", "Statement": [everyone]}))
    assert error_code(lambda: client(gateway, "carol").get_object_acl(Bucket="shared", Key="doc")) == "AccessDenied"


def test_acl_grants_to_identities(gateway):
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    alice.create_bucket(Bucket="granted")
    alice.put_object(Bucket="granted", Key="k", Body=b"v")
    assert error_code(lambda: alice.put_bucket_acl(Bucket="granted", GrantRead="id=nobody")) == "InvalidArgument"
    assert error_code(lambda: bob.list_objects_v2(Bucket="granted")) == "AccessDenied"
    alice.put_bucket_acl(Bucket="granted", GrantRead="id=bob", GrantFullControl="id=alice")
    assert [o["Key"] for o in bob.list_objects_v2(Bucket="granted")["Contents"]] == ["k"]
    assert error_code(lambda: bob.get_object(Bucket="granted", Key="k")) == "AccessDenied"  # the object's own ACL
    alice.put_object_acl(Bucket="granted", Key="k", GrantRead="id=bob", GrantFullControl="id=alice")
    assert bob.get_object(Bucket="granted", Key="k")["Body"].read() == b"v"
    assert error_code(lambda: bob.put_object(Bucket="granted", Key="k2", Body=b"x")) == "AccessDenied"  # no WRITE


def test_missing_objects_are_404_only_to_who_may_list_them(gateway):
    """S3 answers a read of a missing key 404 NoSuchKey to whoever may list that key, 403 to others."""
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    alice.create_bucket(Bucket="sparse")
    reads = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam:::user/bob"}, "Action": "s3:GetObject"}
    lists = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::sparse",
        "Condition": {"StringLike": {"s3:prefix": "public/*"}},
    }
    policy = {"Version": "2012-10-17", "Statement": [{**reads, "Resource": "arn:aws:s3:::sparse/*"}, lists]}
    alice.put_bucket_policy(Bucket="sparse", Policy=json.dumps(policy))
    assert error_code(lambda: bob.get_object(Bucket="sparse", Key="private/none")) == "AccessDenied"
    assert error_code(lambda: bob.get_object(Bucket="sparse", Key="public/none")) == "NoSuchKey"
    carol = client(gateway, "carol")  # readonly: may read and list everything
    assert error_code(lambda: carol.head_object(Bucket="sparse", Key="public/none")) == "404"
    assert error_code(lambda: client(gateway, "anonymous").head_object(Bucket="sparse", Key="public/none")) == "404"
    assert error_code(lambda: client(gateway, "anonymous").head_object(Bucket="sparse", Key="private/x")) == "403"
    assert error_code(lambda: alice.get_object(Bucket="sparse", Key="private/none")) == "NoSuchKey"


def test_object_ownership_decides_who_owns_another_identitys_upload(gateway):
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    lets_bob_write = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam:::user/bob"},
        "Action": "s3:PutObject",
        "Resource": None,
    }
    for bucket, ownership in (("writer-owned", "ObjectWriter"), ("owner-enforced", "BucketOwnerEnforced")):
        alice.create_bucket(Bucket=bucket, ObjectOwnership=ownership)
        statement = {**lets_bob_write, "Resource": f"arn:aws:s3:::{bucket}/*"}
        alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
        bob.put_object(Bucket=bucket, Key="from-bob", Body=b"b")
    assert alice.get_object_acl(Bucket="writer-owned", Key="from-bob")["Owner"]["ID"] == "bob"
    assert alice.get_object_acl(Bucket="owner-enforced", Key="from-bob")["Owner"]["ID"] == "alice"
    refused = error_code(lambda: bob.put_object(Bucket="owner-enforced", Key="x", Body=b"x", ACL="private"))
    assert refused == "AccessControlListNotSupported"
    bob.put_object(Bucket="owner-enforced", Key="y", Body=b"y", ACL="bucket-owner-full-control")


def test_policy_condition_on_existing_object_tags(gateway):
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    alice.create_bucket(Bucket="tagged")
    alice.put_object(Bucket="tagged", Key="open", Body=b"o", Tagging="security=public")
    alice.put_object(Bucket="tagged", Key="closed", Body=b"c", Tagging="security=private")
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam:::user/bob"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::tagged/*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}},
    }
    alice.put_bucket_policy(Bucket="tagged", Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    assert bob.get_object(Bucket="tagged", Key="open")["Body"].read() == b"o"
    assert error_code(lambda: bob.get_object(Bucket="tagged", Key="closed")) == "AccessDenied"


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_public_read_object_by_plain_http(gateway):
    alice = client(gateway, "alice")
    alice.create_bucket(Bucket="site")
    alice.put_object(Bucket="site", Key="index.html", Body=b"<h1>hi</h1>", ACL="public-read")
    alice.put_object(Bucket="site", Key="secret.txt", Body=b"private")
    assert _fetch(f"{gateway.endpoint}/site/index.html") == (200, b"<h1>hi</h1>")
    status, body = _fetch(f"{gateway.endpoint}/site/secret.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, body = _fetch(f"{gateway.endpoint}/site")  # listing is the bucket ACL's, which is private
    assert status == 403
    # Anonymous writes: only where an ACL or a policy lets anyone write.
    anonymous = client(gateway, "anonymous")
    assert error_code(lambda: anonymous.put_object(Bucket="site", Key="x", Body=b"x")) == "AccessDenied"
    assert _post_form(f"{gateway.endpoint}/site", {"key": "form.txt"}, b"posted") == 403
    alice.put_bucket_acl(Bucket="site", ACL="public-read-write")
    anonymous.put_object(Bucket="site", Key="dropbox", Body=b"from anyone")
    assert alice.get_object_acl(Bucket="site", Key="dropbox")["Owner"]["ID"] == "anonymous"
    # An anonymous browser form (no signature, no policy) too.
    assert _post_form(f"{gateway.endpoint}/site", {"key": "form.txt"}, b"posted") == 204
    assert alice.get_object(Bucket="site", Key="form.txt")["Body"].read() == b"posted"
    # PublicAccessBlock: public grants stop granting, and public ACLs are refused.
    alice.put_public_access_block(
        Bucket="site",
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True},
    )
    assert _fetch(f"{gateway.endpoint}/site/index.html")[0] == 403
    assert error_code(lambda: alice.put_object(Bucket="site", Key="p", Body=b"p", ACL="public-read")) == "AccessDenied"
    assert error_code(lambda: alice.put_bucket_acl(Bucket="site", ACL="public-read")) == "AccessDenied"


def _post_form(url: str, fields: dict[str, str], data: bytes) -> int:
    boundary = "s4-access-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    body = "".join(parts).encode() + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_policy_status_and_blocked_public_policy(gateway):
    alice = client(gateway, "alice")
    alice.create_bucket(Bucket="status")
    assert error_code(lambda: alice.get_bucket_policy_status(Bucket="status")) == "NoSuchBucketPolicy"
    alice.put_bucket_policy(Bucket="status", Policy=json.dumps(public_read_policy("status")))
    assert alice.get_bucket_policy_status(Bucket="status")["PolicyStatus"]["IsPublic"] is True
    alice.put_public_access_block(Bucket="status", PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    again = json.dumps(public_read_policy("status"))
    assert error_code(lambda: alice.put_bucket_policy(Bucket="status", Policy=again)) == "AccessDenied"


def test_presigned_url_carries_the_signers_rights(gateway, alpha):
    alice_url = client(gateway, "alice").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k"})
    assert _fetch(alice_url) == (200, b"alice's data")
    bob_url = client(gateway, "bob").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k"})
    assert _fetch(bob_url)[0] == 403


def test_access_log_names_principal_and_refused_action(gateway, alpha):
    error_code(lambda: client(gateway, "bob").get_object(Bucket=BUCKET, Key="k"))
    deadline = time.monotonic() + 5
    refused = []
    while time.monotonic() < deadline and not refused:
        lines = [json.loads(line) for line in (gateway.data_dir.parent / "access.log").read_text().splitlines()]
        refused = [e for e in lines if e.get("refused_action") == "s3:GetObject" and e["principal"].endswith("/bob")]
        time.sleep(0.1)
    assert refused and refused[-1]["status"] == 403 and refused[-1]["principal"] == "arn:aws:iam:::user/bob"
    assert refused[-1]["refused_because"]


def _aws(gateway, who: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = gateway.client_env()
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = KEYS[who]
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", gateway.endpoint, *args]
    result = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} as {who} failed: {result.stderr.decode()}")
    return result


def test_awscli_scenario(gateway, tmp_path):
    """alice creates a bucket, bob is refused, alice grants bob read with put-bucket-policy, bob reads; an
    object uploaded with --acl public-read downloads with plain HTTP."""
    (tmp_path / "report.txt").write_bytes(b"quarterly numbers\n")
    _aws(gateway, "alice", "s3", "mb", "s3://reports")
    _aws(gateway, "alice", "s3", "cp", str(tmp_path / "report.txt"), "s3://reports/q1.txt")
    refused = _aws(gateway, "bob", "s3", "cp", "s3://reports/q1.txt", str(tmp_path / "got.txt"), check=False)
    assert refused.returncode != 0 and b"403" in refused.stderr
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam:::user/bob"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            }
        ],
    }
    _aws(gateway, "alice", "s3api", "put-bucket-policy", "--bucket", "reports", "--policy", json.dumps(policy))
    _aws(gateway, "bob", "s3", "cp", "s3://reports/q1.txt", str(tmp_path / "got.txt"))
    assert (tmp_path / "got.txt").read_bytes() == b"quarterly numbers\n"
    assert b"q1.txt" in _aws(gateway, "bob", "s3", "ls", "s3://reports").stdout
    assert _aws(gateway, "bob", "s3", "rm", "s3://reports/q1.txt", check=False).returncode != 0
    _aws(gateway, "alice", "s3", "cp", str(tmp_path / "report.txt"), "s3://reports/public.txt", "--acl", "public-read")
    assert _fetch(f"{gateway.endpoint}/reports/public.txt") == (200, b"quarterly numbers\n")
    assert _fetch(f"{gateway.endpoint}/reports/q1.txt")[0] == 403


def test_sighup_reloads_identities_and_keeps_them_on_a_bad_file(gateway):
    dave = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id="DAVEKEY00000000001",
        aws_secret_access_key="dave-secret-00000000001",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    assert error_code(lambda: dave.list_buckets()) == "InvalidAccessKeyId"
    gateway.config_path.write_text(CONFIG + DAVE)
    os.kill(gateway.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while error_code(lambda: dave.list_buckets()) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    dave.create_bucket(Bucket="daves")
    assert [b["Name"] for b in dave.list_buckets()["Buckets"]] == ["daves"]
    gateway.config_path.write_text(CONFIG + DAVE.replace("name: dave}", "name: dave, policy: superuser}"))
    os.kill(gateway.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("keeping the current one" in line for line in gateway.output) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("keeping the current one" in line for line in gateway.output)
    assert [b["Name"] for b in dave.list_buckets()["Buckets"]] == ["daves"]  # still dave, still readwrite


def _versioned(owner, bucket: str, **create) -> None:
    owner.create_bucket(Bucket=bucket, **create)
    owner.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def test_a_refused_read_of_a_version_is_refused_whatever_is_listed(gateway):
    """Who may list a bucket (here: anyone, by its public-read ACL) but not read its objects learns that a
    deleted key is missing (404), and never reads one of its versions (403): the handler never runs."""
    alice, bob, anonymous = client(gateway, "alice"), client(gateway, "bob"), client(gateway, "anonymous")
    _versioned(alice, "history", ACL="public-read")
    v1 = alice.put_object(Bucket="history", Key="payroll.csv", Body=b"SECRET salaries")["VersionId"]
    alice.delete_object(Bucket="history", Key="payroll.csv")
    assert [v["VersionId"] for v in anonymous.list_object_versions(Bucket="history")["Versions"]] == [v1]
    read = {"Bucket": "history", "Key": "payroll.csv"}
    for caller in (anonymous, bob):
        assert error_code(lambda c=caller: c.get_object(**read, VersionId=v1)["Body"].read()) == "AccessDenied"
        assert error_code(lambda c=caller: c.head_object(**read, VersionId=v1)) == "403"
        assert error_code(lambda c=caller: c.get_object(**read)) == "NoSuchKey"  # may list it: 404
        assert error_code(lambda c=caller: c.head_object(**read)) == "404"
    assert alice.get_object(Bucket="history", Key="payroll.csv", VersionId=v1)["Body"].read() == b"SECRET salaries"


def test_delete_objects_asks_delete_object_version_for_a_version(gateway):
    """A Deny on s3:DeleteObjectVersion protects the history from DeleteObjects as from DeleteObject."""
    alice, bob = client(gateway, "alice"), client(gateway, "bob")
    _versioned(alice, "protected")
    v1 = alice.put_object(Bucket="protected", Key="doc", Body=b"one")["VersionId"]
    alice.put_object(Bucket="protected", Key="doc", Body=b"two")
    resource = "arn:aws:s3:::protected/*"
    allow = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam:::user/bob"}, "Action": "s3:DeleteObject"}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObjectVersion"}
    policy = {"Version": "2012-10-17", "Statement": [{**allow, "Resource": resource}, {**deny, "Resource": resource}]}
    alice.put_bucket_policy(Bucket="protected", Policy=json.dumps(policy))
    assert error_code(lambda: bob.delete_object(Bucket="protected", Key="doc", VersionId=v1)) == "AccessDenied"
    answer = bob.delete_objects(Bucket="protected", Delete={"Objects": [{"Key": "doc", "VersionId": v1}]})
    assert [(e["Key"], e.get("VersionId"), e["Code"]) for e in answer["Errors"]] == [("doc", v1, "AccessDenied")]
    assert not answer.get("Deleted")
    assert v1 in [v["VersionId"] for v in alice.list_object_versions(Bucket="protected")["Versions"]]


def test_delete_objects_checks_the_expected_bucket_owner(gateway, alpha):
    alice = client(gateway, "alice")
    alice.put_object(Bucket=BUCKET, Key="expected", Body=b"kept")
    entries = {"Objects": [{"Key": "expected"}]}
    refused = lambda: alice.delete_objects(Bucket=BUCKET, Delete=entries, ExpectedBucketOwner="bob")  # noqa: E731
    assert error_code(refused) == "AccessDenied"
    assert alice.get_object(Bucket=BUCKET, Key="expected")["Body"].read() == b"kept"
    alice.delete_objects(Bucket=BUCKET, Delete=entries, ExpectedBucketOwner="alice")
    assert error_code(lambda: alice.head_object(Bucket=BUCKET, Key="expected")) == "404"


def test_an_objects_acl_is_its_versions_own(gateway):
    """A public-read ACL given to the current version opens neither an older version (to a read or a copy);
    PutObjectAcl / GetObjectAcl with a versionId act on that version's ACL alone."""
    alice, bob, anonymous = client(gateway, "alice"), client(gateway, "bob"), client(gateway, "anonymous")
    _versioned(alice, "drafts")
    v1 = alice.put_object(Bucket="drafts", Key="doc", Body=b"v1 SECRET draft")["VersionId"]
    v2 = alice.put_object(Bucket="drafts", Key="doc", Body=b"v2 public", ACL="public-read")["VersionId"]

    def read(version: str | None = None) -> bytes | str | None:
        try:
            extra = {} if version is None else {"VersionId": version}
            return anonymous.get_object(Bucket="drafts", Key="doc", **extra)["Body"].read()
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    assert (read(), read(v2), read(v1)) == (b"v2 public", b"v2 public", "AccessDenied")
    bob.create_bucket(Bucket="bobs-copies")
    source = {"Bucket": "drafts", "Key": "doc"}
    stolen = {"Bucket": "bobs-copies", "Key": "stolen"}
    assert error_code(lambda: bob.copy_object(**stolen, CopySource={**source, "VersionId": v1})) == "AccessDenied"
    bob.copy_object(**stolen, CopySource={**source, "VersionId": v2})  # the public version may be copied
    alice.put_object_acl(**source, VersionId=v1, ACL="public-read")
    alice.put_object_acl(**source, VersionId=v2, ACL="private")
    assert (read(), read(v2), read(v1)) == ("AccessDenied", "AccessDenied", b"v1 SECRET draft")
    grantees = {
        v: {g["Grantee"].get("URI") for g in alice.get_object_acl(**source, VersionId=v)["Grants"]} for v in (v1, v2)
    }
    assert grantees == {v1: {None, "http://acs.amazonaws.com/groups/global/AllUsers"}, v2: {None}}


def test_owners_over_seaweedfs_survive_a_restart(tmp_path):
    """Over an upstream S3 (which sees one identity, the gateway's), owners are the gateway's own records:
    another gateway over the same upstream knows them."""
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        upstream = start_seaweed(tmp_path / "seaweed")
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    config = tmp_path / "s4.yaml"
    config.write_text(CONFIG)
    args = ("--config", str(config), "--workers", "1")
    try:
        first = start_gateway(tmp_path / "first", extra_args=args, extra_env=upstream.env())
        try:
            client(first, "alice").create_bucket(Bucket="upstream-owned")
            client(first, "alice").put_object(Bucket="upstream-owned", Key="k", Body=b"v")
        finally:
            first.stop()
        second = start_gateway(tmp_path / "second", extra_args=args, extra_env=upstream.env())
        try:
            bob, alice = client(second, "bob"), client(second, "alice")
            assert error_code(lambda: bob.create_bucket(Bucket="upstream-owned")) == "BucketAlreadyExists"
            assert error_code(lambda: bob.get_object(Bucket="upstream-owned", Key="k")) == "AccessDenied"
            assert "upstream-owned" not in [b["Name"] for b in bob.list_buckets()["Buckets"]]
            # (the readiness probe's bucket, made upstream without the gateway, is the first identity's: alice's)
            assert "upstream-owned" in [b["Name"] for b in alice.list_buckets()["Buckets"]]
            assert alice.get_object(Bucket="upstream-owned", Key="k")["Body"].read() == b"v"
        finally:
            second.stop()
    finally:
        upstream.stop()
