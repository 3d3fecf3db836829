"""Bucket documents over an upstream S3: small objects ``.s4bucket/<name>`` in the bucket's place upstream.

The upstream sees one identity, the gateway's, so its own bucket sub-resources (CORS, policy, ACL)
would describe the gateway's access to it, not the gateway's clients'; and in the shared-bucket
layout one upstream bucket holds many client buckets. So the gateway keeps its clients' documents
as objects beside their data, under a prefix that clients can neither list, read nor write
(``s4.store.compressing.reserved``), and they go with the bucket: DeleteBucket removes them once the
bucket holds nothing else.

Lifecycle is the one document the upstream carries out itself. With a bucket of its own upstream
(not the shared layout, where one upstream configuration would have to hold every client bucket's
rules), the rules it can carry out as S3 would for the clients (s4.store.lifecycle.Rule.
carried_out_upstream: none that reaches the gateway's own ``.s4`` names, none with a size
condition, which the upstream would apply to compressed sizes) go to its
PutBucketLifecycleConfiguration, before the document is kept, so that a refusal keeps nothing; the
gateway's lifecycle worker carries out the others. DeleteBucketLifecycle likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.parsers import create_parser

from s4.store.base import LIFECYCLE_DOCUMENT, StoreError
from s4.store.lifecycle import parse_rules
from s4.store.s3.bodies import content_md5
from s4.store.s3.buckets import Call, Location, NativeBuckets, SharedBucket
from s4.store.s3.document_cache import DocumentCache

DOCUMENT_PREFIX = ".s4bucket/"
"""Also a reserved name of the S4 format (``s4.store.compressing.reserved.BUCKET_DOCUMENT_PREFIX``)."""
PAST_DOCUMENTS = DOCUMENT_PREFIX + "\U0010ffff"
"""Sorts after every document name (no UTF-8 key goes past U+10FFFF), before any key after them."""

MAX_CLEAR_ROUNDS = 100
"""Pages of document versions removed when a bucket goes, at most (a bucket has a few documents)."""
ServiceModel = Callable[[], Any]
"""botocore's model of S3 (the client's ``meta.service_model``), asked for when a document is converted."""


class BucketDocuments:
    """The ObjectStore's bucket documents for the S3 store; see the module docstring."""

    def __init__(
        self,
        call: Call,
        buckets: NativeBuckets | SharedBucket,
        model: ServiceModel,
        translate: Callable[[BaseException], StoreError],
        cache: DocumentCache | None = None,
    ) -> None:
        self._call = call
        self._buckets = buckets
        self._model = model
        self._translate = translate
        self._cache = DocumentCache(0) if cache is None else cache

    @property
    def lifecycle_upstream(self) -> bool:
        """Whether the upstream carries out the lifecycle documents (each client bucket is its own bucket)."""
        return not self._buckets.shared

    def _key(self, location: Location, name: str) -> str:
        return location.key(DOCUMENT_PREFIX + name)

    async def get_kept(self, bucket: str, name: str) -> bytes | None:
        """The document (None: none) as read within the cache's time (s4.store.s3.document_cache): for the
        access check every request makes, never for what a change of the bucket decides from."""
        fresh, document = self._cache.lookup(bucket, name)
        if fresh:
            return document
        epoch = self._cache.epoch()
        document = await self.get(bucket, name)
        self._cache.keep(bucket, name, document, epoch)
        return document

    def forget(self, bucket: str) -> None:
        """What is kept of the bucket's documents: it was deleted or created (by this process)."""
        self._cache.forget(bucket)

    def written(self, bucket: str, key: str) -> None:
        """``key`` was written or removed as an object: if it is one of the bucket's documents, what is kept
        of it goes (the gateway's other keys under the prefix, its ledger records, are no document)."""
        if key.startswith(DOCUMENT_PREFIX) and "/" not in key[len(DOCUMENT_PREFIX) :]:
            self._cache.forget(bucket, key[len(DOCUMENT_PREFIX) :])

    async def get(self, bucket: str, name: str) -> bytes | None:
        """The document as the upstream has it now (None: none)."""
        # A missing bucket: the shared layout finds it missing here, an upstream bucket answers NoSuchBucket.
        location = await self._buckets.require(bucket)
        try:
            answer = await self._call("get_object", Bucket=location.bucket, Key=self._key(location, name))
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        stream = answer["Body"]
        try:
            return await stream.read()
        except Exception as exc:
            raise self._translate(exc) from exc
        finally:
            stream.close()

    async def put(self, bucket: str, name: str, document: bytes) -> None:
        location = await self._buckets.require(bucket)
        try:
            if name == LIFECYCLE_DOCUMENT and self.lifecycle_upstream:
                await self._hand_over_lifecycle(location, document)
            await self._call(
                "put_object",
                Bucket=location.bucket,
                Key=self._key(location, name),
                Body=document,
                ContentMD5=await content_md5(document),
            )
        finally:  # also when it failed: it may have been stored all the same (a lost answer)
            self._cache.forget(bucket, name)

    async def delete(self, bucket: str, name: str) -> None:
        location = await self._buckets.require(bucket)
        try:
            if name == LIFECYCLE_DOCUMENT and self.lifecycle_upstream:
                await self._call("delete_bucket_lifecycle", Bucket=location.bucket)  # none: S3 answers 204 too
            await self._call("delete_object", Bucket=location.bucket, Key=self._key(location, name))
        finally:
            self._cache.forget(bucket, name)

    async def clear(self, location: Location, versioned: bool = False) -> None:
        """Remove every document of a bucket that is about to be deleted (``versioned``: every version of
        them and their delete markers, which would keep the bucket from being deleted)."""
        prefix = self._key(location, "")
        if versioned:
            await self._clear_versions(location.bucket, prefix)
            return
        token: dict[str, str] = {}
        while True:
            answer = await self._call("list_objects_v2", Bucket=location.bucket, Prefix=prefix, **token)
            for item in answer.get("Contents", []):
                await self._call("delete_object", Bucket=location.bucket, Key=item["Key"])
            if not answer.get("IsTruncated") or not answer.get("NextContinuationToken"):
                return
            token = {"ContinuationToken": answer["NextContinuationToken"]}

    async def _clear_versions(self, bucket: str, prefix: str) -> None:
        for _ in range(MAX_CLEAR_ROUNDS):
            answer = await self._call("list_object_versions", Bucket=bucket, Prefix=prefix)
            listed = [*answer.get("Versions", []), *answer.get("DeleteMarkers", [])]
            for entry in listed:
                await self._call("delete_object", Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
            if not listed or not answer.get("IsTruncated"):
                return

    async def _hand_over_lifecycle(self, location: Location, document: bytes) -> None:
        """The upstream's lifecycle configuration: the rules of ``document`` it carries out itself."""
        rules = [
            params
            for params, rule in zip(self._lifecycle_rules(document), parse_rules(document), strict=True)
            if rule.carried_out_upstream()
        ]
        if rules:
            await self._call(
                "put_bucket_lifecycle_configuration", Bucket=location.bucket, LifecycleConfiguration={"Rules": rules}
            )
        else:
            await self._call("delete_bucket_lifecycle", Bucket=location.bucket)

    def _lifecycle_rules(self, document: bytes) -> list[dict[str, Any]]:
        """A LifecycleConfiguration document (validated by the server) as botocore's parameters, read
        with botocore's own reader of the GetBucketLifecycleConfiguration answer, whose body it is."""
        shape = self._model().operation_model("GetBucketLifecycleConfiguration").output_shape
        parsed = create_parser("rest-xml").parse({"body": document, "headers": {}, "status_code": 200}, shape)
        return parsed.get("Rules", [])
