"""Gold database work: recompute groups and days from silver (rebuild), and verify."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.gold_aggregator import sql

STORE_DAY = "store_day"
DAY = "day"


async def refresh_store_days(conn: asyncpg.Connection, keys: Sequence[tuple[str, date]]) -> int:
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


async def refresh_days(conn: asyncpg.Connection, days: Sequence[date]) -> dict[str, int]:
    """Recompute the day-wide tables for these local days from silver; returns rows per
    table. Bumps the days' revisions, so a running aggregator reloads them."""
    await conn.execute(sql.BUMP_DAY_REVISIONS, list(days))
    written = {}
    for table, fresh, columns in sql.DAY_TABLES:
        delete, insert = sql.refresh_day_table(table, fresh, columns)
        await conn.execute(delete, list(days))
        status = await conn.execute(insert, list(days))
        written[table] = int(status.rsplit(" ", 1)[1])
    return written


async def pending_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Groups and days with captured changes not applied yet."""
    return {
        STORE_DAY: await conn.fetchval(f"SELECT count(*) FROM ({sql.CHANGED_GROUPS}) g"),
        DAY: await conn.fetchval("SELECT count(DISTINCT date_key) FROM scout.gold_silver_deltas"),
    }


async def all_store_days(conn: asyncpg.Connection, since: date) -> list[tuple[str, date]]:
    return [(r["store_id"], r["date_key"]) for r in await conn.fetch(sql.ALL_STORE_DAYS, since)]


async def all_days(conn: asyncpg.Connection, since: date) -> list[date]:
    return [r["date_key"] for r in await conn.fetch(sql.ALL_DAYS, since)]


# Reconciliation: compare each gold table with its recomputation, cell by cell.
_COMPARE = """
WITH fresh AS ({fresh}),
stored AS (SELECT {cols} FROM scout.{table} WHERE {scope}),
missing AS (SELECT * FROM fresh EXCEPT SELECT * FROM stored),
extra AS (SELECT * FROM stored EXCEPT SELECT * FROM fresh)
SELECT (SELECT count(*) FROM missing) + (SELECT count(*) FROM extra)
"""


async def mismatches(conn: asyncpg.Connection, since: date) -> dict[str, int]:
    """Rows that differ between gold and a from-scratch recomputation, per table, for the
    days from ``since``; groups and days whose changes are not applied yet are left out."""
    changed = await conn.fetch(sql.CHANGED_GROUPS)
    pending_store_days = {(r["store_id"], r["date_key"]) for r in changed}
    pending_days = {r["date_key"] for r in changed}
    store_days = [k for k in await all_store_days(conn, since) if k not in pending_store_days]
    days = [d for d in await all_days(conn, since) if d not in pending_days]
    result = {}
    cols = ", ".join(sql.BUSINESS_COLUMNS)
    result["gold_business_metrics"] = await conn.fetchval(
        _COMPARE.format(
            fresh=f"SELECT {cols} FROM ({sql.BUSINESS_METRICS_FRESH}) f",
            cols=cols,
            table="gold_business_metrics",
            scope="(store_id, date_key) IN (SELECT * FROM unnest($1::text[], $2::date[]))",
        ),
        [s for s, _ in store_days],
        [d for _, d in store_days],
    )
    for table, fresh, columns in sql.DAY_TABLES:
        cols = ", ".join(columns)
        compare = _COMPARE.format(
            fresh=f"SELECT {cols} FROM ({fresh}) f", cols=cols, table=table,
            scope="date_key = ANY($1::date[])",
        )  # fmt: skip
        result[table] = await conn.fetchval(compare, days)
    return result
