"""Gold's dead letters: the (store, local day) groups whose changes gold cannot write.

A flush that fails on data (an error :func:`services.common.lifecycle.is_transient` calls
not transient: the database refuses a derived value, a conversion overflows) would fail the
same way on every retry, and every group of the flush would wait behind it. The aggregator
instead bisects the flush's groups with :func:`services.common.isolation.isolate`; a group
that fails alone is recorded here (``scout.gold_dead_letters``: reason, detail, the table the
database named, first and last seen, attempts) and the rest of the flush is committed.

The group's captured silver changes are kept: they stay in ``gold_silver_changes``, which
the normal flush leaves alone while the group has a row here (:mod:`changes`). The group is
retried — its changes claimed on their own, the row deleted in the same transaction — once
``retry_after`` has passed, when a worker starts (or gains the group's shard), or at once
after ``scout gold retry``. A retry that fails again counts one more attempt.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

Group = tuple[str, date]  # (store, local day)

KEEP = """
INSERT INTO scout.gold_dead_letters
    (store_id, date_key, shard, table_name, reason, detail, retry_after)
VALUES ($1, $2, scout.gold_shard($1), $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (store_id, date_key) DO UPDATE
SET table_name = EXCLUDED.table_name, reason = EXCLUDED.reason, detail = EXCLUDED.detail,
    last_seen_at = now(), attempts = scout.gold_dead_letters.attempts + 1,
    retry_after = EXCLUDED.retry_after
"""
# Groups of these shards ($1) to retry now: due, or of a shard this worker has not retried
# since it started or gained it ($2).
DUE = """
SELECT store_id, date_key FROM scout.gold_dead_letters
WHERE shard = ANY($1::smallint[]) AND (retry_after <= now() OR shard = ANY($2::smallint[]))
ORDER BY store_id, date_key
"""
RESOLVE = """
DELETE FROM scout.gold_dead_letters
WHERE (store_id, date_key) IN (SELECT * FROM unnest($1::text[], $2::date[]))
"""
RETRY_ALL = "UPDATE scout.gold_dead_letters SET retry_after = now()"
COUNT = "SELECT count(*) FROM scout.gold_dead_letters"
LIST = """
SELECT store_id, date_key, table_name, reason, detail, first_seen_at, last_seen_at, attempts,
       retry_after
FROM scout.gold_dead_letters ORDER BY store_id, date_key
"""


@dataclass(frozen=True)
class DeadLetter:
    store_id: str
    date_key: date
    table_name: str | None
    reason: str
    detail: str
    first_seen_at: datetime
    last_seen_at: datetime
    attempts: int
    retry_after: datetime


async def keep(
    conn: asyncpg.Connection,
    group: Group,
    *,
    reason: str,
    detail: str,
    table_name: str | None,
    retry_s: float,
) -> None:
    """Record (or count one more attempt of) a group gold cannot write."""
    await conn.execute(KEEP, group[0], group[1], table_name, reason, detail, retry_s)


async def due(
    conn: asyncpg.Connection, shards: Collection[int], fresh: Collection[int]
) -> list[Group]:
    rows = await conn.fetch(DUE, sorted(shards), sorted(fresh))
    return [(r["store_id"], r["date_key"]) for r in rows]


async def resolve(conn: asyncpg.Connection, groups: Collection[Group]) -> None:
    """Delete the rows of groups whose changes this transaction applies."""
    if groups:
        await conn.execute(RESOLVE, [s for s, _ in groups], [d for _, d in groups])


async def retry_all(conn: asyncpg.Connection) -> int:
    """Make every dead-lettered group due now (``scout gold retry``); returns how many."""
    return int((await conn.execute(RETRY_ALL)).rsplit(" ", 1)[1])


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(COUNT))


async def listed(conn: asyncpg.Connection) -> list[DeadLetter]:
    return [DeadLetter(**dict(r)) for r in await conn.fetch(LIST)]
