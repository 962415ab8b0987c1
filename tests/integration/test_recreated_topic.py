"""A raw topic deleted and re-created under a running bronze (issue 12, "identity that cannot
collide"): its offsets start again at 0, so (topic, partition, offset) names a second record.
Bronze tells them apart by the Kafka timestamp (migration 0050), and the consumer group must
neither skip the new topic's first records (a stale position or committed offset past them)
nor stall. Nothing is lost, nothing doubles, in bronze and in silver, and no worker restarts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import client_security, create_topics, topics_for
from services.common.settings import Settings
from tests.integration.test_never_stop import _masters, _sale, assert_never_stopped
from tests.support import ServiceProcess, publish, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration

LANDED = """
SELECT (SELECT count(*) FROM scout.bronze_transactions_raw),
       (SELECT count(DISTINCT id) FROM scout.bronze_transactions_raw),
       (SELECT count(*) FROM scout.bronze_transactions_raw b
         WHERE NOT EXISTS (SELECT 1 FROM scout.silver_lineage l WHERE l.bronze_id = b.id)),
       (SELECT count(*) FROM scout.silver_transactions_cleaned),
       (SELECT count(*) FROM scout.bronze_error_log)
"""


async def _delete_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                **client_security(settings))  # fmt: skip
    await admin.start()
    try:
        await admin.delete_topics([topic])
        for _ in range(300):
            if topic not in set(await admin.list_topics()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{topic} still listed 30 s after its deletion")
    finally:
        await admin.close()


def _sales(settings: Settings, tag: str, n: int) -> list[tuple[str, bytes, bytes]]:
    pos = topics_for(settings).pos
    stores = ("S-F1", "S-F2", "S-F3")
    return [
        (pos, stores[i % 3].encode(), json.dumps(_sale(f"{tag}-{i}", stores[i % 3])).encode())
        for i in range(n)
    ]


@pytest.mark.parametrize("bronze_meanwhile", ["running", "stopped"])
async def test_a_deleted_and_recreated_raw_topic_loses_nothing_and_doubles_nothing(
    settings: Settings, db: asyncpg.Connection, tmp_path: Any, bronze_meanwhile: str
) -> None:
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    seen: dict[str, Any] = {}

    def until(bronze: int, silver: int) -> Any:
        async def landed() -> bool:
            rows, ids, unmerged, cleaned, errors = await db.fetchrow(LANDED)
            seen.update(rows=rows, ids=ids, unmerged=unmerged, silver=cleaned, errors=errors,
                        want=(bronze, silver))  # fmt: skip
            return bool(rows == bronze and unmerged == 0 and cleaned == silver)

        return landed

    try:
        await publish(settings, _masters(settings))
        first = _sales(settings, "OLD", 120)  # about 40 per partition
        await publish(settings, first)
        await wait_for(until(120, 120), timeout=120, interval=0.5, context=lambda: seen)

        # Deleted and re-created while bronze runs: its position and the group's committed
        # offsets (~40 per partition) point into the new topic, past its first records.
        pos = topics_for(settings).pos
        if bronze_meanwhile == "stopped":
            assert services[0].stop() == 0, services[0].log_tail()
        await _delete_topic(settings, pos)
        await asyncio.sleep(2)
        await create_topics(settings)
        # More new records than the old offsets (a worker that kept its old position would
        # skip the first ~40 of each partition), and some already-landed records again.
        second = _sales(settings, "NEW", 300) + first[:60]
        await publish(settings, second)
        if bronze_meanwhile == "stopped":
            services[0] = await asyncio.to_thread(
                ServiceProcess("bronze", settings, tmp_path).start
            )
        await wait_for(until(120 + len(second), 420), timeout=180, interval=0.5,
                       context=lambda: seen)  # fmt: skip
        await asyncio.sleep(3)  # nothing more arrives (a double would)
        rows, ids, unmerged, cleaned, errors = await db.fetchrow(LANDED)
        # One bronze row per Kafka record ever published (the re-sent ones are new Kafka
        # records, told apart by their timestamp), one silver row per sale.
        assert (rows, ids, unmerged, cleaned, errors) == (120 + len(second), rows, 0, 420, 0)
        per_offset = await db.fetchval("""
            SELECT max(n) FROM (SELECT count(*) AS n FROM scout.bronze_transactions_raw
                                 GROUP BY kafka_partition, kafka_offset) k""")  # fmt: skip
        assert per_offset == 2  # offsets reused by the new topic: two records, two rows
        resent = await db.fetchval("""
            SELECT count(*) FROM scout.silver_lineage l
              JOIN scout.bronze_transactions_raw b ON b.id = l.bronze_id
             WHERE b.raw_data->>'event_id' LIKE 'OLD-%'""")  # fmt: skip
        assert resent == 180  # every bronze row of an old sale has its lineage
        versions = await db.fetchval("SELECT count(DISTINCT version) FROM"
                                     " scout.silver_transactions_cleaned")  # fmt: skip
        assert versions == 1
        assert_never_stopped(services)
    finally:
        stop_all(services, check=False)
