"""GetObjectAttributes with boto3 and aws-cli, over both stores.

Objects are stored compressed; the answer is what S3 gives for the object the client uploaded:
its original size, the ETag GET shows (without quotes here, as S3 writes it), the checksum (a
COMPOSITE one without its ``-<parts>``) and the parts as uploaded (original sizes, checksums).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.e2e.raw import send, sign

MIB = 1024 * 1024
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def compressible(size: int, seed: int) -> bytes:
    line = b"".join(b"attribute row %08d, part %d\n" % (i, seed) for i in range(4096))
    return (line * (size // len(line) + 1))[:size]


def code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def multipart(s3, bucket: str, key: str, parts: list[bytes], algorithm: str | None = None) -> dict:
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    listed = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra)
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = answer[f"Checksum{algorithm}"]
        listed.append(entry)
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})


def test_single_put(gateway, bucket):
    s3 = gateway.client()
    data = compressible(200_000, 1)
    put = gateway.client(request_checksum_calculation="when_required").put_object(Bucket=bucket, Key="plain", Body=data)
    answer = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=ALL)
    assert answer["ETag"] == put["ETag"].strip('"')
    assert (answer["ObjectSize"], answer["StorageClass"]) == (len(data), "STANDARD")
    assert "ObjectParts" not in answer and "Checksum" not in answer
    assert answer["LastModified"] == s3.head_object(Bucket=bucket, Key="plain")["LastModified"]

    s3.put_object(Bucket=bucket, Key="default", Body=data)  # botocore sends its CRC32 unasked, S3 keeps it
    answer = s3.get_object_attributes(Bucket=bucket, Key="default", ObjectAttributes=["Checksum"])
    assert answer["Checksum"]["ChecksumType"] == "FULL_OBJECT" and "ChecksumCRC32" in answer["Checksum"]

    s3.put_object(Bucket=bucket, Key="summed", Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256(data))
    answer = s3.get_object_attributes(Bucket=bucket, Key="summed", ObjectAttributes=ALL)
    assert answer["Checksum"] == {"ChecksumSHA256": sha256(data), "ChecksumType": "FULL_OBJECT"}
    only = s3.get_object_attributes(Bucket=bucket, Key="summed", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == len(data)
    assert not {"ETag", "Checksum", "StorageClass", "ObjectParts"} & only.keys()  # just what was asked


def test_multipart_with_checksums(gateway, bucket):
    s3 = gateway.client()
    parts = [compressible(5 * MIB, 2), compressible(5 * MIB, 3), compressible(777, 4)]
    done = multipart(s3, bucket, "mp", parts, "SHA256")
    answer = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert answer["ETag"] == done["ETag"].strip('"') and answer["ObjectSize"] == sum(map(len, parts))
    # S3 gives the COMPOSITE checksum without the part count here; Complete and HEAD show it.
    assert done["ChecksumSHA256"].endswith("-3")
    assert answer["Checksum"] == {"ChecksumSHA256": done["ChecksumSHA256"][:-2], "ChecksumType": "COMPOSITE"}
    object_parts = answer["ObjectParts"]
    assert (object_parts["TotalPartsCount"], object_parts["IsTruncated"]) == (3, False)
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in object_parts["Parts"]] == [
        (n, len(d), sha256(d)) for n, d in enumerate(parts, 1)
    ]

    page = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=1, PartNumberMarker=1
    )["ObjectParts"]
    assert (page["MaxParts"], page["PartNumberMarker"], page["NextPartNumberMarker"]) == (1, 1, 2)
    assert page["IsTruncated"] is True and [p["PartNumber"] for p in page["Parts"]] == [2]
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=10, PartNumberMarker=2
    )["ObjectParts"]
    assert rest["IsTruncated"] is False and [p["Size"] for p in rest["Parts"]] == [777]


def test_multipart_without_checksums(gateway, bucket):
    """S3 lists no Part elements for an object without a checksum of its own, only the count."""
    s3 = gateway.client()
    parts = [compressible(5 * MIB, 5), compressible(1234, 6)]
    done = multipart(s3, bucket, "bare", parts)
    answer = s3.get_object_attributes(Bucket=bucket, Key="bare", ObjectAttributes=ALL)
    assert answer["ETag"] == done["ETag"].strip('"') and answer["ETag"].endswith("-2")
    assert answer["ObjectSize"] == 5 * MIB + 1234 and "Checksum" not in answer
    assert answer["ObjectParts"]["TotalPartsCount"] == 2 and "Parts" not in answer["ObjectParts"]


def test_refusals(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=ALL)
    assert code(info.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as info:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Size"])
    assert code(info.value) == (400, "InvalidArgument")
    status, _, body = send(gateway, sign("GET", f"{gateway.endpoint}/{bucket}/k?attributes", {}))
    assert status == 400 and b"<Code>InvalidRequest</Code>" in body  # no x-amz-object-attributes


def test_aws_cli(gateway, bucket, tmp_path):
    data = compressible(9 * MIB, 7)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    gateway.aws("s3", "cp", source, f"s3://{bucket}/big.bin")  # two parts, CRC32 COMPOSITE by default
    out = gateway.aws(
        "s3api", "get-object-attributes", "--bucket", bucket, "--key", "big.bin",
        "--object-attributes", "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize",
    ).stdout  # fmt: skip
    answer = json.loads(out)
    assert answer["ObjectSize"] == len(data) and answer["StorageClass"] == "STANDARD"
    assert answer["Checksum"]["ChecksumType"] == "COMPOSITE" and "-" not in answer["Checksum"]["ChecksumCRC32"]
    parts = answer["ObjectParts"]["Parts"]
    assert [p["Size"] for p in parts] == [8 * MIB, MIB] and all("ChecksumCRC32" in p for p in parts)
