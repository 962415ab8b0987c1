"""The event parser: every valid kind parses, every fault maps to its documented rule."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.common.events import (
    CampaignSpend,
    DeviceReading,
    ProductRecord,
    Rejection,
    StoreRecord,
    Transaction,
    event_to_json,
    parse_api_batch,
    parse_master,
    parse_record,
    rules,
    transaction_from_json,
)

POS_V1: dict[str, Any] = {
    "schema": "pos.transaction/1",
    "event_id": "T0042-000123",
    "store_id": "S0042",
    "terminal_id": "T0042-1",
    "occurred_at": "2026-11-25T10:15:00+08:00",
    "currency": "PHP",
    "total_amount": 125.50,
    "payment_method": "cash",
    "customer": {"id": "C-99812", "type": "regular", "phone": "+639171234567"},
    "items": [
        {"sku": "P-1001", "qty": 2, "unit_price": 20.00},
        {"sku": "P-2040", "qty": 1, "unit_price": 85.50},
    ],
    "campaign_id": None,
    "version": 1,
}
POS_V2 = {
    **{k: v for k, v in POS_V1.items() if k != "total_amount"},
    "schema": "pos.transaction/2",
    "gross_amount": "125.50",
    "discount_amount": 0,
}
IOT_SALE = {
    "schema": "iot.reading/1",
    "device_id": "D-S0042-vend",
    "store_id": "S0042",
    "kind": "sale",
    "event_id": "V-1",
    "sku": "P-1001",
    "qty": 3,
    "amount": 60.00,
    "occurred_at": "2026-11-25T10:15:00+08:00",
}
IOT_FOOTFALL = {
    "schema": "iot.reading/1",
    "device_id": "D-S0042-door",
    "store_id": "S0042",
    "kind": "footfall",
    "value": 3,
    "occurred_at": "2026-11-25T10:15:00+08:00",
}
API_SPEND = {
    "type": "campaign_spend",
    "campaign_id": "CMP-7",
    "store_id": "S0042",
    "date": "2026-11-25",
    "spend": 1500.00,
    "channel": "social",
}
STORE = {
    "schema": "master.store/1",
    "store_id": "S0042",
    "name": "Scout Cubao",
    "region": "NCR",
    "city": "Quezon City",
    "timezone": "Asia/Manila",
    "opened_on": "2021-03-01",
}
PRODUCT = {
    "schema": "master.product/1",
    "sku": "P-1001",
    "name": "Chips 60g",
    "brand": "Oishi",
    "category": "snacks",
    "unit_price": 20.00,
}


def wire(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()


def test_pos_v1_parses_to_transaction_with_exact_decimals() -> None:
    event = parse_record(wire(POS_V1), "pos")
    assert isinstance(event, Transaction)
    assert event.source_system == "pos"
    assert event.gross_amount == event.net_amount == Decimal("125.5")
    assert str(event.items[0].unit_price) == "20.00"  # money is held in cents, as stored
    assert event.occurred_at.utcoffset() == timedelta(hours=8)
    assert event.customer is not None and event.customer.phone == "+639171234567"


def test_json_numbers_are_read_as_exact_decimals() -> None:
    event = parse_record(
        b'{"schema":"pos.transaction/1","event_id":"E","store_id":"S",'
        b'"occurred_at":"2026-11-25T10:15:00+08:00","total_amount":125.50,'
        b'"items":[{"sku":"P","qty":1,"unit_price":0.10}]}',
        "pos",
    )
    assert isinstance(event, Transaction)
    assert str(event.gross_amount) == "125.50"
    assert str(event.items[0].unit_price) == "0.10"


def test_v1_and_v2_upcast_to_the_same_transaction() -> None:
    v1 = parse_record(wire(POS_V1), "pos")
    v2 = parse_record(wire(POS_V2), "pos")
    assert isinstance(v1, Transaction) and isinstance(v2, Transaction)
    assert v1 == v2


def test_v2_discount_gives_net() -> None:
    event = parse_record(wire(with_(POS_V2, discount_amount="25.50")), "pos")
    assert isinstance(event, Transaction)
    assert (event.gross_amount, event.discount_amount, event.net_amount) == (
        Decimal("125.50"),
        Decimal("25.50"),
        Decimal("100.00"),
    )


def test_json_round_trip_keeps_decimal_and_offset() -> None:
    event = parse_record(wire(with_(POS_V2, occurred_at="2026-11-25T10:15:00.250-03:30")), "pos")
    assert isinstance(event, Transaction)
    back = transaction_from_json(event_to_json(event))
    assert back == event
    assert back.occurred_at.utcoffset() == timedelta(hours=-3, minutes=-30)
    assert back.gross_amount.as_tuple() == Decimal("125.50").as_tuple()
    assert [i.unit_price.as_tuple() for i in back.items] == [
        i.unit_price.as_tuple() for i in event.items
    ]


def test_api_records_carry_batch_and_partner() -> None:
    record = {k: v for k, v in POS_V1.items() if k != "schema"} | {"type": "transaction"}
    txn = parse_record(record, "api", batch_id="B-1", partner="grabmart")
    assert isinstance(txn, Transaction)
    assert (txn.source_system, txn.batch_id, txn.partner) == ("api", "B-1", "grabmart")
    spend = parse_record(wire(API_SPEND), "api", batch_id="B-1", partner="grabmart")
    assert isinstance(spend, CampaignSpend)
    assert spend.spend == Decimal("1500.0") and spend.batch_id == "B-1"


def test_api_batch_envelope_keeps_records_raw() -> None:
    batch = parse_api_batch(
        wire(
            {
                "schema": "api.batch/1",
                "batch_id": "B-1",
                "partner": "grabmart",
                "sent_at": "2026-11-25T10:20:00+08:00",
                "records": [API_SPEND, 42],
            }
        )
    )
    assert not isinstance(batch, Rejection)
    assert batch.records[1] == 42
    assert parse_record(batch.records[1], "api") == Rejection(
        rules.NOT_OBJECT, None, "JSON value is a number"
    )


def test_iot_sale_becomes_an_iot_transaction() -> None:
    event = parse_record(wire(IOT_SALE), "iot")
    assert isinstance(event, Transaction)
    assert event.source_system == "iot"
    assert event.gross_amount == event.net_amount == Decimal("60.0")
    assert [(i.sku, i.qty, i.unit_price) for i in event.items] == [("P-1001", 3, Decimal("20"))]


def test_iot_footfall_and_temperature_are_device_readings() -> None:
    footfall = parse_record(wire(IOT_FOOTFALL), "iot")
    assert isinstance(footfall, DeviceReading) and footfall.value == 3
    temp = parse_record(wire(with_(IOT_FOOTFALL, kind="temperature", value="4.5")), "iot")
    assert isinstance(temp, DeviceReading) and temp.value == Decimal("4.5")


def test_master_records_parse() -> None:
    store = parse_master(wire(STORE))
    product = parse_master(wire(PRODUCT))
    assert isinstance(store, StoreRecord) and store.timezone == "Asia/Manila"
    assert isinstance(product, ProductRecord) and product.unit_price == Decimal("20.0")


def test_unknown_extra_fields_are_ignored() -> None:
    assert isinstance(parse_record(wire(with_(POS_V1, loyalty_tier="gold")), "pos"), Transaction)


@pytest.mark.parametrize(
    ("raw", "source", "rule", "field"),
    [
        (b"\xff\xfe not utf-8", "pos", rules.NOT_JSON, None),
        (b'{"schema": "pos.transaction/1", ', "pos", rules.NOT_JSON, None),
        (b'{"total_amount": NaN}', "pos", rules.NOT_JSON, None),
        (b"[1, 2, 3]", "pos", rules.NOT_OBJECT, None),
        (b'"just a string"', "iot", rules.NOT_OBJECT, None),
        (wire(with_(POS_V1, schema="pos.transaction/9")), "pos", rules.UNKNOWN_SCHEMA, "schema"),
        (wire(with_(POS_V1, schema=DROP)), "pos", rules.MISSING_FIELD, "schema"),
        (wire(with_(POS_V1, schema=1)), "pos", rules.WRONG_TYPE, "schema"),
        (
            wire(with_(IOT_FOOTFALL, schema="pos.transaction/1")),
            "iot",
            rules.UNKNOWN_SCHEMA,
            "schema",
        ),
        (wire(with_(POS_V1, store_id=DROP)), "pos", rules.MISSING_FIELD, "store_id"),
        (wire(with_(POS_V1, store_id=None)), "pos", rules.MISSING_FIELD, "store_id"),
        (wire(with_(POS_V1, items=DROP)), "pos", rules.MISSING_FIELD, "items"),
        (wire(with_(POS_V1, total_amount="12,50")), "pos", rules.WRONG_TYPE, "total_amount"),
        (wire(with_(POS_V1, total_amount=True)), "pos", rules.WRONG_TYPE, "total_amount"),
        (wire(with_(POS_V1, store_id=42)), "pos", rules.WRONG_TYPE, "store_id"),
        (wire(with_(POS_V1, customer="C-1")), "pos", rules.WRONG_TYPE, "customer"),
        (
            wire(with_(POS_V1, items=[{"sku": "P", "qty": "2", "unit_price": 1}])),
            "pos",
            rules.WRONG_TYPE,
            "items.0.qty",
        ),
        (wire(with_(POS_V1, occurred_at=1764036900)), "pos", rules.WRONG_TYPE, "occurred_at"),
        (wire(with_(POS_V1, total_amount=0)), "pos", rules.NON_POSITIVE_AMOUNT, "total_amount"),
        (wire(with_(POS_V1, total_amount=-5.5)), "pos", rules.NON_POSITIVE_AMOUNT, "total_amount"),
        (wire(with_(POS_V2, gross_amount="-1")), "pos", rules.NON_POSITIVE_AMOUNT, "gross_amount"),
        (wire(with_(IOT_SALE, amount=0)), "iot", rules.NON_POSITIVE_AMOUNT, "amount"),
        (wire(with_(API_SPEND, spend=-10)), "api", rules.NON_POSITIVE_AMOUNT, "spend"),
        (wire(with_(PRODUCT, unit_price=0)), "master", rules.NON_POSITIVE_AMOUNT, "unit_price"),
        (
            wire(with_(POS_V1, items=[{"sku": "P", "qty": 0, "unit_price": 1}])),
            "pos",
            rules.INVALID_QUANTITY,
            "items.0.qty",
        ),
        (wire(with_(IOT_SALE, qty=-2)), "iot", rules.INVALID_QUANTITY, "qty"),
        (wire(with_(STORE, timezone="Asia/Manilla")), "master", rules.INVALID_TIMEZONE, "timezone"),
        (
            wire(with_(STORE, timezone="../../etc/passwd")),
            "master",
            rules.INVALID_TIMEZONE,
            "timezone",
        ),
        (
            wire(with_(POS_V1, occurred_at="2026-11-25T10:15:00")),
            "pos",
            rules.INVALID_VALUE,
            "occurred_at",
        ),
        (
            wire(with_(POS_V1, occurred_at="2026-13-25T10:15:00Z")),
            "pos",
            rules.INVALID_VALUE,
            "occurred_at",
        ),
        (wire(with_(POS_V1, currency="peso")), "pos", rules.INVALID_VALUE, "currency"),
        (
            wire(with_(POS_V1, customer={"type": "vip"})),
            "pos",
            rules.INVALID_VALUE,
            "customer.type",
        ),
        (wire(with_(POS_V1, items=[])), "pos", rules.INVALID_VALUE, "items"),
        (wire(with_(POS_V1, version=0)), "pos", rules.INVALID_VALUE, "version"),
        (wire(with_(POS_V2, discount_amount=-1)), "pos", rules.INVALID_VALUE, "discount_amount"),
        (wire(with_(IOT_FOOTFALL, kind="humidity")), "iot", rules.INVALID_VALUE, "kind"),
        (wire(with_(IOT_FOOTFALL, value=-1)), "iot", rules.INVALID_VALUE, "value"),
        (wire(with_(IOT_FOOTFALL, value=2.5)), "iot", rules.WRONG_TYPE, "value"),
        (
            wire(with_(IOT_FOOTFALL, kind="temperature", value=450)),
            "iot",
            rules.INVALID_VALUE,
            "value",
        ),
        (wire(with_(API_SPEND, type="refund")), "api", rules.INVALID_VALUE, "type"),
        (wire(with_(API_SPEND, date="25/11/2026")), "api", rules.INVALID_VALUE, "date"),
    ],
)
def test_faults_map_to_documented_rules(
    raw: bytes, source: str, rule: str, field: str | None
) -> None:
    result = parse_master(raw) if source == "master" else parse_record(raw, source)
    assert isinstance(result, Rejection), result
    assert (result.rule, result.field) == (rule, field), result


def test_rejection_detail_never_echoes_the_input() -> None:
    result = parse_record(wire(with_(POS_V1, store_id="+639171234567" * 100)), "pos")
    assert isinstance(result, Rejection)
    assert "+639171234567" not in result.detail


def test_unknown_schema_is_named_in_detail() -> None:
    result = parse_record(wire(with_(POS_V1, schema="pos.refund/1")), "pos")
    assert isinstance(result, Rejection) and "pos.refund/1" in result.detail


def test_envelope_and_master_schema_rejections() -> None:
    assert parse_api_batch(wire(with_(POS_V1))) == Rejection(
        rules.UNKNOWN_SCHEMA, "schema", "unknown schema 'pos.transaction/1'"
    )
    bad = parse_api_batch(
        wire({"schema": "api.batch/1", "batch_id": "B", "partner": "p", "records": []})
    )
    assert isinstance(bad, Rejection) and (bad.rule, bad.field) == (rules.MISSING_FIELD, "sent_at")


def test_unknown_source_system_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="source system"):
        parse_record(wire(POS_V1), "fax")


def test_transaction_model_checks_net() -> None:
    event = parse_record(wire(POS_V1), "pos")
    assert isinstance(event, Transaction)
    data = json.loads(event_to_json(event))
    data["net_amount"] = "1.00"
    with pytest.raises(ValueError, match="net_amount"):
        transaction_from_json(json.dumps(data))


def test_schema_files_match_the_models() -> None:
    from services.common.schema_commands import default_schema_dir, drifted

    assert drifted(default_schema_dir()) == [], "run `scout schemas export` and commit"


def test_schema_check_detects_drift(tmp_path: Any) -> None:
    from services.common.schema_commands import drifted, export

    assert len(export(tmp_path)) == 6
    assert drifted(tmp_path) == []
    target = tmp_path / "pos.transaction.v1.schema.json"
    target.write_text(target.read_text().replace('"total_amount"', '"amount"'))
    (tmp_path / "pos.transaction.v0.schema.json").write_text("{}")
    assert drifted(tmp_path) == ["pos.transaction.v1.schema.json", "pos.transaction.v0.schema.json"]


def test_valid_examples_satisfy_the_exported_schema_shape() -> None:
    from services.common.events import json_schema_for

    doc = json_schema_for("pos.transaction/1")
    assert set(doc["required"]) == {
        "schema",
        "event_id",
        "store_id",
        "occurred_at",
        "items",
        "total_amount",
    }
    assert doc["properties"]["schema"]["const"] == "pos.transaction/1"


def _parsed_examples() -> list[Any]:
    """One parsed event of every internal model, each built by the parser's construct."""
    v2 = {**POS_V1, "schema": "pos.transaction/2", "gross_amount": 125.50,
          "discount_amount": 5}  # fmt: skip
    del v2["total_amount"]
    iot = {"schema": "iot.reading/1", "kind": "sale", "event_id": "I-1", "store_id": "S0042",
           "device_id": "D-1", "occurred_at": "2026-11-25T10:15:00+08:00", "sku": "P-1",
           "qty": 3, "amount": 10}  # fmt: skip
    raws = [
        parse_record(_raw(POS_V1), "pos"),
        parse_record(_raw(v2), "pos"),
        parse_record(_raw(iot), "iot"),
        parse_record(_raw({**iot, "kind": "footfall", "value": 12}), "iot"),
        parse_record(_raw({"type": "campaign_spend", "campaign_id": "C-1", "store_id": "S1",
                           "date": "2026-11-25", "spend": 100}), "api", batch_id="B", partner="P"),
        parse_master(_raw({"schema": "master.store/1", "store_id": "S1", "name": "n",
                           "region": "r", "city": "c", "timezone": "Asia/Manila"})),
        parse_master(_raw({"schema": "master.product/1", "sku": "P-1", "name": "n",
                           "brand": "b", "category": "c", "unit_price": 2})),
    ]  # fmt: skip
    return raws


def _raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.parametrize("event", _parsed_examples(), ids=lambda e: type(e).__name__)
def test_parser_construct_equals_pydantic_model_construct(event: Any) -> None:
    # The parser builds its internal models without pydantic's model_construct (a third of
    # its cost); what it builds must be the same object, fields set and all.
    assert not isinstance(event, Rejection)
    given = {name: getattr(event, name) for name in event.model_fields_set}
    reference = type(event).model_construct(**given)
    assert event == reference
    assert event.model_fields_set == reference.model_fields_set
    assert event.__dict__ == reference.__dict__
    for item in getattr(event, "items", ()):
        assert item == type(item).model_construct(**item.__dict__)


@pytest.mark.parametrize(
    ("amount", "accepted"),
    [("99999999.99", True), ("99999999.994", True), ("99999999.995", False), ("1E+8", False)],
)
def test_money_bound_holds_after_rounding(amount: str, accepted: bool) -> None:
    # An amount that rounds to more than MONEY_MAX (half away from zero) is outside it.
    payload = {**POS_V1, "total_amount": amount,
               "items": [{"sku": "P-1", "qty": 1, "unit_price": amount}]}  # fmt: skip
    event = parse_record(json.dumps(payload).encode(), "pos")
    assert isinstance(event, Transaction) is accepted, event
    if accepted:
        assert isinstance(event, Transaction) and event.net_amount <= Decimal("99999999.99")
