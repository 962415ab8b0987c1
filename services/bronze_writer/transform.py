"""Pure transformation of Kafka records into bronze rows (no I/O).

A source record becomes bronze rows when it is a JSON object (an API batch: one row per
record in it, plus one ingestion-batch row); anything else becomes one error-log row with
the raw bytes and the reason. Ids are derived from the Kafka coordinates and timestamp, so a
redelivered record produces exactly the same rows, and a topic that was deleted and created
again (offsets from 0) produces new ones.

Whatever the bytes are, :func:`land` returns: every decoder error, and JSON that one decoder
accepts and the next one (PostgreSQL's jsonb, silver's decoder) would refuse — nesting beyond
``JSON_DEPTH_MAX``, ``\u0000``, unpaired surrogates — becomes an error-log row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from pydantic_core import PydanticCustomError

from services.bronze_writer.framing import FrameInfo, Unframed
from services.common.events.types import (
    API_RECORDS_MAX,
    JSON_DEPTH_MAX,
    json_depth_exceeds,
    storable_text,
    to_timestamp,
)
from services.common.handoff import LandedRecord, dump_exact_json
from services.common.ids import NameIds

BRONZE_NAMESPACE = uuid.UUID("6f2b9c1e-5a41-4d0b-9a7e-2f7c3b1d8e55")
_BRONZE_IDS = NameIds(BRONZE_NAMESPACE)

# Error-log reasons (bronze_error_log.reason).
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
TOO_LARGE = "too_large"
EMPTY = "empty"
UNSUPPORTED_JSON = "unsupported_json"  # valid JSON that jsonb cannot hold (\u0000, surrogates)
TOO_DEEP = "too_deep"  # nesting beyond JSON_DEPTH_MAX
REJECTED_BY_DATABASE = "rejected_by_database"
API_BATCH_SCHEMAS = ("api.batch/1",)


class KafkaCoordinates(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    topic: str
    partition: int
    offset: int
    timestamp: datetime

    @property
    def timestamp_ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)


class BronzeRow(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    id: uuid.UUID
    raw_json: str
    source_system: str
    schema_name: str | None
    batch_id: str | None
    record_index: int
    kafka: KafkaCoordinates
    partner: str | None = None
    frame: FrameInfo | None = None  # registry frame the record came in

    def as_copy_record(self) -> tuple[Any, ...]:
        k = self.kafka
        f = self.frame
        # The frame's payload is kept once, on the record's first row (an API batch's other
        # rows point at it through their Kafka coordinates).
        return (
            self.id, self.raw_json, self.source_system, self.schema_name, self.batch_id,
            self.record_index, k.topic, k.partition, k.offset, k.timestamp,
            f.schema_id if f else None, f.payload if f and self.record_index == 0 else None,
        )  # fmt: skip

    def landed(self) -> LandedRecord:
        return LandedRecord(
            bronze_id=str(self.id),
            source_system=self.source_system,
            kafka_timestamp_ms=self.kafka.timestamp_ms,
            raw_json=self.raw_json,
            batch_id=self.batch_id,
            partner=self.partner,
            kind=self.schema_name if self.frame is not None else None,
        )


@dataclass(frozen=True)
class BatchRow:
    batch_id: str | None
    partner: str | None
    record_count: int
    sent_at: datetime | None
    status: str
    kafka: KafkaCoordinates

    def as_record(self) -> tuple[Any, ...]:
        k = self.kafka
        return (self.batch_id, self.partner, self.record_count, self.sent_at, self.status,
                k.topic, k.partition, k.offset, k.timestamp)  # fmt: skip


@dataclass(frozen=True)
class ErrorRow:
    raw_bytes: bytes | None
    reason: str
    detail: str
    source_system: str
    kafka: KafkaCoordinates
    record_index: int = 0  # the refused record's position in its API batch

    @property
    def id(self) -> uuid.UUID:
        return bronze_id(self.kafka, self.record_index)

    def as_record(self) -> tuple[Any, ...]:
        k = self.kafka
        return (self.id, self.raw_bytes, self.reason, storable_text(self.detail),
                self.source_system, k.topic, k.partition, k.offset, k.timestamp,
                self.record_index)  # fmt: skip


@dataclass
class Landing:
    """What one Kafka record (or a batch of them) becomes in bronze."""

    rows: list[BronzeRow] = field(default_factory=list)
    batches: list[BatchRow] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)

    def extend(self, other: Landing) -> None:
        self.rows.extend(other.rows)
        self.batches.extend(other.batches)
        self.errors.extend(other.errors)


def bronze_id(kafka: KafkaCoordinates, record_index: int) -> uuid.UUID:
    return _BRONZE_IDS(
        f"{kafka.topic}:{kafka.partition}:{kafka.offset}:{record_index}:{kafka.timestamp_ms}"
    )


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _decode(value: bytes | None, max_bytes: int) -> tuple[str, Any]:
    """The record's text and parsed value, or :class:`_Reject`."""
    if value is None or len(value) == 0:
        raise _Reject(EMPTY, "record has no value")
    if len(value) > max_bytes:
        raise _Reject(TOO_LARGE, f"{len(value)} bytes > limit {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(NOT_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits and numbers beyond a double, which are valid
        # JSON, and nesting past 1024: ask the stdlib, which decides all but the deepest,
        # reading numbers as silver does (exact decimals).
        try:
            parsed = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except RecursionError:
            raise _Reject(TOO_DEEP, f"nests deeper than {JSON_DEPTH_MAX}") from None
        except ArithmeticError:  # an exponent beyond any decimal's (decimal.InvalidOperation)
            raise _Reject(UNSUPPORTED_JSON, "a number beyond what a decimal holds") from None
        except ValueError as exc:
            raise _Reject(NOT_JSON, str(exc)[:200]) from None
    if text.count("{") + text.count("[") > JSON_DEPTH_MAX and json_depth_exceeds(parsed):
        raise _Reject(TOO_DEEP, f"nests deeper than {JSON_DEPTH_MAX}")
    # The text checks are quick filters; the decoded value decides ("C:\\u0000" is no NUL).
    if "\\u0000" in text and _holds_nul(parsed):
        raise _Reject(UNSUPPORTED_JSON, "contains \\u0000, which PostgreSQL jsonb cannot store")
    if ("\\ud" in text or "\\uD" in text) and not _encodable(parsed):
        raise _Reject(UNSUPPORTED_JSON, "contains an unpaired UTF-16 surrogate")
    return text, parsed


def _holds_nul(value: Any) -> bool:
    """True when a decoded key or string holds NUL (depth is bounded by JSON_DEPTH_MAX)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _encodable(parsed: Any) -> bool:
    """False when a decoded string holds an unpaired surrogate (no UTF-8 spelling)."""
    try:
        json.dumps(parsed, ensure_ascii=False, default=str).encode("utf-8")  # str: a Decimal
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def land(
    value: bytes | None,
    source_system: str,
    kafka: KafkaCoordinates,
    max_bytes: int,
    unframed: Unframed | None = None,
) -> Landing:
    """What one source record becomes in bronze (``unframed``: its registry frame decoded).
    Never raises: whatever cannot be read is an error-log row."""
    try:
        return _land(value, source_system, kafka, max_bytes, unframed)
    except Exception as exc:  # a decoder corner nobody foresaw: keep the bytes and the reason
        detail = f"{type(exc).__name__} while decoding"
        return Landing(errors=[ErrorRow(value, NOT_JSON, detail, source_system, kafka)])


def _land(
    value: bytes | None,
    source_system: str,
    kafka: KafkaCoordinates,
    max_bytes: int,
    unframed: Unframed | None,
) -> Landing:
    frame = unframed.frame if unframed is not None else None
    try:
        if unframed is not None and unframed.json is None:
            raise _Reject(unframed.reason, unframed.detail)
        text, parsed = _decode(unframed.json if unframed is not None else value, max_bytes)
        if not isinstance(parsed, dict):
            raise _Reject(NOT_OBJECT, f"top-level JSON {type(parsed).__name__}, not an object")
    except _Reject as reject:
        return Landing(errors=[ErrorRow(value, reject.reason, reject.detail, source_system, kafka)])
    schema = parsed.get("schema") if isinstance(parsed.get("schema"), str) else None
    if schema is None and frame is not None:
        schema = frame.kind  # the writer schema names the kind the record does not carry
    if source_system == "api":
        return _land_api_batch(text, parsed, schema, kafka, frame)
    row = BronzeRow(bronze_id(kafka, 0), text, source_system, schema, None, 0, kafka, None, frame)
    return Landing(rows=[row])


def _land_api_batch(
    text: str,
    envelope: dict[str, Any],
    schema: str | None,
    kafka: KafkaCoordinates,
    frame: FrameInfo | None,
) -> Landing:
    batch_id = _text_or_none(envelope.get("batch_id"))
    partner = _text_or_none(envelope.get("partner"))
    sent_at = _parse_time(envelope.get("sent_at"))
    records = envelope.get("records")
    if (
        schema not in API_BATCH_SCHEMAS
        or not isinstance(records, list)
        or (len(records) > API_RECORDS_MAX)
    ):
        # Not a batch we understand: keep the whole envelope as one row for silver to judge.
        row = BronzeRow(bronze_id(kafka, 0), text, "api", schema, batch_id, 0, kafka, partner,
                        frame)  # fmt: skip
        batch = BatchRow(batch_id, partner, 1, sent_at, "malformed", kafka)
        return Landing(rows=[row], batches=[batch])
    if not records:
        return Landing(batches=[BatchRow(batch_id, partner, 0, sent_at, "empty", kafka)])
    # Re-parse with exact decimals so each record's numbers are stored as they were sent.
    exact = json.loads(text, parse_float=Decimal)["records"]
    rows = [
        BronzeRow(bronze_id(kafka, i), dump_exact_json(record), "api", schema, batch_id, i,
                  kafka, partner, frame)
        for i, record in enumerate(exact)
    ]  # fmt: skip
    return Landing(rows=rows, batches=[BatchRow(batch_id, partner, len(rows), sent_at, "landed",
                                                kafka)])  # fmt: skip


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else dump_exact_json(value)


def _parse_time(value: Any) -> datetime | None:
    """The envelope's ``sent_at`` by the contract's timestamp rule, or None: bronze lands the
    batch whatever it says (silver judges the envelope)."""
    try:
        return to_timestamp(value)
    except PydanticCustomError:
        return None


def database_rejection(row: BronzeRow, error: str) -> ErrorRow:
    """A row PostgreSQL refused (a JSON corner jsonb cannot hold) goes to the error log."""
    return ErrorRow(row.raw_json.encode(), REJECTED_BY_DATABASE, error, row.source_system,
                    row.kafka, row.record_index)  # fmt: skip
