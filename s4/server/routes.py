"""Which S3 operation a request is: method, bucket/key presence and sub-resource query parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from s4.server import cors
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops import attributes, buckets, listing, multipart, objects, post_object, tagging, versions
from s4.server.ops.documents import handlers as documents

Handler = Callable[[S3Request], Awaitable[web.StreamResponse]]

# Sub-resources S3 has and this gateway does not: answered NotImplemented instead of being
# mistaken for a plain GET/PUT of the bucket or object. Bucket documents (ops/documents: acl, cors,
# encryption, lifecycle, notification, ownershipControls, policy, publicAccessBlock, tagging) and
# object ACLs are routed before this check, so here the others refuse only what an object is asked for.
UNSUPPORTED = frozenset(
    {
        "acl",
        "analytics",
        "accelerate",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "tagging",
        "torrent",
        "website",
    }
)
OBJECT_SUBRESOURCES = frozenset({"tagging"})
"""Sub-resources of UNSUPPORTED that objects have here (a bucket's are bucket documents, routed first)."""


def route(method: str, bucket: str | None, key: str | None, query, headers) -> Handler:
    """The handler for a request; decided before authentication so even refusals are counted per operation."""
    if method == "OPTIONS" and bucket is not None:
        return cors.preflight  # a browser's preflight, whatever the query: answered without credentials
    if bucket is not None:
        document = documents.route(method, key, query)
        if document is not None:
            return document
    unsupported = UNSUPPORTED.intersection(query.keys())
    if key is not None:
        unsupported -= OBJECT_SUBRESOURCES
    if unsupported:
        raise S3Error("NotImplemented", f"The {sorted(unsupported)[0]} sub-resource is not implemented by this gateway")
    if bucket is None:
        if method == "GET":
            return buckets.list_buckets
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
    if key is None:
        return _bucket_route(method, query)
    return _object_route(headers, method, query)


OPERATION_NAMES: dict[Handler, str] = {
    buckets.list_buckets: "ListBuckets",
    buckets.create_bucket: "CreateBucket",
    buckets.delete_bucket: "DeleteBucket",
    buckets.head_bucket: "HeadBucket",
    buckets.get_bucket_location: "GetBucketLocation",
    listing.list_objects_v1: "ListObjects",
    listing.list_objects_v2: "ListObjectsV2",
    versions.list_object_versions: "ListObjectVersions",
    versions.get_bucket_versioning: "GetBucketVersioning",
    versions.put_bucket_versioning: "PutBucketVersioning",
    objects.get_object: "GetObject",
    objects.head_object: "HeadObject",
    objects.put_object: "PutObject",
    objects.copy_object: "CopyObject",
    objects.delete_object: "DeleteObject",
    objects.delete_objects: "DeleteObjects",
    attributes.get_object_attributes: "GetObjectAttributes",
    post_object.post_object: "PostObject",
    multipart.create: "CreateMultipartUpload",
    multipart.upload_part: "UploadPart",
    multipart.upload_part_copy: "UploadPartCopy",
    multipart.complete: "CompleteMultipartUpload",
    multipart.abort: "AbortMultipartUpload",
    multipart.list_parts: "ListParts",
    multipart.list_uploads: "ListMultipartUploads",
    tagging.get_object_tagging: "GetObjectTagging",
    tagging.put_object_tagging: "PutObjectTagging",
    tagging.delete_object_tagging: "DeleteObjectTagging",
}
_TAGGING: dict[str, Handler] = {
    "GET": tagging.get_object_tagging,
    "PUT": tagging.put_object_tagging,
    "DELETE": tagging.delete_object_tagging,
}

OPERATION_NAMES.update(documents.OPERATION_NAMES)
OPERATION_NAMES[cors.preflight] = "PreflightRequest"


_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}
_SUBRESOURCE_OPERATIONS = {
    # Where S3's operation name is not simply <Verb><Bucket|Object><Sub-resource>.
    ("GET", "versions"): "ListObjectVersions",
    ("POST", "select"): "SelectObjectContent",
    ("POST", "restore"): "RestoreObject",
    ("GET", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("GET", "notification"): "GetBucketNotificationConfiguration",
    ("PUT", "notification"): "PutBucketNotificationConfiguration",
}


FORM_AUTHENTICATED: frozenset[Handler] = frozenset({post_object.post_object})
"""Handlers whose request is signed in its body (a form upload's policy), not by header or query:
the handler authenticates it once it has read the fields."""


def operation_name(method: str, bucket: str | None, key: str | None, query, headers) -> str:
    """The S3 operation a request asks for, named even when the gateway refuses it (a sub-resource it
    does not implement, a method S3 does not allow there), for the access log and the metrics."""
    try:
        return OPERATION_NAMES[route(method, bucket, key, query, headers)]
    except S3Error:
        pass
    verb = _VERBS.get(method, method.capitalize())
    target = "Service" if bucket is None else ("Bucket" if key is None else "Object")
    unsupported = sorted(UNSUPPORTED.intersection(query.keys()))
    if not unsupported:
        return verb + target
    sub = unsupported[0]
    named = _SUBRESOURCE_OPERATIONS.get((method, sub))
    if named is not None:
        return named
    return verb + target + "".join(part[:1].upper() + part[1:] for part in sub.split("-"))


def _bucket_route(method: str, query) -> Handler:
    if method == "GET":
        if "location" in query:
            return buckets.get_bucket_location
        if "uploads" in query:
            return multipart.list_uploads
        if "versions" in query:
            return versions.list_object_versions
        if "versioning" in query:
            return versions.get_bucket_versioning
        if query.get("list-type") == "2":
            return listing.list_objects_v2
        return listing.list_objects_v1
    if method == "PUT":
        return versions.put_bucket_versioning if "versioning" in query else buckets.create_bucket
    if method == "DELETE":
        return buckets.delete_bucket
    if method == "HEAD":
        return buckets.head_bucket
    if method == "POST":
        return objects.delete_objects if "delete" in query else post_object.post_object
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")


def _object_route(headers, method: str, query) -> Handler:
    if "tagging" in query and method in _TAGGING:
        return _TAGGING[method]
    if method == "GET":
        if "attributes" in query and "uploadId" not in query:
            return attributes.get_object_attributes
        return multipart.list_parts if "uploadId" in query else objects.get_object
    if method == "HEAD":
        return objects.head_object
    if method == "PUT":
        if "uploadId" in query or "partNumber" in query:
            return multipart.upload_part_copy if "x-amz-copy-source" in headers else multipart.upload_part
        return objects.copy_object if "x-amz-copy-source" in headers else objects.put_object
    if method == "POST":
        if "uploads" in query:
            return multipart.create
        if "uploadId" in query:
            return multipart.complete
    if method == "DELETE":
        return multipart.abort if "uploadId" in query else objects.delete_object
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
