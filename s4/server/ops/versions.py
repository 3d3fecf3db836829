"""GetBucketVersioning, PutBucketVersioning and ListObjectVersions, and the ``versionId`` of object requests.

Versioning is the store's (every store keeps versions, each with its own id; see
s4.store.base): this module reads and checks what clients send, and writes S3's documents
and headers. A bucket that has never had versioning enabled answers as S3 does: an empty
VersioningConfiguration, every object its own latest ``null`` version, and no
``x-amz-version-id`` on object responses.
"""

from __future__ import annotations

from aiohttp import web

from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.listing import encoder, max_keys_of
from s4.server.xml import child_text, document, element, iso8601, local_name, optional, owner_xml, parse_xml
from s4.store import ObjectInfo

XML = "application/xml"
NULL_VERSION = "null"
STATUSES = ("Enabled", "Suspended")


def requested_version(req: S3Request) -> str | None:
    """The ``versionId`` of an object request (None: the current version). S3 refuses an empty one."""
    version = req.query.get("versionId")
    if version is not None and not version:
        raise S3Error("InvalidArgument", "Version id cannot be the empty string")
    return version


async def require_existing_version(req: S3Request) -> None:
    """For what the gateway keeps per key rather than per version (an object's ACL): a ``versionId`` is
    accepted when it names a version of the key (every version of a key shares what is kept), refused as
    S3 refuses it otherwise: InvalidArgument for an empty or malformed id (any id but ``null`` on a bucket
    never versioned), NoSuchVersion for an unknown one."""
    version = requested_version(req)
    if version is not None:
        await req.store.head_object(req.bucket or "", req.key or "", version_id=version)


def version_headers(version_id: str | None, delete_marker: bool = False) -> dict[str, str]:
    """``x-amz-version-id`` (only for a bucket that is or was versioned, as S3 sends it) and
    ``x-amz-delete-marker``."""
    headers = {} if version_id is None else {"x-amz-version-id": version_id}
    if delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return headers


def written_version_headers(version_id: str | None) -> dict[str, str]:
    """``x-amz-version-id`` of a write (PUT, Copy, Complete): none for the null version a Suspended
    bucket writes, as ceph's s3-tests expect of S3 (reads of that version do name it ``null``)."""
    return {} if version_id in (None, NULL_VERSION) else version_headers(version_id)


async def get_bucket_versioning(req: S3Request) -> web.Response:
    status = await req.store.get_bucket_versioning(req.bucket)
    return web.Response(body=document("VersioningConfiguration", [optional("Status", status)]), content_type=XML)


async def put_bucket_versioning(req: S3Request) -> web.Response:
    root = parse_xml(await req.read_small_body())
    if local_name(root.tag) != "VersioningConfiguration":
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate")
    status = child_text(root, "Status")
    mfa_delete = child_text(root, "MfaDelete")
    if status not in STATUSES or mfa_delete not in (None, "Enabled", "Disabled"):
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate")
    if mfa_delete == "Enabled" or "x-amz-mfa" in req.headers:
        raise S3Error("NotImplemented", "MFA Delete is not supported by this gateway", status=501)
    await req.store.put_bucket_versioning(req.bucket, status)
    return web.Response(status=200)


def _entry(version: ObjectInfo, encode, owner: str) -> str:
    common = (
        element("Key", encode(version.key))
        + element("VersionId", version.version_id or NULL_VERSION)
        + element("IsLatest", str(version.is_latest).lower())
        + element("LastModified", iso8601(version.last_modified))
    )
    if version.delete_marker:
        return f"<DeleteMarker>{common}{owner_xml(owner)}</DeleteMarker>"
    return (
        f"<Version>{common}"
        + element("ETag", version.quoted_etag)
        + element("Size", version.size)
        + element("StorageClass", "STANDARD")
        + owner_xml(owner)
        + "</Version>"
    )


async def list_object_versions(req: S3Request) -> web.Response:
    encode = encoder(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter") or None
    key_marker = req.query.get("key-marker") or None
    version_marker = req.query.get("version-id-marker") or None
    if version_marker is not None and key_marker is None:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.")
    limit = max_keys_of(req)
    page = await req.store.list_object_versions(req.bucket, prefix, delimiter, key_marker, version_marker, limit)
    owner = req.bucket_owner_id
    versions = "".join(_entry(v, encode, owner) for v in page.versions)
    prefixes = "".join(f"<CommonPrefixes>{element('Prefix', encode(p))}</CommonPrefixes>" for p in page.common_prefixes)
    truncated = page.is_truncated and page.next_key_marker is not None
    parts = [
        element("Name", req.bucket),
        element("Prefix", encode(prefix)),
        element("KeyMarker", encode(key_marker or "")),
        element("VersionIdMarker", version_marker or ""),
        element("MaxKeys", limit),
        optional("Delimiter", encode(delimiter) if delimiter else None),
        element("IsTruncated", str(truncated).lower()),
        optional("NextKeyMarker", encode(page.next_key_marker) if truncated else None),
        # After a common prefix the next page starts past it whatever the version marker: "null" then.
        optional("NextVersionIdMarker", (page.next_version_id_marker or NULL_VERSION) if truncated else None),
        optional("EncodingType", req.query.get("encoding-type")),
        versions,
        prefixes,
    ]
    return web.Response(body=document("ListVersionsResult", parts), content_type=XML)
