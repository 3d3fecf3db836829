"""Object tagging as real clients use it, over the embedded store and a SeaweedFS upstream.

aws-cli ``s3api put-object-tagging / get-object-tagging / delete-object-tagging`` and ``put-object
--tagging``, boto3 ``Tagging=`` on put_object, create_multipart_upload and copy_object (with
``TaggingDirective``), ``x-amz-tagging-count`` on GET and HEAD, and S3's limits and error codes.
Tags are state beside the object: changing them must not rewrite it (on the embedded store no data
file changes; over S3 they are the upstream's own tags on the inner object, which keeps its
Last-Modified).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time

import pytest
from botocore.exceptions import ClientError

from tests.e2e.raw import send, sign

MiB = 1024 * 1024


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _tag_set(tags: dict[str, str]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _tags(s3, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def _count_header(answer: dict) -> str | None:
    return answer["ResponseMetadata"]["HTTPHeaders"].get("x-amz-tagging-count")


def _data_files(gateway) -> dict[str, tuple[int, int]]:
    """The embedded store's data files (never modified in place: a rewrite makes a new one), but for those
    of the gateway's bucket records (``.s4bucket/``: the savings ledger writes its own beside the objects)."""
    with contextlib.closing(sqlite3.connect(gateway.data_dir / "index.sqlite3", timeout=30)) as db:
        records = {os.path.basename(f) for (f,) in db.execute("SELECT file FROM objects WHERE key LIKE '.s4bucket/%'")}
    root = gateway.data_dir / "objects"
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if name in records:
                continue
            stat = os.stat(os.path.join(directory, name))
            found[name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def test_aws_cli_put_get_delete_object_tagging(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b,c\n" * 1000)
    gateway.aws(
        "s3api",
        "put-object-tagging",
        "--bucket",
        bucket,
        "--key",
        "report.csv",
        "--tagging",
        json.dumps(_tag_set({"project": "blue", "Classification": "internal use", "empty": ""})),
    )
    listed = json.loads(gateway.aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "report.csv").stdout)
    # In key order, as S3 lists them.
    assert listed["TagSet"] == [
        {"Key": "Classification", "Value": "internal use"},
        {"Key": "empty", "Value": ""},
        {"Key": "project", "Value": "blue"},
    ]
    got = s3.get_object(Bucket=bucket, Key="report.csv")
    assert got["TagCount"] == 3 and got["Body"].read() == b"a,b,c\n" * 1000
    assert _count_header(s3.head_object(Bucket=bucket, Key="report.csv")) == "3"

    # The only version of an object in an unversioned bucket is "null".
    by_version = gateway.aws(
        "s3api", "get-object-tagging", "--bucket", bucket, "--key", "report.csv", "--version-id", "null"
    )
    assert len(json.loads(by_version.stdout)["TagSet"]) == 3
    with pytest.raises(ClientError) as info:
        s3.get_object_tagging(Bucket=bucket, Key="report.csv", VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert _code(info.value) == (400, "InvalidArgument")

    gateway.aws("s3api", "delete-object-tagging", "--bucket", bucket, "--key", "report.csv")
    listed = json.loads(gateway.aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "report.csv").stdout)
    assert listed["TagSet"] == []
    assert _count_header(s3.head_object(Bucket=bucket, Key="report.csv")) is None
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="report.csv")

    # aws-cli s3api put-object --tagging (a URL query, as the header takes it).
    source = gateway.home / "upload.txt"
    source.write_bytes(b"tagged at upload " * 100)
    gateway.aws(
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "up.txt",
        "--body",
        source,
        "--tagging",
        "k1=v1&k2=two%20words",
    )
    assert _tags(s3, bucket, "up.txt") == {"k1": "v1", "k2": "two words"}


def test_tags_change_without_rewriting_the_object(gateway, bucket):
    s3 = gateway.client()
    body = os.urandom(256 * 1024) + b"x" * (3 * MiB)
    put = s3.put_object(Bucket=bucket, Key="big.bin", Body=body)
    before = s3.head_object(Bucket=bucket, Key="big.bin")
    files = _data_files(gateway) if gateway.upstream is None else None
    inner_before = gateway.upstream.client().head_object(Bucket=bucket, Key="big.bin") if gateway.upstream else None
    time.sleep(1.1)  # a rewrite now would carry a later Last-Modified, to the second

    s3.put_object_tagging(Bucket=bucket, Key="big.bin", Tagging=_tag_set({"a": "1", "b": "2"}))
    s3.put_object_tagging(Bucket=bucket, Key="big.bin", Tagging=_tag_set({"c": "3"}))
    after = s3.head_object(Bucket=bucket, Key="big.bin")
    assert after["ETag"] == before["ETag"] == put["ETag"]
    assert after["LastModified"] == before["LastModified"]
    assert after["ContentLength"] == len(body) and _count_header(after) == "1"
    if gateway.upstream is None:
        assert _data_files(gateway) == files  # no data file written, none replaced
    else:
        upstream = gateway.upstream.client()
        inner_after = upstream.head_object(Bucket=bucket, Key="big.bin")
        assert inner_after["LastModified"] == inner_before["LastModified"]
        assert inner_after["ETag"] == inner_before["ETag"]
        # The upstream's own tagging of the inner object (the same key) holds them.
        assert upstream.get_object_tagging(Bucket=bucket, Key="big.bin")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.delete_object_tagging(Bucket=bucket, Key="big.bin")
    if gateway.upstream is None:
        assert _data_files(gateway) == files
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == body
    # A range read (frames and sidecar) still works on the untouched stored bytes.
    ranged = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=3000000-3000099")["Body"].read()
    assert ranged == body[3000000:3000100]


def test_put_object_with_tagging_header(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="t.txt", Body=b"hello", Tagging="project=blue&owner=J%C3%BCrgen&note=a%2Bb+c")
    assert _tags(s3, bucket, "t.txt") == {"project": "blue", "owner": "Jürgen", "note": "a+b c"}
    got = s3.get_object(Bucket=bucket, Key="t.txt")
    assert got["TagCount"] == 3 and got["Body"].read() == b"hello"

    # s3-tests' test_put_obj_with_tags: a key without "=" holds the empty value; listed in key order.
    s3.put_object(Bucket=bucket, Key="t2.txt", Body=b"A" * 100, Tagging="foo=bar&bar")
    listed = s3.get_object_tagging(Bucket=bucket, Key="t2.txt")["TagSet"]
    assert listed == [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]

    # A new object replaces the old one's tags, as in S3.
    s3.put_object(Bucket=bucket, Key="t.txt", Body=b"again")
    assert _tags(s3, bucket, "t.txt") == {}
    assert _count_header(s3.head_object(Bucket=bucket, Key="t.txt")) is None

    # A body large enough to go up in parts over S3 (through the upstream store's temporary key).
    big = os.urandom(10 * MiB)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big, Tagging="size=large")
    assert _tags(s3, bucket, "big.bin") == {"size": "large"}
    assert hashlib.md5(s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()).digest() == hashlib.md5(big).digest()


def test_copy_object_tagging_directive(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="src", Body=b"source bytes" * 100, Tagging="a=1&b=2")

    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert _tags(s3, bucket, "copied") == {"a": "1", "b": "2"}  # COPY is the default

    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="c=3",
    )
    assert _tags(s3, bucket, "replaced") == {"c": "3"}

    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=f"{bucket}/src", TaggingDirective="REPLACE")
    assert _tags(s3, bucket, "cleared") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="cleared")

    # COPY keeps the source's tags whatever x-amz-tagging says, and whatever the metadata directive.
    s3.copy_object(
        Bucket=bucket,
        Key="new-meta",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"colour": "red"},
        Tagging="ignored=yes",
    )
    assert _tags(s3, bucket, "new-meta") == {"a": "1", "b": "2"}
    assert s3.head_object(Bucket=bucket, Key="new-meta")["Metadata"] == {"colour": "red"}

    # REPLACE of the tags with the metadata copied: the object is copied onto itself, tags changed.
    s3.copy_object(
        Bucket=bucket,
        Key="both",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"colour": "blue"},
        TaggingDirective="REPLACE",
        Tagging="d=4",
    )
    assert _tags(s3, bucket, "both") == {"d": "4"}
    assert s3.get_object(Bucket=bucket, Key="both")["Body"].read() == b"source bytes" * 100

    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="bad", CopySource=f"{bucket}/src", TaggingDirective="MERGE")
    assert _code(info.value) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as info:
        s3.copy_object(
            Bucket=bucket, Key="bad", CopySource=f"{bucket}/src", TaggingDirective="REPLACE", Tagging="aws:x=1"
        )
    assert _code(info.value) == (400, "InvalidTag")


def test_multipart_upload_with_tagging(gateway, bucket):
    s3 = gateway.client()
    parts_data = [os.urandom(5 * MiB), b"tail" * 256]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", Tagging="Hello=World&foo=bar")
    parts = []
    for number, data in enumerate(parts_data, start=1):
        answer = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=upload["UploadId"], PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    # s3-tests' test_set_multipart_tagging, in key order.
    assert s3.get_object_tagging(Bucket=bucket, Key="mp.bin")["TagSet"] == [
        {"Key": "Hello", "Value": "World"},
        {"Key": "foo", "Value": "bar"},
    ]
    got = s3.get_object(Bucket=bucket, Key="mp.bin")
    assert got["TagCount"] == 2 and got["Body"].read() == b"".join(parts_data)
    assert s3.delete_object_tagging(Bucket=bucket, Key="mp.bin")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _tags(s3, bucket, "mp.bin") == {}

    # aws-cli: create-multipart-upload --tagging, then the tags appear only at Complete.
    created = json.loads(
        gateway.aws(
            "s3api", "create-multipart-upload", "--bucket", bucket, "--key", "cli.bin", "--tagging", "stage=raw"
        ).stdout
    )
    answer = s3.upload_part(Bucket=bucket, Key="cli.bin", UploadId=created["UploadId"], PartNumber=1, Body=b"one")
    with pytest.raises(ClientError) as info:
        s3.get_object_tagging(Bucket=bucket, Key="cli.bin")
    assert _code(info.value) == (404, "NoSuchKey")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="cli.bin",
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": answer["ETag"]}]},
    )
    assert _tags(s3, bucket, "cli.bin") == {"stage": "raw"}
    assert _count_header(s3.head_object(Bucket=bucket, Key="cli.bin")) == "1"

    # An untagged upload completes untagged.
    plain = s3.create_multipart_upload(Bucket=bucket, Key="plain.bin")
    answer = s3.upload_part(Bucket=bucket, Key="plain.bin", UploadId=plain["UploadId"], PartNumber=1, Body=b"x")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="plain.bin",
        UploadId=plain["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": answer["ETag"]}]},
    )
    assert _tags(s3, bucket, "plain.bin") == {}


def test_limits_as_s3_counts_them(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    widest = {f"{n}" + "k" * 127: "v" * 256 for n in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tag_set(widest))
    assert _tags(s3, bucket, "k") == widest
    # Unicode letters and numbers, spaces and _ . : / = + - @; lengths in UTF-16 units.
    unicode_tags = {"ключ": "значение 1", "ext-b": "\U00020000" * 64, "k_.:/=+-@ x": "٣"}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tag_set(unicode_tags))
    assert _tags(s3, bucket, "k") == unicode_tags
    # 128 letters outside the BMP are 256 UTF-16 units: S3's limit. SeaweedFS counts UTF-8 bytes (512)
    # and refuses them: over it the client gets the upstream's 400 InvalidTag, never a 500.
    full = {"ext-b": "\U00020000" * 128}
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x")
    if gateway.upstream is None:
        s3.put_object_tagging(Bucket=bucket, Key="k2", Tagging=_tag_set(full))
        assert _tags(s3, bucket, "k2") == full
    else:
        with pytest.raises(ClientError) as info:
            s3.put_object_tagging(Bucket=bucket, Key="k2", Tagging=_tag_set(full))
        assert _code(info.value) == (400, "InvalidTag")

    refused = [
        ({f"k{n}": "v" for n in range(11)}, "BadRequest"),  # S3: "Object tags cannot be greater than 10"
        ({"k" * 129: "v"}, "InvalidTag"),
        ({"k": "v" * 257}, "InvalidTag"),
        ({"k": "\U00020000" * 129}, "InvalidTag"),  # 129 letters outside the BMP: 258 UTF-16 units
        ({"k": "\U0001f600"}, "InvalidTag"),  # an emoji is no letter or number
        ({"aws:createdBy": "me"}, "InvalidTag"),
        ({"AWS:x": "me"}, "InvalidTag"),
        ({"": "v"}, "InvalidTag"),
        ({"k": "a,b"}, "InvalidTag"),
        ({"k{}": "v"}, "InvalidTag"),
    ]
    unchecked = gateway.client(parameter_validation=False)  # boto3 itself refuses the empty key
    for tags, code in refused:
        with pytest.raises(ClientError) as info:
            unchecked.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tag_set(tags))
        assert _code(info.value) == (400, code), tags
    duplicates = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    with pytest.raises(ClientError) as info:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=duplicates)
    assert _code(info.value) == (400, "InvalidTag")
    assert _tags(s3, bucket, "k") == unicode_tags  # nothing refused was stored

    # The header: the same rules; a repeated key or a pair that is no URL query is InvalidArgument.
    for header, code in [
        ("a=1&a=2", "InvalidArgument"),
        ("TagSet=[{Key=string,Value=string}]", "InvalidArgument"),
        ("&".join(f"k{n}=v" for n in range(11)), "BadRequest"),
        ("aws:x=1", "InvalidTag"),
        ("k=" + "v" * 257, "InvalidTag"),
    ]:
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=bucket, Key="refused", Body=b"x", Tagging=header)
        assert _code(info.value) == (400, code), header
    with pytest.raises(ClientError) as info:
        s3.create_multipart_upload(Bucket=bucket, Key="refused", Tagging="a=1&a=2")
    assert _code(info.value) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="refused")
    assert _code(info.value)[0] == 404


def test_errors_for_missing_objects_and_bad_documents(gateway, bucket):
    s3 = gateway.client()
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging=_tag_set({"a": "1"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="missing"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert _code(info.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as info:
        s3.get_object_tagging(Bucket=bucket + "-missing", Key="k")
    assert _code(info.value) == (404, "NoSuchBucket")

    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    for document in (
        b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",  # no Value
        b"<Tagging></Tagging>",  # no TagSet
        b"<Tags><TagSet/></Tags>",
        b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value>",  # not XML
    ):
        url = f"{gateway.endpoint}/{bucket}/k?tagging"
        headers = {"X-Amz-Content-SHA256": hashlib.sha256(document).hexdigest()}
        status, _, answer = send(gateway, sign("PUT", url, headers, document), document)
        assert status == 400 and b"<Code>MalformedXML</Code>" in answer and b"<RequestId>" in answer, document
    # S3's sample requests carry no namespace, SDKs send S3's: both are read.
    document = b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet/></Tagging>'
    headers = {"X-Amz-Content-SHA256": hashlib.sha256(document).hexdigest()}
    status, _, _ = send(gateway, sign("PUT", f"{gateway.endpoint}/{bucket}/k?tagging", headers, document), document)
    assert status == 200
    assert _tags(s3, bucket, "k") == {}  # an empty TagSet removes the tags
