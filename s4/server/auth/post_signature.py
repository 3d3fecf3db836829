"""Who signed a browser form upload (POST Object): the signature is in the form, over the policy.

A form upload has no Authorization header and no signed query: the page that serves the
form signs its ``policy`` field, and the policy then says what the form may hold (see
post_policy). Two forms of signature, as S3 accepts them:

* SigV4 (boto3 ``generate_presigned_post``, the AWS SDKs): ``x-amz-algorithm``
  ``AWS4-HMAC-SHA256``, ``x-amz-credential`` (``AKID/date/region/s3/aws4_request``),
  ``x-amz-date``, and ``x-amz-signature``, the hex HMAC-SHA256 of the base64 policy with the
  day's signing key;
* SigV2 (older SDKs, s3-tests): ``AWSAccessKeyId`` and ``signature``, the base64 HMAC-SHA1 of
  the base64 policy with the secret key.

A form with neither and no policy is anonymous (``anonymous_form``): allowed only what the
bucket's policy or ACL grants anyone (s4.server.access).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping

from s4.server.auth.sigv4 import (
    ALGORITHM,
    SERVICE,
    TERMINATOR,
    AuthContext,
    Credentials,
    PayloadMode,
    secret_of,
    sign,
    signatures_equal,
    signing_key,
)
from s4.server.errors import S3Error

V4_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
V2_FIELDS = ("awsaccesskeyid", "signature")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)


@dataclasses.dataclass(frozen=True)
class FormAuth:
    """A verified form: who signed it, and the fields its signature version exempts from the policy."""

    context: AuthContext
    exempt: frozenset[str]
    """Lower-case names that need no policy condition (S3: the signature field, file, policy)."""


def authenticate_form(fields: Mapping[str, str], credentials: Credentials) -> FormAuth:
    """Verify the signature of a form whose fields (by lower-case name) precede its file.

    Raises AccessDenied for an anonymous form, InvalidArgument for a missing field, and
    InvalidAccessKeyId or SignatureDoesNotMatch as S3 does. The policy itself is checked by
    the caller, after this: nobody learns what a policy allows without a valid signature.
    """
    if any(name in fields for name in V4_FIELDS):
        return _authenticate_v4(fields, credentials)
    if any(name in fields for name in V2_FIELDS):
        return _authenticate_v2(fields, credentials)
    if "policy" in fields:
        raise missing_field("AWSAccessKeyId")
    raise S3Error("AccessDenied", "Anonymous access is forbidden for this gateway")


def anonymous_form(fields: Mapping[str, str]) -> bool:
    """A form with no signature and no policy: anyone's upload, judged by the bucket's policy and ACL."""
    return not any(name in fields for name in (*V4_FIELDS, *V2_FIELDS, "policy"))


def missing_field(name: str) -> S3Error:
    """S3's answer to a form without a field it needs (fields after the file are never read)."""
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields.",
        extra={"ArgumentName": name, "ArgumentValue": ""},
    )


def _required(fields: Mapping[str, str], name: str, shown: str) -> str:
    value = fields.get(name)
    if not value:
        raise missing_field(shown)
    return value


def _mismatch(access_key_id: str, string_to_sign: str, provided: str) -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        _SIGNATURE_MISMATCH,
        extra={"AWSAccessKeyId": access_key_id, "StringToSign": string_to_sign, "SignatureProvided": provided},
    )


def _authenticate_v4(fields: Mapping[str, str], credentials: Credentials) -> FormAuth:
    algorithm = _required(fields, "x-amz-algorithm", "X-Amz-Algorithm")
    credential = _required(fields, "x-amz-credential", "X-Amz-Credential")
    amz_date = _required(fields, "x-amz-date", "X-Amz-Date")
    signature = _required(fields, "x-amz-signature", "X-Amz-Signature")
    policy = _required(fields, "policy", "Policy")
    if algorithm != ALGORITHM:
        raise S3Error(
            "InvalidArgument",
            f'X-Amz-Algorithm only supports "{ALGORITHM}"',
            extra={"ArgumentName": "X-Amz-Algorithm", "ArgumentValue": algorithm},
        )
    if not _AMZ_DATE.fullmatch(amz_date):
        raise S3Error(
            "InvalidArgument",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            extra={"ArgumentName": "X-Amz-Date", "ArgumentValue": amz_date},
        )
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or parts[3] != SERVICE or parts[4] != TERMINATOR or parts[1] != amz_date[:8]:
        raise S3Error(
            "InvalidArgument",
            'X-Amz-Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"'
            " with the date of X-Amz-Date.",
            extra={"ArgumentName": "X-Amz-Credential", "ArgumentValue": credential},
        )
    access_key_id, date, region, service, _ = parts
    key = signing_key(secret_of(credentials, access_key_id), date, region, service)
    expected = sign(key, policy)
    if not _HEX64.fullmatch(signature) or not signatures_equal(expected, signature):
        raise _mismatch(access_key_id, policy, signature)
    scope = "/".join(parts[1:])
    context = AuthContext(access_key_id, PayloadMode.UNSIGNED, None, key, signature, amz_date, scope, presigned=False)
    return FormAuth(context, frozenset({"x-amz-signature", "policy", "file"}))


def _authenticate_v2(fields: Mapping[str, str], credentials: Credentials) -> FormAuth:
    access_key_id = _required(fields, "awsaccesskeyid", "AWSAccessKeyId")
    signature = _required(fields, "signature", "Signature")
    policy = _required(fields, "policy", "Policy")
    secret = secret_of(credentials, access_key_id)
    digest = hmac.new(secret.encode(), policy.encode("utf-8", errors="surrogateescape"), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode("ascii")
    if not signatures_equal(expected, signature):
        raise _mismatch(access_key_id, policy, signature)
    context = AuthContext(access_key_id, PayloadMode.UNSIGNED, None, b"", "", "", "", presigned=False)
    return FormAuth(context, frozenset({"awsaccesskeyid", "signature", "policy", "file"}))


PENDING = AuthContext("", PayloadMode.UNSIGNED, None, b"", "", "", "", presigned=False)
"""The identity of a form upload until its fields are read: nobody yet (see authenticate_form)."""
