"""The ObjectStore over an upstream S3 endpoint (AWS S3, MinIO, Ceph, SeaweedFS), through aiobotocore.

Bodies stream both ways in bounded memory. A PUT body up to ``multipart_threshold`` goes
up in one PutObject; a larger one as an upstream multipart upload under a temporary key
``.s4mpu/put-<uuid>``, because S3 fixes an object's metadata when the upload starts while
ours (the S4 manifest) is only known once the body has ended. The completed temporary
object is then copied server-side onto the real key with its final metadata, so the real
key appears at once and complete, and never if the body fails.

Requests are retried with backoff by botocore, except those whose body streams through
(sent by a second client that makes one attempt): half a body cannot be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from s4.config import UpstreamConfig
from s4.store.base import (
    MAX_PARTS,
    MIN_S3_PART_SIZE,
    NULL_VERSION,
    TRANSIENT_METADATA,
    VERSIONING_SUSPENDED,
    BucketInfo,
    ByteRange,
    CommitGuard,
    CompletionChecksums,
    DeleteResult,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStream,
    PartInfo,
    PartsPage,
    SourceChanged,
    StoreError,
    UploadChecksum,
    UploadInfo,
    UploadsPage,
    VersionsPage,
    WriteCondition,
)
from s4.store.checksums import not_kept
from s4.store.s3.attributes import from_response, tag_count, tagging_header, to_params
from s4.store.s3.bodies import BodyReader, BufferedBody, ResponseBody, StreamedBody, WatchedBody, content_md5, spool
from s4.store.s3.buckets import Location, NativeBuckets, SharedBucket, no_such_bucket, utc
from s4.store.s3.document_cache import DocumentCache
from s4.store.s3.documents import DOCUMENT_PREFIX, PAST_DOCUMENTS, BucketDocuments
from s4.store.s3.errors import translate, unreachable
from s4.store.s3.guarded import commit_guarded
from s4.store.s3.sent_uploads import SentUploads
from s4.store.s3.versions import (
    GATEWAY_PREFIXES,
    Found,
    VersioningStatus,
    answered_version,
    as_copy_source,
    check_version,
    current_delete_marker,
    delete_marker_version,
    entries,
    find_version,
    is_gateway_key,
    is_gateways_own,
    key_versions,
    latest_delete_marker,
    no_such_version,
    pages_lose_entries,
    record_order,
    version_info,
)

T = TypeVar("T")
_log = logging.getLogger(__name__)

GiB = 1024**3
TEMP_PREFIX = ".s4mpu/put-"
MAX_PART_SIZE = 5 * GiB
MAX_SINGLE_COPY = 5 * GiB
"""The largest object one CopyObject can copy; above it, a multipart copy (UploadPartCopy)."""
COPY_PART_SIZE = 512 * 1024**2
COPY_CONCURRENCY = 4
PARTS_PER_SIZE_STEP = 1000
MAX_SIZE_STEPS = 6
"""A body of unknown length doubles its part size every 1000 parts, up to 64 times ``part_size``
(so 8 MiB parts reach ~2.5 TB within S3's 10,000 parts, one or two parts in memory at a time)."""
PING_TIMEOUT_S = 5.0
EMPTY_FOLDER_SERVERS = ("SeaweedFS",)
"""Server headers of upstreams that may list empty folders as common prefixes: each is checked."""
FOLDER_MARKER_SERVERS = ("SeaweedFS",)
"""Server headers of upstreams whose listing past a marker skips the keys under ``marker + '/'``."""
PREFIX_CHECK_CONCURRENCY = 16
UPSTREAM_VERSIONS_PAGE = 1000
"""ListObjectVersions always asks the upstream for this many (S3's most), whatever a client's page: see
list_object_versions."""


def _etag(value: str) -> str:
    return value.strip().strip('"')


def _quoted(etag: str) -> str:
    return f'"{etag}"'


def _range_header(byte_range: ByteRange) -> str:
    if byte_range.suffix is not None:
        if byte_range.suffix <= 0:
            raise StoreError("InvalidRange", "The requested range is not satisfiable")
        return f"bytes=-{byte_range.suffix}"
    start = byte_range.start or 0
    return f"bytes={start}-{'' if byte_range.end is None else byte_range.end}"


def _content_range(value: str) -> tuple[int, int, int] | None:
    """``bytes a-b/size`` as (a, b, size)."""
    try:
        unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        first, _, last = span.partition("-")
        if unit == "bytes" and total != "*":
            return int(first), int(last), int(total)
    except ValueError:
        pass
    return None


def _answered_at(answer: dict[str, Any]) -> dt.datetime:
    """When the upstream says it answered (its clock, like its Last-Modified), else now."""
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            return utc(parsedate_to_datetime(date))
    return dt.datetime.now(dt.UTC)


class S3Store:
    """An ObjectStore whose buckets live in an upstream S3.

    Use ``store = await S3Store.open(config)`` and ``await store.close()``; ``ping()`` tells
    whether the upstream answers (for readiness).
    """

    listing_includes_metadata = False
    """ListObjects carries no user metadata: a CompressingStore HEADs listed keys (and caches)."""
    removes_for_good = GATEWAY_PREFIXES
    """Keys under these prefixes lose every version on a delete without a version id (versions.py): what
    such a delete removes is all of them, which a ledger must count."""
    takes_commit_guards = True
    """Writes and deletes take a ``guard`` (s4.store.base.CommitGuard): their commit is sent under what it
    expects of the key, which the upstream checks (If-Match / If-None-Match on PutObject, CopyObject,
    CompleteMultipartUpload and DeleteObject: AWS S3 and SeaweedFS do), and sent again when refused."""
    max_single_copy = MAX_SINGLE_COPY
    copy_part_size = COPY_PART_SIZE
    """S3's copy limits, as attributes so that a test can reach the multipart copy without 5 GiB of data."""

    def __init__(self, config: UpstreamConfig) -> None:
        """Not usable until opened; prefer ``await S3Store.open(config)``."""
        if not config.endpoint:
            raise ValueError("the S3 backend needs an upstream endpoint")
        self.config = config
        self.endpoint = config.endpoint
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._once: Any = None
        self._background: set[asyncio.Task[Any]] = set()
        if config.bucket:
            self._buckets: NativeBuckets | SharedBucket = SharedBucket(self._call, config.bucket, config.key_prefix)
        else:
            self._buckets = NativeBuckets(self._call, config.region)
        self._documents = BucketDocuments(
            self._call,
            self._buckets,
            lambda: self._client.meta.service_model,
            self._translate,
            DocumentCache(config.document_cache_seconds),
        )
        self._versioning = VersioningStatus(self._call)
        self._versions_pages_lose_entries: bool | None = None
        """Whether the upstream's ListObjectVersions loses entries past a marker (SeaweedFS); None: not known yet."""
        self._sent_uploads = SentUploads()

    @classmethod
    async def open(cls, config: UpstreamConfig) -> S3Store:
        store = cls(config)
        try:
            await store._start()
        except BaseException:
            await store.close()
            raise
        return store

    async def __aenter__(self) -> S3Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self) -> None:
        config = self.config
        session = get_session()
        verify: bool | str | None = None
        if not config.verify_tls:
            verify = False
        elif config.ca_bundle is not None:
            verify = str(config.ca_bundle)
        common = {
            "region_name": config.region,
            "endpoint_url": config.endpoint,
            "aws_access_key_id": config.access_key_id,
            "aws_secret_access_key": config.secret_access_key,
            "verify": verify,
        }
        self._client = await self._stack.enter_async_context(
            session.create_client("s3", config=self._client_config(config.max_attempts), **common)
        )
        # ListObjectVersions' interleaving of versions and delete markers, which botocore's parse drops.
        self._client.meta.events.register("before-parse.s3.ListObjectVersions", record_order)
        # One attempt only: for bodies that stream through, which cannot be sent a second time.
        self._once = await self._stack.enter_async_context(
            session.create_client("s3", config=self._client_config(1), **common)
        )

    def _client_config(self, attempts: int) -> AioConfig:
        config = self.config
        return AioConfig(
            signature_version="s3v4",
            # Bodies are checked by Content-MD5 where they are buffered, by TLS or TCP where they stream;
            # signing their SHA-256 would mean reading every body twice.
            s3={"addressing_style": config.addressing_style, "payload_signing_enabled": False},
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            retries={"mode": "standard", "total_max_attempts": attempts},
            max_pool_connections=config.max_pool_connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    async def close(self) -> None:
        """Let clean-ups under way finish, then release the clients and their connections."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._stack.aclose()

    @property
    def min_part_size(self) -> int:
        return MIN_S3_PART_SIZE

    async def ping(self) -> None:
        """Raise StoreError unless the upstream answers within a few seconds (one attempt)."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                if isinstance(self._buckets, SharedBucket):
                    await self._once.head_bucket(Bucket=self.config.bucket)
                else:
                    await self._once.list_buckets()
        except TimeoutError:
            raise unreachable(self.endpoint, f"no answer within {PING_TIMEOUT_S:g} s") from None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "AccessDenied":
                raise translate(exc, self.endpoint) from exc
            # Authenticated but not allowed to list buckets: it answers, which is all a ping asks.
        except Exception as exc:
            raise translate(exc, self.endpoint) from exc

    # --- plumbing ---------------------------------------------------------------------------------

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One upstream request (retried by botocore where that is safe); failures as StoreErrors."""
        if "Body" in params:
            body = params.pop("Body")
            return await self._send(operation, body if isinstance(body, WatchedBody) else BufferedBody(body), **params)
        try:
            return await getattr(self._client, operation)(**params)
        except Exception as exc:
            raise translate(exc, self.endpoint) from exc

    async def _send(self, operation: str, body: WatchedBody, **params: Any) -> dict[str, Any]:
        """A request with a body, which fails instead of hanging when the upstream stops taking it.

        A streamed body goes through the client that makes a single attempt.
        """
        config = self.config
        start = config.connect_timeout + config.read_timeout
        client = self._once if isinstance(body, StreamedBody) else self._client
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + start) as deadline:
                body.watch(deadline, start, config.read_timeout)
                return await getattr(client, operation)(Body=body, ContentLength=body.length, **params)
        except Exception as exc:
            if body.error is not None:
                raise body.error from None  # the client's body failed, not the upstream
            if isinstance(exc, TimeoutError):
                raise unreachable(self.endpoint, "it stopped taking the request body") from None
            raise translate(exc, self.endpoint) from exc

    async def _detached(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a clean-up to its end even when the request that started it is cancelled."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _missing(
        self, bucket: str, key: str, error: StoreError | None = None, *, bucket_known: bool = False
    ) -> StoreError:
        """A 404 for a key: the key, or the whole bucket, is missing; or the key's current version is a
        delete marker, which S3 tells (``x-amz-delete-marker`` and its id) and some upstreams do not.
        ``bucket_known``: the upstream's answer (NoSuchKey, with a body) already says the bucket exists."""
        if error is not None and error.delete_marker:
            return StoreError(error.code, error.message, resource=key, delete_marker=True, version_id=error.version_id)
        if not bucket_known and not await self._buckets.exists(bucket):
            return no_such_bucket(bucket)
        location = self._buckets.locate(bucket)
        own = is_gateways_own(location, location.key(key))
        if not own and await self._versioning.of(location.bucket, quiet=True) is not None:
            marker = await latest_delete_marker(self._call, location.bucket, location.key(key))
            if marker is not None:
                return current_delete_marker(key, marker)
        return StoreError("NoSuchKey", "The specified key does not exist.", resource=key)

    async def _version_missing(self, bucket: str, key: str, version_id: str, error: StoreError) -> StoreError:
        """A 404 (or 405) for one version: the bucket is missing, the version is a delete marker (S3's 405,
        which some upstreams answer with a 404), or there is no such version."""
        if error.code == "MethodNotAllowed" or error.delete_marker:
            return delete_marker_version(key, version_id)
        if not await self._buckets.exists(bucket):
            return no_such_bucket(bucket)
        if error.code == "NoSuchVersion":
            return no_such_version(key)
        location = self._buckets.locate(bucket)
        if await find_version(self._call, location.bucket, location.key(key), version_id) is Found.DELETE_MARKER:
            return delete_marker_version(key, version_id)
        return no_such_version(key)

    async def _copy_source(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo:
        """The source of a copy (that version of it), with S3's errors for copies."""
        try:
            return await self.head_object(bucket, key, version_id=version_id)
        except StoreError as exc:
            raise as_copy_source(exc) from None

    def _info(self, bucket: str, key: str, answer: dict[str, Any], size: int | None = None) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=answer.get("ContentLength", 0) if size is None else size,
            etag=_etag(answer.get("ETag", "")),
            last_modified=utc(answer.get("LastModified")),
            attributes=from_response(answer),
            tag_count=tag_count(answer),
            version_id=answered_version(answer),
        )

    # --- buckets ----------------------------------------------------------------------------------

    async def list_buckets(self) -> list[BucketInfo]:
        return await self._buckets.list()

    async def create_bucket(self, bucket: str) -> None:
        try:
            await self._buckets.create(bucket)
        finally:  # a bucket of that name deleted by another process: its documents are not this one's
            self._documents.forget(bucket)

    async def delete_bucket(self, bucket: str) -> None:
        try:
            await self._buckets.delete(bucket, self._is_empty_but_documents)
        finally:
            self._documents.forget(bucket)

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return await self._buckets.head(bucket)

    async def _is_empty_but_documents(self, location: Location) -> bool:
        """Whether the bucket holds nothing but its documents; if so they are removed, as the bucket is
        about to be (a client object that lands in between keeps the bucket, without its documents)."""
        # An upstream identity that may not ask (AccessDenied) had its buckets deleted before versioning came.
        versioned = await self._versioning.of(location.bucket, fresh=True, quiet=True) is not None
        if not await self._is_empty(location, versioned):
            return False
        await self._documents.clear(location, versioned)
        self._versioning.forget(location.bucket)
        return True

    async def _is_empty(self, location: Location, versioned: bool = False) -> bool:
        """No object, nor (``versioned``) any version or delete marker, only documents and our temporaries.
        A versioned bucket is looked at version by version: S3 refuses to delete one with versions left,
        and SeaweedFS deletes it with all of them."""
        operation, after = ("list_object_versions", "KeyMarker") if versioned else ("list_objects_v2", "StartAfter")
        params = {"Bucket": location.bucket, "Prefix": location.prefix, "MaxKeys": 1}
        first = _first_key(await self._call(operation, **params))
        if first is not None and location.client_key(first).startswith(DOCUMENT_PREFIX):
            # The bucket's documents sort together: is anything past them?
            first = _first_key(await self._call(operation, **params, **{after: location.key(PAST_DOCUMENTS)}))
        if first is not None:
            return False
        uploads = await self._call("list_multipart_uploads", Bucket=location.bucket, Prefix=location.prefix)
        # Our own temporary uploads (a crashed PUT's leftovers) do not keep a bucket.
        return all(location.client_key(u["Key"]).startswith(TEMP_PREFIX) for u in uploads.get("Uploads", []))

    # --- objects ----------------------------------------------------------------------------------

    async def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        location = self._buckets.locate(bucket)
        params = {} if version_id is None else {"VersionId": version_id}
        try:
            answer = await self._call("head_object", Bucket=location.bucket, Key=location.key(key), **params)
        except StoreError as exc:
            if version_id is not None and exc.code in ("NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
                raise await self._version_missing(bucket, key, version_id, exc) from None
            if exc.code == "NoSuchKey":
                raise await self._missing(bucket, key, exc) from None
            raise
        check_version(answer, key, version_id)
        return self._info(bucket, key, answer)

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> ObjectStream:
        location = self._buckets.locate(bucket)
        params = {} if byte_range is None else {"Range": _range_header(byte_range)}
        if if_match is not None:
            params["IfMatch"] = _quoted(if_match)
        if version_id is not None:
            params["VersionId"] = version_id
        try:
            answer = await self._call("get_object", Bucket=location.bucket, Key=location.key(key), **params)
        except StoreError as exc:
            if version_id is not None and exc.code in ("NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
                raise await self._version_missing(bucket, key, version_id, exc) from None
            if exc.code == "NoSuchKey":
                raise await self._missing(bucket, key, exc, bucket_known=not self._buckets.shared) from None
            raise
        stream = answer["Body"]
        try:
            check_version(answer, key, version_id)
            if if_match is not None and _etag(answer.get("ETag", "")) != if_match:  # an upstream ignoring If-Match
                raise StoreError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
            served = _content_range(answer.get("ContentRange") or "")
            if served is not None:
                first, last, size = served
                body = ResponseBody(stream, self._translate)
                return ObjectStream(self._info(bucket, key, answer, size), body, (first, last))
            info = self._info(bucket, key, answer)
            if byte_range is None:
                return ObjectStream(info, ResponseBody(stream, self._translate), None)
            # The upstream sent it all (some do for a range covering everything): cut the range here.
            first, last = byte_range.resolve(info.size)
            body = ResponseBody(stream, self._translate, skip=first, length=last - first + 1)
            return ObjectStream(info, body, (first, last))
        except BaseException:
            stream.close()
            raise

    def _translate(self, exc: BaseException) -> StoreError:
        return translate(exc, self.endpoint)

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        attributes: ObjectAttributes,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        content_etag: bool = True,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        del content_etag  # the upstream's ETag costs the gateway nothing (see ObjectStore.put_object)
        try:
            return await self._put_object(bucket, key, body, attributes, condition, tags, guard)
        finally:  # a bucket document written as an object (the sweep, a tool): not kept as it was
            self._documents.written(bucket, key)

    async def _put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        attributes: ObjectAttributes,
        condition: WriteCondition | None,
        tags: Mapping[str, str] | None,
        guard: CommitGuard | None,
    ) -> ObjectInfo:
        location = await self._buckets.require(bucket)
        reader = BodyReader(body)
        threshold = self.config.multipart_threshold
        first = await reader.read(threshold + 1)
        if len(first) <= threshold:
            # The body has ended: its attributes are final now.
            whole, md5 = first, await content_md5(first)

            def send(commit_condition: WriteCondition | None) -> Awaitable[dict[str, Any]]:
                return self._call(
                    "put_object",
                    Bucket=location.bucket,
                    Key=location.key(key),
                    Body=whole,
                    ContentMD5=md5,
                    **to_params(attributes),
                    **_tagging_params(tags),
                    **_condition_params(commit_condition),
                )

            answer = await commit_guarded(condition, guard, send)
            info = ObjectInfo(bucket, key, len(first), _etag(answer["ETag"]), _answered_at(answer), attributes)
            version_id = answered_version(answer)
            return dataclasses.replace(info, tag_count=len(tags or {}), version_id=version_id)
        reader.unread(first)
        del first
        return await self._put_through_temporary(
            bucket, key, location, reader, attributes, getattr(body, "expected_size", None), condition, tags, guard
        )

    async def _put_through_temporary(
        self,
        bucket: str,
        key: str,
        location: Location,
        reader: BodyReader,
        attributes: ObjectAttributes,
        expected_size: int | None,
        condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        """Multipart upload to a temporary key, then a server-side copy onto ``key`` with the final metadata
        and tags (the copy carries ``condition`` and ``guard``: it is the commit)."""
        temp = location.key(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        created = await self._call("create_multipart_upload", Bucket=location.bucket, Key=temp)
        upload_id = created["UploadId"]
        temp_version: str | None = None
        try:
            parts, size = await self._upload_parts(location.bucket, temp, upload_id, reader, expected_size)
            completed = await self._call(
                "complete_multipart_upload",
                Bucket=location.bucket,
                Key=temp,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            # In a versioned bucket the temporary is a version of its own, removed by its id (no delete marker).
            temp_version = answered_version(completed)
            # The body has ended without error: its attributes are final now.
            source = ObjectInfo(bucket, temp, size, "", dt.datetime.now(dt.UTC), version_id=temp_version)
            # The temporary has no tags: copying them (tags None) gives the object none.
            info = await self._copy_stored(
                location, source, location, bucket, key, attributes, True, condition, tags or None, guard
            )
        except BaseException:
            await self._detached(self._discard_temporary(location.bucket, temp, upload_id))
            raise
        await self._detached(self._delete_quietly(location.bucket, temp, temp_version))
        return info

    def _part_size(self, uploaded: int, expected_size: int | None) -> int:
        base = self.config.part_size
        if expected_size is not None and expected_size > base * MAX_PARTS:
            return min(MAX_PART_SIZE, -(-expected_size // (MAX_PARTS - 1)))
        return min(MAX_PART_SIZE, base << min(uploaded // PARTS_PER_SIZE_STEP, MAX_SIZE_STEPS))

    async def _upload_parts(
        self, bucket: str, key: str, upload_id: str, reader: BodyReader, expected_size: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Parts read from the body while the previous one goes up: two parts in memory at most."""
        parts: list[dict[str, Any]] = []
        size = 0
        in_flight: asyncio.Task[dict[str, Any]] | None = None
        try:
            while True:
                data = await reader.read(self._part_size(len(parts), expected_size))
                if not data:
                    break
                if in_flight is not None:
                    parts.append(await in_flight)
                    in_flight = None
                number = len(parts) + 1
                if number > MAX_PARTS:
                    raise StoreError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size")
                size += len(data)
                in_flight = asyncio.create_task(self._upload_buffer(bucket, key, upload_id, number, data))
                del data
            if in_flight is not None:
                parts.append(await in_flight)
                in_flight = None
        finally:
            if in_flight is not None:
                in_flight.cancel()
                with contextlib.suppress(BaseException):
                    await in_flight
        return parts, size

    async def _upload_buffer(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = await self._call(
            "upload_part",
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ContentMD5=await content_md5(data),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _discard_temporary(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort the upload and delete the temporary object (its completion may have gone through)."""
        with contextlib.suppress(StoreError):
            await self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        await self._delete_quietly(bucket, key)

    async def _delete_quietly(self, bucket: str, key: str, version_id: str | None = None) -> None:
        try:
            await self._delete_gateway_key(bucket, key, version_id)
        except StoreError as exc:
            _log.warning("could not delete the temporary object %s/%s (%s); an expiry rule may", bucket, key, exc)

    async def _delete_gateway_key(
        self, bucket: str, key: str, version_id: str | None = None, condition: WriteCondition | None = None
    ) -> dict[str, Any]:
        """Delete one of the gateway's own keys (upstream names) for good: in a versioned bucket, a delete
        marker and the versions under it would stay forever, unseen. ``condition``: If-Match on the delete."""
        params = {"VersionId": version_id} if version_id is not None else _condition_params(condition)
        answer = await self._call("delete_object", Bucket=bucket, Key=key, **params)
        if version_id is None and answer.get("DeleteMarker"):
            await self._purge(bucket, key)
        return answer

    async def _purge(self, bucket: str, key: str) -> None:
        """Remove every version and delete marker of ``key`` (upstream names), as long as that gets anywhere."""
        removed: set[str] = set()
        while True:
            found, _ = await key_versions(self._call, bucket, key)
            left = [(e.get("VersionId") or NULL_VERSION, marker) for e, marker in found]
            if not left or {vid for vid, _ in left} <= removed:
                return
            for vid, marker in left:
                await self._remove_version(
                    bucket, key, vid, Found.DELETE_MARKER if marker else Found.VERSION, gateways_own=True
                )
                removed.add(vid)

    async def _remove_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        found: Found,
        *,
        gateways_own: bool = False,
        condition: WriteCondition | None = None,
    ) -> dict[str, Any]:
        """Delete one version or delete marker for good (upstream names). A null delete marker that the upstream
        keeps (SeaweedFS answers 204 and keeps it) of the gateway's own keys is replaced by an empty null
        version, deleted in turn, on a Suspended bucket. Not for a client's key: a client's PUT landing between
        those two steps would be deleted for good after it was reported stored, so there, and on an Enabled
        bucket, NotImplemented says the upstream cannot remove it (versions.py). ``condition``: If-Match on
        the version's delete."""
        params = _condition_params(condition)
        answer = await self._call("delete_object", Bucket=bucket, Key=key, VersionId=version_id, **params)
        if version_id != NULL_VERSION or found is not Found.DELETE_MARKER:
            return answer
        if await find_version(self._call, bucket, key, NULL_VERSION) is not Found.DELETE_MARKER:
            return answer
        if not gateways_own:
            raise StoreError(
                "NotImplemented",
                "The upstream S3 cannot remove a null delete marker (it answers 204 and keeps it); a new PUT of"
                " the key replaces it",
            )
        if await self._versioning.of(bucket, fresh=True) != VERSIONING_SUSPENDED:
            raise StoreError(
                "NotImplemented",
                "The upstream S3 cannot remove a null delete marker while the bucket's versioning is Enabled:"
                " suspend versioning, then delete it",
            )
        await self._call("put_object", Bucket=bucket, Key=key, Body=b"", Metadata={TRANSIENT_METADATA: "1"})
        return await self._call("delete_object", Bucket=bucket, Key=key, VersionId=NULL_VERSION)

    async def delete_object(
        self, bucket: str, key: str, *, version_id: str | None = None, guard: CommitGuard | None = None
    ) -> DeleteResult:
        """``guard``: see CommitGuard (without ``version_id``, a key it finds empty is not sent a delete)."""
        try:
            return await self._delete_object(bucket, key, version_id, guard)
        finally:  # a bucket document removed as an object (the sweep clearing a bucket): not kept as it was
            self._documents.written(bucket, key)

    async def _delete_object(
        self, bucket: str, key: str, version_id: str | None, guard: CommitGuard | None
    ) -> DeleteResult:
        location = await self._buckets.require(bucket)
        upstream_key = location.key(key)
        if version_id is None:
            if is_gateway_key(location, upstream_key):

                def send_gateways(commit_condition: WriteCondition | None) -> Awaitable[dict[str, Any]]:
                    return self._delete_gateway_key(location.bucket, upstream_key, condition=commit_condition)

                await commit_guarded(None, guard, send_gateways, absent=dict)
                return DeleteResult()

            def send(commit_condition: WriteCondition | None) -> Awaitable[dict[str, Any]]:
                params = _condition_params(commit_condition)
                return self._call("delete_object", Bucket=location.bucket, Key=upstream_key, **params)

            answer = await commit_guarded(None, guard, send, absent=dict)
            return DeleteResult(answered_version(answer), bool(answer.get("DeleteMarker")))

        def send_version(commit_condition: WriteCondition | None) -> Awaitable[DeleteResult]:
            return self._delete_version(location, upstream_key, version_id, commit_condition)

        return await commit_guarded(None, guard, send_version)

    async def _delete_version(
        self, location: Location, upstream_key: str, version_id: str, condition: WriteCondition | None
    ) -> DeleteResult:
        """Delete one version by its id; ``condition``: If-Match that version's ETag (412 when it is gone)."""
        # Only a version that is there: S3 answers 204 for one that is not, and deletes nothing, while SeaweedFS
        # deletes the current object (never-versioned bucket) or brings a deleted one back (malformed id).
        found = await find_version(self._call, location.bucket, upstream_key, version_id)
        if found is Found.ABSENT:
            versioning = await self._versioning.of(location.bucket, fresh=True, quiet=True)
            if version_id != NULL_VERSION and versioning is None:
                # A bucket never versioned knows no id but null: S3 (and the embedded store) answer 400.
                raise StoreError("InvalidArgument", "Invalid version id specified", resource=version_id)
            if condition is not None:  # the version the guard saw went meanwhile: another delete removed it
                raise _version_changed()
            return DeleteResult(version_id)
        if condition is not None and found is not Found.VERSION:  # the version looked at became a delete marker
            raise _version_changed()
        answer = await self._remove_version(
            location.bucket,
            upstream_key,
            version_id,
            found,
            gateways_own=is_gateways_own(location, upstream_key),
            condition=condition,
        )
        marker = found is Found.DELETE_MARKER or bool(answer.get("DeleteMarker"))
        return DeleteResult(answered_version(answer) or version_id, marker)

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        attributes: ObjectAttributes | None,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        src_version_id: str | None = None,
        src_etag: str | None = None,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        source_location = self._buckets.locate(src_bucket)
        target = await self._buckets.require(dst_bucket)
        source = await self._copy_source(src_bucket, src_key, src_version_id)
        if src_etag is not None and source.etag != src_etag:
            raise SourceChanged()  # and CopySourceIfMatch below holds the upstream to this one
        kept = source.attributes if attributes is None else attributes
        stored = ObjectInfo(
            src_bucket,
            source_location.key(src_key),
            source.size,
            source.etag,
            source.last_modified,
            version_id=src_version_id,
        )
        replace = attributes is not None
        return await self._copy_stored(
            source_location,
            stored,
            target,
            dst_bucket,
            dst_key,
            kept,
            replace=replace,
            condition=condition,
            tags=tags,
            guard=guard,
        )

    async def _copy_stored(
        self,
        source_location: Location,
        source: ObjectInfo,
        target: Location,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        replace: bool,
        condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        """Server-side copy of ``source`` (an upstream key) onto ``key``; source.etag, when set, must still match,
        and ``condition`` (or ``guard``) must hold for ``key`` at the commit. ``tags`` None copies the source's
        tags. ``source.version_id``, when set, names the source's version."""
        copy_source = {"Bucket": source_location.bucket, "Key": source.key}
        if source.version_id is not None:
            copy_source["VersionId"] = source.version_id
        source_condition = {"CopySourceIfMatch": _quoted(source.etag)} if source.etag else {}
        if source.size > self.max_single_copy:
            return await self._multipart_copy(
                copy_source, source_condition, source.size, target, bucket, key, attributes, condition, tags, guard
            )
        directive = {"MetadataDirective": "REPLACE", **to_params(attributes)} if replace else {}
        if tags is not None:
            directive |= {"TaggingDirective": "REPLACE", "Tagging": tagging_header(tags)}

        def send(commit_condition: WriteCondition | None) -> Awaitable[dict[str, Any]]:
            return self._call(
                "copy_object",
                Bucket=target.bucket,
                Key=target.key(key),
                CopySource=copy_source,
                **source_condition,
                **directive,
                **_condition_params(commit_condition),
            )

        try:
            answer = await commit_guarded(condition, guard, send)
        except StoreError as exc:
            raise _changed_during_copy(exc, condition) from None
        result = answer.get("CopyObjectResult", {})
        last_modified = utc(result["LastModified"]) if result.get("LastModified") else _answered_at(answer)
        version_id = answered_version(answer)
        etag = _etag(result.get("ETag", ""))
        return ObjectInfo(bucket, key, source.size, etag, last_modified, attributes, version_id=version_id)

    async def _multipart_copy(
        self,
        copy_source: dict[str, str],
        condition: dict[str, str],
        size: int,
        target: Location,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        write_condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        """A copy too big for CopyObject: UploadPartCopy ranges, a few at a time; the key appears at Complete
        (which carries ``write_condition`` or ``guard``). Its tags are set when the upload starts: the source's when
        ``tags`` is None, as CopyObject would copy them."""
        if tags is None:
            tags = await self._tags_of(copy_source["Bucket"], copy_source["Key"], copy_source.get("VersionId"))
        created = await self._call(
            "create_multipart_upload",
            Bucket=target.bucket,
            Key=target.key(key),
            **to_params(attributes),
            **_tagging_params(tags),
        )
        upload_id = created["UploadId"]
        span = max(self.copy_part_size, MIN_S3_PART_SIZE, math.ceil(size / MAX_PARTS))
        gate = asyncio.Semaphore(COPY_CONCURRENCY)

        async def copy_part(number: int, first: int) -> dict[str, Any]:
            async with gate:
                answer = await self._call(
                    "upload_part_copy",
                    Bucket=target.bucket,
                    Key=target.key(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={first}-{min(first + span, size) - 1}",
                    **condition,
                )
            return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

        try:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(copy_part(n, first)) for n, first in enumerate(range(0, size, span), start=1)
                    ]
            except BaseExceptionGroup as group_error:
                raise _changed_during_copy(_first_store_error(group_error)) from None
            send = self._completing(target.bucket, target.key(key), upload_id, [t.result() for t in tasks])
            answer = await commit_guarded(write_condition, guard, send)
        except BaseException:
            await self._detached(self._abort_quietly(target.bucket, target.key(key), upload_id))
            raise
        version_id = answered_version(answer)
        etag = _etag(answer["ETag"])
        return ObjectInfo(bucket, key, size, etag, _answered_at(answer), attributes, version_id=version_id)

    async def _abort_quietly(self, bucket: str, key: str, upload_id: str) -> None:
        with contextlib.suppress(StoreError):
            await self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        location = await self._buckets.require(bucket)
        params: dict[str, Any] = {"Bucket": location.bucket, "Prefix": location.key(prefix)}
        if max_keys <= 0:
            await self._call("list_objects_v2", MaxKeys=1, **params)  # still NoSuchBucket for a missing bucket
            return ListPage([], [], False, None)
        params["MaxKeys"] = min(max_keys, 1000)
        if delimiter:
            params["Delimiter"] = delimiter
        if start_after:
            params["StartAfter"] = location.key(start_after)
        answer = await self._call("list_objects_v2", **params)
        objects, prefixes, truncated = _listed(location, bucket, answer)
        if start_after and _skips_folder_at_marker(answer):
            objects, prefixes, truncated = await self._with_folder_at_marker(
                location, bucket, prefix, delimiter, start_after, params["MaxKeys"], (objects, prefixes, truncated)
            )
        last = max([*objects[-1:], *prefixes[-1:]], key=_listing_order, default=None)
        if start_after:
            # A common prefix that start_after falls in was listed on an earlier page.
            prefixes = [p for p in prefixes if not start_after.startswith(p)]
        if prefixes and _keeps_empty_folders(answer):
            prefixes = await self._non_empty(location, prefixes)
        marker = None if not truncated or last is None else last.key if isinstance(last, ObjectInfo) else last
        return ListPage(objects, prefixes, truncated, marker)

    async def _with_folder_at_marker(
        self,
        location: Location,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        start_after: str,
        max_keys: int,
        listed: tuple[list[ObjectInfo], list[str], bool],
    ) -> tuple[list[ObjectInfo], list[str], bool]:
        """A listing past ``start_after`` with the keys under ``start_after + '/'`` put back. SeaweedFS walks
        folders and starts after the marker's name in its folder, so the folder of that very name ('a' for
        the keys 'a/b', 'a/c/d') is skipped although all its keys sort after 'a': a client paging with a
        marker that is both a key and a folder lost them. Those keys are asked for apart (one more request
        per page) and put first, where the upstream's own order has them."""
        objects, prefixes, truncated = listed
        folder = start_after + "/"
        if folder.startswith(prefix):
            under = folder
        elif prefix.startswith(folder):
            under = prefix
        else:
            return listed
        rest = under[len(prefix) :]
        extra_objects: list[ObjectInfo] = []
        extra_prefixes: list[str] = []
        extra_truncated = False
        if delimiter and delimiter in rest:
            # Every key of the folder rolls up into one common prefix: listed if it holds any key.
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if start_after.startswith(common):
                return listed
            probe = await self._call("list_objects_v2", Bucket=location.bucket, Prefix=location.key(under), MaxKeys=1)
            if probe.get("Contents"):
                extra_prefixes.append(common)
        else:
            params: dict[str, Any] = {"Bucket": location.bucket, "Prefix": location.key(under), "MaxKeys": max_keys}
            if delimiter:
                params["Delimiter"] = delimiter
            answer = await self._call("list_objects_v2", **params)
            extra_objects, extra_prefixes, extra_truncated = _listed(location, bucket, answer)
        if not extra_objects and not extra_prefixes:
            return listed
        # The folder's keys come first (the upstream's order: a folder right after the name it shares);
        # where that answer was cut, the page ends with it.
        merged: dict[tuple[bool, str], ObjectInfo | str] = {}
        rest_items = [] if extra_truncated else [*objects, *prefixes]
        for item in [*extra_objects, *extra_prefixes, *rest_items]:
            merged.setdefault((isinstance(item, str), item if isinstance(item, str) else item.key), item)
        items = list(merged.values())
        more = truncated or extra_truncated or len(items) > max_keys
        items = items[:max_keys]
        return (
            [i for i in items if isinstance(i, ObjectInfo)],
            [i for i in items if isinstance(i, str)],
            more,
        )

    async def _non_empty(self, location: Location, prefixes: list[str], versions: bool = False) -> list[str]:
        """The common prefixes that still hold an object (or, with ``versions``, a version or delete marker):
        one small listing each, a few at a time."""
        gate = asyncio.Semaphore(PREFIX_CHECK_CONCURRENCY)
        operation = "list_object_versions" if versions else "list_objects_v2"

        async def holds_objects(prefix: str) -> bool:
            async with gate:
                answer = await self._call(operation, Bucket=location.bucket, Prefix=location.key(prefix), MaxKeys=1)
            return bool(answer.get("Contents") or answer.get("Versions") or answer.get("DeleteMarkers"))

        kept = await asyncio.gather(*(holds_objects(p) for p in prefixes))
        return [p for p, keep in zip(prefixes, kept, strict=True) if keep]

    # --- versions: the upstream's own (see versions.py) ---------------------------------------------

    async def get_bucket_versioning(self, bucket: str) -> str | None:
        """The upstream bucket's status; with the shared layout, the one upstream bucket's, for every bucket."""
        location = await self._buckets.require(bucket)
        return await self._versioning.of(location.bucket, fresh=True)

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        location = await self._buckets.require(bucket)
        if self._buckets.shared:
            raise StoreError(
                "NotImplemented",
                "Versioning here is the one shared upstream bucket's, for every bucket: set it on the upstream bucket",
            )
        await self._call("put_bucket_versioning", Bucket=location.bucket, VersioningConfiguration={"Status": status})
        self._versioning.remember(location.bucket, status)

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionsPage:
        """The upstream's ListObjectVersions, versions and delete markers in S3's order. The upstream is asked
        for whole pages, which this store cuts to ``max_keys`` itself: an upstream may lose entries when it
        cuts pages (SeaweedFS, see versions.py)."""
        location = await self._buckets.require(bucket)
        version_id_marker = version_id_marker or None
        params: dict[str, Any] = {"Bucket": location.bucket, "Prefix": location.key(prefix)}
        if max_keys <= 0:
            await self._call("list_object_versions", MaxKeys=1, **params)  # still NoSuchBucket for a missing bucket
            return VersionsPage([], [], False, None, None)
        params["MaxKeys"] = UPSTREAM_VERSIONS_PAGE
        max_keys = min(max_keys, UPSTREAM_VERSIONS_PAGE)
        if delimiter:
            params["Delimiter"] = delimiter
        answer: dict[str, Any] | None = None
        if key_marker and self._versions_pages_lose_entries is not False:
            # An upstream whose markers lose entries (SeaweedFS): the whole listing, when it fits in one answer.
            answer = await self._call("list_object_versions", **params)
            self._versions_pages_lose_entries = pages_lose_entries(answer)
            if answer.get("IsTruncated") or not self._versions_pages_lose_entries:
                answer = None
        whole = answer is not None
        if answer is None:
            if key_marker:
                params["KeyMarker"] = location.key(key_marker)
                if version_id_marker:
                    params["VersionIdMarker"] = version_id_marker
            answer = await self._call("list_object_versions", **params)
        versions = [
            version_info(bucket, location.client_key(entry["Key"]), entry, delete_marker)
            for entry, delete_marker in entries(answer)
        ]
        prefixes = [location.client_key(p["Prefix"]) for p in answer.get("CommonPrefixes", [])]
        # Versions (newest first per key, kept by the stable sort) and common prefixes in key order, cut here.
        items: list[ObjectInfo | str] = sorted([*versions, *prefixes], key=_listing_order)
        if whole and key_marker:
            items = _after_marker(items, key_marker, version_id_marker)
        elif key_marker:
            # A common prefix that the key marker falls in was listed on an earlier page.
            items = [i for i in items if not isinstance(i, str) or not key_marker.startswith(i)]
        if prefixes and _keeps_empty_folders(answer):
            items = await self._without_empty_folders(location, items, max_keys + 1)
        page, more = items[:max_keys], len(items) > max_keys
        truncated = more or bool(answer.get("IsTruncated"))
        next_key: str | None = None
        next_version: str | None = None
        if truncated and not more and answer.get("NextKeyMarker"):
            next_key = location.client_key(answer["NextKeyMarker"])
            next_version = answer.get("NextVersionIdMarker") or None
        elif truncated and page:
            last = page[-1]
            next_key = last.key if isinstance(last, ObjectInfo) else last
            next_version = last.version_id if isinstance(last, ObjectInfo) else None
        listed = [item for item in page if isinstance(item, ObjectInfo)]
        rolled_up = [item for item in page if isinstance(item, str)]
        return VersionsPage(listed, rolled_up, truncated, next_key, next_version)

    async def _without_empty_folders(
        self, location: Location, items: list[ObjectInfo | str], wanted: int
    ) -> list[ObjectInfo | str]:
        """``items`` less the common prefixes that hold nothing any more, checked among the first ``wanted``."""
        checked: set[str] = set()
        while True:
            unchecked = [i for i in items[:wanted] if isinstance(i, str) and i not in checked]
            if not unchecked:
                return items
            empty = set(unchecked) - set(await self._non_empty(location, unchecked, versions=True))
            checked.update(unchecked)
            items = [i for i in items if not isinstance(i, str) or i not in empty]

    # --- multipart --------------------------------------------------------------------------------

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        if checksum is not None:
            raise not_kept()
        location = await self._buckets.require(bucket)
        answer = await self._call(
            "create_multipart_upload",
            Bucket=location.bucket,
            Key=location.key(key),
            **to_params(attributes),
            **_tagging_params(tags),
        )
        self._sent_uploads.created(answer["UploadId"], attributes, len(tags or {}))
        return answer["UploadId"]

    # --- tags: the upstream's own object tagging, so changing them never rewrites the object ---------

    async def get_object_tagging(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, str]:
        location = self._buckets.locate(bucket)
        if version_id is not None:
            # The version must exist: an upstream may answer for the current object instead (see versions.py).
            await self.head_object(bucket, key, version_id=version_id)
        try:
            return await self._tags_of(location.bucket, location.key(key), version_id)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                raise await self._missing(bucket, key) from None
            raise

    async def put_object_tagging(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str | None = None
    ) -> None:
        location = self._buckets.locate(bucket)
        params = {"Bucket": location.bucket, "Key": location.key(key)}
        if version_id is not None:
            # The version must exist: an upstream may tag the current object instead (see versions.py).
            await self.head_object(bucket, key, version_id=version_id)
            params["VersionId"] = version_id
        try:
            if tags:
                tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
                await self._call("put_object_tagging", Tagging={"TagSet": tag_set}, **params)
            else:
                await self._call("delete_object_tagging", **params)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                raise await self._missing(bucket, key) from None
            raise

    async def _tags_of(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """The tags of an upstream key (upstream names), or of one of its versions."""
        params = {} if version_id is None else {"VersionId": version_id}
        answer = await self._call("get_object_tagging", Bucket=bucket, Key=key, **params)
        return {tag["Key"]: tag.get("Value", "") for tag in answer.get("TagSet", [])}

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: AsyncIterable[bytes]
    ) -> PartInfo:
        """A part goes up as one upstream part: streamed when its length is declared and large,
        otherwise gathered in a temporary file (in memory up to ``part_size``) and sent with its MD5."""
        location = self._buckets.locate(bucket)
        if not 1 <= part_number <= MAX_PARTS:
            raise StoreError("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        target = {"Bucket": location.bucket, "Key": location.key(key), "UploadId": upload_id, "PartNumber": part_number}
        expected = getattr(body, "expected_size", None)
        if expected is not None and expected > MAX_PART_SIZE:
            raise StoreError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        if expected is not None and expected > self.config.part_size:
            answer = await self._send("upload_part", StreamedBody(body, expected), **target)
            size = expected
        else:
            spooled = await spool(body, self.config.part_size, MAX_PART_SIZE)
            try:
                buffered = BufferedBody(spooled.file, spooled.size)
                answer = await self._send("upload_part", buffered, ContentMD5=spooled.md5, **target)
            finally:
                spooled.close()
            size = spooled.size
        self._sent_uploads.part_sent(upload_id, part_number, _etag(answer["ETag"]), size)
        return PartInfo(part_number, size, _etag(answer["ETag"]), _answered_at(answer))

    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        byte_range: ByteRange | None = None,
        *,
        src_version_id: str | None = None,
        src_etag: str | None = None,
    ) -> PartInfo:
        location = self._buckets.locate(bucket)
        source_location = self._buckets.locate(src_bucket)
        source = await self._copy_source(src_bucket, src_key, src_version_id)
        if src_etag is not None and source.etag != src_etag:
            raise SourceChanged()  # and CopySourceIfMatch below holds the upstream to this one
        copy_source = {"Bucket": source_location.bucket, "Key": source_location.key(src_key)}
        if src_version_id is not None:
            copy_source["VersionId"] = src_version_id
        params: dict[str, Any] = {"CopySourceIfMatch": _quoted(source.etag)}
        size = source.size
        if byte_range is not None:
            first, last = byte_range.resolve(source.size)
            params["CopySourceRange"] = f"bytes={first}-{last}"
            size = last - first + 1
        try:
            answer = await self._call(
                "upload_part_copy",
                Bucket=location.bucket,
                Key=location.key(key),
                UploadId=upload_id,
                PartNumber=part_number,
                CopySource=copy_source,
                **params,
            )
        except StoreError as exc:
            raise _changed_during_copy(exc) from None
        result = answer.get("CopyPartResult", {})
        last_modified = utc(result["LastModified"]) if result.get("LastModified") else _answered_at(answer)
        self._sent_uploads.part_sent(upload_id, part_number, _etag(result.get("ETag", "")), size)
        return PartInfo(part_number, size, _etag(result.get("ETag", "")), last_modified)

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        *,
        checksums: CompletionChecksums | None = None,
        guard: CommitGuard | None = None,
    ) -> ObjectInfo:
        if checksums is not None:
            raise not_kept()
        if not parts:
            raise StoreError("MalformedXML", "The XML you provided was not well-formed or did not validate")
        location = self._buckets.locate(bucket)
        listed = [{"PartNumber": number, "ETag": _quoted(_etag(etag))} for number, etag in parts]
        chosen = [(number, _etag(etag)) for number, etag in parts]
        sent = self._sent_uploads.described(upload_id, chosen)
        # An upload this process did not create (or forgot): its parts' sizes are asked first (gone after).
        size = sent.size if sent is not None else await self._completed_size(bucket, key, upload_id, chosen)
        send = self._completing(location.bucket, location.key(key), upload_id, listed)
        try:
            answer = await commit_guarded(condition, guard, send)
        except StoreError as exc:
            if exc.code == "NoSuchUpload":  # completed or aborted by another request: nothing more to send
                self._sent_uploads.forget(upload_id)
            raise
        self._sent_uploads.forget(upload_id)
        # The object just made, as the answer names it (another writer's may be current already, or none);
        # no version id on a Suspended bucket, as S3 names none there. The answer's ETag is the one a HEAD
        # gives (S3, SeaweedFS): the sidecar is bound to it.
        version_id = answered_version(answer)
        etag = _etag(answer["ETag"])
        answered = _answered_at(answer)
        if sent is not None:
            attributes = dataclasses.replace(sent.attributes)
            return ObjectInfo(
                bucket, key, sent.size, etag, answered, attributes, tag_count=sent.tag_count, version_id=version_id
            )
        try:
            info = await self.head_object(bucket, key, version_id=version_id)
            if info.etag == etag:
                return dataclasses.replace(info, version_id=version_id)
        except StoreError as exc:
            if exc.code not in ("NoSuchKey", "NoSuchVersion"):
                raise
        # Replaced or removed already: what it was created with is known to its creator only.
        if size is None:
            _log.warning("completed %s/%s: replaced before it could be described; its size is not known", bucket, key)
        return ObjectInfo(bucket, key, size or 0, etag, answered, version_id=version_id)

    async def _completed_size(
        self, bucket: str, key: str, upload_id: str, chosen: Sequence[tuple[int, str]]
    ) -> int | None:
        """The size of the object a Complete of ``chosen`` parts (number, ETag) makes, from the upload's
        listing (a part not listed, or listed with another ETag, is the Complete's InvalidPart to raise);
        None when the listing is refused or the upload is gone (a retried Complete): the Complete answers."""
        sizes: dict[int, tuple[str, int]] = {}
        marker = 0
        while True:
            try:
                page = await self.list_parts(bucket, key, upload_id, marker)
            except StoreError as exc:
                if exc.code in ("NoSuchUpload", "AccessDenied"):
                    return None
                raise
            sizes.update((p.part_number, (p.etag, p.size)) for p in page.parts)
            if not page.is_truncated or page.next_part_number_marker is None or page.next_part_number_marker <= marker:
                break
            marker = page.next_part_number_marker
        return sum(sizes[number][1] for number, etag in chosen if sizes.get(number, ("", 0))[0] == etag)

    def _completing(
        self, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]
    ) -> Callable[[WriteCondition | None], Awaitable[dict[str, Any]]]:
        """The CompleteMultipartUpload of an upstream upload (upstream names), to send under a condition."""

        def send(condition: WriteCondition | None) -> Awaitable[dict[str, Any]]:
            return self._call(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **_condition_params(condition),
            )

        return send

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        location = self._buckets.locate(bucket)
        try:
            await self._call(
                "abort_multipart_upload", Bucket=location.bucket, Key=location.key(key), UploadId=upload_id
            )
        finally:  # aborted, or gone already (completed or aborted by another request)
            self._sent_uploads.forget(upload_id)

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0, max_parts: int = 1000
    ) -> PartsPage:
        location = self._buckets.locate(bucket)
        answer = await self._call(
            "list_parts",
            Bucket=location.bucket,
            Key=location.key(key),
            UploadId=upload_id,
            PartNumberMarker=max(part_number_marker, 0),
            MaxParts=max(min(max_parts, 1000), 1),
        )
        parts = [
            PartInfo(p["PartNumber"], p.get("Size", 0), _etag(p.get("ETag", "")), utc(p.get("LastModified")))
            for p in answer.get("Parts", [])
        ]
        truncated = bool(answer.get("IsTruncated")) and bool(parts)
        upload = UploadInfo(bucket, key, upload_id, utc(answer.get("Initiated")))
        return PartsPage(upload, parts, truncated, parts[-1].part_number if truncated else None)

    # --- bucket documents: see documents.py ---------------------------------------------------------

    @property
    def lifecycle_upstream(self) -> bool:
        """Whether the upstream carries out lifecycle documents itself (see documents.py)."""
        return self._documents.lifecycle_upstream

    async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
        return await self._documents.get(bucket, name)

    async def get_bucket_documents(self, bucket: str, names: Sequence[str]) -> dict[str, bytes | None]:
        """As the base says: read within ``document_cache_seconds`` (s4.store.s3.document_cache)."""
        if not names:
            await self.head_bucket(bucket)  # NoSuchBucket, as for any names
            return {}
        found = await asyncio.gather(*(self._documents.get_kept(bucket, name) for name in names))
        return dict(zip(names, found, strict=True))

    async def put_bucket_document(self, bucket: str, name: str, document: bytes) -> None:
        await self._documents.put(bucket, name, document)

    async def delete_bucket_document(self, bucket: str, name: str) -> None:
        await self._documents.delete(bucket, name)

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        location = await self._buckets.require(bucket)
        params: dict[str, Any] = {
            "Bucket": location.bucket,
            "Prefix": location.key(prefix),
            "MaxUploads": max(min(max_uploads, 1000), 1),
        }
        if key_marker is not None:
            params["KeyMarker"] = location.key(key_marker)
            if upload_id_marker:
                params["UploadIdMarker"] = upload_id_marker
        answer = await self._call("list_multipart_uploads", **params)
        listed = [
            UploadInfo(bucket, location.client_key(u["Key"]), u["UploadId"], utc(u.get("Initiated")))
            for u in answer.get("Uploads", [])
        ]
        truncated = bool(answer.get("IsTruncated")) and bool(listed)
        # Our own temporaries (in flight, or left by a PUT that died) are listed only when asked for
        # by a prefix of their reserved name: the sweep of leftovers and DeleteBucket do.
        asked = bool(prefix) and (prefix.startswith(TEMP_PREFIX) or TEMP_PREFIX.startswith(prefix))
        uploads = listed if asked else [u for u in listed if not u.key.startswith(TEMP_PREFIX)]
        last = listed[-1] if truncated else None
        return UploadsPage(uploads, [], truncated, last.key if last else None, last.upload_id if last else None)


def _keeps_empty_folders(answer: dict[str, Any]) -> bool:
    """Upstreams on a file-system-like namespace list a folder whose objects are all deleted as a
    common prefix until they clean it up (SeaweedFS, for a while); S3 never shows an empty prefix."""
    server = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")
    return server.startswith(EMPTY_FOLDER_SERVERS)


def _after_marker(
    items: list[ObjectInfo | str], key_marker: str, version_id_marker: str | None
) -> list[ObjectInfo | str]:
    """The listed versions and common prefixes (in S3's order) after ``(key_marker, version_id_marker)``, as
    S3 pages them: past every version of ``key_marker`` without a version marker, past that version with
    one; a common prefix that the key marker falls in was listed on an earlier page."""
    marker = key_marker.encode("utf-8", "surrogatepass")
    kept: list[ObjectInfo | str] = []
    skipping_key = version_id_marker is not None
    for item in items:
        if isinstance(item, str):
            if item.encode("utf-8", "surrogatepass") > marker and not key_marker.startswith(item):
                kept.append(item)
            continue
        position = item.key.encode("utf-8", "surrogatepass")
        if position > marker:
            kept.append(item)
        elif position == marker and version_id_marker is not None and not skipping_key:
            kept.append(item)  # after the version marker, newest first
        elif position == marker and item.version_id == version_id_marker:
            skipping_key = False
    return kept


def _first_key(answer: dict[str, Any]) -> str | None:
    """The first key of a ListObjectsV2 or ListObjectVersions answer."""
    listed = [*answer.get("Contents", []), *(entry for entry, _ in entries(answer))]
    return min((item["Key"] for item in listed), key=lambda k: k.encode("utf-8", "surrogatepass"), default=None)


def _skips_folder_at_marker(answer: dict[str, Any]) -> bool:
    """Upstreams that list past a marker folder by folder and skip the folder named as the marker
    (SeaweedFS): see S3Store._with_folder_at_marker."""
    server = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")
    return server.startswith(FOLDER_MARKER_SERVERS)


def _listing_order(item: ObjectInfo | str) -> bytes:
    return (item.key if isinstance(item, ObjectInfo) else item).encode("utf-8", "surrogatepass")


def _first_store_error(group: BaseExceptionGroup) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_store_error(exc)
        if isinstance(exc, StoreError):
            return exc
    return group.exceptions[0]


def _version_changed() -> StoreError:
    """The version a guarded delete names is no longer the one its guard looked at (see CommitGuard)."""
    return StoreError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def _changed_during_copy(exc: BaseException, condition: WriteCondition | None = None) -> BaseException:
    """The copy's source condition failing means the source changed under it, not a client's precondition;
    with a destination ``condition`` too, a 412 cannot say which one failed: it stays PreconditionFailed."""
    if isinstance(exc, StoreError) and exc.code == "PreconditionFailed" and condition is None:
        return SourceChanged()
    return exc


def _condition_params(condition: WriteCondition | None) -> dict[str, str]:
    """A WriteCondition as S3's IfMatch / IfNoneMatch parameters (the upstream enforces it at its commit)."""
    if condition is None:
        return {}
    params = {"IfNoneMatch": "*"} if condition.if_none_match else {}
    if condition.if_match is not None:
        params["IfMatch"] = "*" if condition.if_match == "*" else _quoted(condition.if_match)
    return params


def _tagging_params(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Tags as the ``Tagging`` parameter of PutObject / CreateMultipartUpload (none: no parameter)."""
    return {"Tagging": tagging_header(tags)} if tags else {}


def _listed(location: Location, bucket: str, answer: dict[str, Any]) -> tuple[list[ObjectInfo], list[str], bool]:
    """A ListObjectsV2 answer in client names: its objects, common prefixes and whether it was cut."""
    objects = [
        ObjectInfo(
            bucket,
            location.client_key(item["Key"]),
            item.get("Size", 0),
            _etag(item.get("ETag", "")),
            utc(item.get("LastModified")),
        )
        for item in answer.get("Contents", [])
    ]
    prefixes = [location.client_key(p["Prefix"]) for p in answer.get("CommonPrefixes", [])]
    return objects, prefixes, bool(answer.get("IsTruncated"))
