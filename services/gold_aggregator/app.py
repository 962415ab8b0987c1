"""Gold Faust worker: keep the gold tables from silver's changes, in flush loops, for the
shards this replica owns.

Every gold table is kept incrementally: every 0.5 s a flush takes the changes silver's
triggers captured for this replica's shards (:mod:`changes`, :mod:`shards`: Kafka's
consumer group on the gold-shards topic assigns them) and applies them — to the exact
state in memory of each (store, day / week / month) group (:mod:`incremental`), to the
shards' partial sums of the day-wide grains (:mod:`day_tables`) and, once committed, to the
live rolling windows (:mod:`rolling`, served as JSON at ``/gold/rolling``). Its cost follows
the changes, not the size of the period. A flush that fails on data is not retried as it
is: its (store, day) groups are bisected, the ones that fail alone set aside as dead letters
with their changes kept (:mod:`dead_letters`), the rest committed. A second timer reconciles
gold with a from-scratch recomputation and exports mismatches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

import faust

from services.common.batching import run_batch
from services.common.isolation import describe, isolate
from services.common.kafka import make_app, topics_for
from services.common.lifecycle import CANCELLED_STATEMENT, is_transient, retry, splits
from services.common.metrics import (
    BATCH_FLUSH,
    FRESHNESS,
    GOLD_DEAD_LETTERS,
    GOLD_FROM_SILVER,
    GOLD_GROUPS_IN_MEMORY,
    GOLD_GROUPS_LOADED,
    GOLD_GROUPS_UPDATED,
    GOLD_RECONCILIATION_MISMATCHES,
    GOLD_SHARDS_OWNED,
    GOLD_WAITING_CHANGES,
    RECORDS_CONSUMED,
    RECORDS_WRITTEN,
    STATEMENTS_CANCELLED,
)
from services.common.service import ServiceContext
from services.common.settings import Settings
from services.gold_aggregator import changes as channel
from services.gold_aggregator import dead_letters, repo, rolling
from services.gold_aggregator.changes import Change
from services.gold_aggregator.day_tables import DayTables
from services.gold_aggregator.dead_letters import Group
from services.gold_aggregator.incremental import BusinessMetrics, Flushed, claim_changes
from services.gold_aggregator.shards import SHARDS, owned_shards
from services.gold_aggregator.state import InconsistentState

log = logging.getLogger(__name__)
LAYER = "gold"
CLAIM_DAYS = 31  # local days per flush transaction (a backlog drains a month at a time)
# Shards per flush transaction: as many as keep a transaction near CHANGES_PER_FLUSH
# changes. A backlog is then many short flushes, between which the worker's loop runs (a
# rebalance, /metrics), not one that holds it for seconds; at a paced rate one transaction
# takes every shard, instead of paying a transaction's fixed cost (some 17 statements) per
# few shards.
FIRST_SHARDS_PER_FLUSH = 8
CHANGES_PER_FLUSH = 20_000
VERIFY_DAYS = 35
DEAD_LETTER_CHECK_S = 5.0  # how often a flush looks for dead-lettered groups that are due
CHANGES = "gold_silver_changes"  # the label of the records consumed: silver's changes taken

Owned = Callable[[], frozenset[int]]


class Taken(NamedTuple):
    """What one flush transaction took: local days, and changes."""

    days: int
    changes: int


class GoldAggregator:
    def __init__(self, ctx: ServiceContext, owned: Owned) -> None:
        self.ctx = ctx
        self.owned = owned
        self._not_before = 0.0
        self.business = BusinessMetrics()
        self.days = DayTables()
        self.windows = rolling.RollingWindows()
        self._windows_of: frozenset[int] = frozenset()  # shards whose windows are held
        self._retried: frozenset[int] = frozenset()  # shards whose dead letters were retried
        self._next_check = 0.0  # monotonic time of the next look for due dead letters
        self._refusal: BaseException | None = None  # the last error of an isolation attempt
        self.shards_per_flush = FIRST_SHARDS_PER_FLUSH

    async def flush(self) -> int:
        """Apply the captured silver changes of this replica's shards until none is left;
        returns the local days flushed (summed over the shard batches)."""
        if time.monotonic() < self._not_before:
            return 0
        shards = self.owned()
        GOLD_SHARDS_OWNED.set(len(shards))
        self.windows.keep_only(shards)  # shards that moved away
        self._windows_of &= shards
        started, total = time.perf_counter(), 0
        await self._retry_dead_letters(shards)
        ordered, i = sorted(shards), 0
        while i < len(ordered):
            step = self.shards_per_flush
            batch = frozenset(ordered[i : i + step])
            while True:
                taken = await retry(partial(self._flush_once, batch), what="gold flush",
                                    retry_on=(InconsistentState,),
                                    on_retry=self._flush_failed)  # fmt: skip
                total += taken.days
                self.shards_per_flush = next_shards_per_flush(step, taken.changes)
                if taken.days < CLAIM_DAYS:
                    break
            i += step
        spent = time.perf_counter() - started
        pause = pause_after(spent, self.ctx.settings.gold_flush_duty_cycle)
        self._not_before = time.monotonic() + pause
        return total

    def _flush_failed(self, exc: BaseException) -> None:
        # State that did not add up is reloaded on the retry; it says nothing of the database.
        if not isinstance(exc, InconsistentState):
            self.ctx.db_failed(exc)

    def forget(self) -> None:
        self.business.forget()
        self.days.forget()

    async def _flush_once(self, batch: frozenset[int]) -> Taken:
        owned = self.owned()
        GOLD_SHARDS_OWNED.set(len(owned))
        shards = batch & owned  # still ours (a rebalance may have begun meanwhile)
        if not shards:  # rebalancing, or a replica beyond the partition count
            return Taken(0, 0)
        try:
            return await self._apply(shards)
        except Exception as exc:
            if splits(exc, len(shards)):
                return await self._flush_in_halves(shards, exc)
            cancelled = isinstance(exc, CANCELLED_STATEMENT)
            if (is_transient(exc) and not cancelled) or isinstance(exc, InconsistentState):
                raise
            refusal = exc
        # A data error: the same flush would fail again. Set aside the groups that fail
        # alone, write the others. The flush of one shard that the server cancelled (it
        # outlasted the statement_timeout) is not refused: the same bisection writes it in
        # smaller parts.
        pool = await self.ctx.pool()
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            days = await channel.changed_days(conn, CLAIM_DAYS, shards)
            groups = await channel.changed_groups(conn, shards, days)
        if cancelled:
            log.warning("gold flush of %d group(s) cancelled by the server (%s); writing it "
                        "in smaller parts", len(groups), describe(refusal)[1])  # fmt: skip
        else:
            log.warning("gold flush of %d group(s) refused (%s); isolating the groups that "
                        "cause it", len(groups), type(refusal).__name__)  # fmt: skip
        await self._isolate(shards, groups)
        return Taken(len(days), 0)  # the changes the isolation took are not counted

    async def _flush_in_halves(self, shards: frozenset[int], exc: BaseException) -> Taken:
        """The flush of ``shards`` that the server cancelled, as two flushes of half of them
        each (they hold about half the changes: shorter statements)."""
        STATEMENTS_CANCELLED.labels(LAYER).inc()
        log.warning("gold flush of %d shard(s) cancelled by the server (%s); flushing them in "
                    "halves", len(shards), describe(exc)[1])  # fmt: skip
        ordered = sorted(shards)
        middle = len(ordered) // 2
        first = await self._flush_once(frozenset(ordered[:middle]))
        second = await self._flush_once(frozenset(ordered[middle:]))
        return Taken(first.days + second.days, first.changes + second.changes)

    async def _retry_dead_letters(self, shards: frozenset[int]) -> None:
        """Apply the changes of dead-lettered groups that are due (or of shards this worker
        has not retried yet); those that still fail wait for the next retry."""
        fresh = shards - self._retried
        if not shards or (not fresh and time.monotonic() < self._next_check):
            return
        pool = await self.ctx.pool()
        async with pool.acquire() as conn:
            due = await dead_letters.due(conn, shards, fresh)
        self._retried = shards
        self._next_check = time.monotonic() + DEAD_LETTER_CHECK_S
        if due:
            log.info("gold: retrying %d dead-lettered group(s)", len(due))
            await self._isolate(shards, due)

    async def _isolate(self, shards: frozenset[int], groups: list[Group]) -> None:
        async def attempt(part: Sequence[Group]) -> None:
            try:
                await retry(partial(self._apply, shards, part), what="gold isolation",
                            retry_on=(InconsistentState,), max_attempts=3,
                            raise_on=(CANCELLED_STATEMENT,),  # isolate() halves it
                            on_retry=self._flush_failed)  # fmt: skip
            except Exception as exc:
                self._refusal = exc
                raise

        await isolate(groups, attempt, self._keep, layer=LAYER)
        pool = await self.ctx.pool()
        async with pool.acquire() as conn:
            GOLD_DEAD_LETTERS.set(await dead_letters.count(conn))

    async def _keep(self, group: Group, reason: str, detail: str) -> None:
        table = getattr(self._refusal, "table_name", None)
        log.error("gold: (store %s, day %s) set aside as a dead letter: %s (%s); its changes "
                  "wait for a retry", group[0], group[1], reason, detail)  # fmt: skip
        pool = await self.ctx.pool()
        async with pool.acquire() as conn:
            await dead_letters.keep(conn, group, reason=reason, detail=detail,
                                    table_name=table if isinstance(table, str) else None,
                                    retry_s=self.ctx.settings.gold_dead_letter_retry_s)  # fmt: skip

    async def _apply(self, shards: frozenset[int], groups: Sequence[Group] | None = None) -> Taken:
        """One flush transaction: the changes of ``shards`` (or of these ``groups`` only,
        whose dead letters it resolves)."""
        gained = shards - self._windows_of
        pool = await self.ctx.pool()
        started = time.perf_counter()
        windows: dict[int, rolling.Buckets] = {}
        committing = False
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                if groups is None:
                    claimed = await claim_changes(conn, CLAIM_DAYS, sorted(shards))
                else:
                    claimed = await channel.claim_groups(conn, groups)
                    await dead_letters.resolve(conn, groups)
                if gained and groups is None:  # isolation leaves them to the next flush
                    windows = await rolling.load(conn, gained)
                if not claimed:
                    flushed = None
                else:
                    flushed = await self.business.apply(conn, claimed)
                    day_rows = await self.days.apply(conn, claimed)
                committing = True
        except BaseException:
            # The changes taken return with the rollback; the state they touched may not.
            # A COMMIT whose reply was lost (the server or the network went away) may have
            # committed: the windows of these shards are loaded again by the next flush. A
            # statement that failed before the COMMIT rolled the flush back: the windows,
            # which take a flush's changes only after its commit, are still right.
            self.forget()
            if committing:
                self._windows_of -= shards
            raise
        finally:
            GOLD_GROUPS_IN_MEMORY.set(len(self.business))
        self.ctx.db_ok()
        self.windows.replace(windows)
        self.windows.apply(claimed, skip=gained)  # a later load has the skipped ones
        if groups is None:
            self._windows_of |= shards
        if flushed is None:
            return Taken(0, 0)
        self._observe(claimed, flushed, day_rows, time.perf_counter() - started)
        return Taken(len({c.date_key for c in claimed}), len(claimed))

    def _observe(
        self, claimed: list[Change], flushed: Flushed, day_rows: int, seconds: float
    ) -> None:
        now = datetime.now(UTC)
        RECORDS_CONSUMED.labels(LAYER, CHANGES).inc(len(claimed))
        BATCH_FLUSH.labels(LAYER).observe(seconds)
        GOLD_GROUPS_UPDATED.labels("gold_business_metrics").observe(flushed.written)
        GOLD_GROUPS_UPDATED.labels("gold_business_metrics_rollups").observe(flushed.rollup_written)
        GOLD_GROUPS_UPDATED.labels("day_tables").observe(day_rows)
        RECORDS_WRITTEN.labels(LAYER, "gold_business_metrics").inc(flushed.written)
        RECORDS_WRITTEN.labels(LAYER, "gold_business_metrics_rollups").inc(flushed.rollup_written)
        RECORDS_WRITTEN.labels(LAYER, "day_tables").inc(day_rows)
        GOLD_GROUPS_LOADED.inc(flushed.loaded + flushed.rollup_loaded)
        for oldest in flushed.oldest_event_at:
            FRESHNESS.labels(LAYER).observe(max(0.0, (now - oldest).total_seconds()))
        for captured in flushed.captured_at:
            GOLD_FROM_SILVER.observe(max(0.0, (now - captured).total_seconds()))

    async def verify(self) -> dict[str, int]:
        pool = await self.ctx.pool()
        since = date.today() - timedelta(days=VERIFY_DAYS)
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            result = await repo.mismatches(conn, since)
            waiting = await repo.waiting_changes(conn)
            dead = await dead_letters.count(conn)
        for table, n in result.items():
            GOLD_RECONCILIATION_MISMATCHES.labels(table).set(n)
        GOLD_WAITING_CHANGES.set(waiting)
        GOLD_DEAD_LETTERS.set(dead)
        return result


def pause_after(spent: float, duty_cycle: float) -> float:
    """How long to wait after a flush that took ``spent`` seconds, so that flushing takes at
    most ``duty_cycle`` of the time: a long backlog must not starve silver and bronze of
    the CPU they share with gold (``SCOUT_GOLD_FLUSH_DUTY_CYCLE``; 1: no pause)."""
    return spent * (1 / duty_cycle - 1)


def next_shards_per_flush(shards: int, claimed: int) -> int:
    """The shards of the next flush transaction, after one of ``shards`` took ``claimed``
    changes: halved above :data:`CHANGES_PER_FLUSH`, doubled below a quarter of it."""
    if claimed > CHANGES_PER_FLUSH:
        return max(1, shards // 2)
    if claimed < CHANGES_PER_FLUSH // 4:
        return min(SHARDS, shards * 2)
    return shards


def build_app(settings: Settings) -> faust.App:
    app = make_app(settings, LAYER)
    topics = topics_for(settings)
    ctx = ServiceContext(settings, LAYER, app)

    def owned() -> frozenset[int]:
        """The shards of the gold-shards partitions Kafka assigned to this replica now."""
        if app.rebalancing:
            return frozenset()
        assigned = [tp.partition for tp in app.consumer.assignment()
                    if tp.topic == topics.gold_shards]  # fmt: skip
        count = app.consumer.topic_partitions(topics.gold_shards) or SHARDS
        return owned_shards(assigned, count)

    gold = GoldAggregator(ctx, owned)
    # Membership only: nothing is ever written to this topic. Subscribing makes this
    # replica a member of the group whose coordinator assigns the partitions (shards).
    shards_topic = app.topic(topics.gold_shards, value_type=bytes, key_type=bytes,
                             partitions=SHARDS)  # fmt: skip

    @app.agent(shards_topic, name="gold-shards")
    async def membership(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.timer(interval=settings.gold_flush_interval_s, name="gold-flush")
    async def flush() -> None:
        await run_batch(gold.flush, layer=LAYER, what="gold flush")

    @app.timer(interval=settings.gold_verify_interval_s, name="gold-verify")
    async def verify() -> None:
        # One replica reconciles (the owner of shard 0): the comparison covers every shard,
        # and N replicas running it would only multiply its cost.
        if 0 not in owned():
            return
        result = await gold.verify()
        if any(result.values()):
            log.error("gold differs from silver: %s", result)

    @app.page("/gold/rolling")
    async def rolling_page(web: Any, request: Any) -> Any:
        stores = gold.windows.now()
        body = {
            "window_seconds": rolling.WINDOW_S, "hop_seconds": rolling.HOP_S,
            "shards": sorted(gold.owned()),
            "stores": {s: {"transactions": n, "revenue": str(round(r, 2))}
                       for s, (n, r) in sorted(stores.items())},
        }  # fmt: skip
        return web.json(body)

    return app
