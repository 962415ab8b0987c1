"""Gold Faust worker: keep the gold tables from silver's changes, in flush loops.

``gold_business_metrics`` (per store and local day, the table freshness is defined on) is
kept incrementally: every 0.5 s a flush applies the changes silver's triggers captured to the
groups' exact state in memory (:mod:`incremental`), so its cost follows the changes, not the
size of the day. The day-wide tables are recomputed per day from silver every 5 s: the agent
records *which* days changed (in ``gold_pending_groups``, in the same transaction that lets
Kafka move on), so a crash never loses a day. A third timer reconciles gold with a
from-scratch recomputation and exports mismatches.

The live rolling windows (transactions and revenue per store over the last 15 minutes,
hopping by a minute) are Faust tables, served as JSON at ``/gold/rolling``.
"""

from __future__ import annotations

import logging
import operator
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import faust

from services.common.batching import consume_in_batches, run_to_completion
from services.common.handoff import ChangedGroups
from services.common.kafka import make_app, topics_for
from services.common.lifecycle import TRANSIENT_DB_ERRORS, retry
from services.common.metrics import (
    BATCH_FLUSH,
    FRESHNESS,
    GOLD_FROM_SILVER,
    GOLD_GROUPS_IN_MEMORY,
    GOLD_GROUPS_LOADED,
    GOLD_GROUPS_UPDATED,
    GOLD_PENDING_GROUPS,
    GOLD_RECONCILIATION_MISMATCHES,
    RECORDS_CONSUMED,
    RECORDS_WRITTEN,
)
from services.common.service import ServiceContext
from services.common.settings import Settings
from services.gold_aggregator import repo
from services.gold_aggregator.incremental import BusinessMetrics
from services.gold_aggregator.state import InconsistentState

log = logging.getLogger(__name__)
LAYER = "gold"
STORE_DAY_FLUSH_S = 0.5
DAY_FLUSH_S = 5.0  # the day-wide tables recompute whole days: heavier, a little less often
# A flush may take at most this share of the time, so that recomputing a growing day never
# starves silver and bronze of the CPU (the next flush waits for its turn).
FLUSH_DUTY_CYCLE = 0.5
VERIFY_DAYS = 35
CLAIM_LIMIT = 5000
WINDOW_S, HOP_S = 900.0, 60.0


class GoldAggregator:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._not_before = {repo.STORE_DAY: 0.0, repo.DAY: 0.0}
        self.business = BusinessMetrics()

    def due(self, kind: str) -> bool:
        return time.monotonic() >= self._not_before[kind]

    def _pace(self, kind: str, seconds: float) -> None:
        self._not_before[kind] = time.monotonic() + seconds * (1 / FLUSH_DUTY_CYCLE - 1)

    async def enqueue(self, messages: Sequence[ChangedGroups]) -> None:
        days = {day for m in messages for _, day in m.store_days}
        times = [m.oldest_event_ms for m in messages if m.oldest_event_ms is not None]
        oldest = (datetime.fromtimestamp(min(times) / 1000, UTC) if times
                  else datetime.now(UTC))  # fmt: skip
        if not days:
            return

        async def write() -> None:
            pool = await self.ctx.pool()
            async with pool.acquire() as conn, conn.transaction():
                await repo.enqueue_days(conn, days, oldest)

        await retry(write, what="gold enqueue", on_retry=self.ctx.db_failed)
        self.ctx.db_ok()

    async def flush_store_days(self) -> int:
        """Apply the captured silver changes to ``gold_business_metrics`` until none is left."""
        if not self.due(repo.STORE_DAY):
            return 0
        started, total = time.perf_counter(), 0
        while True:
            n = await retry(self._flush_business, what="gold flush",
                            retry_on=(*TRANSIENT_DB_ERRORS, InconsistentState),
                            on_retry=self.ctx.db_failed)  # fmt: skip
            total += n
            if n < CLAIM_LIMIT:
                self._pace(repo.STORE_DAY, time.perf_counter() - started)
                return total

    async def _flush_business(self) -> int:
        pool = await self.ctx.pool()
        started = time.perf_counter()
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                flushed = await self.business.flush(conn, CLAIM_LIMIT)
        except BaseException:
            # The changes taken return with the rollback; the state they touched may not.
            self.business.forget()
            raise
        finally:
            GOLD_GROUPS_IN_MEMORY.set(len(self.business))
        self.ctx.db_ok()
        if not flushed.groups:
            return 0
        now = datetime.now(UTC)
        BATCH_FLUSH.labels(LAYER).observe(time.perf_counter() - started)
        GOLD_GROUPS_UPDATED.labels("gold_business_metrics").observe(flushed.written)
        RECORDS_WRITTEN.labels(LAYER, "gold_business_metrics").inc(flushed.written)
        GOLD_GROUPS_LOADED.inc(flushed.loaded)
        for oldest in flushed.oldest_event_at:
            FRESHNESS.labels(LAYER).observe(max(0.0, (now - oldest).total_seconds()))
        for captured in flushed.captured_at:
            GOLD_FROM_SILVER.observe(max(0.0, (now - captured).total_seconds()))
        return flushed.groups

    async def flush_days(self) -> int:
        if not self.due(repo.DAY):
            return 0
        started = time.perf_counter()
        n = await retry(self._flush_days, what="gold day flush", on_retry=self.ctx.db_failed)
        self._pace(repo.DAY, time.perf_counter() - started)
        return int(n)

    async def _flush_days(self) -> int:
        pool = await self.ctx.pool()
        started = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            claimed = await repo.claim_days(conn, 64)
            if not claimed:
                return 0
            written = await repo.refresh_days(conn, sorted({d for d, _ in claimed}))
            await repo.finish_days(conn, claimed)
        self.ctx.db_ok()
        BATCH_FLUSH.labels(LAYER).observe(time.perf_counter() - started)
        for table, n in written.items():
            GOLD_GROUPS_UPDATED.labels(table).observe(n)
            RECORDS_WRITTEN.labels(LAYER, table).inc(n)
        return len(claimed)

    async def verify(self) -> dict[str, int]:
        pool = await self.ctx.pool()
        since = date.today() - timedelta(days=VERIFY_DAYS)
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            result = await repo.mismatches(conn, since)
            pending = await repo.pending_counts(conn)
        for table, n in result.items():
            GOLD_RECONCILIATION_MISMATCHES.labels(table).set(n)
        for kind, n in pending.items():
            GOLD_PENDING_GROUPS.labels(kind).set(n)
        return result


def build_app(settings: Settings) -> faust.App:
    app = make_app(settings, LAYER)
    topics = topics_for(settings)
    ctx = ServiceContext(settings, LAYER, app, (topics.silver_changes,))
    gold = GoldAggregator(ctx)
    changes = app.topic(topics.silver_changes, value_type=bytes, key_type=bytes)
    # JSON for the table keys and values (the app's default serializer is raw bytes).
    schema: Any = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    expires = timedelta(seconds=WINDOW_S + HOP_S)
    revenue = (
        app.Table("rolling-revenue", default=float, schema=schema,
                  partitions=settings.topic_partitions, use_partitioner=True)
        .hopping(WINDOW_S, HOP_S, expires=expires, key_index=True).relative_to_now()
    )  # fmt: skip
    count = (
        app.Table("rolling-transactions", default=int, schema=schema,
                  partitions=settings.topic_partitions, use_partitioner=True)
        .hopping(WINDOW_S, HOP_S, expires=expires, key_index=True).relative_to_now()
    )  # fmt: skip

    async def handle(events: Sequence[Any]) -> None:
        messages = [ChangedGroups.decode(e.message.value) for e in events]
        RECORDS_CONSUMED.labels(LAYER, topics.silver_changes).inc(len(messages))
        await gold.enqueue(messages)
        # One table update per store and batch (each update writes a changelog record per
        # window it falls in). The tables partition their changelog by key
        # (use_partitioner): a store's window lives in one partition.
        counts: dict[str, int] = defaultdict(int)
        revenues: dict[str, float] = defaultdict(float)
        for message in messages:
            for store_id, n, amount in message.store_sales:
                counts[store_id] += n
                revenues[store_id] += float(amount)
        for store_id, n in counts.items():
            count[store_id].apply(operator.add, n)
            revenue[store_id].apply(operator.add, revenues[store_id])

    @app.agent(changes, name="gold-changes")
    async def changes_agent(stream: Any) -> None:
        await consume_in_batches(stream, handle, layer=LAYER, max_records=200,
                                 within_s=settings.batch_wait_s)  # fmt: skip

    @app.timer(interval=STORE_DAY_FLUSH_S, name="gold-flush-store-days")
    async def flush_store_days() -> None:
        await run_to_completion(gold.flush_store_days(), what="gold flush")

    @app.timer(interval=DAY_FLUSH_S, name="gold-flush-days")
    async def flush_days() -> None:
        await run_to_completion(gold.flush_days(), what="gold day flush")

    @app.timer(interval=settings.gold_verify_interval_s, name="gold-verify")
    async def verify() -> None:
        result = await gold.verify()
        if any(result.values()):
            log.error("gold differs from silver: %s", result)

    @app.page("/gold/rolling")
    async def rolling(web: Any, request: Any) -> Any:
        stores: dict[str, dict[str, Any]] = {}
        for store_id in count.keys():  # noqa: SIM118 - windowed table: keys of the window now
            entry = stores.setdefault(store_id, {"transactions": 0, "revenue": Decimal(0)})
            entry["transactions"] += count[store_id].now()
            entry["revenue"] += Decimal(str(revenue[store_id].now()))
        body = {
            "window_seconds": WINDOW_S, "hop_seconds": HOP_S,
            "stores": {s: {"transactions": v["transactions"],
                           "revenue": str(round(v["revenue"], 2))}
                       for s, v in sorted(stores.items())},
        }  # fmt: skip
        return web.json(body)

    return app
