"""The policy of a form upload (s4/server/auth/post_policy.py), its signature (post_signature.py)
and the reading of the form (s4/server/body/form.py), without a server.

The signatures are cross-checked with botocore's own POST presigners (SigV4 and SigV2), so a
form boto3 makes is one the gateway accepts, byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from botocore.auth import HmacV1PostAuth, S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from multidict import CIMultiDict

from s4.config import LimitsConfig
from s4.server.auth.post_policy import PostPolicy, parse_policy
from s4.server.auth.post_signature import authenticate_form
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.body.form import MAX_FIELDS_BYTES, read_form
from s4.server.errors import S3Error

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = "2026-06-01T13:00:00Z"
KEYS = Credentials([Credential("AKIDPOSTTEST", "post-test-secret")])


def _encode(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def _policy(*conditions, expiration: str = LATER) -> PostPolicy:
    return parse_policy(_encode({"expiration": expiration, "conditions": list(conditions)}))


def _raises(code: str, call, *args, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- the document ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"conditions": []}, "Policy missing expiration."),
        ({"expiration": LATER}, "Policy missing conditions."),
        ({"EXPIRATION": LATER, "conditions": []}, "Policy missing expiration."),  # names are case-sensitive
        ({"expiration": LATER, "CONDITIONS": []}, "Policy missing conditions."),
        ({"expiration": "2026-06-01 13:00:00+00:00", "conditions": []}, "Invalid 'expiration' value"),
        ({"expiration": LATER, "conditions": {}}, "Invalid 'conditions' value"),
        ({"expiration": LATER, "conditions": [{}]}, "Simple-Conditions must have exactly one property"),
        ({"expiration": LATER, "conditions": [{"a": "1", "b": "2"}]}, "exactly one property"),
        ({"expiration": LATER, "conditions": [{"acl": 1}]}, "must be a string"),
        ({"expiration": LATER, "conditions": [["content-length-range", 0]]}, "content-length-range"),
        ({"expiration": LATER, "conditions": [["content-length-range", -1, 0]]}, "content-length-range"),
        ({"expiration": LATER, "conditions": [["content-length-range", 5, 1]]}, "content-length-range"),
        ({"expiration": LATER, "conditions": [["content-length-range", 0, 1.5]]}, "content-length-range"),
        ({"expiration": LATER, "conditions": [["in", "$key", "a"]]}, "unknown operation"),
        ({"expiration": LATER, "conditions": [["eq", "key", "a"]]}, "must start with '$'"),
        ({"expiration": LATER, "conditions": [["eq", "$key"]]}, "Invalid Condition"),
        ({"expiration": LATER, "conditions": ["key"]}, "Invalid condition"),
        ({"expiration": LATER, "conditions": [], "other": 1}, "Unexpected field: other"),
        ([LATER], "Invalid JSON."),
    ],
)
def test_documents_s3_would_not_parse(document, reason):
    error = _raises("InvalidPolicyDocument", parse_policy, _encode(document))
    assert error.status == 400 and reason in error.message


def test_undecodable_policies():
    for encoded in ("not base64 json", "ü", base64.b64encode(b"\xff\xfe").decode()):
        assert _raises("InvalidPolicyDocument", parse_policy, encoded).message == "Invalid Policy: Invalid JSON."


def test_expiration_forms_and_ranges():
    with_millis = _policy(expiration="2026-06-01T13:00:00.250Z")
    assert with_millis.expiration == dt.datetime(2026, 6, 1, 13, 0, 0, 250_000, tzinfo=dt.UTC)
    assert _policy(["content-length-range", "10", "20"]).length_range == (10, 20)
    # Several ranges narrow one another.
    narrowed = _policy(["content-length-range", 0, 100], ["CONTENT-LENGTH-RANGE", 10, 1000])
    assert narrowed.length_range == (10, 100)
    assert _policy().length_range is None


# --- the conditions ----------------------------------------------------------------------------


def _fields(**extra: str) -> dict[str, str]:
    return {"bucket": "photos", "key": "user/eric/cat.jpg", **extra}


def test_a_policy_that_allows_the_form():
    policy = _policy(
        {"bUcKeT": "photos"},
        ["StArTs-WiTh", "$KeY", "user/eric/"],
        {"acl": "private"},
        ["eq", "$Content-Type", "image/jpeg"],
        ["starts-with", "$x-amz-meta-tag", ""],
        ["content-length-range", 0, 10],
    )
    fields = _fields(acl="private", **{"content-type": "image/jpeg", "x-amz-meta-tag": "pets"})
    policy.check(fields, frozenset({"policy"}), NOW)
    # starts-with "" also allows the field to be absent, and x-ignore-* needs no condition.
    del fields["x-amz-meta-tag"]
    policy.check({**fields, "policy": "p", "x-ignore-note": "anything"}, frozenset({"policy"}), NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (_fields(key="other/cat.jpg"), 'Policy Condition failed: ["starts-with", "$key", "user/eric/"]'),
        (_fields(bucket="videos"), 'Policy Condition failed: ["eq", "$bucket", "photos"]'),
        (_fields(**{"x-amz-meta-tag": "x"}), "Extra input fields: x-amz-meta-tag"),
        (_fields(signature="s"), "Extra input fields: signature"),  # exempt only where the version says so
    ],
)
def test_what_a_policy_refuses(fields, message):
    policy = _policy({"bucket": "photos"}, ["starts-with", "$key", "user/eric/"])
    error = _raises("AccessDenied", policy.check, fields, frozenset({"x-amz-signature", "policy"}), NOW)
    assert error.status == 403 and error.message == f"Invalid according to Policy: {message}"


def test_eq_is_exact_and_values_are_literal():
    policy = _policy(["eq", "$x-amz-meta-foo", ""], ["starts-with", "$key", "\\$foo"], {"bucket": "b"})
    policy.check({"bucket": "b", "key": "\\$foo.txt"}, (), NOW)
    error = _raises("AccessDenied", policy.check, {"bucket": "b", "key": "\\$foo", "x-amz-meta-foo": "x"}, (), NOW)
    assert error.message.endswith('["eq", "$x-amz-meta-foo", ""]')
    _raises("AccessDenied", policy.check, {"bucket": "b", "key": "$foo.txt"}, (), NOW)


def test_the_bucket_needs_a_condition_and_expiry_comes_first():
    error = _raises("AccessDenied", _policy(["starts-with", "$key", ""]).check, _fields(), (), NOW)
    assert error.message == "Invalid according to Policy: Extra input fields: bucket"
    expired = _policy({"bucket": "elsewhere"}, expiration="2026-06-01T11:59:59Z")
    assert _raises("AccessDenied", expired.check, _fields(), (), NOW).message.endswith("Policy expired.")


def test_size_range_checks():
    policy = _policy(["content-length-range", 10, 20])
    policy.check_size(5, final=False)  # still arriving: too small only once it has ended
    policy.check_size(20, final=True)
    large = _raises("EntityTooLarge", policy.check_size, 21, final=False)
    assert large.extra == {"ProposedSize": "21", "MaxSizeAllowed": "20"}
    small = _raises("EntityTooSmall", policy.check_size, 9, final=True)
    assert small.extra == {"ProposedSize": "9", "MinSizeAllowed": "10"}
    _policy().check_size(10**12, final=True)


# --- the signature -------------------------------------------------------------------------------


def _botocore_form(auth_class, **kwargs) -> dict[str, str]:
    """The fields botocore's POST presigner writes (what generate_presigned_post hands a page)."""
    request = AWSRequest(method="POST", url="https://s3.amazonaws.com/photos")
    request.context["s3-presign-post-fields"] = {"key": "user/cat.jpg"}
    request.context["s3-presign-post-policy"] = {"expiration": LATER, "conditions": [{"bucket": "photos"}]}
    auth_class(BotoCredentials("AKIDPOSTTEST", "post-test-secret"), **kwargs).add_auth(request)
    return {name.lower(): value for name, value in request.context["s3-presign-post-fields"].items()}


def test_sigv4_forms_botocore_signs():
    fields = _botocore_form(S3SigV4PostAuth, service_name="s3", region_name="eu-west-1")
    auth = authenticate_form(fields, KEYS)
    assert auth.context.access_key_id == "AKIDPOSTTEST" and auth.context.scope.endswith("/eu-west-1/s3/aws4_request")
    assert auth.exempt == {"x-amz-signature", "policy", "file"}
    tampered = {**fields, "policy": _encode({"expiration": LATER, "conditions": []})}
    assert _raises("SignatureDoesNotMatch", authenticate_form, tampered, KEYS).status == 403
    wrong_date = {**fields, "x-amz-date": "20200101T000000Z"}
    assert _raises("InvalidArgument", authenticate_form, wrong_date, KEYS).extra["ArgumentName"] == "X-Amz-Credential"
    other_algorithm = {**fields, "x-amz-algorithm": "AWS4-HMAC-SHA512"}
    _raises("InvalidArgument", authenticate_form, other_algorithm, KEYS)
    unknown = {**fields, "x-amz-credential": fields["x-amz-credential"].replace("AKIDPOSTTEST", "AKIDNOBODY")}
    _raises("InvalidAccessKeyId", authenticate_form, unknown, KEYS)
    unsigned = {k: v for k, v in fields.items() if k != "x-amz-signature"}
    assert "'X-Amz-Signature'" in _raises("InvalidArgument", authenticate_form, unsigned, KEYS).message


def test_sigv2_forms_botocore_signs():
    fields = _botocore_form(HmacV1PostAuth)
    auth = authenticate_form(fields, KEYS)
    assert auth.context.access_key_id == "AKIDPOSTTEST"
    assert auth.exempt == {"awsaccesskeyid", "signature", "policy", "file"}
    _raises("SignatureDoesNotMatch", authenticate_form, {**fields, "signature": "AAAA" + fields["signature"]}, KEYS)
    _raises("InvalidAccessKeyId", authenticate_form, {**fields, "awsaccesskeyid": "AKIDNOBODY"}, KEYS)
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    assert _raises("InvalidArgument", authenticate_form, unsigned, KEYS).extra["ArgumentName"] == "Signature"


def test_forms_without_a_signature():
    # Anonymous: refused (buckets writable by anyone belong to the access-control issue).
    error = _raises("AccessDenied", authenticate_form, {"key": "a", "acl": "public-read"}, KEYS)
    assert error.status == 403
    only_policy = _raises("InvalidArgument", authenticate_form, {"key": "a", "policy": "e30="}, KEYS)
    assert only_policy.extra["ArgumentName"] == "AWSAccessKeyId"


# --- the form --------------------------------------------------------------------------------------


async def _request(body: bytes, content_type: str) -> web.Request:
    protocol = mock.Mock(_reading_paused=False)
    payload = StreamReader(protocol, 2**20, loop=asyncio.get_running_loop())
    # In pieces, as a network delivers it: a boundary may straddle two of them.
    for start in range(0, len(body), 7):
        payload.feed_data(body[start : start + 7])
    payload.feed_eof()
    return make_mocked_request("POST", "/photos", headers=CIMultiDict({"Content-Type": content_type}), payload=payload)


def _multipart(parts: list[tuple[str, bytes]], filename: str = "cat.jpg") -> bytes:
    out = b"preamble\r\n"
    for name, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if name == "file" else "")
        out += f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + b"--XyZ--\r\n"


def _read(body: bytes, content_type: str = "multipart/form-data; boundary=XyZ"):
    async def run():
        request = await _request(body, content_type)
        fields, upload = await read_form(request, LimitsConfig())
        data = b"".join([chunk async for chunk in upload.chunks()]) if upload is not None else None
        return fields, (upload.filename if upload else None), data

    return asyncio.run(run())


def test_fields_then_the_file_and_nothing_after_it():
    file = b"\r\n-- XyZ\r\n--\r\n" + bytes(range(256)) * 50
    body = _multipart(
        [("Key", b"a/${filename}"), ("X-Amz-Meta-Note", "caf\u00e9".encode()), ("file", file), ("late", b"x")]
    )
    fields, filename, data = _read(body)
    assert fields == {"key": "a/${filename}", "x-amz-meta-note": "caf\u00e9"}
    assert (filename, data) == ("cat.jpg", file)
    assert _read(_multipart([("key", b"a")]))[1:] == (None, None)


def test_forms_refused_as_s3_refuses_them():
    error = _raises("PreconditionFailed", _read, b"", "application/x-www-form-urlencoded")
    assert error.status == 412 and "multipart/form-data" in error.extra["Condition"]
    _raises("MalformedPOSTRequest", _read, b"--XyZ\r\nno headers end", "multipart/form-data; boundary=XyZ")
    _raises("MalformedPOSTRequest", _read, _multipart([("key", b"\xff")]))
    twice = _raises("InvalidArgument", _read, _multipart([("key", b"a"), ("KEY", b"b"), ("file", b"x")]))
    assert twice.extra["ArgumentName"] == "key"
    too_long = _multipart([("x-amz-meta-a", b"x" * (MAX_FIELDS_BYTES // 2)), ("x-amz-meta-b", b"y" * MAX_FIELDS_BYTES)])
    assert _raises("MaxPostPreDataLengthExceededError", _read, too_long).status == 400
