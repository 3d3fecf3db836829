"""What this process sent of each upstream multipart upload it created, to describe the object its
Complete makes without reading it back.

Read back by a HEAD of the key after the Complete, the object may already be another writer's (a
PUT or a Complete of the same key that landed just after), or gone (a DELETE): the Complete would
then describe someone else's object (its size and manifest are what the savings ledger counts for
it) or fail with NoSuchKey although it committed. The upstream's answer names the object made (its
ETag, its version id); its size is the sum of the parts sent and its metadata is what the upload was
created with, both known here when this process created the upload and sent its parts, as the
compressing store does (an upload assembled in one call).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence

from s4.store.base import ObjectAttributes

REMEMBERED_UPLOADS = 10_000
"""Uploads remembered at once; the oldest is forgotten past this (one abandoned without Complete or
Abort). A Complete of a forgotten upload reads its object back instead."""


@dataclasses.dataclass
class _Sent:
    attributes: ObjectAttributes
    tag_count: int
    parts: dict[int, tuple[str, int]] = dataclasses.field(default_factory=dict)
    """Part number: (ETag, size) of the last part sent with that number."""


@dataclasses.dataclass(frozen=True)
class SentObject:
    """The object a Complete makes of parts this process sent."""

    attributes: ObjectAttributes
    tag_count: int
    size: int


class SentUploads:
    """Per upload id: the attributes (and number of tags) it was created with and the (ETag, size) of each
    part sent."""

    def __init__(self, limit: int = REMEMBERED_UPLOADS) -> None:
        self._limit = limit
        self._uploads: OrderedDict[str, _Sent] = OrderedDict()

    def created(self, upload_id: str, attributes: ObjectAttributes, tag_count: int = 0) -> None:
        self._uploads[upload_id] = _Sent(attributes, tag_count)
        while len(self._uploads) > self._limit:
            self._uploads.popitem(last=False)

    def part_sent(self, upload_id: str, part_number: int, etag: str, size: int) -> None:
        sent = self._uploads.get(upload_id)
        if sent is not None:
            sent.parts[part_number] = (etag, size)

    def described(self, upload_id: str, parts: Sequence[tuple[int, str]]) -> SentObject | None:
        """The object completed from ``parts`` (number, ETag), or None when a part listed is not one this
        process sent (or the upload is not remembered)."""
        sent = self._uploads.get(upload_id)
        if sent is None:
            return None
        size = 0
        for number, etag in parts:
            known = sent.parts.get(number)
            if known is None or known[0] != etag:
                return None
            size += known[1]
        return SentObject(sent.attributes, sent.tag_count, size)

    def forget(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)
