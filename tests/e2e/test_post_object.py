"""Browser form uploads (POST Object) against a real ``s4 serve``, over both stores.

The forms are what a browser sends: ``multipart/form-data`` with the fields first and the
file last, built here byte for byte and sent with http.client (a browser follows no redirect
of a form POST on its own account here, so the 303 is seen as sent), or by curl ``-F``. The
policies come from boto3's ``generate_presigned_post`` (SigV4) or are signed as the ceph
s3-tests do (SigV2), and the objects are read back with boto3 and aws-cli.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import shutil
import ssl
import subprocess
import uuid
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.e2e.gateway import ACCESS_KEY, SECRET_KEY


def _form(fields: list[tuple[str, str]], file: bytes | None, filename: str, content_type: str) -> tuple[str, bytes]:
    """A multipart/form-data body as a browser writes it: each field, then the file part."""
    boundary = "----WebKitFormBoundary" + uuid.uuid4().hex[:16]
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    if file is not None:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        out += file + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


def post_form(
    gateway,
    bucket: str,
    fields,
    file: bytes | None = b"hello from a browser",
    filename: str = "hello.txt",
    content_type: str = "text/plain",
    enclosure: str | None = None,
):
    """POST the form to the bucket's URL; (status, headers, body) exactly as the gateway answered."""
    fields = list(fields.items()) if isinstance(fields, dict) else list(fields)
    form_type, body = _form(fields, file, filename, content_type)
    url = urlsplit(gateway.endpoint)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=str(gateway.ca_bundle))
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=120)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    try:
        conn.request("POST", f"/{bucket}", body=body, headers={"Content-Type": enclosure or form_type})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _error(body: bytes) -> tuple[str, str]:
    root = ElementTree.fromstring(body)
    return root.findtext("Code"), root.findtext("Message")


def _presigned(
    gateway, bucket: str, key: str, fields=None, conditions=None, expires: int = 600, version: str = "s3v4"
) -> dict[str, str]:
    """boto3's presigned POST (SigV4, or SigV2 as boto3 makes by default for a custom endpoint):
    the fields a page would put in its form, file excluded."""
    post = gateway.client(signature_version=version).generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires
    )
    assert post["url"].rstrip("/").endswith(bucket)
    return post["fields"]


def _v2_form(conditions: list, fields: dict[str, str], expires_in: int = 600, secret: str = SECRET_KEY) -> dict:
    """A SigV2 form as s3-tests signs it: base64 policy, base64 HMAC-SHA1 of it."""
    expiration = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    document = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": conditions}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {**fields, "AWSAccessKeyId": ACCESS_KEY, "policy": policy, "signature": signature}


def _absent(gateway, bucket: str, key: str) -> bool:
    try:
        gateway.client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_presigned_post_stores_the_file_with_its_fields(gateway, bucket, version):
    data = b"browser upload, compressible " * 4000
    fields = _presigned(
        gateway,
        bucket,
        "uploads/${filename}",
        fields={"Content-Type": "text/plain", "x-amz-meta-origin": "browser", "Cache-Control": "max-age=60"},
        conditions=[
            {"Content-Type": "text/plain"},
            {"x-amz-meta-origin": "browser"},
            {"Cache-Control": "max-age=60"},
            ["starts-with", "$key", "uploads/"],
            ["content-length-range", 1, 1024 * 1024],
        ],
        version=version,
    )
    assert ("x-amz-signature" in fields) == (version == "s3v4")
    status, headers, body = post_form(gateway, bucket, fields, data, filename="report.txt")
    assert (status, body) == (204, b"")
    s3 = gateway.client()
    got = s3.get_object(Bucket=bucket, Key="uploads/report.txt")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain" and got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"origin": "browser"}
    assert headers["etag"] == got["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    assert headers["location"].endswith(f"/{bucket}/uploads/report.txt")
    head = json.loads(gateway.aws("s3api", "head-object", "--bucket", bucket, "--key", "uploads/report.txt").stdout)
    assert head["ContentLength"] == len(data) and head["Metadata"] == {"origin": "browser"}


def test_success_action_status_and_redirect(gateway, bucket):
    def form(key: str, name: str, value: str) -> dict[str, str]:
        # boto3 puts the fields in the form, not in the policy: each needs its condition too.
        return _presigned(gateway, bucket, key, fields={name: value}, conditions=[{name: value}])

    fields = form("s201", "success_action_status", "201")
    status, headers, body = post_form(gateway, bucket, fields)
    assert status == 201 and headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(body)
    assert root.tag == "PostResponse"
    assert (root.findtext("Bucket"), root.findtext("Key")) == (bucket, "s201")
    assert root.findtext("ETag") == headers["etag"] == gateway.client().head_object(Bucket=bucket, Key="s201")["ETag"]
    assert root.findtext("Location").endswith(f"/{bucket}/s201")
    # As on S3, the type is the form's Content-Type field, never the file part's (text/plain here):
    # without the field, the object has the type of a PutObject without one.
    gateway.client().put_object(Bucket=bucket, Key="untyped", Body=b"x")
    untyped = gateway.client().head_object(Bucket=bucket, Key="untyped")["ContentType"]
    assert gateway.client().head_object(Bucket=bucket, Key="s201")["ContentType"] == untyped != "text/plain"

    fields = form("s200", "success_action_status", "200")
    assert post_form(gateway, bucket, fields)[::2] == (200, b"")
    # S3 answers 204 for any other value.
    fields = form("s404", "success_action_status", "404")
    assert post_form(gateway, bucket, fields)[::2] == (204, b"")

    target = "https://app.example.com/done?session=1"
    fields = form("dir/r d", "success_action_redirect", target)
    status, headers, _ = post_form(gateway, bucket, fields)
    etag = gateway.client().head_object(Bucket=bucket, Key="dir/r d")["ETag"].strip('"')
    assert status == 303
    assert headers["location"] == f"{target}&bucket={bucket}&key=dir%2Fr%20d&etag=%22{etag}%22"


def test_sigv2_form_as_s3_tests_sign_it(gateway, bucket):
    form = _v2_form(
        [{"bucket": bucket}, ["starts-with", "$key", "foo"], {"acl": "private"}, ["starts-with", "$Content-Type", ""]],
        {"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-ignore-note": "not checked"},
    )
    status, _, body = post_form(gateway, bucket, form, b"bar")
    assert (status, body) == (204, b"")
    assert gateway.client().get_object(Bucket=bucket, Key="foo.txt")["Body"].read() == b"bar"


@pytest.mark.parametrize(
    ("case", "status", "code", "message"),
    [
        ("expired", 403, "AccessDenied", "Invalid according to Policy: Policy expired."),
        ("wrong bucket", 403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "),
        ("key prefix", 403, "AccessDenied", 'Policy Condition failed: ["starts-with", "$key", "uploads/"]'),
        ("unlisted field", 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra"),
        ("bad signature", 403, "SignatureDoesNotMatch", ""),
        ("unknown key", 403, "InvalidAccessKeyId", ""),
        ("too large", 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"),
        ("too small", 400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"),
        ("anonymous", 403, "AccessDenied", ""),
        ("no file", 400, "InvalidArgument", "POST requires exactly one file upload per request."),
        ("no key", 400, "InvalidArgument", "Bucket POST must contain a field named 'key'."),
        ("not a form", 412, "PreconditionFailed", ""),
        ("bad policy", 400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions."),
    ],
)
def test_policy_violations_store_nothing(gateway, bucket, case, status, code, message):
    key = "uploads/x.bin"
    conditions = [["starts-with", "$key", "uploads/"], ["content-length-range", 10, 1000]]
    data, target, enclosure, file = b"x" * 100, bucket, None, True
    fields = _presigned(gateway, bucket, key, conditions=conditions)
    if case == "expired":
        fields = _presigned(gateway, bucket, key, conditions=conditions, expires=-60)
    elif case == "wrong bucket":
        target = bucket + "-other"
        gateway.client().create_bucket(Bucket=target)
    elif case == "key prefix":
        fields = _presigned(gateway, bucket, "other/x.bin", conditions=conditions)
    elif case == "unlisted field":
        fields["x-amz-meta-extra"] = "smuggled"
    elif case == "bad signature":
        fields["x-amz-signature"] = "0" * 64
    elif case == "unknown key":
        fields["x-amz-credential"] = "NOSUCHKEY" + fields["x-amz-credential"][len(ACCESS_KEY) :]
    elif case == "too large":
        data = b"x" * 1001
    elif case == "too small":
        data = b"x" * 9
    elif case == "anonymous":
        fields = {"key": key, "Content-Type": "text/plain"}
    elif case == "no file":
        file = False
    elif case == "no key":
        del fields["key"]
    elif case == "not a form":
        enclosure = "application/x-www-form-urlencoded"
    elif case == "bad policy":
        form = _v2_form([], {"key": key})
        form["policy"] = base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z"}').decode()
        form["signature"] = base64.b64encode(
            hmac.new(SECRET_KEY.encode(), form["policy"].encode(), hashlib.sha1).digest()
        ).decode()
        fields = form
    got_status, headers, body = post_form(gateway, target, fields, data if file else None, enclosure=enclosure)
    got_code, got_message = _error(body)
    assert (got_status, got_code) == (status, code), body
    assert message in got_message
    assert headers["x-amz-request-id"]
    assert _absent(gateway, target, key) and _absent(gateway, target, fields.get("key") or key)


def test_large_file_streams_and_reads_back(gateway, bucket):
    """Many frames' worth through the form, then whole and ranged reads of what was stored."""
    data = os.urandom(1 << 20) + b"compressible text " * 400_000  # ~8 MiB
    fields = _presigned(gateway, bucket, "big.bin", conditions=[["content-length-range", 0, 16 * 1024 * 1024]])
    status, headers, _ = post_form(gateway, bucket, fields, data, content_type="application/octet-stream")
    assert status == 204
    s3 = gateway.client()
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    part = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=3000000-3000099")["Body"].read()
    assert part == data[3_000_000:3_000_100]
    assert headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_form_with_expect_continue(gateway, bucket, tmp_path):
    """curl -F sends a file over 1 MiB with ``Expect: 100-continue``: the gateway must say 100 before the
    form (and its signature) has arrived, then check the form."""
    path = tmp_path / "photo.jpg"
    data = os.urandom(2 * 1024 * 1024)
    path.write_bytes(data)
    fields = _presigned(gateway, bucket, "photos/${filename}", conditions=[["starts-with", "$key", "photos/"]])
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-v"]
    if gateway.ca_bundle is not None:
        args += ["--cacert", str(gateway.ca_bundle)]
    for name, value in fields.items():
        args += ["--form-string", f"{name}={value}"]
    args += ["-F", f"file=@{path}", f"{gateway.endpoint}/{bucket}"]
    run = subprocess.run(args, capture_output=True, timeout=120)
    assert run.stdout == b"204", run.stderr.decode()
    assert b"HTTP/1.1 100 Continue" in run.stderr
    assert gateway.client().get_object(Bucket=bucket, Key="photos/photo.jpg")["Body"].read() == data


def test_tagging_field(gateway, bucket):
    """The form's ``tagging`` field is a Tagging document, as PutObjectTagging takes: the object has
    those tags from its first moment; a document S3 would refuse stores nothing."""
    tag_set = "<Tag><Key>team</Key><Value>web</Value></Tag><Tag><Key>1</Key><Value></Value></Tag>"
    tagging = f"<Tagging><TagSet>{tag_set}</TagSet></Tagging>"
    fields = _presigned(gateway, bucket, "tagged", fields={"tagging": tagging}, conditions=[{"tagging": tagging}])
    assert post_form(gateway, bucket, fields)[0] == 204
    s3 = gateway.client()
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("1", ""), ("team", "web")]
    assert s3.get_object(Bucket=bucket, Key="tagged")["TagCount"] == 2

    for document, code in [("<Tagging><TagSet>", "MalformedXML"), (tagging.replace("team", "aws:team"), "InvalidTag")]:
        fields = _presigned(
            gateway, bucket, "untagged", fields={"tagging": document}, conditions=[["starts-with", "$tagging", ""]]
        )
        status, _, body = post_form(gateway, bucket, fields)
        assert (status, _error(body)[0]) == (400, code)
        assert _absent(gateway, bucket, "untagged")
