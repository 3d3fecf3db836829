"""The storage interface the S3 front end talks to, and nothing else.

Shaped after S3 itself (the s3proxy BlobStore pattern): a backend implements it, a
wrapper such as the CompressingStore implements it over another store, and the
server cannot tell them apart. Bodies stream as async iterators of bytes in both
directions. A PUT body iterator may raise at its end (a digest or signature that
did not check out): a store must then store nothing, which it gets for free by
committing only after the iterator is exhausted.

Two promises about PUT bodies a store may rely on, and must honour:
- the ``attributes`` handed over with a body (metadata, checksums) may be completed
  while the body streams, so a store reads them only once the body has ended;
- a body may carry ``expected_size`` (its declared length, or None): a hint for
  sizing, never trusted for correctness;
- a body may carry ``checksum_algorithm`` (the flexible checksum it is verified against,
  known before its first byte, or None) and ``checksums`` (algorithm to base64 value,
  filled in once the body has ended and checked out): an UploadPart's part checksum.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

MIN_S3_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
BUCKET_DOCUMENTS = frozenset(
    {
        "acl",
        "cors",
        "encryption",
        "lifecycle",
        "notification",
        "ownership-controls",
        "policy",
        "public-access-block",
        "tagging",
    }
)
"""Names of the bucket documents (ObjectStore.get_bucket_document), one for each S3 bucket sub-resource the
gateway keeps; the content is S3's own document for it (XML, or a policy's JSON). Objects' ACLs are
documents of their bucket too, ``object-acl/<SHA-256 of the key>`` (s4.server.ops.documents.object_acl), and so
are the access-control records (s4.server.access.owners): ``owner``, the identity that created the bucket, and
``upload-owner/<upload id>``, the initiator of another identity's multipart upload."""
LIFECYCLE_DOCUMENT = "lifecycle"
TRANSIENT_METADATA = "s4-transient"
"""User metadata key of an object a store writes for an instant for its own bookkeeping and removes at
once (the S3 store's empty null version that takes a null delete marker's place so it can be deleted):
no client's, and not counted by the savings ledger when a look happens to see it."""


class StoreErrorKind(enum.Enum):
    """Where a failure comes from, beyond its S3 code: the server counts only BACKEND ones as backend errors."""

    BACKEND = "backend"
    """The store, or the one under it, answered this (the usual case)."""
    CORRUPT = "corrupt"
    """Stored bytes failed a check (framing, sizes, CRC): nothing of them may reach a client."""
    UNAVAILABLE = "unavailable"
    """This node cannot decode or encode the object (its codec, library or dictionary is missing)."""
    OUT_OF_MEMORY = "out-of-memory"
    """Host or device memory ran out; another try, later or elsewhere, may succeed."""


class StoreError(Exception):
    """A failure with an S3 error code (``NoSuchKey``, ``BucketNotEmpty``...).

    Stores speak S3's vocabulary but not HTTP: the server maps each code to its status.
    A store that transforms bytes (the compressing store) reports its own failures as
    kinds other than BACKEND, so the server never needs to know the layers below.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        resource: str | None = None,
        kind: StoreErrorKind = StoreErrorKind.BACKEND,
        delete_marker: bool = False,
        version_id: str | None = None,
        last_modified: dt.datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resource = resource
        self.kind = kind
        self.delete_marker = delete_marker
        """The failure is about a delete marker (``x-amz-delete-marker: true``): a 404 NoSuchKey whose
        current version is one, or a 405 MethodNotAllowed for GET/HEAD of a delete marker's version id."""
        self.version_id = version_id
        """The version the failure is about, sent as ``x-amz-version-id`` with the error, as S3 does."""
        self.last_modified = last_modified
        """When the delete marker a failure is about was made (``Last-Modified`` on the 405), if known."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def corrupt(cls) -> StoreError:
        """Stored data that cannot be returned; the details go to the log, not to the client."""
        return cls("InternalError", "The stored object is corrupt and cannot be returned.", kind=StoreErrorKind.CORRUPT)

    @classmethod
    def unavailable(cls, reason: str) -> StoreError:
        """A 503 naming what this node lacks, so a client retries elsewhere or an operator installs it."""
        return cls("ServiceUnavailable", reason, kind=StoreErrorKind.UNAVAILABLE)

    @classmethod
    def out_of_memory(cls, reason: str) -> StoreError:
        return cls("ServiceUnavailable", reason, kind=StoreErrorKind.OUT_OF_MEMORY)

    @classmethod
    def storage_full(cls) -> StoreError:
        """No room left for the write (507, MinIO's code and words, which S3 clients know): deleting
        objects makes room, and writes work again without a restart."""
        return cls(
            "XMinioStorageFull",
            "Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed.",
        )


@dataclasses.dataclass(frozen=True)
class WriteCondition:
    """S3's conditional write: ``If-None-Match: *`` (only if no object has the key) and/or
    ``If-Match: <etag>`` (only if the current object has that ETag; ``*``: if there is one).

    A store checks it atomically with the write's commit, against the object as that
    store's own clients see it; a store over another one translates it to the inner
    object's identity (see the compressing store).
    """

    if_match: str | None = None
    """The ETag, without quotes; ``*`` for any existing object."""
    if_none_match: bool = False
    if_none_match_etag: str | None = None
    """``If-None-Match: <etag>`` (without quotes): only if the current object, when there is one, has
    another ETag (what ceph's s3-tests expect of S3; ``*`` is ``if_none_match``)."""

    def check(self, current: ObjectInfo | None) -> None:
        """StoreError as S3 answers: NoSuchKey (If-Match, no object) or PreconditionFailed."""
        if current is None:
            if self.if_match is not None:
                raise StoreError("NoSuchKey", "The specified key does not exist.")
            return
        etag = current.etag.strip('"')
        if (
            self.if_none_match
            or (self.if_match not in (None, "*") and etag != self.if_match)
            or (self.if_none_match_etag is not None and etag == self.if_none_match_etag)
        ):
            raise StoreError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


class CommitGuard(Protocol):
    """What a write's or a delete's commit must find at its key, asked by the store right before it
    sends the commit, and asked again each time the commit is refused because the key changed.

    Over an upstream, what a write replaced cannot be told after the fact (S3 does not say), and a
    look before the commit may be stale by the time the commit lands: another gateway wrote the key
    in between. A store that ``takes_commit_guards`` sends its commit under the condition the guard
    expects (If-Match the ETag looked at, or If-None-Match: * for no object), which the upstream
    checks atomically with the commit; refused, it asks the guard to look again and commits again.
    So the guard's last look is exactly what the commit replaced, whatever other processes do
    (the savings ledger counts with it). A delete of the key's current object the guard expects to
    find absent is answered without a request: it would remove nothing, and it takes its place just
    before any write that comes after the look."""

    async def expect(self) -> WriteCondition | None:
        """Look at the key now: ``WriteCondition(if_match=<stored ETag>)`` (of the version a delete names,
        when it names one), ``(if_none_match=True)`` for no object, or None: commit without a condition
        (nothing the commit could be conditioned on would tell what it removes, see the ledger's guard)."""
        ...


class SourceChanged(StoreError):
    """A copy's source is no longer the object the caller saw (``src_etag``): another writer replaced it.
    The copying layer starts the copy again from a fresh look at the source; out of retries, the client
    gets it as S3's InternalError (500, to retry)."""

    def __init__(self) -> None:
        super().__init__("InternalError", "The source object changed during the copy; retry the request")


def conflicting_write() -> StoreError:
    """A condition that held when the write began but not at its commit: a concurrent write won."""
    return StoreError(
        "ConditionalRequestConflict",
        "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload"
        " you should initiate another CreateMultipartUpload request and re-upload each part.",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    """A client's byte range before the object size is known: ``a-b``, ``a-`` or ``-n``.

    The store resolves it against the object it actually reads, so a range and the
    bytes it selects always refer to the same version of the object.
    """

    start: int | None = None
    end: int | None = None
    suffix: int | None = None

    def resolve(self, size: int) -> tuple[int, int]:
        """Absolute ``(first, last)`` inclusive offsets; InvalidRange when nothing is selected."""
        if self.suffix is not None:
            if self.suffix <= 0 or size == 0:
                raise StoreError("InvalidRange", "The requested range is not satisfiable")
            return max(0, size - self.suffix), size - 1
        start = self.start or 0
        if start >= size:
            raise StoreError("InvalidRange", "The requested range is not satisfiable")
        end = size - 1 if self.end is None else min(self.end, size - 1)
        return start, end


@dataclasses.dataclass(frozen=True)
class ObjectAttributes:
    """What a writer stores beside the bytes, and gets back on every read."""

    content_type: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    """User metadata, keys lower-case without the ``x-amz-meta-`` prefix."""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    """Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires (lower-case names)."""
    checksums: dict[str, str] = dataclasses.field(default_factory=dict)
    """Verified full-object checksums, algorithm (``crc32``, ``crc32c``, ``crc64nvme``, ``sha1``,
    ``sha256``) to the base64 value S3 uses on the wire."""


NULL_VERSION = "null"
"""The id of the version written while a bucket's versioning was never enabled or is Suspended."""
VERSIONING_ENABLED = "Enabled"
VERSIONING_SUSPENDED = "Suspended"


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    """Hex MD5, or ``hex-N`` for multipart objects; without quotes."""
    last_modified: dt.datetime
    attributes: ObjectAttributes = dataclasses.field(default_factory=ObjectAttributes)
    part_sizes: tuple[int, ...] | None = None
    """Sizes of the parts of a multipart object, for GET/HEAD with ``partNumber``."""
    part_checksums: tuple[str, ...] | None = None
    """Checksums of the parts of a multipart object made with a checksum algorithm (the one of its
    ``attributes.checksums``), for GET/HEAD with ``partNumber`` and GetObjectAttributes; None when unknown."""
    tag_count: int = 0
    """How many tags the object has (``x-amz-tagging-count`` on GET/HEAD). Known from HEAD and GET;
    a listing leaves it 0, as S3's listings tell nothing of tags."""
    version_id: str | None = None
    """The id S3 sends as ``x-amz-version-id``: None while the bucket has never had versioning enabled
    (then no header is sent, as S3 does), ``"null"`` for the null version of a bucket that is or was
    versioned. Ids are opaque strings, URL-safe, each store choosing its own format."""
    is_latest: bool = True
    """Whether this is the key's current version (ListObjectVersions' ``IsLatest``)."""
    delete_marker: bool = False
    """A delete marker (ListObjectVersions lists them; it has no bytes, size 0, no ETag)."""
    replaced: tuple[ObjectInfo, ...] | None = dataclasses.field(default=None, compare=False, repr=False)
    """On what a write returns, from a store that ``reports_replaced``: the stored versions its commit
    removed for good (delete markers are not listed), seen in the commit's own transaction; None
    from any other store. What a write replaced, known without another request and exact however
    many processes write the key at once (the savings ledger counts with it)."""

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'


@dataclasses.dataclass(frozen=True)
class ObjectStream:
    info: ObjectInfo
    body: AsyncIterator[bytes]
    range: tuple[int, int] | None = None
    """Inclusive ``(first, last)`` when a range was asked for; the body holds just those bytes."""

    async def aclose(self) -> None:
        close = getattr(self.body, "aclose", None)
        if close is not None:
            await close()


@dataclasses.dataclass(frozen=True)
class BucketInfo:
    name: str
    created: dt.datetime


@dataclasses.dataclass(frozen=True)
class ListPage:
    objects: Sequence[ObjectInfo]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_marker: str | None
    """The last key or common prefix in this page: where the next page starts after."""


@dataclasses.dataclass(frozen=True)
class VersionsPage:
    """A page of ListObjectVersions: per key newest first, keys in UTF-8 byte order."""

    versions: Sequence[ObjectInfo]
    """Versions and delete markers (``delete_marker=True``), each with its ``version_id`` and ``is_latest``."""
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    """What a DeleteObject did, for ``x-amz-version-id`` and ``x-amz-delete-marker`` in its answer."""

    version_id: str | None = None
    """The delete marker made, or the version removed; None on a never-versioned bucket."""
    delete_marker: bool = False
    """A delete marker was made, or the version removed was one."""
    removed: tuple[ObjectInfo, ...] | None = dataclasses.field(default=None, compare=False, repr=False)
    """As ``ObjectInfo.replaced``: the stored versions the delete removed for good."""


@dataclasses.dataclass(frozen=True)
class UploadChecksum:
    """The flexible checksum a multipart upload was created with (``x-amz-checksum-algorithm`` and
    ``x-amz-checksum-type``): every part carries one, and the object gets one made of theirs."""

    algorithm: str
    """``crc32``, ``crc32c``, ``crc64nvme``, ``sha1`` or ``sha256``."""
    type: str
    """``COMPOSITE`` (the checksum of the parts' checksums, ``<base64>-<parts>``) or ``FULL_OBJECT``
    (the CRC of the whole object)."""


@dataclasses.dataclass(frozen=True)
class CompletionChecksums:
    """What a CompleteMultipartUpload request says about checksums, for the store to check."""

    parts: Mapping[int, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    """Per part number, the checksums the part list gives it (algorithm to base64); a number
    listed several times in a row counts by its last entry, as its ETag does."""
    object: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """``x-amz-checksum-<algorithm>``: the checksum the client expects the object to get."""
    type: str | None = None
    """``x-amz-checksum-type``, when given."""


@dataclasses.dataclass(frozen=True)
class UploadInfo:
    bucket: str
    key: str
    upload_id: str
    initiated: dt.datetime
    attributes: ObjectAttributes = dataclasses.field(default_factory=ObjectAttributes)
    checksum: UploadChecksum | None = None


@dataclasses.dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str
    """Hex MD5 of the part, without quotes."""
    last_modified: dt.datetime
    checksums: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PartsPage:
    upload: UploadInfo
    parts: Sequence[PartInfo]
    is_truncated: bool
    next_part_number_marker: int | None


@dataclasses.dataclass(frozen=True)
class UploadsPage:
    uploads: Sequence[UploadInfo]
    common_prefixes: Sequence[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


@runtime_checkable
class ObjectStore(Protocol):
    """Everything the S3 front end needs from storage. Every method may raise StoreError."""

    @property
    def min_part_size(self) -> int:
        """Smallest non-final part the store's own multipart accepts (0 when it has no such rule)."""
        ...

    async def list_buckets(self) -> list[BucketInfo]: ...

    async def create_bucket(self, bucket: str) -> None:
        """BucketAlreadyOwnedByYou when it exists."""
        ...

    async def delete_bucket(self, bucket: str) -> None:
        """NoSuchBucket, or BucketNotEmpty while it holds objects, versions, delete markers or uploads."""
        ...

    async def head_bucket(self, bucket: str) -> BucketInfo: ...

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
    ) -> ObjectInfo:
        """Store the body; visible only once complete, never if the body iterator raises, nor if
        ``condition`` does not hold at the commit (checked atomically with it). ``tags`` (S3 object
        tagging, already validated) become the object's with the same commit; a new object replaces
        the old one's tags, as S3 does. On a versioned bucket the write is a new version (Enabled: a new
        id; Suspended: the null version, replacing the previous null one); the returned ObjectInfo has
        its ``version_id`` (None on a never-versioned bucket). ``condition`` checks the current version,
        a current delete marker counting as no object.

        ``content_etag=False``: the caller keeps the content's ETag itself (the compressing store's
        logical ETag, in the manifest); the stored object's ETag then only has to tell its stored
        versions apart (sidecar binding, If-Match pinning, listing caches). A store that would hash
        every byte for it (the embedded one: MD5) may give a unique id instead; one whose ETag costs
        it nothing (an upstream's) gives its ETag as always."""
        ...

    async def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        """The current version, or ``version_id``'s. NoSuchKey (``delete_marker`` set when the current
        version is a delete marker), NoSuchVersion for an unknown id, InvalidArgument for a malformed
        one, MethodNotAllowed (``delete_marker`` set) when ``version_id`` names a delete marker."""
        ...

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> ObjectStream:
        """The object and its bytes (just the range when given). Close the stream when done.
        ``version_id`` picks a version, with head_object's errors.

        The stream is one version of the object from its first byte to its last, whatever writers do
        meanwhile. ``if_match`` (an ETag without quotes) pins that version across requests: a reader
        that learnt the object's layout from a HEAD reads ranges of exactly that version, or gets
        PreconditionFailed when the object has been replaced since (and starts over from a new HEAD).
        """
        ...

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> DeleteResult:
        """Idempotent: a missing key is not an error, a missing bucket is.

        Without ``version_id`` on a versioned bucket it adds a delete marker (Enabled: a new id;
        Suspended: a null delete marker replacing the null version). With ``version_id`` it removes that
        version (or delete marker) permanently; an id that names no version is not an error, a malformed
        one is InvalidArgument."""
        ...

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
    ) -> ObjectInfo:
        """Copy bytes; ``attributes`` None keeps the source's (S3's COPY directive). ``condition``
        applies to the destination, as for put_object. ``tags`` None keeps the source's tags
        (``x-amz-tagging-directive: COPY``, the default); a mapping, even empty, replaces them.
        ``src_version_id`` copies that version of the source (head_object's errors); the result is a
        new version of the destination, as put_object's. ``src_etag``: the source as the caller saw it
        (its head_object ETag); another object there by the time it is read is SourceChanged, never
        copied (the caller's attributes and sidecar describe the object it saw)."""
        ...

    async def get_object_tagging(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, str]:
        """The object's tags (empty when it has none); NoSuchKey, NoSuchBucket, NoSuchVersion."""
        ...

    async def put_object_tagging(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str | None = None
    ) -> None:
        """Replace the object's (or that version's) tags (an empty mapping removes them) without rewriting
        its bytes: ETag, Last-Modified and body stay as they are. NoSuchKey, NoSuchBucket, NoSuchVersion."""
        ...

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """Keys after ``start_after`` in UTF-8 byte order, rolled up at ``delimiter``; current versions
        only (a key whose current version is a delete marker is not listed)."""
        ...

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionsPage:
        """Every version and delete marker after ``(key_marker, version_id_marker)`` (without a version
        marker: after every version of ``key_marker``), rolled up at ``delimiter``. On a never-versioned
        bucket every object is its own latest version, id ``"null"``."""
        ...

    async def get_bucket_versioning(self, bucket: str) -> str | None:
        """``"Enabled"``, ``"Suspended"``, or None when versioning was never enabled. NoSuchBucket."""
        ...

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        """Set ``"Enabled"`` or ``"Suspended"`` (validated by the caller). NoSuchBucket."""
        ...

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        """A new upload; ``attributes`` and ``tags`` become the object's at Complete. With ``checksum``
        the store keeps each part's checksum (refusing parts of another algorithm, and COMPOSITE parts
        without one), lists them, checks them at Complete and gives the object its checksum (see
        s4/store/checksums.py); a store that keeps no part checksums refuses it (NotImplemented)."""
        ...

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: AsyncIterable[bytes]
    ) -> PartInfo:
        """Store one part (replacing an earlier upload of the same number); NoSuchUpload when unknown.
        In an upload created with a ``checksum``, the part's (the body's ``checksums``, or computed by the
        store for a FULL_OBJECT part that came without) is kept and returned in the PartInfo."""
        ...

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
        """A part made of the source's bytes (``src_version_id``'s when given, head_object's errors).
        ``src_etag``: the source as the caller saw it, as for copy_object: another object there by the
        time it is read is SourceChanged, never copied (the caller's manifest describes the one it saw)."""
        ...

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        *,
        checksums: CompletionChecksums | None = None,
    ) -> ObjectInfo:
        """Assemble the listed ``(part_number, etag)`` parts, checked by S3's rules; ``condition``
        as for put_object (the upload stays when it fails). ``checksums`` (what the request says of
        the parts' and the object's checksums) are checked against the kept ones as S3 does (InvalidPart,
        BadDigest, InvalidRequest); the object's checksum is in the returned ObjectInfo's attributes,
        its version (as put_object's) in ``version_id``."""
        ...

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0, max_parts: int = 1000
    ) -> PartsPage: ...

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage: ...

    async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
        """A document S3 keeps about a bucket (its CORS rules, lifecycle, policy, ACL...: the server
        names them, see BUCKET_DOCUMENTS), exactly as put, or None when the bucket has none of that
        name. NoSuchBucket. Documents are configuration, small (kilobytes), and go with the bucket."""
        ...

    async def get_bucket_documents(self, bucket: str, names: Sequence[str]) -> dict[str, bytes | None]:
        """Several of a bucket's documents at once, each as get_bucket_document answers it: every request
        reads four (owner, policy, ACL, public access block), and a store that can read them together
        saves three round trips to its backend (the embedded store: three hops to its database thread,
        about a fifth of a small request's CPU). NoSuchBucket.

        For the access check of a request only: a store may answer from what it read a few seconds ago
        (the S3 store, ``upstream.document_cache_seconds``), with its own process's changes seen at once.
        Whatever decides a change of the bucket reads get_bucket_document, which is always current."""
        ...

    async def put_bucket_document(self, bucket: str, name: str, document: bytes) -> None:
        """Store or replace a bucket document, already validated by the caller. NoSuchBucket.

        A store whose backend carries a document out itself (an upstream S3's lifecycle) hands it on
        too, and fails with the backend's error, storing nothing, when the backend refuses it.
        """
        ...

    async def delete_bucket_document(self, bucket: str, name: str) -> None:
        """Idempotent: a bucket without that document is not an error, a missing bucket is."""
        ...

    async def close(self) -> None: ...
