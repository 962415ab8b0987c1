"""Accuracy of the DP weekly analytics over 200 simulated weeks, on the real PostgreSQL.

What it exercises: the real ``anonymized_analytics`` job (its SQL on silver, OpenDP's DP
quantiles for the bounds, the Laplace releases, the ledger and the budget) at the *default*
privacy settings, over 200 weeks of silver rows, compared with the exact truth computed from
the same rows. What it does not: the streaming chain. Running simulate → bronze → silver 200
weeks long would take hours, so the silver rows are generated directly in the test database
with one SQL statement per block of weeks (generate_series, seeded ``random()``), following
the simulator's model: its world (seed 1 with 10 stores, as ``test_platinum_simulated.py``:
8 cities from ~170 to ~3,600 transactions a week, median ~380), its daily
volume (20 transactions per unit of store size, times the weekday and payday factor), its
customer model (35 % walk-ins without id, 45 % regulars drawn from the store's pool of
40·size + 10, 20 % one-off new customers) and amounts drawn from 20,000 baskets built by the
simulator's own transaction code. Hours of the day are uniform (the weekly release does not
see them). The gold capture triggers are off while loading (``session_replication_role``):
gold is not under test here; and the table is loaded as a bulk load would be (unlogged, its
plain indexes built after the rows): the release reads the same rows either way.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler
from services.platinum_builder.config import PlatinumSettings
from services.simulator.generator import SimConfig, TrafficGenerator
from services.simulator.shapes import day_factor

pytestmark = pytest.mark.integration

WEEKS = 200
FIRST_MONDAY = date(2022, 1, 3)
BLOCK_WEEKS = 25

GENERATE = """
INSERT INTO scout.silver_transactions_cleaned (
    transaction_id, source_system, event_id, version, bronze_id, kafka_timestamp, store_id,
    transaction_date, amount, gross_amount, currency, product_category, customer_type,
    customer_key, item_count, unit_count, region, city, timezone, local_date, day_of_week,
    is_weekend, local_hour)
SELECT gen_random_uuid(), 'pos', store_id || '-' || day || '-' || k, 1, gen_random_uuid(), now(),
       store_id, (day + t * interval '1 day') AT TIME ZONE 'Asia/Manila', amount, amount, 'PHP',
       'snacks', CASE WHEN u < 0.35 THEN 'walk_in' WHEN u < 0.8 THEN 'regular' ELSE 'new' END,
       CASE WHEN u < 0.35 THEN NULL
            WHEN u < 0.8 THEN 'C-' || store_id || '-' || floor(v * (floor(40 * size) + 10))
            ELSE 'N-' || store_id || '-' || day || '-' || k END,
       1, 1, region, city, 'Asia/Manila', day, extract(dow FROM day)::int,
       extract(isodow FROM day) >= 6, floor(t * 24)::int
  FROM (SELECT st.store_id, st.region, st.city, st.size, d.day, k, random() AS u,
               random() AS v, random() AS t,
               (($7::float8[])[1 + floor(random() * cardinality($7::float8[]))::int])
                   ::numeric(12, 2) AS amount
          FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[])
               AS st(store_id, region, city, size)
         CROSS JOIN unnest($5::date[], $6::float8[]) AS d(day, factor)
         CROSS JOIN LATERAL generate_series(1, round(st.size * 20 * d.factor)::int) AS k) g
"""

# The indexes of silver's transactions that no constraint owns (the primary key and the
# unique event id stay: the load must obey them).
PLAIN_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
 WHERE i.schemaname = 'scout' AND i.tablename = 'silver_transactions_cleaned'
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname
                     AND c.conrelid = 'scout.silver_transactions_cleaned'::regclass)
"""

TRUTH = """
SELECT region, city, date_trunc('week', local_date)::date AS week, count(*)::float8 AS n,
       avg(amount)::float8 AS avg
  FROM scout.silver_transactions_cleaned GROUP BY 1, 2, 3
"""


def simulator_amounts(generator: TrafficGenerator, n: int) -> list[float]:
    """Net amounts of ``n`` baskets made by the simulator's own transaction code."""
    when = datetime(2024, 6, 1, 10, tzinfo=UTC)
    amounts = []
    for i in range(n):
        store = generator.world.stores[i % len(generator.world.stores)]
        p = generator._transaction(store, when, 0)
        gross = p.get("total_amount", p.get("gross_amount"))
        amounts.append(round(float(gross) - float(p.get("discount_amount", 0)), 2))
    return [a for a in amounts if a > 0]


async def load_weeks(db: asyncpg.Connection, generator: TrafficGenerator, first: date,
                     weeks: int) -> None:  # fmt: skip
    stores = generator.world.stores
    amounts = simulator_amounts(generator, 20_000)  # float8[]: O(1) subscripts, unlike numeric[]
    # A bulk load into this test's own database: without WAL, and with the plain indexes
    # built once afterwards (from their definitions as migrated) instead of row by row.
    await db.execute("ALTER TABLE scout.silver_transactions_cleaned SET UNLOGGED")
    indexes = await db.fetch(PLAIN_INDEXES)
    for index in indexes:
        await db.execute(f'DROP INDEX scout."{index["indexname"]}"')
    await db.execute("SET session_replication_role = replica")  # gold triggers off
    await db.execute("SELECT setseed(0.17)")
    try:
        for block in range(0, weeks, BLOCK_WEEKS):
            days = [first + timedelta(days=7 * block + i)
                    for i in range(7 * min(BLOCK_WEEKS, weeks - block))]  # fmt: skip
            await db.execute(GENERATE, [s.store_id for s in stores], [s.region for s in stores],
                             [s.city for s in stores], [s.size for s in stores], days,
                             [day_factor(d) for d in days], amounts)  # fmt: skip
    finally:
        await db.execute("SET session_replication_role = origin")
        for index in indexes:
            await db.execute(index["indexdef"])
    await db.executemany(
        "INSERT INTO scout.silver_master_stores (store_id, name, region, city, timezone, "
        "opened_on) VALUES ($1, $2, $3, $4, 'Asia/Manila', $5) ON CONFLICT DO NOTHING",
        [(s.store_id, s.name, s.region, s.city, min(s.opened_on, first)) for s in stores],
    )
    await db.execute("ANALYZE scout.silver_transactions_cleaned")


@pytest.mark.timeout(1500)
async def test_dp_release_accuracy_over_200_weeks(settings: Settings,
                                                  db: asyncpg.Connection) -> None:  # fmt: skip
    generator = TrafficGenerator(SimConfig(seed=1, start=datetime(2026, 1, 1, tzinfo=UTC),
                                           stores=10))  # fmt: skip
    await load_weeks(db, generator, FIRST_MONDAY, WEEKS)
    as_of = FIRST_MONDAY + timedelta(weeks=WEEKS, days=-1)  # the last Sunday
    cfg = PlatinumSettings(privacy_lookback_weeks=WEEKS + 1)  # every other setting: default
    job = jobs.JOBS_BY_NAME["anonymized_analytics"]
    pool = await create_pool(settings, "platinum")
    try:
        run = await scheduler.run_job(pool, job, as_of, cfg)
        assert run.status == "succeeded", run.error
        print(f"released {WEEKS} weeks in {run.seconds:.1f} s")

        truth = {(r["region"], r["city"], r["week"]): (r["n"], r["avg"])
                 for r in await db.fetch(TRUTH)}  # fmt: skip
        ledger = await db.fetch("SELECT * FROM scout.platinum_privacy_ledger ORDER BY period")
        assert len(ledger) == WEEKS
        assert all(r["epsilon"] == 0.5 and r["delta"] == 0 for r in ledger)
        params = [json.loads(r["parameters"]) for r in ledger]
        assert all(p["max_contributions_source"] == p["spend_max_source"] == "dp_quantile"
                   and p["epsilon_bounds"] == pytest.approx(0.05) for p in params)  # fmt: skip
        cs = sorted(p["max_contributions"] for p in params)
        ss = sorted(p["spend_max"] for p in params)

        rows = await db.fetch("SELECT * FROM scout.platinum_anonymized_analytics")
        public = len({(s.region, s.city) for s in generator.world.stores})
        assert len(rows) == WEEKS * public  # every public group, released or suppressed
        released = [r for r in rows if not r["suppressed"]]
        count_err, avg_err, count_in, avg_in = [], [], 0, 0
        for r in released:
            n, avg = truth[(r["region"], r["city"], r["week"])]
            count_err.append(abs(r["transaction_count"] - n) / n)
            avg_err.append(abs(r["avg_amount"] - avg) / avg)
            count_in += abs(r["transaction_count"] - n) <= r["transaction_count_error"]
            avg_in += r["avg_amount_lower"] <= avg <= r["avg_amount_upper"]
        sizes = sorted(n for n, _ in truth.values())
        suppressed_sizes = sorted(truth[(r["region"], r["city"], r["week"])][0]
                                  for r in rows if r["suppressed"])  # fmt: skip
        figures = {
            "groups": len(rows), "released": len(released),
            "true_count_median": statistics.median(sizes),
            "suppressed_true_count_max": max(suppressed_sizes, default=0),
            "count_median_rel_error": statistics.median(count_err),
            "avg_median_rel_error": statistics.median(avg_err),
            "count_coverage": count_in / len(released), "avg_coverage": avg_in / len(released),
            "c_median": cs[len(cs) // 2], "c_range": (cs[0], cs[-1]),
            "spend_max_median": ss[len(ss) // 2], "spend_max_range": (ss[0], ss[-1]),
            "count_error_median": statistics.median(p["count_error"] for p in params),
        }  # fmt: skip
        print("DP accuracy over 200 weeks:", json.dumps(figures, default=str))
        assert figures["count_median_rel_error"] <= 0.05, figures
        assert figures["avg_median_rel_error"] <= 0.10, figures
        assert figures["count_coverage"] >= 0.93, figures
        assert figures["avg_coverage"] >= 0.93, figures

        # The ledger still refuses a release past the budget: one more week, a budget of 25.9
        # for any 52 weeks (the last 51 released weeks spent 25.5; this one would make 26).
        await load_weeks(db, generator, FIRST_MONDAY + timedelta(weeks=WEEKS), 1)
        later = as_of + timedelta(weeks=1)
        tight = PlatinumSettings(privacy_lookback_weeks=4, privacy_epsilon_budget=25.9)
        refused = await scheduler.run_job(pool, job, later, tight)
        assert refused.status == "failed" and "privacy budget exhausted" in (refused.error or "")
        assert await db.fetchval("SELECT count(*) FROM scout.platinum_privacy_ledger") == WEEKS
        # At the default budget (30 per 52 weeks, at least 52 * 0.5) the weekly cadence goes on.
        ok = await scheduler.run_job(pool, job, later, PlatinumSettings(privacy_lookback_weeks=4))
        assert ok.status == "succeeded", ok.error
        assert await db.fetchval("SELECT count(*) FROM scout.platinum_privacy_ledger") == WEEKS + 1
    finally:
        await pool.close()
