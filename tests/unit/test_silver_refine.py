"""Silver's pure refine: of two records for one key in a batch, the one the merge keeps."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.common.events import StoreRecord
from services.common.handoff import DecodedRecord
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.pii import DEV_KEY
from services.silver_enricher.transform import Refiner

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
