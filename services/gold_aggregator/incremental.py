"""Keep ``gold_business_metrics`` incrementally from the changes captured in silver.

Silver's triggers (``schemas/sql/0040_gold_incremental.sql``) record every change to a
transaction, footfall reading or campaign spend as signed rows in ``gold_silver_deltas``, in
the transaction that makes it. A flush takes the changes of a set of days
(:func:`claim_changes`), applies them to the groups' exact state held here (:mod:`state`)
and writes the groups' rows — and hands the same changes to :mod:`day_tables` for the
day-wide tables: its cost follows the changes, not the size of the day.

Crash safety and several workers rest on two rules, both inside one REPEATABLE READ
transaction per flush:

- a group's state is trusted only if the group's revision (``gold_group_revisions``, bumped
  and locked by every flush) is the one this worker wrote last; otherwise, and after a
  restart, the group is loaded from silver — in the same snapshot as the changes taken, so
  the load already contains them and they are dropped;
- if the flush fails anywhere (including the commit), the caller forgets all state
  (:meth:`BusinessMetrics.forget`): the taken changes return with the rollback and the
  groups reload.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from services.gold_aggregator import sql
from services.gold_aggregator.held import Held
from services.gold_aggregator.state import (
    FOOTFALL,
    SPEND,
    TRANSACTION,
    Change,
    GroupState,
    business_row,
)

Key = tuple[str, date]
GROUP_KINDS = (TRANSACTION, FOOTFALL, SPEND)  # what a (store, day) group is made of


@dataclass(frozen=True)
class Flushed:
    """What one flush did, for the metrics."""

    groups: int  # groups whose changes were applied
    loaded: int  # of which built from silver (new to this worker, or stale)
    written: int  # gold rows inserted, updated or deleted
    oldest_event_at: list[datetime]  # per group: source time of its oldest timed change
    captured_at: list[datetime]  # per group: when silver committed its oldest change


class BusinessMetrics:
    """The groups' state in memory and the flush that maintains ``gold_business_metrics``."""

    def __init__(self) -> None:
        self._groups: Held[Key, GroupState] = Held()

    def forget(self) -> None:
        self._groups.forget()

    def __len__(self) -> int:
        return len(self._groups)

    async def apply(self, conn: asyncpg.Connection, claimed: Sequence[asyncpg.Record]) -> Flushed:
        """Apply the claimed changes (:func:`claim_changes`) to the groups and write their
        rows; run in a REPEATABLE READ transaction and call :meth:`forget` if it or its
        commit fails."""
        changes: dict[Key, list[Change]] = defaultdict(list)
        oldest_event: dict[Key, datetime] = {}
        captured: dict[Key, datetime] = {}
        for r in claimed:
            if r["kind"] not in GROUP_KINDS:
                continue
            key = (r["store_id"], r["date_key"])
            changes[key].append(Change(r["kind"], r["sign"], r["value"], r["customer_key"],
                                       r["customer_type"], r["region"], r["city"]))  # fmt: skip
            if r["kafka_timestamp"] is not None:
                oldest_event[key] = min(oldest_event.get(key, r["kafka_timestamp"]),
                                        r["kafka_timestamp"])  # fmt: skip
            captured[key] = min(captured.get(key, r["captured_at"]), r["captured_at"])
        if not changes:
            return Flushed(0, 0, 0, [], [])
        keys = sorted(changes)
        revisions = {
            (r["store_id"], r["date_key"]): r["revision"]
            for r in await conn.fetch(sql.BUMP_REVISIONS, *_columns(keys))
        }
        stale = [key for key in keys if not self._groups.holds(key, revisions[key] - 1)]
        loaded = await load(conn, stale) if stale else {}
        for key in keys:
            state = loaded.get(key)
            if state is None:
                state = self._groups[key]
                state.apply(changes[key])
            self._groups.put(key, state, revisions[key])
        written = await self._write(conn, keys)
        self._groups.evict_idle()
        return Flushed(len(keys), len(stale), written, list(oldest_event.values()),
                       list(captured.values()))  # fmt: skip

    async def _write(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        rows, gone = [], []
        for store_id, date_key in keys:
            state = self._groups[(store_id, date_key)]
            if not state.amounts:  # footfall or spend only, or all transactions moved away
                gone.append((store_id, date_key))
                continue
            place = state.place() or await _min_place(conn, state)
            rows.append(business_row(store_id, date_key, *place, state))
        written = 0
        if rows:
            status = await conn.execute(sql.UPSERT_BUSINESS_METRICS,
                                        *(list(c) for c in zip(*rows, strict=True)))  # fmt: skip
            written += int(status.rsplit(" ", 1)[1])
        if gone:
            status = await conn.execute(sql.DELETE_BUSINESS_METRICS, *_columns(gone))
            written += int(status.rsplit(" ", 1)[1])
        return written


async def claim_changes(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """All visible changes of up to ``limit`` local days (see ``sql.CLAIM_ALL_CHANGES``):
    whole days, so whole (store, day) groups too."""
    days = [r["date_key"] for r in await conn.fetch(sql.CHANGED_DAYS_UP_TO, limit)]
    if not days:
        return []
    if len(days) < limit:
        return list(await conn.fetch(sql.CLAIM_ALL_CHANGES))
    return list(await conn.fetch(sql.CLAIM_CHANGES_OF_DAYS, days))


async def load(conn: asyncpg.Connection, keys: Sequence[Key]) -> dict[Key, GroupState]:
    """Build the groups' state from their silver rows."""
    per_group: dict[Key, list[Change]] = {k: [] for k in keys}
    for r in await conn.fetch(sql.LOAD_TRANSACTIONS, *_columns(keys)):
        change = Change(TRANSACTION, 1, r["amount"], r["customer_key"], r["customer_type"],
                        r["region"], r["city"])  # fmt: skip
        per_group[(r["store_id"], r["date_key"])].append(change)
    states = {}
    for r in await conn.fetch(sql.LOAD_SUMS, *_columns(keys)):
        key = (r["store_id"], r["date_key"])
        state = GroupState(footfall=r["footfall"], spend=r["spend"])
        state.load(per_group[key])
        states[key] = state
    return states


async def _min_place(conn: asyncpg.Connection, state: GroupState) -> tuple[str, str]:
    regions = sorted({region for region, _ in state.places})
    cities = sorted({city for _, city in state.places})
    return (await conn.fetchval(sql.MIN_TEXT, regions), await conn.fetchval(sql.MIN_TEXT, cities))


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[date]]:
    return [s for s, _ in keys], [d for _, d in keys]
