"""Schema Registry conventions shared by bronze, the simulator and ``scout schemas``.

- Wire format (Confluent): byte 0 is the magic byte ``0``, bytes 1 to 4 the schema id (big
  endian), the rest the payload (JSON text for JSON Schema, Avro binary for Avro). A plain
  JSON record can never start with byte 0, so both kinds share a topic.
- Subjects (Confluent's TopicRecordNameStrategy, one subject per topic, kind and format, so
  ``pos.transaction/1`` and ``/2`` evolve separately under BACKWARD compatibility):
  ``<topic>-<kind>.v<major>`` for JSON Schema (``scout.pos.transactions-pos.transaction.v1``)
  and ``<topic>-<kind>.v<major>.avro`` for Avro.
- Event kind of a writer schema: a JSON Schema's ``title`` when it spells a kind
  (``pos.transaction/1``, as exported), else its ``schema`` property's ``const``; an Avro
  record's name ``<kind with _>_v<major>`` (:mod:`services.common.avro_schemas`). A record's
  own ``schema`` field, when present, still wins in silver.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from typing import Any

from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from services.common.avro_schemas import kind_of_avro

MAGIC = 0
HEADER = struct.Struct(">bI")
JSON_SCHEMA, AVRO = "JSON", "AVRO"
FORMATS = {"json-sr": JSON_SCHEMA, "avro": AVRO}
_KIND = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+/\d+$")


REQUEST_TIMEOUT_S = 10


def client(url: str) -> AsyncSchemaRegistryClient:
    # The client's HTTP library logs every request at INFO: one line per lookup is noise.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # Without a timeout a request to a registry that accepts connections but does not answer
    # (still starting, overloaded) would hang its caller for good.
    return AsyncSchemaRegistryClient({"url": url, "timeout": REQUEST_TIMEOUT_S})


def is_framed(value: bytes | None) -> bool:
    return bool(value) and value[0] == MAGIC  # type: ignore[index]


def frame(schema_id: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + payload


def unframe(value: bytes) -> tuple[int, bytes]:
    """(schema id, payload); ``ValueError`` when the header is cut short."""
    if len(value) < HEADER.size:
        raise ValueError(f"frame of {len(value)} bytes is shorter than its 5-byte header")
    _, schema_id = HEADER.unpack_from(value)
    return int(schema_id), value[HEADER.size :]


def schema_id_of(value: bytes) -> int:
    """The schema id of a frame of at least 5 bytes (no copy of the payload)."""
    return int(HEADER.unpack_from(value)[1])


def subject(topic: str, kind: str, schema_type: str) -> str:
    name, major = kind.split("/")
    return f"{topic}-{name}.v{major}" + (".avro" if schema_type == AVRO else "")


def kind_of(schema_type: str, schema_str: str) -> str | None:
    """The event kind a registered writer schema stands for (see the module docstring)."""
    try:
        doc: Any = json.loads(schema_str)
    except ValueError:
        return None
    if schema_type == AVRO:
        return kind_of_avro(doc)
    if not isinstance(doc, dict):
        return None
    title = doc.get("title")
    if isinstance(title, str) and _KIND.match(title):
        return title
    # Any JSON value may stand where a schema has an object (true, a list): such a schema
    # names no kind, it does not fail the lookup.
    properties = doc.get("properties")
    field = properties.get("schema") if isinstance(properties, dict) else None
    const = field.get("const") if isinstance(field, dict) else None
    return const if isinstance(const, str) and _KIND.match(const) else None
