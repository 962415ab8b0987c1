"""Two bronze workers in one group: a worker joins and one leaves (SIGTERM) mid-stream.

What a user must see: every record in bronze exactly once, the survivor owning every
partition with nothing left uncommitted, and no batch delivered twice — each revoke waits
for the batch in flight to commit, so handing partitions over redelivers nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.common.kafka import topics_for
from services.common.settings import Settings
from tests.support import ServiceProcess, group_assignment, publish, uncommitted, wait_for

pytestmark = pytest.mark.integration

REDELIVERY_LOG = "already-landed records (redelivery)"


def pos_and_iot(settings: Settings, n: int) -> Iterator[tuple[str, bytes, bytes]]:
    topics = topics_for(settings)
    for i in range(n):
        if i % 3 == 2:
            body = b'{"schema": "iot.reading/1", "device_id": "D%d", "value": %d}' % (i % 7, i)
            yield topics.iot, b"D%d" % (i % 7), body
        else:
            body = b'{"schema": "pos.transaction/1", "event_id": "R%d", "total": 1}' % i
            yield topics.pos, b"S%04d" % (i % 40), body


async def group_members(settings: Settings) -> list[set[TopicPartition]]:
    return await group_assignment(settings, "bronze")


async def committed_lag(settings: Settings) -> int:
    return await uncommitted(settings, "bronze", all_partitions(settings))


def all_partitions(settings: Settings) -> set[TopicPartition]:
    return {
        TopicPartition(topic, p)
        for topic in topics_for(settings).sources
        for p in range(settings.topic_partitions)
    }


async def test_join_and_sigterm_mid_stream_hand_over_exactly(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    total = 45_000
    first = await asyncio.to_thread(ServiceProcess("bronze", settings, tmp_path).start)
    second = ServiceProcess("bronze", settings, tmp_path)
    publishing = asyncio.create_task(publish(settings, pos_and_iot(settings, total), rate=3_000))

    async def landed() -> int:
        return int(await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw"))

    try:

        async def some(n: int) -> bool:
            return await landed() >= n

        # A second worker joins under load: the first gives up half its partitions.
        await wait_for(lambda: some(6_000), timeout=60, interval=0.1)
        await asyncio.to_thread(second.start)

        async def two_members_share_all() -> bool:
            owned = await group_members(settings)
            return (
                len(owned) == 2 and all(owned) and set().union(*owned) == all_partitions(settings)
            )

        await wait_for(two_members_share_all, timeout=60, context=second.log_tail)
        at_join = await landed()
        await wait_for(lambda: some(at_join + 6_000), timeout=60, interval=0.1)

        # The first worker leaves mid-stream (SIGTERM): the second takes everything over.
        assert await asyncio.to_thread(first.stop) == 0, first.log_tail()
        at_leave = await landed()
        assert at_leave < total, "the worker left too late to prove anything"
        await publishing

        async def all_landed() -> bool:
            return await landed() >= total

        await wait_for(all_landed, timeout=120, context=second.log_tail)
        await asyncio.sleep(2)  # nothing more may arrive
        row = await db.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (kafka_topic, kafka_partition, kafka_offset)) "
            "AS d FROM scout.bronze_transactions_raw"
        )
        assert (row["n"], row["d"]) == (total, total)

        async def survivor_owns_all() -> bool:
            return await group_members(settings) == [all_partitions(settings)]

        await wait_for(survivor_owns_all, timeout=30)
        assert json.loads(second.get("/ready"))["checks"]["kafka_partitions_assigned"] is True
        assert await committed_lag(settings) == 0

        # No needless redelivery: everything the survivor consumed was new to bronze, and
        # neither worker ever had to de-duplicate a batch.
        consumed = second.metric("scout_records_consumed_total", layer="bronze")
        written = second.metric("scout_records_written_total", layer="bronze")
        assert consumed == written > 0
        for worker in (first, second):
            assert REDELIVERY_LOG not in worker.log_path.read_text()
    finally:
        publishing.cancel()
        first.stop()
        assert second.stop() == 0, second.log_tail()
