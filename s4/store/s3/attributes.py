"""ObjectAttributes to and from an upstream S3 object's headers.

S3 keeps Content-Type, the standard headers and user metadata itself. Two things it has
no place for travel as user metadata (our extension): verified checksums as
``s4-checksum-<alg>`` (S3 would recompute its own only on request), and an Expires value
that is not an HTTP date (S3's SDKs send Expires as a timestamp) as ``s4-expires``.

User metadata values travel upstream as ASCII (see s4.store.metadata_words): botocore refuses any
other character, and S3 would hand a non-ASCII value back RFC 2047-encoded with its bytes read as
Latin-1. Read back, they are decoded, so a client gets the bytes it sent, as from the embedded store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

from s4.store.base import ObjectAttributes
from s4.store.metadata_words import decode_metadata_value, encode_metadata_value, encoded_word, header_safe

CHECKSUM_PREFIX = "s4-checksum-"
EXPIRES_KEY = "s4-expires"
HEADER_PREFIX = "s4-header-"
"""A stored header (or the Content-Type) whose value no HTTP client can send as it is (bytes that were not
UTF-8, control characters) travels as metadata ``s4-header-<name>``, one encoded word of its bytes."""
_HEADER_PARAMS = {
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
}
STORED_HEADERS = (*_HEADER_PARAMS, "expires")


def _http_date(value: str) -> dt.datetime | None:
    """The date when ``value`` is exactly how S3's client would write it back, else None."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    parsed = parsed.astimezone(dt.UTC)
    return parsed if format_datetime(parsed, usegmt=True) == value else None


def to_params(attributes: ObjectAttributes) -> dict[str, Any]:
    """PutObject / CreateMultipartUpload / CopyObject (REPLACE) parameters for ``attributes``."""
    params: dict[str, Any] = {}
    metadata = {k.lower(): encode_metadata_value(v) for k, v in attributes.metadata.items()}
    if attributes.content_type:
        if header_safe(attributes.content_type):
            params["ContentType"] = attributes.content_type
        else:
            metadata[HEADER_PREFIX + "content-type"] = encoded_word(attributes.content_type)
    for header, param in _HEADER_PARAMS.items():
        value = attributes.headers.get(header)
        if value and header_safe(value):
            params[param] = value
        elif value:
            metadata[HEADER_PREFIX + header] = encoded_word(value)
    expires = attributes.headers.get("expires")
    if expires:
        when = _http_date(expires)
        if when is None:
            metadata[EXPIRES_KEY] = encode_metadata_value(expires)
        else:
            params["Expires"] = when
    for algorithm, value in attributes.checksums.items():
        metadata[CHECKSUM_PREFIX + algorithm.lower()] = value
    params["Metadata"] = metadata
    return params


def from_response(answer: Mapping[str, Any]) -> ObjectAttributes:
    """The attributes a HeadObject or GetObject answer carries."""
    raw = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    headers = {h: raw[h] for h in STORED_HEADERS if raw.get(h)}
    metadata: dict[str, str] = {}
    checksums: dict[str, str] = {}
    carried: dict[str, str] = {}
    for key, value in (answer.get("Metadata") or {}).items():
        key = key.lower()
        if key.startswith(CHECKSUM_PREFIX):
            checksums[key[len(CHECKSUM_PREFIX) :]] = value
        elif key == EXPIRES_KEY:
            headers["expires"] = decode_metadata_value(value)
        elif key.startswith(HEADER_PREFIX):
            carried[key[len(HEADER_PREFIX) :]] = decode_metadata_value(value)
        else:
            metadata[key] = decode_metadata_value(value)
    content_type = carried.pop("content-type", None) or answer.get("ContentType") or None
    headers |= {name: value for name, value in carried.items() if name in STORED_HEADERS}
    return ObjectAttributes(content_type=content_type, metadata=metadata, headers=headers, checksums=checksums)


def tagging_header(tags: Mapping[str, str]) -> str:
    """Tags as S3's ``x-amz-tagging`` (``Tagging`` parameter): a URL query, every character but the
    unreserved ones percent-encoded, so a space or ``+`` in a tag reaches the upstream as itself."""
    return urlencode(list(tags.items()), quote_via=quote)


def tag_count(answer: Mapping[str, Any]) -> int:
    """How many tags a GetObject or HeadObject answer says the object has (``x-amz-tagging-count``;
    botocore parses it as TagCount for GetObject only)."""
    raw = answer.get("TagCount")
    if raw is None:
        raw = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-tagging-count")
    try:
        return max(int(raw or 0), 0)
    except (TypeError, ValueError):
        return 0
