"""S3 errors: the code, its HTTP status, and the XML body every S3 client understands."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

STATUS_BY_CODE: dict[str, int] = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "ConditionalRequestConflict": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "ExpiredToken": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MaxMessageLengthExceeded": 400,
    "MetadataTooLarge": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "MissingSecurityHeader": 400,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NotImplemented": 501,
    "NotModified": 304,
    "PreconditionFailed": 412,
    "RequestTimeout": 400,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
    "XAmzContentSHA256Mismatch": 400,
    "XAmzContentChecksumMismatch": 400,
    "XMinioStorageFull": 507,
}


class S3Error(Exception):
    """An error answered as S3 answers it: status, Code and Message in an XML body."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        resource: str | None = None,
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.resource = resource
        self.extra = extra or {}
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_xml(self, request_id: str, resource: str | None = None) -> bytes:
        fields = [("Code", self.code), ("Message", self.message)]
        fields.extend(self.extra.items())
        if self.resource or resource:
            fields.append(("Resource", self.resource or resource or ""))
        fields.append(("RequestId", request_id))
        inner = "".join(f"<{k}>{escape(_xml_text(v))}</{k}>" for k, v in fields)
        # Details echo request bytes (CanonicalRequest, ArgumentValue) that may not be UTF-8: an error
        # page must never fail to render, so undecodable characters become U+FFFD.
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode("utf-8", "replace")


_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    """Characters XML 1.0 cannot carry at all (control characters) would make the document unparseable."""
    return _NOT_XML_CHARS.sub("\ufffd", value)
