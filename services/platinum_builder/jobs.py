"""The platinum jobs, declared as data: name, cadence, period, build.

A job's *period* is the as-of day a run builds (by default yesterday, UTC: the last complete
day). ``build(conn, period, cfg)`` runs inside one transaction opened by the scheduler: it
reads gold/silver, computes with the pure modules, deletes the rows of its scope and COPYs
the new ones. So readers see the old rows or the new ones, never a half-written table, and
running a job twice for the same period leaves identical tables.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from services.platinum_builder import campaigns, features, forecast, privacy, sql
from services.platinum_builder.config import PlatinumSettings

Build = Callable[[asyncpg.Connection, date, PlatinumSettings], Awaitable[int]]
RELEASE = "anonymized_analytics"
SUMMARY_DAYS, TREND_DAYS, HISTORY_DAYS = 30, 90, 365
EPOCH_MONDAY = date(1970, 1, 5)


@dataclass(frozen=True)
class Job:
    name: str
    cadence_s: float
    build: Build
    description: str

    def period(self, now: datetime) -> date:
        """The as-of day a run at ``now`` builds: the last complete UTC day."""
        return (now.astimezone(UTC) - timedelta(days=1)).date()


async def _copy(conn: asyncpg.Connection, table: str, columns: Sequence[str],
                records: list[tuple[object, ...]]) -> int:  # fmt: skip
    if records:
        await conn.copy_records_to_table(table, schema_name="scout", columns=list(columns),
                                         records=records)  # fmt: skip
    return len(records)


async def build_ml_features(conn: asyncpg.Connection, as_of: date, cfg: PlatinumSettings) -> int:
    start = as_of - timedelta(days=cfg.platinum_ml_lookback_days - 1)
    read_start = start - timedelta(days=features.HISTORY_DAYS)
    gold = [features.GoldDay(**dict(r)) for r in await conn.fetch(sql.GOLD_DAYS, read_start, as_of)]
    first = {r["store_id"]: r["first_day"] for r in await conn.fetch(sql.FIRST_DAYS, as_of)}
    units = {(r["store_id"], r["local_date"]): r["units"]
             for r in await conn.fetch(sql.BASKET_UNITS, start, as_of)}  # fmt: skip
    # CPU-bound: in a thread, so the worker's web server and timers keep answering.
    rows = await asyncio.to_thread(features.build_features, gold, first, units, start, as_of,
                                   as_of)  # fmt: skip
    await conn.execute(sql.DELETE_FEATURES, start, as_of)
    return await _copy(conn, "platinum_ml_features", features.COLUMNS, rows)


async def _daily(conn: asyncpg.Connection, start: date, end: date) -> dict[date, float]:
    return {r["date_key"]: r["revenue"] for r in await conn.fetch(sql.DAILY_TOTALS, start, end)}


async def build_executive_summary(conn: asyncpg.Connection, as_of: date,
                                  cfg: PlatinumSettings) -> int:  # fmt: skip
    window_start = as_of - timedelta(days=SUMMARY_DAYS - 1)
    kpi = await conn.fetchrow(sql.KPIS, window_start, as_of)
    trend = await conn.fetchrow(sql.TRENDS, as_of - timedelta(days=TREND_DAYS - 1), as_of)
    points = await _daily(conn, as_of - timedelta(days=HISTORY_DAYS - 1), as_of)
    first = min(points, default=as_of)
    days, values = forecast.dense(points, first, as_of)
    f = forecast.forecast(days, values, 30)
    active = int(kpi["active_stores"])
    total: Decimal = kpi["total_revenue"]
    await conn.execute("DELETE FROM scout.platinum_executive_summary WHERE as_of = $1", as_of)
    await conn.execute(
        "INSERT INTO scout.platinum_executive_summary (as_of, window_start, window_end, "
        "total_revenue, active_stores, avg_store_revenue, revenue_trend_per_day, "
        "campaign_correlation, forecast_method, forecast_30d, forecast_30d_lower, "
        "forecast_30d_upper, interval_level, backtest_days, backtest_mape, baseline_method, "
        "baseline_mape) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
        as_of, window_start, as_of, total, active, total / active if active else None,
        trend["trend"], trend["correlation"], f.model, f.total, f.lower, f.upper, f.level,
        forecast.HOLDOUT, f.backtest_mape, f.baseline, f.baseline_mape,
    )  # fmt: skip
    return 1


async def build_campaign_insights(conn: asyncpg.Connection, as_of: date,
                                  cfg: PlatinumSettings) -> int:  # fmt: skip
    spend = [campaigns.Spend(**dict(r)) for r in await conn.fetch(sql.CAMPAIGN_SPEND, as_of)]
    rows: list[tuple[object, ...]] = []
    if spend:
        start = min(s.spend_date for s in spend) - timedelta(days=campaigns.PRE_DAYS)
        revenue = {(r["store_id"], r["date_key"]): r["revenue"]
                   for r in await conn.fetch(sql.STORE_REVENUE, start, as_of)}  # fmt: skip
        stores = [r["store_id"] for r in await conn.fetch(sql.ALL_STORES, as_of)]
        attributed = {r["campaign_id"]: r["revenue"]
                      for r in await conn.fetch(sql.ATTRIBUTED, as_of)}  # fmt: skip
        rows = await asyncio.to_thread(campaigns.insights, spend, revenue, stores, attributed,
                                       as_of)  # fmt: skip
    await conn.execute("DELETE FROM scout.platinum_campaign_insights")
    return await _copy(conn, "platinum_campaign_insights", campaigns.COLUMNS, rows)


async def build_market_predictions(conn: asyncpg.Connection, as_of: date,
                                   cfg: PlatinumSettings) -> int:  # fmt: skip
    start = as_of - timedelta(days=HISTORY_DAYS - 1)
    series: dict[str, dict[date, float]] = {}
    for r in await conn.fetch(sql.REGION_DAILY, start, as_of):
        series.setdefault(r["region"], {})[r["date_key"]] = r["revenue"]
    rows: list[tuple[object, ...]] = []
    for region in sorted(series):
        days, values = forecast.dense(series[region], min(series[region]), as_of)
        for horizon in (7, 30):
            f = forecast.forecast(days, values, horizon)
            rows.append((region, horizon, as_of + timedelta(days=1),
                         as_of + timedelta(days=horizon), f.total, f.lower, f.upper, f.level,
                         f.model, f.backtest_mape, f.baseline, f.baseline_mape, as_of))  # fmt: skip
    await conn.execute("DELETE FROM scout.platinum_market_predictions")
    columns = ("region", "horizon_days", "forecast_start", "forecast_end", "predicted_revenue",
               "lower_bound", "upper_bound", "interval_level", "model", "backtest_mape",
               "baseline_model", "baseline_mape", "as_of")  # fmt: skip
    return await _copy(conn, "platinum_market_predictions", columns, rows)


def privacy_params(cfg: PlatinumSettings) -> privacy.PrivacyParams:
    return privacy.PrivacyParams(
        epsilon=cfg.privacy_epsilon_per_release, max_partitions=cfg.privacy_max_partitions,
        max_contributions=cfg.privacy_max_contributions, spend_max=cfg.privacy_spend_max,
        bounds_share=cfg.privacy_bounds_share, count_share=cfg.privacy_count_share,
        bound_quantile=cfg.privacy_bound_quantile, bound_headroom=cfg.privacy_bound_headroom,
        max_relative_error=cfg.privacy_max_relative_error, confidence=cfg.privacy_confidence,
    )  # fmt: skip


def week_number(week: date) -> int:
    """Consecutive number of a (Monday-starting) week, for the budget window."""
    return (week - EPOCH_MONDAY).days // 7


def ledger_parameters(params: privacy.PrivacyParams, bounds: privacy.Bounds,
                      groups: dict[tuple[str, str], privacy.Group], window: int
                      ) -> dict[str, object]:  # fmt: skip
    """What the ledger keeps of a release: parameters and counts of noisy decisions only."""
    released = sum(not g.suppressed for g in groups.values())
    halves = sorted((g.avg_upper - g.avg_lower) / 2 for g in groups.values()
                    if g.avg_upper is not None and g.avg_lower is not None)  # fmt: skip
    return {
        "unit": "customer-week (a walk-in transaction is its own unit)",
        "composition": privacy.COMPOSITION, "budget_window_weeks": window,
        "epsilon_bounds": params.epsilon_bounds, "epsilon_count": params.epsilon_count,
        "epsilon_sum": params.epsilon_sum, "max_partitions": params.max_partitions,
        "max_contributions": bounds.max_contributions, "spend_max": bounds.spend_max,
        "max_contributions_source": bounds.count_source, "spend_max_source": bounds.spend_source,
        "bound_quantile": params.bound_quantile, "bound_headroom": params.bound_headroom,
        "count_quantile_dp": bounds.count_quantile, "spend_quantile_dp": bounds.spend_quantile,
        "count_scale": privacy.count_scale(params, bounds),
        "sum_scale": privacy.sum_scale(params, bounds), "confidence": params.confidence,
        "count_error": privacy.laplace_error(privacy.count_scale(params, bounds),
                                             1 - params.confidence),
        "max_relative_error": params.max_relative_error,
        "avg_error_median": halves[len(halves) // 2] if halves else None,
        "groups_public": len(groups), "groups_released": released,
        "groups_suppressed": len(groups) - released,
    }  # fmt: skip


async def build_anonymized_analytics(conn: asyncpg.Connection, as_of: date,
                                     cfg: PlatinumSettings) -> int:  # fmt: skip
    """Release every complete week not released yet (each once); refuse all of them if the
    budget cannot pay for all."""
    params = privacy_params(cfg)
    await conn.execute(sql.LEDGER_LOCK)
    since = as_of - timedelta(weeks=cfg.privacy_lookback_weeks)
    ledger = {r["period"]: r["epsilon"] for r in await conn.fetch(sql.LEDGER_RELEASED, RELEASE)}
    weeks = [r["week"] for r in await conn.fetch(sql.RELEASABLE_WEEKS, since, as_of)
             if r["week"].isoformat() not in ledger]  # fmt: skip
    if not weeks:
        return 0
    window = cfg.privacy_budget_window_weeks
    privacy.check_budget([(week_number(date.fromisoformat(p)), e) for p, e in ledger.items()],
                         [week_number(w) for w in weeks], params.epsilon,
                         cfg.privacy_epsilon_budget, window)  # fmt: skip
    rows: list[tuple[object, ...]] = []
    for week in weeks:
        end = week + timedelta(days=7)
        public = [
            (r["region"], r["city"])
            for r in await conn.fetch(sql.PUBLIC_GROUPS, end - timedelta(days=1))
        ]
        units = [((r["region"], r["city"]), r["n"], r["s"])
                 for r in await conn.fetch(sql.UNIT_CONTRIBUTIONS, week, end,
                                           params.max_partitions)]  # fmt: skip
        # Pure and CPU-bound (OpenDP): in a thread, so the worker keeps answering.
        bounds, groups = await asyncio.to_thread(_release_week, public, units, params)
        parameters = json.dumps(ledger_parameters(params, bounds, groups, window))
        release_id = await conn.fetchval(sql.LEDGER_INSERT, RELEASE, week.isoformat(),
                                         params.epsilon, 0.0, privacy.MECHANISM,
                                         parameters)  # fmt: skip
        for (region, city), g in sorted(groups.items()):
            rows.append((region, city, week, g.suppressed, g.count, g.count_error, g.avg_amount,
                         g.avg_lower, g.avg_upper, params.confidence,
                         privacy.count_scale(params, bounds), privacy.sum_scale(params, bounds),
                         release_id))  # fmt: skip
    return await _copy(conn, "platinum_anonymized_analytics", ANALYTICS_COLUMNS, rows)


def _release_week(public: list[tuple[str, str]],
                  units: list[tuple[tuple[str, str], float, float]], params: privacy.PrivacyParams
                  ) -> tuple[privacy.Bounds, dict[tuple[str, str], privacy.Group]]:  # fmt: skip
    bounds = privacy.choose_bounds([n for _, n, _ in units], [s for _, _, s in units], params)
    groups = set(public)
    bounded = privacy.bound([u for u in units if u[0] in groups], bounds)
    return bounds, privacy.release(public, bounded, params, bounds)


ANALYTICS_COLUMNS = ("region", "city", "week", "suppressed", "transaction_count",
                     "transaction_count_error", "avg_amount", "avg_amount_lower",
                     "avg_amount_upper", "confidence", "count_noise_scale", "sum_noise_scale",
                     "release_id")  # fmt: skip


async def epsilon_spent(conn: asyncpg.Connection, cfg: PlatinumSettings) -> float:
    """ε spent in the budget window ending with the newest released week."""
    ledger = [(week_number(date.fromisoformat(r["period"])), r["epsilon"])
              for r in await conn.fetch(sql.LEDGER_RELEASED, RELEASE)]  # fmt: skip
    if not ledger:
        return 0.0
    return privacy.window_spent(ledger, max(w for w, _ in ledger),
                                cfg.privacy_budget_window_weeks)  # fmt: skip


JOBS: tuple[Job, ...] = (
    Job("ml_features", 2 * 3600, build_ml_features, "ML features per store and day"),
    Job("executive_summary", 3600, build_executive_summary, "30-day KPIs, trend, forecast"),
    Job("campaign_insights", 3600, build_campaign_insights, "lift and ROI per campaign"),
    Job("market_predictions", 2 * 3600, build_market_predictions, "7/30-day forecast per region"),
    # "Privacy views on every run" (of the hourly round); a week is released only once.
    Job("anonymized_analytics", 3600, build_anonymized_analytics, "DP weekly analytics"),
)
JOBS_BY_NAME = {job.name: job for job in JOBS}
