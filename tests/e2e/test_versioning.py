"""Bucket versioning on the embedded store, driven by the real aws-cli ``s3api`` and boto3 against ``s4 serve``.

Every version is stored compressed with its own manifest and sidecar: a ranged GET of an old
version reads only the frames it needs (the gateway's own counters say so).
"""

from __future__ import annotations

import json
import random
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import start_gateway

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("gw-versioning"))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def upstream_gateway(tmp_path_factory):
    """The gateway over a real SeaweedFS: the same aws-cli scenario over the upstream's versioning."""
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    tmp = tmp_path_factory.mktemp("gw-versioning-s3")
    try:
        upstream = start_seaweed(tmp / "seaweed")
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    gw = start_gateway(tmp / "gateway", extra_env=upstream.env())
    yield gw
    gw.stop()
    upstream.stop()


@pytest.fixture
def bucket(gateway, request):
    name = "ver-" + request.node.name.replace("_", "-")[5:40].strip("-")
    gateway.client().create_bucket(Bucket=name)
    return name


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _api(gateway, *args: object) -> dict:
    out = gateway.aws("s3api", *args).stdout
    return json.loads(out) if out.strip() else {}


def _counter(gateway, name: str) -> float:
    with urllib.request.urlopen(f"{gateway.endpoint}/metrics") as answer:
        text = answer.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.split("{", 1)[0].split(" ", 1)[0] in (name, name + "_total")
    )


def _text(seed: int, size: int) -> bytes:
    """Compressible bytes (words), different for each seed."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnop") for _ in range(rng.randint(3, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=1000)) + b"\n"
    return bytes(out[:size])


@pytest.mark.parametrize("store", ["embedded", "s3"])
def test_versions_with_aws_cli(store, request, tmp_path):
    """put-bucket-versioning, put-object, list-object-versions, get-object --version-id, delete-object
    (a delete marker, then removing it by id), copy from a version; on both stores."""
    gateway = request.getfixturevalue("gateway" if store == "embedded" else "upstream_gateway")
    bucket = f"ver-cli-{store}"
    s3 = gateway.client()
    s3.create_bucket(Bucket=bucket)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    _api(gateway, "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    first_file, second_file = tmp_path / "one", tmp_path / "two"
    first_file.write_bytes(b"first version\n" * 100)
    second_file.write_bytes(b"second version\n" * 50)
    first = _api(gateway, "put-object", "--bucket", bucket, "--key", "doc", "--body", first_file)["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="doc", Body=second_file.read_bytes())["VersionId"]
    assert first != second and "null" not in (first, second)

    listed = _api(gateway, "list-object-versions", "--bucket", bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]] == [
        ("doc", second, True, 750),
        ("doc", first, False, 1400),
    ]
    got = _api(gateway, "get-object", "--bucket", bucket, "--key", "doc", "--version-id", first, tmp_path / "out")
    assert got["VersionId"] == first and (tmp_path / "out").read_bytes() == first_file.read_bytes()

    copied = _api(
        gateway,
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "restored",
        "--copy-source",
        f"{bucket}/doc?versionId={first}",
    )
    assert copied["CopySourceVersionId"] == first and copied["VersionId"] not in (first, second)

    marker = _api(gateway, "delete-object", "--bucket", bucket, "--key", "doc")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="doc")
    assert _code(info.value) == (404, "NoSuchKey")
    assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    listed = s3.list_object_versions(Bucket=bucket, Prefix="doc")
    assert [(d["VersionId"], d["IsLatest"]) for d in listed["DeleteMarkers"]] == [(marker["VersionId"], True)]
    assert [v["IsLatest"] for v in listed["Versions"]] == [False, False]

    _api(gateway, "delete-object", "--bucket", bucket, "--key", "doc", "--version-id", marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == second_file.read_bytes()
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=second)
    assert s3.get_object(Bucket=bucket, Key="doc")["VersionId"] == first


def test_a_ranged_get_of_an_old_version_reads_only_its_frames(gateway, bucket):
    s3 = gateway.client()
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old, new = _text(1, 12 * MiB), _text(2, 12 * MiB)  # three 4 MiB frames each
    old_id = s3.put_object(Bucket=bucket, Key="big", Body=old)["VersionId"]
    s3.put_object(Bucket=bucket, Key="big", Body=new)
    fetched, fallbacks = _counter(gateway, "s4_range_frames_fetched"), _counter(gateway, "s4_sidecar_fallbacks")
    start = 9 * MiB + 123
    answer = s3.get_object(Bucket=bucket, Key="big", VersionId=old_id, Range=f"bytes={start}-{start + 999}")
    assert answer["Body"].read() == old[start : start + 1000] and answer["VersionId"] == old_id
    assert _counter(gateway, "s4_range_frames_fetched") - fetched == 1  # the one frame, found by its own sidecar
    assert _counter(gateway, "s4_sidecar_fallbacks") == fallbacks
    latest = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{start + 999}")["Body"].read()
    assert latest == new[start : start + 1000]


def test_suspended_delete_objects_and_bucket_not_empty(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")  # the null version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"enabled")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="k", Body=b"suspended")  # the null version
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [("null", True), (kept, False)]

    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}, {"Key": "k", "VersionId": kept}]})
    deleted = {
        (d["Key"], d.get("VersionId"), d.get("DeleteMarker"), d.get("DeleteMarkerVersionId")) for d in answer["Deleted"]
    }
    assert deleted == {("k", None, True, "null"), ("k", kept, None, None)}
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert _code(info.value) == (409, "BucketNotEmpty")  # the null delete marker is still a version
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)


def test_errors_as_s3_gives_them(gateway, bucket):
    s3 = gateway.client()
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    assert headers["last-modified"].endswith(" GMT")  # when the marker was made, as S3 documents
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 32)
    assert _code(info.value) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-an-id")
    assert _code(info.value) == (400, "InvalidArgument")
    for document in (b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>", b"<nope"):
        with pytest.raises(ClientError) as info:
            _raw_put_versioning(s3, bucket, document)
        assert _code(info.value) == (400, "MalformedXML")
    with pytest.raises(ClientError) as info:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}, MFA="serial 123456"
        )
    assert _code(info.value) == (501, "NotImplemented")


def test_complete_checks_the_current_version(gateway, bucket):
    """CompleteMultipartUpload's If-None-Match / If-Match name the current version (a delete marker is no
    object); If-None-Match takes an ETag there, as ceph's s3-tests expect."""
    s3 = gateway.client()
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def complete(**condition):
        upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts, **condition
        )

    first = complete(IfNoneMatch="*")
    assert first["VersionId"] not in (None, "null")
    for condition in ({"IfNoneMatch": "*"}, {"IfNoneMatch": first["ETag"]}, {"IfMatch": "badetag"}):
        with pytest.raises(ClientError) as info:
            complete(**condition)
        assert _code(info.value) == (412, "PreconditionFailed")
    assert complete(IfNoneMatch="badetag")["VersionId"] != first["VersionId"]
    s3.delete_object(Bucket=bucket, Key="mp")
    with pytest.raises(ClientError) as info:
        complete(IfMatch="*")
    assert _code(info.value) == (404, "NoSuchKey")
    complete(IfNoneMatch="*")


def _raw_put_versioning(s3, bucket: str, document: bytes) -> None:
    """PutBucketVersioning with a document botocore would not write itself."""

    def replace_body(request, **_):
        request.data = document
        request.headers["Content-Length"] = str(len(document))
        for name in list(request.headers.keys()):
            if name.lower() == "content-md5" or name.lower().startswith(("x-amz-checksum-", "x-amz-content-sha256")):
                del request.headers[name]

    s3.meta.events.register_first("before-sign.s3.PutBucketVersioning", replace_body)
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    finally:
        s3.meta.events.unregister("before-sign.s3.PutBucketVersioning", replace_body)
