"""Platinum jobs on the real database: hand-checked features, idempotent reruns, atomic
failure, stored forecast errors, DP releases and the privacy budget, the CLI and the worker."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, privacy, scheduler
from services.platinum_builder.config import PlatinumSettings
from services.platinum_builder.features import COLUMNS
from services.simulator.shapes import day_factor
from tests.support import ServiceProcess, settings_env, wait_for
from tests.unit.test_platinum_features import END, fixture_rows

pytestmark = pytest.mark.integration

AS_OF = date.today() - timedelta(days=1)
STORES = {
    "S1": ("NCR", "Makati", 40_000), "S2": ("NCR", "Makati", 25_000),
    "S3": ("NCR", "Quezon City", 30_000), "S4": ("Visayas", "Cebu City", 20_000),
    "S5": ("Visayas", "Cebu City", 15_000), "S6": ("Mindanao", "Davao City", 10_000),
}  # fmt: skip
PLATINUM_TABLES = ("platinum_ml_features", "platinum_executive_summary",
                   "platinum_campaign_insights", "platinum_market_predictions",
                   "platinum_anonymized_analytics", "platinum_privacy_ledger")  # fmt: skip
GOLD_COLUMNS = ("store_id", "date_key", "region", "city", "transaction_count", "daily_revenue",
                "avg_transaction", "unique_customers", "median_amount", "new_customers",
                "returning_customers", "footfall", "conversion_rate", "campaign_spend")  # fmt: skip


def cfg(**overrides: object) -> PlatinumSettings:
    return PlatinumSettings(**{"platinum_ml_lookback_days": 60, **overrides})  # type: ignore[arg-type]


async def insert_gold(db: asyncpg.Connection, rows: list[tuple[object, ...]]) -> None:
    await db.copy_records_to_table("gold_business_metrics", schema_name="scout",
                                   columns=list(GOLD_COLUMNS), records=rows)  # fmt: skip


def gold_history(days: int = 150, seed: int = 7) -> list[tuple[object, ...]]:
    """Seasonal gold history (the simulator's weekday and payday shape) ending at AS_OF;
    S6 misses every fifth day (gaps)."""
    rng = random.Random(seed)
    rows = []
    for i in range(days):
        day = AS_OF - timedelta(days=days - 1 - i)
        for store, (region, city, base) in STORES.items():
            if store == "S6" and i % 5 == 0:
                continue
            revenue = Decimal(str(round(base * day_factor(day) * rng.gauss(1, 0.05), 2)))
            n = max(1, int(revenue / 150))
            spend = Decimal(800) if store in ("S1", "S3") and i >= days - 20 else Decimal(0)
            rows.append((store, day, region, city, n, revenue, revenue / n, n // 2, revenue / n,
                         n // 4, n // 5, n * 3, Decimal(1) / 3, spend))  # fmt: skip
    return rows


async def insert_silver(db: asyncpg.Connection, weeks: int = 3, per_city_week: int = 600) -> None:
    """Transactions of pseudonymous customers (300 per city) and walk-ins, in the last
    complete weeks."""
    rng = random.Random(11)
    monday = AS_OF - timedelta(days=AS_OF.weekday() + 7 * weeks)
    cities = {(r, c): s for s, (r, c, _) in STORES.items()}
    rows = []
    for week in range(weeks):
        for (region, city), store in cities.items():
            for k in range(per_city_week):
                day = monday + timedelta(days=7 * week + rng.randrange(7))
                at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC) + timedelta(seconds=k)
                amount = Decimal(str(round(rng.uniform(20, 500), 2)))
                walk_in = rng.random() < 0.2
                key = None if walk_in else f"ck-{city}-{rng.randrange(300):03d}"
                rows.append((uuid.uuid4(), "pos", f"E{week}-{city}-{k}", 1, uuid.uuid4(), at, store,
                             at, amount, amount, "PHP", "snacks",
                             "walk_in" if walk_in else "regular", key, 2, 3, region, city,
                             "Asia/Manila", day, (day.weekday() + 1) % 7, day.weekday() >= 5, 10,
                             "CMP-1" if city == "Makati" and k % 3 == 0 else None))  # fmt: skip
    columns = ["transaction_id", "source_system", "event_id", "version", "bronze_id",
               "kafka_timestamp", "store_id", "transaction_date", "amount", "gross_amount",
               "currency", "product_category", "customer_type", "customer_key", "item_count",
               "unit_count", "region", "city", "timezone", "local_date", "day_of_week",
               "is_weekend", "local_hour", "campaign_id"]  # fmt: skip
    await db.copy_records_to_table("silver_transactions_cleaned", schema_name="scout",
                                   columns=columns, records=rows)  # fmt: skip
    await insert_master_stores(db)


async def insert_master_stores(db: asyncpg.Connection) -> None:
    """The stores' master data: the DP release's public groups are their (region, city)."""
    await db.executemany(
        "INSERT INTO scout.silver_master_stores (store_id, name, region, city, timezone, "
        "opened_on) VALUES ($1, $1, $2, $3, 'Asia/Manila', '2020-01-01') ON CONFLICT DO NOTHING",
        [(s, r, c) for s, (r, c, _) in STORES.items()],
    )


async def insert_campaign(db: asyncpg.Connection) -> None:
    rows = [("CMP-1", s, AS_OF - timedelta(days=d), "social", Decimal(800), uuid.uuid4(),
             datetime.now(UTC)) for s in ("S1", "S3") for d in range(20)]  # fmt: skip
    await db.copy_records_to_table(
        "silver_campaign_spend", schema_name="scout",
        columns=["campaign_id", "store_id", "spend_date", "channel", "spend", "bronze_id",
                 "kafka_timestamp"], records=rows,
    )  # fmt: skip


async def snapshot(db: asyncpg.Connection) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for table in PLATINUM_TABLES:
        rows = await db.fetch(f"SELECT * FROM scout.{table} ORDER BY 1, 2, 3")
        out[table] = [tuple(r) for r in rows]
    return out


async def run_all(settings: Settings, config: PlatinumSettings) -> list[scheduler.RunResult]:
    pool = await create_pool(settings, "platinum")
    try:
        return [await scheduler.run_job(pool, job, AS_OF, config) for job in jobs.JOBS]
    finally:
        await pool.close()


async def test_ml_features_match_hand_computed_values(settings: Settings,
                                                      db: asyncpg.Connection) -> None:  # fmt: skip
    rows = [(g.store_id, g.date_key, g.region, g.city, g.transaction_count, g.daily_revenue,
             g.avg_transaction, g.unique_customers, g.avg_transaction, 0,
             g.returning_customers, 16, g.conversion_rate, g.campaign_spend)
            for g in fixture_rows()]  # fmt: skip
    await insert_gold(db, rows)
    pool = await create_pool(settings, "platinum")
    try:
        result = await scheduler.run_job(pool, jobs.JOBS_BY_NAME["ml_features"], END,
                                         cfg(platinum_ml_lookback_days=10))  # fmt: skip
    finally:
        await pool.close()
    assert result.status == "succeeded", result.error
    assert result.rows == 37
    got = {(r["store_id"], r["date_key"]): r for r in await db.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM scout.platinum_ml_features")}  # fmt: skip
    a7, a9 = got[("A", END - timedelta(days=2))], got[("A", END)]
    assert float(a7["revenue_7d_ma"]) == pytest.approx(250 / 7, abs=1e-4)
    assert float(a7["revenue_30d_ma"]) == pytest.approx(350 / 8, abs=1e-4)
    assert float(a7["wow_growth"]) == pytest.approx(1.0)
    assert float(a7["day_of_week_index"]) == pytest.approx(200 / 150, abs=1e-6)
    assert a7["campaign_flag"] is True
    assert float(a9["revenue_30d_ma"]) == pytest.approx(45.0)
    tiers = {s: got[(s, END)]["performance_tier"] for s in "ABCD"}
    assert tiers == {"A": "average_performer", "B": "high_performer", "C": "average_performer",
                     "D": "low_performer"}  # fmt: skip
    assert got[("A", END - timedelta(days=8))]["daily_revenue"] == 0  # a missing day


async def test_all_jobs_twice_give_identical_tables(settings: Settings,
                                                    db: asyncpg.Connection) -> None:  # fmt: skip
    await insert_gold(db, gold_history())
    await insert_silver(db)
    await insert_campaign(db)
    first = await run_all(settings, cfg())
    assert [r.status for r in first] == ["succeeded"] * len(jobs.JOBS), first
    before = await snapshot(db)
    assert all(before[t] for t in PLATINUM_TABLES), {t: len(v) for t, v in before.items()}
    second = await run_all(settings, cfg())
    assert [r.status for r in second] == ["succeeded"] * len(jobs.JOBS)
    assert await snapshot(db) == before
    runs = await db.fetch("SELECT job, period, status, rows, finished_at FROM "
                          "scout.platinum_job_runs ORDER BY run_id")  # fmt: skip
    assert len(runs) == 2 * len(jobs.JOBS)
    assert all(r["status"] == "succeeded" and r["finished_at"] and r["period"] == str(AS_OF)
               for r in runs)  # fmt: skip

    # The products make sense: forecast error stored and better than seasonal naive.
    summary = await db.fetchrow("SELECT * FROM scout.platinum_executive_summary")
    assert summary["active_stores"] == 6
    assert summary["forecast_30d_lower"] < summary["forecast_30d"] < summary["forecast_30d_upper"]
    assert summary["backtest_mape"] < summary["baseline_mape"], dict(summary)
    predictions = await db.fetch("SELECT * FROM scout.platinum_market_predictions")
    assert {(r["region"], r["horizon_days"]) for r in predictions} == {
        (region, h) for region in ("NCR", "Visayas", "Mindanao") for h in (7, 30)
    }
    campaign = await db.fetchrow("SELECT * FROM scout.platinum_campaign_insights")
    assert campaign["campaign_id"] == "CMP-1" and campaign["stores"] == 2
    assert campaign["spend"] == Decimal(800 * 40) and campaign["control_stores"] == 4
    assert campaign["attributed_revenue"] > 0

    # No customer identifier anywhere in platinum.
    columns = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'scout' AND table_name LIKE 'platinum%'"
    )
    assert not [c for c in columns if "customer_key" in c["column_name"]
                or "phone" in c["column_name"] or "email" in c["column_name"]]  # fmt: skip


async def test_dp_release_ledger_and_budget(settings: Settings, db: asyncpg.Connection) -> None:
    await insert_silver(db, weeks=3)
    # A public group (a store in master data) without transactions: published as suppressed.
    await db.execute("INSERT INTO scout.silver_master_stores (store_id, name, region, city, "
                     "timezone) VALUES ('S7', 'S7', 'Ilocos', 'Vigan', 'Asia/Manila')")  # fmt: skip
    pool = await create_pool(settings, "platinum")
    job = jobs.JOBS_BY_NAME["anonymized_analytics"]
    # 3 weeks of 600 transactions per city are too few customer-weeks for a DP quantile of
    # the bounds (it needs ~10k per week): here they are declared, as configuration allows.
    # A stricter suppression than the default (95 % error ≤ 25 % of the value) keeps the
    # empty group's chance of passing negligible (its noise would have to exceed 12 b).
    declared = {"privacy_max_contributions": 5, "privacy_spend_max": 2500.0,
                "privacy_max_relative_error": 0.25}  # fmt: skip
    try:
        refused = await scheduler.run_job(pool, job, AS_OF,
                                          cfg(privacy_epsilon_budget=1.0, **declared))  # fmt: skip
        assert refused.status == "failed"
        assert "privacy budget exhausted" in (refused.error or "")
        assert await db.fetchval("SELECT count(*) FROM scout.platinum_privacy_ledger") == 0
        assert await db.fetchval("SELECT count(*) FROM scout.platinum_anonymized_analytics") == 0

        done = await scheduler.run_job(pool, job, AS_OF,
                                       cfg(privacy_epsilon_budget=1.5, **declared))  # fmt: skip
        assert done.status == "succeeded", done.error
        # The budget window is full: the next week would be refused too.
        with pytest.raises(privacy.PrivacyBudgetExceededError):
            async with pool.acquire() as conn:
                ledger = [(jobs.week_number(date.fromisoformat(r["period"])), r["epsilon"])
                          for r in await conn.fetch("SELECT period, epsilon FROM "
                                                    "scout.platinum_privacy_ledger")]  # fmt: skip
            privacy.check_budget(ledger, [max(w for w, _ in ledger) + 1], 0.5, 1.5, 52)
    finally:
        await pool.close()
    ledger = await db.fetch("SELECT * FROM scout.platinum_privacy_ledger ORDER BY period")
    assert [r["epsilon"] for r in ledger] == [0.5, 0.5, 0.5]
    assert [r["delta"] for r in ledger] == [0.0, 0.0, 0.0]  # public groups: pure ε-DP
    for r in ledger:
        p = json.loads(r["parameters"])
        assert p["max_contributions"] == 5 and p["spend_max"] == 2500.0
        assert p["max_contributions_source"] == p["spend_max_source"] == "declared"
        assert p["epsilon_bounds"] == 0 and p["epsilon_count"] + p["epsilon_sum"] == 0.5
        assert p["groups_public"] == 5  # public: the cities of the stores in master data
        assert p["groups_released"] + p["groups_suppressed"] == 5
        assert "groups_in" not in p  # no exact count in the ledger
    rows = await db.fetch("SELECT * FROM scout.platinum_anonymized_analytics")
    assert rows and all(r["release_id"] in {x["release_id"] for x in ledger} for r in rows)
    assert len(rows) == 3 * 5  # every public group of every week: released or suppressed
    vigan = [r for r in rows if r["city"] == "Vigan"]
    assert len(vigan) == 3 and all(r["suppressed"] and r["transaction_count"] is None
                                   for r in vigan)  # fmt: skip
    released = [r for r in rows if not r["suppressed"]]
    truth = {"Makati": 600, "Quezon City": 600, "Cebu City": 600, "Davao City": 600}
    assert len(released) >= 10
    for r in released:
        # 600 transactions per city and week (the few customers with more than 5 lose a
        # couple): within 3 times the published 95 % error (a Laplace passes it with p = e^-9).
        assert abs(r["transaction_count"] - truth[r["city"]]) < 3 * r["transaction_count_error"]
        assert r["avg_amount_lower"] <= r["avg_amount"] <= r["avg_amount_upper"] <= 2500
        assert r["confidence"] == 0.95
    history = await db.fetch("SELECT status, error FROM scout.platinum_job_runs ORDER BY run_id")
    assert [h["status"] for h in history] == ["failed", "succeeded"]
    assert "SCOUT_PRIVACY_EPSILON_BUDGET" in history[0]["error"]

    # `scout privacy report`: a line per release with ε, bounds, groups and error; the budget.
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.cli", "privacy", "report"],
        env={**settings_env(settings), "SCOUT_PRIVACY_EPSILON_BUDGET": "1.5"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 + 3 + 1, proc.stdout
    for line, r in zip(lines[1:4], reversed(ledger), strict=True):
        assert line.startswith(r["period"]) and " declared " in line and "95%" in line
    assert lines[-1].startswith("budget: ε=1.5 spent of 1.5 over the last 52 weeks")


async def test_failed_build_leaves_tables_as_they_were(settings: Settings,
                                                       db: asyncpg.Connection) -> None:  # fmt: skip
    await insert_gold(db, gold_history(days=40))
    pool = await create_pool(settings, "platinum")
    try:
        assert (await scheduler.run_job(pool, jobs.JOBS_BY_NAME["ml_features"], AS_OF,
                                        cfg())).status == "succeeded"  # fmt: skip
        before = await db.fetch("SELECT * FROM scout.platinum_ml_features ORDER BY 1, 2")

        async def broken(conn: asyncpg.Connection, period: date, c: PlatinumSettings) -> int:
            await conn.execute("DELETE FROM scout.platinum_ml_features")
            raise RuntimeError("disk on fire")

        job = jobs.Job("ml_features", 7200, broken, "fails half-way")
        result = await scheduler.run_job(pool, job, AS_OF, cfg())
    finally:
        await pool.close()
    assert result.status == "failed" and "disk on fire" in (result.error or "")
    assert await db.fetch("SELECT * FROM scout.platinum_ml_features ORDER BY 1, 2") == before


async def test_cli_runs_one_job(settings: Settings, db: asyncpg.Connection) -> None:
    await insert_gold(db, gold_history(days=60))
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "platinum", "run", "executive_summary", "--now",
         "--period", AS_OF.isoformat()],
        env=settings_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "executive_summary" in proc.stdout and "succeeded" in proc.stdout
    assert await db.fetchval("SELECT count(*) FROM scout.platinum_executive_summary") == 1


async def test_worker_runs_due_jobs_and_exports_metrics(settings: Settings, db: asyncpg.Connection,
                                                        tmp_path: Path) -> None:  # fmt: skip
    await insert_gold(db, gold_history(days=60))
    await insert_silver(db, weeks=1)
    worker = ServiceProcess("platinum", settings, tmp_path, SCOUT_PLATINUM_TICK_S="1",
                            SCOUT_PLATINUM_ML_LOOKBACK_DAYS="30").start()  # fmt: skip
    try:

        async def all_succeeded() -> bool:
            n = await db.fetchval("SELECT count(DISTINCT job) FROM scout.platinum_job_runs "
                                  "WHERE status = 'succeeded'")  # fmt: skip
            return bool(n == len(jobs.JOBS))

        await wait_for(all_succeeded, timeout=90)
        await asyncio.sleep(3)  # later ticks: nothing is due again within the cadence
        runs = await db.fetchval("SELECT count(*) FROM scout.platinum_job_runs")
        assert runs == len(jobs.JOBS)
        assert worker.metric("scout_platinum_job_runs_total", status="succeeded") == len(jobs.JOBS)
        assert worker.metric("scout_platinum_job_last_success_timestamp_seconds",
                             job="ml_features") > 0  # fmt: skip
        assert worker.metric("scout_privacy_epsilon_spent") == 0.5
        assert worker.metric("scout_privacy_epsilon_budget") == 30.0

        async def quality_exported() -> bool:  # the dashboard's platinum row, on /metrics
            return 'scout_quality_gate_met{layer="platinum"}' in worker.get("/metrics")

        await wait_for(quality_exported, timeout=30)
        assert worker.metric("scout_quality_score", layer="platinum") == 1.0
    finally:
        assert worker.stop() == 0, worker.log_tail()
