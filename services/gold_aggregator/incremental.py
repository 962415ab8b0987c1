"""Keep ``gold_business_metrics`` (per store and local day) and its weekly and monthly
rollups (``gold_business_metrics_rollups``) incrementally from silver's changes.

A flush takes the changes of its shards (:func:`changes.claim`), applies them to the exact
state held here of every (store, period) group they touch (:mod:`state`: sorted amounts,
customer multisets — so the median and distinct customers of a week or a month are exact,
not derived from the days) and writes the groups' rows: its cost follows the changes, not
the size of the period.

Crash safety and several replicas rest on two rules, both inside one REPEATABLE READ
transaction per flush:

- a group's state is trusted only if the group's revision (``gold_group_revisions`` for
  days, ``gold_rollup_revisions`` for weeks and months, bumped and locked by every flush) is
  the one this worker wrote last; otherwise — another replica owned the shard meanwhile, a
  rebuild, a restart — the group is loaded from silver in the same snapshot as the changes
  taken, so the load already contains them and they are dropped. A week or a month may
  also hold changes still waiting (of days not taken): those are subtracted from the load;
- if the flush fails anywhere (including the commit), the caller forgets all state
  (:meth:`BusinessMetrics.forget`): the taken changes return with the rollback and the
  groups reload.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import asyncpg

from services.gold_aggregator import changes as channel
from services.gold_aggregator import sql
from services.gold_aggregator.held import Held
from services.gold_aggregator.periods import DAY, PERIODS, end_of, start_of
from services.gold_aggregator.state import (
    FOOTFALL,
    SPEND,
    TRANSACTION,
    Change,
    GroupState,
    business_row,
)

Key = tuple[str, date]  # (store, first day of the period)
GROUP_KINDS = (TRANSACTION, FOOTFALL, SPEND)  # what a (store, period) group is made of


@dataclass(frozen=True)
class Flushed:
    """What one flush did, for the metrics."""

    groups: int  # groups whose changes were applied
    loaded: int  # of which built from silver (new to this worker, or stale)
    written: int  # gold rows inserted, updated or deleted
    oldest_event_at: list[datetime]  # per group: source time of its oldest timed change
    captured_at: list[datetime]  # per group: when silver committed its oldest change
    rollup_groups: int = 0  # the same for the (store, week) and (store, month) groups
    rollup_loaded: int = 0
    rollup_written: int = 0


class BusinessMetrics:
    """Every (store, period) group this worker holds — days, weeks and months — and the
    flush that writes their rows; :class:`Flushed` counts the days, and the rollups apart."""

    def __init__(self) -> None:
        self._periods = [PeriodGroups(period) for period in PERIODS]

    def forget(self) -> None:
        for groups in self._periods:
            groups.forget()

    def __len__(self) -> int:
        return sum(len(groups) for groups in self._periods)

    async def apply(self, conn: asyncpg.Connection, claimed: Sequence[Change]) -> Flushed:
        """Apply the claimed changes (:func:`changes.claim`) to the groups of every period
        and write their rows; run in a REPEATABLE READ transaction and call :meth:`forget`
        if it or its commit fails."""
        day, *rollups = [await groups.apply(conn, claimed) for groups in self._periods]
        return replace(
            day,
            rollup_groups=sum(r.groups for r in rollups),
            rollup_loaded=sum(r.loaded for r in rollups),
            rollup_written=sum(r.written for r in rollups),
        )


class PeriodGroups:
    """The (store, period) groups of one period in memory, and the writes of their rows."""

    def __init__(self, period: str = DAY) -> None:
        self.period = period
        self._groups: Held[Key, GroupState] = Held()

    def forget(self) -> None:
        self._groups.forget()

    def __len__(self) -> int:
        return len(self._groups)

    async def apply(self, conn: asyncpg.Connection, claimed: Sequence[Change]) -> Flushed:
        by_group: dict[Key, list[Change]] = defaultdict(list)
        oldest_event: dict[Key, datetime] = {}
        captured: dict[Key, datetime] = {}
        for c in claimed:
            if c.kind not in GROUP_KINDS or c.date_key is None:
                continue
            key = (c.store_id, start_of(self.period, c.date_key))
            by_group[key].append(c)
            if c.kafka_timestamp is not None:
                oldest_event[key] = min(oldest_event.get(key, c.kafka_timestamp),
                                        c.kafka_timestamp)  # fmt: skip
            if c.captured_at is not None:
                captured[key] = min(captured.get(key, c.captured_at), c.captured_at)
        if not by_group:
            return Flushed(0, 0, 0, [], [])
        keys = sorted(by_group)
        revisions = await self._bump(conn, keys)
        stale = [key for key in keys if not self._groups.holds(key, revisions[key] - 1)]
        loaded = await self._load(conn, stale) if stale else {}
        for key in keys:
            state = loaded.get(key)
            if state is None:
                state = self._groups[key]
                state.apply(by_group[key])
            self._groups.put(key, state, revisions[key])
        written = await self._write(conn, keys)
        self._groups.evict_idle()
        return Flushed(len(keys), len(stale), written, list(oldest_event.values()),
                       list(captured.values()))  # fmt: skip

    async def _bump(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> dict[Key, int]:
        if self.period == DAY:
            rows = await conn.fetch(sql.BUMP_REVISIONS, *_columns(keys))
            return {(r["store_id"], r["date_key"]): r["revision"] for r in rows}
        rows = await conn.fetch(sql.BUMP_ROLLUP_REVISIONS, *_columns(keys), self.period)
        return {(r["store_id"], r["period_start"]): r["revision"] for r in rows}

    async def _load(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> dict[Key, GroupState]:
        if self.period == DAY:
            return await load(conn, keys)
        ranges = [(s, first, end_of(self.period, first)) for s, first in keys]
        states = await load_ranges(conn, ranges)
        # Changes of days this flush did not take are in the load already: take them out
        # again (they are applied when taken). Negated, additions go first as ever.
        for i, waiting in (await channel.waiting_of_ranges(conn, ranges)).items():
            states[i].apply([c._replace(sign=-c.sign) for c in waiting])
        return {key: states[i] for i, key in enumerate(keys)}

    async def _write(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        rows, gone = [], []
        for store_id, first in keys:
            state = self._groups[(store_id, first)]
            if not state.amounts:  # footfall or spend only, or all transactions moved away
                gone.append((store_id, first))
                continue
            place = state.place() or await _min_place(conn, state)
            rows.append(business_row(store_id, first, *place, state))
        day = self.period == DAY
        extra = () if day else (self.period,)
        written = 0
        if rows:
            upsert = sql.UPSERT_BUSINESS_METRICS if day else sql.UPSERT_BUSINESS_ROLLUPS
            status = await conn.execute(upsert, *(list(c) for c in zip(*rows, strict=True)),
                                        *extra)  # fmt: skip
            written += int(status.rsplit(" ", 1)[1])
        if gone:
            delete = sql.DELETE_BUSINESS_METRICS if day else sql.DELETE_BUSINESS_ROLLUPS
            status = await conn.execute(delete, *_columns(gone), *extra)
            written += int(status.rsplit(" ", 1)[1])
        return written


async def claim_changes(
    conn: asyncpg.Connection, limit: int, shards: Sequence[int] | None = None
) -> list[Change]:
    """All visible changes of up to ``limit`` local days (of ``shards``; None: all)."""
    return await channel.claim(conn, limit, shards)


async def load(conn: asyncpg.Connection, keys: Sequence[Key]) -> dict[Key, GroupState]:
    """Build (store, day) groups' state from their silver rows."""
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


async def load_ranges(
    conn: asyncpg.Connection, ranges: Sequence[tuple[str, date, date]]
) -> list[GroupState]:
    """Build the state of (store, first day, day after the last) ranges from silver."""
    columns = [list(c) for c in zip(*ranges, strict=True)]
    per_range: list[list[Change]] = [[] for _ in ranges]
    for r in await conn.fetch(sql.LOAD_RANGE_TRANSACTIONS, *columns):
        change = Change(TRANSACTION, 1, r["amount"], r["customer_key"], r["customer_type"],
                        r["region"], r["city"])  # fmt: skip
        per_range[r["i"] - 1].append(change)
    states = [GroupState() for _ in ranges]
    for r in await conn.fetch(sql.LOAD_RANGE_SUMS, *columns):
        state = states[r["i"] - 1]
        state.footfall, state.spend = r["footfall"], r["spend"]
    for state, loaded in zip(states, per_range, strict=True):
        state.load(loaded)
    return states


async def _min_place(conn: asyncpg.Connection, state: GroupState) -> tuple[str, str]:
    regions = sorted({region for region, _ in state.places})
    cities = sorted({city for _, city in state.places})
    return (await conn.fetchval(sql.MIN_TEXT, regions), await conn.fetchval(sql.MIN_TEXT, cities))


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[date]]:
    return [s for s, _ in keys], [d for _, d in keys]
