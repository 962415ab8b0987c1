"""Scalar field types shared by the wire and internal event models.

Each type validates one kind of value and fails with an error whose *type* is the
rejection rule silver quarantines by (see :mod:`services.common.events.rules`), so the
parser can map a pydantic error to a rule without guessing from field names. Error
messages never echo the input: payloads may carry personal data.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Strict, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from services.common.events import rules

_DECIMAL_TEXT = re.compile(r"-?\d+(\.\d+)?")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

_MONEY_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]
}
_POSITIVE_MONEY_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
    ],
    "description": "greater than 0; a JSON number or a decimal string",
}


def _error(rule: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(rule, message)


def to_decimal(value: object) -> Decimal:
    """A JSON number (int, or Decimal when parsed with ``parse_float=Decimal``) or a decimal
    string, exactly. A Python float is taken by its shortest repr (``0.1`` → ``Decimal('0.1')``)."""
    if isinstance(value, bool):
        raise _error(rules.WRONG_TYPE, "expected a number or a decimal string, got a boolean")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _error(rules.INVALID_VALUE, "number is not finite")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        try:
            result = Decimal(repr(value))
        except InvalidOperation:  # pragma: no cover - repr of a float always parses
            raise _error(rules.WRONG_TYPE, "not a number") from None
        if not result.is_finite():
            raise _error(rules.INVALID_VALUE, "number is not finite")
        return result
    if isinstance(value, str):
        if _DECIMAL_TEXT.fullmatch(value.strip()):
            return Decimal(value.strip())
        raise _error(rules.WRONG_TYPE, "string is not a decimal number")
    raise _error(rules.WRONG_TYPE, f"expected a number or a decimal string, got {_kind(value)}")


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise _error(rules.NON_POSITIVE_AMOUNT, "amount must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise _error(rules.INVALID_VALUE, "amount must not be negative")
    return value


def _quantity(value: int) -> int:
    if value <= 0:
        raise _error(rules.INVALID_QUANTITY, "quantity must be at least 1")
    return value


def _version(value: int) -> int:
    if value < 1:
        raise _error(rules.INVALID_VALUE, "version must be at least 1")
    return value


def to_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``±hh:mm``); the offset is kept."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _error(rules.INVALID_VALUE, "timestamp has no UTC offset")
        return value
    if not isinstance(value, str):
        raise _error(rules.WRONG_TYPE, f"expected an RFC 3339 string, got {_kind(value)}")
    if not _RFC3339.fullmatch(value):
        raise _error(rules.INVALID_VALUE, "not an RFC 3339 timestamp with an offset")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _error(rules.INVALID_VALUE, "not a valid calendar date or time") from None


def to_day(value: object) -> date:
    """A calendar date ``YYYY-MM-DD``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise _error(rules.WRONG_TYPE, f"expected a YYYY-MM-DD string, got {_kind(value)}")
    if not _DAY.fullmatch(value):
        raise _error(rules.INVALID_VALUE, "not a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _error(rules.INVALID_VALUE, "not a valid calendar date") from None


@lru_cache(maxsize=1024)
def is_timezone(name: str) -> bool:
    """True when ``name`` is an IANA time zone known to this system (e.g. ``Asia/Manila``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _timezone(value: str) -> str:
    if not is_timezone(value):
        raise _error(rules.INVALID_TIMEZONE, "not an IANA time zone")
    return value


def _footfall(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(rules.WRONG_TYPE, f"footfall must be a JSON integer, got {_kind(value)}")
    if value < 0:
        raise _error(rules.INVALID_VALUE, "footfall must not be negative")
    return Decimal(value)


def _temperature(value: Decimal) -> Decimal:
    if not Decimal(-50) <= value <= Decimal(100):
        raise _error(rules.INVALID_VALUE, "temperature outside -50..100 °C")
    return value


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


Money = Annotated[Decimal, BeforeValidator(to_decimal), WithJsonSchema(_MONEY_JSON_SCHEMA)]
PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(to_decimal),
    AfterValidator(_positive),
    WithJsonSchema(_POSITIVE_MONEY_JSON_SCHEMA),
]
NonNegativeMoney = Annotated[
    Decimal,
    BeforeValidator(to_decimal),
    AfterValidator(_non_negative),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            ]
        }
    ),
]
Quantity = Annotated[
    int,
    Strict(),
    AfterValidator(_quantity),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]
Version = Annotated[
    int,
    Strict(),
    AfterValidator(_version),
    WithJsonSchema({"type": "integer", "minimum": 1, "default": 1}),
]
Timestamp = Annotated[
    datetime,
    BeforeValidator(to_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset, e.g. 2026-11-25T10:15:00+08:00",
        }
    ),
]
Day = Annotated[date, BeforeValidator(to_day), WithJsonSchema({"type": "string", "format": "date"})]
Id = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, Strict(), StringConstraints(max_length=10_000)]
Currency = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]
TimezoneName = Annotated[
    str,
    Strict(),
    AfterValidator(_timezone),
    WithJsonSchema({"type": "string", "description": "IANA time zone, e.g. Asia/Manila"}),
]
Footfall = Annotated[
    Decimal, BeforeValidator(_footfall), WithJsonSchema({"type": "integer", "minimum": 0})
]
Temperature = Annotated[
    Decimal,
    BeforeValidator(to_decimal),
    AfterValidator(_temperature),
    WithJsonSchema({"type": "number", "minimum": -50, "maximum": 100}),
]
