"""Conditional writes through the compressing store: the client's condition names the *logical* ETag,
the inner store only knows the stored one.

The condition is checked first against what the client sees now (412 / 404 before any byte
is stored), then handed to the inner store as the same condition on the inner object's own
identity (its ETag, or its absence), which that store enforces atomically with the commit.
If it fails there, the object changed between the two checks: a concurrent write won, which
S3 answers with 409 ConditionalRequestConflict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from s4.store.base import ObjectStore, StoreError, WriteCondition, conflicting_write
from s4.store.compressing.view import logical


async def on_inner(
    inner: ObjectStore, bucket: str, key: str, condition: WriteCondition | None
) -> WriteCondition | None:
    """Check ``condition`` against the client's view of ``key``; the condition to pass to ``inner``."""
    if condition is None:
        return None
    try:
        current = await inner.head_object(bucket, key)
    except StoreError as exc:
        if exc.code != "NoSuchKey":
            raise
        current = None
    condition.check(None if current is None else logical(current)[0])
    if current is None:
        return WriteCondition(if_none_match=True)
    if condition.if_match is not None or condition.if_none_match_etag is not None:
        return WriteCondition(if_match=current.etag.strip('"'))  # still the object the condition was checked on
    return None  # unreachable: If-None-Match: * on an existing object failed above


@contextlib.contextmanager
def concurrent_write_is_a_conflict(
    inner_condition: WriteCondition | None, missing_counts: bool = True
) -> Iterator[None]:
    """The inner store refusing ``inner_condition`` at its commit means another write got in between.

    ``missing_counts``: the inner store's NoSuchKey also means the object went away (If-Match);
    not for a copy, where NoSuchKey names a missing source.
    """
    try:
        yield
    except StoreError as exc:
        if inner_condition is None:
            raise
        if exc.code == "PreconditionFailed" or (missing_counts and exc.code == "NoSuchKey"):
            raise conflicting_write() from exc
        raise
