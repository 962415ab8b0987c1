"""The harness gives a real broker: produce to and consume from an isolated topic."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer

from services.common.kafka import client_security, make_producer, topics_for
from services.common.settings import Settings

pytestmark = pytest.mark.integration


async def test_produce_and_consume_on_the_real_broker(settings: Settings) -> None:
    topic = topics_for(settings).pos
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(100):
            await producer.send(topic, f'{{"n": {i}}}'.encode(), key=f"S{i % 7}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{settings.topic_prefix}roundtrip",
        **client_security(settings),
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        while len(seen) < 100:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"only {len(seen)} of 100 records came back"
            for records in batch.values():
                seen.extend(r.value for r in records)
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(f'{{"n": {i}}}'.encode() for i in range(100))
