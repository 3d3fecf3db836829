"""HTTP details of S3 objects: ranges, dates, conditional requests and object headers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from email.utils import format_datetime, parsedate_to_datetime

from s4.server.errors import S3Error
from s4.store import ByteRange, ObjectAttributes, ObjectInfo, WriteCondition
from s4.store.metadata_words import encoded_word, header_safe

STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
MAX_METADATA_BYTES = 2048
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_RANGE_HUGE = 10**20
"""Stands in for any range number of more digits: it is past the end of every object, and int()
refuses strings of more than 4300 digits."""


def http_date(when: dt.datetime) -> str:
    return format_datetime(when.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    # OverflowError: a numeric field too long for a C long ('Mon, 23 Nov 2026 4444...44:10:00').
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_range(value: str | None) -> ByteRange | None:
    """A single ``bytes=`` range; anything S3 would ignore (several ranges, junk) is ignored."""
    if not value:
        return None
    match = _RANGE.fullmatch(value.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        return ByteRange(suffix=_range_number(last))
    if last and _magnitude(last) < _magnitude(first):
        return None
    return ByteRange(start=_range_number(first), end=_range_number(last) if last else None)


def _magnitude(digits: str) -> tuple[int, str]:
    """Orders decimal strings of any length exactly, without converting them."""
    significant = digits.lstrip("0") or "0"
    return len(significant), significant


def _range_number(digits: str) -> int:
    length, significant = _magnitude(digits)
    return int(significant) if length <= 20 else _RANGE_HUGE


def attributes_from_headers(headers: Mapping[str, str]) -> ObjectAttributes:
    """Content-Type, the stored standard headers and x-amz-meta-* of a PUT, Copy (REPLACE) or Create."""
    metadata = {}
    size = 0
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("x-amz-meta-"):
            key = lowered[len("x-amz-meta-") :]
            metadata[key] = value
            # Header bytes that were not UTF-8 arrive as lone surrogates; count them as the bytes they were.
            size += len(key) + len(value.encode("utf-8", errors="surrogateescape"))
    if size > MAX_METADATA_BYTES:
        raise S3Error(
            "MetadataTooLarge",
            f"Your metadata headers exceed the maximum allowed metadata size of {MAX_METADATA_BYTES} bytes",
        )
    stored = {h: headers[h] for h in STORED_HEADERS if h in headers}
    encoding = stored_content_encoding(stored.pop("content-encoding", None))
    if encoding:
        stored["content-encoding"] = encoding
    return ObjectAttributes(content_type=headers.get("Content-Type"), metadata=metadata, headers=stored)


def stored_content_encoding(value: str | None) -> str | None:
    """The Content-Encoding an object keeps: the client's, less ``aws-chunked``, which only framed the
    request body (``aws-chunked,gzip`` keeps ``gzip``, as S3 does). The body itself is never decoded."""
    if value is None:
        return None
    tokens = [token.strip() for token in value.split(",")]
    if "aws-chunked" not in (token.lower() for token in tokens):
        return value  # byte for byte, as the client wrote it
    return ",".join(token for token in tokens if token and token.lower() != "aws-chunked") or None


def object_headers(info: ObjectInfo) -> dict[str, str]:
    """The headers GET and HEAD answer for an object: what it was stored with, each value as the client
    sent it where a header can carry that; bytes that were not UTF-8 (aiohttp's writer dropped them,
    silently) or control characters (a value decoded from an upstream's encoded word may hold any) go
    as one RFC 2047 encoded word of the exact bytes, the form S3 answers for such metadata."""
    attrs = info.attributes
    out = {
        "ETag": info.quoted_etag,
        "Last-Modified": http_date(info.last_modified),
        "Content-Type": _carried(attrs.content_type or DEFAULT_CONTENT_TYPE),
        "Accept-Ranges": "bytes",
    }
    for name, value in attrs.headers.items():
        out["-".join(p.capitalize() for p in name.split("-"))] = _carried(value)
    for key, value in attrs.metadata.items():
        out[f"x-amz-meta-{key}"] = _carried(value)
    return out


def _carried(value: str) -> str:
    return value if header_safe(value) else encoded_word(value)


def check_conditions(info: ObjectInfo, headers: Mapping[str, str], prefix: str = "") -> None:
    """RFC 7232 as S3 applies it: 412 PreconditionFailed, or 304 NotModified for reads.

    ``prefix`` is ``x-amz-copy-source-`` for CopyObject, where every failure is a 412.
    """
    etag = info.etag
    last_modified = info.last_modified.replace(microsecond=0)
    if_match = headers.get(prefix + "if-match")
    if_none_match = headers.get(prefix + "if-none-match")
    since = parse_http_date(headers.get(prefix + "if-modified-since"))
    unmodified = parse_http_date(headers.get(prefix + "if-unmodified-since"))
    if if_match is not None and not _etag_in(etag, if_match):
        raise _precondition(prefix)
    if if_match is None and unmodified is not None and last_modified > unmodified:
        raise _precondition(prefix)
    if if_none_match is not None and _etag_in(etag, if_none_match):
        raise _precondition(prefix) if prefix else S3Error("NotModified", "Not Modified")
    if if_none_match is None and since is not None and last_modified <= since:
        raise _precondition(prefix) if prefix else S3Error("NotModified", "Not Modified")


def _etag_in(etag: str, header: str) -> bool:
    candidates = [c.strip().removeprefix("W/").strip('"') for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _precondition(prefix: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def write_condition(headers: Mapping[str, str], *, none_match_etag: bool = False) -> WriteCondition | None:
    """``If-None-Match: *`` and ``If-Match: <etag>`` on a write (PutObject, CompleteMultipartUpload, the
    destination of CopyObject), as S3 takes them: If-None-Match accepts only ``*`` (501 otherwise), except
    where ``none_match_etag`` (CompleteMultipartUpload) takes ``If-None-Match: <etag>`` too, as ceph's
    s3-tests expect: write unless the current object has that ETag."""
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    if if_match is None and if_none_match is None:
        return None
    etag = None if if_match is None else if_match.strip().removeprefix("W/").strip('"')
    if if_none_match is None or if_none_match.strip() == "*":
        return WriteCondition(if_match=etag, if_none_match=if_none_match is not None)
    if not none_match_etag:
        raise S3Error(
            "NotImplemented", "A header you provided implies functionality that is not implemented", status=501
        )
    other = if_none_match.strip().removeprefix("W/").strip('"')
    return WriteCondition(if_match=etag, if_none_match_etag=other)


def part_range(info: ObjectInfo, part_number: int) -> ByteRange:
    """The byte range of part ``part_number``; a simple object is its own part 1."""
    sizes = info.part_sizes or (info.size,)
    if not 1 <= part_number <= len(sizes):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
    start = sum(sizes[: part_number - 1])
    if sizes[part_number - 1] == 0:
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
    return ByteRange(start=start, end=start + sizes[part_number - 1] - 1)
