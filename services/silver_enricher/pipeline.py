"""The silver pipeline, independent of Faust: refine a batch and merge it.

Used by the streaming agents, by quarantine re-processing and by ``scout replay``, so all
three produce the same rows from the same bronze records. Gold learns of the merge from the
changes silver's triggers capture in the same transaction (services/gold_aggregator/changes.py):
nothing is announced on Kafka.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg

from services.common.events import ProductRecord, StoreRecord, rules
from services.common.handoff import DecodedRecord, UnreadableHandoff, decode_landed, with_kind
from services.common.isolation import isolate
from services.common.lifecycle import CANCELLED_STATEMENT, retry
from services.common.metrics import (
    BATCH_FLUSH,
    EVENT_LATENESS,
    FRESHNESS,
    RECORDS_REJECTED,
    RECORDS_WARNED,
    RECORDS_WRITTEN,
)
from services.silver_enricher import repo
from services.silver_enricher.expectations import Context
from services.silver_enricher.repo import BronzeRecordRow
from services.silver_enricher.transform import Refined, Refiner, unprocessable_rows

log = logging.getLogger(__name__)
LAYER = "silver"
MASTER_REFRESH_S = 60.0
# Records per transaction of a batch. Parts overlap (one refined while the previous one is
# written); large enough that per-statement costs do not count, small enough that gold sees
# a catch-up's changes every second or so.
PART_RECORDS = 2_500

LateMaster = Callable[[Sequence[str], Sequence[str]], Awaitable[int]]  # (store ids, SKUs)


class MasterData:
    """Cache of stores and products; misses are looked up, the whole is refreshed now and then
    (another worker may have received the master record)."""

    def __init__(self) -> None:
        self.stores: dict[str, StoreRecord] = {}
        self.products: dict[str, ProductRecord] = {}
        self._loaded_at = 0.0

    async def ensure(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        if time.monotonic() - self._loaded_at > MASTER_REFRESH_S:
            self.stores = await repo.load_stores(conn)
            self.products = await repo.load_products(conn)
            self._loaded_at = time.monotonic()
            return
        store_ids, skus = set(), set()
        for record in records:
            raw = record.raw
            if not isinstance(raw, dict):
                continue
            if isinstance(raw.get("store_id"), str):
                store_ids.add(raw["store_id"])
            items = raw.get("items")
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("sku"), str):
                    skus.add(item["sku"])
            if isinstance(raw.get("sku"), str):
                skus.add(raw["sku"])
        missing_stores = sorted(store_ids - self.stores.keys())
        missing_skus = sorted(skus - self.products.keys())
        if missing_stores:
            self.stores.update(await repo.load_stores(conn, missing_stores))
        if missing_skus:
            self.products.update(await repo.load_products(conn, missing_skus))

    def add(self, stores: Sequence[StoreRecord], products: Sequence[ProductRecord]) -> None:
        self.stores.update((s.store_id, s) for s in stores)
        self.products.update((p.sku, p) for p in products)


class SilverPipeline:
    def __init__(
        self,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        refiner: Refiner,
        *,
        allowed_skew_s: float,
        on_db_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.pool = pool
        self.refiner = refiner
        self.allowed_skew = timedelta(seconds=allowed_skew_s)
        self.master = MasterData()
        self.on_db_retry = on_db_retry
        # Set by the app: re-process what lacked master data (unknown_store records in
        # quarantine, items of unknown SKUs) once that master data exists.
        self.on_late_master: LateMaster | None = None

    async def process(
        self,
        records: Sequence[DecodedRecord],
        *,
        recheck_master: bool = True,
        reenrich: bool = False,
    ) -> repo.MergeResult:
        """Refine and merge a batch, in parts of :data:`PART_RECORDS` records, each in its
        own transaction (:meth:`_merge_parts`). A record that cannot be refined or stored is
        isolated and quarantined (:mod:`services.common.isolation`); the rest goes on."""
        unique = list({r.bronze_id: r for r in records}.values())

        async def parts() -> AsyncIterator[Sequence[DecodedRecord]]:
            for start in range(0, len(unique), PART_RECORDS):
                yield unique[start : start + PART_RECORDS]

        return await self._merge_parts(parts(), recheck_master, reenrich)

    async def process_landed(
        self,
        messages: Sequence[bytes],
        on_decoded: Callable[[int], None],
        on_unreadable: Callable[[int, str], None],
    ) -> repo.MergeResult:
        """:meth:`process` for bronze-landed messages, each decoded (once, in the worker
        thread) only when its records are next: decoding overlaps the writes too.
        ``on_decoded`` is told how many records each message held; ``on_unreadable`` the
        index and the reason of each message that is not bronze's, which is skipped.

        Small messages are gathered into one part: at a paced rate bronze hands off a few
        hundred records per message, and a transaction per message would spend silver's time
        on per-transaction work (statements, round trips, the capture triggers) instead of
        records (bench/results/chain.md, 2026-12-01 third session)."""

        async def parts() -> AsyncIterator[Sequence[DecodedRecord]]:
            pending: dict[str, DecodedRecord] = {}
            for n, message in enumerate(messages):
                try:
                    records = await asyncio.to_thread(decode_landed, message)
                except UnreadableHandoff as exc:
                    on_unreadable(n, str(exc))
                    continue
                on_decoded(len(records))
                pending.update((r.bronze_id, r) for r in records)
                while len(pending) >= PART_RECORDS:
                    unique = list(pending.values())
                    yield unique[:PART_RECORDS]
                    pending = {r.bronze_id: r for r in unique[PART_RECORDS:]}
            if pending:
                yield list(pending.values())

        return await self._merge_parts(parts(), True, False)

    async def _merge_parts(
        self, parts: AsyncIterator[Sequence[DecodedRecord]], recheck_master: bool,
        reenrich: bool,
    ) -> repo.MergeResult:  # fmt: skip
        """Merge the parts one transaction each, overlapping: while one part's transaction
        runs in PostgreSQL, the next part is refined in a worker thread (refining is pure),
        at most one of each at a time. This returns once every part is committed, so the
        caller commits Kafka offsets only after the whole batch is in silver; a batch
        redelivered halfway converges to the same rows (every merge is idempotent, newest
        wins, and a record repeated in two parts is merged twice to the same row)."""
        results: list[repo.MergeResult] = []
        writing: asyncio.Future[None] | None = None
        try:
            async for part in parts:
                prepared = await self._prepare(part)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    self._write_part(part, prepared, results, recheck_master, reenrich)
                )
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                await asyncio.wait({writing})  # never leave a transaction behind
        return repo.MergeResult(
            sum(r.changed_transactions for r in results),
            [tid for r in results for tid in r.merged_ids],
        )

    async def _prepare(self, records: Sequence[DecodedRecord]) -> Refined | None:
        """The part refined ahead of its transaction (master data looked up first), or None
        when refining fails on its data: the isolation then finds the records."""

        async def lookup() -> None:
            pool = await self.pool()
            async with pool.acquire() as conn:
                await self.master.ensure(conn, records)

        await retry(lookup, what="silver master lookup", on_retry=self.on_db_retry)
        try:
            return await asyncio.to_thread(self._refine, records)
        except Exception:
            return None

    def _refine(self, records: Sequence[DecodedRecord]) -> Refined:
        stores, products = self.master.stores, self.master.products
        ctx = Context(datetime.now(UTC), self.allowed_skew, stores, products)
        return self.refiner.refine(records, stores, products, ctx)

    async def _write_part(
        self,
        part: Sequence[DecodedRecord],
        prepared: Refined | None,
        results: list[repo.MergeResult],
        recheck_master: bool,
        reenrich: bool,
    ) -> None:
        async def attempt(records: Sequence[DecodedRecord]) -> None:
            # The refined part serves its first attempt; the halves of a bisection refine anew.
            refined = prepared if records is part else None
            results.append(await self._process(records, refined, recheck_master, reenrich))

        await isolate(part, attempt, self._keep_unprocessable, layer=LAYER)

    async def _keep_unprocessable(self, record: DecodedRecord, reason: str, detail: str) -> None:
        quarantine, lineage = unprocessable_rows(record, reason, detail)

        async def write() -> None:
            pool = await self.pool()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(repo.MERGE_QUARANTINE, *repo.columns([quarantine], 9))
                if lineage is not None:
                    await conn.execute(repo.MERGE_LINEAGE, *repo.columns([lineage], 3))

        await retry(write, what="silver quarantine", on_retry=self.on_db_retry)
        RECORDS_REJECTED.labels(LAYER, rules.UNPROCESSABLE).inc()

    async def _process(
        self,
        unique: Sequence[DecodedRecord],
        refined: Refined | None,
        recheck_master: bool,
        reenrich: bool,
    ) -> repo.MergeResult:
        started = time.perf_counter()
        merged, result = await retry(
            partial(self._merge, unique, refined, reenrich),
            what="silver batch",
            raise_on=(CANCELLED_STATEMENT,),  # the isolation writes it in halves
            on_retry=self.on_db_retry,
        )
        BATCH_FLUSH.labels(LAYER).observe(time.perf_counter() - started)
        self._observe(merged, unique, result)
        late = merged.waiting_stores or merged.unknown_skus
        if recheck_master and late and self.on_late_master is not None:
            # The master record may have been committed while this batch was in flight: the
            # master handler's own re-check then ran before our rows existed. Check again.
            await self.on_late_master(sorted(merged.waiting_stores), sorted(merged.unknown_skus))
        return result

    async def _merge(
        self, records: Sequence[DecodedRecord], refined: Refined | None, reenrich: bool
    ) -> tuple[Refined, repo.MergeResult]:
        pool = await self.pool()
        async with pool.acquire() as conn:
            if refined is None:
                await self.master.ensure(conn, records)
                refined = self._refine(records)
            async with conn.transaction():
                return refined, await repo.write(conn, refined, reenrich=reenrich)

    def _observe(
        self, refined: Refined, records: Sequence[DecodedRecord], result: repo.MergeResult
    ) -> None:
        RECORDS_WRITTEN.labels(LAYER, "silver_transactions_cleaned").inc(
            result.changed_transactions
        )
        for rule, n in refined.quarantined.items():
            RECORDS_REJECTED.labels(LAYER, rule).inc(n)
        for rule, n in refined.warned.items():
            RECORDS_WARNED.labels(LAYER, rule).inc(n)
        now = datetime.now(UTC)
        freshness, lateness = FRESHNESS.labels(LAYER), EVENT_LATENESS.labels(LAYER)
        for occurred in refined.event_times:
            lateness.observe(max(0.0, (now - occurred).total_seconds()))
        for record in records:
            freshness.observe(max(0.0, (now - record.kafka_timestamp).total_seconds()))

    async def reprocess(
        self, rows: Sequence[BronzeRecordRow], *, reenrich: bool = False
    ) -> repo.MergeResult:
        """Run bronze rows (quarantined, or lacking master data) through the same pipeline.

        Checked again for late master data after the commit, like a streaming batch: with
        two workers, another one may commit a product these rows sell while they are in
        flight, and its own re-check ran before they were in silver
        (tests/integration/test_silver_late_master_race.py). This ends: the handler puts
        what it found in the cache before re-processing, so each round needs master data
        committed during the round before."""
        return await self.process([decoded(row) for row in rows], reenrich=reenrich)


def decoded(row: BronzeRecordRow) -> DecodedRecord:
    return DecodedRecord(
        bronze_id=row.bronze_id,
        source_system=row.source_system,
        kafka_timestamp=row.kafka_timestamp.astimezone(UTC),
        raw=with_kind(_from_jsonb(row.raw), row.source_system, row.kind),
        batch_id=row.batch_id,
        partner=row.partner,
    )


def _from_jsonb(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=_integer)


def _integer(text: str) -> int | Decimal:
    """An integer of jsonb's text. jsonb gives a number back in plain digits (``1e5000`` as
    5,001 of them), past what ``int()`` reads (``sys.get_int_max_str_digits()``, 4,300 by
    default): those are decimals, as streaming read them from the text bronze received."""
    limit = sys.get_int_max_str_digits()
    return int(text) if not limit or len(text) <= limit else Decimal(text)
