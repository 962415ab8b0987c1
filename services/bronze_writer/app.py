"""Bronze Faust agents: one per source topic, batches in, bronze rows and a handoff out.

Per batch: transform (pure) → one database transaction (retried with backoff while
PostgreSQL is away) → hand the landed rows to silver → return, and only then Faust
acknowledges the batch's offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust

from services.bronze_writer.repo import BronzeRepo, WriteResult
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.batching import consume_in_batches
from services.common.handoff import encode_landed
from services.common.kafka import kafka_time, make_app, topics_for
from services.common.lifecycle import retry
from services.common.metrics import (
    BATCH_FLUSH,
    FRESHNESS,
    PUBLISH_FRESHNESS,
    RECORDS_CONSUMED,
    RECORDS_REJECTED,
    RECORDS_WRITTEN,
)
from services.common.service import ServiceContext
from services.common.settings import Settings

log = logging.getLogger(__name__)
LAYER = "bronze"


class BronzeWriter:
    def __init__(self, ctx: ServiceContext, landed_topic: Any) -> None:
        self.ctx = ctx
        self.landed_topic = landed_topic
        self.repo = BronzeRepo()
        self.max_bytes = ctx.settings.max_record_bytes

    async def handle(self, source_system: str, events: Sequence[Any]) -> None:
        landing = Landing()
        for event in events:
            message = event.message
            kafka = KafkaCoordinates(
                message.topic, message.partition, message.offset, kafka_time(message.timestamp)
            )
            landing.extend(land(message.value, source_system, kafka, self.max_bytes))
        RECORDS_CONSUMED.labels(LAYER, events[0].message.topic).inc(len(events))
        started = time.perf_counter()
        result = await retry(
            partial(self._write, landing), what="bronze batch", on_retry=self.ctx.db_failed
        )
        self.ctx.db_ok()
        BATCH_FLUSH.labels(LAYER).observe(time.perf_counter() - started)
        self._observe(result)
        await self._hand_off(result)

    async def _write(self, landing: Landing) -> WriteResult:
        pool = await self.ctx.pool()
        async with pool.acquire() as conn:
            return await self.repo.write(conn, landing)

    def _observe(self, result: WriteResult) -> None:
        RECORDS_WRITTEN.labels(LAYER, "bronze_transactions_raw").inc(result.rows_new)
        for error in result.errors:
            RECORDS_REJECTED.labels(LAYER, error.reason).inc()
        now = datetime.now(UTC)
        freshness = FRESHNESS.labels(LAYER)
        publish = PUBLISH_FRESHNESS.labels(LAYER)
        for row in result.landed:
            # For bronze, event time is the Kafka record time: the payload is not parsed yet.
            age = (now - row.kafka.timestamp).total_seconds()
            freshness.observe(age)
            publish.observe(age)

    async def _hand_off(self, result: WriteResult) -> None:
        """Publish the landed rows to silver and wait until the broker has them."""
        pending = [
            await self.landed_topic.send(value=payload)
            for payload in encode_landed(row.landed() for row in result.landed)
        ]
        for future in pending:
            await future


def build_app(settings: Settings) -> faust.App:
    app = make_app(settings, LAYER)
    topics = topics_for(settings)
    ctx = ServiceContext(settings, LAYER, app, topics.sources)
    writer = BronzeWriter(ctx, app.topic(topics.bronze_landed, value_type=bytes, key_type=bytes))
    for topic_name in topics.sources:
        source_system = topics.source_system(topic_name)
        source = app.topic(topic_name, value_type=bytes, key_type=bytes)

        async def agent(stream: Any, _source: str = source_system) -> None:
            await consume_in_batches(
                stream,
                partial(writer.handle, _source),
                layer=LAYER,
                max_records=settings.batch_max,
                within_s=settings.batch_wait_s,
            )

        app.agent(source, name=f"bronze-{source_system}")(agent)
    return app
