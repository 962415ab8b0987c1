"""The data quality dashboard view and `scout quality` on rows of every layer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler
from services.platinum_builder.config import PlatinumSettings
from tests.support import settings_env

pytestmark = pytest.mark.integration


async def dashboard(db: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    return {r["layer"]: r for r in await db.fetch("SELECT * FROM scout.data_quality_dashboard")}


async def seed_bronze_and_silver(db: asyncpg.Connection) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    await db.execute("SELECT scout.ensure_bronze_partition($1::date)", now.date())
    ids = [uuid.uuid4() for _ in range(100)]
    await db.copy_records_to_table(
        "bronze_transactions_raw", schema_name="scout",
        columns=["id", "raw_data", "source_system", "kafka_topic", "kafka_partition",
                 "kafka_offset", "kafka_timestamp"],
        records=[(i, "{}", "pos", "scout.pos.transactions", 0, n, now - timedelta(seconds=2))
                 for n, i in enumerate(ids)],
    )  # fmt: skip
    await db.copy_records_to_table(
        "bronze_error_log", schema_name="scout",
        columns=["id", "raw_bytes", "reason", "kafka_topic", "kafka_partition", "kafka_offset",
                 "kafka_timestamp"],
        records=[(uuid.uuid4(), b"\xff", "not_json", "scout.pos.transactions", 1, n, now)
                 for n in range(5)],
    )  # fmt: skip
    # Silver processed 98 of them: 95 transactions, 3 quarantined; 2 are still in flight.
    targets = ["silver_transactions_cleaned"] * 95 + ["silver_quarantine"] * 3
    await db.copy_records_to_table(
        "silver_lineage", schema_name="scout", columns=["bronze_id", "target"],
        records=list(zip(ids, targets, strict=False)),
    )  # fmt: skip
    return ids


async def seed_silver_and_gold(db: asyncpg.Connection) -> None:
    """Store A's gold row balances silver; store B's does not (count off by one)."""
    now = datetime.now(UTC)
    today = await db.fetchval("SELECT current_date")
    rows = []
    for store, n in (("A", 3), ("B", 2)):
        for k in range(n):
            rows.append((uuid.uuid4(), "pos", f"{store}{k}", 1, uuid.uuid4(),
                         now - timedelta(seconds=10), store, now, Decimal("10.00"),
                         Decimal("10.00"), "PHP", "snacks", "walk_in", 1, 1, "NCR", "Makati",
                         "Asia/Manila", today, 0, False, 10))  # fmt: skip
    await db.copy_records_to_table(
        "silver_transactions_cleaned", schema_name="scout",
        columns=["transaction_id", "source_system", "event_id", "version", "bronze_id",
                 "kafka_timestamp", "store_id", "transaction_date", "amount", "gross_amount",
                 "currency", "product_category", "customer_type", "item_count", "unit_count",
                 "region", "city", "timezone", "local_date", "day_of_week", "is_weekend",
                 "local_hour"], records=rows,
    )  # fmt: skip
    await db.copy_records_to_table(
        "gold_business_metrics", schema_name="scout",
        columns=["store_id", "date_key", "region", "city", "transaction_count", "daily_revenue",
                 "avg_transaction", "unique_customers", "median_amount", "new_customers",
                 "returning_customers", "footfall", "campaign_spend"],
        records=[("A", today, "NCR", "Makati", 3, Decimal("30.00"), 10, 0, 10, 0, 0, 0, 0),
                 ("B", today, "NCR", "Makati", 3, Decimal("20.00"), 10, 0, 10, 0, 0, 0, 0)],
    )  # fmt: skip
    # No aggregator ran: drop the changes silver's triggers captured, as if gold had applied
    # them (B's wrong row then has no change waiting to excuse it).
    await db.execute("DELETE FROM scout.gold_silver_changes")


async def test_dashboard_scores_freshness_and_gates(settings: Settings,
                                                    db: asyncpg.Connection) -> None:  # fmt: skip
    empty = await dashboard(db)
    assert list(empty) == ["bronze", "silver", "gold", "platinum"]
    assert not any(r["gate_met"] for r in empty.values())  # no data: nothing claimed

    await seed_bronze_and_silver(db)
    await seed_silver_and_gold(db)
    d = await dashboard(db)
    bronze, silver, gold = d["bronze"], d["silver"], d["gold"]
    assert (bronze["total_records"], bronze["valid_records"]) == (105, 100)
    assert bronze["quality_score"] == Decimal("95.238")
    assert 1.5 < bronze["freshness_seconds"] < 30 and bronze["gate_met"]
    assert (silver["total_records"], silver["valid_records"]) == (98, 95)
    assert silver["score_met"] and silver["sla_met"] and silver["gate_met"]
    assert silver["freshness_seconds"] >= 9.5  # publish → silver commit of the newest rows
    # Gold: B's row does not balance with silver and is not pending → 50 %, gate missed.
    assert (gold["total_records"], gold["valid_records"]) == (2, 1)
    assert gold["score_met"] is False and gold["gate_met"] is False

    # A change to B waits for the aggregator (captured just now): balanced "within the SLA".
    await db.execute(
        "INSERT INTO scout.gold_silver_changes (kind, sign, store_id, date_key, value, "
        "kafka_timestamp) VALUES ('spend', 1, 'B', current_date, 1, now() - interval '60 seconds')"
    )
    gold = (await dashboard(db))["gold"]
    assert gold["valid_records"] == 2 and gold["score_met"]
    assert 59 < gold["freshness_seconds"] < 120 and gold["gate_met"]

    # Platinum: nothing built yet → no freshness, gate missed; after the jobs, met.
    assert (await dashboard(db))["platinum"]["gate_met"] is False
    pool = await create_pool(settings, "platinum")
    try:
        for job in jobs.JOBS:
            result = await scheduler.run_job(pool, job, date.today(), PlatinumSettings())
            assert result.status == "succeeded", result.error
    finally:
        await pool.close()
    platinum = (await dashboard(db))["platinum"]
    assert platinum["total_records"] > 0 and platinum["quality_score"] == 100
    assert platinum["freshness_seconds"] < 60 and platinum["gate_met"]

    # A stuck silver enricher: a bronze row landed 10 minutes ago is still unprocessed.
    await db.execute(
        "INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, ingested_at, "
        "kafka_topic, kafka_partition, kafka_offset, kafka_timestamp) VALUES ($1, '{}', 'pos', "
        "now() - interval '10 minutes', 'scout.pos.transactions', 2, 0, now() - interval "
        "'10 minutes')",
        uuid.uuid4(),
    )
    d = await dashboard(db)
    assert d["silver"]["freshness_seconds"] >= 600 and d["silver"]["sla_met"] is False
    # Gold cannot be fresher than silver (but 10 minutes is within gold's 30-minute SLA).
    assert d["gold"]["freshness_seconds"] >= 600 and d["gold"]["sla_met"] is True


async def test_scout_quality_prints_table_and_json(settings: Settings,
                                                   db: asyncpg.Connection) -> None:  # fmt: skip
    await seed_bronze_and_silver(db)
    env = settings_env(settings)

    def scout(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "quality", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    table = await asyncio.to_thread(scout)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "records", "valid"]
    assert [line.split()[0] for line in lines[1:]] == ["bronze", "silver", "gold", "platinum"]
    assert "95.24" in lines[1] and "MISSED" in lines[4]
    as_json = await asyncio.to_thread(scout, "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [r["layer"] for r in rows] == ["bronze", "silver", "gold", "platinum"]
    assert rows[0]["total_records"] == 105 and rows[1]["valid_records"] == 95
