"""Keep the day-wide gold tables incrementally from the changes captured in silver.

The same rules as :mod:`incremental` (read it first), per local day instead of per
(store, day): a day's state is trusted only at the revision this worker wrote last
(``gold_day_revisions``), otherwise it is loaded from silver in the flush's snapshot; a
failed flush forgets everything. A touched day's rows are rewritten from its sums: a few
rows per segment, city and brand, whatever the day's volume.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import asyncpg

from services.gold_aggregator import sql
from services.gold_aggregator.day_state import ITEMS, Brand, DayChange, DayState, Place, Segment
from services.gold_aggregator.held import Held
from services.gold_aggregator.state import TRANSACTION


class DayTables:
    """The days' state in memory and the writes of the three day-wide tables."""

    def __init__(self) -> None:
        self._days: Held[date, DayState] = Held()

    def forget(self) -> None:
        self._days.forget()

    async def apply(self, conn: asyncpg.Connection, claimed: Sequence[asyncpg.Record]) -> int:
        """Apply the claimed changes (all visible changes of their days, see
        ``incremental.claim_changes``) and rewrite the touched days; returns rows written."""
        changes: dict[date, list[DayChange]] = defaultdict(list)
        for r in claimed:
            if r["kind"] == TRANSACTION:
                changes[r["date_key"]].append(DayChange(
                    TRANSACTION, r["sign"], r["value"], r["units"], r["store_id"],
                    r["customer_key"], r["customer_type"], r["region"], r["city"],
                ))  # fmt: skip
            elif r["kind"] == ITEMS:
                changes[r["date_key"]].append(DayChange(
                    ITEMS, r["sign"], r["value"], r["units"], category=r["category"],
                    brand=r["brand"], transactions=r["transactions"],
                ))  # fmt: skip
        if not changes:
            return 0
        days = sorted(changes)
        revisions = {r["date_key"]: r["revision"]
                     for r in await conn.fetch(sql.BUMP_DAY_REVISIONS, days)}  # fmt: skip
        stale = [d for d in days if not self._days.holds(d, revisions[d] - 1)]
        loaded = await load_days(conn, stale) if stale else {}
        written = 0
        for day in days:
            state = loaded.get(day)
            if state is None:
                state = self._days[day]
                state.apply(changes[day])
            self._days.put(day, state, revisions[day])
            written += await write_day(conn, day, state)
        self._days.evict_idle()
        return written


async def write_day(conn: asyncpg.Connection, day: date, state: DayState) -> int:
    """Replace the day's rows in the three tables by the ones its sums give."""
    for clear in sql.CLEAR_DAY:
        await conn.execute(clear, day)
    written = 0
    for statement, rows in zip(
        (sql.WRITE_CUSTOMER_INSIGHTS, sql.WRITE_GEOGRAPHIC, sql.WRITE_PRODUCTS),
        state.rows(), strict=True,
    ):  # fmt: skip
        if rows:
            status = await conn.execute(statement, day, *(list(c) for c in zip(*rows, strict=True)))
            written += int(status.rsplit(" ", 1)[1])
    return written


async def load_days(conn: asyncpg.Connection, days: Sequence[date]) -> dict[date, DayState]:
    """Build the days' state from their silver rows (aggregated in the database)."""
    states = {day: DayState() for day in days}
    for r in await conn.fetch(sql.LOAD_DAY_CUSTOMERS, list(days)):
        segment = states[r["date_key"]].segments.setdefault(r["customer_type"], Segment())
        segment.transactions += r["n"]
        segment.revenue += r["revenue"]
        segment.units += r["units"]
        if r["customer_key"] is not None:
            segment.customers[r["customer_key"]] = r["n"]
            segment.repeaters += r["n"] >= 2
    for r in await conn.fetch(sql.LOAD_DAY_STORES, list(days)):
        place = states[r["date_key"]].places.setdefault((r["region"], r["city"]), Place())
        place.transactions += r["n"]
        place.revenue += r["revenue"]
        place.stores[r["store_id"]] = r["n"]
    for r in await conn.fetch(sql.LOAD_DAY_BRANDS, list(days)):
        states[r["date_key"]].brands[(r["category"], r["brand"])] = Brand(
            r["units"], r["revenue"], r["n"]
        )
    return states
