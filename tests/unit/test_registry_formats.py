"""Pure parts of registry framing, the derived Avro schemas, and the progress line."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import fastavro
import pytest

from services.bronze_writer.framing import (
    UNDECODABLE_FRAME,
    UNKNOWN_SCHEMA_ID,
    FrameDecoder,
    _Writer,
)
from services.bronze_writer.transform import KafkaCoordinates, land
from services.common import registry
from services.common.avro_schemas import avro_schema_for, kind_of_avro, record_name
from services.common.events import WIRE_SCHEMAS, json_schema_for, parse_record
from services.common.handoff import with_kind
from services.common.progress import Progress, eta_text
from services.common.registered_schemas import schema_text
from services.simulator.formats import parse_formats


@pytest.mark.parametrize("kind", list(WIRE_SCHEMAS))
def test_every_kind_has_a_valid_avro_schema_naming_its_kind(kind: str) -> None:
    schema = avro_schema_for(kind, json_schema_for(kind))
    fastavro.parse_schema(schema)
    assert kind_of_avro(schema) == kind
    assert registry.kind_of(registry.AVRO, json.dumps(schema)) == kind
    assert registry.kind_of(registry.JSON_SCHEMA, schema_text(kind, registry.JSON_SCHEMA)) == kind


def test_subject_names() -> None:
    assert registry.subject("scout.pos.transactions", "pos.transaction/2", registry.JSON_SCHEMA) \
        == "scout.pos.transactions-pos.transaction.v2"  # fmt: skip
    assert registry.subject("scout.iot.readings", "iot.reading/1", registry.AVRO) \
        == "scout.iot.readings-iot.reading.v1.avro"  # fmt: skip
    assert record_name("master.store/1") == "master_store_v1"


def test_frame_round_trip_and_short_header() -> None:
    value = registry.frame(42, b'{"a":1}')
    assert registry.is_framed(value) and not registry.is_framed(b'{"a":1}')
    assert registry.unframe(value) == (42, b'{"a":1}')
    with pytest.raises(ValueError, match="5-byte header"):
        registry.unframe(b"\x00\x00")


def _decoder_with(schema_id: int, kind: str, schema_type: str) -> FrameDecoder:
    decoder = FrameDecoder("http://unused")
    avro = None
    if schema_type == registry.AVRO:
        avro = fastavro.parse_schema(json.loads(schema_text(kind, registry.AVRO)))
    decoder._writers[schema_id] = _Writer(schema_type, kind, avro)
    return decoder


KAFKA = KafkaCoordinates("t", 0, 7, datetime(2026, 11, 25, tzinfo=UTC))
READING = {"device_id": "D-1", "store_id": "S0001", "kind": "temperature", "value": 21.5,
           "occurred_at": "2026-11-25T10:15:00+08:00"}  # fmt: skip


def test_avro_frame_lands_as_json_with_its_frame_and_parses_like_plain() -> None:
    decoder = _decoder_with(9, "iot.reading/1", registry.AVRO)
    schema = fastavro.parse_schema(json.loads(schema_text("iot.reading/1", registry.AVRO)))
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, {**READING, "schema": "iot.reading/1"})
    value = registry.frame(9, out.getvalue())
    landing = land(value, "iot", KAFKA, 1 << 20, decoder.unframe(value))
    (row,) = landing.rows
    raw = json.loads(row.raw_json)
    assert "sku" not in raw, "null fields of the other variants are left out"
    assert row.frame is not None and row.frame.schema_id == 9 and row.schema_name == "iot.reading/1"
    assert row.as_copy_record()[-2:] == (9, out.getvalue())
    plain = parse_record({**READING, "schema": "iot.reading/1"}, "iot")
    assert parse_record(raw, "iot") == plain


def test_json_schema_frame_without_schema_field_gets_its_kind_in_silver() -> None:
    decoder = _decoder_with(3, "iot.reading/1", registry.JSON_SCHEMA)
    value = registry.frame(3, json.dumps(READING).encode())
    (row,) = land(value, "iot", KAFKA, 1 << 20, decoder.unframe(value)).rows
    assert json.loads(row.raw_json) == READING
    assert row.landed().kind == "iot.reading/1"
    raw = with_kind(json.loads(row.raw_json), "iot", row.landed().kind)
    assert parse_record(raw, "iot") == parse_record({**READING, "schema": "iot.reading/1"}, "iot")
    assert with_kind({"records": []}, "api", "api.batch/1") == {"records": []}


def test_unknown_id_and_corrupt_avro_are_error_rows() -> None:
    decoder = _decoder_with(9, "iot.reading/1", registry.AVRO)
    unknown = registry.frame(5, b"{}")
    (error,) = land(unknown, "iot", KAFKA, 1 << 20, decoder.unframe(unknown)).errors
    assert error.reason == UNKNOWN_SCHEMA_ID and error.raw_bytes == unknown
    corrupt = registry.frame(9, b"\x02\xff")
    (error,) = land(corrupt, "iot", KAFKA, 1 << 20, decoder.unframe(corrupt)).errors
    assert error.reason == UNDECODABLE_FRAME


def test_a_recursive_avro_datum_too_deep_for_json_is_an_error_row() -> None:
    name = record_name("pos.transaction/1")
    schema = {"type": "record", "name": name, "namespace": "scout.events",
              "fields": [{"name": "next", "type": ["null", f"scout.events.{name}"]}]}  # fmt: skip
    decoder = FrameDecoder("http://unused")
    decoder._writers[4] = _Writer(registry.AVRO, "pos.transaction/1",
                                  fastavro.parse_schema(schema))  # fmt: skip
    for depth, lands in ((10, True), (300, False), (2000, False)):
        datum: dict[str, object] = {"next": None}
        for _ in range(depth):
            datum = {"next": datum}
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
        value = registry.frame(4, out.getvalue())
        landing = land(value, "pos", KAFKA, 1 << 20, decoder.unframe(value))
        if lands:  # shallow: JSON, which bronze lands (silver judges it)
            assert len(landing.rows) == 1 and not landing.errors
        else:
            (error,) = landing.errors
            assert error.reason == UNDECODABLE_FRAME and error.raw_bytes == value


def test_an_avro_double_that_is_not_a_number_is_an_error_row_like_plain_jsons_nan() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": record_name("iot.reading/1"),
                                    "fields": [{"name": "value", "type": "double"}]})  # fmt: skip
    decoder = FrameDecoder("http://unused")
    decoder._writers[6] = _Writer(registry.AVRO, "iot.reading/1", schema)
    for number, lands in ((21.5, True), (float("nan"), False), (float("-inf"), False)):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, {"value": number})
        value = registry.frame(6, out.getvalue())
        landing = land(value, "iot", KAFKA, 1 << 20, decoder.unframe(value))
        if lands:
            assert json.loads(landing.rows[0].raw_json) == {"value": 21.5}
        else:
            (error,) = landing.errors
            assert error.reason == UNDECODABLE_FRAME and error.raw_bytes == value


@pytest.mark.parametrize("properties", [True, [], "schema", {"schema": True}, {"schema": []}])
def test_a_json_schema_with_any_value_in_place_of_an_object_names_no_kind(
    properties: object,
) -> None:
    text = json.dumps({"title": "no kind", "properties": properties})
    assert registry.kind_of(registry.JSON_SCHEMA, text) is None


def test_formats_and_progress_text() -> None:
    assert parse_formats("json, avro") == ("json", "avro")
    with pytest.raises(ValueError):
        parse_formats("protobuf")
    assert eta_text(250, 1000, 10.0) == "250/1,000 (25%) 25/s ETA 0:30"
    assert eta_text(5, None, 1.0) == "5 5/s"
    stream = io.StringIO()  # not a terminal: quiet
    meter = Progress(10, "x", stream=stream)
    meter.advance(5)
    meter.finish()
    assert stream.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_and_quiet_in_json_mode() -> None:
    terminal = _Terminal()
    meter = Progress(4, "replay", stream=terminal)
    meter.advance(2)
    meter.finish()
    assert terminal.getvalue().startswith("\rreplay: 2/4 (50%)") and "ETA" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    quiet = _Terminal()
    json_mode = Progress(4, "replay", quiet=True, stream=quiet)
    json_mode.advance(2)
    json_mode.finish()
    assert quiet.getvalue() == ""
