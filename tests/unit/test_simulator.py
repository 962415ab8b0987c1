"""The simulator's generator: deterministic, realistic, and every record ends where the
manifest says (checked with the real parser)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.common.events import (
    ApiBatch,
    CampaignSpend,
    DeviceReading,
    Rejection,
    Transaction,
    load_json_object,
    parse_api_batch,
    parse_master,
    parse_record,
)
from services.simulator import records as r
from services.simulator.faults import FAULT_KINDS, FUTURE_RULE
from services.simulator.generator import SimConfig, TrafficGenerator, default_start
from services.simulator.manifest import Manifest
from services.simulator.world import TIMEZONE

START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Manila
MAX_BYTES = 64 * 1024  # small, so the oversized fault stays cheap in unit tests


def config(**changes: object) -> SimConfig:
    values: dict[str, object] = {
        "seed": 7, "start": START, "rate": 2000.0, "faults": 0.2, "stores": 20,
        "max_record_bytes": MAX_BYTES,
    }  # fmt: skip
    values.update(changes)
    return SimConfig(**values)  # type: ignore[arg-type]


class Classifier:
    """Where a published record ends, judged from its bytes with the real parser and the
    context silver has (known stores, the clock, earlier events)."""

    def __init__(self, generator: TrafficGenerator, now: datetime, max_bytes: int) -> None:
        self.known = {s.store_id for s in generator.world.stores}
        self.late = {s.store_id for s in generator.world.late_stores}
        self.now = now
        self.max_bytes = max_bytes
        self.seen: dict[str, tuple[int, bytes]] = {}  # event_id -> (version, bytes)

    def outcomes(self, topic: str, value: bytes) -> list[str]:
        if len(value) > self.max_bytes:
            return [r.BRONZE_ERROR + "too_large"]
        try:
            value.decode()
        except UnicodeDecodeError:
            return [r.BRONZE_ERROR + "not_utf8"]
        obj = load_json_object(value)
        if isinstance(obj, Rejection):
            return [r.BRONZE_ERROR + obj.rule]
        if topic in (r.STORES, r.PRODUCTS):
            master = parse_master(obj)
            assert not isinstance(master, Rejection), master
            return [r.SILVER_STORES if topic == r.STORES else r.SILVER_PRODUCTS]
        if topic == r.API:
            batch = parse_api_batch(obj)
            assert isinstance(batch, ApiBatch), batch
            return [self._one(parse_record(rec, "api", batch_id=batch.batch_id,
                                           partner=batch.partner), value)
                    for rec in batch.records]  # fmt: skip
        return [self._one(parse_record(obj, topic), value)]

    def _one(self, event: object, value: bytes) -> str:
        if isinstance(event, Rejection):
            return r.QUARANTINE + event.rule
        if isinstance(event, CampaignSpend):
            return r.SILVER_CAMPAIGN_SPEND
        if isinstance(event, DeviceReading):
            assert event.store_id in self.known
            return r.QUARANTINE + FUTURE_RULE if event.occurred_at > self.now else (
                r.SILVER_DEVICE_READINGS)  # fmt: skip
        assert isinstance(event, Transaction)
        if event.occurred_at > self.now:
            return r.QUARANTINE + FUTURE_RULE
        assert sum(i.qty * i.unit_price for i in event.items) == event.gross_amount
        if event.store_id in self.late:
            return r.UNKNOWN_STORE_THEN_SILVER
        assert event.store_id in self.known
        before = self.seen.get(event.event_id)
        self.seen[event.event_id] = (event.version, value)
        if before is None:
            return r.SILVER_TRANSACTIONS
        if before == (event.version, value):
            return r.SILVER_DUPLICATE
        assert event.version > before[0], "a correction must raise the version"
        return r.SILVER_CORRECTION


def test_every_record_ends_where_the_generator_says() -> None:
    generator = TrafficGenerator(config())
    records = [*generator.masters(), *generator.live(20_000), *generator.late_masters()]
    now = START + timedelta(seconds=20_000 / 2000)
    classify = Classifier(generator, now, MAX_BYTES)
    for record in records:
        assert classify.outcomes(record.topic, record.value) == list(record.outcomes), record
    faults = Counter(rec.fault for rec in records if rec.fault)
    assert set(faults) == set(FAULT_KINDS), "every fault kind appears"
    share = sum(faults.values()) / 20_000
    assert 0.17 < share < 0.23


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[tuple[str, bytes, bytes]]:
        g = TrafficGenerator(config(seed=seed, days=1))
        recs = [*g.masters(), *g.backfill(), *g.live(3000), *g.late_masters()]
        return [(x.topic, x.key, x.value) for x in recs]

    first = run(11)
    assert first == run(11)
    assert first != run(12)


def test_keys_follow_the_contract() -> None:
    generator = TrafficGenerator(config(faults=0.0))
    for record in [*generator.masters(), *generator.live(3000)]:
        obj = load_json_object(record.value)
        assert isinstance(obj, dict)
        field = {r.POS: "store_id", r.API: "batch_id", r.IOT: "device_id",
                 r.STORES: "store_id", r.PRODUCTS: "sku"}[record.topic]  # fmt: skip
        assert record.key == obj[field].encode()


def test_master_data_is_philippine_and_long_tailed() -> None:
    generator = TrafficGenerator(config(stores=200))
    stores = [parse_master(x.value) for x in generator.masters() if x.topic == r.STORES]
    assert {s.timezone for s in stores} == {TIMEZONE}  # type: ignore[union-attr]
    assert len({s.region for s in stores}) >= 8  # type: ignore[union-attr]
    sizes = sorted((s.size for s in generator.world.stores), reverse=True)
    top_decile = sum(sizes[:20]) / sum(sizes)
    assert top_decile > 0.25, "a few large stores carry a large share of traffic"
    assert len(generator.world.products) == 300
    assert len({p.category for p in generator.world.products}) >= 10


def test_backfill_has_hourly_and_weekday_seasonality_and_campaign_lift() -> None:
    generator = TrafficGenerator(config(faults=0.0, days=14, stores=30))
    hours: Counter[int] = Counter()
    by_campaign: Counter[bool] = Counter()
    days: Counter[date] = Counter()
    for record in generator.backfill():
        if record.topic != r.POS:
            continue
        event = parse_record(record.value, "pos")
        assert isinstance(event, Transaction)
        assert START - timedelta(days=15) < event.occurred_at < START
        hours[event.occurred_at.hour] += 1  # local (+08:00) hour
        days[event.occurred_at.date()] += 1
        by_campaign[event.campaign_id is not None] += 1
    assert hours[18] > 5 * hours[3], hours
    saturday, tuesday = date(2026, 11, 21), date(2026, 11, 17)
    assert days[saturday] > 1.2 * days[tuesday], days
    assert by_campaign[True] > 0


def test_campaigns_are_tagged_and_v2_discounts_are_consistent() -> None:
    generator = TrafficGenerator(config(faults=0.0))
    txns = [parse_record(x.value, "pos") for x in generator.live(5000) if x.topic == r.POS]
    v2_discounted = [t for t in txns if isinstance(t, Transaction) and t.discount_amount > 0]
    assert v2_discounted and all(t.campaign_id for t in v2_discounted)
    assert all(t.net_amount == t.gross_amount - t.discount_amount for t in v2_discounted)
    customers = Counter(t.customer.type if t.customer else None for t in txns)  # type: ignore[union-attr]
    assert customers["regular"] > customers["new"] > 0 and customers[None] > 0


def test_live_event_times_follow_the_simulated_clock() -> None:
    generator = TrafficGenerator(config(faults=0.0, rate=100.0))
    first, *_, last = [parse_record(x.value, x.topic) for x in generator.live(500)
                       if x.topic == r.POS]  # fmt: skip
    assert isinstance(first, Transaction) and isinstance(last, Transaction)
    assert START <= first.occurred_at < last.occurred_at <= START + timedelta(seconds=5)
    assert first.occurred_at.utcoffset() == timedelta(hours=8)


def test_pii_fault_puts_personal_data_in_free_text() -> None:
    generator = TrafficGenerator(config(faults=1.0))
    pii = [x for x in generator.live(2000) if x.fault == "pii" and x.topic == r.POS]
    assert pii
    event = parse_record(pii[0].value, "pos")
    assert isinstance(event, Transaction) and event.notes and event.customer
    assert event.customer.email and event.customer.phone


def test_manifest_accounts_for_every_record() -> None:
    generator = TrafficGenerator(config())
    manifest = Manifest()
    records = [*generator.masters(), *generator.live(5000), *generator.late_masters()]
    for record in records:
        manifest.add(record, record.topic)
    expected = manifest.expected()
    outcomes = sum(len(x.outcomes) for x in records)
    assert manifest.sent == len(records)
    assert sum(manifest.destinations.values()) == outcomes
    assert (
        expected["bronze_error_log"]
        + expected["bronze_transactions_raw"]
        + expected["silver_master_stores"]
        + expected["silver_master_products"]
    ) == outcomes
    assert expected["silver_master_stores"] == 23  # 20 + 3 late stores


def test_default_start_is_the_hour_for_seeded_runs() -> None:
    now = datetime(2026, 11, 25, 19, 42, 7, 5, tzinfo=UTC)
    assert default_start(7, now) == datetime(2026, 11, 25, 19, tzinfo=UTC)
    assert default_start(None, now) == now


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TrafficGenerator(config(start=datetime(2026, 1, 1)))


def test_decimal_money_is_exact_on_the_wire() -> None:
    generator = TrafficGenerator(config(faults=0.0))
    for record in generator.live(2000):
        if record.topic == r.POS and b"pos.transaction/2" in record.value:
            event = parse_record(record.value, "pos")
            assert isinstance(event, Transaction)
            assert event.gross_amount.as_tuple().exponent == -2
            assert event.gross_amount == sum(
                (i.unit_price * i.qty for i in event.items), Decimal(0)
            )
            return
    pytest.fail("no v2 transaction generated")
