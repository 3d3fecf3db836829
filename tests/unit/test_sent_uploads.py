"""SentUploads: what a Complete can say of its object from what this process sent."""

from __future__ import annotations

from s4.store.base import ObjectAttributes
from s4.store.s3.sent_uploads import SentObject, SentUploads

ATTRIBUTES = ObjectAttributes(content_type="text/plain", metadata={"s4-codec": "1"})


def test_the_object_is_described_only_from_parts_this_process_sent():
    sent = SentUploads()
    sent.created("u", ATTRIBUTES, tag_count=2)
    sent.part_sent("u", 1, "e1", 100)
    sent.part_sent("u", 2, "old", 5)
    sent.part_sent("u", 2, "e2", 50)  # sent again: the last one counts
    assert sent.described("u", [(1, "e1"), (2, "e2")]) == SentObject(ATTRIBUTES, 2, 150)
    assert sent.described("u", [(1, "e1")]) == SentObject(ATTRIBUTES, 2, 100)  # a Complete may leave parts out
    assert sent.described("u", [(1, "e1"), (2, "old")]) is None  # not the part sent last under that number
    assert sent.described("u", [(3, "e3")]) is None  # sent by another process
    assert sent.described("other", [(1, "e1")]) is None
    sent.forget("u")
    assert sent.described("u", [(1, "e1")]) is None


def test_abandoned_uploads_are_forgotten_oldest_first():
    sent = SentUploads(limit=2)
    for upload in ("a", "b", "c"):
        sent.created(upload, ATTRIBUTES)
        sent.part_sent(upload, 1, "e", 1)
    assert sent.described("a", [(1, "e")]) is None
    assert sent.described("c", [(1, "e")]) == SentObject(ATTRIBUTES, 0, 1)
