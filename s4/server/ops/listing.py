"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from s4.digits import decimal
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.xml import document, element, iso8601, optional, owner_xml, url_encode_key
from s4.store import ListPage, ObjectInfo

XML = "application/xml"
MAX_KEYS = 1000


def max_keys_of(req: S3Request) -> int:
    count = decimal(req.query.get("max-keys", str(MAX_KEYS)))
    if count is None:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range")
    return min(count, MAX_KEYS)


def encoder(req: S3Request):
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return lambda v: v
    if encoding != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
    return url_encode_key


def _contents(objects: list[ObjectInfo], encode, owner: str | None) -> str:
    return "".join(
        "<Contents>"
        + element("Key", encode(o.key))
        + element("LastModified", iso8601(o.last_modified))
        + element("ETag", o.quoted_etag)
        + element("Size", o.size)
        + element("StorageClass", "STANDARD")
        + (owner_xml(owner) if owner else "")
        + "</Contents>"
        for o in objects
    )


def _prefixes(page: ListPage, encode) -> str:
    return "".join(f"<CommonPrefixes>{element('Prefix', encode(p))}</CommonPrefixes>" for p in page.common_prefixes)


async def list_objects_v1(req: S3Request) -> web.Response:
    encode = encoder(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter") or None
    marker = req.query.get("marker") or None
    max_keys = max_keys_of(req)
    page = await req.store.list_objects(req.bucket, prefix, delimiter, marker, max_keys)
    parts = [
        element("Name", req.bucket),
        element("Prefix", prefix),  # v1 never encodes Prefix (S3 does not, and botocore does not decode it)
        element("Marker", encode(marker or "")),
        element("MaxKeys", max_keys),
        optional("Delimiter", encode(delimiter) if delimiter else None),
        element("IsTruncated", str(page.is_truncated).lower()),
        optional("NextMarker", encode(page.next_marker) if page.is_truncated and delimiter else None),
        optional("EncodingType", req.query.get("encoding-type")),
        _contents(list(page.objects), encode, req.bucket_owner_id),
        _prefixes(page, encode),
    ]
    return web.Response(body=document("ListBucketResult", parts), content_type=XML)


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode_token(token: str) -> str:
    """The name a token of encode_token stands for; anything else is refused (base64's own decoder
    skips characters outside its alphabet, so garbage read as an empty name: a listing from the start)."""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


async def list_objects_v2(req: S3Request) -> web.Response:
    encode = encoder(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter") or None
    token = req.query.get("continuation-token")
    start_after = req.query.get("start-after") or None
    max_keys = max_keys_of(req)
    after = decode_token(token) if token is not None else start_after
    page = await req.store.list_objects(req.bucket, prefix, delimiter, after, max_keys)
    fetch_owner = req.query.get("fetch-owner", "false").lower() == "true"
    key_count = len(page.objects) + len(page.common_prefixes)
    parts = [
        element("Name", req.bucket),
        element("Prefix", encode(prefix)),
        optional("StartAfter", encode(start_after) if start_after else None),
        optional("ContinuationToken", token),
        element("KeyCount", key_count),
        element("MaxKeys", max_keys),
        optional("Delimiter", encode(delimiter) if delimiter else None),
        element("IsTruncated", str(page.is_truncated).lower()),
        optional(
            "NextContinuationToken",
            encode_token(page.next_marker) if page.is_truncated and page.next_marker else None,
        ),
        optional("EncodingType", req.query.get("encoding-type")),
        _contents(list(page.objects), encode, req.bucket_owner_id if fetch_owner else None),
        _prefixes(page, encode),
    ]
    return web.Response(body=document("ListBucketResult", parts), content_type=XML)
