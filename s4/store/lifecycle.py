"""Buckets' lifecycle rules carried out by the gateway: Expiration of objects and AbortIncompleteMultipartUpload.

S3 runs each bucket's lifecycle configuration (the ``lifecycle`` bucket document) in the
background; over the embedded store nobody else would, so the gateway does, over any ObjectStore
(the composition root hands it the CompressingStore, so what it sees and deletes is the clients'
view: original sizes, no reserved names, sidecars going with their objects).

An upstream S3 that carries out lifecycle itself (s4.store.s3.documents) is handed the rules it
can carry out as S3 would for the gateway's clients (Rule.carried_out_upstream): not those whose
prefix reaches the gateway's own names (every one starts with ``.s4``: the upstream would expire
dictionaries, staging and the bucket's documents), nor those with a size condition (the upstream
sees compressed sizes). This worker carries out the Expiration of the others, and every
AbortIncompleteMultipartUpload: a client's upload is the gateway's staging, not an upstream upload.

What is carried out, of each rule with ``Status`` Enabled:

- ``Expiration`` ``Days`` (an object expires that many days after it was last written, rounded
  up to the next midnight UTC as S3 rounds) and ``Date`` (every matching object expires from
  that midnight on), for objects whose key starts with the rule's prefix (``Prefix``, or the
  Filter's ``Prefix``, alone or in ``And``), whose size is within ``ObjectSizeGreaterThan`` /
  ``ObjectSizeLessThan`` and which has the rule's ``Tag`` conditions (asked of the store only
  for objects otherwise due);
- ``AbortIncompleteMultipartUpload`` ``DaysAfterInitiation``, for uploads under the prefix.

On a versioned bucket an expired current version is deleted as S3 expires it: a DeleteObject
without a version id, which leaves a delete marker and keeps the version as a noncurrent one.

Not carried out: transitions (there is one storage class), and the noncurrent-version and
expired-delete-marker actions (NoncurrentVersionExpiration, ExpiredObjectDeleteMarker): noncurrent
versions stay until deleted by id. S3 promises no exact time either: an object is removed at the
first run after it expires.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Callable, Mapping
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

from s4.store.base import LIFECYCLE_DOCUMENT, ObjectInfo, ObjectStore, StoreError
from s4.store.walk import walk

_log = logging.getLogger(__name__)
DAY_S = 86400.0
RESERVED_ROOT = ".s4"
"""Every name the gateway keeps in a bucket starts with it (FORMAT.md section 6, and the S3 store's own)."""
UPLOADS_PAGE = 1000


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Element, name: str) -> Element | None:
    return next((c for c in node if _local(c.tag) == name), None)


def _text(node: Element | None, name: str) -> str | None:
    child = None if node is None else _child(node, name)
    return None if child is None else (child.text or "").strip()


@dataclasses.dataclass(frozen=True)
class Rule:
    """One enabled rule, as far as this worker carries it out."""

    rule_id: str
    enabled: bool = True
    prefix: str = ""
    larger_than: int | None = None
    smaller_than: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    """The tags (key, value) an object must all have to be selected (``Tag``, or the ``Tag``s of ``And``)."""
    expire_days: int | None = None
    expire_date: dt.datetime | None = None
    abort_days: int | None = None

    def carried_out_upstream(self) -> bool:
        """Whether an upstream S3 that runs lifecycle rules runs this one as S3 would for the clients."""
        reaches_reserved = RESERVED_ROOT.startswith(self.prefix) or self.prefix.startswith(RESERVED_ROOT)
        return not reaches_reserved and self.larger_than is None and self.smaller_than is None

    def selects(self, obj: ObjectInfo) -> bool:
        """Whether the object passes the rule's prefix and size conditions (its tags are asked apart)."""
        return (
            obj.key.startswith(self.prefix)
            and (self.larger_than is None or obj.size > self.larger_than)
            and (self.smaller_than is None or obj.size < self.smaller_than)
        )

    def selects_tags(self, tags: Mapping[str, str]) -> bool:
        return all(tags.get(key) == value for key, value in self.tags)


def _filter(rule: Element) -> dict[str, object]:
    condition = _child(rule, "Filter")
    if condition is None:
        return {"prefix": _text(rule, "Prefix") or ""}
    combined = _child(condition, "And")
    node = condition if combined is None else combined
    larger, smaller = _text(node, "ObjectSizeGreaterThan"), _text(node, "ObjectSizeLessThan")
    return {
        "prefix": _text(node, "Prefix") or "",
        "larger_than": None if larger is None else int(larger),
        "smaller_than": None if smaller is None else int(smaller),
        "tags": tuple((_text(c, "Key") or "", _text(c, "Value") or "") for c in node if _local(c.tag) == "Tag"),
    }


def parse_rules(document: bytes) -> list[Rule]:
    """The rules of a LifecycleConfiguration (one the server validated), in its order."""
    rules = []
    for node in fromstring(document):
        if _local(node.tag) != "Rule":
            continue
        expiration, abort = _child(node, "Expiration"), _child(node, "AbortIncompleteMultipartUpload")
        days, date = _text(expiration, "Days"), _text(expiration, "Date")
        abort_days = _text(abort, "DaysAfterInitiation")
        expire_date = None
        if date:
            expire_date = dt.datetime.fromisoformat(date)
            expire_date = expire_date if expire_date.tzinfo else expire_date.replace(tzinfo=dt.UTC)
        rules.append(
            Rule(
                rule_id=_text(node, "ID") or "",
                enabled=_text(node, "Status") == "Enabled",
                expire_days=int(days) if days else None,
                expire_date=expire_date,
                abort_days=int(abort_days) if abort_days else None,
                **_filter(node),  # type: ignore[arg-type]
            )
        )
    return rules


@dataclasses.dataclass
class LifecycleReport:
    expired: int = 0
    """Objects deleted by an Expiration."""
    aborted: int = 0
    """Multipart uploads aborted by an AbortIncompleteMultipartUpload."""

    def __bool__(self) -> bool:
        return bool(self.expired or self.aborted)


class LifecycleWorker:
    """Carries out every bucket's lifecycle rules over ``store``; see the module docstring."""

    def __init__(self, store: ObjectStore, *, upstream_expires: bool = False, day: float = DAY_S) -> None:
        """``upstream_expires``: the store below is an upstream S3 that was handed the rules it can carry
        out (see the module docstring); ``day`` shortens a lifecycle day for tests, as Ceph's
        ``rgw_lc_debug_interval`` does (without the rounding to midnight, which only a real day has)."""
        self.store = store
        self.upstream_expires = upstream_expires
        self.day = day
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        """What time it is (a test sets the hands)."""

    def due(self, since: dt.datetime, days: int) -> dt.datetime:
        """When something of ``since`` is ``days`` days old, as S3 counts: rounded up to midnight UTC."""
        if self.day != DAY_S:
            return since + dt.timedelta(seconds=days * self.day)
        when = since.astimezone(dt.UTC) + dt.timedelta(days=days)
        midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight if midnight == when else midnight + dt.timedelta(days=1)

    async def periodically(self, interval: float) -> None:
        """Run now, then every ``interval`` seconds (a tenth either way) until cancelled; a failed
        run is logged and tried again at the next turn."""
        while True:
            try:
                report = await self.run()
            except Exception:
                _log.warning("carrying out lifecycle rules failed; trying again in %.0f s", interval, exc_info=True)
            else:
                if report:
                    _log.info(
                        "lifecycle rules: %d objects expired, %d multipart uploads aborted",
                        report.expired,
                        report.aborted,
                    )
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    async def run(self) -> LifecycleReport:
        """One pass over every bucket with a lifecycle configuration; a bucket that fails is skipped (logged)."""
        report = LifecycleReport()
        for bucket in await self.store.list_buckets():
            try:
                document = await self.store.get_bucket_document(bucket.name, LIFECYCLE_DOCUMENT)
                if document is not None:
                    await self.apply(bucket.name, parse_rules(document), report)
            except StoreError as exc:
                if exc.code != "NoSuchBucket":  # deleted meanwhile: nothing to do
                    _log.warning("could not carry out the lifecycle rules of bucket %s: %s", bucket.name, exc)
        return report

    async def apply(self, bucket: str, rules: list[Rule], report: LifecycleReport) -> None:
        """One bucket's enabled rules, as of ``clock()``."""
        expiring, aborting = [], []
        for rule in rules:
            if not rule.enabled:
                continue
            if rule.abort_days is not None:
                aborting.append(rule)  # S3 refuses it beside a tag filter: by prefix only
            if rule.expire_days is None and rule.expire_date is None:
                continue
            if self.upstream_expires and rule.carried_out_upstream():
                continue
            expiring.append(rule)
        if expiring:
            await self._expire(bucket, expiring, report)
        for rule in aborting:
            await self._abort(bucket, rule, report)

    def _expired(self, rule: Rule, obj: ObjectInfo, now: dt.datetime) -> bool:
        if rule.expire_date is not None and now >= rule.expire_date:
            return True
        return rule.expire_days is not None and now >= self.due(obj.last_modified, rule.expire_days)

    async def _expire(self, bucket: str, rules: list[Rule], report: LifecycleReport) -> None:
        now = self.clock()
        prefixes = sorted({r.prefix for r in rules})
        common = prefixes[0] if all(p.startswith(prefixes[0]) for p in prefixes) else ""
        async for obj in walk(self.store, bucket, common):
            due = [rule for rule in rules if rule.selects(obj) and self._expired(rule, obj, now)]
            if due and all(rule.tags for rule in due):
                tags = await self._tags(bucket, obj.key)  # asked only of objects otherwise due
                due = [rule for rule in due if rule.selects_tags(tags)]
            if due:
                await self._delete_if_unchanged(bucket, obj, report)

    async def _tags(self, bucket: str, key: str) -> dict[str, str]:
        try:
            return await self.store.get_object_tagging(bucket, key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return {}
            raise

    async def _delete_if_unchanged(self, bucket: str, listed: ObjectInfo, report: LifecycleReport) -> None:
        """Delete what the listing showed, unless it was written again since (then it is not that old)."""
        try:
            current = await self.store.head_object(bucket, listed.key)
        except StoreError as exc:
            if exc.code == "NoSuchKey":
                return
            raise
        if current.etag != listed.etag or current.last_modified > listed.last_modified:
            return
        await self.store.delete_object(bucket, listed.key)
        report.expired += 1

    async def _abort(self, bucket: str, rule: Rule, report: LifecycleReport) -> None:
        now, days = self.clock(), rule.abort_days or 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = await self.store.list_multipart_uploads(bucket, rule.prefix, key_marker, upload_marker, UPLOADS_PAGE)
            for upload in page.uploads:
                if upload.key.startswith(rule.prefix) and now >= self.due(upload.initiated, days):
                    try:
                        await self.store.abort_multipart_upload(bucket, upload.key, upload.upload_id)
                    except StoreError as exc:
                        if exc.code != "NoSuchUpload":  # completed or aborted meanwhile
                            raise
                        continue
                    report.aborted += 1
            if not page.is_truncated or page.next_key_marker is None:
                return
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker
