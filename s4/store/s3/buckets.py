"""Where a client's bucket lives upstream: a bucket of its own, or a key prefix in one shared bucket.

Some deployments get one bucket and no right to create more; every client bucket then
maps to ``<key_prefix with the bucket name>`` inside it. A client bucket exists when its
marker object ``.s4buckets/<name>`` exists at the shared bucket's root: outside every
bucket's key prefix (the prefix may not start with ``.s4``), so no client key can touch a
marker, and listing the buckets is one listing of ``.s4buckets/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from s4.store.base import BucketInfo, StoreError

MARKER_PREFIX = ".s4buckets/"
KNOWN_BUCKET_TTL_S = 5.0
"""How long a bucket seen to exist is trusted without asking again (another replica may delete it)."""
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Call = Callable[..., Awaitable[dict[str, Any]]]
"""``await call("head_object", Bucket=..., Key=...)``: one upstream request, errors already StoreErrors."""


def no_such_bucket(bucket: str) -> StoreError:
    return StoreError("NoSuchBucket", "The specified bucket does not exist", resource=bucket)


def utc(when: dt.datetime | None) -> dt.datetime:
    if when is None:
        return _EPOCH
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """A client bucket's place upstream: the upstream bucket and the prefix of its keys there."""

    bucket: str
    prefix: str = ""

    def key(self, key: str) -> str:
        return self.prefix + key

    def client_key(self, upstream_key: str) -> str:
        return upstream_key[len(self.prefix) :]


class NativeBuckets:
    """Each client bucket is the upstream bucket of the same name."""

    shared = False

    def __init__(self, call: Call, region: str) -> None:
        self._call = call
        self._region = region

    def locate(self, bucket: str) -> Location:
        return Location(bucket)

    async def require(self, bucket: str) -> Location:
        """Checking costs a request, so the upstream's own NoSuchBucket on the real request stands in for it."""
        return Location(bucket)

    async def exists(self, bucket: str) -> bool:
        try:
            await self._call("head_bucket", Bucket=bucket)
        except StoreError as exc:
            if exc.code in ("NoSuchBucket", "NoSuchKey"):
                return False
            raise
        return True

    async def list(self) -> list[BucketInfo]:
        answer = await self._call("list_buckets")
        return sorted(
            (BucketInfo(b["Name"], utc(b.get("CreationDate"))) for b in answer.get("Buckets", [])),
            key=lambda b: b.name,
        )

    async def create(self, bucket: str) -> None:
        if self._region == "us-east-1":
            await self._call("create_bucket", Bucket=bucket)
        else:
            await self._call(
                "create_bucket", Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self._region}
            )

    async def head(self, bucket: str) -> BucketInfo:
        if not await self.exists(bucket):
            raise no_such_bucket(bucket)
        return BucketInfo(bucket, _EPOCH)  # HeadBucket tells no creation date

    async def delete(self, bucket: str, is_empty: Callable[[Location], Awaitable[bool]]) -> None:
        # Some S3s (SeaweedFS by default) delete a bucket with everything in it: look first.
        if not await self.exists(bucket):
            raise no_such_bucket(bucket)
        if not await is_empty(Location(bucket)):
            raise StoreError("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=bucket)
        await self._call("delete_bucket", Bucket=bucket)


class SharedBucket:
    """Every client bucket is a key prefix inside one upstream bucket."""

    shared = True

    def __init__(self, call: Call, bucket: str, key_prefix: str) -> None:
        self._call = call
        self._bucket = bucket
        self._key_prefix = key_prefix
        self._known: dict[str, float] = {}

    def locate(self, bucket: str) -> Location:
        if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
            raise StoreError("InvalidBucketName", "The specified bucket is not valid.", resource=bucket)
        return Location(self._bucket, self._key_prefix.format(bucket=bucket))

    def _marker(self, bucket: str) -> str:
        return MARKER_PREFIX + bucket

    async def _head_marker(self, bucket: str) -> dict[str, Any] | None:
        try:
            return await self._call("head_object", Bucket=self._bucket, Key=self._marker(bucket))
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise

    async def exists(self, bucket: str) -> bool:
        self.locate(bucket)
        if self._known.get(bucket, 0.0) > time.monotonic():
            return True
        if await self._head_marker(bucket) is None:
            self._known.pop(bucket, None)
            return False
        self._known[bucket] = time.monotonic() + KNOWN_BUCKET_TTL_S
        return True

    async def require(self, bucket: str) -> Location:
        location = self.locate(bucket)
        if not await self.exists(bucket):
            raise no_such_bucket(bucket)
        return location

    async def list(self) -> list[BucketInfo]:
        buckets: list[BucketInfo] = []
        token: dict[str, str] = {}
        while True:
            answer = await self._call("list_objects_v2", Bucket=self._bucket, Prefix=MARKER_PREFIX, **token)
            for item in answer.get("Contents", []):
                buckets.append(BucketInfo(item["Key"][len(MARKER_PREFIX) :], utc(item.get("LastModified"))))
            if not answer.get("IsTruncated") or not answer.get("NextContinuationToken"):
                return buckets
            token = {"ContinuationToken": answer["NextContinuationToken"]}

    async def create(self, bucket: str) -> None:
        self.locate(bucket)
        if await self._head_marker(bucket) is not None:
            raise StoreError(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
                resource=bucket,
            )
        await self._call("put_object", Bucket=self._bucket, Key=self._marker(bucket), Body=b"")
        self._known[bucket] = time.monotonic() + KNOWN_BUCKET_TTL_S

    async def head(self, bucket: str) -> BucketInfo:
        self.locate(bucket)
        marker = await self._head_marker(bucket)
        if marker is None:
            raise no_such_bucket(bucket)
        return BucketInfo(bucket, utc(marker.get("LastModified")))

    async def delete(self, bucket: str, is_empty: Callable[[Location], Awaitable[bool]]) -> None:
        location = await self.require(bucket)
        if not await is_empty(location):
            raise StoreError("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=bucket)
        self._known.pop(bucket, None)
        await self._call("delete_object", Bucket=self._bucket, Key=self._marker(bucket))
