"""Flexible checksums on multipart uploads and single PUTs, with boto3 and aws-cli, over both stores.

What S3 answers (verified against S3 by others' captures, see s4/store/checksums.py): an upload
created with ``ChecksumAlgorithm`` keeps each part's checksum, lists it, checks the ones the
Complete names, and gives the object a COMPOSITE (``<base64>-<parts>``) or FULL_OBJECT (the CRC of
the whole object) checksum, returned by GET/HEAD in checksum mode, per part with ``partNumber``.
The parts are stored compressed: every checksum here is of the bytes the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from awscrt import checksums as crt
from botocore.exceptions import ClientError

MIB = 1024 * 1024
CRCS = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


def digest(algorithm: str, data: bytes) -> bytes:
    if algorithm in CRCS:
        function, size = CRCS[algorithm]
        return function(data).to_bytes(size, "big")
    return hashlib.new(algorithm.lower(), data).digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def checksum(algorithm: str, data: bytes) -> str:
    return b64(digest(algorithm, data))


def composite(algorithm: str, parts: list[bytes]) -> str:
    """The checksum of the parts' binary checksums, with the part count."""
    return f"{b64(digest(algorithm, b''.join(digest(algorithm, p) for p in parts)))}-{len(parts)}"


def compressible(size: int, seed: int) -> bytes:
    """Bytes the gateway stores compressed (so every checksum must be of the original bytes)."""
    line = b"".join(b"row %08d of part %d, value %d;\n" % (i, seed, (i * 7919) % 1000) for i in range(2048))
    return (line * (size // len(line) + 1))[:size]


def code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def upload(s3, bucket: str, key: str, algorithm: str, kind: str | None, parts: list[bytes]) -> tuple[str, list[dict]]:
    extra = {"ChecksumType": kind} if kind else {}
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **extra)
    listed = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        assert answer[f"Checksum{algorithm}"] == checksum(algorithm, data)
        listed.append(
            {"PartNumber": number, "ETag": answer["ETag"], f"Checksum{algorithm}": answer[f"Checksum{algorithm}"]}
        )
    return created["UploadId"], listed


@pytest.mark.parametrize(
    ("algorithm", "requested", "kind"),
    [
        ("SHA256", None, "COMPOSITE"),
        ("SHA1", "COMPOSITE", "COMPOSITE"),
        ("CRC32", None, "COMPOSITE"),
        ("CRC32C", "FULL_OBJECT", "FULL_OBJECT"),
        ("CRC64NVME", None, "FULL_OBJECT"),
    ],
)
def test_multipart_object_gets_the_checksum_s3_gives(gateway, bucket, algorithm, requested, kind):
    s3 = gateway.client()
    key = f"mp-{algorithm}"
    parts = [compressible(5 * MIB, 1), compressible(300_000, 2)]
    extra = {"ChecksumType": requested} if requested else {}
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **extra)
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == (algorithm, kind)
    upload_id = created["UploadId"]
    listed = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, ChecksumAlgorithm=algorithm
        )
        listed.append(
            {"PartNumber": number, "ETag": answer["ETag"], f"Checksum{algorithm}": answer[f"Checksum{algorithm}"]}
        )

    page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert (page["ChecksumAlgorithm"], page["ChecksumType"]) == (algorithm, kind)
    assert [p[f"Checksum{algorithm}"] for p in page["Parts"]] == [checksum(algorithm, d) for d in parts]
    assert [p["Size"] for p in page["Parts"]] == [len(d) for d in parts]

    expected = composite(algorithm, parts) if kind == "COMPOSITE" else checksum(algorithm, b"".join(parts))
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert (done[f"Checksum{algorithm}"], done["ChecksumType"]) == (expected, kind)
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert (again["ETag"], again[f"Checksum{algorithm}"]) == (done["ETag"], expected)  # a retry answers the same

    assert f"Checksum{algorithm}" not in s3.head_object(Bucket=bucket, Key=key)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert (head[f"Checksum{algorithm}"], head["ChecksumType"], head["ContentLength"]) == (
        expected,
        kind,
        5 * MIB + 300_000,
    )
    # botocore checks a whole GET against a FULL_OBJECT checksum itself (and skips COMPOSITE ones).
    whole = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert whole[f"Checksum{algorithm}"] == expected and whole["Body"].read() == b"".join(parts)
    for number, data in enumerate(parts, 1):
        part = s3.get_object(Bucket=bucket, Key=key, PartNumber=number, ChecksumMode="ENABLED")
        assert (part[f"Checksum{algorithm}"], part["ChecksumType"]) == (checksum(algorithm, data), kind)
        assert part["Body"].read() == data and part["PartsCount"] == 2
    ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-20", ChecksumMode="ENABLED")
    assert f"Checksum{algorithm}" not in ranged and ranged["Body"].read() == parts[0][10:21]


def test_complete_checks_the_checksums_it_is_given(gateway, bucket):
    s3 = gateway.client()
    parts = [compressible(5 * MIB, 3), b"tail of the object"]
    upload_id, listed = upload(s3, bucket, "checked", "SHA256", None, parts)
    wrong = [dict(listed[0]), dict(listed[1])]
    wrong[1]["ChecksumSHA256"] = checksum("SHA256", b"other bytes")
    missing = [dict(listed[0]), {k: v for k, v in listed[1].items() if k != "ChecksumSHA256"}]
    other = [dict(listed[0]), {**missing[1], "ChecksumCRC32": checksum("CRC32", parts[1])}]
    for part_list, expected in [
        (wrong, (400, "InvalidPart")),
        (missing, (400, "InvalidRequest")),  # a COMPOSITE upload needs every part's checksum
        (other, (400, "BadDigest")),
    ]:
        with pytest.raises(ClientError) as info:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="checked", UploadId=upload_id, MultipartUpload={"Parts": part_list}
            )
        assert code(info.value) == expected
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="checked",
            UploadId=upload_id,
            MultipartUpload={"Parts": listed},
            ChecksumSHA256=composite("SHA256", [parts[1], parts[0]]),
        )
    assert code(info.value) == (400, "BadDigest")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="checked")  # nothing was completed
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="checked",
        UploadId=upload_id,
        MultipartUpload={"Parts": listed},
        ChecksumSHA256=composite("SHA256", parts),
    )
    assert done["ChecksumSHA256"] == composite("SHA256", parts)


def test_full_object_checksum_checked_at_complete(gateway, bucket):
    s3 = gateway.client()
    parts = [compressible(5 * MIB, 4), compressible(1000, 5)]
    upload_id, listed = upload(s3, bucket, "full", "CRC32C", "FULL_OBJECT", parts)
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]  # optional for FULL_OBJECT
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="full",
            UploadId=upload_id,
            MultipartUpload={"Parts": bare},
            ChecksumCRC32C=checksum("CRC32C", parts[0]),
            ChecksumType="FULL_OBJECT",
        )
    assert code(info.value) == (400, "BadDigest")
    whole = checksum("CRC32C", b"".join(parts))
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="full",
        UploadId=upload_id,
        MultipartUpload={"Parts": bare},
        ChecksumCRC32C=whole,
        ChecksumType="FULL_OBJECT",
    )
    assert (done["ChecksumCRC32C"], done["ChecksumType"]) == (whole, "FULL_OBJECT")


def test_parts_must_match_the_uploads_algorithm(gateway, bucket):
    s3 = gateway.client()
    created = s3.create_multipart_upload(Bucket=bucket, Key="strict", ChecksumAlgorithm="SHA256")
    with pytest.raises(ClientError) as info:
        s3.upload_part(
            Bucket=bucket,
            Key="strict",
            UploadId=created["UploadId"],
            PartNumber=1,
            Body=b"abc",
            ChecksumAlgorithm="CRC32",
        )
    assert code(info.value) == (400, "InvalidRequest")
    assert "expected checksum Type: sha256, actual checksum Type: crc32" in info.value.response["Error"]["Message"]
    bare = gateway.client(request_checksum_calculation="when_required")  # sends no checksum at all
    with pytest.raises(ClientError) as info:
        bare.upload_part(Bucket=bucket, Key="strict", UploadId=created["UploadId"], PartNumber=1, Body=b"abc")
    assert code(info.value) == (400, "InvalidRequest")
    assert not s3.list_parts(Bucket=bucket, Key="strict", UploadId=created["UploadId"]).get("Parts")

    # A FULL_OBJECT upload takes a part without one: the gateway computes it.
    full = s3.create_multipart_upload(Bucket=bucket, Key="lax", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    answer = bare.upload_part(Bucket=bucket, Key="lax", UploadId=full["UploadId"], PartNumber=1, Body=b"abc")
    assert answer["ChecksumCRC32"] == checksum("CRC32", b"abc")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="lax",
        UploadId=full["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": answer["ETag"]}]},
    )
    assert done["ChecksumCRC32"] == checksum("CRC32", b"abc")


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [(None, "FULL_OBJECT"), ("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"), ("MD4", None)],
)
def test_create_refuses_what_s3_refuses(gateway, bucket, algorithm, kind):
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    if kind:
        extra["ChecksumType"] = kind
    with pytest.raises(ClientError) as info:
        gateway.client().create_multipart_upload(Bucket=bucket, Key="refused", **extra)
    assert code(info.value) == (400, "InvalidRequest")


def test_upload_part_copy_gets_the_uploads_checksum(gateway, bucket):
    s3 = gateway.client()
    source = compressible(5 * MIB + 123, 6)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    created = s3.create_multipart_upload(Bucket=bucket, Key="copied", ChecksumAlgorithm="SHA256")
    copied = s3.upload_part_copy(
        Bucket=bucket,
        Key="copied",
        UploadId=created["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
    )["CopyPartResult"]
    assert copied["ChecksumSHA256"] == checksum("SHA256", source)
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="copied",
        UploadId=created["UploadId"],
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": copied["ETag"], "ChecksumSHA256": copied["ChecksumSHA256"]}]
        },
    )
    assert done["ChecksumSHA256"] == composite("SHA256", [source])


def test_upload_without_algorithm_keeps_no_object_checksum(gateway, bucket):
    s3 = gateway.client()
    created = s3.create_multipart_upload(Bucket=bucket, Key="plain")
    assert "ChecksumAlgorithm" not in created
    answer = s3.upload_part(Bucket=bucket, Key="plain", UploadId=created["UploadId"], PartNumber=1, Body=b"xyz")
    assert answer["ChecksumCRC32"] == checksum("CRC32", b"xyz")  # botocore's default, verified and echoed
    parts = [{"PartNumber": 1, "ETag": answer["ETag"]}]
    with pytest.raises(ClientError) as info:  # a part checksum the upload never asked for
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="plain",
            UploadId=created["UploadId"],
            MultipartUpload={"Parts": [{**parts[0], "ChecksumCRC32": answer["ChecksumCRC32"]}]},
        )
    assert code(info.value) == (400, "InvalidPart")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="plain", UploadId=created["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert "ChecksumCRC32" not in done and "ChecksumType" not in done
    head = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert "ChecksumType" not in head


def test_single_put_checksums(gateway, bucket):
    s3 = gateway.client()
    data = compressible(1024, 7)
    for algorithm in ("SHA256", "CRC64NVME"):
        value = checksum(algorithm, data)
        put = s3.put_object(
            Bucket=bucket, Key=algorithm, Body=data, ChecksumAlgorithm=algorithm, **{f"Checksum{algorithm}": value}
        )
        assert put[f"Checksum{algorithm}"] == value
        assert f"Checksum{algorithm}" not in s3.head_object(Bucket=bucket, Key=algorithm)
        head = s3.head_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
        assert (head[f"Checksum{algorithm}"], head["ChecksumType"]) == (value, "FULL_OBJECT")
        # A value that is no checksum at all is BadDigest, as ceph's s3-tests expect (AWS: InvalidRequest),
        # and so is a wrong one; the object stays as it was.
        with pytest.raises(ClientError) as info:
            s3.put_object(
                Bucket=bucket, Key=algorithm, Body=data, ChecksumAlgorithm=algorithm, **{f"Checksum{algorithm}": "bad"}
            )
        assert code(info.value) == (400, "BadDigest")
        with pytest.raises(ClientError) as info:
            s3.put_object(
                Bucket=bucket,
                Key=algorithm,
                Body=data,
                ChecksumAlgorithm=algorithm,
                **{f"Checksum{algorithm}": checksum(algorithm, b"other")},
            )
        assert code(info.value) == (400, "BadDigest")


def test_aws_cli_multipart_with_checksums(gateway, bucket, tmp_path):
    parts = [compressible(5 * MIB, 8), compressible(4096, 9)]
    created = json.loads(
        gateway.aws(
            "s3api", "create-multipart-upload", "--bucket", bucket, "--key", "cli", "--checksum-algorithm", "SHA256"
        ).stdout
    )
    assert created["ChecksumAlgorithm"] == "SHA256"
    listed = []
    for number, data in enumerate(parts, 1):
        path = tmp_path / f"part{number}"
        path.write_bytes(data)
        answer = json.loads(
            gateway.aws(
                "s3api",
                "upload-part",
                "--bucket",
                bucket,
                "--key",
                "cli",
                "--upload-id",
                created["UploadId"],
                "--part-number",
                number,
                "--body",
                path,
                "--checksum-algorithm",
                "SHA256",
            ).stdout
        )
        assert answer["ChecksumSHA256"] == checksum("SHA256", data)
        listed.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]})
    document = tmp_path / "parts.json"
    document.write_text(json.dumps({"Parts": listed}))
    done = json.loads(
        gateway.aws(
            "s3api",
            "complete-multipart-upload",
            "--bucket",
            bucket,
            "--key",
            "cli",
            "--upload-id",
            created["UploadId"],
            "--multipart-upload",
            f"file://{document}",
        ).stdout
    )
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (composite("SHA256", parts), "COMPOSITE")
    head = json.loads(
        gateway.aws("s3api", "head-object", "--bucket", bucket, "--key", "cli", "--checksum-mode", "ENABLED").stdout
    )
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (composite("SHA256", parts), "COMPOSITE")


def test_aws_s3_cp_large_file_round_trip(gateway, bucket, tmp_path):
    """``aws s3 cp`` uploads in parts with its default CRC32 (COMPOSITE) and names every part's checksum."""
    data = compressible(9 * MIB, 10)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    gateway.aws("s3", "cp", source, f"s3://{bucket}/big.bin")
    head = json.loads(
        gateway.aws("s3api", "head-object", "--bucket", bucket, "--key", "big.bin", "--checksum-mode", "ENABLED").stdout
    )
    assert head["ChecksumType"] == "COMPOSITE" and head["ChecksumCRC32"].endswith("-2")
    back = tmp_path / "back.bin"
    gateway.aws("s3", "cp", f"s3://{bucket}/big.bin", back)
    assert back.read_bytes() == data
