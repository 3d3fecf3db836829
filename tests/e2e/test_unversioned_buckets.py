"""What S3 answers about versions for a bucket that never had versioning enabled, as real tools ask it.

s3fs asks GetBucketVersioning before a recursive delete, boto3's ``bucket.object_versions`` and
aws-cli ``list-object-versions`` list versions, s3-tests' cleanup deletes every listed version by id:
on an unversioned bucket every object is its own latest version ``null``.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def test_versioning_of_a_bucket_that_never_had_it(gateway, bucket):
    s3 = gateway.client()
    answer = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in answer and "MFADelete" not in answer
    out = gateway.aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout.strip()
    assert out == b""  # aws-cli prints nothing for an empty configuration
    with pytest.raises(ClientError) as info:
        s3.get_bucket_versioning(Bucket=bucket + "-missing")
    assert _code(info.value) == (404, "NoSuchBucket")


def test_every_object_is_its_own_null_version(gateway, bucket):
    s3 = gateway.client()
    keys = ["a.txt", "dir/b.txt", "dir/c.txt", "z.bin"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * 1000)
    heads = {k: s3.head_object(Bucket=bucket, Key=k) for k in keys}
    listed = json.loads(gateway.aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    versions = listed["Versions"]
    assert [v["Key"] for v in versions] == keys
    for v in versions:
        assert v["VersionId"] == "null" and v["IsLatest"] is True
        assert v["ETag"] == heads[v["Key"]]["ETag"] and v["Size"] == len(v["Key"]) * 1000
    assert "DeleteMarkers" not in listed

    page = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert [v["Key"] for v in page["Versions"]] == ["a.txt"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/"]
    assert page["IsTruncated"] is True and page["NextKeyMarker"] == "dir/"
    rest = s3.list_object_versions(
        Bucket=bucket, Delimiter="/", KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"]
    )
    assert [v["Key"] for v in rest["Versions"]] == ["z.bin"] and rest["IsTruncated"] is False

    assert s3.get_object(Bucket=bucket, Key="a.txt", VersionId="null")["Body"].read() == b"a.txt" * 1000
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="a.txt", VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert _code(info.value) == (400, "InvalidArgument")


def test_deleting_all_versions_empties_the_bucket(gateway, bucket):
    """boto3's ``object_versions.delete()`` and then DeleteBucket, as s3fs and s3-tests clean up."""
    for n in range(5):
        gateway.client().put_object(Bucket=bucket, Key=f"k{n}", Body=b"x" * n)
    resource = boto3.resource(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=gateway.client_env()["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=gateway.client_env()["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        verify=str(gateway.ca_bundle) if gateway.ca_bundle else None,
    )
    resource.Bucket(bucket).object_versions.delete()
    s3 = gateway.client()
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_object(Bucket=bucket, Key="gone", VersionId="null")  # deleting an absent null version: 204
    s3.delete_bucket(Bucket=bucket)


def test_delete_objects_honours_version_ids(gateway, bucket):
    """A version id that names no version deletes nothing (an unversioned bucket has only ``null``)."""
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="keep", Body=b"1")
    s3.put_object(Bucket=bucket, Key="drop", Body=b"2")
    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "keep", "VersionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
                {"Key": "drop", "VersionId": "null"},
            ]
        },
    )
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("keep", "InvalidArgument")]
    assert [(d["Key"], d.get("VersionId")) for d in answer["Deleted"]] == [("drop", "null")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep"]
