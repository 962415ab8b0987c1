"""Pure bronze transformation: what each kind of source record becomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.bronze_writer.transform import (
    UNSUPPORTED_JSON,
    KafkaCoordinates,
    Landing,
    bronze_id,
    land,
)
from services.common.handoff import (
    MAX_MESSAGE_BYTES,
    LandedRecord,
    NewerHandoff,
    UnreadableHandoff,
    decode_landed,
    encode_landed,
)
from services.common.kafka import kafka_time
from services.silver_enricher.pipeline import decoded
from services.silver_enricher.repo import BronzeRecordRow

K = KafkaCoordinates("scout.pos.transactions", 2, 41, datetime(2026, 11, 25, 2, 15, tzinfo=UTC))
LIMIT = 1024 * 1024


def test_object_becomes_one_row_with_lineage() -> None:
    landing = land(b'{"schema": "pos.transaction/1", "event_id": "E1"}', "pos", K, LIMIT)
    assert not landing.errors and not landing.batches
    (row,) = landing.rows
    assert row.raw_json == '{"schema": "pos.transaction/1", "event_id": "E1"}'
    assert (row.source_system, row.schema_name, row.record_index) == ("pos", "pos.transaction/1", 0)
    assert row.id == bronze_id(K, 0)


def test_same_coordinates_give_the_same_ids() -> None:
    assert land(b"{}", "pos", K, LIMIT).rows[0].id == land(b"{}", "pos", K, LIMIT).rows[0].id
    other = KafkaCoordinates(K.topic, K.partition, K.offset + 1, K.timestamp)
    assert bronze_id(K, 0) != bronze_id(other, 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"\xff\xfe", "not_utf8"),
        (b"", "empty"),
        (None, "empty"),
        (b'{"a": NaN}', "not_json"),
        (b'{"a": "\\u0000"}', "unsupported_json"),
        (b'{"a": [{"b\\u0000": 1}]}', "unsupported_json"),
        (b'{"a": "\\\\\\u0000"}', "unsupported_json"),
        (b'{"pad": "' + b"x" * 2000 + b'"}', "too_large"),
    ],
)
def test_what_cannot_be_stored_goes_to_the_error_log(value: bytes | None, reason: str) -> None:
    landing = land(value, "iot", K, 1024)
    assert not landing.rows
    (error,) = landing.errors
    assert error.reason == reason
    assert error.raw_bytes == value
    assert error.kafka == K


def test_an_escaped_backslash_before_u0000_is_no_nul_and_lands() -> None:
    # The text "C:\\u0000dir" holds a backslash and "u0000", which jsonb stores.
    for value in (b'{"path": "C:\\\\u0000dir"}', b'{"C:\\\\u0000": ["\\\\\\\\u0000"]}'):
        landing = land(value, "pos", K, LIMIT)
        assert not landing.errors and landing.rows[0].raw_json == value.decode()


def test_huge_integers_are_still_json() -> None:
    landing = land(b'{"n": 123456789012345678901234567890}', "pos", K, LIMIT)
    assert landing.rows and not landing.errors


def test_numbers_past_any_decimals_exponent_are_refused_at_the_edge() -> None:
    # Silver reads numbers as exact decimals, and its decoder raised on these: kept whole in
    # the error log instead (PostgreSQL would refuse them too, later).
    for number in (b"1e1000000000000000000", b"-2E+1000000000000000001"):
        value = b'{"n": [1, {"m": %s}]}' % number
        (error,) = land(value, "pos", K, LIMIT).errors
        assert error.reason == UNSUPPORTED_JSON and error.raw_bytes == value
    for number in (b"1e5000", b"1e-5000", b"1e308"):
        landing = land(b'{"n": %s}' % number, "pos", K, LIMIT)
        assert landing.rows and not landing.errors
    # read by the standard library's decoder, an envelope's batch id may be such a number
    envelope = b'{"schema": "api.batch/1", "batch_id": 1e400, "partner": "p", "records": [{}]}'
    landing = land(envelope, "api", K, LIMIT)
    assert [r.batch_id for r in landing.rows] == ["1E+400"] and not landing.errors


def test_replay_reads_the_digits_jsonb_gives_back_for_a_huge_number() -> None:
    # jsonb keeps 1e5000 and gives it back as 5,001 digits, past what Python's int() reads:
    # replay reads the record as streaming did (the number is a decimal either way).
    when = datetime(2026, 11, 25, tzinfo=UTC)
    text = '{"schema": "pos.transaction/1", "x": 1' + "0" * 5000 + "}"
    row = BronzeRecordRow("00000000-0000-0000-0000-000000000001", "pos", text, when, None, None)
    record = decoded(row)
    assert record.raw["x"] == Decimal("1e5000") and record.raw["schema"] == "pos.transaction/1"
    (streamed,) = decode_landed(next(encode_landed([
        LandedRecord(row.bronze_id, "pos", 0, '{"schema": "pos.transaction/1", "x": 1e5000}')
    ])))  # fmt: skip
    assert streamed.raw == record.raw


def test_api_batch_is_one_row_per_record_plus_a_batch_row() -> None:
    envelope = (
        b'{"schema": "api.batch/1", "batch_id": "B1", "partner": "grabmart", '
        b'"sent_at": "2026-11-25T10:20:00+08:00", '
        b'"records": [{"type": "campaign_spend", "spend": 1500.00}, {"type": "transaction"}]}'
    )
    landing = land(envelope, "api", K, LIMIT)
    assert [r.record_index for r in landing.rows] == [0, 1]
    assert landing.rows[0].raw_json == '{"type":"campaign_spend","spend":1500.00}'
    assert {r.batch_id for r in landing.rows} == {"B1"}
    (batch,) = landing.batches
    assert (batch.batch_id, batch.partner, batch.record_count, batch.status) == (
        "B1", "grabmart", 2, "landed",
    )  # fmt: skip
    assert batch.sent_at == datetime(2026, 11, 25, 2, 20, tzinfo=UTC)


def test_api_batch_sent_at_is_read_by_the_contracts_timestamp_rule() -> None:
    # The one rule of services.common.events.types: a lowercase z and a leap second are RFC
    # 3339; no offset, or a time outside the input domain, leaves sent_at unknown.
    def sent_at(text: str) -> datetime | None:
        envelope = {"schema": "api.batch/1", "batch_id": "B", "partner": "p", "sent_at": text,
                    "records": [{"type": "transaction"}]}  # fmt: skip
        return land(json.dumps(envelope).encode(), "api", K, LIMIT).batches[0].sent_at

    assert sent_at("2026-11-25T02:20:00z") == datetime(2026, 11, 25, 2, 20, tzinfo=UTC)
    assert sent_at("2016-12-31T23:59:60Z") == datetime(2017, 1, 1, tzinfo=UTC)
    assert sent_at("2026-11-25T10:20:00") is None
    assert sent_at("0001-01-01T00:00:00+01:00") is None


def test_api_envelope_without_records_is_kept_whole() -> None:
    landing = land(b'{"schema": "api.batch/1", "batch_id": 7}', "api", K, LIMIT)
    assert len(landing.rows) == 1 and landing.batches[0].status == "malformed"
    assert landing.batches[0].batch_id == "7"
    empty = land(b'{"schema": "api.batch/1", "batch_id": "E", "records": []}', "api", K, LIMIT)
    assert not empty.rows and empty.batches[0].status == "empty"


def test_missing_kafka_timestamp_is_deterministic() -> None:
    assert kafka_time(None) == kafka_time(-1) == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_kafka_timestamp_past_year_9999_is_read_as_none() -> None:
    # A Kafka timestamp is any int64 of milliseconds; a datetime ends with year 9999.
    last_ms = 253_402_300_799_999
    assert kafka_time(last_ms / 1000).year == 9999
    for ms in (last_ms + 1, 2**62, 2**63 - 1):
        assert kafka_time(ms / 1000) == kafka_time(-1)


def test_handoff_round_trip_keeps_raw_json_exactly() -> None:
    landing = land(b'{"total_amount": 125.50, "nested": {"x": [1, 2.0]}}', "pos", K, LIMIT)
    (message,) = list(encode_landed(r.landed() for r in landing.rows))
    (decoded,) = decode_landed(message)
    assert str(decoded.raw["total_amount"]) == "125.50"
    assert decoded.bronze_id == str(landing.rows[0].id)
    assert decoded.kafka_timestamp == K.timestamp


HEAD = {"id": "x", "src": "pos", "kts": 0, "bid": None, "partner": None, "raw": {}}
FOREIGN_HEADS = ({"id": 1}, {"src": 5}, {"src": "csv"}, {"kts": "0"}, {"kts": 1.5},
                 {"kts": True}, {"bid": 7}, {"partner": ["p"]}, {"kind": {}})  # fmt: skip


@pytest.mark.parametrize(
    "message",
    [
        b"not json",
        b"",
        b"[1]",
        b'{"records": []}',
        b'{"v": "1", "records": []}',
        b'{"v": 0, "records": []}',
        b'{"v": 1}',
        b'{"v": 1, "records": [{"id": "x"}]}',
        b'{"v": 1, "records": {"id": "x"}}',
        b'{"v": 1, "records": [{"id": "x", "src": "pos", "kts": 1e30, "raw": {}, "bid": null,'
        b' "partner": null}]}',
        # a head of types bronze does not write
        *(
            json.dumps({"v": 1, "records": [{**HEAD, **change}]}).encode()
            for change in FOREIGN_HEADS
        ),
    ],
)
def test_a_handoff_message_that_is_not_bronzes_is_unreadable(message: bytes) -> None:
    with pytest.raises(UnreadableHandoff):
        decode_landed(message)


def test_a_head_of_bronzes_types_is_readable() -> None:
    message = json.dumps({"v": 1, "records": [{**HEAD, "id": "not-a-uuid", "kind": "k"}]})
    assert decode_landed(message.encode())[0].bronze_id == "not-a-uuid"  # isolated in silver


def test_a_newer_handoff_version_waits_for_silver_to_be_upgraded() -> None:
    with pytest.raises(NewerHandoff):
        decode_landed(b'{"v": 2, "records": []}')


def test_handoff_messages_stay_under_the_limit_in_bytes_not_characters() -> None:
    # 16 records of 1 MiB each, every character 4 bytes in UTF-8: 16 MiB of text in 4 MiB
    # of characters, which one message measured by characters would hold.
    pad = "\U0001f600" * (256 * 1024 - 20)
    value = json.dumps({"schema": "pos.transaction/1", "pad": pad}, ensure_ascii=False).encode()
    landing = Landing()
    for offset in range(16):
        kafka = KafkaCoordinates(K.topic, K.partition, offset, K.timestamp)
        landing.extend(land(value, "pos", kafka, 2 * 1024 * 1024))
    assert len(landing.rows) == 16
    messages = list(encode_landed(r.landed() for r in landing.rows))
    assert all(len(m) <= MAX_MESSAGE_BYTES for m in messages)
    assert sum(len(decode_landed(m)) for m in messages) == 16
