"""Object tagging: Put/Get/DeleteObjectTagging, and the ``x-amz-tagging`` header that PutObject,
CreateMultipartUpload and CopyObject take, checked as S3 checks them.

S3's rules for an object's tags: at most 10; keys unique, 1 to 128 characters, none starting
with ``aws:`` (AWS's own); values 0 to 256 characters; both only Unicode letters, numbers and
spaces and ``_ . : / = + - @``. Lengths count UTF-16 code units, as S3 stores tags ("a character
may take two positions"). A broken rule is 400 InvalidTag, except the count: more than 10 tags is
400 BadRequest "Object tags cannot be greater than 10", which is what S3 answers (ceph s3-tests
expects InvalidTag there). A request document that is no ``Tagging`` is MalformedXML; a header
that is no URL query, or names a key twice, is InvalidArgument.

Tags are object state beside the bytes: the store changes them in place (PutObjectTagging never
rewrites an object); ``versionId`` names the version whose tags are read or changed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

from aiohttp import web

from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.versions import requested_version, version_headers
from s4.server.xml import children, document, element, local_name, malformed_xml, parse_xml

XML = "application/xml"
MAX_TAGS = 10
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
RESERVED_PREFIX = "aws:"
_SYMBOLS = frozenset(" _.:/=+-@")


def _allowed(text: str) -> bool:
    """Letters, numbers, separators (``\\p{L}\\p{Z}\\p{N}``) and S3's few symbols."""
    return all(c in _SYMBOLS or unicodedata.category(c)[0] in "LZN" for c in text)


def _length(text: str) -> int:
    """Length in UTF-16 code units, S3's measure: a character outside the BMP counts two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidTag", message)


def _bad_header() -> S3Error:
    return S3Error(
        "InvalidArgument",
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without"
        " tag name duplicates.",
    )


def check_tags(pairs: Iterable[tuple[str, str]], duplicate: S3Error) -> dict[str, str]:
    """The tag set, once every tag passed S3's rules (each tag first, then the count);
    ``duplicate`` is what a repeated key answers, which depends on where the tags came from."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not key or not _allowed(key):
            raise _invalid("The TagKey you have provided is invalid")
        if _length(key) > MAX_KEY_LENGTH:
            raise _invalid(f"The TagKey you have provided is too long, max {MAX_KEY_LENGTH}")
        if key.lower().startswith(RESERVED_PREFIX):
            raise _invalid(f"Your TagKey cannot be prefixed with {RESERVED_PREFIX}")
        if _length(value) > MAX_VALUE_LENGTH:
            raise _invalid(f"The TagValue you have provided is too long, max {MAX_VALUE_LENGTH}")
        if not _allowed(value):
            raise _invalid("The TagValue you have provided is invalid")
        if key in tags:
            raise duplicate
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise S3Error("BadRequest", f"Object tags cannot be greater than {MAX_TAGS}")
    return tags


def tags_from_header(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The tags of ``x-amz-tagging`` (``k1=v1&k2=v2``, URL-encoded; a key without ``=`` has the
    empty value), or None when the request has no such header."""
    raw = headers.get("x-amz-tagging")
    if raw is None:
        return None
    pairs = []
    for piece in raw.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "=" in value:
            raise _bad_header()
        try:
            pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise _bad_header() from None
    return check_tags(pairs, _bad_header())


def tags_from_document(body: bytes) -> dict[str, str]:
    """The tags of a ``<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>`` document."""
    root = parse_xml(body)
    tag_sets = children(root, "TagSet")
    if local_name(root.tag) != "Tagging" or len(tag_sets) != 1:
        raise malformed_xml()
    pairs = []
    for tag in tag_sets[0]:
        keys, values = children(tag, "Key"), children(tag, "Value")
        if local_name(tag.tag) != "Tag" or len(keys) != 1 or len(values) != 1:
            raise malformed_xml()
        pairs.append((keys[0].text or "", values[0].text or ""))
    return check_tags(pairs, _invalid("Cannot provide multiple Tags with the same key"))


def tagging_document(tags: Mapping[str, str]) -> bytes:
    """GetObjectTagging's answer: the tags in key order, as S3 lists them."""
    tag_set = "".join(f"<Tag>{element('Key', key)}{element('Value', tags[key])}</Tag>" for key in sorted(tags))
    return document("Tagging", [f"<TagSet>{tag_set}</TagSet>"])


def _version(req: S3Request) -> tuple[dict[str, str], dict[str, str]]:
    """The ``version_id`` keyword for the store, and the ``x-amz-version-id`` answering it."""
    version = requested_version(req)
    return ({}, {}) if version is None else ({"version_id": version}, version_headers(version))


async def get_object_tagging(req: S3Request) -> web.Response:
    version, headers = _version(req)
    tags = await req.store.get_object_tagging(req.bucket, req.key, **version)
    return web.Response(body=tagging_document(tags), content_type=XML, headers=headers)


async def put_object_tagging(req: S3Request) -> web.Response:
    """Replaces the whole tag set (an empty TagSet removes it); the object's bytes, ETag and
    Last-Modified stay."""
    version, headers = _version(req)
    tags = tags_from_document(await req.read_small_body())
    await req.store.put_object_tagging(req.bucket, req.key, tags, **version)
    return web.Response(status=200, headers=headers)


async def delete_object_tagging(req: S3Request) -> web.Response:
    version, headers = _version(req)
    await req.store.put_object_tagging(req.bucket, req.key, {}, **version)
    return web.Response(status=204, headers=headers)
