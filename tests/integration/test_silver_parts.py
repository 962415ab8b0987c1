"""Silver merges a batch in overlapping parts (refine the next while the last is written):
the outcome is the one a single transaction would give, on a real PostgreSQL.

Versions of one transaction fall into different parts, in any order; records the database
refuses sit in different parts; the batch is then delivered again. Every transaction must end
at its highest version with its items, every record in exactly one place, the refused ones
quarantined, and the redelivery must change nothing.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.events import ProductRecord, StoreRecord
from services.common.handoff import DecodedRecord, LandedRecord, encode_landed
from services.common.settings import Settings
from services.silver_enricher import pipeline as silver_pipeline
from services.silver_enricher import repo
from services.silver_enricher.app import pii_key
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS
from services.silver_enricher.pipeline import SilverPipeline
from services.silver_enricher.transform import Refiner

TRANSACTIONS = 80
VERSIONS = 3
REFUSED = ("REFUSE-1", "REFUSE-2", "REFUSE-3")


def _record(event_id: str, version: int, when: datetime) -> DecodedRecord:
    qty, price = 1 + version, Decimal("12.50")
    raw: dict[str, Any] = {
        "schema": "pos.transaction/1", "event_id": event_id, "store_id": "S1",
        "terminal_id": "T-1", "occurred_at": when.isoformat(), "total_amount": qty * price,
        "payment_method": "cash", "version": version,
        "items": [{"sku": "P-1", "qty": qty, "unit_price": price}],
    }  # fmt: skip
    return DecodedRecord(str(uuid.uuid4()), "pos", when + timedelta(seconds=version), raw,
                         None, None)  # fmt: skip


def _batch() -> list[DecodedRecord]:
    when = datetime.now(UTC) - timedelta(hours=1)
    records = [_record(f"E-{n:03d}", v, when) for n in range(TRANSACTIONS)
               for v in range(1, VERSIONS + 1)]  # fmt: skip
    random.Random(20261201).shuffle(records)  # versions of one event land in different parts
    for i, event_id in enumerate(REFUSED):  # one in the first, middle and last part
        records.insert([5, len(records) // 2, len(records) - 5][i], _record(event_id, 1, when))
    return records


@asynccontextmanager
async def _pipeline(settings: Settings, *, with_product: bool) -> AsyncIterator[SilverPipeline]:
    """A silver pipeline on the test database, store S1 (and product P-1) in master data."""
    pool = await create_pool(settings, "silver")
    try:
        async with pool.acquire() as conn:
            await repo.upsert_stores(conn, [StoreRecord.model_validate(
                {"store_id": "S1", "name": "One", "region": "NCR", "city": "Manila",
                 "timezone": "Asia/Manila"})])  # fmt: skip
            if with_product:
                await repo.upsert_products(conn, [ProductRecord.model_validate(
                    {"sku": "P-1", "name": "p", "brand": "b", "category": "c",
                     "unit_price": "12.50"})])  # fmt: skip

        async def get_pool() -> asyncpg.Pool:
            return pool

        yield SilverPipeline(get_pool, Refiner(pii_key(settings), DEFAULT_EXPECTATIONS),
                             allowed_skew_s=300)  # fmt: skip
    finally:
        await pool.close()


async def _state(db: asyncpg.Connection) -> dict[str, Any]:
    return {
        "tx": await db.fetch("SELECT event_id, version, bronze_id, amount FROM "
                             "scout.silver_transactions_cleaned ORDER BY event_id"),
        "items": await db.fetch("SELECT t.event_id, i.qty, i.line_amount FROM "
                                "scout.silver_transaction_items i JOIN "
                                "scout.silver_transactions_cleaned t USING (transaction_id) "
                                "ORDER BY t.event_id, i.line_no"),
        "quarantine": await db.fetch("SELECT bronze_id, rule FROM scout.silver_quarantine "
                                     "ORDER BY bronze_id"),
        "lineage": await db.fetchval("SELECT count(*) FROM scout.silver_lineage"),
        "changes": await db.fetchval("SELECT coalesce(sum(sign), 0) FROM "
                                     "scout.gold_silver_changes WHERE kind = 'transaction'"),
    }  # fmt: skip


@pytest.mark.parametrize("part_records", [7, 1_000_000])
async def test_parts_give_the_outcome_of_one_transaction(
    settings: Settings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
    part_records: int,
) -> None:  # fmt: skip
    monkeypatch.setattr(silver_pipeline, "PART_RECORDS", part_records)
    await db.execute("ALTER TABLE scout.silver_transactions_cleaned ADD CONSTRAINT refuse "
                     "CHECK (event_id NOT LIKE 'REFUSE-%')")  # fmt: skip
    async with _pipeline(settings, with_product=True) as pipeline:
        batch = _batch()
        first = await pipeline.process(batch)
        state = await _state(db)
        again = await pipeline.process(batch)  # the same batch delivered again
        assert await _state(db) == state

    assert again.changed_transactions == 0
    assert [(r["event_id"], r["version"]) for r in state["tx"]] == [
        (f"E-{n:03d}", VERSIONS) for n in range(TRANSACTIONS)
    ]
    newest = {r.raw["event_id"]: r.bronze_id for r in batch if r.raw["version"] == VERSIONS}
    assert {r["event_id"]: str(r["bronze_id"]) for r in state["tx"]} == newest
    assert [(r["event_id"], r["qty"]) for r in state["items"]] == [
        (f"E-{n:03d}", 1 + VERSIONS) for n in range(TRANSACTIONS)
    ]
    refused = sorted(r.bronze_id for r in batch if r.raw["event_id"] in REFUSED)
    assert [(str(r["bronze_id"]), r["rule"]) for r in state["quarantine"]] == [
        (b, "unprocessable") for b in refused
    ]
    assert state["lineage"] == len(batch)  # every record in exactly one place
    assert state["changes"] == TRANSACTIONS  # gold is told of each transaction once, net
    assert 0 < first.changed_transactions <= TRANSACTIONS * VERSIONS


async def test_small_landed_messages_are_merged_together(
    settings: Settings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a paced rate bronze hands off a few records per message: silver gathers them into
    parts of PART_RECORDS, one transaction each, not one transaction per message (which made
    silver fall behind at 1,200 records/s, bench/results/chain.md), with the same outcome."""
    monkeypatch.setattr(silver_pipeline, "PART_RECORDS", 100)
    written: list[int] = []
    write_part = SilverPipeline._write_part

    async def counting(self: SilverPipeline, part: Any, *args: Any) -> None:
        written.append(len(part))
        await write_part(self, part, *args)

    monkeypatch.setattr(SilverPipeline, "_write_part", counting)
    async with _pipeline(settings, with_product=False) as pipeline:
        when = datetime.now(UTC) - timedelta(hours=1)
        records = [_record(f"E-{n:03d}", 1, when) for n in range(250)]
        messages = [
            message
            for start in range(0, len(records), 10)  # 25 messages of 10 records
            for message in encode_landed(
                LandedRecord(r.bronze_id, "pos", int(r.kafka_timestamp.timestamp() * 1000),
                             json.dumps(r.raw, default=str))
                for r in records[start : start + 10]
            )
        ]  # fmt: skip
        decoded: list[int] = []
        unreadable: list[tuple[int, str]] = []
        result = await pipeline.process_landed(
            messages, decoded.append, lambda n, why: unreadable.append((n, why))
        )

    assert len(messages) == 25 and decoded == [10] * 25 and not unreadable
    assert written == [100, 100, 50]
    assert result.changed_transactions == 250
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 250
    assert await db.fetchval("SELECT count(*) FROM scout.silver_lineage") == 250
