"""Bucket documents through a real ``s4 serve`` with aws-cli and boto3, over the embedded store and SeaweedFS:
lifecycle, encryption, public access block, ownership controls, notification, tags, ACL and policy are
kept and returned as S3 keeps them, checked as S3 checks them, hidden from listings, and gone with the
bucket; lifecycle rules are carried out (by the gateway, or handed to the upstream's own lifecycle).
CORS has its own file (test_cors.py).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import start_gateway
from tests.e2e.raw import send, sign

_names = itertools.count()
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "read",
            "Effect": "Allow",
            "Principal": {"AWS": ["*"]},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::{bucket}", "arn:aws:s3:::{bucket}/*"],
            "Condition": {"StringLike": {"s3:prefix": ["public/*"]}},
        }
    ],
}


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _policy(bucket: str) -> str:
    return json.dumps(POLICY).replace("{bucket}", bucket)


def _documents(bucket: str) -> list[tuple[str, str, str, object, str | None, str | None]]:
    """(put command, its argument, get command, what get returns, delete command, the 404 code without one)."""
    return [
        (
            "put-bucket-lifecycle-configuration",
            "--lifecycle-configuration",
            "get-bucket-lifecycle-configuration",
            {
                "Rules": [
                    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
                    {
                        "ID": "uploads",
                        "Filter": {},
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    },
                ]
            },
            "delete-bucket-lifecycle",
            "NoSuchLifecycleConfiguration",
        ),
        (
            "put-bucket-encryption",
            "--server-side-encryption-configuration",
            "get-bucket-encryption",
            {
                "ServerSideEncryptionConfiguration": {
                    "Rules": [
                        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}
                    ]
                }
            },
            "delete-bucket-encryption",
            "ServerSideEncryptionConfigurationNotFoundError",
        ),
        (
            "put-public-access-block",
            "--public-access-block-configuration",
            "get-public-access-block",
            {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": False,
                }
            },
            "delete-public-access-block",
            "NoSuchPublicAccessBlockConfiguration",
        ),
        (
            "put-bucket-ownership-controls",
            "--ownership-controls",
            "get-bucket-ownership-controls",
            {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}},
            "delete-bucket-ownership-controls",
            "OwnershipControlsNotFoundError",
        ),
        (
            "put-bucket-tagging",
            "--tagging",
            "get-bucket-tagging",
            {"TagSet": [{"Key": "team", "Value": "data"}, {"Key": "cost centre", "Value": "42"}]},
            "delete-bucket-tagging",
            "NoSuchTagSet",
        ),
        (
            "put-bucket-policy",
            "--policy",
            "get-bucket-policy",
            {"Policy": _policy(bucket)},
            "delete-bucket-policy",
            "NoSuchBucketPolicy",
        ),
        (
            "put-bucket-notification-configuration",
            "--notification-configuration",
            "get-bucket-notification-configuration",
            {},
            None,
            None,
        ),
    ]


def _put_argument(put: str, wanted: dict) -> str:
    """What aws-cli takes for ``put``: the document less its outer member, as JSON (a policy as is)."""
    if put == "put-bucket-policy":
        return wanted["Policy"]
    inner = next(iter(wanted.values())) if len(wanted) == 1 and put != "put-bucket-tagging" else wanted
    if put == "put-bucket-lifecycle-configuration":
        inner = wanted
    return json.dumps(inner)


def test_every_document_round_trips_with_aws_cli(gateway, bucket):
    for put, flag, get, wanted, delete, missing in _documents(bucket):
        if missing is not None:
            before = gateway.aws("s3api", get, "--bucket", bucket, check=False)
            assert before.returncode != 0 and missing.encode() in before.stderr, get
        gateway.aws("s3api", put, "--bucket", bucket, flag, _put_argument(put, wanted))
        got = json.loads(gateway.aws("s3api", get, "--bucket", bucket).stdout or b"{}")
        assert got == wanted, put
        if delete is not None:
            gateway.aws("s3api", delete, "--bucket", bucket)
            gateway.aws("s3api", delete, "--bucket", bucket)  # deleting what is not there: 204 too
            after = gateway.aws("s3api", get, "--bucket", bucket, check=False)
            assert after.returncode != 0 and missing.encode() in after.stderr, delete


def test_documents_with_boto3_and_s3s_statuses(gateway, bucket):
    s3 = gateway.client()
    assert (
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    assert s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket))["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == _policy(bucket)  # byte for byte
    rules = [{"ID": "x", "Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Days": 1}}]  # the legacy Prefix
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    without_id = [{"Prefix": "a/", "Status": "Disabled", "Expiration": {"Date": "2031-01-01T00:00:00Z"}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": without_id})
    kept = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert kept["ID"] and kept["Prefix"] == "a/" and kept["Expiration"]["Date"].year == 2031  # S3 names it
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert {k for k in notification if k != "ResponseMetadata"} == set()
    for call in ("get_bucket_tagging", "get_bucket_policy", "get_bucket_acl", "get_bucket_encryption"):
        with pytest.raises(ClientError) as info:
            getattr(s3, call)(Bucket=bucket + "-none")
        assert _code(info.value) == (404, "NoSuchBucket"), call


def test_documents_are_checked_as_s3_checks_them(gateway, bucket):
    s3 = gateway.client()

    def refused(call, **params) -> tuple[int, str]:
        with pytest.raises(ClientError) as info:
            getattr(s3, call)(Bucket=bucket, **params)
        return _code(info.value)

    rule = {"ID": "r", "Prefix": "p/", "Status": "Enabled", "Expiration": {"Days": 1}}
    lifecycle = "put_bucket_lifecycle_configuration"
    assert refused(lifecycle, LifecycleConfiguration={"Rules": [{**rule, "Status": "enabled"}]}) == (
        400,
        "MalformedXML",
    )
    assert refused(lifecycle, LifecycleConfiguration={"Rules": [{**rule, "Expiration": {"Days": 0}}]}) == (
        400,
        "InvalidArgument",
    )
    assert refused(lifecycle, LifecycleConfiguration={"Rules": [rule, rule]}) == (400, "InvalidArgument")
    assert refused(lifecycle, LifecycleConfiguration={"Rules": [{**rule, "ID": "x" * 256}]}) == (400, "InvalidArgument")
    dated = {**rule, "Expiration": {"Date": "2031-01-01T12:00:00Z"}}
    assert refused(lifecycle, LifecycleConfiguration={"Rules": [dated]}) == (400, "InvalidArgument")
    twice = {"TagSet": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}
    assert refused("put_bucket_tagging", Tagging=twice) == (400, "InvalidTag")
    many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]}
    assert refused("put_bucket_tagging", Tagging=many) == (400, "InvalidTag")
    assert refused("put_bucket_policy", Policy="{not json") == (400, "MalformedPolicy")
    elsewhere = _policy(bucket).replace(f":::{bucket}", ":::another-bucket")
    assert refused("put_bucket_policy", Policy=elsewhere) == (400, "MalformedPolicy")
    sse = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "ROT13"}}]}
    assert refused("put_bucket_encryption", ServerSideEncryptionConfiguration=sse) == (400, "MalformedXML")
    with_key = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "k"}}]}
    assert refused("put_bucket_encryption", ServerSideEncryptionConfiguration=with_key) == (400, "InvalidArgument")
    topic = {"TopicConfigurations": [{"TopicArn": "arn:aws:sns:us-east-1:1:t", "Events": ["s3:ObjectCreated:*"]}]}
    assert refused("put_bucket_notification_configuration", NotificationConfiguration=topic) == (501, "NotImplemented")
    ownership = {"Rules": [{"ObjectOwnership": "Whoever"}]}
    assert refused("put_bucket_ownership_controls", OwnershipControls=ownership) == (400, "MalformedXML")
    # What no SDK sends: a body that is no XML, or another document.
    for body in (b"not xml", b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>", b"<Other/>"):
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        digest = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(), "Content-MD5": md5}
        request = sign("PUT", f"{gateway.endpoint}/{bucket}?tagging", digest, body)
        status, _, answer = send(gateway, request)
        assert status == 400 and b"<Code>MalformedXML</Code>" in answer and b"<RequestId>" in answer
    # S3 takes a document only with a digest of it (Content-MD5 or a flexible checksum).
    body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    request = sign(
        "PUT", f"{gateway.endpoint}/{bucket}?tagging", {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}, body
    )
    status, _, answer = send(gateway, request)
    assert status == 400 and b"<Code>InvalidRequest</Code>" in answer and b"Content-MD5" in answer
    # Nothing was kept by any of them.
    with pytest.raises(ClientError) as info:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert _code(info.value) == (404, "NoSuchLifecycleConfiguration")


def test_bucket_acls(gateway):
    s3 = gateway.client()
    owner = s3.list_buckets()["Owner"]["ID"]
    name = f"acl-{next(_names)}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    answer = s3.get_bucket_acl(Bucket=name)
    assert answer["Owner"]["ID"] == owner
    assert {(g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"]) for g in answer["Grants"]} == {
        ("http://acs.amazonaws.com/groups/global/AllUsers", "READ"),
        (owner, "FULL_CONTROL"),
    }
    out = json.loads(gateway.aws("s3api", "get-bucket-acl", "--bucket", name).stdout)
    assert len(out["Grants"]) == 2
    gateway.aws("s3api", "put-bucket-acl", "--bucket", name, "--acl", "private")
    assert [g["Permission"] for g in s3.get_bucket_acl(Bucket=name)["Grants"]] == ["FULL_CONTROL"]

    # The document form, as tools write it back after a read.
    policy = {k: v for k, v in s3.get_bucket_acl(Bucket=name).items() if k in ("Owner", "Grants")}
    policy["Grants"].append(
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}, "Permission": "WRITE"}
    )
    s3.put_bucket_acl(Bucket=name, AccessControlPolicy=policy)
    assert len(s3.get_bucket_acl(Bucket=name)["Grants"]) == 2
    gateway.aws("s3api", "put-bucket-acl", "--bucket", name, "--grant-read", f'id="{owner}"')
    assert [g["Permission"] for g in s3.get_bucket_acl(Bucket=name)["Grants"]] == ["READ"]

    def refused(**params) -> tuple[int, str]:
        with pytest.raises(ClientError) as info:
            s3.put_bucket_acl(Bucket=name, **params)
        return _code(info.value)

    assert refused(AccessControlPolicy={**policy, "Owner": {"ID": "somebody-else"}}) == (403, "AccessDenied")
    bad = {**policy, "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "EVERYTHING"}]}
    assert refused(AccessControlPolicy=bad) == (400, "MalformedACLError")
    assert refused(ACL="private", GrantRead=f'id="{owner}"') == (400, "InvalidRequest")
    assert refused(ACL="for-everyone") == (400, "InvalidArgument")

    # BucketOwnerEnforced turns ACLs off, and is refused while the ACL grants others.
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    with pytest.raises(ClientError) as info:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)
    assert _code(info.value) == (400, "InvalidBucketAclWithObjectOwnership")
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)
    assert refused(ACL="public-read") == (400, "AccessControlListNotSupported")

    other = f"acl-{next(_names)}"
    s3.create_bucket(Bucket=other, ObjectOwnership="ObjectWriter")
    rules = s3.get_bucket_ownership_controls(Bucket=other)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "ObjectWriter"}]
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket=f"acl-{next(_names)}", ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    assert _code(info.value) == (400, "InvalidBucketAclWithObjectOwnership")
    s3.create_bucket(Bucket=other, ACL="public-read")  # the owner again, in us-east-1: 200, ACL reset
    assert len(s3.get_bucket_acl(Bucket=other)["Grants"]) == 2
    s3.create_bucket(Bucket=other)
    assert len(s3.get_bucket_acl(Bucket=other)["Grants"]) == 1


def test_documents_are_hidden_and_go_with_the_bucket(gateway):
    s3 = gateway.client()
    name = f"docs-{next(_names)}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.put_bucket_policy(Bucket=name, Policy=_policy(name))
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert "CommonPrefixes" not in s3.list_objects_v2(Bucket=name, Delimiter="/")
    assert "Versions" not in s3.list_object_versions(Bucket=name)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=name, Key=".s4bucket/policy", Body=b"{}")
    assert _code(info.value) == (403, "AccessDenied")
    if gateway.upstream is not None:  # over S3: small objects beside the data, under the reserved prefix
        upstream = gateway.upstream.client()
        kept = [o["Key"] for o in upstream.list_objects_v2(Bucket=name).get("Contents", [])]
        kept = [k for k in kept if not k.startswith(".s4bucket/ledger/")]  # the savings ledger's, written later
        documents = ["acl", "encryption", "owner", "policy", "tagging"]
        assert kept == [f".s4bucket/{document}" for document in documents]
    s3.put_object(Bucket=name, Key="data", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=name)
    assert _code(info.value) == (409, "BucketNotEmpty")
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.delete_object(Bucket=name, Key="data")
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    if gateway.upstream is not None:
        assert name not in [b["Name"] for b in gateway.upstream.client().list_buckets()["Buckets"]]
    s3.create_bucket(Bucket=name)
    for call, code in (("get_bucket_tagging", "NoSuchTagSet"), ("get_bucket_policy", "NoSuchBucketPolicy")):
        with pytest.raises(ClientError) as info:
            getattr(s3, call)(Bucket=name)
        assert _code(info.value) == (404, code)
    assert len(s3.get_bucket_acl(Bucket=name)["Grants"]) == 1


def test_lifecycle_is_handed_to_an_upstream_that_runs_it(gateway, bucket):
    if gateway.upstream is None:
        pytest.skip("over the embedded store the gateway carries the rules out itself (see below)")
    s3, upstream = gateway.client(), gateway.upstream.client()
    rules = [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
        {"ID": "everything", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 90}},
        {"ID": "small", "Filter": {"ObjectSizeLessThan": 100}, "Status": "Enabled", "Expiration": {"Days": 5}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    # The upstream is given only what it carries out as S3 would for the clients: not a rule that would
    # reach the gateway's own .s4 names, nor one it would apply to compressed sizes.
    assert [r["ID"] for r in upstream.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == ["logs"]
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        upstream.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert _code(info.value) == (404, "NoSuchLifecycleConfiguration")


@pytest.fixture(scope="module", params=["embedded", "s3"])
def fast_lifecycle(request, tmp_path_factory):
    """A gateway whose lifecycle day lasts a second and whose worker runs every second."""
    tmp = tmp_path_factory.mktemp(f"lifecycle-{request.param}")
    env = {"S4_LIFECYCLE_DAY_SECONDS": "1", "S4_LIFECYCLE_INTERVAL": "1"}
    upstream = None
    if request.param == "s3":
        from tests.seaweed import SeaweedUnavailable, start_seaweed

        try:
            upstream = start_seaweed(tmp / "seaweed")
        except SeaweedUnavailable as exc:
            pytest.skip(f"SeaweedFS cannot run here: {exc}")
        env.update(upstream.env())
    gw = start_gateway(tmp / "gateway", extra_env=env)
    yield gw
    gw.stop()
    if upstream is not None:
        upstream.stop()


def test_lifecycle_rules_are_carried_out(fast_lifecycle):
    s3 = fast_lifecycle.client()
    name = f"lifecycle-{next(_names)}"
    s3.create_bucket(Bucket=name)
    rules = [
        {
            # A size condition: the gateway's to carry out over both stores.
            "ID": "small temporaries",
            "Filter": {"And": {"Prefix": "tmp/", "ObjectSizeLessThan": 1000}},
            "Status": "Enabled",
            "Expiration": {"Days": 2},
        },
        {
            "ID": "tagged",
            "Filter": {
                "And": {"Prefix": "tagged/", "Tags": [{"Key": "expire", "Value": "yes"}], "ObjectSizeLessThan": 99}
            },
            "Status": "Enabled",
            "Expiration": {"Days": 2},
        },
        {
            "ID": "uploads",
            "Filter": {},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        },
        {"ID": "off", "Filter": {"Prefix": "keep/"}, "Status": "Disabled", "Expiration": {"Days": 1}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    s3.put_object(Bucket=name, Key="tmp/small", Body=b"x" * 10)
    s3.put_object(Bucket=name, Key="tmp/large", Body=b"y" * 5000)
    s3.put_object(Bucket=name, Key="keep/a", Body=b"z")
    s3.put_object(Bucket=name, Key="tagged/yes", Body=b"t", Tagging="expire=yes&team=a")
    s3.put_object(Bucket=name, Key="tagged/no", Body=b"t", Tagging="expire=no")
    upload = s3.create_multipart_upload(Bucket=name, Key="big/upload")["UploadId"]
    s3.upload_part(Bucket=name, Key="big/upload", UploadId=upload, PartNumber=1, Body=b"part")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])]
        uploads = s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
        if "tmp/small" not in keys and "tagged/yes" not in keys and not uploads:
            break
        time.sleep(0.5)
    assert keys == ["keep/a", "tagged/no", "tmp/large"]
    assert uploads == []
    with pytest.raises(ClientError) as info:
        s3.list_parts(Bucket=name, Key="big/upload", UploadId=upload)
    assert _code(info.value) == (404, "NoSuchUpload")


def _grants(answer: dict) -> set[tuple[str, str]]:
    return {(g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"]) for g in answer["Grants"]}


def test_object_acls(gateway, bucket, tmp_path):
    s3 = gateway.client()
    owner = s3.list_buckets()["Owner"]["ID"]
    everyone = "http://acs.amazonaws.com/groups/global/AllUsers"
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"text")
    assert _grants(s3.get_object_acl(Bucket=bucket, Key="doc.txt")) == {(owner, "FULL_CONTROL")}
    s3.put_object_acl(Bucket=bucket, Key="doc.txt", ACL="public-read")
    answer = s3.get_object_acl(Bucket=bucket, Key="doc.txt")
    assert answer["Owner"]["ID"] == owner and _grants(answer) == {(owner, "FULL_CONTROL"), (everyone, "READ")}
    out = json.loads(gateway.aws("s3api", "get-object-acl", "--bucket", bucket, "--key", "doc.txt").stdout)
    assert len(out["Grants"]) == 2
    gateway.aws("s3api", "put-object-acl", "--bucket", bucket, "--key", "doc.txt", "--acl", "private")
    assert _grants(s3.get_object_acl(Bucket=bucket, Key="doc.txt")) == {(owner, "FULL_CONTROL")}
    policy = {k: v for k, v in s3.get_object_acl(Bucket=bucket, Key="doc.txt").items() if k in ("Owner", "Grants")}
    policy["Grants"].append({"Grantee": {"Type": "Group", "URI": everyone}, "Permission": "READ_ACP"})
    s3.put_object_acl(Bucket=bucket, Key="doc.txt", AccessControlPolicy=policy)
    assert (everyone, "READ_ACP") in _grants(s3.get_object_acl(Bucket=bucket, Key="doc.txt"))

    # Written again without an ACL: S3's default again. With one (aws s3 cp --acl): that one.
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"text")
    assert _grants(s3.get_object_acl(Bucket=bucket, Key="doc.txt")) == {(owner, "FULL_CONTROL")}
    source = tmp_path / "page.html"
    source.write_bytes(b"<html></html>")
    gateway.aws("s3", "cp", str(source), f"s3://{bucket}/page.html", "--acl", "public-read")
    assert (everyone, "READ") in _grants(s3.get_object_acl(Bucket=bucket, Key="page.html"))
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"again", ACL="authenticated-read")
    assert (
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
        "READ",
    ) in _grants(s3.get_object_acl(Bucket=bucket, Key="page.html"))

    # Keys of every kind, as ceph/s3-tests' test_bucket_create_special_key_names sets their ACL.
    for key in (" ", '"', "%", "&", "'", "<", ">", "_ _", "dir/x y"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        s3.put_object_acl(Bucket=bucket, Key=key, ACL="private")
        s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read-write")
        assert len(s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]) == 3, key

    for call, params, expected in (
        ("get_object_acl", {"Key": "none.txt"}, (404, "NoSuchKey")),
        ("put_object_acl", {"Key": "none.txt", "ACL": "private"}, (404, "NoSuchKey")),
        ("put_object_acl", {"Key": "doc.txt", "ACL": "public-read", "VersionId": "v2"}, (400, "InvalidArgument")),
        ("put_object_acl", {"Key": "doc.txt", "ACL": "everyone-please"}, (400, "InvalidArgument")),
        (
            "put_object_acl",
            {"Key": "doc.txt", "AccessControlPolicy": {**policy, "Owner": {"ID": "x"}}},
            (403, "AccessDenied"),
        ),
    ):
        with pytest.raises(ClientError) as info:
            getattr(s3, call)(Bucket=bucket, **params)
        assert _code(info.value) == expected, (call, params)

    enforced = f"acl-{next(_names)}"
    s3.create_bucket(Bucket=enforced, ObjectOwnership="BucketOwnerEnforced")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=enforced, Key="k", Body=b"x", ACL="public-read")
    assert _code(info.value) == (400, "AccessControlListNotSupported")
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=enforced, Key="k")  # refused before anything was stored
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_object(Bucket=enforced, Key="k", Body=b"x", ACL="bucket-owner-full-control")
