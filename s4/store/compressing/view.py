"""The transparent view: what a client sees of an object the inner store holds."""

from __future__ import annotations

import dataclasses

from s4.codec import ChunkManifest, CodecError
from s4.codec.format.manifest import normalize_metadata
from s4.digits import decimal
from s4.store.base import ObjectInfo, StoreError
from s4.store.compressing.part_checksums import decode_part_checksums
from s4.store.compressing.part_sizes import KEY_PART_SIZES, decode_part_sizes


def logical(info: ObjectInfo) -> tuple[ObjectInfo, ChunkManifest | None]:
    """The client's view of an inner object (original size, logical ETag, its own metadata), and
    the object's manifest; None for an object S4 does not manage, which is served as it is."""
    try:
        manifest = ChunkManifest.from_metadata(info.attributes.metadata)
    except CodecError as exc:
        raise StoreError("InternalError", f"object {info.key!r} carries a malformed S4 manifest: {exc}") from None
    info = whole_seconds(info)
    if manifest is None:
        return info, None
    metadata = normalize_metadata(info.attributes.metadata)
    client = {k: v for k, v in metadata.items() if not k.startswith("s4-")}
    attributes = dataclasses.replace(info.attributes, metadata=client)
    etag = manifest.logical_etag or info.etag
    part_sizes = decode_part_sizes(metadata.get(KEY_PART_SIZES)) if manifest.multipart else None
    if part_sizes is not None and sum(part_sizes) != manifest.original_size:
        part_sizes = None
    part_checksums = None
    if manifest.multipart and len(attributes.checksums) == 1:
        count = etag.rpartition("-")[2]  # the logical ETag's part count
        parts = decimal(count, max_digits=5) or 0
        part_checksums = decode_part_checksums(metadata, next(iter(attributes.checksums)), parts)
    # replace(), not a new ObjectInfo: what the view does not change (the tag count...) stays as the inner store said.
    view = dataclasses.replace(
        info,
        size=manifest.original_size,
        etag=etag,
        attributes=attributes,
        part_sizes=part_sizes,
        part_checksums=part_checksums,
    )
    return view, manifest


def whole_seconds(info: ObjectInfo) -> ObjectInfo:
    """``info`` with LastModified cut to the second, as S3 keeps it.

    HEAD's Last-Modified header has no fraction while a listing's XML has milliseconds:
    from the same inner timestamp they would differ (``10:00:00.567Z`` listed, ``10:00:00``
    on HEAD), and a client comparing the two (sync tools, If-Unmodified-Since with a listed
    time) would see a changed object. S3 itself lists ``10:00:00.000Z`` and HEADs the same
    second; so does every view this store gives.
    """
    if info.last_modified.microsecond == 0:
        return info
    return dataclasses.replace(info, last_modified=info.last_modified.replace(microsecond=0))
