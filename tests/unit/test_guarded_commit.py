"""commit_guarded's decisions, with a stand-in for the upstream (the real one: tests/unit/test_s3_store.py)."""

from __future__ import annotations

import asyncio

import pytest

from s4.store.base import StoreError, WriteCondition
from s4.store.s3 import guarded
from s4.store.s3.guarded import GUARDED_ATTEMPTS, UNEXPLAINED_REFUSALS, commit_guarded

ABSENT = WriteCondition(if_none_match=True)


def matching(etag: str) -> WriteCondition:
    return WriteCondition(if_match=etag)


class Key:
    """The key as the upstream has it, and a guard that looks at it; other writers change it by ``writes``."""

    def __init__(self, etag: str | None, writes: list[str | None] | None = None) -> None:
        self.etag = etag
        self.writes = list(writes or [])
        self.sent: list[WriteCondition | None] = []

    async def expect(self) -> WriteCondition | None:
        return ABSENT if self.etag is None else matching(self.etag)

    async def send(self, condition: WriteCondition | None) -> str:
        self.sent.append(condition)
        if self.writes:  # another writer's commit lands first
            self.etag = self.writes.pop(0)
        holds = (
            condition is None
            or (condition.if_none_match and self.etag is None)
            or (condition.if_match is not None and condition.if_match == self.etag)
        )
        if not holds:
            raise StoreError("PreconditionFailed", "refused")
        self.etag = "mine"
        return "committed"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(guarded.asyncio, "sleep", instant)


def test_each_refusal_by_another_writer_is_followed_by_a_fresh_look():
    key = Key("a", writes=["b", "c"])
    assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
    assert key.sent == [matching("a"), matching("b"), matching("c")]


def test_a_delete_that_finds_nothing_sends_nothing():
    key = Key(None)
    assert asyncio.run(commit_guarded(None, key, key.send, absent=lambda: "nothing")) == "nothing"
    assert key.sent == []


def test_a_guard_that_expects_nothing_in_particular_sends_no_condition():
    class Unconditioned(Key):
        async def expect(self) -> None:
            return None

    key = Unconditioned("a")
    asyncio.run(commit_guarded(None, key, key.send))
    assert key.sent == [None]
    # With a client's condition, that condition is sent as it is.
    key = Unconditioned("a")
    asyncio.run(commit_guarded(matching("a"), key, key.send))
    assert key.sent == [matching("a")]


def test_a_clients_condition_the_look_no_longer_sees_is_a_conflict():
    key = Key("b")
    with pytest.raises(StoreError) as caught:
        asyncio.run(commit_guarded(matching("a"), key, key.send))
    assert caught.value.code == "ConditionalRequestConflict" and key.sent == []


def test_a_key_changing_at_every_try_still_gets_the_change_committed():
    key = Key("a", writes=[f"w{n}" for n in range(GUARDED_ATTEMPTS)])
    assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
    assert len(key.sent) == GUARDED_ATTEMPTS + 1 and key.sent[-1] is None


def test_the_pause_after_a_refusal_comes_before_the_next_look(monkeypatch):
    """Other writers go on while a refused commit backs off: a look taken before the pause is stale by
    the time the commit goes, and is refused again (found by the two-gateway ledger test over
    SeaweedFS, where a writer ran out of attempts and its change went uncounted)."""
    key = Key("a", writes=["b"])
    landed = iter(f"during-pause-{n}" for n in range(GUARDED_ATTEMPTS * 2))

    async def others_write_meanwhile(_: float) -> None:
        key.etag = next(landed)

    monkeypatch.setattr(guarded.asyncio, "sleep", others_write_meanwhile)
    assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
    assert key.sent == [matching("a"), matching("during-pause-0")]


def test_a_refusal_about_something_else_is_raised():
    class SourceGone(Key):
        async def send(self, condition: WriteCondition | None) -> str:
            self.sent.append(condition)
            raise StoreError("NoSuchKey", "the copy's source is gone")

    key = SourceGone("a")
    with pytest.raises(StoreError) as caught:
        asyncio.run(commit_guarded(None, key, key.send))
    assert caught.value.code == "NoSuchKey" and key.sent == [matching("a")] * UNEXPLAINED_REFUSALS + [None]


def test_a_key_that_changed_and_changed_back_is_tried_again_under_its_condition():
    """Absent when looked at, then written and deleted again by other writers between the commit and the
    next look (two gateways over SeaweedFS): the look sees what it saw, but the refusal was the key's
    change all the same. The commit is tried again under its condition; sent without it, it would
    replace whatever another writer had put there meanwhile, and the ledger would not subtract that."""

    class WrittenThenDeleted(Key):
        async def send(self, condition: WriteCondition | None) -> str:
            if not self.sent:
                self.sent.append(condition)
                raise StoreError("PreconditionFailed", "theirs landed first, and was deleted before the look")
            return await super().send(condition)

    key = WrittenThenDeleted(None)
    assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
    assert key.sent == [ABSENT, ABSENT]


def test_a_409_from_a_write_at_the_same_time_is_a_refusal_too():
    class Conflicting(Key):
        async def send(self, condition: WriteCondition | None) -> str:
            if not self.sent:
                self.sent.append(condition)
                self.etag = "theirs"
                raise StoreError("ConditionalRequestConflict", "another write ran at the same time")
            return await super().send(condition)

    key = Conflicting("a")
    assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
    assert key.sent == [matching("a"), matching("theirs")]


def test_an_upstream_without_conditional_writes_still_takes_the_change(caplog):
    class NoConditions(Key):
        async def send(self, condition: WriteCondition | None) -> str:
            self.sent.append(condition)
            if condition is not None:
                raise StoreError("NotImplemented", "A header you provided implies functionality not implemented")
            return "committed"

    guarded._warned.clear()
    key = NoConditions("a")
    with caplog.at_level("WARNING", logger="s4.store.s3.guarded"):
        assert asyncio.run(commit_guarded(None, key, key.send)) == "committed"
        asyncio.run(commit_guarded(None, key, key.send))
    assert key.sent == [matching("a"), None, matching("a"), None]
    assert caplog.text.count("sent without its guard") == 1  # once per process and reason


def test_only_the_gateways_own_empty_objects_are_taken_as_momentary():
    """The S3 store's momentary empty null version (TRANSIENT_METADATA) is no object to the ledger's look;
    a client's object carrying the same metadata (a copy with REPLACE can give it any) is the client's."""
    import datetime as dt

    from s4.store.base import TRANSIENT_METADATA, ObjectAttributes, ObjectInfo
    from s4.store.compressing.metering import _transient

    def info(key: str, size: int) -> ObjectInfo:
        attributes = ObjectAttributes(metadata={TRANSIENT_METADATA: "1"})
        return ObjectInfo("b", key, size, "e", dt.datetime.now(dt.UTC), attributes)

    assert _transient("k.s4index", info("k.s4index", 0))
    assert _transient(".s4mpu/u/part-00001", info(".s4mpu/u/part-00001", 0))
    assert not _transient("k", info("k", 0))  # a client's key
    assert not _transient("k.s4index", info("k.s4index", 12))  # not empty
