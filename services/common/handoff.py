"""Messages between the services on the internal topic, carried in batches.

Faust's per-message cost is paid once per *source* record at the bronze edge; from there on
one internal message carries a whole batch, so silver handles thousands of records per
Faust event.

- ``bronze-landed``: the bronze rows a batch landed (id, source, Kafka time, batch info and
  the raw JSON text exactly as stored), so silver needs no read-back from PostgreSQL.

Silver hands nothing to gold through Kafka: gold reads the changes silver's triggers capture
in PostgreSQL (``services/gold_aggregator/changes.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from services.common.events.models import SOURCE_SYSTEMS

HANDOFF_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # well under the producer's 8 MiB request limit


class LandedRecord(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    """One bronze row as handed to silver."""

    bronze_id: str
    source_system: str
    kafka_timestamp_ms: int
    raw_json: str  # the record's JSON text, as stored in bronze (numbers exact)
    batch_id: str | None = None
    partner: str | None = None
    kind: str | None = None  # a registry-framed record's kind, from its writer schema

    def encode(self) -> str:
        head_fields: dict[str, Any] = {
            "id": self.bronze_id,
            "src": self.source_system,
            "kts": self.kafka_timestamp_ms,
            "bid": self.batch_id,
            "partner": self.partner,
        }
        if self.kind is not None:
            head_fields["kind"] = self.kind
        head = json.dumps(head_fields, separators=(",", ":"))
        # The raw text is valid JSON itself: splice it in rather than re-serialising it.
        return f'{head[:-1]},"raw":{self.raw_json}}}'


def encode_landed(records: Iterable[LandedRecord]) -> Iterator[bytes]:
    """Encode records into as few messages as fit under ``MAX_MESSAGE_BYTES``."""
    parts: list[str] = []
    size = 0
    for record in records:
        text = record.encode()
        # The limit is in bytes: a character outside ASCII is 2-4 of them in UTF-8.
        length = len(text) if text.isascii() else len(text.encode())
        if parts and size + length > MAX_MESSAGE_BYTES:
            yield _wrap(parts)
            parts, size = [], 0
        parts.append(text)
        size += length + 1
    if parts:
        yield _wrap(parts)


def _wrap(parts: Sequence[str]) -> bytes:
    return f'{{"v":{HANDOFF_VERSION},"records":[{",".join(parts)}]}}'.encode()


class DecodedRecord(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    """A landed record with its raw JSON already parsed (numbers as ``Decimal``)."""

    bronze_id: str
    source_system: str
    kafka_timestamp: datetime
    raw: Any
    batch_id: str | None
    partner: str | None


class UnreadableHandoff(ValueError):
    """A bronze-landed message that is not bronze's (or is damaged): no record in it can be
    trusted, and its records, if it had any, are in bronze (``scout replay`` rebuilds them)."""


class NewerHandoff(Exception):
    """A bronze-landed message of a newer version: silver waits (retries) to be upgraded,
    since skipping it would leave bronze's records out of silver."""


def decode_landed(message: bytes) -> list[DecodedRecord]:
    """The records of one bronze-landed message, or :class:`UnreadableHandoff` /
    :class:`NewerHandoff`."""
    try:
        body = json.loads(message, parse_float=Decimal)
        version = body["v"]
        if version != HANDOFF_VERSION:
            if type(version) is int and version > HANDOFF_VERSION:
                raise NewerHandoff(f"bronze-landed message version {version}: upgrade silver")
            raise UnreadableHandoff(f"unknown bronze-landed message version {version!r:.40}")
        return [_decoded(r) for r in body["records"]]
    except (NewerHandoff, UnreadableHandoff):
        raise
    except Exception as exc:  # not JSON, or not the message's shape (KeyError, TypeError, …)
        raise UnreadableHandoff(f"not a bronze-landed message: {type(exc).__name__}") from None


def _decoded(r: dict[str, Any]) -> DecodedRecord:
    bronze_id, source, kts, batch_id, partner = r["id"], r["src"], r["kts"], r["bid"], r["partner"]
    kind = r.get("kind")
    # The head's types as bronze writes them: a head of other types is no bronze message.
    # (Values bronze would not write, such as an id that is no UUID, are each kept on their
    # own by silver's isolation.)
    if not (type(bronze_id) is str and type(source) is str and source in SOURCE_SYSTEMS
            and type(kts) is int and _is_text_or_none(batch_id) and _is_text_or_none(partner)
            and _is_text_or_none(kind)):  # fmt: skip
        raise UnreadableHandoff("not a bronze-landed message: a record's head is not bronze's")
    return DecodedRecord(
        bronze_id=bronze_id,
        source_system=source,
        kafka_timestamp=datetime.fromtimestamp(kts / 1000, UTC),
        raw=with_kind(r["raw"], source, kind),
        batch_id=batch_id,
        partner=partner,
    )


def _is_text_or_none(value: object) -> bool:
    return value is None or type(value) is str


def with_kind(raw: Any, source_system: str, kind: str | None) -> Any:
    """``raw`` with the event kind its writer schema named, when it carries none itself.

    A registry-framed record need not spell ``schema``: its registered schema (title or Avro
    record name, :mod:`services.common.registry`) says what it is. API batch records are
    typed by their ``type`` field, not by the envelope's kind.
    """
    if kind is None or source_system == "api" or not isinstance(raw, dict) or "schema" in raw:
        return raw
    return {**raw, "schema": kind}


def dump_exact_json(value: Any) -> str:
    """JSON text of a value parsed with ``parse_float=Decimal``, keeping numbers exact
    (``1500.00`` stays ``1500.00``, where a float round trip would write ``1500.0``)."""
    try:
        return orjson.dumps(value, default=_exact_number).decode()
    except TypeError:  # an integer past 64 bits (orjson.JSONEncodeError is a TypeError)
        return _dump_exact_slow(value)


def _exact_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # the decimal's own text, spliced in as is
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dump_exact_slow(value: Any) -> str:
    if isinstance(value, dict):
        items = ",".join(f"{json.dumps(k)}:{_dump_exact_slow(v)}" for k, v in value.items())
        return f"{{{items}}}"
    if isinstance(value, list):
        return f"[{','.join(_dump_exact_slow(v) for v in value)}]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)
