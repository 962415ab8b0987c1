"""Live rolling windows per store: transactions and revenue over the last 15 minutes of
event time, hopping by a minute, served at ``/gold/rolling``.

They read the same channel as every gold table — the changes a flush takes — so a
correction moves a sale instead of adding one (v2 removes v1's contribution, -1, and adds
its own, +1): a corrected transaction counts once, at its current amount. Each replica
keeps the windows of its own shards' stores; when it gains a shard, it loads that shard's
windows from silver in the flush's snapshot (and skips the changes that flush took for it,
which the load already contains).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from services.gold_aggregator.changes import TRANSACTION, Change

WINDOW_S, HOP_S = 900.0, 60.0
_HOPS = int(WINDOW_S // HOP_S)

# Current silver transactions of these shards ($1) whose event time is in the window ($3),
# per minute; $2 bounds the local days scanned (an index) to those the window can touch.
LOAD = """
SELECT scout.gold_shard(store_id) AS shard, store_id,
       floor(extract(epoch FROM transaction_date) / 60)::bigint AS minute,
       count(*)::bigint AS n, sum(amount) AS revenue
FROM scout.silver_transactions_cleaned
WHERE local_date >= $2 AND transaction_date >= $3
  AND scout.gold_shard(store_id) = ANY($1::smallint[])
GROUP BY 1, 2, 3
"""

Buckets = dict[str, dict[int, list[int | Decimal]]]  # store → minute → [transactions, revenue]


class RollingWindows:
    def __init__(self) -> None:
        self._shards: dict[int, Buckets] = {}

    def apply(self, changes: Iterable[Change], skip: Collection[int] = ()) -> None:
        """Add the changes of a committed flush (those of shards in ``skip`` are in a load)."""
        oldest = _minute(time.time()) - _HOPS
        for c in changes:
            if c.kind != TRANSACTION or c.occurred_at is None or c.shard in skip:
                continue
            minute = _minute(c.occurred_at.timestamp())
            if minute <= oldest:
                continue  # outside the window already
            stores = self._shards.setdefault(c.shard, {})
            bucket = stores.setdefault(c.store_id, {}).setdefault(minute, [0, Decimal(0)])
            bucket[0] += c.sign
            bucket[1] += c.sign * c.value

    def replace(self, loaded: Mapping[int, Buckets]) -> None:
        self._shards.update(loaded)

    def keep_only(self, shards: Collection[int]) -> None:
        """Drop the windows of shards this replica no longer owns."""
        for shard in [s for s in self._shards if s not in shards]:
            del self._shards[shard]

    def now(self, at: float | None = None) -> dict[str, tuple[int, Decimal]]:
        """(transactions, revenue) per store for the window ending now; prunes old minutes."""
        oldest = _minute(time.time() if at is None else at) - _HOPS
        out: dict[str, tuple[int, Decimal]] = {}
        for stores in self._shards.values():
            for store_id, minutes in stores.items():
                for minute in [m for m in minutes if m <= oldest]:
                    del minutes[minute]
                n = sum(int(b[0]) for b in minutes.values())
                revenue = sum((Decimal(b[1]) for b in minutes.values()), Decimal(0))
                if n or revenue:
                    out[store_id] = (n, revenue)
        return out


async def load(conn: asyncpg.Connection, shards: Collection[int]) -> dict[int, Buckets]:
    """The windows of these shards from silver (run in the flush's snapshot)."""
    now = datetime.now(UTC)
    since = datetime.fromtimestamp((_minute(now.timestamp()) - _HOPS + 1) * HOP_S, UTC)
    out: dict[int, Buckets] = {s: defaultdict(dict) for s in shards}
    for r in await conn.fetch(LOAD, sorted(shards), (since - timedelta(days=2)).date(), since):
        out[r["shard"]][r["store_id"]][r["minute"]] = [r["n"], r["revenue"]]
    return {s: dict(b) for s, b in out.items()}


def _minute(epoch_s: float) -> int:
    return math.floor(epoch_s / HOP_S)
