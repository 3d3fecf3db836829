"""Reading the savings ledger while its writers flush: each writer's newest record, whatever the timing."""

from __future__ import annotations

import asyncio
from typing import Any

from s4.store.compressing.ledger import Ledger, LedgerTotals, read_ledger
from s4.store.filesystem import FilesystemStore

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
