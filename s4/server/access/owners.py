"""Who owns a bucket: the identity that created it, kept as the bucket's ``owner`` document.

The document goes with the bucket on both stores (the embedded store's index; over S3 the gateway's own
records beside the bucket's data, since the upstream sees one identity, the gateway's). A bucket made before
the gateway had identities has none: it belongs to the first identity of the configuration
(Identities.legacy_owner), the one key such a gateway usually had, so that an upgrade locks nobody out.
"""

from __future__ import annotations

import json

from s4.server.access.identities import ADMIN
from s4.store import ObjectStore

OWNER_DOCUMENT = "owner"


async def bucket_owner(store: ObjectStore, bucket: str, legacy: str = ADMIN) -> str:
    """The name of the identity that owns ``bucket``; ``legacy`` for a bucket without a record. NoSuchBucket."""
    return owner_named(await store.get_bucket_document(bucket, OWNER_DOCUMENT), legacy)


def owner_named(kept: bytes | None, legacy: str = ADMIN) -> str:
    """The owner a bucket's owner document names; ``legacy`` when it has none."""
    return legacy if kept is None else kept.decode("utf-8", "replace")


async def keep_owner(store: ObjectStore, bucket: str, owner: str) -> None:
    await store.put_bucket_document(bucket, OWNER_DOCUMENT, owner.encode())


UPLOAD_PREFIX = "upload-owner/"
"""Bucket documents ``upload-owner/<upload id>``: who initiated a multipart upload and the ACL its object is
to get, kept from Create to Complete or Abort only when they are not the defaults (the bucket's owner, its
default ACL), so that an owner's own uploads cost nothing."""


async def keep_upload_owner(store: ObjectStore, bucket: str, upload_id: str, initiator: str, acl: bytes | None) -> None:
    record = {"initiator": initiator, "acl": None if acl is None else acl.decode()}
    await store.put_bucket_document(bucket, UPLOAD_PREFIX + upload_id, json.dumps(record).encode())


async def upload_owner(store: ObjectStore, bucket: str, upload_id: str) -> tuple[str, bytes | None] | None:
    """The initiator of an upload and the ACL its object is to get; None for an upload of the bucket's owner
    with the default ACL (or one that is gone)."""
    kept = await store.get_bucket_document(bucket, UPLOAD_PREFIX + upload_id)
    if kept is None:
        return None
    record = json.loads(kept)
    return record["initiator"], None if record.get("acl") is None else record["acl"].encode()


async def forget_upload_owner(store: ObjectStore, bucket: str, upload_id: str) -> None:
    await store.delete_bucket_document(bucket, UPLOAD_PREFIX + upload_id)
