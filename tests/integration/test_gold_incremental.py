"""Gold's incremental flush equals the from-scratch recomputation, change after change.

Random inserts, corrections (amount, customer, store, day), deletions, footfall and spend go
straight into silver (its triggers capture them, as for the silver service's writes); two
aggregators ("workers") flush in turn, a rebuild runs in between, one worker loses its
transaction. After every round, ``repo.mismatches`` (the reconciliation of ``scout gold
verify``) must find nothing.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from services.gold_aggregator import repo
from services.gold_aggregator.incremental import BusinessMetrics
from tests.integration.test_gold import _silver_row, _ts

pytestmark = pytest.mark.integration

DAYS = (date(2026, 11, 19), date(2026, 11, 20))
STORES = ("S1", "S2", "S3")
CUSTOMERS = (None, "c1", "c2", "c3", "c4")
INSERT_TX = """
INSERT INTO scout.silver_transactions_cleaned (transaction_id, source_system, event_id, version,
    bronze_id, kafka_timestamp, store_id, transaction_date, amount, gross_amount,
    discount_amount, currency, product_category, brand_name, customer_type, customer_key,
    item_count, unit_count, region, city, timezone, local_date, day_of_week, is_weekend,
    local_hour)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::uuid[],
    $6::timestamptz[], $7::text[], $8::timestamptz[], $9::numeric[], $10::numeric[],
    $11::numeric[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::int[],
    $18::int[], $19::text[], $20::text[], $21::text[], $22::date[], $23::smallint[],
    $24::bool[], $25::smallint[])
"""


def _amount(rng: random.Random) -> Decimal:
    # Few distinct amounts, so that removals hit duplicates in the sorted list.
    return Decimal(rng.choice(["5.00", "9.99", "10.00", "12.50", "99.95", "250.00"]))


async def _insert(db: asyncpg.Connection, rng: random.Random, n: int) -> None:
    rows = []
    for _ in range(n):
        customer = rng.choice(CUSTOMERS)
        ctype = "walk_in" if customer is None else rng.choice(["new", "regular"])
        row = list(_silver_row(rng.choice(STORES), rng.choice(DAYS), "1.00", customer, ctype))
        row[8] = row[9] = _amount(rng)
        rows.append(row)
    keep = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 22, 23, 24, 25, 26, 27, 28,
            29, 30)  # fmt: skip
    columns = [[r[i] for r in rows] for i in keep]
    columns[5] = [_ts(v) for v in columns[5]]
    columns[7] = [_ts(v) for v in columns[7]]
    await db.execute(INSERT_TX, *columns)


async def _mutate(db: asyncpg.Connection, rng: random.Random) -> None:
    """One round of silver changes, in several statements (and so several capture rows)."""
    await _insert(db, rng, rng.randint(5, 30))
    ids = [r["transaction_id"] for r in await db.fetch(
        "SELECT transaction_id FROM scout.silver_transactions_cleaned")]  # fmt: skip
    rng.shuffle(ids)
    for tid in ids[:5]:  # a correction of the amount (and the customer)
        customer = rng.choice(CUSTOMERS)
        await db.execute(
            "UPDATE scout.silver_transactions_cleaned SET amount = $2, version = version + 1, "
            "customer_key = $3, customer_type = $4 WHERE transaction_id = $1",
            tid, _amount(rng), customer,
            "walk_in" if customer is None else rng.choice(["new", "regular"]),
        )  # fmt: skip
    for tid in ids[5:8]:  # a correction that moves the transaction to another group
        await db.execute(
            "UPDATE scout.silver_transactions_cleaned SET store_id = $2, local_date = $3 "
            "WHERE transaction_id = $1", tid, rng.choice(STORES), rng.choice(DAYS),
        )  # fmt: skip
    await db.execute(  # an update that changes nothing gold sees
        "UPDATE scout.silver_transactions_cleaned SET notes = 'x' WHERE transaction_id = $1", ids[8]
    )
    await db.execute(
        "DELETE FROM scout.silver_transactions_cleaned WHERE transaction_id = ANY($1::uuid[])",
        ids[9:11],
    )
    await db.execute(
        "INSERT INTO scout.silver_device_readings (device_id, kind, occurred_at, store_id, value,"
        " local_date, bronze_id) VALUES ($1, $2, now(), $3, $4, $5, $6)",
        str(uuid.uuid4()), rng.choice(["footfall", "temperature"]), rng.choice(STORES),
        Decimal(rng.randint(1, 9)), rng.choice(DAYS), uuid.uuid4(),
    )  # fmt: skip
    await db.execute(
        "INSERT INTO scout.silver_campaign_spend AS s (campaign_id, store_id, spend_date, spend,"
        " bronze_id, kafka_timestamp) VALUES ('C1', $1, $2, $3, $4, now())"
        " ON CONFLICT (campaign_id, store_id, spend_date, channel) DO UPDATE"
        " SET spend = EXCLUDED.spend",
        rng.choice(STORES), rng.choice(DAYS), Decimal(rng.randint(1, 500)), uuid.uuid4(),
    )  # fmt: skip


async def _flush(worker: BusinessMetrics, conn: asyncpg.Connection) -> tuple[int, int]:
    """Flush until no change is left, a few groups at a time; returns (groups, loaded)."""
    groups = loaded = 0
    while await conn.fetchval("SELECT count(*) FROM scout.gold_silver_deltas"):
        async with conn.transaction(isolation="repeatable_read"):
            flushed = await worker.flush(conn, limit=4)
        groups, loaded = groups + flushed.groups, loaded + flushed.loaded
    return groups, loaded


async def _mismatches(db: asyncpg.Connection) -> int:
    async with db.transaction(isolation="repeatable_read"):
        result = await repo.mismatches(db, DAYS[0])
    return result["gold_business_metrics"]


async def test_incremental_equals_recomputation_through_random_changes(
    db: asyncpg.Connection, database_url: str
) -> None:
    rng = random.Random(7)
    workers = [BusinessMetrics(), BusinessMetrics()]
    other = await asyncpg.connect(database_url)
    applied = loaded = 0
    try:
        for round_no in range(12):
            await _mutate(db, rng)
            turn = round_no // 3 % 2  # three rounds each, then the other worker
            groups, loads = await _flush(workers[turn], (db, other)[turn])
            applied, loaded = applied + groups, loaded + loads
            assert await _mismatches(db) == 0, f"round {round_no}"
            if round_no == 5:  # an operator's rebuild: both workers must reload, not trust
                async with db.transaction():
                    await repo.refresh_store_days(db, await repo.all_store_days(db, DAYS[0]))
            if round_no == 8:  # a flush whose transaction is lost after the state changed
                await _mutate(db, rng)
                with pytest.raises(RuntimeError):
                    async with db.transaction(isolation="repeatable_read"):
                        await workers[0].flush(db, limit=100)
                        raise RuntimeError("connection lost before the commit")
                workers[0].forget()  # what the service does on any failed flush
        groups = await db.fetchval("SELECT count(*) FROM scout.gold_business_metrics")
        assert groups == await db.fetchval(
            "SELECT count(DISTINCT (store_id, local_date)) FROM scout.silver_transactions_cleaned"
        )
        # Each worker loads a group the first time, after the other worker or the rebuild
        # wrote it, and after its own failed flush; otherwise it applies the changes.
        assert 0 < loaded < applied
        assert await db.fetchval("SELECT count(*) FROM scout.gold_silver_deltas") == 0
    finally:
        await other.close()


async def test_silver_role_changes_are_captured_without_gold_privileges(
    db: asyncpg.Connection,
) -> None:
    """The silver service's role writes silver; the trigger (SECURITY DEFINER) captures the
    change although that role cannot touch gold's tables."""
    async with db.transaction():
        await db.execute("SET LOCAL ROLE scout_silver_enricher")
        await _insert(db, random.Random(1), 3)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction():
            await db.execute("SET LOCAL ROLE scout_silver_enricher")
            await db.execute("SELECT count(*) FROM scout.gold_silver_deltas")
    assert await db.fetchval("SELECT count(*) FROM scout.gold_silver_deltas") == 3


async def test_a_day_enqueued_during_its_recomputation_is_not_blocked_nor_lost(
    db: asyncpg.Connection, database_url: str
) -> None:
    """The day flush holds no lock on the pending row while it recomputes: the consumer's
    enqueue goes through at once, and the day stays queued for the next flush."""
    day = DAYS[0]
    other = await asyncpg.connect(database_url)
    try:
        await repo.enqueue_days(db, [day], datetime.now(UTC))
        async with db.transaction():
            claimed = await repo.claim_days(db, 64)
            assert [d for d, _ in claimed] == [day]
            # A second worker does not get the day while this one holds it.
            async with other.transaction():
                assert await repo.claim_days(other, 64) == []
            await asyncio.wait_for(repo.enqueue_days(other, [day], datetime.now(UTC)), 2)
            await repo.refresh_days(db, [day])
            await repo.finish_days(db, claimed)
        assert await db.fetchval("SELECT count(*) FROM scout.gold_pending_groups") == 1
        async with db.transaction():  # nothing enqueued meanwhile: the day is done
            claimed = await repo.claim_days(db, 64)
            await repo.refresh_days(db, [day])
            await repo.finish_days(db, claimed)
        assert await db.fetchval("SELECT count(*) FROM scout.gold_pending_groups") == 0
    finally:
        await other.close()
