"""``scout simulate --format``: the same events as plain JSON, JSON Schema or Avro frames.

With several formats (``--format json,json-sr,avro``) the fault-free source records take
them in turn, so one topic carries all three, as in a shop whose producers migrate one by
one. Framing uses confluent-kafka's own async serializers (the wire format a Confluent
producer writes), with the subjects ``scout schemas register`` creates
(:mod:`services.common.registered_schemas`, registered first if missing). Faulty records stay
plain JSON: most of them could not be encoded under a schema at all, and their expected
destination is about the fault, not the format.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from confluent_kafka.schema_registry._async.avro import AsyncAvroSerializer
from confluent_kafka.schema_registry._async.json_schema import AsyncJSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from services.common import registered_schemas, registry
from services.common.kafka import Topics
from services.simulator import records as r

PLAIN = "json"
FORMAT_NAMES = (PLAIN, *registry.FORMATS)  # json, json-sr, avro


def parse_formats(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if not names or unknown:
        raise ValueError(f"formats are {', '.join(FORMAT_NAMES)} (comma-separated)")
    return names


class Framer:
    """Turns fault-free POS / API / IoT records into the next format of the rotation."""

    def __init__(self, client: Any, topics: Topics, names: dict[str, str],
                 formats: Sequence[str]) -> None:  # fmt: skip
        self.client = client
        self.topics = topics
        self.names = names  # logical topic → real topic
        self.formats = tuple(formats)
        self.counts: Counter[str] = Counter()
        self._turn = 0
        self._serializers: dict[tuple[str, str, str], Any] = {}

    async def prepare(self) -> None:
        """Register Scout's subjects (idempotent) so the serializers find their schemas."""
        if all(f == PLAIN for f in self.formats):
            return
        items = registered_schemas.published(self.topics)
        for outcome in await registered_schemas.register_all(self.client, items):
            if not outcome.ok:
                raise RuntimeError(f"cannot register {outcome.subject}: {outcome.message}")

    async def apply(self, records: Sequence[r.SimRecord]) -> list[r.SimRecord]:
        out = []
        for record in records:
            fmt = PLAIN
            if record.fault is None and record.topic in (r.POS, r.API, r.IOT):
                fmt = self.formats[self._turn % len(self.formats)]
                self._turn += 1
            if fmt != PLAIN:
                record = await self._encode(record, registry.FORMATS[fmt])
            self.counts[fmt] += 1
            out.append(record)
        return out

    async def _encode(self, record: r.SimRecord, schema_type: str) -> r.SimRecord:
        payload = json.loads(record.value)
        kind = payload["schema"]
        topic = self.names[record.topic]
        serializer = await self._serializer(topic, kind, schema_type)
        value = await serializer(payload, SerializationContext(topic, MessageField.VALUE))
        return replace(record, value=value)

    async def _serializer(self, topic: str, kind: str, schema_type: str) -> Any:
        key = (topic, kind, schema_type)
        if key not in self._serializers:
            subject = registry.subject(topic, kind, schema_type)
            text = registered_schemas.schema_text(kind, schema_type)
            conf = {"auto.register.schemas": False,
                    "subject.name.strategy": lambda _ctx, _name: subject}  # fmt: skip
            if schema_type == registry.AVRO:
                self._serializers[key] = await AsyncAvroSerializer(self.client, text, conf=conf)
            else:
                self._serializers[key] = await AsyncJSONSerializer(text, self.client, conf=conf)
        return self._serializers[key]
