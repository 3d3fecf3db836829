"""GetObject, HeadObject, PutObject, DeleteObject, DeleteObjects, CopyObject."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, unquote

from aiohttp import web

from s4.digits import decimal
from s4.server.access.actions import VERSIONED
from s4.server.access.authorize import allowed
from s4.server.body.checksums import declares_body_checksum
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.http import (
    RESPONSE_OVERRIDES,
    attributes_from_headers,
    check_conditions,
    object_headers,
    parse_range,
    part_range,
    write_condition,
)
from s4.server.limits import client_reads_within, write_within
from s4.server.ops.checksums import checksum_headers, kind_of
from s4.server.ops.documents.object_acl import keep_upload_acl, upload_acl
from s4.server.ops.tagging import tags_from_header
from s4.server.ops.versions import requested_version, version_headers, written_version_headers
from s4.server.xml import document, element, iso8601, parse_delete_entries
from s4.store import ByteRange, ObjectInfo, ObjectStream, StoreError

XML = "application/xml"
_log = logging.getLogger(__name__)


def _requested_range(req: S3Request, info: ObjectInfo | None = None) -> tuple[ByteRange | None, int | None]:
    """The byte range asked for by Range or partNumber (never both), and the part number."""
    raw_part = req.query.get("partNumber")
    byte_range = parse_range(req.headers.get("Range"))
    if raw_part is None:
        return byte_range, None
    if byte_range is not None:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    part_number = decimal(raw_part)
    if part_number is None or not 1 <= part_number <= 10_000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
    return (part_range(info, part_number) if info is not None else None), part_number


def _read_headers(req: S3Request, info: ObjectInfo, selected: tuple[int, int] | None, part: int | None) -> dict:
    headers = object_headers(info)
    for param, header in RESPONSE_OVERRIDES.items():
        if param in req.query:
            headers[header] = req.query[param]
    if selected is not None:
        first, last = selected
        headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
    if part is not None:
        headers["x-amz-mp-parts-count"] = str(len(info.part_sizes or (info.size,)))
    if info.tag_count:
        headers["x-amz-tagging-count"] = str(info.tag_count)
    headers.update(version_headers(info.version_id))
    if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        headers.update(checksum_headers(_read_checksums(info, selected, part), kind_of(info.attributes.checksums)))
    return headers


def _read_checksums(info: ObjectInfo, selected: tuple[int, int] | None, part: int | None) -> dict[str, str]:
    """The checksums of what is read: the object's for all of it (a simple object's part 1 is all of it),
    a part's for a part of a multipart object made with a checksum (when the store kept the parts'), and
    none for any other range: a checksum only describes the bytes it was made of."""
    checksums = info.attributes.checksums
    if part is not None and info.part_sizes:
        if not checksums or info.part_checksums is None or part > len(info.part_checksums):
            return {}
        return {next(iter(checksums)): info.part_checksums[part - 1]}
    return dict(checksums) if selected is None or part is not None else {}


PART_READ_ATTEMPTS = 3
"""Reads of a part planned from a look at the object, each foiled by a write of the key, before the part
is cut from one read of the whole object."""


async def head_object(req: S3Request) -> web.StreamResponse:
    info = await req.store.head_object(req.bucket, req.key, **_version_of(req))
    byte_range, part = _requested_range(req, info)
    selected = byte_range.resolve(info.size) if byte_range is not None else None
    return _read_response(req, info, selected, part)


def _version_of(req: S3Request) -> dict[str, str]:
    """The ``version_id`` keyword of a store call for the request's ``versionId`` (none: the current one)."""
    version = requested_version(req)
    return {} if version is None else {"version_id": version}


async def get_object(req: S3Request) -> web.StreamResponse:
    version = _version_of(req)
    byte_range, part = _requested_range(req)
    if part is None:
        stream = await req.store.get_object(req.bucket, req.key, byte_range, **version)
    else:
        stream = await _part_of_one_object(req, part, version)
    try:
        response = _read_response(req, stream.info, stream.range, part)
        if response.status == 304:
            return response
        await response.prepare(req.http)
        # A client that stops reading would block the writer's drain forever: bounded, it is cut.
        timeout = req.config.limits.idle_timeout
        async for chunk in _exactly(stream.body, response.content_length):
            await write_within(req.http, response, chunk, timeout)
        async with client_reads_within(req.http, timeout):
            await response.write_eof()
        return response
    finally:
        await stream.aclose()


async def _part_of_one_object(req: S3Request, part: int, version: dict[str, str]) -> ObjectStream:
    """Part ``part`` of the object, read at the offsets of that very object: where the part lies is known
    from a look at the object first, and another writer's object may be there by the read (its bytes at
    the first one's offsets, under its own ETag and checksum). The read is then planned again from what
    it found; a key replaced every time is read whole by one GET and the part cut from it (which costs
    more, and never fails), as S3 reads a part of one object."""
    info = await req.store.head_object(req.bucket, req.key, **version)
    for _ in range(PART_READ_ATTEMPTS):
        stream = await req.store.get_object(req.bucket, req.key, part_range(info, part), **version)
        if _same_object(stream.info, info):
            return stream
        await stream.aclose()
        info = stream.info  # the object the read found: its part, at its offsets, next
    whole = await req.store.get_object(req.bucket, req.key, **version)
    try:
        first, last = part_range(whole.info, part).resolve(whole.info.size)
    except BaseException:
        await whole.aclose()
        raise
    return ObjectStream(whole.info, _Cut(whole, first, last), (first, last))


class _Cut:
    """Bytes ``first`` to ``last`` of a whole object's body. A class, not an async generator: closed before
    its first item (a 304 or 412 answered from the head), a generator's ``finally`` never runs, and the
    whole read would stay open."""

    def __init__(self, whole: ObjectStream, first: int, last: int) -> None:
        self._whole = whole
        self._pieces = self._cut(first, last)

    async def _cut(self, first: int, last: int) -> AsyncIterator[bytes]:
        position = 0
        async for chunk in self._whole.body:
            end = position + len(chunk)
            if end > first:
                yield chunk[max(first - position, 0) : last + 1 - position]
            position = end
            if position > last:
                await self._whole.aclose()
                return

    def __aiter__(self) -> _Cut:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._pieces)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        await self._pieces.aclose()
        await self._whole.aclose()


def _same_object(found: ObjectInfo, planned: ObjectInfo) -> bool:
    return (found.etag, found.size, found.version_id, found.part_sizes) == (
        planned.etag,
        planned.size,
        planned.version_id,
        planned.part_sizes,
    )


async def _exactly(body: AsyncIterator[bytes], length: int | None) -> AsyncIterator[bytes]:
    """The body, failing (which cuts the response) unless it holds exactly the ``length`` announced.

    A store body that ends short would otherwise leave the client waiting on an open
    connection for bytes that never come, and then read the next response as the rest.
    """
    sent = 0
    async for chunk in body:
        sent += len(chunk)
        if length is not None and sent > length:
            raise StoreError("InternalError", f"the object's body is longer than the {length} bytes announced")
        yield chunk
    if length is not None and sent < length:
        raise StoreError("InternalError", f"the object's body ended after {sent} of the {length} bytes announced")


def _read_response(
    req: S3Request, info: ObjectInfo, selected: tuple[int, int] | None, part: int | None
) -> web.StreamResponse:
    """The response head GET and HEAD share: conditions (304/412), headers, status and length."""
    try:
        check_conditions(info, req.headers)
    except S3Error as exc:
        if exc.code == "NotModified":
            return _not_modified(info)
        raise
    headers = _read_headers(req, info, selected, part)
    simple_part = part is not None and not info.part_sizes  # part 1 of a simple object is all of it
    if simple_part:
        headers.pop("Content-Range", None)
    status = 200 if selected is None or simple_part else 206
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = info.size if selected is None else selected[1] - selected[0] + 1
    return response


def _not_modified(info: ObjectInfo) -> web.Response:
    return web.Response(
        status=304, headers={"ETag": info.quoted_etag, "Last-Modified": object_headers(info)["Last-Modified"]}
    )


async def put_object(req: S3Request) -> web.Response:
    attributes = attributes_from_headers(req.headers)
    condition = write_condition(req.headers)
    tags = tags_from_header(req.headers)  # refused before any byte of the body is read
    acl = await upload_acl(req)  # likewise
    body = req.verified_body()
    # The body fills in its verified checksums before it ends; the store reads attributes after that.
    attributes = dataclasses.replace(attributes, checksums=body.checksums)
    info = await req.store.put_object(req.bucket, req.key, body, attributes, condition, tags=tags)
    await keep_upload_acl(req, acl, info)
    headers = {"ETag": info.quoted_etag}
    headers.update({f"x-amz-checksum-{a}": v for a, v in body.checksums.items()})
    headers.update(written_version_headers(info.version_id))
    return web.Response(status=200, headers=headers)


async def delete_object(req: S3Request) -> web.Response:
    result = await req.store.delete_object(req.bucket, req.key, **_version_of(req))
    return web.Response(status=204, headers=version_headers(result.version_id, result.delete_marker))


async def delete_objects(req: S3Request) -> web.Response:
    # S3 requires a digest of the document (SDKs send Content-MD5 or, since 2025, x-amz-checksum-crc32).
    if not declares_body_checksum(req.headers):
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    quiet, requested = parse_delete_entries(await req.read_small_body())
    await req.store.head_bucket(req.bucket)
    entries = []
    for key, version in requested:
        named = element("Key", key) + ("" if version is None else element("VersionId", version))
        # Each entry is its own DeleteObject: of a version (s3:DeleteObjectVersion) when it names one.
        action, extra = (
            ("s3:DeleteObject", None) if version is None else (VERSIONED["s3:DeleteObject"], {"s3:versionid": version})
        )
        if not await allowed(req, action, req.bucket, key, extra):
            denied = element("Code", "AccessDenied") + element("Message", "Access Denied")
            entries.append(f"<Error>{named}{denied}</Error>")
            continue
        try:
            result = await req.store.delete_object(
                req.bucket, key, **({} if version is None else {"version_id": version})
            )
        except StoreError as exc:
            entries.append(f"<Error>{named}{element('Code', exc.code)}{element('Message', exc.message)}</Error>")
            continue
        if not quiet:
            marker = ""
            if result.delete_marker:  # made one, or removed one (then its id is the VersionId asked for)
                marker = element("DeleteMarker", "true")
                if result.version_id is not None:
                    marker += element("DeleteMarkerVersionId", result.version_id)
            entries.append(f"<Deleted>{named}{marker}</Deleted>")
    return web.Response(body=document("DeleteResult", entries), content_type=XML)


def parse_copy_source(value: str | None) -> tuple[str, str, str | None]:
    """``x-amz-copy-source``: the source bucket, key and version (``?versionId=``; None: the current one)."""
    if not value:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    path, _, query = value.partition("?")
    versions = parse_qs(query, keep_blank_values=True).get("versionId")
    version = None if versions is None else versions[0]
    if version is not None and not version:
        raise S3Error("InvalidArgument", "Version id cannot be the empty string")
    source = unquote(path).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    return bucket, key, version


async def copy_object(req: S3Request) -> web.Response:
    src_bucket, src_key, src_version = parse_copy_source(req.headers.get("x-amz-copy-source"))
    directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.")
    tagging_directive = req.headers.get("x-amz-tagging-directive", "COPY").upper()
    if tagging_directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown tagging directive.")
    # COPY keeps the source's tags (whatever x-amz-tagging says); REPLACE takes x-amz-tagging, none without it.
    tags = (tags_from_header(req.headers) or {}) if tagging_directive == "REPLACE" else None
    acl = await upload_acl(req)  # x-amz-acl / x-amz-grant-*: a copy gets its own ACL, not its source's
    source_version = {} if src_version is None else {"version_id": src_version}
    source = await req.store.head_object(src_bucket, src_key, **source_version)
    check_conditions(source, req.headers, prefix="x-amz-copy-source-")
    if (src_bucket, src_key) == (req.bucket, req.key) and directive == "COPY" and src_version is None:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the"
            " object's metadata, storage class, website redirect location or encryption attributes.",
        )
    attributes = attributes_from_headers(req.headers) if directive == "REPLACE" else None
    condition = write_condition(req.headers)  # If-Match / If-None-Match name the destination
    await req.read_small_body(limit=0)  # no body, but a signed empty payload is still checked
    copy_version = {} if src_version is None else {"src_version_id": src_version}
    info = await req.store.copy_object(
        src_bucket,
        src_key,
        req.bucket,
        req.key,
        attributes,
        condition,
        tags=tags,
        source_check=lambda copied: check_conditions(copied, req.headers, prefix="x-amz-copy-source-"),
        **copy_version,
    )
    await keep_upload_acl(req, acl, info)
    body = document(
        "CopyObjectResult", [element("LastModified", iso8601(info.last_modified)), element("ETag", info.quoted_etag)]
    )
    headers = written_version_headers(info.version_id)
    if source.version_id is not None:
        headers["x-amz-copy-source-version-id"] = source.version_id
    return web.Response(body=body, content_type=XML, headers=headers)
