"""S3's rules for completing a multipart upload, shared by every store that assembles parts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from s4.store.base import MAX_PARTS, MIN_S3_PART_SIZE, PartInfo, StoreError


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def validate_completion(
    requested: Sequence[tuple[int, str]],
    uploaded: Mapping[int, PartInfo],
    min_part_size: int = MIN_S3_PART_SIZE,
) -> list[PartInfo]:
    """The parts to assemble, in order, or the StoreError S3 would answer.

    Parts must be listed in ascending order (InvalidPartOrder), each must exist with
    the given ETag (InvalidPart), and every part but the last must be at least 5 MiB
    (EntityTooSmall), whatever the backing store's own minimum.

    A part number listed several times in a row names one part, by the last of its
    ETags: a client that sent a part twice lists both answers in the order they came,
    and the send that finished last is the part that was kept (Ceph RGW completes such a
    list, and s3-tests ``test_multipart_resend_first_finishes_last`` expects it to).
    """
    if not requested:
        raise StoreError("MalformedXML", "The XML you provided was not well-formed or did not validate")
    if len(requested) > MAX_PARTS:
        raise StoreError("InvalidArgument", f"Part count must not exceed {MAX_PARTS}")
    latest: list[tuple[int, str]] = []
    for number, etag in requested:
        if latest and number == latest[-1][0]:
            latest[-1] = (number, etag)
        else:
            latest.append((number, etag))
    chosen: list[PartInfo] = []
    previous = 0
    for number, etag in latest:
        if number <= previous:
            raise StoreError("InvalidPartOrder", "The list of parts was not in ascending order")
        previous = number
        part = uploaded.get(number)
        if part is None or normalize_etag(etag) != normalize_etag(part.etag):
            raise StoreError(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have been uploaded,"
                " or the specified entity tag may not match the part's entity tag.",
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise StoreError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size")
    return chosen


def multipart_etag(parts: Sequence[PartInfo]) -> str:
    """``md5(concatenated binary part MD5s)-N``: the ETag S3 gives a multipart object."""
    digest = hashlib.md5(b"".join(bytes.fromhex(normalize_etag(p.etag)) for p in parts))
    return f"{digest.hexdigest()}-{len(parts)}"
