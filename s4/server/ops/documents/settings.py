"""The small bucket documents, checked as S3 checks them: default encryption, public access block,
ownership controls, event notification and tags.

Each is kept as given (in S3's form) and returned as kept. None of them changes what the gateway
does: objects are stored compressed, not encrypted by the gateway whatever the default encryption
says; public access is the access-control layer's; no event is ever sent, so a notification
configuration that asks for one is refused (501) rather than accepted and silently dropped.
"""

from __future__ import annotations

import unicodedata

from s4.server.errors import S3Error
from s4.server.ops.documents.common import boolean, check_children, malformed, one, root_of, serialized, text
from s4.server.xml import children, local_name

OWNERSHIP_DOCUMENT = "ownership-controls"
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
OBJECT_OWNERSHIP = frozenset({"BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"})
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
NOTIFICATIONS = frozenset(
    {"TopicConfiguration", "QueueConfiguration", "CloudFunctionConfiguration", "EventBridgeConfiguration"}
)
MAX_BUCKET_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_SYMBOLS = frozenset(" _.:/=+-@")


def validate_encryption(body: bytes) -> bytes:
    """ServerSideEncryptionConfiguration: one Rule with its default algorithm (and a KMS key only for KMS)."""
    root = root_of(body, "ServerSideEncryptionConfiguration")
    check_children(root, {"Rule"})
    rule = one(root, "Rule")
    check_children(rule, {"ApplyServerSideEncryptionByDefault", "BucketKeyEnabled"})
    default = one(rule, "ApplyServerSideEncryptionByDefault")
    check_children(default, {"SSEAlgorithm", "KMSMasterKeyID"})
    algorithm = text(default, "SSEAlgorithm")
    if algorithm not in SSE_ALGORITHMS:
        raise malformed()
    if text(default, "KMSMasterKeyID", required=False) is not None and not algorithm.startswith("aws:kms"):
        raise S3Error(
            "InvalidArgument",
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
        )
    key_enabled = text(rule, "BucketKeyEnabled", required=False)
    if key_enabled is not None:
        boolean(key_enabled)
    return serialized(root)


def validate_public_access_block(body: bytes) -> bytes:
    """PublicAccessBlockConfiguration: four optional booleans (an absent one is false)."""
    root = root_of(body, "PublicAccessBlockConfiguration")
    check_children(root, set(PUBLIC_ACCESS_FLAGS))
    for flag in PUBLIC_ACCESS_FLAGS:
        value = text(root, flag, required=False)
        if value is not None:
            boolean(value)
    return serialized(root)


def validate_ownership_controls(body: bytes) -> bytes:
    """OwnershipControls: exactly one Rule naming one of S3's three object ownerships."""
    root = root_of(body, "OwnershipControls")
    check_children(root, {"Rule"})
    rule = one(root, "Rule")
    check_children(rule, {"ObjectOwnership"})
    if text(rule, "ObjectOwnership") not in OBJECT_OWNERSHIP:
        raise malformed()
    return serialized(root)


def object_ownership(document: bytes | None) -> str | None:
    """The ObjectOwnership of a stored OwnershipControls document (None: the bucket has none)."""
    if document is None:
        return None
    rule = one(root_of(document, "OwnershipControls"), "Rule")
    return text(rule, "ObjectOwnership")


def ownership_controls(ownership: str) -> bytes:
    """The document CreateBucket's ``x-amz-object-ownership`` stands for."""
    if ownership not in OBJECT_OWNERSHIP:
        raise S3Error("InvalidArgument", f"Invalid x-amz-object-ownership header: {ownership}")
    return validate_ownership_controls(
        f"<OwnershipControls><Rule><ObjectOwnership>{ownership}</ObjectOwnership></Rule></OwnershipControls>".encode()
    )


def validate_notification(body: bytes) -> bytes:
    """NotificationConfiguration: only the empty one, which turns notifications off (all there is here)."""
    root = root_of(body, "NotificationConfiguration")
    check_children(root, NOTIFICATIONS)
    if len(root):
        names = sorted({local_name(child.tag) for child in root})
        raise S3Error(
            "NotImplemented",
            f"This gateway sends no event notifications ({', '.join(names)}); only an empty"
            " NotificationConfiguration is accepted",
            status=501,
        )
    return serialized(root)


def _tag_text_allowed(value: str) -> bool:
    """Unicode letters, numbers and spaces, and ``_ . : / = + - @``: what S3 allows in tags."""
    return all(c in _TAG_SYMBOLS or unicodedata.category(c)[0] in "LZN" for c in value)


def _utf16_length(value: str) -> int:
    """S3 counts a tag's length in UTF-16 code units: a character outside the BMP counts two."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def validate_bucket_tagging(body: bytes) -> bytes:
    """Tagging: at most 50 tags, keys unique (1-128 characters, not ``aws:``), values 0-256 characters."""
    root = root_of(body, "Tagging")
    check_children(root, {"TagSet"})
    tag_set = one(root, "TagSet")
    check_children(tag_set, {"Tag"})
    tags = children(tag_set, "Tag")
    if len(tags) > MAX_BUCKET_TAGS:
        raise S3Error("InvalidTag", f"Bucket tag count cannot be greater than {MAX_BUCKET_TAGS}")
    keys: set[str] = set()
    for tag in tags:
        check_children(tag, {"Key", "Value"})
        key, value = text(tag, "Key") or "", text(tag, "Value") or ""
        if not key or _utf16_length(key) > MAX_TAG_KEY or not _tag_text_allowed(key):
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid")
        if _utf16_length(value) > MAX_TAG_VALUE or not _tag_text_allowed(value):
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise S3Error("InvalidTag", "System tags cannot be added/updated by requester")
        if key in keys:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        keys.add(key)
    return serialized(root)
