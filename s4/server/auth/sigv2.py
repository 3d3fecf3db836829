"""Presigned URLs in the query-string form of Signature Version 2.

``aws s3 presign`` and boto3's ``generate_presigned_url`` still produce these for S3
unless the client is configured for ``s3v4``, and S3 accepts them; refusing them would
break the most common way of sharing an object. Only the query form is accepted:
every SDK signs ordinary requests with SigV4.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime

from s4.digits import decimal
from s4.server.errors import S3Error

# The query parameters that are part of the signed resource (S3's "sub-resources").
SIGNED_SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)


def is_presigned_v2(pairs: list[tuple[str, str]]) -> bool:
    keys = {key for key, _ in pairs}
    return {"AWSAccessKeyId", "Signature", "Expires"} <= keys


def string_to_sign(
    method: str, raw_path: str, pairs: list[tuple[str, str]], headers: dict[str, list[str]], expires: str
) -> str:
    """SigV2's string to sign; the resource is the path exactly as sent, plus signed sub-resources."""
    amz = sorted(
        (name, ",".join(v.strip() for v in values)) for name, values in headers.items() if name.startswith("x-amz-")
    )
    subresources = sorted((k, v) for k, v in pairs if k in SIGNED_SUBRESOURCES)
    resource = raw_path or "/"
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    lines = [
        method,
        ",".join(headers.get("content-md5", [])),
        ",".join(headers.get("content-type", [])),
        expires,
    ]
    return "\n".join(lines) + "\n" + "".join(f"{n}:{v}\n" for n, v in amz) + resource


def verify_presigned_v2(
    method: str,
    raw_path: str,
    pairs: list[tuple[str, str]],
    headers: dict[str, list[str]],
    secret_for: Callable[[str], str | None],
    now: datetime,
) -> str:
    """The access key id of a valid, unexpired SigV2 presigned request; S3Error otherwise."""
    params = dict(pairs)
    for name in ("AWSAccessKeyId", "Signature", "Expires"):
        # dict() keeps the last of repeats, a reader of the URL may take the first: refuse the ambiguity.
        if sum(1 for key, _ in pairs if key == name) > 1:
            raise S3Error("AuthorizationQueryParametersError", f"{name} must appear only once.")
    access_key_id, signature, expires = params["AWSAccessKeyId"], params["Signature"], params["Expires"]
    expires_at = decimal(expires, max_digits=20)
    if expires_at is None:
        raise S3Error("AuthorizationQueryParametersError", "Expires must be a number of seconds since the epoch")
    if now.timestamp() > expires_at:
        raise S3Error("AccessDenied", "Request has expired", extra={"Expires": expires})
    secret = secret_for(access_key_id)
    if secret is None:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            extra={"AWSAccessKeyId": access_key_id},
        )
    to_sign = string_to_sign(method, raw_path, pairs, headers, expires)
    # Query values and the path may hold lone surrogates (bytes that were not UTF-8): sign the bytes sent.
    raw = to_sign.encode("utf-8", errors="surrogateescape")
    expected = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", errors="surrogateescape")):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            extra={"AWSAccessKeyId": access_key_id, "StringToSign": to_sign, "SignatureProvided": signature},
        )
    return access_key_id
