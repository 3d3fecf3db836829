"""Reading the savings ledger while its writers flush: each writer's newest record, whatever the timing."""

from __future__ import annotations

import asyncio
from typing import Any

from s4.store.base import ObjectAttributes
from s4.store.compressing.ledger import Ledger, LedgerTotals, read_ledger, recount
from s4.store.filesystem import FilesystemStore
from s4.store.walk import single_chunk

FLUSHES_BEFORE_READS = 8


def test_a_record_replaced_before_each_read_is_read_from_its_writers_next_one(tmp_path):
    """A writer flushing faster than a reader reads: each of its records is gone by the time it is read
    (the writer wrote the next and removed it). The reader lists that writer's records again and reads
    the newest; it used to start the whole listing over, and gave up after 5 (a gateway's metrics logged
    'could not read the savings ledgers: NoSuchKey' under two gateways flushing every 0.2 s)."""

    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path, durable=False)
        steady, busy = Ledger(inner, flush_interval=3600), Ledger(inner, flush_interval=3600)
        try:
            await inner.create_bucket("b")
            steady.record("b", LedgerTotals(objects=2))
            busy.record("b", LedgerTotals(objects=1))
            await steady.flush()
            await busy.flush()

            class FlushingBeforeEachRead:
                flushes = 0

                def __getattr__(self, name: str) -> Any:
                    return getattr(inner, name)

                async def get_object(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
                    if busy.writer in key and self.flushes < FLUSHES_BEFORE_READS:
                        self.flushes += 1
                        busy.record("b", LedgerTotals(objects=1))
                        await busy.flush()
                    return await inner.get_object(bucket, key, *args, **kwargs)

            racing = FlushingBeforeEachRead()
            totals = await read_ledger(racing, "b")
            assert racing.flushes == FLUSHES_BEFORE_READS
            assert totals.objects == 2 + 1 + FLUSHES_BEFORE_READS
        finally:
            await steady.close()
            await busy.close()
            await inner.close()

    asyncio.run(scenario())


def test_a_recount_between_the_listing_and_the_reads_is_read_in_full(tmp_path):
    """A recount replaces every writer's record with its own while a reader is between its listing and
    its reads: every record listed is gone, and the recount's was not listed. The reader lists again
    and reads the recount's totals, rather than counting each vanished writer as nothing."""

    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path, durable=False)
        first, second = Ledger(inner, flush_interval=3600), Ledger(inner, flush_interval=3600)
        try:
            await inner.create_bucket("b")
            await inner.put_object("b", "object", single_chunk(b"x" * 100), ObjectAttributes())
            first.record("b", LedgerTotals(objects=5))
            second.record("b", LedgerTotals(objects=7))
            await first.flush()
            await second.flush()

            class RecountBeforeTheFirstRead:
                recounted: LedgerTotals | None = None

                def __getattr__(self, name: str) -> Any:
                    return getattr(inner, name)

                async def get_object(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
                    if self.recounted is None:
                        self.recounted = await recount(inner, "b")
                    return await inner.get_object(bucket, key, *args, **kwargs)

            racing = RecountBeforeTheFirstRead()
            totals = await read_ledger(racing, "b")
            assert racing.recounted is not None and racing.recounted.objects == 1
            assert totals == racing.recounted
        finally:
            await first.close()
            await second.close()
            await inner.close()

    asyncio.run(scenario())
