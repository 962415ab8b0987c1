"""Gold's incremental flush equals the from-scratch recomputation, change after change.

Random inserts, corrections (amount, customer, store, day), line items written and rewritten
as silver writes them, deletions, footfall and spend go straight into silver (its triggers
capture them, as for the silver service's writes); two aggregators ("workers") flush in
turn, a rebuild runs in between, one worker loses its transaction. After every round,
``repo.mismatches`` (the reconciliation of ``scout gold verify``, all four tables) must find
nothing.
"""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from services.gold_aggregator import repo
from services.gold_aggregator.day_tables import DayTables
from services.gold_aggregator.incremental import BusinessMetrics, Flushed, claim_changes
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


INSERT_ITEMS = """
INSERT INTO scout.silver_transaction_items (transaction_id, line_no, sku, qty, unit_price,
    line_amount, brand, category, known_sku, store_id, local_date)
SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::numeric[],
    $6::numeric[], $7::text[], $8::text[], $9::bool[], $10::text[], $11::date[])
"""


async def _write_items(
    db: asyncpg.Connection, rng: random.Random, transactions: list[asyncpg.Record]
) -> None:
    """All lines of these transactions in one statement, as silver writes them: 1 to 3 lines,
    brands that repeat (and NULL, 'unknown'), so distinct transaction counts matter."""
    rows = []
    for t in transactions:
        for line in range(1, rng.randint(1, 3) + 1):
            qty = rng.randint(1, 3)
            price = rng.choice([Decimal("2.50"), Decimal("10.00"), Decimal("99.95")])
            rows.append((t["transaction_id"], line, f"P-{line}", qty, price, price * qty,
                         rng.choice(["B1", "B2", None]), rng.choice(["snacks", "drinks"]),
                         True, t["store_id"], t["local_date"]))  # fmt: skip
    if rows:
        await db.execute(INSERT_ITEMS, *(list(c) for c in zip(*rows, strict=True)))


async def _mutate(db: asyncpg.Connection, rng: random.Random) -> None:
    """One round of silver changes, in several statements (and so several capture rows)."""
    await _insert(db, rng, rng.randint(5, 30))
    await _write_items(db, rng, await db.fetch(
        "SELECT transaction_id, store_id, local_date FROM scout.silver_transactions_cleaned t "
        "WHERE NOT EXISTS (SELECT 1 FROM scout.silver_transaction_items i "
        "WHERE i.transaction_id = t.transaction_id)"))  # fmt: skip
    ids = [r["transaction_id"] for r in await db.fetch(
        "SELECT transaction_id FROM scout.silver_transactions_cleaned")]  # fmt: skip
    rng.shuffle(ids)
    rewritten = ids[11:14]  # a replaced transaction: its lines deleted, then written again
    await db.execute("DELETE FROM scout.silver_transaction_items "
                     "WHERE transaction_id = ANY($1::uuid[])", rewritten)  # fmt: skip
    await _write_items(db, rng, await db.fetch(
        "SELECT transaction_id, store_id, local_date FROM scout.silver_transactions_cleaned "
        "WHERE transaction_id = ANY($1::uuid[])", rewritten))  # fmt: skip
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


class Worker:
    """What one gold aggregator holds: the groups' and the days' state."""

    def __init__(self) -> None:
        self.business, self.days = BusinessMetrics(), DayTables()

    async def flush_once(self, conn: asyncpg.Connection, days: int) -> Flushed:
        async with conn.transaction(isolation="repeatable_read"):
            claimed = await claim_changes(conn, days)
            flushed = await self.business.apply(conn, claimed)
            await self.days.apply(conn, claimed)
        return flushed

    def forget(self) -> None:
        self.business.forget()
        self.days.forget()


async def _flush(worker: Worker, conn: asyncpg.Connection) -> tuple[int, int]:
    """Flush until no change is left, one day at a time; returns (groups, loaded)."""
    groups = loaded = 0
    while await conn.fetchval("SELECT count(*) FROM scout.gold_silver_changes"):
        flushed = await worker.flush_once(conn, days=1)
        groups, loaded = groups + flushed.groups, loaded + flushed.loaded
    return groups, loaded


async def _mismatches(db: asyncpg.Connection) -> dict[str, int]:
    async with db.transaction(isolation="repeatable_read"):
        return await repo.mismatches(db, DAYS[0])


async def test_incremental_equals_recomputation_through_random_changes(
    db: asyncpg.Connection, database_url: str
) -> None:
    rng = random.Random(7)
    workers = [Worker(), Worker()]
    other = await asyncpg.connect(database_url)
    applied = loaded = 0
    try:
        for round_no in range(12):
            await _mutate(db, rng)
            turn = round_no // 3 % 2  # three rounds each, then the other worker
            groups, loads = await _flush(workers[turn], (db, other)[turn])
            applied, loaded = applied + groups, loaded + loads
            assert set((await _mismatches(db)).values()) == {0}, f"round {round_no}"
            for table in ("segments", "places", "brands"):  # rows brought to zero are dropped
                assert not await db.fetchval(
                    f"SELECT count(*) FROM scout.gold_partial_{table} WHERE transactions = 0"
                ), f"round {round_no}: gold_partial_{table}"
            if round_no == 5:  # an operator's rebuild: both workers must reload, not trust
                async with db.transaction():
                    await repo.refresh_store_days(db, await repo.all_store_days(db, DAYS[0]))
                    await repo.refresh_days(db, await repo.all_days(db, DAYS[0]))
            if round_no == 8:  # a flush whose transaction is lost after the state changed
                await _mutate(db, rng)
                with pytest.raises(RuntimeError):
                    async with db.transaction(isolation="repeatable_read"):
                        claimed = await claim_changes(db, 31)
                        await workers[0].business.apply(db, claimed)
                        await workers[0].days.apply(db, claimed)
                        raise RuntimeError("connection lost before the commit")
                workers[0].forget()  # what the service does on any failed flush
        groups = await db.fetchval("SELECT count(*) FROM scout.gold_business_metrics")
        assert groups == await db.fetchval(
            "SELECT count(DISTINCT (store_id, local_date)) FROM scout.silver_transactions_cleaned"
        )
        # Each worker loads a group the first time, after the other worker or the rebuild
        # wrote it, and after its own failed flush; otherwise it applies the changes.
        assert 0 < loaded < applied
        assert await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes") == 0
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
            await db.execute("SELECT count(*) FROM scout.gold_silver_changes")
    assert await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes") == 3
