"""The upstream store's bucket documents kept a few seconds (s4.store.s3.document_cache)."""

from __future__ import annotations

from s4.store.s3.document_cache import DocumentCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_document_is_kept_for_its_time_absence_included():
    clock = Clock()
    cache = DocumentCache(2.0, clock)
    assert cache.lookup("b", "policy") == (False, None)
    cache.keep("b", "policy", b"{}", cache.epoch())
    cache.keep("b", "acl", None, cache.epoch())
    assert cache.lookup("b", "policy") == (True, b"{}")
    assert cache.lookup("b", "acl") == (True, None)  # no ACL is an answer too
    clock.now += 1.99
    assert cache.lookup("b", "policy") == (True, b"{}")
    clock.now += 0.01
    assert cache.lookup("b", "policy") == (False, None)
    assert cache.lookup("b", "acl") == (False, None)


def test_a_read_that_began_before_a_write_keeps_nothing():
    """The read may have seen the document before the write: kept, it would undo the write here."""
    cache = DocumentCache(2.0, Clock())
    before = cache.epoch()
    cache.forget("b", "policy")  # this process wrote it meanwhile
    cache.keep("b", "policy", b"old", before)
    assert cache.lookup("b", "policy") == (False, None)
    cache.keep("b", "policy", b"new", cache.epoch())
    assert cache.lookup("b", "policy") == (True, b"new")


def test_forgetting_a_bucket_forgets_its_documents_only():
    cache = DocumentCache(2.0, Clock())
    for bucket in ("b", "c"):
        for name in ("owner", "policy"):
            cache.keep(bucket, name, name.encode(), cache.epoch())
    cache.forget("b", "policy")
    assert cache.lookup("b", "policy") == (False, None) and cache.lookup("b", "owner") == (True, b"owner")
    cache.forget("b")
    assert cache.lookup("b", "owner") == (False, None)
    assert cache.lookup("c", "owner") == (True, b"owner") and cache.lookup("c", "policy") == (True, b"policy")


def test_no_time_keeps_nothing():
    cache = DocumentCache(0, Clock())
    cache.keep("b", "policy", b"{}", cache.epoch())
    assert cache.lookup("b", "policy") == (False, None)


def test_the_least_recently_read_go_first():
    cache = DocumentCache(2.0, Clock(), size=2)
    cache.keep("b", "owner", b"1", cache.epoch())
    cache.keep("b", "policy", b"2", cache.epoch())
    assert cache.lookup("b", "owner") == (True, b"1")
    cache.keep("b", "acl", b"3", cache.epoch())
    assert cache.lookup("b", "policy") == (False, None)
    assert cache.lookup("b", "owner") == (True, b"1") and cache.lookup("b", "acl") == (True, b"3")


def test_an_objects_documents_are_never_kept():
    """An object's ACL changes with the object (strongly consistent on S3): read every time."""
    cache = DocumentCache(2.0, Clock())
    for name in ("object-acl/" + "0" * 64, "upload-owner/abc"):
        cache.keep("b", name, b"<AccessControlPolicy/>", cache.epoch())
        assert cache.lookup("b", name) == (False, None)


def test_requests_that_change_a_bucket_are_checked_on_its_documents_as_they_are_now():
    """A PUT or DELETE of the bucket itself (DeleteBucket, PutBucketPolicy...) lasts: its access check
    reads the documents afresh; a request on an object, a read, or another bucket (a copy's source) may
    use what was read a few seconds ago."""
    import types

    from s4.server.access.authorize import _changes_bucket

    def request(method: str, key: str | None) -> types.SimpleNamespace:
        return types.SimpleNamespace(bucket="b", key=key, http=types.SimpleNamespace(method=method))

    assert _changes_bucket(request("PUT", None), "b") and _changes_bucket(request("DELETE", None), "b")
    assert not _changes_bucket(request("GET", None), "b") and not _changes_bucket(request("HEAD", None), "b")
    assert not _changes_bucket(request("PUT", "k"), "b") and not _changes_bucket(request("DELETE", "k"), "b")
    assert not _changes_bucket(request("PUT", None), "source")
