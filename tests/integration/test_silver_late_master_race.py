"""Two silver workers and late master data: the interleaving that left a run unsettled.

Silver's master handler consumes both master topics in one agent, so in ONE worker a store and
a product are never handled at the same time. With TWO workers they are: worker A handles a
late store and re-processes the records that waited for it in quarantine, while worker B
commits a product those records sell and looks for transactions to enrich again. If B looks
before A's re-processing commits, B finds nothing; A looked the product up before B committed
it, so A merges the transaction with the item enriched as unknown. Unless A checks again after
its own commit (as a streaming batch does), the item stays unknown for good although its
product exists: both workers idle, no error, and ``until_silver_settles`` waits for ever
(``unenriched`` > 0), as test_gold_scale did once with two silver workers.

The test forces that interleaving on the real database: a lock held on silver's transaction
table stops A's re-processing after its master-data look-up and before its write, B handles
the product meanwhile, then the lock goes. The workers are the service's own classes
(``MasterHandler``, ``SilverPipeline``, each with its own master-data cache and its own pool
of silver's login), without Faust around them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.handoff import DecodedRecord
from services.common.settings import Settings
from services.silver_enricher.app import MasterHandler, pii_key
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS
from services.silver_enricher.pipeline import SilverPipeline
from services.silver_enricher.transform import Refiner
from tests.support import wait_for

pytestmark = pytest.mark.integration

STORE, SKU = "SR1", "P-RACE"
WHEN = datetime(2026, 11, 20, 2, 15, tzinfo=UTC)


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    timestamp: float
    value: bytes


@dataclass
class _Event:
    message: _Message


class Worker:
    """One silver worker's pipeline and master handler (the service's context, minus Kafka)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self.pipeline = SilverPipeline(self.pool, Refiner(pii_key(settings), DEFAULT_EXPECTATIONS),
                                       allowed_skew_s=settings.allowed_clock_skew_s)  # fmt: skip
        self.masters = MasterHandler(self, self.pipeline)  # type: ignore[arg-type]
        self.pipeline.on_late_master = self.masters.resolve_late_master

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await create_pool(self.settings, "silver")
        return self._pool

    def db_failed(self, exc: BaseException) -> None:
        raise exc

    def db_ok(self) -> None:
        pass

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def _master(topic: str, offset: int, body: dict[str, Any]) -> list[_Event]:
    return [_Event(_Message(topic, 0, offset, WHEN.timestamp(), json.dumps(body).encode()))]


async def _land(db: asyncpg.Connection, raw: dict[str, Any]) -> DecodedRecord:
    """A bronze row, as bronze lands it, and the record bronze hands to silver for it."""
    bronze_id = uuid.uuid4()
    await db.execute("SELECT scout.ensure_bronze_partition($1::date)", WHEN.date())
    await db.execute(
        "INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, kafka_topic, "
        "kafka_partition, kafka_offset, kafka_timestamp) VALUES ($1, $2::jsonb, 'pos', 'pos', "
        "0, 1, $3)",
        bronze_id, json.dumps(raw), WHEN,
    )  # fmt: skip
    return DecodedRecord(bronze_id=str(bronze_id), source_system="pos", kafka_timestamp=WHEN,
                         raw=json.loads(json.dumps(raw), parse_float=Decimal), batch_id=None,
                         partner=None)  # fmt: skip


async def test_product_committed_while_a_waiting_record_is_reprocessed(
    settings: Settings, db: asyncpg.Connection, database_url: str
) -> None:
    a, b = Worker(settings), Worker(settings)
    try:
        # A transaction of a store and a product that silver knows neither of: it waits in
        # quarantine for its store (worker A's streaming batch).
        record = await _land(db, {
            "schema": "pos.transaction/1", "event_id": "RACE-1", "store_id": STORE,
            "occurred_at": WHEN.isoformat(), "total_amount": "12.50", "version": 1,
            "items": [{"sku": SKU, "qty": 1, "unit_price": "12.50"}],
        })  # fmt: skip
        await a.pipeline.process([record])
        assert await db.fetchval(
            "SELECT rule FROM scout.silver_quarantine WHERE resolved_at IS NULL"
        ) == "unknown_store"  # fmt: skip

        # Worker A gets the store; its re-processing of the waiting record is held just before
        # its write (after it looked the product up: not there yet).
        holder = await asyncpg.connect(database_url)
        hold = holder.transaction()
        await hold.start()
        await holder.execute(
            "LOCK TABLE scout.silver_transactions_cleaned IN SHARE ROW EXCLUSIVE MODE"
        )
        store = {"schema": "master.store/1", "store_id": STORE, "name": STORE, "region": "NCR",
                 "city": "Makati", "timezone": "Asia/Manila"}  # fmt: skip
        resolving = asyncio.create_task(a.masters.handle(_master("stores", 1, store)))

        async def a_waits_at_its_merge() -> bool:
            return bool(await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%silver_tx_stage%'"))  # fmt: skip

        try:
            await wait_for(a_waits_at_its_merge, timeout=30, interval=0.05)
            # Meanwhile worker B gets the product, commits it and re-checks silver: the
            # transaction is not there yet, so B has nothing to enrich.
            product = {"schema": "master.product/1", "sku": SKU, "name": SKU, "brand": "B",
                       "category": "C", "unit_price": "12.50"}  # fmt: skip
            await asyncio.wait_for(b.masters.handle(_master("products", 1, product)), 30)
            assert not resolving.done()
        finally:
            await hold.rollback()
            await holder.close()
        await asyncio.wait_for(resolving, 30)

        # The record is in silver, resolved — and its item enriched, since the product exists.
        row = await db.fetchrow(
            "SELECT q.resolved_at IS NOT NULL AS resolved, l.target FROM scout.silver_quarantine q "
            "JOIN scout.silver_lineage l USING (bronze_id)"
        )
        assert (row["resolved"], row["target"]) == (True, "silver_transactions_cleaned")
        items = await db.fetch("SELECT sku, known_sku, brand FROM scout.silver_transaction_items")
        assert [tuple(i) for i in items] == [(SKU, True, "B")]
    finally:
        await a.close()
        await b.close()
