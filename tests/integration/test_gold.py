"""Gold on the real stack: equal to an independent recomputation, exact on a hand-computed
case, and moved precisely by a correction."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.common.kafka import topics_for
from services.common.settings import Settings
from services.gold_aggregator import repo
from services.gold_aggregator.day_tables import DayTables
from services.gold_aggregator.incremental import BusinessMetrics, claim_changes
from services.gold_aggregator.periods import DAY, start_of
from tests.integration.test_silver import simulate, until_silver_settles
from tests.support import ServiceProcess, publish, settings_env, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration

Q4 = Decimal("0.0001")


def q(value: Decimal | float | int | None, places: Decimal = Q4) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(places, ROUND_HALF_UP)


@pytest.fixture
async def chain(settings: Settings, tmp_path: Path) -> AsyncIterator[list[ServiceProcess]]:
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    yield services
    stop_all(services)


async def until_gold_settles(db: asyncpg.Connection, timeout: float = 60) -> None:
    async def settled() -> bool:
        pending = await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes")
        gold = await db.fetchval(
            "SELECT coalesce(sum(transaction_count), 0) FROM scout.gold_business_metrics"
        )
        silver = await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
        days = await db.fetchval(
            "SELECT coalesce(sum(transaction_count), 0) FROM scout.gold_customer_insights"
        )
        return bool(pending == 0 and gold == silver == days and silver > 0)

    await wait_for(settled, timeout=timeout)


def expected_business(
    tx: list[asyncpg.Record], readings: list[asyncpg.Record], spend: list[asyncpg.Record]
) -> dict[tuple[str, date], tuple[Any, ...]]:
    """gold_business_metrics computed in Python, independently of the service's SQL."""
    groups: dict[tuple[str, date], list[asyncpg.Record]] = defaultdict(list)
    for t in tx:
        groups[(t["store_id"], t["local_date"])].append(t)
    footfall: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for r in readings:
        if r["kind"] == "footfall":
            footfall[(r["store_id"], r["local_date"])] += r["value"]
    spent: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for s in spend:
        spent[(s["store_id"], s["spend_date"])] += s["spend"]
    out = {}
    for key, rows in groups.items():
        amounts = [r["amount"] for r in rows]
        customers = {r["customer_key"] for r in rows if r["customer_key"]}
        new = {r["customer_key"] for r in rows if r["customer_key"] and r["customer_type"] == "new"}
        regular = {
            r["customer_key"] for r in rows if r["customer_key"] and r["customer_type"] == "regular"
        }
        feet = footfall.get(key, Decimal(0))
        out[key] = (
            rows[0]["region"],
            rows[0]["city"],
            len(rows),
            sum(amounts),
            q(sum(amounts) / len(amounts)),
            len(customers),
            q(statistics.median(amounts)),
            q(statistics.stdev(amounts)) if len(amounts) > 1 else None,
            len(new),
            len(regular),
            int(feet),
            q(Decimal(len(rows)) / feet) if feet > 0 else None,
            spent.get(key, Decimal(0)),
        )
    return out


def _in_period(rows: list[asyncpg.Record], period: str, column: str) -> list[Any]:
    """The rows with their day ``column`` replaced by the first day of its ``period``."""
    if period == DAY:
        return rows
    return [{**dict(r), column: start_of(period, r[column])} for r in rows]


def _stored(table: str, period: str) -> str:
    """The gold rows of a period, with the day tables' column names."""
    if period == DAY:
        return f"SELECT * FROM scout.{table}"
    rollups = f"scout.{table}_rollups WHERE period = '{period}'"
    if table == "gold_business_metrics":
        return f"SELECT *, period_start AS date_key, revenue AS daily_revenue FROM {rollups}"
    return f"SELECT *, period_start AS date_key FROM {rollups}"


async def assert_gold_equals_independent_recomputation(
    db: asyncpg.Connection, period: str = DAY
) -> None:
    """Every gold table of ``period`` (days; or the weekly or monthly rollups) equals a
    recomputation in Python from silver."""
    tx = _in_period(await db.fetch("SELECT * FROM scout.silver_transactions_cleaned"), period,
                    "local_date")  # fmt: skip
    readings = _in_period(await db.fetch("SELECT * FROM scout.silver_device_readings"), period,
                          "local_date")  # fmt: skip
    spend = _in_period(await db.fetch("SELECT * FROM scout.silver_campaign_spend"), period,
                       "spend_date")  # fmt: skip
    gold = {
        (g["store_id"], g["date_key"]): (
            g["region"],
            g["city"],
            g["transaction_count"],
            g["daily_revenue"],
            g["avg_transaction"],
            g["unique_customers"],
            g["median_amount"],
            g["amount_stddev"],
            g["new_customers"],
            g["returning_customers"],
            g["footfall"],
            g["conversion_rate"],
            g["campaign_spend"],
        )
        for g in await db.fetch(_stored("gold_business_metrics", period))
    }
    assert gold == expected_business(tx, readings, spend)

    # Day-wide tables.
    geo: dict[tuple[str, str, date], list[asyncpg.Record]] = defaultdict(list)
    day_total: dict[date, Decimal] = defaultdict(Decimal)
    for t in tx:
        geo[(t["region"], t["city"], t["local_date"])].append(t)
        day_total[t["local_date"]] += t["amount"]
    expected_geo = {
        key: (
            sum(r["amount"] for r in rows),
            len(rows),
            len({r["store_id"] for r in rows}),
            q(sum(r["amount"] for r in rows) / day_total[key[2]], Decimal("0.000001")),
        )
        for key, rows in geo.items()
    }
    stored_geo = {
        (g["region"], g["city"], g["date_key"]): (
            g["revenue"],
            g["transaction_count"],
            g["active_stores"],
            g["share_of_total"],
        )
        for g in await db.fetch(_stored("gold_geographic_performance", period))
    }
    assert stored_geo == expected_geo

    segments: dict[tuple[str, date], list[asyncpg.Record]] = defaultdict(list)
    for t in tx:
        segments[(t["customer_type"], t["local_date"])].append(t)
    expected_segments = {}
    for key, rows in segments.items():
        per_customer: dict[str, int] = defaultdict(int)
        for r in rows:
            if r["customer_key"]:
                per_customer[r["customer_key"]] += 1
        repeat = (
            q(Decimal(sum(1 for n in per_customer.values() if n >= 2)) / len(per_customer))
            if per_customer
            else None
        )
        expected_segments[key] = (
            len(rows),
            sum(r["amount"] for r in rows),
            len(per_customer),
            q(Decimal(sum(r["unit_count"] for r in rows)) / len(rows)),
            q(sum(r["amount"] for r in rows) / len(rows)),
            repeat,
        )
    stored_segments = {
        (g["segment"], g["date_key"]): (
            g["transaction_count"],
            g["revenue"],
            g["customers"],
            g["avg_basket_size"],
            g["avg_basket_value"],
            g["repeat_rate"],
        )
        for g in await db.fetch(_stored("gold_customer_insights", period))
    }
    assert stored_segments == expected_segments

    items = _in_period(await db.fetch("SELECT * FROM scout.silver_transaction_items"), period,
                       "local_date")  # fmt: skip
    brands: dict[tuple[str, str, date], list[asyncpg.Record]] = defaultdict(list)
    category_total: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for i in items:
        brands[(i["category"], i["brand"] or "unknown", i["local_date"])].append(i)
        category_total[(i["category"], i["local_date"])] += i["line_amount"]
    revenue = {k: sum(i["line_amount"] for i in rows) for k, rows in brands.items()}
    expected_products = {}
    for (category, brand, day), rows in brands.items():
        rank = 1 + sum(
            1
            for (c, b, d), r in revenue.items()
            if (c, d) == (category, day)
            and (
                r > revenue[(category, brand, day)]
                or (r == revenue[(category, brand, day)] and b < brand)
            )
        )
        expected_products[(category, brand, day)] = (
            sum(i["qty"] for i in rows),
            revenue[(category, brand, day)],
            len({i["transaction_id"] for i in rows}),
            q(
                revenue[(category, brand, day)] / category_total[(category, day)],
                Decimal("0.000001"),
            )
            if category_total[(category, day)]
            else None,  # every line of the category free that day: no revenue to share
            rank,
        )
    stored_products = {
        (g["category"], g["brand"], g["date_key"]): (
            g["units"],
            g["revenue"],
            g["transaction_count"],
            g["share_within_category"],
            g["rank_in_category"],
        )
        for g in await db.fetch(_stored("gold_product_performance", period))
    }
    assert stored_products == expected_products


async def test_gold_equals_silver_after_faulty_traffic_with_late_data_and_corrections(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, chain: list[ServiceProcess]
) -> None:
    manifest = simulate(
        settings,
        tmp_path,
        "--rate",
        "2000",
        "--duration",
        "4",
        "--faults",
        "0.1",
        "--seed",
        "21",
        "--stores",
        "15",
    )
    assert manifest["faults"]["late"] > 0 and manifest["faults"]["correction"] > 0
    await until_silver_settles(db, manifest)
    await until_gold_settles(db)
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "gold", "verify", "--days", "60"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 mismatches" in result.stdout
    await assert_gold_equals_independent_recomputation(db)
    gold = chain[2]
    assert gold.metric("scout_freshness_seconds_count", layer="gold") > 0


def _silver_row(
    store: str, day: date, amount: str, customer: str | None, ctype: str, units: int = 1
) -> tuple[Any, ...]:
    tid = uuid.uuid4()
    return (
        tid,
        "pos",
        str(tid),
        1,
        uuid.uuid4(),
        "2026-11-20T00:00:00Z",
        store,
        "2026-11-20T02:00:00Z",
        Decimal(amount),
        Decimal(amount),
        Decimal(0),
        "PHP",
        "snacks",
        "Oishi",
        ctype,
        customer,
        None,
        None,
        None,
        None,
        None,
        None,
        1,
        units,
        "NCR",
        "Quezon City",
        "Asia/Manila",
        day,
        5,
        False,
        10,
    )


@pytest.mark.parametrize("path", ["incremental", "recompute"])
async def test_hand_computed_store_day(db: asyncpg.Connection, path: str) -> None:
    """The same known rows through the aggregator's incremental flush and through the
    from-scratch recomputation (``scout gold rebuild``): both give the expected values."""
    day = date(2026, 11, 20)
    rows = [
        _silver_row("S1", day, "10.00", "c-new", "new"),
        _silver_row("S1", day, "20.00", "c-reg", "regular", units=3),
        _silver_row("S1", day, "30.00", "c-reg", "regular"),
        _silver_row("S1", day, "40.00", None, "walk_in"),
        _silver_row("S2", day, "99.99", "c-x", "regular"),
    ]
    columns = [
        r["column_name"]
        for r in await db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'scout' "
            "AND table_name = 'silver_transactions_cleaned' ORDER BY ordinal_position"
        )
    ][:31]
    await db.executemany(
        f"INSERT INTO scout.silver_transactions_cleaned ({', '.join(columns)}) VALUES "
        f"({', '.join(f'${i}' for i in range(1, 32))})",
        [tuple(v if i not in (5, 7) else _ts(v) for i, v in enumerate(r)) for r in rows],
    )
    await db.execute(
        "INSERT INTO scout.silver_device_readings (device_id, kind, occurred_at, store_id, value, "
        "local_date, bronze_id) VALUES ('D1', 'footfall', now(), 'S1', 5, $1, $2), "
        "('D1', 'footfall', now() - interval '1 hour', 'S1', 3, $1, $3)",
        day,
        uuid.uuid4(),
        uuid.uuid4(),
    )
    await db.execute(
        "INSERT INTO scout.silver_campaign_spend (campaign_id, store_id, spend_date, spend, "
        "bronze_id, kafka_timestamp) VALUES ('CMP-1', 'S1', $1, 150.00, $2, now())",
        day,
        uuid.uuid4(),
    )
    if path == "incremental":
        async with db.transaction(isolation="repeatable_read"):
            claimed = await claim_changes(db, 31)
            flushed = await BusinessMetrics().apply(db, claimed)
            await DayTables().apply(db, claimed)
        assert (flushed.groups, flushed.loaded, flushed.written) == (2, 2, 2)
    else:
        async with db.transaction():
            assert await repo.refresh_store_days(db, [("S1", day), ("S2", day), ("S3", day)]) == 2
            await repo.refresh_days(db, [day])
    g = await db.fetchrow("SELECT * FROM scout.gold_business_metrics WHERE store_id = 'S1'")
    assert g["transaction_count"] == 4
    assert g["daily_revenue"] == Decimal("100.00")
    assert g["avg_transaction"] == Decimal("25.0000")
    assert g["median_amount"] == Decimal("25.0000")  # even count: (20 + 30) / 2
    assert g["amount_stddev"] == Decimal("12.9099")  # sample stddev of 10, 20, 30, 40
    assert (g["unique_customers"], g["new_customers"], g["returning_customers"]) == (2, 1, 1)
    assert g["footfall"] == 8 and g["conversion_rate"] == Decimal("0.5000")
    assert g["campaign_spend"] == Decimal("150.00")
    s2 = await db.fetchrow("SELECT * FROM scout.gold_business_metrics WHERE store_id = 'S2'")
    assert s2["amount_stddev"] is None and s2["median_amount"] == Decimal("99.9900")
    assert s2["conversion_rate"] is None and s2["footfall"] == 0
    regular = await db.fetchrow(
        "SELECT * FROM scout.gold_customer_insights WHERE segment = 'regular'"
    )
    # c-reg bought twice at S1, c-x once at S2: one of two regular customers repeated.
    assert (regular["transaction_count"], regular["customers"], regular["repeat_rate"]) == (
        3,
        2,
        Decimal("0.5000"),
    )
    assert regular["avg_basket_size"] == Decimal("1.6667")
    geo = await db.fetchrow("SELECT * FROM scout.gold_geographic_performance")
    assert (geo["revenue"], geo["active_stores"], geo["share_of_total"]) == (
        Decimal("199.99"),
        2,
        Decimal("1.000000"),
    )


def _ts(value: Any) -> Any:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


def _pos(
    event_id: str,
    amount: str,
    store: str,
    version: int = 1,
    when: str = "2026-11-20T10:15:00+08:00",
) -> bytes:
    return json.dumps(
        {
            "schema": "pos.transaction/1",
            "event_id": event_id,
            "store_id": store,
            "occurred_at": when,
            "total_amount": amount,
            "version": version,
            "items": [{"sku": "P-1", "qty": 1, "unit_price": amount}],
        }
    ).encode()


async def test_correction_moves_exactly_its_store_day(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    topics = topics_for(settings)
    stores = [
        (
            topics.master_stores,
            s.encode(),
            json.dumps(
                {
                    "schema": "master.store/1",
                    "store_id": s,
                    "name": s,
                    "region": "NCR",
                    "city": "Makati",
                    "timezone": "Asia/Manila",
                }
            ).encode(),
        )
        for s in ("S1", "S2")
    ]
    await publish(settings, stores)
    await wait_for(
        lambda: db.fetchval("SELECT count(*) = 2 FROM scout.silver_master_stores"), timeout=60
    )
    first = [
        (topics.pos, b"S1", _pos("A", "100.00", "S1")),
        (topics.pos, b"S1", _pos("B", "20.00", "S1")),
        (topics.pos, b"S1", _pos("C", "30.00", "S1")),
        (topics.pos, b"S1", _pos("D", "70.00", "S1", when="2026-11-21T10:00:00+08:00")),
        (topics.pos, b"S2", _pos("E", "55.00", "S2")),
    ]
    await publish(settings, first)
    await until_gold_settles(db)
    before = {
        (r["store_id"], r["date_key"]): r
        for r in await db.fetch("SELECT * FROM scout.gold_business_metrics")
    }
    s1 = before[("S1", date(2026, 11, 20))]
    assert (s1["daily_revenue"], s1["median_amount"]) == (Decimal("150.00"), Decimal("30.0000"))

    await publish(settings, [(topics.pos, b"S1", _pos("A", "40.00", "S1", version=2))])

    async def corrected() -> bool:
        return bool(
            await db.fetchval(
                "SELECT daily_revenue = 90.00 FROM scout.gold_business_metrics "
                "WHERE store_id = 'S1' AND date_key = '2026-11-20'"
            )
        )

    await wait_for(corrected, timeout=30)
    await asyncio.sleep(1.5)  # let any stray recomputation happen before comparing
    after = {
        (r["store_id"], r["date_key"]): r
        for r in await db.fetch("SELECT * FROM scout.gold_business_metrics")
    }
    s1 = after[("S1", date(2026, 11, 20))]
    assert (s1["daily_revenue"], s1["avg_transaction"], s1["median_amount"]) == (
        Decimal("90.00"),
        Decimal("30.0000"),
        Decimal("30.0000"),
    )  # 40, 20, 30
    assert s1["transaction_count"] == 3
    for key in before.keys() - {("S1", date(2026, 11, 20))}:
        assert after[key] == before[key], key  # untouched, including updated_at


async def test_gold_killed_mid_stream_loses_and_doubles_nothing(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """SIGKILL the gold worker while traffic (with corrections and late data) flows: its
    in-memory state and any flush in flight are gone; the changes wait in silver's capture
    table, and a new worker rebuilds the groups it touches from silver."""
    names = ("bronze", "silver", "gold")
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in names)
    try:
        traffic = asyncio.ensure_future(asyncio.to_thread(
            simulate, settings, tmp_path, "--rate", "2000", "--duration", "8",
            "--faults", "0.1", "--seed", "5", "--stores", "10",
        ))  # fmt: skip

        async def gold_has_rows() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM scout.gold_business_metrics"))

        await wait_for(gold_has_rows, timeout=60, context=services[2].log_tail)
        services[2].kill()
        await asyncio.sleep(1.5)  # silver goes on; its changes wait for gold
        assert await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes") > 0
        services[2] = ServiceProcess("gold", settings, tmp_path).start()
        manifest = await traffic
        await until_silver_settles(db, manifest)
        await until_gold_settles(db)
        async with db.transaction(isolation="repeatable_read"):
            assert set((await repo.mismatches(db, date(2000, 1, 1))).values()) == {0}
        await assert_gold_equals_independent_recomputation(db)
        assert services[2].metric("scout_gold_groups_loaded_total") > 0
    finally:
        stop_all(services, check=False)
