"""Silver's pure refine: of two records for one key in a batch, the one the merge keeps."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from services.common.events import StoreRecord
from services.common.events.types import storable_or_none
from services.common.handoff import DecodedRecord
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.pii import DEV_KEY
from services.silver_enricher.transform import Refiner, unprocessable_rows

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
STORES = {"S1": StoreRecord(store_id="S1", name="n", region="r", city="c",
                            timezone="Asia/Manila")}  # fmt: skip


def _record(bronze_id: str, seconds: int, raw: dict[str, object], source: str) -> DecodedRecord:
    raw = json.loads(json.dumps(raw), parse_float=Decimal)
    return DecodedRecord(bronze_id, source, NOW - timedelta(seconds=seconds), raw, "B", "p")


def _refine(records: list[DecodedRecord]) -> tuple[list[object], list[object]]:
    ctx = Context(NOW, timedelta(seconds=300), STORES, {})
    out = Refiner(DEV_KEY, DEFAULT_EXPECTATIONS).refine(records, STORES, {}, ctx)
    assert len(out.lineage) == len(records)  # every record is accounted for, winner or not
    return [s[4] for s in out.spends.values()], [r[6] for r in out.readings.values()]


def test_the_merges_winner_of_a_key_whatever_the_order_in_the_batch() -> None:
    spend = {"type": "campaign_spend", "campaign_id": "C1", "store_id": "S1",
             "date": "2026-11-24", "spend": "10.00"}  # fmt: skip
    reading = {"schema": "iot.reading/1", "kind": "footfall", "device_id": "D1", "value": 3,
               "store_id": "S1", "occurred_at": "2026-11-25T10:00:00+08:00"}  # fmt: skip
    # By (Kafka time, bronze id) for spend, bronze id for readings (repo's merge rules).
    records = [
        _record("00000000-0000-0000-0000-00000000000b", 5, {**spend, "spend": "20.00"}, "api"),
        _record("00000000-0000-0000-0000-00000000000a", 1, {**spend, "spend": "30.00"}, "api"),
        _record("00000000-0000-0000-0000-00000000000c", 5, {**spend, "spend": "40.00"}, "api"),
        _record("00000000-0000-0000-0000-00000000000e", 9, reading, "iot"),
        _record("00000000-0000-0000-0000-00000000000d", 1, reading, "iot"),
    ]
    for order in itertools.permutations(records):
        spends, readings = _refine(list(order))
        assert spends == [Decimal("30.00")]  # the latest Kafka time
        assert readings == ["00000000-0000-0000-0000-00000000000e"]  # the greatest bronze id


def test_an_unprocessable_record_of_bronzes_keeps_its_id_source_and_lineage() -> None:
    bronze_id = "6f1c1c1e-0000-4000-8000-000000000001"
    record = DecodedRecord(bronze_id, "pos", NOW, {"store_id": "S1"}, "B-1", "ops@example.com")
    row, lineage = unprocessable_rows(record, "DataError", "refused")
    assert row == (UUID(bronze_id), "pos", "unprocessable", None, "DataError: refused", "S1",
                   "B-1", "[removed]", NOW)  # fmt: skip
    assert lineage == (UUID(bronze_id), "silver_quarantine", None)


def test_an_unprocessable_record_trusts_no_field() -> None:
    """A record that fails alone may fail because of a field: its row must not fail again."""
    record = DecodedRecord("not-a-uuid", "pos", NOW, {"store_id": "S\x00"}, "B\ud800", 7)  # type: ignore[arg-type]
    row, lineage = unprocessable_rows(record, "UnicodeEncodeError", "surrogate \ud800 \x00")
    assert lineage is None  # not a bronze record: no lineage for it
    assert row[0] == unprocessable_rows(record, "other", "")[0][0]  # one id per foreign id
    assert row[1:4] == ("handoff", "unprocessable", None)
    assert row[4] == "UnicodeEncodeError: surrogate ? "
    assert row[5:8] == (None, None, None)
    for text in row[1:8]:
        assert text is None or ("\x00" not in text and text.encode())


def test_only_text_postgresql_stores_is_storable() -> None:
    assert [storable_or_none(v) for v in ("S1", "", "é", "S\x00", "\udc80", 1, None)] == [
        "S1", "", "é", None, None, None, None]  # fmt: skip
