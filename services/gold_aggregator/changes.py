"""The one channel from silver to gold: the change record, and how gold takes changes.

Silver's statement triggers (``schemas/sql/0070_gold_one_channel.sql``) write one signed
row into ``scout.gold_silver_changes`` for every change of a silver row that gold reads, in
the transaction that makes the change: -1 removes the old row's contribution, +1 adds the
new row's. Nothing silver commits can be missed, nothing rolled back is seen, and there is
no other hand-off (the ``silver-changes`` topic is gone). :class:`Change` is the only Python
description of that row; :data:`COLUMNS` is the only list of its columns.

Gold takes changes with :func:`claim` — ``DELETE … RETURNING`` in the flush's REPEATABLE READ
transaction, so a change is applied by exactly one committed flush — for the shards it
owns (:mod:`shards`), always all visible changes of each local day taken — except those of
the (store, day) groups set aside in ``gold_dead_letters`` (:mod:`dead_letters`), which wait
there until the group is retried with :func:`claim_groups`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg

TRANSACTION, FOOTFALL, SPEND, ITEMS = "transaction", "footfall", "spend", "items"
KINDS = (TRANSACTION, FOOTFALL, SPEND, ITEMS)


class Change(NamedTuple):
    """One row of ``gold_silver_changes``: a signed contribution of a silver row.

    A named tuple rather than a frozen dataclass: a flush builds one per captured row, and
    a frozen dataclass's ``__init__`` costs ten times as much (a ``setattr`` per field).

    The first seven fields are what a (store, period) group of ``gold_business_metrics``
    needs (:mod:`state`); the others place the change (shard, store, day) and carry what
    the day-wide tables, the rolling windows and the freshness metrics read.
    """

    kind: str  # one of KINDS
    sign: int  # +1 adds the row's contribution, -1 removes it
    value: Decimal  # amount, people counted, spend, or the lines' amounts
    customer_key: str | None = None  # transactions only (pseudonym; None for walk-ins)
    customer_type: str | None = None
    region: str | None = None
    city: str | None = None
    shard: int = 0  # scout.gold_shard(store_id)
    store_id: str = ""
    date_key: date | None = None  # the store's local business day
    units: int | None = None  # transactions: unit_count; items: sum of qty
    category: str | None = None  # items only
    brand: str | None = None
    transactions: int | None = None  # items: distinct transactions with such lines
    occurred_at: datetime | None = None  # transactions: event time of the contributing row
    kafka_timestamp: datetime | None = None  # source time of the change (tx, spend)
    captured_at: datetime | None = None  # silver's transaction time
    rebuilt: int = 0  # periods.REBUILT_DAY: the day's partial sums already hold it


COLUMNS = (
    "kind", "sign", "value", "customer_key", "customer_type", "region", "city", "shard",
    "store_id", "date_key", "units", "category", "brand", "transactions", "occurred_at",
    "kafka_timestamp", "captured_at", "rebuilt",
)  # fmt: skip
_RETURNING = ", ".join(COLUMNS)

# Changes of a dead-lettered group stay where they are until the group is retried.
_NOT_DEAD = """NOT EXISTS (SELECT 1 FROM scout.gold_dead_letters d
                  WHERE d.store_id = c.store_id AND d.date_key = c.date_key)"""
CHANGED_DAYS = f"""
SELECT DISTINCT date_key FROM scout.gold_silver_changes c
WHERE ($1::smallint[] IS NULL OR shard = ANY($1::smallint[])) AND {_NOT_DEAD} LIMIT $2
"""
CLAIM = f"""
DELETE FROM scout.gold_silver_changes c
WHERE ($1::smallint[] IS NULL OR shard = ANY($1::smallint[]))
  AND ($2::date[] IS NULL OR date_key = ANY($2::date[])) AND {_NOT_DEAD}
RETURNING {_RETURNING}
"""
# The (store, day) groups with changes waiting on these days ($2) of these shards ($1).
CHANGED_GROUPS = f"""
SELECT DISTINCT store_id, date_key FROM scout.gold_silver_changes c
WHERE shard = ANY($1::smallint[]) AND date_key = ANY($2::date[]) AND {_NOT_DEAD}
ORDER BY store_id, date_key
"""
# Every change of these (store, day) groups, dead-lettered or not.
CLAIM_GROUPS = f"""
DELETE FROM scout.gold_silver_changes
WHERE (store_id, date_key) IN (SELECT * FROM unnest($1::text[], $2::date[]))
RETURNING {_RETURNING}
"""
# Changes still waiting (not taken by this transaction) of these stores ($1) between two
# days ($2 included, $3 not): a group loaded from silver already contains them, and must not
# count them twice. One pass over the table (no per-range join for the planner to misjudge
# on a table whose size swings between 0 and a backlog); the ranges are matched in Python.
WAITING_OF_STORES = f"""
SELECT {_RETURNING} FROM scout.gold_silver_changes
WHERE store_id = ANY($1::text[]) AND date_key >= $2 AND date_key < $3 AND kind <> 'items'
"""
WAITING_GROUPS = "SELECT DISTINCT store_id, date_key FROM scout.gold_silver_changes"


def from_record(r: asyncpg.Record) -> Change:
    """A row of a ``RETURNING`` / ``SELECT`` of :data:`COLUMNS`, in that order."""
    return Change._make(r.values())


async def claim(
    conn: asyncpg.Connection, limit_days: int, shards: Collection[int] | None = None
) -> list[Change]:
    """All visible changes of up to ``limit_days`` local days, of ``shards`` (None: all).

    Whole days, so whole (store, day) groups: a group loaded from silver in the same
    snapshot already contains every change of its day, and the ones taken are dropped.
    """
    shard_list = None if shards is None else sorted(shards)
    days = [r["date_key"] for r in await conn.fetch(CHANGED_DAYS, shard_list, limit_days)]
    if not days:
        return []
    # Fewer days than the limit: they are all the days there are, take everything (no key
    # list for the planner to misjudge on a table whose size swings between 0 and a backlog).
    only = days if len(days) >= limit_days else None
    return [from_record(r) for r in await conn.fetch(CLAIM, shard_list, only)]


async def changed_days(
    conn: asyncpg.Connection, limit_days: int, shards: Collection[int]
) -> list[date]:
    """Up to ``limit_days`` local days with changes of ``shards`` that :func:`claim` takes."""
    return [r["date_key"] for r in await conn.fetch(CHANGED_DAYS, sorted(shards), limit_days)]


async def changed_groups(
    conn: asyncpg.Connection, shards: Collection[int], days: Sequence[date]
) -> list[tuple[str, date]]:
    """The (store, day) groups :func:`claim` would take on these days, in order."""
    rows = await conn.fetch(CHANGED_GROUPS, sorted(shards), list(days))
    return [(r["store_id"], r["date_key"]) for r in rows]


async def claim_groups(
    conn: asyncpg.Connection, groups: Sequence[tuple[str, date]]
) -> list[Change]:
    """All visible changes of these (store, day) groups, dead-lettered ones included: whole
    groups, as :func:`claim` takes them."""
    if not groups:
        return []
    stores, days = [s for s, _ in groups], [d for _, d in groups]
    return [from_record(r) for r in await conn.fetch(CLAIM_GROUPS, stores, days)]


async def waiting_of_ranges(
    conn: asyncpg.Connection, ranges: Sequence[tuple[str, date, date]]
) -> dict[int, list[Change]]:
    """Per index into ``ranges`` (store, first day, day after the last): the changes of the
    store's groups still waiting in the capture table (transactions, footfall, spend)."""
    out: dict[int, list[Change]] = {}
    if not ranges:
        return out
    by_store: dict[str, list[int]] = {}
    for i, (store_id, _, _) in enumerate(ranges):
        by_store.setdefault(store_id, []).append(i)
    first = min(r[1] for r in ranges)
    stop = max(r[2] for r in ranges)
    for record in await conn.fetch(WAITING_OF_STORES, sorted(by_store), first, stop):
        change = from_record(record)
        for i in by_store[change.store_id]:
            if change.date_key is not None and ranges[i][1] <= change.date_key < ranges[i][2]:
                out.setdefault(i, []).append(change)
    return out
