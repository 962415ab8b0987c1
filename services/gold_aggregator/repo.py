"""Gold database work: enqueue changed groups, claim and recompute them, rebuild, verify."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from services.gold_aggregator import sql

STORE_DAY = "store_day"
DAY = "day"


@dataclass(frozen=True)
class Claimed:
    """Groups taken from the pending queue, with the oldest source event time per group."""

    keys: list[tuple[str, date]]
    oldest_event_at: list[datetime]
    enqueued_at: list[datetime]


async def enqueue(
    conn: asyncpg.Connection, store_days: Iterable[tuple[str, date]], oldest_event_at: datetime
) -> int:
    """Queue the (store, day) groups and their days for recomputation."""
    store_days = sorted(set(store_days))
    days = sorted({d for _, d in store_days})
    kinds = [STORE_DAY] * len(store_days) + [DAY] * len(days)
    stores = [s for s, _ in store_days] + [""] * len(days)
    dates = [d for _, d in store_days] + days
    await conn.execute(sql.ENQUEUE, kinds, stores, dates, [oldest_event_at] * len(kinds))
    return len(kinds)


async def claim(conn: asyncpg.Connection, kind: str, limit: int) -> Claimed:
    rows = await conn.fetch(sql.CLAIM, kind, limit)
    return Claimed(
        [(r["store_id"], r["date_key"]) for r in rows],
        [r["oldest_event_at"] for r in rows],
        [r["enqueued_at"] for r in rows],
    )


async def refresh_store_days(conn: asyncpg.Connection, keys: Sequence[tuple[str, date]]) -> int:
    """Recompute ``gold_business_metrics`` for these groups; returns rows written or deleted."""
    if not keys:
        return 0
    row = await conn.fetchrow(
        sql.REFRESH_BUSINESS_METRICS, [s for s, _ in keys], [d for _, d in keys]
    )
    return int(row["written"]) + int(row["deleted"])


async def refresh_days(conn: asyncpg.Connection, days: Sequence[date]) -> dict[str, int]:
    """Recompute the day-wide tables for these local days; returns rows per table."""
    written = {}
    for table, fresh, columns in sql.DAY_TABLES:
        delete, insert = sql.refresh_day_table(table, fresh, columns)
        await conn.execute(delete, list(days))
        status = await conn.execute(insert, list(days))
        written[table] = int(status.rsplit(" ", 1)[1])
    return written


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
    days from ``since``; groups still waiting in the pending queue are left out."""
    pending = await conn.fetch("SELECT kind, store_id, date_key FROM scout.gold_pending_groups")
    pending_store_days = {(r["store_id"], r["date_key"]) for r in pending if r["kind"] == STORE_DAY}
    pending_days = {r["date_key"] for r in pending if r["kind"] == DAY}
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
