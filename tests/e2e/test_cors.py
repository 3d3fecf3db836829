"""CORS, as a browser uses the gateway: the configuration through aws-cli and boto3, preflights sent
as a browser sends them (raw OPTIONS, no credentials), and actual requests with an ``Origin``.

Each gateway process keeps a bucket's CORS rules for CACHE_TTL_S (its own changes show at once, the
other processes' once that has passed), so a check after a change waits that long first, as S3's own
propagation asks clients to.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from s4.server.cors import CACHE_TTL_S
from tests.e2e.raw import send_target

ORIGIN = "https://app.example.com"
RULES = {
    "CORSRules": [
        {
            "ID": "app",
            "AllowedOrigins": ["https://*.example.com"],
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedHeaders": ["content-type", "x-amz-*"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
}
SETTLE_S = CACHE_TTL_S + 0.5
"""After this, every gateway process has the rules of the last change."""


def _code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _preflight(gateway, path: str, origin: str | None = ORIGIN, method: str | None = "PUT", headers: str | None = None):
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return send_target(gateway, "OPTIONS", path, sent)


def test_cors_configuration_with_aws_cli(gateway, bucket, tmp_path):
    missing = gateway.aws("s3api", "get-bucket-cors", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and b"NoSuchCORSConfiguration" in missing.stderr
    config = tmp_path / "cors.json"
    config.write_text(json.dumps(RULES))
    gateway.aws("s3api", "put-bucket-cors", "--bucket", bucket, "--cors-configuration", f"file://{config}")
    got = json.loads(gateway.aws("s3api", "get-bucket-cors", "--bucket", bucket).stdout)
    assert got == RULES
    gateway.aws("s3api", "delete-bucket-cors", "--bucket", bucket)
    gone = gateway.aws("s3api", "get-bucket-cors", "--bucket", bucket, check=False)
    assert gone.returncode != 0 and b"NoSuchCORSConfiguration" in gone.stderr


def test_invalid_cors_configurations_are_refused(gateway, bucket):
    s3 = gateway.client()
    for rules, code in (
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["*.*.example.com"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["*"]}], "InvalidRequest"),
    ):
        with pytest.raises(ClientError) as info:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        assert _code(info.value) == (400, code)
    with pytest.raises(ClientError) as info:
        s3.get_bucket_cors(Bucket=bucket)
    assert _code(info.value) == (404, "NoSuchCORSConfiguration")
    with pytest.raises(ClientError) as info:
        s3.put_bucket_cors(Bucket=bucket + "-none", CORSConfiguration=RULES)
    assert _code(info.value) == (404, "NoSuchBucket")


def test_a_browser_preflight_and_actual_requests(gateway, bucket):
    s3 = gateway.client()
    s3.put_object(Bucket=bucket, Key="photo.jpg", Body=b"jpeg bytes" * 100)

    # Without a configuration: S3's 403, as a browser gets it (no credentials on a preflight).
    status, _, body = _preflight(gateway, f"/{bucket}/photo.jpg")
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body and b"CORS is not enabled" in body
    assert b"<ResourceType>OBJECT</ResourceType>" in body

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    time.sleep(SETTLE_S)
    status, headers, _ = _preflight(gateway, f"/{bucket}/photo.jpg", headers="Content-Type, X-Amz-Date")
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert headers["access-control-allow-headers"] == "Content-Type, X-Amz-Date"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert "Origin" in headers["vary"]

    # The bucket path, and a rule for every origin: "*" comes back, not the origin.
    status, headers, _ = _preflight(gateway, f"/{bucket}", origin="https://other.org", method="GET")
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "GET" and "access-control-allow-credentials" not in headers

    # A method, an origin or a header no rule allows: 403, with no CORS headers.
    for origin, method, asked in (
        ("https://other.org", "PUT", None),
        ("https://app.example.com.evil.org", "PUT", None),
        (ORIGIN, "DELETE", None),
        (ORIGIN, "PUT", "authorization"),
    ):
        status, headers, body = _preflight(gateway, f"/{bucket}/photo.jpg", origin=origin, method=method, headers=asked)
        assert status == 403 and b"This CORS request is not allowed" in body, (origin, method, asked)
        assert "access-control-allow-origin" not in headers

    # What S3 answers a request that is no preflight.
    status, _, body = _preflight(gateway, f"/{bucket}/photo.jpg", origin=None)
    assert status == 400 and b"Origin request header needed" in body
    status, _, body = _preflight(gateway, f"/{bucket}/photo.jpg", method=None)
    assert status == 400 and b"Invalid Access-Control-Request-Method" in body
    status, _, body = _preflight(gateway, f"/{bucket}-none/photo.jpg")
    assert status == 404 and b"NoSuchBucket" in body

    # The actual requests, as a page makes them: a presigned GET, and an error, both readable by the page.
    url = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "photo.jpg"}))
    status, headers, body = send_target(gateway, "GET", f"{url.path}?{url.query}", {"Origin": ORIGIN})
    assert status == 200 and body == b"jpeg bytes" * 100
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    missing = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "none.jpg"}))
    status, headers, _ = send_target(gateway, "GET", f"{missing.path}?{missing.query}", {"Origin": ORIGIN})
    assert status == 404 and headers["access-control-allow-origin"] == ORIGIN
    put = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.txt"}))
    status, headers, _ = send_target(gateway, "PUT", f"{put.path}?{put.query}", {"Origin": ORIGIN}, b"from a page")
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert s3.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"from a page"
    status, headers, _ = send_target(gateway, "GET", f"{url.path}?{url.query}", {"Origin": "https://other.org"})
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    status, headers, _ = send_target(gateway, "GET", f"{url.path}?{url.query}")
    assert status == 200 and not any(name.startswith("access-control-") for name in headers)

    s3.delete_bucket_cors(Bucket=bucket)
    time.sleep(SETTLE_S)
    assert _preflight(gateway, f"/{bucket}/photo.jpg")[0] == 403
