"""The schemas Scout publishes to a Schema Registry: which subject holds which schema.

Every source and master topic gets, for each event kind it carries, the exported JSON
Schema and the Avro schema derived from it (:mod:`services.common.avro_schemas`), under the
subjects of :func:`services.common.registry.subject`. :func:`register_all` sets each
subject to BACKWARD compatibility before registering (a registry's default may be NONE), so
the registry refuses an incompatible change with its own message; :func:`check_all` asks
the same question without registering anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.common import registry
from services.common.avro_schemas import avro_schema_for
from services.common.events import json_schema_for
from services.common.kafka import Topics

COMPATIBILITY = "BACKWARD"
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


@dataclass(frozen=True)
class Published:
    topic: str
    kind: str
    schema_type: str  # JSON | AVRO
    schema_str: str

    @property
    def subject(self) -> str:
        return registry.subject(self.topic, self.kind, self.schema_type)


@dataclass(frozen=True)
class Outcome:
    subject: str
    ok: bool
    schema_id: int | None = None
    message: str = ""


def kinds_by_topic(topics: Topics) -> dict[str, tuple[str, ...]]:
    return {
        topics.pos: ("pos.transaction/1", "pos.transaction/2"),
        topics.api: ("api.batch/1",),
        topics.iot: ("iot.reading/1",),
        topics.master_stores: ("master.store/1",),
        topics.master_products: ("master.product/1",),
    }


def schema_text(kind: str, schema_type: str, json_schema: dict[str, Any] | None = None) -> str:
    """The registered text of ``kind``: its JSON Schema (exported, or ``json_schema``) or the
    Avro schema derived from it."""
    doc = json_schema if json_schema is not None else json_schema_for(kind)
    if schema_type == registry.AVRO:
        return json.dumps(avro_schema_for(kind, doc))
    # Registries check JSON Schema compatibility with draft-07 tooling (Apicurio 3.x answers
    # "could not determine version" for 2020-12); the exported schemas use nothing newer.
    return json.dumps({**doc, "$schema": JSON_SCHEMA_DIALECT})


def published(
    topics: Topics, json_overrides: dict[str, dict[str, Any]] | None = None
) -> list[Published]:
    """Every (topic, kind, format) Scout registers; ``json_overrides`` (kind → JSON Schema)
    stands in for the exported schema of a kind, e.g. a proposed change to check."""
    overrides = json_overrides or {}
    return [
        Published(topic, kind, schema_type, schema_text(kind, schema_type, overrides.get(kind)))
        for topic, kinds in kinds_by_topic(topics).items()
        for kind in kinds
        for schema_type in (registry.JSON_SCHEMA, registry.AVRO)
    ]


async def register_one(client: Any, item: Published) -> Outcome:
    try:
        await client.set_compatibility(subject_name=item.subject, level=COMPATIBILITY)
        schema_id = await client.register_schema(
            item.subject, Schema(item.schema_str, item.schema_type)
        )
    except SchemaRegistryError as exc:
        return Outcome(item.subject, False, None, _message(exc))
    return Outcome(item.subject, True, int(schema_id))


async def check_one(client: Any, item: Published) -> Outcome:
    try:
        versions = await client.get_versions(item.subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return Outcome(item.subject, True, None, "new subject")
        return Outcome(item.subject, False, None, _message(exc))
    if not versions:
        return Outcome(item.subject, True, None, "new subject")
    try:
        compatible = await client.test_compatibility(
            item.subject, Schema(item.schema_str, item.schema_type)
        )
    except SchemaRegistryError as exc:
        return Outcome(item.subject, False, None, _message(exc))
    if compatible:
        return Outcome(item.subject, True, None, f"compatible with {len(versions)} version(s)")
    return Outcome(item.subject, False, None, f"not {COMPATIBILITY} compatible with the latest")


async def register_all(client: Any, items: list[Published]) -> list[Outcome]:
    return [await register_one(client, item) for item in items]


async def check_all(client: Any, items: list[Published]) -> list[Outcome]:
    return [await check_one(client, item) for item in items]


def _message(exc: SchemaRegistryError) -> str:
    return f"{exc.error_message} (HTTP {exc.http_status_code}, code {exc.error_code})"
