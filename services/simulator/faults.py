"""Fault injection: turn a valid payload into one of the faulty kinds the layers must handle.

Pure functions over a payload dict and a seeded ``random.Random``; each returns the bytes to
publish and the expected destination (bronze error log reason or silver outcome), which the
manifest counts. The parser rules named here are those of ``services.common.events.rules``;
``future_timestamp`` and ``unknown_store`` are silver's context rules (CONTRACTS §2.4).
"""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta
from typing import Any

import orjson

from services.common.events import rules
from services.simulator import records as r

FAULT_KINDS = (
    "not_json",
    "not_object",
    "oversized",
    "unknown_schema",
    "missing_field",
    "wrong_type",
    "non_positive_amount",
    "invalid_quantity",
    "future_timestamp",
    "unknown_store",
    "duplicate",
    "correction",
    "late",
    "pii",
)
FAULT_WEIGHTS = (6, 4, 1, 5, 8, 8, 8, 6, 6, 6, 10, 10, 12, 10)
# Faults that fit a record of another topic than POS (the rest are POS only).
IOT_FAULTS = frozenset(
    {"not_json", "not_object", "missing_field", "wrong_type", "non_positive_amount",
     "future_timestamp", "late"}
)  # fmt: skip
API_RECORD_FAULTS = frozenset(
    {"missing_field", "wrong_type", "non_positive_amount", "invalid_quantity",
     "future_timestamp", "late", "pii"}
)  # fmt: skip
FUTURE_RULE = "future_timestamp"
PII_NOTES = (
    "Customer Juan Dela Cruz asked for a callback on +63 917 555 0142",
    "Deliver to maria.santos@example.com, landline (02) 8555 1234",
    "Suki: Ana Reyes, mobile 09181234567, pays on the 15th",
)


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def amount_field(payload: dict[str, Any]) -> str:
    """The money field of a transaction payload (v1 / API record: total, v2: gross)."""
    return "gross_amount" if "gross_amount" in payload else "total_amount"


def not_json(rng: random.Random, payload: Any) -> tuple[bytes, str]:
    """Truncated JSON, or bytes that are not UTF-8 at all."""
    data = dumps(payload)
    if rng.random() < 0.7:
        return data[: max(1, len(data) // 2)], r.BRONZE_ERROR + "not_json"
    return b"\xff\xfe" + data.decode().encode("utf-16-le")[:64], r.BRONZE_ERROR + "not_utf8"


def not_object(rng: random.Random, payload: Any) -> tuple[bytes, str]:
    """Valid JSON whose top level is an array, a string or a number."""
    choice = rng.randrange(3)
    value: Any = [payload] if choice == 0 else ("a string" if choice == 1 else 42)
    return dumps(value), r.BRONZE_ERROR + "not_object"


def oversized(payload: dict[str, Any], max_record_bytes: int) -> tuple[bytes, str]:
    """A valid transaction padded past the size limit (bronze refuses it as too_large)."""
    big = dict(payload, notes="x" * (max_record_bytes + 1024))
    return dumps(big), r.BRONZE_ERROR + "too_large"


def corrupt_transaction(
    rng: random.Random, kind: str, payload: dict[str, Any], *, event_time: datetime
) -> tuple[dict[str, Any], str]:
    """A copy of a transaction payload with one field-level fault, and its destination."""
    out = copy.deepcopy(payload)
    money = amount_field(out)
    if kind == "unknown_schema":
        out["schema"] = rng.choice(("pos.transaction/3", "pos.refund/1", "POS.TRANSACTION/1"))
        return out, r.QUARANTINE + rules.UNKNOWN_SCHEMA
    if kind == "missing_field":
        del out[rng.choice(("event_id", "store_id", "occurred_at", "items", money))]
        return out, r.QUARANTINE + rules.MISSING_FIELD
    if kind == "wrong_type":
        variant = rng.randrange(4)
        if variant == 0:
            out["store_id"] = 4242
        elif variant == 1:
            out[money] = "one hundred"
        elif variant == 2:
            out["items"][0]["qty"] = str(out["items"][0]["qty"])
        else:
            out["occurred_at"] = int(event_time.timestamp())
        return out, r.QUARANTINE + rules.WRONG_TYPE
    if kind == "non_positive_amount":
        out[money] = rng.choice((0, -abs(float(out[money]))))
        return out, r.QUARANTINE + rules.NON_POSITIVE_AMOUNT
    if kind == "invalid_quantity":
        rng.choice(out["items"])["qty"] = rng.choice((0, -1))
        return out, r.QUARANTINE + rules.INVALID_QUANTITY
    if kind == "future_timestamp":
        out["occurred_at"] = _shift(event_time, timedelta(days=rng.uniform(1, 7)))
        return out, r.QUARANTINE + FUTURE_RULE
    if kind == "late":
        out["occurred_at"] = _shift(event_time, -timedelta(days=rng.uniform(2, 10)))
        return out, r.SILVER_TRANSACTIONS
    if kind == "pii":
        out["notes"] = rng.choice(PII_NOTES)
        customer = out.get("customer") or {"type": "regular", "id": "C-PII-1"}
        out["customer"] = dict(customer, name="Juan Dela Cruz", email="juan.dc@example.com",
                               phone="+639175550142")  # fmt: skip
        return out, r.SILVER_TRANSACTIONS
    raise ValueError(f"not a transaction field fault: {kind}")


def corrupt_iot(
    rng: random.Random, kind: str, payload: dict[str, Any], *, event_time: datetime
) -> tuple[dict[str, Any], str]:
    """A copy of an IoT reading with one field-level fault, and its destination."""
    out = dict(payload)
    ok = r.SILVER_TRANSACTIONS if out["kind"] == "sale" else r.SILVER_DEVICE_READINGS
    if kind == "missing_field":
        del out[rng.choice(("device_id", "store_id", "occurred_at"))]
        return out, r.QUARANTINE + rules.MISSING_FIELD
    if kind == "wrong_type":
        out["device_id"] = 7
        return out, r.QUARANTINE + rules.WRONG_TYPE
    if kind == "non_positive_amount":
        if out["kind"] != "sale":
            out["store_id"] = ["S0001"]  # readings have no amount; fall back to a type fault
            return out, r.QUARANTINE + rules.WRONG_TYPE
        out["amount"] = 0
        return out, r.QUARANTINE + rules.NON_POSITIVE_AMOUNT
    if kind == "future_timestamp":
        out["occurred_at"] = _shift(event_time, timedelta(days=rng.uniform(1, 7)))
        return out, r.QUARANTINE + FUTURE_RULE
    if kind == "late":
        out["occurred_at"] = _shift(event_time, -timedelta(days=rng.uniform(2, 10)))
        return out, ok
    raise ValueError(f"not an IoT field fault: {kind}")


def correct(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A correction of a sent transaction: same event_id, version + 1, one quantity changed
    and the amounts recomputed (so it is valid and replaces the earlier version)."""
    out = copy.deepcopy(payload)
    out["version"] = int(out.get("version", 1)) + 1
    line = rng.choice(out["items"])
    line["qty"] = line["qty"] + 1
    money = amount_field(out)
    as_text = isinstance(out[money], str)
    cents = sum(round(float(i["unit_price"]) * 100) * i["qty"] for i in out["items"])
    out[money] = money_value(cents, as_text)
    return out


def money_value(cents: int, as_text: bool) -> float | str:
    """Centavos as a JSON number or a decimal string (both allowed by the contract)."""
    if as_text:
        sign = "-" if cents < 0 else ""
        return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    return cents / 100


def _shift(event_time: datetime, delta: timedelta) -> str:
    return (event_time + delta).isoformat(timespec="microseconds")
