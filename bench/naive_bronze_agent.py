"""Baseline (b) of ``bench/bronze.py``: the naive Faust bronze writer, one INSERT per record.

What a first Faust tutorial would write: iterate the stream event by event, check the value
is a JSON object, and INSERT it into ``scout.bronze_transactions_raw`` (same columns, ids and
role as the real writer) in its own transaction. Faust acknowledges each event after its
INSERT. Run as a process: ``python -m bench.naive_bronze_agent`` with the usual SCOUT_*
environment (topic prefix, database URL).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust
import orjson

from services.bronze_writer.transform import KafkaCoordinates, bronze_id
from services.common.kafka import make_app, topics_for
from services.common.settings import Settings, load_settings

INSERT = """
INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, schema_name,
    kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)
VALUES ($1, $2, 'pos', $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
"""


def record_time(timestamp_s: float) -> datetime:
    """The Kafka record time as bronze stores it (the bench's records all carry one)."""
    return datetime.fromtimestamp(timestamp_s, UTC)


def build_app(settings: Settings) -> faust.App:
    app = make_app(settings, "naive-bronze", web_enabled=False)
    source = app.topic(topics_for(settings).pos, value_type=bytes, key_type=bytes)
    state: dict[str, Any] = {}

    async def connection() -> asyncpg.Connection:
        if "conn" not in state:
            state["conn"] = await asyncpg.connect(
                settings.database_url.get_secret_value(),
                server_settings={"role": settings.db_role_bronze, "timezone": "UTC"},
            )
        return state["conn"]

    @app.agent(source, name="naive-bronze-pos")
    async def naive(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            value = orjson.loads(message.value)
            if not isinstance(value, dict):
                continue
            kafka = KafkaCoordinates(
                message.topic, message.partition, message.offset, record_time(message.timestamp)
            )
            conn = await connection()
            await conn.execute(
                INSERT, bronze_id(kafka, 0), message.value.decode(), value.get("schema"),
                kafka.topic, kafka.partition, kafka.offset, kafka.timestamp,
            )  # fmt: skip

    return app


def main() -> None:
    settings = load_settings()
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = build_app(settings)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
