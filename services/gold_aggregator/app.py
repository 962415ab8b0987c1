"""Gold Faust worker: keep the gold tables from silver's changes, in flush loops.

Every gold table is kept incrementally: every 0.5 s a flush takes the changes silver's
triggers captured (in silver's own transactions, so a crash of either side loses none) and
applies them to the exact state in memory of each (store, day) group (:mod:`incremental`) and
of each local day (:mod:`day_tables`), so its cost follows the changes, not the size of the
day. A second timer reconciles gold with a from-scratch recomputation and exports
mismatches.

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

from services.common.batching import consume_in_batches, run_batch
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
from services.gold_aggregator.day_tables import DayTables
from services.gold_aggregator.incremental import BusinessMetrics, claim_changes
from services.gold_aggregator.state import InconsistentState

log = logging.getLogger(__name__)
LAYER = "gold"
FLUSH_S = 0.5
FLUSH_DUTY_CYCLE = 0.5
CLAIM_DAYS = 31  # local days per flush transaction (a backlog drains a month at a time)
VERIFY_DAYS = 35
WINDOW_S, HOP_S = 900.0, 60.0


class GoldAggregator:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._not_before = 0.0
        self.business = BusinessMetrics()
        self.days = DayTables()

    async def flush(self) -> int:
        """Apply the captured silver changes to the gold tables until none is left; returns
        the local days flushed."""
        if time.monotonic() < self._not_before:
            return 0
        started, total = time.perf_counter(), 0
        while True:
            n = await retry(self._flush_once, what="gold flush",
                            retry_on=(*TRANSIENT_DB_ERRORS, InconsistentState),
                            on_retry=self._flush_failed)  # fmt: skip
            total += n
            if n < CLAIM_DAYS:
                # A flush may take at most FLUSH_DUTY_CYCLE of the time (a long backlog must
                # not starve silver and bronze of the CPU).
                spent = time.perf_counter() - started
                self._not_before = time.monotonic() + spent * (1 / FLUSH_DUTY_CYCLE - 1)
                return total

    def _flush_failed(self, exc: BaseException) -> None:
        # State that did not add up is reloaded on the retry; it says nothing of the database.
        if not isinstance(exc, InconsistentState):
            self.ctx.db_failed(exc)

    async def _flush_once(self) -> int:
        pool = await self.ctx.pool()
        started = time.perf_counter()
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                claimed = await claim_changes(conn, CLAIM_DAYS)
                if not claimed:
                    return 0
                flushed = await self.business.apply(conn, claimed)
                day_rows = await self.days.apply(conn, claimed)
        except BaseException:
            # The changes taken return with the rollback; the state they touched may not.
            self.business.forget()
            self.days.forget()
            raise
        finally:
            GOLD_GROUPS_IN_MEMORY.set(len(self.business))
        self.ctx.db_ok()
        now = datetime.now(UTC)
        BATCH_FLUSH.labels(LAYER).observe(time.perf_counter() - started)
        GOLD_GROUPS_UPDATED.labels("gold_business_metrics").observe(flushed.written)
        GOLD_GROUPS_UPDATED.labels("day_tables").observe(day_rows)
        RECORDS_WRITTEN.labels(LAYER, "gold_business_metrics").inc(flushed.written)
        RECORDS_WRITTEN.labels(LAYER, "day_tables").inc(day_rows)
        GOLD_GROUPS_LOADED.inc(flushed.loaded)
        for oldest in flushed.oldest_event_at:
            FRESHNESS.labels(LAYER).observe(max(0.0, (now - oldest).total_seconds()))
        for captured in flushed.captured_at:
            GOLD_FROM_SILVER.observe(max(0.0, (now - captured).total_seconds()))
        return len({r["date_key"] for r in claimed})

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


class ChangelogMetadata:
    """Faust writes a table's changelog with the producer's cached metadata, without waiting:
    on changelog topics it has just created the cache may not know them yet, and the write
    raises TypeError. :meth:`wait` waits (a timeout is retried as transient) until it does."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.known = False

    async def wait(self) -> None:
        if self.known:
            return
        producer: Any = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        for table in list(self.app.tables.values()):
            await producer.partitions_for(table.changelog_topic.get_topic_name())
        self.known = True


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

    changelogs = ChangelogMetadata(app)

    async def handle(events: Sequence[Any]) -> None:
        await changelogs.wait()
        messages = [ChangedGroups.decode(e.message.value) for e in events]
        RECORDS_CONSUMED.labels(LAYER, topics.silver_changes).inc(len(messages))
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

    @app.timer(interval=FLUSH_S, name="gold-flush")
    async def flush() -> None:
        await run_batch(gold.flush, layer=LAYER, what="gold flush")

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
