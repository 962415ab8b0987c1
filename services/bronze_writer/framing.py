"""Registry-framed source records → the JSON bronze stores, plus what it keeps of the frame.

Bronze's one hook: for a record whose value starts with the magic byte, :meth:`FrameDecoder.
unframe` gives the JSON text to land (the JSON Schema payload as sent, or the Avro datum
written as JSON) and a :class:`FrameInfo` (schema id, format, event kind, payload bytes) for
the row; or the reason it cannot be decoded, for the error log.

Writer schemas are looked up once per id with confluent-kafka's async registry client
(:meth:`FrameDecoder.resolve`, before the pure landing). A registry that does not answer (or
answers 5xx) raises :class:`RegistryUnavailable`: an infrastructure failure that bronze
retries with backoff, holding the batch and its offsets; it never sends a record to the error
log. Only the registry saying "no such schema" (HTTP 404) does. JSON Schema payloads are not
validated here: the event types own the accepted domain and silver quarantines with the
field named, exactly as for plain JSON.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import fastavro
import orjson
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.common import registry
from services.common.handoff import dump_exact_json
from services.common.metrics import FRAMED_RECORDS, REGISTRY_LOOKUPS

log = logging.getLogger(__name__)

# Error-log reasons (bronze_error_log.reason) of framed records.
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
UNDECODABLE_FRAME = "undecodable_frame"
UNSUPPORTED_SCHEMA_TYPE = "unsupported_schema_type"


class RegistryUnavailable(Exception):
    """The schema registry did not answer: retry, never the error log."""


@dataclass(frozen=True)
class FrameInfo:
    schema_id: int
    schema_type: str  # JSON | AVRO
    kind: str | None  # event kind the writer schema names
    payload: bytes


@dataclass(frozen=True)
class Unframed:
    """A framed record decoded: JSON text for bronze, or why not."""

    json: bytes | None
    frame: FrameInfo | None
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class _Writer:
    schema_type: str
    kind: str | None
    avro: Any  # parsed Avro schema, or None


class FrameDecoder:
    """Decodes frames with writer schemas fetched from the registry (cached per id)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._writers: dict[int, _Writer] = {}  # ids the registry does not know stay out
        self._decoded: Counter[str] = Counter()  # per schema type, until flush_metrics()

    async def resolve(self, values: Sequence[bytes | None]) -> None:
        """Fetch the writer schema of every frame id not yet known (an id the registry says it
        does not have is asked again in a later batch: it may be registered by then)."""
        wanted = set()
        for value in values:
            if value is not None and registry.is_framed(value) and len(value) >= 5:
                wanted.add(registry.schema_id_of(value))
        for schema_id in sorted(wanted - self._writers.keys()):
            await self._fetch(schema_id)

    async def _fetch(self, schema_id: int) -> None:
        if self._client is None:
            self._client = registry.client(self.url)
        try:
            schema = await asyncio.wait_for(
                self._client.get_schema(schema_id), registry.REQUEST_TIMEOUT_S * 3
            )
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                REGISTRY_LOOKUPS.labels("unknown").inc()
                return
            REGISTRY_LOOKUPS.labels("unavailable").inc()
            raise RegistryUnavailable(f"registry error {exc.http_status_code}: {exc}") from exc
        except Exception as exc:  # the client's transport errors (connect, timeout, …)
            REGISTRY_LOOKUPS.labels("unavailable").inc()
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
        REGISTRY_LOOKUPS.labels("found").inc()
        schema_type = (schema.schema_type or registry.AVRO).upper()
        avro = None
        if schema_type == registry.AVRO:
            try:
                avro = fastavro.parse_schema(json.loads(schema.schema_str))
            except Exception as exc:  # a registered schema fastavro cannot read
                log.warning("writer schema %d is not usable Avro: %s", schema_id, exc)
                schema_type = "INVALID"
        kind = registry.kind_of(schema_type, schema.schema_str)
        self._writers[schema_id] = _Writer(schema_type, kind, avro)

    def flush_metrics(self) -> None:
        """Count the batch's framed records once (a labelled metric per record is slow)."""
        for schema_type, n in self._decoded.items():
            FRAMED_RECORDS.labels(schema_type).inc(n)
        self._decoded.clear()

    def unframe(self, value: bytes) -> Unframed:
        """Pure once :meth:`resolve` has seen ``value``."""
        try:
            schema_id, payload = registry.unframe(value)
        except ValueError as exc:
            return Unframed(None, None, UNDECODABLE_FRAME, str(exc))
        writer = self._writers.get(schema_id)
        if writer is None:
            return Unframed(None, None, UNKNOWN_SCHEMA_ID,
                            f"schema id {schema_id} is not in the registry")  # fmt: skip
        info = FrameInfo(schema_id, writer.schema_type, writer.kind, payload)
        self._decoded[writer.schema_type] += 1
        if writer.schema_type == registry.JSON_SCHEMA:
            return Unframed(payload, info)
        if writer.schema_type != registry.AVRO:
            return Unframed(None, info, UNSUPPORTED_SCHEMA_TYPE,
                            f"schema id {schema_id} is {writer.schema_type}")  # fmt: skip
        try:
            buffer = io.BytesIO(payload)
            datum = fastavro.schemaless_reader(buffer, writer.avro, None)
            if buffer.tell() != len(payload):
                raise ValueError(f"{len(payload) - buffer.tell()} bytes left after the datum")
        except Exception as exc:  # fastavro raises many types on corrupt input
            detail = f"Avro payload of schema {schema_id}: {type(exc).__name__}"
            return Unframed(None, info, UNDECODABLE_FRAME, detail)
        try:
            text = _datum_json(datum)
        except (TypeError, ValueError, RecursionError) as exc:  # a NaN or infinite double,
            # or a recursive schema's datum nested past what JSON writers take (orjson: 255
            # levels; Python's stack later)
            detail = f"Avro datum of schema {schema_id} has no JSON text: {type(exc).__name__}"
            return Unframed(None, info, UNDECODABLE_FRAME, detail)
        return Unframed(text, info)


def _datum_json(datum: Any) -> bytes:
    """An Avro datum as JSON text (see :func:`_jsonable`): orjson for the usual datum, the
    exact-decimal writer when it holds a ``decimal`` logical value. A NaN or infinite double
    has no JSON text (orjson would write null): ``ValueError``, as for plain JSON's NaN."""
    exotic: list[bool] = []
    value = _jsonable(datum, exotic)
    if exotic:
        return dump_exact_json(value).encode()
    return orjson.dumps(value)


def _jsonable(value: Any, exotic: list[bool]) -> Any:
    """An Avro datum as a JSON value: logical types (dates, UUIDs, bytes) as strings, and a
    null field as an absent one (Avro cannot leave a field out, so null is how a producer says
    "not sent"; the event types then apply the field's default, as for JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, exotic) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v, exotic) for v in value]
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a NaN or infinite double is not JSON")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    exotic.append(True)  # Decimal (the decimal logical type): written exactly
    return value
