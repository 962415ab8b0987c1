"""Gold with N replicas, weekly and monthly rollups, and rolling windows, on the real stack.

- three gold workers (and two silver workers) share the shards through Kafka's consumer
  group; one is SIGKILLed mid-stream during faulty traffic (late events, corrections); the
  others take its shards; afterwards ``scout gold verify`` finds nothing and every gold
  table — days, weeks and months — equals an independent recomputation in Python;
- weekly and monthly rollups stay exact after late events and corrections that move
  transactions across a week and a month boundary;
- the rolling windows count a corrected transaction once, at its corrected amount.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from services.common.kafka import topics_for
from services.common.settings import Settings
from services.gold_aggregator.periods import MONTH, WEEK
from services.gold_aggregator.shards import SHARDS
from tests.integration.test_gold import (
    _pos,
    assert_gold_equals_independent_recomputation,
    until_gold_settles,
)
from tests.integration.test_silver import simulate, until_silver_settles
from tests.support import (
    ServiceProcess,
    gold_verified,
    publish,
    settings_env,
    start_all,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.integration


def _owned(gold: ServiceProcess) -> int:
    return int(gold.metric("scout_gold_shards_owned"))


async def _all_recomputations(db: asyncpg.Connection) -> None:
    for period in ("day", WEEK, MONTH):
        await assert_gold_equals_independent_recomputation(db, period)


async def test_three_gold_workers_one_killed_mid_stream(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bronze = ServiceProcess("bronze", settings, tmp_path)
    # Two silver workers: their master handlers run at the same time, which once left an
    # item enriched as unknown for good (a product committed on one worker while the other
    # re-processed the records of a late store; test_silver_late_master_race.py).
    silvers = [ServiceProcess("silver", settings, tmp_path) for _ in range(2)]
    golds = [ServiceProcess("gold", settings, tmp_path) for _ in range(3)]
    try:
        start_all((bronze, *silvers, *golds), ready_timeout=90)

        # The group has settled: every shard has exactly one owner, each worker some.
        async def shared() -> bool:
            owned = [_owned(g) for g in golds]
            return sum(owned) == SHARDS and all(owned)

        await wait_for(shared, timeout=60, context=lambda: [_owned(g) for g in golds])
        traffic = asyncio.ensure_future(asyncio.to_thread(
            simulate, settings, tmp_path, "--rate", "1500", "--duration", "10",
            "--faults", "0.1", "--seed", "14", "--stores", "24",
        ))  # fmt: skip

        async def gold_has_rows() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM scout.gold_business_metrics"))

        await wait_for(gold_has_rows, timeout=90, context=golds[0].log_tail)
        await asyncio.sleep(1.0)
        written_before = [g.metric("scout_records_written_total", layer="gold") for g in golds]
        killed = golds.pop(1)
        assert not traffic.done(), "the kill must come while traffic flows"
        killed.kill()
        killed_at = time.monotonic()
        assert sum(written_before) > 0

        # The survivors take the dead worker's shards at the group's next rebalance: within
        # seconds (the session timeout is 10 s), while traffic goes on.
        await wait_for(lambda: _take_over(golds), timeout=60,
                       context=lambda: [_owned(g) for g in golds])  # fmt: skip
        assert time.monotonic() - killed_at < 30
        manifest = await traffic
        assert manifest["faults"]["late"] > 0 and manifest["faults"]["correction"] > 0
        await until_silver_settles(db, manifest, timeout=180)
        await until_gold_settles(db, timeout=120)
        gold_verified(settings)
        await _all_recomputations(db)
        # Both survivors did part of the work (state loaded for their own shards only).
        assert all(g.metric("scout_records_written_total", layer="gold") > 0 for g in golds)
        assert all(g.metric("scout_gold_groups_loaded_total") > 0 for g in golds)
    finally:
        stop_all((bronze, *silvers, *golds), check=False)


async def _take_over(golds: list[ServiceProcess]) -> bool:
    owned = [_owned(g) for g in golds]
    return sum(owned) == SHARDS and all(owned)


def _store(store: str) -> tuple[str, bytes, bytes]:
    return (
        "", store.encode(),
        json.dumps({"schema": "master.store/1", "store_id": store, "name": store,
                    "region": "NCR", "city": "Makati", "timezone": "Asia/Manila"}).encode(),
    )  # fmt: skip


def _tx(
    event: str, amount: str, store: str, when: str, version: int = 1, customer: str | None = None
) -> bytes:
    body = json.loads(_pos(event, amount, store, version=version, when=when))
    if customer is not None:
        body["customer"] = {"id": customer, "type": "regular"}
    return json.dumps(body).encode()


async def test_weekly_and_monthly_rollups_exact_across_boundaries(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Mon 30 Nov 2026 starts a week, Tue 1 Dec a month. Transactions land on both sides;
    then late events arrive and corrections move transactions across the boundaries (and
    change amounts and customers), with two gold workers."""
    topics = topics_for(settings)
    services = [ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold", "gold")]
    try:
        start_all(services)
        stores = [_store(s) for s in ("S1", "S2", "S3")]
        await publish(settings, [(topics.master_stores, k, v) for _, k, v in stores])
        await wait_for(
            lambda: db.fetchval("SELECT count(*) = 3 FROM scout.silver_master_stores"), timeout=60
        )
        sun, mon, tue = (
            "2026-11-29T20:00:00+08:00",
            "2026-11-30T09:00:00+08:00",
            ("2026-12-01T10:00:00+08:00"),
        )
        first = [
            ("A", "10.00", "S1", sun, "c1"), ("B", "20.00", "S1", mon, "c1"),
            ("C", "30.00", "S1", mon, "c2"), ("D", "40.00", "S1", tue, "c2"),
            ("E", "50.00", "S2", sun, "c3"), ("F", "60.00", "S2", tue, "c1"),
            ("G", "70.00", "S3", mon, None), ("H", "80.00", "S3", tue, "c4"),
        ]  # fmt: skip
        await publish(settings, [(topics.pos, s.encode(), _tx(e, a, s, w, customer=c))
                                 for e, a, s, w, c in first])  # fmt: skip
        await until_gold_settles(db)
        await _all_recomputations(db)
        # Late events for the days before, and corrections that move transactions across
        # the week boundary (A: Sunday → Monday), the month boundary (C: Monday → Tuesday),
        # both back (D: Tuesday → Sunday), and change amounts and customers.
        later = [
            ("L1", "5.00", "S1", "2026-11-23T12:00:00+08:00", 1, "c1"),  # the week before
            ("L2", "15.00", "S2", "2026-11-30T23:30:00+08:00", 1, "c3"),
            ("A", "11.00", "S1", mon, 2, "c2"),
            ("C", "33.00", "S1", tue, 2, "c2"),
            ("D", "44.00", "S1", sun, 2, "c5"),
            ("F", "66.00", "S2", mon, 2, "c1"),  # c1 now in S1 and S2 (other shards) that week
            ("H", "88.00", "S3", mon, 3, "c4"),
        ]  # fmt: skip
        await publish(settings, [(topics.pos, s.encode(), _tx(e, a, s, w, v, c))
                                 for e, a, s, w, v, c in later])  # fmt: skip

        async def corrected() -> bool:
            n = await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
            v = await db.fetchval("SELECT sum(version) FROM scout.silver_transactions_cleaned")
            return bool(n == 10 and v == 16)

        await wait_for(corrected, timeout=60)
        await until_gold_settles(db)
        await _all_recomputations(db)
        gold_verified(settings)
        s1 = {
            (r["period"], r["period_start"]): r
            for r in await db.fetch(
                "SELECT * FROM scout.gold_business_metrics_rollups WHERE store_id = 'S1'"
            )
        }
        # S1's week from Mon 30 Nov: A 11, B 20, C 33 (moved to Tue 1 Dec, same week); D left.
        week = s1[(WEEK, date(2026, 11, 30))]
        assert (week["transaction_count"], week["revenue"]) == (3, Decimal("64.00"))
        assert week["median_amount"] == Decimal("20.0000")
        assert week["unique_customers"] == 2  # c1 (B), c2 (A, C)
        november = s1[(MONTH, date(2026, 11, 1))]
        # L1 5, A 11, B 20, D 44 (moved back to Sunday): median (11 + 20) / 2.
        assert (november["transaction_count"], november["median_amount"]) == (4, Decimal("15.5"))
        assert november["unique_customers"] == 3  # c1, c2, c5
        assert s1[(MONTH, date(2026, 12, 1))]["transaction_count"] == 1  # C
        # The regular customers of the week from 30 Nov over every shard: c1 (B at S1, F at
        # S2), c2 (A, C), c3 (L2), c4 (H); c1 and c2 repeat.
        regular = await db.fetchrow(
            "SELECT * FROM scout.gold_customer_insights_rollups WHERE period = 'week' "
            "AND period_start = '2026-11-30' AND segment = 'regular'"
        )
        assert (regular["transaction_count"], regular["customers"]) == (6, 4)
        assert regular["repeat_rate"] == Decimal("0.5000")
        # An operator's rebuild of every period while the workers run changes nothing.
        rebuild = subprocess.run(
            [sys.executable, "-m", "services.cli", "gold", "rebuild", "--from", "2026-11-01"],
            env=settings_env(settings), capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
        await publish(settings, [(topics.pos, b"S3", _tx("G", "71.00", "S3", mon, 2))])
        await wait_for(lambda: db.fetchval(
            "SELECT amount = 71.00 FROM scout.silver_transactions_cleaned WHERE event_id = 'G'"
        ), timeout=60)  # fmt: skip
        await until_gold_settles(db)
        await _all_recomputations(db)
        gold_verified(settings)
        # The day-wide grains keep partial sums per day only (their weeks and months sum the
        # days, 0072); a week's row that a gold worker of before 0072 writes during a rolling
        # upgrade is not read.
        for table in ("segments", "places", "brands"):
            periods = await db.fetch(f"SELECT DISTINCT period FROM scout.gold_partial_{table}")
            assert [r["period"] for r in periods] == ["day"], table
        await db.execute(
            "INSERT INTO scout.gold_partial_segments (period, period_start, segment, "
            "customer_key, shard, transactions, revenue, units) "
            "VALUES ('week', '2026-11-30', 'regular', 'c9', 0, 5, 500, 5)"
        )
        await _all_recomputations(db)
    finally:
        stop_all(services, check=False)


async def test_rolling_windows_count_a_corrected_transaction_once(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    topics = topics_for(settings)
    services = [ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")]
    gold = services[-1]
    try:
        start_all(services)
        await publish(settings, [(topics.master_stores, b"S9", _store("S9")[2])])
        await wait_for(
            lambda: db.fetchval("SELECT count(*) = 1 FROM scout.silver_master_stores"), timeout=60
        )
        now = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
        await publish(settings, [(topics.pos, b"S9", _tx("R1", "100.00", "S9", now)),
                                 (topics.pos, b"S9", _tx("R2", "7.00", "S9", now))])  # fmt: skip
        await until_gold_settles(db)
        await publish(settings, [(topics.pos, b"S9", _tx("R1", "40.00", "S9", now, version=2))])

        async def corrected() -> bool:
            return bool(await db.fetchval(
                "SELECT daily_revenue = 47.00 FROM scout.gold_business_metrics "
                "WHERE store_id = 'S9'"))  # fmt: skip

        await wait_for(corrected, timeout=60)
        await asyncio.sleep(1.0)  # the windows take the flush's changes after its commit
        body = json.loads(gold.get("/gold/rolling"))
        assert body["stores"]["S9"] == {"transactions": 2, "revenue": "47.00"}
        assert len(body["shards"]) == SHARDS
    finally:
        stop_all(services, check=False)
