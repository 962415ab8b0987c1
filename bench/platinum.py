"""Benchmark of a full platinum rebuild: every job over 1 year x 500 stores of gold history.

    SCOUT_DATABASE_URL=postgresql://scout@127.0.0.1:55432/scout \
        .venv/bin/python bench/platinum.py [--stores 500] [--days 365] [--silver-days 28]

Creates a throw-away database (migrated), inserts synthetic gold history directly (seasonal:
the simulator's weekday and payday shape, store sizes, gaps), silver transactions with
pseudonymous customers for the last ``--silver-days`` days (the DP release and basket units
read silver) and campaign spend, then runs each job once as the platinum role through the
scheduler (run history, one transaction per job), timing each. The baseline, measured in the
same run, is the seed's own ML-feature SQL (row-based windows, no calendar) over the same gold.
The database is dropped afterwards. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from services.common.db import create_pool
from services.common.migrations import migrate
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler
from services.platinum_builder.config import PlatinumSettings
from services.simulator.shapes import day_factor

REGIONS = {"NCR": ("Makati", "Quezon City", "Manila", "Pasig"),
           "Central Luzon": ("Angeles", "San Fernando"), "Visayas": ("Cebu City", "Iloilo City"),
           "Mindanao": ("Davao City", "Cagayan de Oro")}  # fmt: skip
SEED_ML_SQL = """
SELECT store_id,
    AVG(daily_revenue) OVER (PARTITION BY store_id ORDER BY date_key ROWS 7 PRECEDING),
    AVG(daily_revenue) OVER (PARTITION BY store_id ORDER BY date_key ROWS 30 PRECEDING),
    (daily_revenue - LAG(daily_revenue, 7) OVER w) / NULLIF(LAG(daily_revenue, 7) OVER w, 0),
    daily_revenue / AVG(daily_revenue) OVER (PARTITION BY store_id, EXTRACT(DOW FROM date_key))
FROM scout.gold_business_metrics WINDOW w AS (PARTITION BY store_id ORDER BY date_key)
"""


def stores(n: int) -> list[tuple[str, str, str, float]]:
    rng = random.Random(3)
    cities = [(r, c) for r, cs in REGIONS.items() for c in cs]
    return [(f"S{i:04d}", *rng.choice(cities), rng.uniform(8_000, 60_000)) for i in range(n)]


def gold_rows(store_list: list[tuple[str, str, str, float]], days: int,
              end: date) -> list[tuple[object, ...]]:  # fmt: skip
    rng = random.Random(5)
    rows: list[tuple[object, ...]] = []
    for i in range(days):
        day = end - timedelta(days=days - 1 - i)
        factor = day_factor(day) * (1 + 0.0004 * i)
        for store, region, city, base in store_list:
            if rng.random() < 0.02:  # a closed day now and then: a gap in gold
                continue
            revenue = Decimal(str(round(base * factor * rng.gauss(1, 0.08), 2)))
            n = max(1, int(revenue / 180))
            spend = Decimal(500) if (hash(store) + i // 14) % 25 == 0 else Decimal(0)
            rows.append((store, day, region, city, n, revenue, revenue / n, n * 2 // 3,
                         revenue / n, n // 5, n // 3, n * 4, Decimal(1) / 4, spend))  # fmt: skip
    return rows


def silver_rows(store_list: list[tuple[str, str, str, float]], days: int, end: date,
                per_store_day: int) -> list[tuple[object, ...]]:  # fmt: skip
    rng = random.Random(7)
    rows: list[tuple[object, ...]] = []
    for d in range(days):
        day = end - timedelta(days=days - 1 - d)
        for store, region, city, _ in store_list:
            for k in range(per_store_day):
                at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC) + timedelta(minutes=k)
                amount = Decimal(str(round(rng.uniform(20, 800), 2)))
                key = None if rng.random() < 0.3 else f"ck-{store}-{rng.randrange(60)}"
                rows.append((uuid.uuid4(), "pos", f"{store}-{day}-{k}", 1, uuid.uuid4(), at,
                             store, at, amount, amount, "PHP", "snacks",
                             "walk_in" if key is None else "regular", key, 2, 3, region, city,
                             "Asia/Manila", day, (day.weekday() + 1) % 7, day.weekday() >= 5,
                             10, None))  # fmt: skip
    return rows


SILVER_COLUMNS = ["transaction_id", "source_system", "event_id", "version", "bronze_id",
                  "kafka_timestamp", "store_id", "transaction_date", "amount", "gross_amount",
                  "currency", "product_category", "customer_type", "customer_key",
                  "item_count", "unit_count", "region", "city", "timezone", "local_date",
                  "day_of_week", "is_weekend", "local_hour", "campaign_id"]  # fmt: skip
GOLD_COLUMNS = ["store_id", "date_key", "region", "city", "transaction_count", "daily_revenue",
                "avg_transaction", "unique_customers", "median_amount", "new_customers",
                "returning_customers", "footfall", "conversion_rate", "campaign_spend"]  # fmt: skip


async def load(conn: asyncpg.Connection, args: argparse.Namespace, end: date) -> dict[str, int]:
    store_list = stores(args.stores)
    gold = gold_rows(store_list, args.days, end)
    await conn.copy_records_to_table("gold_business_metrics", schema_name="scout",
                                     columns=GOLD_COLUMNS, records=gold)  # fmt: skip
    silver = silver_rows(store_list, args.silver_days, end, args.tx_per_store_day)
    await conn.copy_records_to_table("silver_transactions_cleaned", schema_name="scout",
                                     columns=SILVER_COLUMNS, records=silver)  # fmt: skip
    spend = [(f"CMP-{c}", store, end - timedelta(days=30 * c + d), "social", Decimal(700),
              uuid.uuid4(), datetime.now(UTC))
             for c in range(12) for store, *_ in store_list[c * 20:c * 20 + 20]
             for d in range(14)]  # fmt: skip
    await conn.copy_records_to_table(
        "silver_campaign_spend", schema_name="scout",
        columns=["campaign_id", "store_id", "spend_date", "channel", "spend", "bronze_id",
                 "kafka_timestamp"], records=spend,
    )  # fmt: skip
    await conn.execute("ANALYZE")
    return {"gold rows": len(gold), "silver rows": len(silver), "spend rows": len(spend)}


async def main(args: argparse.Namespace) -> None:
    base = Settings()
    url = base.database_url.get_secret_value()
    name = f"scout_bench_platinum_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    settings = Settings(database_url=url.rsplit("/", 1)[0] + f"/{name}")
    end = date.today() - timedelta(days=1)
    try:
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
        await migrate(conn)
        started = time.perf_counter()
        sizes = await load(conn, args, end)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        seed_rows = len(await conn.fetch(SEED_ML_SQL))
        seed_s = time.perf_counter() - started
        await conn.close()
        cfg = PlatinumSettings(platinum_ml_lookback_days=args.days,  # full rebuild
                               privacy_lookback_weeks=args.silver_days // 7 + 1)  # fmt: skip
        pool = await create_pool(settings, "platinum")
        results = []
        total_started = time.perf_counter()
        for job in jobs.JOBS:
            results.append(await scheduler.run_job(pool, job, end, cfg))
        total_s = time.perf_counter() - total_started
        summary = await pool.fetchrow("SELECT * FROM scout.platinum_executive_summary")
        regions = await pool.fetch(
            "SELECT region, backtest_mape, baseline_mape FROM scout.platinum_market_predictions "
            "WHERE horizon_days = 30 ORDER BY region"
        )
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"\nplatinum full rebuild: {args.stores} stores x {args.days} days of gold "
          f"(as of {end}); loaded {sizes} in {load_s:.1f}s\n")  # fmt: skip
    print(f"{'job':<24} {'status':<10} {'rows':>9} {'seconds':>8}")
    for r in results:
        print(f"{r.job:<24} {r.status:<10} {r.rows:>9,} {r.seconds:>8.2f}"
              + (f"  {r.error}" if r.error else ""))  # fmt: skip
    print(f"{'ALL JOBS':<24} {'':<10} {sum(r.rows for r in results):>9,} {total_s:>8.2f}"
          f"   (target <= 60 s)")  # fmt: skip
    print(f"{'baseline: seed ML SQL':<24} {'':<10} {seed_rows:>9,} {seed_s:>8.2f}"
          "   (row windows, no calendar, no tiers; wrong but a floor)")  # fmt: skip
    print("\nforecast backtest MAPE (last 28 days held out), model vs seasonal naive:")
    model, naive = summary["backtest_mape"], summary["baseline_mape"]
    print(f"  {'all stores':<16} {model:6.2f} %  vs {naive:6.2f} %")
    for r in regions:
        print(f"  {r['region']:<16} {r['backtest_mape']:6.2f} %  vs {r['baseline_mape']:6.2f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--silver-days", type=int, default=28)
    parser.add_argument("--tx-per-store-day", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
