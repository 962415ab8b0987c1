"""Silver Faust agents: bronze-landed batches, and the two master-data topics.

A store arriving in master data re-processes the records quarantined as ``unknown_store``
for it, in the same worker, right after the store is committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import asyncpg
import faust

from services.common.batching import consume_in_batches
from services.common.errors import ConfigError
from services.common.events import ProductRecord, Rejection, StoreRecord, parse_master, rules
from services.common.isolation import isolate
from services.common.kafka import kafka_time, make_app, topics_for
from services.common.lifecycle import CANCELLED_STATEMENT, retry
from services.common.metrics import (
    RECORDS_CONSUMED,
    RECORDS_REJECTED,
    RECORDS_WARNED,
    RECORDS_WRITTEN,
)
from services.common.service import ServiceContext
from services.common.settings import Settings
from services.silver_enricher import repo
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, UNKNOWN_STORE
from services.silver_enricher.pii import (
    DEV_KEY,
    MIN_SECRET_CHARS,
    PiiKey,
    is_placeholder,
    parse_key,
    scrub_text,
)
from services.silver_enricher.pipeline import LAYER, SilverPipeline
from services.silver_enricher.transform import Refiner

log = logging.getLogger(__name__)
LANDED_MESSAGES_PER_BATCH = 20  # each message already carries up to thousands of records
MESSAGE_NAMESPACE = uuid.UUID("0b5c3f0e-8a0e-4f7e-a2a9-6f7f1d2c9e31")


def pii_key(settings: Settings) -> PiiKey:
    """The pseudonymisation key. Outside an explicit SCOUT_ENV=dev, a missing or placeholder
    key stops the service with what to set (the default environment is not dev)."""
    raw = settings.pii_key.get_secret_value() if settings.pii_key is not None else ""
    if raw:
        key = parse_key(raw, settings.pii_key_id)
        if settings.env != "dev" and is_placeholder(key):
            raise ConfigError(
                f"SCOUT_PII_KEY (id {key.id!r}) is a placeholder or shorter than "
                f"{MIN_SECRET_CHARS} characters: set SCOUT_PII_KEY=<key id>:<secret>, e.g. "
                "k2026a:$(openssl rand -hex 32), or SCOUT_ENV=dev for a local run"
            )
        return key
    if settings.env == "dev":
        log.warning("SCOUT_PII_KEY is not set: using the dev-only key (never in production)")
        return DEV_KEY
    raise ConfigError(
        f"SCOUT_PII_KEY is not set and SCOUT_ENV is {settings.env!r}, not dev: set "
        "SCOUT_PII_KEY=<key id>:<secret> (silver only; e.g. k2026a:$(openssl rand -hex 32)), "
        "or SCOUT_ENV=dev to run locally with the dev-only key"
    )


class MasterHandler:
    """Upserts master records; quarantines the ones that do not parse, and isolates the ones
    the database refuses (quarantined as ``unprocessable``)."""

    def __init__(self, ctx: ServiceContext, pipeline: SilverPipeline) -> None:
        self.ctx = ctx
        self.pipeline = pipeline

    async def handle(self, events: Sequence[Any]) -> None:
        RECORDS_CONSUMED.labels(LAYER, events[0].message.topic).inc(len(events))
        await isolate(events, self._handle, self._keep_unprocessable, layer=LAYER)

    async def _keep_unprocessable(self, event: Any, reason: str, detail: str) -> None:
        message = event.message
        row = (message_id(message), "master", rules.UNPROCESSABLE, None, f"{reason}: {detail}",
               None, None, None, kafka_time(message.timestamp))  # fmt: skip

        async def write() -> None:
            pool = await self.ctx.pool()
            async with pool.acquire() as conn:
                await conn.execute(repo.MERGE_QUARANTINE, *repo.columns([row], 9))

        await retry(write, what="silver master quarantine", on_retry=self.ctx.db_failed)
        RECORDS_REJECTED.labels(LAYER, rules.UNPROCESSABLE).inc()

    async def _handle(self, events: Sequence[Any]) -> None:
        stores: dict[str, StoreRecord] = {}
        products: dict[str, ProductRecord] = {}
        rejected = []
        for event in events:
            message = event.message
            parsed = parse_master(message.value or b"")
            # Names are free text (a sari-sari store named after its owner's mobile): scrubbed
            # like every other free-text field that reaches silver.
            if isinstance(parsed, StoreRecord):
                # the last record of a key wins, as compacted
                stores[parsed.store_id] = parsed.model_copy(
                    update={"name": scrub_text(parsed.name)}
                )
            elif isinstance(parsed, ProductRecord):
                products[parsed.sku] = parsed.model_copy(update={"name": scrub_text(parsed.name)})
            else:
                rejected.append((message, parsed))
        await retry(
            partial(self._write, list(stores.values()), list(products.values()), rejected),
            what="silver master batch",
            raise_on=(CANCELLED_STATEMENT,),  # the isolation writes it in halves
            on_retry=self.ctx.db_failed,
        )
        self.ctx.db_ok()
        self.pipeline.master.add(list(stores.values()), list(products.values()))
        if stores or products:
            await self.resolve_late_master(sorted(stores), sorted(products))

    async def _write(self, stores: list[StoreRecord], products: list[ProductRecord],
                     rejected: list[tuple[Any, Rejection]]) -> None:  # fmt: skip
        pool = await self.ctx.pool()
        async with pool.acquire() as conn, conn.transaction():
            if stores:
                await repo.upsert_stores(conn, stores)
            if products:
                await repo.upsert_products(conn, products)
            if rejected:
                await conn.execute(repo.MERGE_QUARANTINE, *repo.columns([
                    (message_id(m), "master", r.rule, r.field, r.detail, None, None, None,
                     kafka_time(m.timestamp)) for m, r in rejected
                ], 9))  # fmt: skip
        RECORDS_WRITTEN.labels(LAYER, "silver_master_stores").inc(len(stores))
        RECORDS_WRITTEN.labels(LAYER, "silver_master_products").inc(len(products))
        for _, rejection in rejected:
            RECORDS_REJECTED.labels(LAYER, rejection.rule).inc()

    async def resolve_late_master(self, store_ids: Sequence[str], skus: Sequence[str]) -> int:
        """Re-process what lacked these stores or products, for those that exist now:
        ``unknown_store`` records wait in quarantine; transactions with an unknown SKU were
        kept with the item enriched as 'unknown' and are enriched again."""
        pool = await self.ctx.pool()
        waiting: list[asyncpg.Record] = []
        unenriched: list[asyncpg.Record] = []
        async with pool.acquire() as conn:
            stores = await repo.load_stores(conn, list(store_ids)) if store_ids else {}
            if stores:
                waiting = await conn.fetch(repo.OPEN_QUARANTINE, UNKNOWN_STORE, sorted(stores))
            products = await repo.load_products(conn, list(skus)) if skus else {}
            if products:
                unenriched = await conn.fetch(repo.UNENRICHED_BY_SKU, sorted(products))
        # Known from here on: the re-processing below checks once more for master data that
        # arrived meanwhile (SilverPipeline.reprocess), and must not find these unknown again.
        self.pipeline.master.add(list(stores.values()), list(products.values()))
        if waiting:
            log.info("re-processing %d records that waited for their store", len(waiting))
            await self.pipeline.reprocess([repo.bronze_record(r) for r in waiting])
        if unenriched:
            log.info("enriching %d transactions again with new products", len(unenriched))
            await self.pipeline.reprocess(
                [repo.bronze_record(r) for r in unenriched], reenrich=True
            )
        return len(waiting) + len(unenriched)


def message_id(message: Any) -> uuid.UUID:
    """The quarantine id of a message that has no bronze id (a master record, or a
    bronze-landed message that is not bronze's): from its Kafka coordinates."""
    return uuid.uuid5(MESSAGE_NAMESPACE, f"{message.topic}:{message.partition}:{message.offset}")


async def keep_unreadable(ctx: ServiceContext, unreadable: Sequence[tuple[Any, str]]) -> None:
    """Quarantine bronze-landed messages that are not bronze's, by their coordinates (Kafka
    keeps the bytes for its retention; any records of bronze's are in bronze), so silver
    goes on behind them instead of retrying them forever."""
    rows = [(message_id(m), "handoff", rules.UNPROCESSABLE, None,
             f"{m.topic}:{m.partition}:{m.offset}: {why}", None, None, None,
             kafka_time(m.timestamp)) for m, why in unreadable]  # fmt: skip

    async def write() -> None:
        pool = await ctx.pool()
        async with pool.acquire() as conn:
            await conn.execute(repo.MERGE_QUARANTINE, *repo.columns(rows, 9))

    await retry(write, what="silver hand-off quarantine", on_retry=ctx.db_failed)
    log.error("%d bronze-landed message(s) not bronze's were quarantined: %s", len(rows),
              "; ".join(row[4] for row in rows[:3]))  # fmt: skip
    RECORDS_REJECTED.labels(LAYER, rules.UNPROCESSABLE).inc(len(rows))


def build_app(settings: Settings) -> faust.App:
    key = pii_key(settings)
    app = make_app(settings, LAYER)
    topics = topics_for(settings)
    ctx = ServiceContext(settings, LAYER, app)
    pipeline = SilverPipeline(
        ctx.pool, Refiner(key, DEFAULT_EXPECTATIONS),
        allowed_skew_s=settings.allowed_clock_skew_s, on_db_retry=ctx.db_failed,
    )  # fmt: skip
    masters = MasterHandler(ctx, pipeline)
    for expectation in DEFAULT_EXPECTATIONS:  # every rule's series exists from the start, at 0
        (RECORDS_WARNED if expectation.action == "warn" else RECORDS_REJECTED).labels(
            LAYER, expectation.name
        )
    pipeline.on_late_master = masters.resolve_late_master

    async def handle_landed(events: Sequence[Any]) -> None:
        consumed = RECORDS_CONSUMED.labels(LAYER, events[0].message.topic)
        unreadable: list[tuple[Any, str]] = []

        def skipped(n: int, why: str) -> None:
            unreadable.append((events[n].message, why))

        await pipeline.process_landed(
            [e.message.value or b"" for e in events], consumed.inc, skipped
        )
        if unreadable:
            await keep_unreadable(ctx, unreadable)
        ctx.db_ok()

    landed = app.topic(topics.bronze_landed, value_type=bytes, key_type=bytes)

    @app.agent(landed, name="silver-landed")
    async def landed_agent(stream: Any) -> None:
        await consume_in_batches(stream, handle_landed, layer=LAYER,
                                 max_records=LANDED_MESSAGES_PER_BATCH,
                                 within_s=settings.batch_wait_s)  # fmt: skip

    master_topic = app.topic(*topics.compacted, value_type=bytes, key_type=bytes)

    @app.agent(master_topic, name="silver-master")
    async def master_agent(stream: Any) -> None:
        await consume_in_batches(stream, masters.handle, layer=LAYER,
                                 max_records=settings.batch_max,
                                 within_s=settings.batch_wait_s)  # fmt: skip

    return app
