"""Platinum on history backfilled by the simulator through the real chain of services.

`scout simulate --days 91` → bronze → silver → gold (the services as child processes), then
every platinum job: the stored forecast beats seasonal naive on the simulator's seasonal
demand, features cover every store-day, the DP release happens, the dashboard's gates hold.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler
from services.platinum_builder.config import PlatinumSettings
from tests.support import ServiceProcess, settings_env, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration
DAYS = 91


@pytest.mark.timeout(600)
async def test_platinum_on_simulated_history(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    try:
        manifest_path = tmp_path / "manifest.json"
        args = ["simulate", "--days", str(DAYS), "--stores", "10", "--seed", "1", "--rate", "1000",
                "--duration", "1", "--manifest", str(manifest_path)]  # fmt: skip
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.cli", *args],
            env=settings_env(settings), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        expected = json.loads(manifest_path.read_text())["expected"]["bronze_transactions_raw"]

        async def settled() -> bool:
            bronze = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
            lineage = await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
            pending = await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes")
            gold = await db.fetchval("SELECT count(*) FROM scout.gold_business_metrics")
            return bool(bronze == expected == lineage and pending == 0 and gold > 0)

        await wait_for(settled, timeout=300, interval=2)
    finally:
        stop_all(services)

    as_of = (datetime.now(UTC) - timedelta(days=1)).date()
    pool = await create_pool(settings, "platinum")
    try:
        for job in jobs.JOBS:
            run = await scheduler.run_job(pool, job, as_of, PlatinumSettings())
            assert run.status == "succeeded", run.error
    finally:
        await pool.close()

    summary = await db.fetchrow("SELECT * FROM scout.platinum_executive_summary")
    assert summary["forecast_method"] == "ols_trend_dow_payday"
    assert summary["backtest_mape"] < summary["baseline_mape"], dict(summary)
    print(f"simulated history: model MAPE {summary['backtest_mape']:.2f} % vs seasonal naive "
          f"{summary['baseline_mape']:.2f} %")  # fmt: skip
    stores_days = await db.fetchval(
        "SELECT count(*) FROM (SELECT store_id, min(date_key) AS first FROM "
        "scout.gold_business_metrics WHERE date_key <= $1 GROUP BY store_id) s, "
        "generate_series(s.first, $1::date, interval '1 day') d",
        as_of,
    )
    assert await db.fetchval("SELECT count(*) FROM scout.platinum_ml_features") == stores_days
    assert await db.fetchval("SELECT count(*) FROM scout.platinum_privacy_ledger") > 0
    predictions = await db.fetch("SELECT * FROM scout.platinum_market_predictions")
    assert predictions and all(p["lower_bound"] <= p["predicted_revenue"] <= p["upper_bound"]
                               for p in predictions)  # fmt: skip
