"""GetBucketVersioning and ListObjectVersions for buckets that have never had versioning enabled.

Such a bucket holds one version per key, whose id is ``null``, and S3 answers both calls
for it: an empty VersioningConfiguration, and every object as its own latest ``null``
version. Tools call them before anything else (s3fs before a recursive delete, boto3's
``object_versions``, rclone ``--s3-versions``, the s3-tests fixtures on cleanup), so a
refusal here breaks clients that never use versioning. Enabling versioning is refused until
the stores keep versions (PutBucketVersioning answers 501 NotImplemented).
"""

from __future__ import annotations

from aiohttp import web

from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.listing import encoder, max_keys_of
from s4.server.xml import document, element, iso8601, optional, owner_xml

XML = "application/xml"
NULL_VERSION = "null"


def require_current_version(req: S3Request) -> None:
    """A ``versionId`` on an object request: ``null`` names the only version there is; anything else
    is not a version of an unversioned bucket (S3: 400 InvalidArgument)."""
    version = req.query.get("versionId")
    if version is not None and version != NULL_VERSION:
        raise S3Error("InvalidArgument", "Invalid version id specified")


async def get_bucket_versioning(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    return web.Response(body=document("VersioningConfiguration", []), content_type=XML)


async def put_bucket_versioning(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    raise S3Error("NotImplemented", "Bucket versioning cannot be enabled on this gateway yet", status=501)


async def list_object_versions(req: S3Request) -> web.Response:
    encode = encoder(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter") or None
    key_marker = req.query.get("key-marker") or None
    version_marker = req.query.get("version-id-marker") or None
    if version_marker is not None and key_marker is None:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.")
    if version_marker not in (None, NULL_VERSION):
        raise S3Error("InvalidArgument", "Invalid version id specified")
    limit = max_keys_of(req)
    # Each key has one version, so the page after (key, any version) starts after the key itself.
    page = await req.store.list_objects(req.bucket, prefix, delimiter, key_marker, limit)
    owner = req.bucket_owner_id
    versions = "".join(
        "<Version>"
        + element("Key", encode(o.key))
        + element("VersionId", NULL_VERSION)
        + element("IsLatest", "true")
        + element("LastModified", iso8601(o.last_modified))
        + element("ETag", o.quoted_etag)
        + element("Size", o.size)
        + element("StorageClass", "STANDARD")
        + owner_xml(owner)
        + "</Version>"
        for o in page.objects
    )
    prefixes = "".join(f"<CommonPrefixes>{element('Prefix', encode(p))}</CommonPrefixes>" for p in page.common_prefixes)
    truncated = page.is_truncated and page.next_marker is not None
    parts = [
        element("Name", req.bucket),
        element("Prefix", encode(prefix)),
        element("KeyMarker", encode(key_marker or "")),
        element("VersionIdMarker", version_marker or ""),
        element("MaxKeys", limit),
        optional("Delimiter", encode(delimiter) if delimiter else None),
        element("IsTruncated", str(truncated).lower()),
        optional("NextKeyMarker", encode(page.next_marker) if truncated else None),
        optional("NextVersionIdMarker", NULL_VERSION if truncated else None),
        optional("EncodingType", req.query.get("encoding-type")),
        versions,
        prefixes,
    ]
    return web.Response(body=document("ListVersionsResult", parts), content_type=XML)
