"""What an upstream S3 failure means to the gateway's client, as a StoreError.

The client must see its own mistakes with S3's own codes (a missing key, a bad part
list), and the gateway's trouble with the upstream (unreachable, throttling, refused
credentials) as what it is, never as something the client did wrong.
"""

from __future__ import annotations

import asyncio

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from s4.store.base import StoreError

PASSED_THROUGH = frozenset(
    {
        "NoSuchBucket",
        "NoSuchKey",
        "NoSuchVersion",
        "NoSuchUpload",
        "AccessDenied",
        "BucketAlreadyOwnedByYou",
        "BucketAlreadyExists",
        "BucketNotEmpty",
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "EntityTooLarge",
        "InvalidRange",
        "PreconditionFailed",
        "NotModified",
        "InvalidArgument",
        "InvalidBucketName",
        "KeyTooLongError",
        "MetadataTooLarge",
        "InvalidRequest",
        "NotImplemented",
        "InvalidTag",  # a tag the gateway accepts and a stricter upstream does not (SeaweedFS counts bytes)
    }
)
"""Codes that say something about the client's own request: the client gets them as they are."""

THROTTLED = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "RequestThrottled"}
)
STORAGE_FULL = frozenset({"XMinioStorageFull", "InsufficientStorage"})
"""An upstream out of room (MinIO's codes; 507 from any): the client's 507, as the embedded store answers."""
REFUSED_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "RequestTimeTooSkewed"}
)
_STATUS_CODES = {
    304: "NotModified",
    403: "AccessDenied",
    404: "NoSuchKey",
    405: "MethodNotAllowed",
    412: "PreconditionFailed",
    416: "InvalidRange",
    507: "XMinioStorageFull",
    503: "SlowDown",
}
"""Answers without a body (HEAD) carry only their status."""

UNREACHABLE = (
    ConnectionError,  # botocore's: refused, reset, connect and read timeouts, closed mid-response
    HTTPClientError,
    ResponseStreamingError,
    ReadTimeoutError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


def unreachable(endpoint: str, detail: object) -> StoreError:
    return StoreError("ServiceUnavailable", f"upstream S3 at {endpoint} is unreachable: {detail}")


def translate(exc: BaseException, endpoint: str) -> StoreError:
    """The StoreError for an exception raised by an upstream call (or by reading its body)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, endpoint)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StoreError("InternalError", f"no usable credentials for the upstream S3 at {endpoint}: {exc}")
    if isinstance(exc, ParamValidationError):
        return StoreError("InvalidArgument", f"the upstream S3 client refused the request: {exc}")
    if isinstance(exc, UNREACHABLE):
        return unreachable(endpoint, exc or type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        return StoreError("InternalError", f"upstream error: {exc}")
    return StoreError("InternalError", f"upstream error: {type(exc).__name__}: {exc}")


def _client_error(exc: ClientError, endpoint: str) -> StoreError:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "") or str(exc)
    if code.isdigit() or not code:
        code = _STATUS_CODES.get(status or 0, code)
    if code in THROTTLED or status == 503:
        return StoreError("SlowDown", f"the upstream S3 is throttling requests ({code or status}): {message}")
    if status in (500, 502, 504):
        # The upstream's own failure (SeaweedFS answers 500 while its filer is down), not the client's request:
        # 503 ServiceUnavailable, which clients retry, as when the upstream cannot be reached at all.
        return StoreError("ServiceUnavailable", f"the upstream S3 at {endpoint} failed ({code or status}): {message}")
    if code in STORAGE_FULL or status == 507:
        return StoreError.storage_full()
    if code in REFUSED_CREDENTIALS:
        return StoreError("AccessDenied", f"the upstream S3 at {endpoint} refused the gateway's credentials ({code})")
    # A 404 for a key whose current version is a delete marker, a 405 for GET/HEAD of a delete marker's id:
    # S3 says so in headers, which the client gets too (another 405 is the gateway's trouble, not the client's).
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    delete_marker = headers.get("x-amz-delete-marker", "").lower() == "true"
    if code in PASSED_THROUGH or (code == "MethodNotAllowed" and delete_marker):
        version_id = headers.get("x-amz-version-id") if delete_marker else None
        return StoreError(code, message, delete_marker=delete_marker, version_id=version_id)
    return StoreError("InternalError", f"upstream error: {code or status}: {message}")
