"""Keep the day-wide gold tables' grains — customer segment, region and city, category
and brand — as partial sums per local day and shard.

A replica adds the changes it takes to the partial sums of their shard
(``gold_partial_segments``, ``gold_partial_places``, ``gold_partial_brands``), in the
transaction that takes them, one row per (day, key, shard): two replicas never write the
same row, and a change is counted once because it is deleted from the capture table in the
same transaction. The tables the readers see (``gold_customer_insights`` … and their
``_rollups``) are views that combine every shard's sums, and sum the days into weeks and
months (schemas/sql/0071, 0072): a customer's transactions are summed over the shards and
days before the customer is counted, so distinct customers and repeat rates stay exact
across replicas and periods, and so do shares and ranks.

Nothing is held in memory here, so nothing needs reloading when a shard moves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from services.gold_aggregator import sql
from services.gold_aggregator.changes import ITEMS, TRANSACTION, Change
from services.gold_aggregator.periods import DAY, REBUILT_DAY

Sums = list[int | Decimal]


class DayTables:
    """Adds claimed changes to the partial sums of the day-wide grains."""

    def forget(self) -> None:
        """Nothing to forget: the sums live in the database, in the flush's transaction."""

    async def apply(self, conn: asyncpg.Connection, claimed: Sequence[Change]) -> int:
        """Add the claimed changes to their shards' partial sums; returns rows written."""
        segments: dict[tuple[str, date, str, str, int], Sums] = defaultdict(lambda: [0, 0, 0])
        places: dict[tuple[str, date, str, str, str, int], Sums] = defaultdict(lambda: [0, 0])
        brands: dict[tuple[str, date, str, str, int], Sums] = defaultdict(lambda: [0, 0, 0])
        for c in claimed:
            if c.kind not in (TRANSACTION, ITEMS) or c.date_key is None:
                continue
            if c.rebuilt & REBUILT_DAY:  # a rebuild already counted it
                continue
            sign, value, units, day = c.sign, c.sign * c.value, c.sign * (c.units or 0), c.date_key
            if c.kind == TRANSACTION:
                acc = segments[(DAY, day, c.customer_type or "", c.customer_key or "", c.shard)]
                acc[0] += sign
                acc[1] += value
                acc[2] += units
                acc = places[(DAY, day, c.region or "", c.city or "", c.store_id, c.shard)]
                acc[0] += sign
                acc[1] += value
            else:
                acc = brands[(DAY, day, c.category or "", c.brand or "", c.shard)]
                acc[0] += units
                acc[1] += value
                acc[2] += sign * (c.transactions or 0)
        written = 0
        # (upsert, drop of the rows it brought to zero, the index of the transaction count)
        for upsert, drop, n, sums in (
            (sql.UPSERT_PARTIAL_SEGMENTS, sql.DROP_EMPTY_SEGMENTS, 0, segments),
            (sql.UPSERT_PARTIAL_PLACES, sql.DROP_EMPTY_PLACES, 0, places),
            (sql.UPSERT_PARTIAL_BRANDS, sql.DROP_EMPTY_BRANDS, 2, brands),
        ):
            if not sums:
                continue
            ordered = sorted(sums.items())
            rows = [(*key, *values) for key, values in ordered]
            status = await conn.execute(upsert, *(list(c) for c in zip(*rows, strict=True)))
            written += int(status.rsplit(" ", 1)[1])
            # Only a row whose count went down, or a new one whose changes cancel out (a
            # transaction added and removed within the flush), can be at zero now.
            fell = [key for key, values in ordered if values[n] <= 0]
            if fell:
                await conn.execute(drop, *(list(c) for c in zip(*fell, strict=True)))
        return written


async def rebuild(conn: asyncpg.Connection, days: Sequence[date]) -> None:
    """Recompute the partial sums of these local days from silver (``scout gold rebuild``).

    Locks the capture table first (call it before anything else that locks gold rows, in
    its own transaction): no change can be captured or taken meanwhile, and the ones
    waiting are marked as counted, so the replicas that take them later apply them to their
    (store, period) groups only. Weeks and months need nothing of their own: their views
    sum these days.
    """
    if not days:
        return
    await conn.execute(sql.LOCK_CHANGES)
    args = (DAY, list(days), min(days), max(days) + timedelta(days=1))
    for clear in sql.CLEAR_PARTIALS:
        await conn.execute(clear, *args[:2])
    for insert in sql.REBUILD_PARTIALS:
        await conn.execute(insert, *args)
    await conn.execute(sql.MARK_REBUILT, *args, REBUILT_DAY)
