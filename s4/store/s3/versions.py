"""S3 versioning over the upstream's own: its answers read back as S3's, where an upstream says less.

The upstream keeps the versions; the gateway passes ids through as they are. What needs care:

- botocore parses ListObjectVersions into two lists, Versions and DeleteMarkers, losing how they
  interleave; S3's order (per key newest first) is read back from the XML itself (``record_order``).
- SeaweedFS (4.48) differs from S3 where the gateway would otherwise tell its clients something
  false; the store works around each (see S3Store):
  * on a never-versioned bucket it ignores ``versionId`` on GET/HEAD/tagging (the current object
    answers for any id) and DELETE with any id deletes the current object; on a versioned bucket,
    DELETE with a malformed id (not its 32 hex digits) deletes nothing but makes the newest version
    the latest again, over a delete marker: the deleted object comes back. The store checks that
    the version answering GET/HEAD is the one asked for, and deletes a version only once it has
    found it in the key's listing;
  * a 404 for a key whose current version is a delete marker carries no ``x-amz-delete-marker``,
    and GET/HEAD of a delete marker's id is a 404 instead of S3's 405 MethodNotAllowed: the store
    looks the key's versions up (only for buckets that are or were versioned);
  * DeleteBucket removes a versioned bucket that still has versions (even current objects): the
    store's own emptiness check lists versions and delete markers;
  * once the null version above older versions is deleted, the listing marks none of the key's versions
    latest (reads serve the newest as current): the store marks the newest;
  * a null delete marker (a DELETE while Suspended) cannot be removed: DELETE ?versionId=null answers
    204 and keeps it (DeleteObjects too), and while it is there every version put under Enabled stays
    hidden (GET 404). For a client's key the store answers 501 NotImplemented saying so instead of a 204
    that would be a lie (a new PUT of the key replaces the marker); replacing the marker by an empty null
    version and deleting that would also delete a client's PUT landing between the two steps, so only the
    gateway's own keys, which no client writes, are removed that way under Suspended. Versions hidden by
    such a marker are not worked around.
  * a delete marker's owner is ``anonymous`` (the gateway does not pass owners through anyway);
  * ListObjectVersions pages in its filer's order (a versioned key ``k`` is the folder ``k.versions``,
    so it comes after ``k.a``), sorted only within a page, and the next page starts after the page's
    last key in S3's order: entries are lost (8 of 12 come back with MaxKeys 1). The store asks for
    whole pages (1000) and pages for its clients itself in S3's order, so a listing of up to 1000
    entries after the client's marker is right, and a longer one no worse than the upstream's; it
    trusts no lookup of one key that took more than one page.
- The gateway's own keys (temporary uploads, bucket documents) are removed with all their versions,
  so a versioned bucket does not keep them, or their delete markers, forever.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from typing import Any

from defusedxml import ElementTree

from s4.store.base import NULL_VERSION, ObjectInfo, StoreError
from s4.store.s3.buckets import Call, Location, utc

STATUS_TTL_S = 10.0
"""How long a bucket's versioning status is trusted without asking again (another replica may change it;
this replica's own PutBucketVersioning updates it at once)."""
INVERTED_IDS = (1 << 63) - 1
"""SeaweedFS's newer version ids start with this less the time in nanoseconds (``_written_at``)."""
ORDER_FIELD = "S4VersionsOrder"
"""Where ``record_order`` leaves, in the parsed answer, which entries were delete markers, in document order."""
MAX_LOOKUP_PAGES = 10
"""A version looked up by id (for an error's details) in at most this many pages of its key's versions."""
SIDECAR_SUFFIX = ".s4index"
"""The S4 format's sidecars (``s4.store.compressing.reserved.SIDECAR_SUFFIX``), read by the gateway only."""
GATEWAY_PREFIXES = (".s4mpu/", ".s4bucket/")
"""The gateway's own keys (temporary and staged uploads, bucket documents; ``s4.store.compressing.reserved``):
never shown to a client as versions, removed with every version of them."""


def record_order(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parse.s3.ListObjectVersions`` hook: which entries are delete markers, in order."""
    if response_dict.get("status_code") != 200 or not isinstance(response_dict.get("body"), bytes):
        return
    try:
        root = ElementTree.fromstring(response_dict["body"])
    except Exception:
        return  # botocore's own parser reports a broken answer
    kinds = []
    for child in root:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag in ("Version", "DeleteMarker"):
            kinds.append(tag == "DeleteMarker")
    customized_response_dict[ORDER_FIELD] = kinds


def entries(answer: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """The answer's versions and delete markers as ``(entry, is_delete_marker)`` in S3's order: keys
    ascending, per key the latest first, then the upstream's order; over SeaweedFS, which lists the null
    version after the others (even when it is the latest) and ids of its two formats each in their own
    order, newest first by the time in the ids (``_written_at``)."""
    versions = answer.get("Versions", [])
    markers = answer.get("DeleteMarkers", [])
    kinds = answer.get(ORDER_FIELD)
    if kinds is not None and kinds.count(True) == len(markers) and len(kinds) == len(markers) + len(versions):
        iterators: dict[bool, Iterator[dict[str, Any]]] = {False: iter(versions), True: iter(markers)}
        merged = [(next(iterators[kind]), kind) for kind in kinds]
        by_time = pages_lose_entries(answer)
    else:  # no XML order (should not happen): by time
        merged = [(v, False) for v in versions] + [(m, True) for m in markers]
        by_time = True
    merged.sort(
        key=lambda e: (
            e[0]["Key"].encode("utf-8", "surrogatepass"),
            not e[0].get("IsLatest"),
            -_written_at(e[0]) if by_time else 0,
        )
    )
    return _mend_latest(merged, answer) if by_time else merged


def _written_at(entry: dict[str, Any]) -> int:
    """When a listed SeaweedFS version was written, in nanoseconds: its id's first 16 hex digits are that time,
    as is (older ids) or subtracted from 2**63 - 1 (newer ids, so that they sort newest first);
    the null version's, and any other, from LastModified (whole seconds)."""
    version_id = entry.get("VersionId") or ""
    if len(version_id) == 32:
        try:
            stamp = int(version_id[:16], 16)
        except ValueError:
            pass
        else:
            return INVERTED_IDS - stamp if stamp >= 1 << 62 else stamp
    return int(utc(entry.get("LastModified")).timestamp()) * 1_000_000_000


def _mend_latest(
    merged: list[tuple[dict[str, Any], bool]], answer: dict[str, Any]
) -> list[tuple[dict[str, Any], bool]]:
    """Each key's newest entry marked latest where none is (SeaweedFS marks none once the null version above
    an older one is deleted, though it serves that older one as current); not for a key the page starts in
    the middle of (after a version id marker)."""
    continued = answer.get("KeyMarker") if answer.get("VersionIdMarker") else None
    keys_with_latest = {e["Key"] for e, _ in merged if e.get("IsLatest")}
    mended: list[tuple[dict[str, Any], bool]] = []
    for entry, marker in merged:
        key = entry["Key"]
        if key not in keys_with_latest and key != continued:
            entry = {**entry, "IsLatest": True}
            keys_with_latest.add(key)
        mended.append((entry, marker))
    return mended


def version_info(bucket: str, key: str, entry: dict[str, Any], delete_marker: bool) -> ObjectInfo:
    """One listed version (or delete marker) as the ObjectInfo the store's clients get."""
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=0 if delete_marker else entry.get("Size", 0),
        etag="" if delete_marker else entry.get("ETag", "").strip().strip('"'),
        last_modified=utc(entry.get("LastModified")),
        version_id=entry.get("VersionId") or NULL_VERSION,
        is_latest=bool(entry.get("IsLatest")),
        delete_marker=delete_marker,
    )


class VersioningStatus:
    """Each upstream bucket's versioning status (Enabled, Suspended or None), cached for ``STATUS_TTL_S``."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._known: dict[str, tuple[str | None, float]] = {}

    async def of(self, bucket: str, *, fresh: bool = False, quiet: bool = False) -> str | None:
        """NoSuchBucket for a missing bucket; an upstream without versioning (NotImplemented) has none.
        ``quiet``: for details of another request's answer, which must not fail over them (an identity
        upstream without the right to GetBucketVersioning, say): None when the upstream does not say."""
        known = self._known.get(bucket)
        if known is not None and not fresh and known[1] > time.monotonic():
            return known[0]
        try:
            answer = await self._call("get_bucket_versioning", Bucket=bucket)
        except StoreError as exc:
            if exc.code != "NotImplemented" and not quiet:
                raise
            answer = {}
        status = answer.get("Status") or None
        self.remember(bucket, status)
        return status

    def remember(self, bucket: str, status: str | None) -> None:
        self._known[bucket] = (status, time.monotonic() + STATUS_TTL_S)

    def forget(self, bucket: str) -> None:
        self._known.pop(bucket, None)


async def key_versions(call: Call, bucket: str, key: str) -> tuple[list[tuple[dict[str, Any], bool]], bool]:
    """The versions and delete markers of exactly ``key`` (upstream names), and whether that is all of them
    for sure: not when the lookup gave up after ``MAX_LOOKUP_PAGES``, nor when it took more than one page
    of an upstream whose pages lose entries (``pages_lose_entries``)."""
    found: list[tuple[dict[str, Any], bool]] = []
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
    for page in range(MAX_LOOKUP_PAGES):
        answer = await call("list_object_versions", **params)
        found += [(entry, marker) for entry, marker in entries(answer) if entry.get("Key") == key]
        if not answer.get("IsTruncated") or not answer.get("NextKeyMarker"):
            return found, page == 0 or not pages_lose_entries(answer)
        params |= {"KeyMarker": answer["NextKeyMarker"], "VersionIdMarker": answer.get("NextVersionIdMarker", "")}
    return found, False


async def latest_delete_marker(call: Call, bucket: str, key: str) -> str | None:
    """The id of the delete marker that is ``key``'s current version (upstream names), or None."""
    found, _ = await key_versions(call, bucket, key)
    for entry, delete_marker in found:
        if delete_marker and entry.get("IsLatest"):
            return entry.get("VersionId") or NULL_VERSION
    return None


class Found(enum.Enum):
    """What one version id of a key is, looked up in the key's listing."""

    VERSION = "version"
    DELETE_MARKER = "delete marker"
    ABSENT = "absent"
    UNKNOWN = "unknown"
    """Not found, in a listing that may not be whole (see ``key_versions``)."""


async def find_version(call: Call, bucket: str, key: str, version_id: str) -> Found:
    """What ``version_id`` of ``key`` (upstream names) is, from the key's listing (a version, on a
    never-versioned bucket, is the ``null`` one only)."""
    found, whole = await key_versions(call, bucket, key)
    for entry, delete_marker in found:
        if (entry.get("VersionId") or NULL_VERSION) == version_id:
            return Found.DELETE_MARKER if delete_marker else Found.VERSION
    return Found.ABSENT if whole else Found.UNKNOWN


def pages_lose_entries(answer: dict[str, Any]) -> bool:
    """Whether the upstream is one whose ListObjectVersions pages lose entries (SeaweedFS: see the module
    docstring): only a whole listing in one answer can be trusted."""
    return answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "").startswith("SeaweedFS")


def as_copy_source(error: StoreError) -> StoreError:
    """A copy's source failure as S3 answers it: a source that is a delete marker named by its id is an
    InvalidRequest; a source whose current version is a delete marker is a plain NoSuchKey (the marker
    headers would describe the copy's destination)."""
    if error.code == "MethodNotAllowed" and error.delete_marker:
        return StoreError(
            "InvalidRequest",
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        )
    if error.delete_marker:
        return StoreError(error.code, error.message, resource=error.resource)
    return error


def no_such_version(key: str) -> StoreError:
    return StoreError("NoSuchVersion", "The specified version does not exist.", resource=key)


def delete_marker_version(key: str, version_id: str) -> StoreError:
    """S3's answer to GET/HEAD of a delete marker's id: 405, with the marker's id and ``x-amz-delete-marker``."""
    return StoreError(
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        resource=key,
        delete_marker=True,
        version_id=version_id,
    )


def current_delete_marker(key: str, version_id: str) -> StoreError:
    """S3's 404 for a key whose current version is a delete marker (with its id and ``x-amz-delete-marker``)."""
    return StoreError(
        "NoSuchKey", "The specified key does not exist.", resource=key, delete_marker=True, version_id=version_id
    )


def answered_version(answer: dict[str, Any]) -> str | None:
    """The ``x-amz-version-id`` of an upstream answer (None when it sent none)."""
    return answer.get("VersionId") or None


def check_version(answer: dict[str, Any], key: str, version_id: str | None) -> None:
    """NoSuchVersion unless the answer is the version asked for (an upstream may ignore ``versionId``
    on a never-versioned bucket and answer with the current object: that one is version ``null``).
    An answer without a version id comes from a bucket never versioned, where S3 knows no id but
    ``null``: any other is 400 InvalidArgument there, as S3 (and the embedded store) answer."""
    if version_id is None:
        return
    answered = answered_version(answer)
    if answered is None and version_id != NULL_VERSION:
        raise StoreError("InvalidArgument", "Invalid version id specified", resource=version_id)
    if (answered or NULL_VERSION) != version_id:
        raise no_such_version(key)


def is_gateway_key(location: Location, upstream_key: str) -> bool:
    return location.client_key(upstream_key).startswith(GATEWAY_PREFIXES)


def is_gateways_own(location: Location, upstream_key: str) -> bool:
    """A key no client reads (its 404 needs no delete-marker details): the gateway's keys and sidecars."""
    return is_gateway_key(location, upstream_key) or upstream_key.endswith(SIDECAR_SUFFIX)
