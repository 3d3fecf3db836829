"""Which S3 action (IAM's ``s3:...`` name) each operation asks for, as AWS's authorization reference lists them.

The policy language speaks of actions, not operations: HeadObject is ``s3:GetObject``, HeadBucket and the
listings are ``s3:ListBucket``, a multipart upload is ``s3:PutObject`` from Create to Complete, a Delete of
a bucket document is the Put of its kind (``s3:PutBucketCORS``...). An operation on a version (``versionId``)
asks for the version's action (``s3:GetObjectVersion``). CopyObject and UploadPartCopy also read their source
(``copy_source``), and DeleteObjects asks ``s3:DeleteObject`` once per key (``s3:DeleteObjectVersion`` for an
entry with a VersionId; checked by its handler).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, unquote

OPERATION_ACTIONS: dict[str, str] = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "PostObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectAttributes": "s3:GetObjectAttributes",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObjectTagging": "s3:DeleteObjectTagging",
    "GetObjectAcl": "s3:GetObjectAcl",
    "PutObjectAcl": "s3:PutObjectAcl",
    "GetBucketCors": "s3:GetBucketCORS",
    "PutBucketCors": "s3:PutBucketCORS",
    "DeleteBucketCors": "s3:PutBucketCORS",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetBucketTagging": "s3:GetBucketTagging",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
}
"""Operation (routes.OPERATION_NAMES) to the action it asks for on its target. An operation not here asks for
none: a browser's preflight (answered by the bucket's CORS rules), and those the gateway refuses unrouted.
DeleteObjects asks for ``s3:DeleteObject`` per key (PER_KEY)."""
PER_KEY = frozenset({"DeleteObjects"})
"""Operations whose handler asks for each key's action itself (s4.server.access.authorize.allowed)."""
COPIES = frozenset({"CopyObject", "UploadPartCopy"})
"""Operations that also read an object, named by ``x-amz-copy-source``: ``s3:GetObject`` on it."""
OBJECT_READS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAcl",
        "s3:GetObjectVersionAcl",
        "s3:PutObjectAcl",
        "s3:PutObjectVersionAcl",
    }
)
"""Actions that an object's own ACL grants (READ, READ_ACP, WRITE_ACP); the bucket's ACL grants the others."""
VERSIONED: dict[str, str] = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}
"""The action of an operation on a version (``?versionId=``), where S3 has one."""


def action_of(operation: str, query: Mapping[str, str]) -> str | None:
    """The action ``operation`` asks for on its target; None for one that asks for none."""
    action = OPERATION_ACTIONS.get(operation)
    if action is not None and "versionId" in query:
        return VERSIONED.get(action, action)
    return action


def copy_source(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The object a copy reads, with the action it asks for on it: (bucket, key, action); None when the
    header does not name one (the handler answers that request's error)."""
    value = headers.get("x-amz-copy-source")
    if not value:
        return None
    path, _, query = value.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        return None
    versioned = "versionId" in parse_qs(query)
    return bucket, key, "s3:GetObjectVersion" if versioned else "s3:GetObject"


def copy_source_version(headers: Mapping[str, str]) -> str | None:
    """The version ``x-amz-copy-source`` names (``?versionId=``; None: the current one), whose own ACL the
    access check reads."""
    value = headers.get("x-amz-copy-source") or ""
    versions = parse_qs(value.partition("?")[2]).get("versionId")
    return None if not versions else versions[0]
