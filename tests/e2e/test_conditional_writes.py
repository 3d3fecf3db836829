"""Conditional writes (issue 13, item 3), against a real ``s4 serve`` on the embedded store and over SeaweedFS.

``If-None-Match: *`` and ``If-Match: <etag>`` on PutObject, CompleteMultipartUpload and the
destination of CopyObject: 412 PreconditionFailed when the condition does not hold, 404 for
If-Match on a missing key, 409 ConditionalRequestConflict when it held at the start but a
concurrent write won before the commit, and never a write that ignored its condition. The
ETags a client compares are the logical ones (what PUT, HEAD and listings show), never the
compressed object's.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import ssl
import threading

import pytest
from botocore.exceptions import ClientError

from tests.e2e.raw import sign

TEXT = b"conditional writes keep lock files honest\n" * 2000  # compressible: stored ETag != logical ETag


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _body(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_if_none_match_creates_only_once(gateway, bucket):
    s3 = gateway.client()
    first = s3.put_object(Bucket=bucket, Key="lock", Body=TEXT, IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="lock", Body=b"second writer", IfNoneMatch="*")
    assert _code(info.value) == (412, "PreconditionFailed")
    assert info.value.response["ResponseMetadata"]["RequestId"]
    assert _body(s3, bucket, "lock") == TEXT
    assert s3.head_object(Bucket=bucket, Key="lock")["ETag"] == first["ETag"]


def test_if_match_compares_the_etag_clients_see(gateway, bucket):
    s3 = gateway.client()
    put = s3.put_object(Bucket=bucket, Key="state", Body=TEXT)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["ETag"]
    assert listed == put["ETag"]
    replaced = s3.put_object(Bucket=bucket, Key="state", Body=TEXT + b"v2", IfMatch=listed)
    assert _body(s3, bucket, "state") == TEXT + b"v2"
    with pytest.raises(ClientError) as info:  # the ETag read before the replace is stale now
        s3.put_object(Bucket=bucket, Key="state", Body=b"lost update", IfMatch=put["ETag"])
    assert _code(info.value) == (412, "PreconditionFailed")
    assert _body(s3, bucket, "state") == TEXT + b"v2"
    s3.put_object(Bucket=bucket, Key="state", Body=b"v3", IfMatch=replaced["ETag"])
    assert _body(s3, bucket, "state") == b"v3"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=put["ETag"])
    assert _code(info.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="missing")


def test_copy_honours_conditions_on_its_destination(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="src", Body=TEXT)
    s3.put_object(Bucket=bucket, Key="dst", Body=b"keep me")
    source = {"Bucket": bucket, "Key": "src"}
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, IfNoneMatch="*")
    assert _code(info.value) == (412, "PreconditionFailed")
    assert _body(s3, bucket, "dst") == b"keep me"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, IfMatch='"0123456789abcdef0123456789abcdef"')
    assert _code(info.value) == (412, "PreconditionFailed")
    s3.copy_object(Bucket=bucket, Key="fresh", CopySource=source, IfNoneMatch="*")
    assert _body(s3, bucket, "fresh") == TEXT
    current = s3.head_object(Bucket=bucket, Key="dst")["ETag"]
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, IfMatch=current)
    assert _body(s3, bucket, "dst") == TEXT


def test_complete_with_a_failed_condition_keeps_the_upload(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="big", Body=b"already here")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    parts = []
    for number, piece in enumerate((TEXT * 64, b"tail"), start=1):  # part 1 >= 5 MiB
        etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=number, Body=piece)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
        )
    assert _code(info.value) == (412, "PreconditionFailed")
    assert _body(s3, bucket, "big") == b"already here"
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)["Parts"]] == [1, 2]
    current = s3.head_object(Bucket=bucket, Key="big")["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}, IfMatch=current
    )
    assert _body(s3, bucket, "big") == TEXT * 64 + b"tail"
    assert s3.head_object(Bucket=bucket, Key="big")["ETag"] == done["ETag"]


def test_if_none_match_with_an_etag_is_not_a_write_condition_s3_knows(gateway, bucket):
    s3 = gateway.client()
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    assert _code(info.value) == (501, "NotImplemented")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_racing_creators_one_wins_and_its_bytes_are_stored(gateway, bucket):
    """Eight writers, If-None-Match: * on one new key at once: exactly one 200, the others 412 or 409."""
    s3 = gateway.client()
    start = threading.Barrier(8)

    def create(n: int) -> tuple[int, object]:
        start.wait()
        try:
            return n, s3.put_object(Bucket=bucket, Key="race", Body=TEXT + str(n).encode(), IfNoneMatch="*")
        except ClientError as exc:
            return n, _code(exc)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    winners = [n for n, r in results if isinstance(r, dict)]
    losers = [r for _, r in results if not isinstance(r, dict)]
    assert len(winners) == 1, results
    assert all(r in ((412, "PreconditionFailed"), (409, "ConditionalRequestConflict")) for r in losers), results
    assert _body(s3, bucket, "race") == TEXT + str(winners[0]).encode()


def test_a_concurrent_write_during_a_conditional_put_is_a_conflict(gateway, bucket):
    """The condition holds when the slow PUT starts; a plain PUT lands while its body is still coming:
    the slow one must fail with 409 and leave the other's bytes in place."""
    s3 = gateway.client()
    body = TEXT * 8
    url = f"{gateway.endpoint}/{bucket}/slow"
    headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "If-None-Match": "*", "Content-Length": str(len(body))}
    request = sign("PUT", url, headers)
    if gateway.ca_bundle is not None:
        context = ssl.create_default_context(cafile=str(gateway.ca_bundle))
        context.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", gateway.port, context=context, timeout=120)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=120)
    try:
        conn.putrequest("PUT", f"/{bucket}/slow", skip_host=True, skip_accept_encoding=True)
        signed = dict(request.headers.items())
        signed.setdefault("Host", url.split("/")[2])  # what botocore signed as the host
        for name, value in signed.items():
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        # The gateway has checked the condition before reading the body (the key was absent).
        s3.put_object(Bucket=bucket, Key="slow", Body=b"the other writer")
        conn.send(body[len(body) // 2 :])
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    assert response.status == 409, answer
    assert b"<Code>ConditionalRequestConflict</Code>" in answer and b"<RequestId>" in answer
    assert _body(s3, bucket, "slow") == b"the other writer"
