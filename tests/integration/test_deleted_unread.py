"""Records Kafka deletes (retention) before a service's group read them: the consumer moves
past them without a word, so the service says so when it starts (log, gauge, alert)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from services.common.kafka import app_id, topics_for
from services.common.settings import Settings
from tests.integration.test_never_stop import _masters, _valid, until_settled
from tests.support import ServiceProcess, committed_offsets, publish, wait_for

pytestmark = pytest.mark.integration


async def delete_all_records(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """What retention does to a topic's old records, at once: every record up to the end."""
    ends = {tp: end for tp, end in (await _ends(settings, topic)).items() if end}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items()})
    finally:
        await admin.close()
    return ends


async def test_handoff_records_deleted_before_silver_read_them_are_reported(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Silver stops; bronze lands sales and hands them off; retention deletes the hand-off
    records; silver starts again. It reports how many records of which partitions it never
    read, with the way to recover them, and goes on with what comes next."""
    topics = topics_for(settings)
    bronze = ServiceProcess("bronze", settings, tmp_path).start()
    silver = ServiceProcess("silver", settings, tmp_path).start()
    try:
        await publish(settings, _masters(settings) + _valid(settings, 100, "FIRST"))
        await until_settled(db, 100, gold=False)
        assert silver.stop() == 0, silver.log_tail()  # its offsets are committed
        handed_off = await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
        await publish(settings, _valid(settings, 300, "LOST"))
        await wait_for(lambda: db.fetchval(
            "SELECT count(*) = 400 FROM scout.bronze_transactions_raw"), timeout=60)  # fmt: skip
        offsets = await committed_offsets(settings, "silver")
        committed = {tp: n for tp, n in offsets.items() if tp.topic == topics.bronze_landed}
        await _settle_handoff(settings)
        ends = await delete_all_records(settings, topics.bronze_landed)
        expected = {tp: end - committed.get(tp, 0) for tp, end in ends.items()
                    if end > committed.get(tp, 0)}  # fmt: skip
        assert expected, (ends, committed)  # the hand-off of LOST is among what was deleted
        silver = ServiceProcess("silver", settings, tmp_path).start()
        await publish(settings, _valid(settings, 10, "AFTER"))

        async def silver_goes_on() -> bool:  # FIRST and AFTER; LOST never reaches it
            n = await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
            return bool(n == 110)

        await wait_for(silver_goes_on, timeout=60)
        group = app_id(settings, "silver")
        reported = {tp: silver.metric("scout_consumer_deleted_unread", group=group,
                                      topic=tp.topic, partition=str(tp.partition))
                    for tp in expected}  # fmt: skip
        assert reported == {tp: float(n) for tp, n in expected.items()}
        log = silver.log_path.read_text()
        assert "before group" in log and "scout replay --from" in log
        # What was lost to silver is still in bronze (hence the replay the log names).
        assert handed_off == 100
        assert await db.fetchval("""
            SELECT count(*) FROM scout.bronze_transactions_raw b
             WHERE NOT EXISTS (SELECT 1 FROM scout.silver_lineage l WHERE l.bronze_id = b.id)
        """) == 300  # fmt: skip
    finally:
        silver.stop()
        bronze.stop()


async def test_source_records_deleted_before_bronze_read_them_are_reported(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Bronze stopped for longer than a source topic keeps records: the records deleted
    before it read them are reported when it starts, per partition, in all exactly."""
    pos = topics_for(settings).pos
    bronze = ServiceProcess("bronze", settings, tmp_path).start()
    try:
        await publish(settings, _valid(settings, 40, "FIRST"))
        await wait_for(lambda: db.fetchval(
            "SELECT count(*) = 40 FROM scout.bronze_transactions_raw"), timeout=60)  # fmt: skip
        assert bronze.stop() == 0, bronze.log_tail()
        await publish(settings, _valid(settings, 60, "LOST"))
        await delete_all_records(settings, pos)
        bronze = ServiceProcess("bronze", settings, tmp_path).start()
        group = app_id(settings, "bronze")
        assert bronze.metric("scout_consumer_deleted_unread", group=group, topic=pos) == 60
        assert "producers must send them again" in bronze.log_path.read_text()
        assert await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") == 40
    finally:
        bronze.stop()


async def _ends(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _settle_handoff(settings: Settings) -> None:
    """Bronze hands off after its commit: wait until its hand-off records stop growing."""
    last: dict[TopicPartition, int] = {}
    while (ends := await _ends(settings, topics_for(settings).bronze_landed)) != last:
        last = ends
        await asyncio.sleep(1.0)
