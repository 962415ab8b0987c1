"""Gold database work: recompute groups and periods from silver (rebuild), and verify."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.gold_aggregator import changes, day_tables, sql
from services.gold_aggregator.periods import DAY, PERIODS, start_of

Key = tuple[str, date]


async def refresh_store_days(conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
    """Recompute ``gold_business_metrics`` for these groups from silver; returns rows written
    or deleted. Bumps (and first locks) the groups' revisions, so a running aggregator
    reloads them instead of trusting state that no longer matches the row."""
    if not keys:
        return 0
    await conn.execute(sql.BUMP_REVISIONS, [s for s, _ in keys], [d for _, d in keys])
    row = await conn.fetchrow(
        sql.REFRESH_BUSINESS_METRICS, [s for s, _ in keys], [d for _, d in keys]
    )
    return int(row["written"]) + int(row["deleted"])


async def refresh_store_periods(conn: asyncpg.Connection, period: str, keys: Sequence[Key]) -> int:
    """The same for (store, first day of a week or month) groups of the rollups."""
    if period == DAY:
        return await refresh_store_days(conn, keys)
    if not keys:
        return 0
    stores, starts = [s for s, _ in keys], [d for _, d in keys]
    await conn.execute(sql.BUMP_ROLLUP_REVISIONS, stores, starts, period)
    row = await conn.fetchrow(sql.refresh_business_rollups(period), stores, starts)
    return int(row["written"]) + int(row["deleted"])


async def refresh_days(conn: asyncpg.Connection, days: Sequence[date]) -> None:
    """Recompute the day-wide tables' partial sums for these local days from silver (weeks
    and months sum them). Locks the capture table first (see :func:`day_tables.rebuild`)."""
    await day_tables.rebuild(conn, sorted(set(days)))


async def waiting_changes(conn: asyncpg.Connection) -> int:
    """Changes captured and not applied yet."""
    return int(await conn.fetchval("SELECT count(*) FROM scout.gold_silver_changes"))


async def all_store_days(conn: asyncpg.Connection, since: date) -> list[Key]:
    return [(r["store_id"], r["date_key"]) for r in await conn.fetch(sql.ALL_STORE_DAYS, since)]


async def all_days(conn: asyncpg.Connection, since: date) -> list[date]:
    return [r["date_key"] for r in await conn.fetch(sql.ALL_DAYS, since)]


async def all_store_periods(conn: asyncpg.Connection, period: str, since: date) -> list[Key]:
    if period == DAY:
        return await all_store_days(conn, since)
    rows = await conn.fetch(sql.ALL_STORE_PERIODS, since, period)
    return [(r["store_id"], r["date_key"]) for r in rows]


async def all_periods(conn: asyncpg.Connection, period: str, since: date) -> list[date]:
    if period == DAY:
        return await all_days(conn, since)
    return [r["date_key"] for r in await conn.fetch(sql.ALL_PERIODS, since, period)]


# Reconciliation: compare each gold table with its recomputation, cell by cell (by position).
_COMPARE = """
WITH fresh AS ({fresh}),
stored AS (SELECT {cols} FROM scout.{table} WHERE {scope}),
missing AS (SELECT * FROM fresh EXCEPT SELECT * FROM stored),
extra AS (SELECT * FROM stored EXCEPT SELECT * FROM fresh)
SELECT (SELECT count(*) FROM missing) + (SELECT count(*) FROM extra)
"""


async def mismatches(conn: asyncpg.Connection, since: date) -> dict[str, int]:
    """Rows that differ between gold and a from-scratch recomputation, per table, for the
    days (and the weeks and months) from ``since``; groups and periods whose changes are not
    applied yet are left out. Keys: the table names, rollups as ``<table>:<period>``."""
    waiting = await conn.fetch(changes.WAITING_GROUPS)
    result = {}
    for period in PERIODS:
        waiting_groups = {(r["store_id"], start_of(period, r["date_key"])) for r in waiting}
        waiting_periods = {start_of(period, r["date_key"]) for r in waiting}
        groups = [k for k in await all_store_periods(conn, period, since)
                  if k not in waiting_groups]  # fmt: skip
        starts = [d for d in await all_periods(conn, period, since) if d not in waiting_periods]
        suffix = "" if period == DAY else f":{period}"
        table = "gold_business_metrics" if period == DAY else "gold_business_metrics_rollups"
        fresh_cols = ", ".join(sql.BUSINESS_COLUMNS)
        stored_cols = ", ".join(sql.BUSINESS_COLUMNS if period == DAY else sql.ROLLUP_COLUMNS)
        start_col = "date_key" if period == DAY else "period_start"
        scope = f"(store_id, {start_col}) IN (SELECT * FROM unnest($1::text[], $2::date[]))"
        if period != DAY:
            scope += f" AND period = '{period}'"
        result[f"gold_business_metrics{suffix}"] = await conn.fetchval(
            _COMPARE.format(fresh=f"SELECT {fresh_cols} FROM ({sql.business_fresh(period)}) f",
                            cols=stored_cols, table=table, scope=scope),
            [s for s, _ in groups], [d for _, d in groups],
        )  # fmt: skip
        for name, fresh, columns in sql.DAY_TABLES:
            cols = ", ".join(columns)
            if period == DAY:
                stored, stored_cols, scope = name, cols, "date_key = ANY($1::date[])"
            else:
                stored = f"{name}_rollups"
                stored_cols = cols.replace("date_key", "period_start")
                scope = f"period = '{period}' AND period_start = ANY($1::date[])"
            compare = _COMPARE.format(fresh=f"SELECT {cols} FROM ({fresh(period)}) f",
                                      cols=stored_cols, table=stored, scope=scope)  # fmt: skip
            result[f"{name}{suffix}"] = await conn.fetchval(compare, starts)
    return result
