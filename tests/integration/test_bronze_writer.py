"""Bronze writer on the real broker and database: exact accounting, crash safety, outages."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Producer

from services.common.kafka import topics_for
from services.common.settings import Settings
from tests.support import ServiceProcess, publish, wait_for

pytestmark = pytest.mark.integration

MAX_BYTES = 2048  # small limit so the "too large" records stay small


def mixed_records(settings: Settings, n: int, seed: int = 3) -> tuple[list, Counter]:
    """Valid and broken records over the three source topics, with the expected outcome."""
    topics = topics_for(settings)
    rng = random.Random(seed)
    records: list[tuple[str, bytes | None, bytes]] = []
    expected: Counter = Counter()
    for i in range(n):
        roll = rng.random()
        if roll < 0.55:
            body = {
                "schema": "pos.transaction/1",
                "event_id": f"E{i}",
                "store_id": "S0001",
                "total_amount": "12.50",
                "version": 1,
            }
            records.append((topics.pos, b"S0001", json.dumps(body).encode()))
            expected["pos_rows"] += 1
        elif roll < 0.75:
            body = {
                "schema": "iot.reading/1",
                "device_id": "D1",
                "store_id": "S0001",
                "kind": "footfall",
                "value": rng.randint(1, 5),
                "occurred_at": "2026-11-25T10:15:00+08:00",
            }
            records.append((topics.iot, b"D1", json.dumps(body).encode()))
            expected["iot_rows"] += 1
        elif roll < 0.90:
            size = rng.randint(0, 4)
            spend = ",".join('{"type": "campaign_spend", "spend": 1500.00}' for _ in range(size))
            text = (
                f'{{"schema": "api.batch/1", "batch_id": "B{i}", "partner": "grabmart", '
                f'"records": [{spend}]}}'
            )
            records.append((topics.api, f"B{i}".encode(), text.encode()))
            expected["api_batches"] += 1
            expected["api_rows"] += size
        else:
            topic = rng.choice([topics.pos, topics.iot, topics.api])
            value = rng.choice(
                [
                    b"not json {",
                    b"[1, 2, 3]",
                    b"\xff\xfe\x00garbage",
                    b'"just a string"',
                    b'{"big": "' + b"x" * MAX_BYTES + b'"}',
                ]
            )
            records.append((topic, None, value))
            expected[f"errors:{topic}"] += 1
    return records, expected


async def bronze_counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT kafka_topic, source_system, count(*) AS n, "
        "count(DISTINCT (kafka_topic, kafka_partition, kafka_offset, record_index)) AS d "
        "FROM scout.bronze_transactions_raw GROUP BY 1, 2"
    )
    counts = {f"{r['source_system']}_rows": r["n"] for r in rows}
    counts |= {f"distinct:{r['source_system']}": r["d"] for r in rows}
    for r in await db.fetch(
        "SELECT kafka_topic, count(*) AS n FROM scout.bronze_error_log GROUP BY 1"
    ):
        counts[f"errors:{r['kafka_topic']}"] = r["n"]
    counts["api_batches"] = await db.fetchval("SELECT count(*) FROM scout.bronze_ingestion_batches")
    return counts


async def assert_landed_exactly(db: asyncpg.Connection, expected: Counter[str]) -> None:
    """Bronze holds exactly the expected rows, batches and error-log rows, each once."""

    async def all_landed() -> bool:
        counts = await bronze_counts(db)
        return all(counts.get(k, 0) == v for k, v in expected.items())

    await wait_for(all_landed, timeout=120)
    await asyncio.sleep(2)  # nothing more may arrive
    counts = await bronze_counts(db)
    for key, value in expected.items():
        assert counts.get(key, 0) == value, key
    for source in ("pos", "iot", "api"):
        assert counts[f"distinct:{source}"] == counts[f"{source}_rows"]


@pytest.fixture
def bronze_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_record_bytes": MAX_BYTES})


async def test_every_record_is_accounted_for_exactly(
    bronze_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    records, expected = mixed_records(bronze_settings, 10_000)
    service = ServiceProcess(
        "bronze", bronze_settings, tmp_path, SCOUT_MAX_RECORD_BYTES=str(MAX_BYTES)
    ).start()
    try:
        assert await publish(bronze_settings, records) == 10_000

        await assert_landed_exactly(db, expected)
        reasons = {r["reason"] for r in await db.fetch("SELECT reason FROM scout.bronze_error_log")}
        assert reasons == {"not_json", "not_object", "not_utf8", "too_large"}
        assert service.metric("scout_records_consumed_total", layer="bronze") == 10_000
        assert service.metric("scout_records_rejected_total", layer="bronze") == sum(
            v for k, v in expected.items() if k.startswith("errors:")
        )
    finally:
        assert service.stop() == 0, service.log_tail()


async def test_api_batch_rows_keep_numbers_exactly(
    bronze_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    topics = topics_for(bronze_settings)
    envelope = (
        b'{"schema": "api.batch/1", "batch_id": "b-1", "partner": "grabmart", '
        b'"sent_at": "2026-11-25T10:20:00+08:00", "records": [{"type": "campaign_spend", '
        b'"spend": 1500.00, "date": "2026-11-25"}, {"type": "transaction", "total_amount": 0.10}]}'
    )
    service = ServiceProcess("bronze", bronze_settings, tmp_path).start()
    try:
        await publish(bronze_settings, [(topics.api, b"b-1", envelope)])

        async def landed() -> bool:
            return bool(await db.fetchval("SELECT count(*) = 2 FROM scout.bronze_transactions_raw"))

        await wait_for(landed, timeout=60)
        rows = await db.fetch(
            "SELECT raw_data::text AS raw, batch_id, record_index, schema_name "
            "FROM scout.bronze_transactions_raw ORDER BY record_index"
        )
        assert (
            rows[0]["raw"] == '{"date": "2026-11-25", "type": "campaign_spend", "spend": 1500.00}'
        )
        assert rows[1]["raw"] == '{"type": "transaction", "total_amount": 0.10}'
        assert {r["batch_id"] for r in rows} == {"b-1"}
        batch = await db.fetchrow("SELECT * FROM scout.bronze_ingestion_batches")
        assert (batch["batch_id"], batch["partner"], batch["record_count"], batch["status"]) == (
            "b-1",
            "grabmart",
            2,
            "landed",
        )
        assert batch["sent_at"].isoformat() == "2026-11-25T02:20:00+00:00"
    finally:
        service.stop()


def pos_records(settings: Settings, n: int) -> Iterator[tuple[str, bytes, bytes]]:
    topic = topics_for(settings).pos
    for i in range(n):
        store = f"S{i % 40:04d}".encode()
        body = b'{"schema": "pos.transaction/1", "event_id": "K%d", "total_amount": 10.5}' % i
        yield topic, store, body


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    total = 50_000
    await publish(settings, pos_records(settings, total))
    first = ServiceProcess("bronze", settings, tmp_path).start()

    async def some_landed() -> bool:
        n = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
        return bool(5_000 < n < total)

    await wait_for(some_landed, timeout=120, interval=0.1)
    first.kill()
    landed_at_kill = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
    assert landed_at_kill < total, "the kill came too late to prove anything"

    second = ServiceProcess("bronze", settings, tmp_path).start()
    try:

        async def all_landed() -> bool:
            return bool(
                await db.fetchval("SELECT count(*) >= $1 FROM scout.bronze_transactions_raw", total)
            )

        await wait_for(all_landed, timeout=180)
        await asyncio.sleep(2)
        row = await db.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (kafka_partition, kafka_offset)) AS d, "
            "count(DISTINCT raw_data->>'event_id') AS e FROM scout.bronze_transactions_raw"
        )
        assert (row["n"], row["d"], row["e"]) == (total, total, total)
        # The restarted worker saw records the first one had landed but not committed.
        assert second.metric("scout_records_consumed_total", layer="bronze") >= (
            total - landed_at_kill
        )
    finally:
        second.stop()


def librdkafka_config(settings: Settings, **extra: object) -> dict[str, object]:
    """A confluent-kafka (librdkafka) producer's settings for the stack under test."""
    config: dict[str, object] = {"bootstrap.servers": settings.kafka_bootstrap,
                                 "security.protocol": settings.kafka_security_protocol}  # fmt: skip
    if settings.kafka_sasl_username is not None and settings.kafka_sasl_password is not None:
        config |= {"sasl.mechanism": settings.kafka_sasl_mechanism,
                   "sasl.username": settings.kafka_sasl_username,
                   "sasl.password": settings.kafka_sasl_password.get_secret_value()}  # fmt: skip
    if settings.kafka_ssl_cafile is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    return config | extra


CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


async def test_a_librdkafka_producer_with_every_compression_codec_lands_exactly(
    bronze_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Producers other than Scout's own: librdkafka (the client under confluent-kafka, the Go,
    .NET and Node clients), each compression codec Kafka has, record headers, null keys,
    a record batch per codec with records of every source and the payloads bronze refuses.
    Every record is accounted for exactly, as with aiokafka's."""
    records, expected = mixed_records(bronze_settings, 2_000, seed=11)
    service = ServiceProcess(
        "bronze", bronze_settings, tmp_path, SCOUT_MAX_RECORD_BYTES=str(MAX_BYTES)
    ).start()
    try:
        for n, codec in enumerate(CODECS):
            producer = Producer(librdkafka_config(
                bronze_settings, **{"compression.type": codec, "linger.ms": 20,
                                    "enable.idempotence": True}))  # fmt: skip
            for i, (topic, key, value) in enumerate(records[n :: len(CODECS)]):
                headers = [("traceparent", f"00-{i:032x}-{i:016x}-01".encode()), ("empty", None)]
                producer.produce(topic, value=value, key=key, headers=headers if i % 2 else None)
            assert await asyncio.to_thread(producer.flush, 60) == 0, codec

        await assert_landed_exactly(db, expected)
        assert service.metric("scout_records_consumed_total", layer="bronze") == len(records)
        assert service.metric("scout_batch_retries_total", kind="error") == 0
    finally:
        assert service.stop() == 0, service.log_tail()
