"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

import asyncio

from aiohttp import web

from s4.digits import decimal
from s4.server.access.owners import forget_upload_owner, keep_upload_owner, upload_owner
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.http import attributes_from_headers, check_conditions, parse_range, write_condition
from s4.server.ops.checksums import (
    checksum_elements,
    checksum_headers,
    kind_of,
    object_checksums_requested,
    upload_checksum_elements,
    upload_checksum_headers,
)
from s4.server.ops.documents.acl import stored_acl
from s4.server.ops.documents.object_acl import keep_upload_acl, upload_acl
from s4.server.ops.objects import parse_copy_source
from s4.server.ops.tagging import tags_from_header
from s4.server.ops.versions import written_version_headers
from s4.server.xml import (
    document,
    element,
    iso8601,
    optional,
    owner_xml,
    parse_completion,
    url_encode_key,
)
from s4.store import ObjectInfo
from s4.store.base import CompletionChecksums
from s4.store.checksums import upload_checksum

XML = "application/xml"


def _part_number(req: S3Request) -> int:
    part_number = decimal(req.query.get("partNumber", ""))
    if part_number is None or not 1 <= part_number <= 10_000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
    return part_number


def _upload_id(req: S3Request) -> str:
    upload_id = req.query.get("uploadId", "")
    if not upload_id:
        raise S3Error("NoSuchUpload", "The specified upload does not exist.")
    return upload_id


async def create(req: S3Request) -> web.Response:
    attributes = attributes_from_headers(req.headers)
    tags = tags_from_header(req.headers)  # the object's at Complete
    checksum = upload_checksum(req.headers.get("x-amz-checksum-algorithm"), req.headers.get("x-amz-checksum-type"))
    acl = await upload_acl(req)  # the object's at Complete, as its tags
    upload_id = await req.store.create_multipart_upload(req.bucket, req.key, attributes, tags=tags, checksum=checksum)
    if acl is not None:  # another identity's upload, or an ACL asked for
        await keep_upload_owner(req.store, req.bucket, upload_id, req.owner_id, acl.to_xml())
    body = document(
        "InitiateMultipartUploadResult",
        [element("Bucket", req.bucket), element("Key", req.key), element("UploadId", upload_id)],
    )
    return web.Response(body=body, content_type=XML, headers=upload_checksum_headers(checksum))


async def upload_part(req: S3Request) -> web.Response:
    number = _part_number(req)
    body = req.verified_body()
    part = await req.store.upload_part(req.bucket, req.key, _upload_id(req), number, body)
    headers = {"ETag": f'"{part.etag}"'}
    headers.update(checksum_headers(part.checksums))  # the client's, or computed for the upload
    return web.Response(status=200, headers=headers)


async def upload_part_copy(req: S3Request) -> web.Response:
    number = _part_number(req)
    src_bucket, src_key, src_version = parse_copy_source(req.headers.get("x-amz-copy-source"))
    source = await req.store.head_object(
        src_bucket, src_key, **({} if src_version is None else {"version_id": src_version})
    )
    check_conditions(source, req.headers, prefix="x-amz-copy-source-")
    raw_range = req.headers.get("x-amz-copy-source-range")
    byte_range = parse_range(raw_range)
    if raw_range is not None:
        if byte_range is None or byte_range.start is None or byte_range.end is None:
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last")
        if byte_range.end >= source.size:
            raise S3Error("InvalidRange", "The requested range is not satisfiable")
    await req.read_small_body(limit=0)
    part = await req.store.upload_part_copy(
        req.bucket,
        req.key,
        _upload_id(req),
        number,
        src_bucket,
        src_key,
        byte_range,
        source_check=lambda copied: check_conditions(copied, req.headers, prefix="x-amz-copy-source-"),
        **({} if src_version is None else {"src_version_id": src_version}),
    )
    body = document(
        "CopyPartResult",
        [
            element("LastModified", iso8601(part.last_modified)),
            element("ETag", f'"{part.etag}"'),
            checksum_elements(part.checksums),
        ],
    )
    headers = {} if source.version_id is None else {"x-amz-copy-source-version-id": source.version_id}
    return web.Response(body=body, content_type=XML, headers=headers)


async def complete(req: S3Request) -> web.Response:
    condition = write_condition(req.headers, none_match_etag=True)
    # Its x-amz-checksum-<algorithm> names the object's checksum, not the document's.
    parts, listed = parse_completion(await req.read_small_body(header_checksums=False))
    checksums = CompletionChecksums(
        listed, object_checksums_requested(req.headers), req.headers.get("x-amz-checksum-type")
    )
    info = await req.store.complete_multipart_upload(
        req.bucket, req.key, _upload_id(req), parts, condition, checksums=checksums
    )
    await _keep_upload_acl(req, info)
    location = f"{req.http.scheme}://{req.http.host}/{req.bucket}/{url_encode_key(req.key)}"
    body = document(
        "CompleteMultipartUploadResult",
        [
            element("Location", location),
            element("Bucket", req.bucket),
            element("Key", req.key),
            element("ETag", info.quoted_etag),
            checksum_elements(info.attributes.checksums, kind_of(info.attributes.checksums)),
        ],
    )
    return web.Response(body=body, content_type=XML, headers=written_version_headers(info.version_id))


async def _keep_upload_acl(req: S3Request, written: ObjectInfo) -> None:
    """The ACL CreateMultipartUpload asked for (or its initiator's default) becomes the object's."""
    kept = await upload_owner(req.store, req.bucket, _upload_id(req))
    if kept is not None and kept[1] is not None:
        await keep_upload_acl(req, stored_acl(kept[1]), written)
        await forget_upload_owner(req.store, req.bucket, _upload_id(req))


async def abort(req: S3Request) -> web.Response:
    await req.store.abort_multipart_upload(req.bucket, req.key, _upload_id(req))
    await forget_upload_owner(req.store, req.bucket, _upload_id(req))
    return web.Response(status=204)


async def _initiators(req: S3Request, upload_ids: list[str]) -> list[str]:
    """Who initiated each upload (the bucket's owner unless another identity's record says otherwise)."""
    kept = await asyncio.gather(*(upload_owner(req.store, req.bucket, u) for u in upload_ids))
    return [req.bucket_owner_id if k is None else k[0] for k in kept]


def _int_param(req: S3Request, name: str, default: int, cap: int) -> int:
    raw = req.query.get(name)
    if raw is None:
        return default
    count = decimal(raw)
    if count is None:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range")
    return min(count, cap)


async def list_parts(req: S3Request) -> web.Response:
    marker = _int_param(req, "part-number-marker", 0, 10_000)
    max_parts = _int_param(req, "max-parts", 1000, 1000)
    page = await req.store.list_parts(req.bucket, req.key, _upload_id(req), marker, max_parts)
    (initiator,) = await _initiators(req, [page.upload.upload_id])
    parts = "".join(
        "<Part>"
        + element("PartNumber", p.part_number)
        + element("LastModified", iso8601(p.last_modified))
        + element("ETag", f'"{p.etag}"')
        + element("Size", p.size)
        + checksum_elements(p.checksums)
        + "</Part>"
        for p in page.parts
    )
    body = document(
        "ListPartsResult",
        [
            element("Bucket", req.bucket),
            element("Key", req.key),
            element("UploadId", page.upload.upload_id),
            owner_xml(initiator).replace("Owner>", "Initiator>", 2),
            owner_xml(initiator),
            element("StorageClass", "STANDARD"),
            element("PartNumberMarker", marker),
            optional("NextPartNumberMarker", page.next_part_number_marker),
            element("MaxParts", max_parts),
            element("IsTruncated", str(page.is_truncated).lower()),
            parts,
            upload_checksum_elements(page.upload.checksum),
        ],
    )
    return web.Response(body=body, content_type=XML)


async def list_uploads(req: S3Request) -> web.Response:
    encode = url_encode_key if req.query.get("encoding-type") == "url" else (lambda v: v)
    prefix = req.query.get("prefix", "")
    key_marker = req.query.get("key-marker") or None
    upload_id_marker = req.query.get("upload-id-marker") or None
    max_uploads = _int_param(req, "max-uploads", 1000, 1000)
    page = await req.store.list_multipart_uploads(req.bucket, prefix, key_marker, upload_id_marker, max_uploads)
    initiators = await _initiators(req, [u.upload_id for u in page.uploads])
    uploads = "".join(
        "<Upload>"
        + element("Key", encode(u.key))
        + element("UploadId", u.upload_id)
        + owner_xml(initiator).replace("Owner>", "Initiator>", 2)
        + owner_xml(initiator)
        + element("StorageClass", "STANDARD")
        + element("Initiated", iso8601(u.initiated))
        + upload_checksum_elements(u.checksum)
        + "</Upload>"
        for u, initiator in zip(page.uploads, initiators, strict=True)
    )
    body = document(
        "ListMultipartUploadsResult",
        [
            element("Bucket", req.bucket),
            element("KeyMarker", encode(key_marker or "")),
            element("UploadIdMarker", upload_id_marker or ""),
            optional("NextKeyMarker", encode(page.next_key_marker) if page.next_key_marker else None),
            optional("NextUploadIdMarker", page.next_upload_id_marker),
            element("Prefix", encode(prefix)),
            element("MaxUploads", max_uploads),
            element("IsTruncated", str(page.is_truncated).lower()),
            uploads,
            "".join(f"<CommonPrefixes>{element('Prefix', encode(p))}</CommonPrefixes>" for p in page.common_prefixes),
        ],
    )
    return web.Response(body=body, content_type=XML)
