"""The harness gives a real broker: produce to and consume from an isolated topic."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.common.kafka import (
    client_security,
    create_topics,
    delete_topics_with_prefix,
    make_producer,
    topics_for,
)
from services.common.kafka_acls import all_acls
from services.common.settings import Settings
from tests.support import settings_env

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


async def _topic_configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration as the broker reports it."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **client_security(settings)
    )
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    return {resource[3]: {entry[0]: entry[1] for entry in resource[4]}
            for response in responses for resource in response.resources}  # fmt: skip


async def test_the_handoff_topic_keeps_records_as_long_as_configured(settings: Settings) -> None:
    """SCOUT_HANDOFF_RETENTION_HOURS is the hand-off topic's retention when the pipeline
    creates it; the source topics keep the cluster's (7 days, Kafka's default)."""
    own = settings.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}.", "handoff_retention_hours": 30}
    )
    topics = topics_for(own)
    await create_topics(own)
    try:
        configs = await _topic_configs(own, [topics.bronze_landed, topics.pos, topics.gold_shards])
    finally:
        await delete_topics_with_prefix(own, own.topic_prefix)
    assert configs[topics.bronze_landed]["retention.ms"] == str(30 * 3_600_000)
    assert configs[topics.pos]["retention.ms"] == str(7 * 24 * 3_600_000)
    assert configs[topics.gold_shards]["retention.ms"] == str(7 * 24 * 3_600_000)


def test_granting_acls_says_whether_the_broker_enforces_them(settings: Settings) -> None:
    """`scout kafka acls --grant`: on a broker with an authorizer (the secure stack) the list
    is in force; on one without (the plaintext stack) the command says so instead of a trace."""
    run = subprocess.run([sys.executable, "-m", "services.cli", "kafka", "acls", "--grant"],
                         env=settings_env(settings), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    if settings.kafka_security_protocol == "PLAINTEXT":
        assert run.returncode == 2, run.stderr[-2000:]
        assert "has no authorizer, so it enforces no ACLs" in run.stderr, run.stderr[-2000:]
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"{len(all_acls(settings))} ACLs in force" in run.stdout
