"""Bronze worker: the three source topics in batches, bronze rows and a handoff out.

One :class:`~services.common.batch_consumer.DirectBatchConsumer` (aiokafka ``getmany``, in
the Faust app's consumer group) is subscribed to the three source topics. Per batch:
transform (pure) → one database transaction (retried with backoff while PostgreSQL is
away) → hand the landed rows to silver → return, and only then are the batch's offsets
committed. The Faust app is still the worker (web server with ``/metrics`` and ``/ready``,
lag timer, producer for the handoff, SIGTERM), but its own consumer is not started.

Why no setting for the former path (one Faust agent per source topic): Faust's per-event
stream machinery was two thirds of this worker's CPU and capped it at ~12k records/s
(``bench/results/bronze.md``). Both paths cannot share the consumer group — Faust's
consumer joins it with its own assignment protocol, which the broker refuses to mix with
aiokafka's — so keeping both would mean two boot strategies, two readiness rules and two
sets of tests for the same guarantees. One way is better than two.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from faust.app.base import BootStrategy

from services.bronze_writer.framing import FrameDecoder, RegistryUnavailable
from services.bronze_writer.repo import BronzeRepo, WriteResult
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.batch_consumer import DirectBatchConsumer, KafkaRecord
from services.common.handoff import encode_landed
from services.common.kafka import Topics, kafka_time, make_app, topics_for
from services.common.lifecycle import retry
from services.common.metrics import (
    BATCH_FLUSH,
    FRESHNESS,
    RECORDS_CONSUMED,
    RECORDS_REJECTED,
    RECORDS_WRITTEN,
)
from services.common.registry import is_framed
from services.common.service import ServiceContext
from services.common.settings import Settings

log = logging.getLogger(__name__)
LAYER = "bronze"


class BronzeWriter:
    def __init__(self, ctx: ServiceContext, landed_topic: Any, topics: Topics) -> None:
        self.ctx = ctx
        self.landed_topic = landed_topic
        self.repo = BronzeRepo()
        self.max_bytes = ctx.settings.max_record_bytes
        self.source_systems = {name: topics.source_system(name) for name in topics.sources}
        self.frames = FrameDecoder(ctx.settings.registry_url())

    async def handle(self, records: Sequence[KafkaRecord]) -> None:
        """Land one batch of source records (any mix of the three topics)."""
        # Writer schemas of registry-framed records first: an unreachable registry holds the
        # batch (and its offsets) like an unreachable database, it never rejects records.
        await retry(
            partial(self.frames.resolve, [r.value for r in records]),  # a list: retried
            what="schema registry lookup",
            retry_on=(RegistryUnavailable,),
        )
        landing = Landing()
        per_topic: Counter[str] = Counter()
        for record in records:
            topic = record.topic
            per_topic[topic] += 1
            kafka = KafkaCoordinates(
                topic, record.partition, record.offset, kafka_time(record.timestamp / 1000)
            )
            value = record.value
            unframed = self.frames.unframe(value) if value and is_framed(value) else None
            landing.extend(land(value, self.source_systems[topic], kafka, self.max_bytes, unframed))
        self.frames.flush_metrics()
        for topic, count in per_topic.items():
            RECORDS_CONSUMED.labels(LAYER, topic).inc(count)
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
        for row in result.landed:
            freshness.observe((now - row.kafka.timestamp).total_seconds())

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
    # The source topics are consumed by the batch consumer below, not by Faust's consumer
    # (which would join the same group with another assignment protocol).
    app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False)
    topics = topics_for(settings)
    ctx = ServiceContext(settings, LAYER, app)
    landed = app.topic(topics.bronze_landed, value_type=bytes, key_type=bytes)
    writer = BronzeWriter(ctx, landed, topics)
    consumer = DirectBatchConsumer.for_app(app, settings, topics.sources, writer.handle,
                                           layer=LAYER)  # fmt: skip
    ctx.count_partitions_with(consumer.assigned_count)
    return app
