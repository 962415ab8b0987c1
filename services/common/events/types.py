"""Scalar field types shared by the wire and internal event models: the input domain.

The accepted range of every field is written here once, as the range the pipeline can store
and compute with end to end (silver's columns, gold's sums, platinum's features): money is
rounded to cents like ``numeric(12,2)`` rounds it and bounded by :data:`MONEY_MAX`; integers
stay inside PostgreSQL's ``integer``; timestamps inside :data:`TIME_MIN`..:data:`TIME_MAX`;
strings and JSON nesting are bounded. The JSON Schemas in ``schemas/events/`` are generated
from these types, so producers can check the same bounds before sending.

Each type validates one kind of value and fails with an error whose *type* is the
rejection rule silver quarantines by (see :mod:`services.common.events.rules`), so the
parser can map a pydantic error to a rule without guessing from field names. Error
messages never echo the input: payloads may carry personal data.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from services.common.events import rules

# The input domain (CONTRACTS §1): what one field may hold so that every layer can store it.
CENT = Decimal("0.01")
MONEY_MAX = Decimal("99999999.99")  # one amount, price or line (numeric(12,2) holds 1e10)
_MONEY_ROUNDS_PAST_MAX = MONEY_MAX + CENT / 2  # from here on an amount rounds beyond MONEY_MAX
QTY_MAX = 1_000_000  # units of one line (a bulk sale of a million units is a sale)
ITEMS_MAX = 1_000  # lines of one basket, so a basket's units stay < 2^31 (integer)
INT4_MAX = 2**31 - 1  # PostgreSQL integer
FOOTFALL_MAX = 1_000_000  # people through one door in one reading
TEMPERATURE_RANGE = (Decimal(-50), Decimal(100))  # °C
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)  # event times; every offset stays in range
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
DAY_MIN = date(1900, 1, 1)  # calendar dates (a store opened in 1950 is a store)
DAY_MAX = date(2099, 12, 31)
ID_MAX_CHARS = 200
TEXT_MAX_CHARS = 10_000
JSON_DEPTH_MAX = 32  # nesting of one source record (events need 4; decoders differ past ~1000)
API_RECORDS_MAX = 10_000  # records in one API batch envelope

# ASCII digits only: Python's \d and Decimal() also take Thai or Devanagari digits.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Exponents beyond this are refused before any arithmetic (Decimal raises Overflow past its
# context's limit, and int() of 1e999999999 would build a billion digits).
_MAGNITUDE_MAX = 30


def _money_json_schema(minimum: Decimal | None, description: str) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "maximum": float(MONEY_MAX)}
    if minimum is not None:
        number["minimum"] = float(minimum)
    return {
        "anyOf": [number, {"type": "string", "pattern": f"^{_DECIMAL_TEXT.pattern}$"}],
        "description": f"{description}; rounded to cents; a JSON number or a decimal string",
    }


def _error(rule: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(rule, message)


def to_decimal(value: object) -> Decimal:
    """A JSON number (int, or Decimal when parsed with ``parse_float=Decimal``) or a decimal
    string, exactly. A Python float is taken by its shortest repr (``0.1`` → ``Decimal('0.1')``)."""
    if isinstance(value, bool):
        raise _error(rules.WRONG_TYPE, "expected a number or a decimal string, got a boolean")
    if isinstance(value, Decimal):
        return _bounded(value)
    if isinstance(value, int):
        return _bounded(Decimal(value))
    if isinstance(value, float):
        try:
            result = Decimal(repr(value))
        except InvalidOperation:  # pragma: no cover - repr of a float always parses
            raise _error(rules.WRONG_TYPE, "not a number") from None
        return _bounded(result)
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value.strip()):
            raise _error(rules.WRONG_TYPE, "string is not a decimal number")
        try:
            return _bounded(Decimal(value.strip()))
        except InvalidOperation:  # an exponent beyond what any decimal holds
            raise _error(rules.INVALID_VALUE, f"number beyond 1e{_MAGNITUDE_MAX}") from None
    raise _error(rules.WRONG_TYPE, f"expected a number or a decimal string, got {_kind(value)}")


def _bounded(value: Decimal) -> Decimal:
    """A finite number of a magnitude arithmetic can take (tiny ones become 0)."""
    if not value.is_finite():
        raise _error(rules.INVALID_VALUE, "number is not finite")
    if value and value.adjusted() > _MAGNITUDE_MAX:
        raise _error(rules.INVALID_VALUE, f"number beyond 1e{_MAGNITUDE_MAX}")
    if value and value.adjusted() < -_MAGNITUDE_MAX:
        return Decimal(0)
    return value


def to_cents(value: object) -> Decimal:
    """Money: :func:`to_decimal`, rounded to cents the way ``numeric(12,2)`` rounds (half away
    from zero), at most :data:`MONEY_MAX` in size."""
    if (
        type(value) is Decimal  # a JSON number: the common case, without to_decimal's checks
        and value.is_finite()
        and -_MONEY_ROUNDS_PAST_MAX < value < _MONEY_ROUNDS_PAST_MAX
        and value.adjusted() >= -_MAGNITUDE_MAX
    ):
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    return _cents(to_decimal(value))


def _cents(amount: Decimal) -> Decimal:
    if abs(amount) >= _MONEY_ROUNDS_PAST_MAX:
        raise _error(rules.INVALID_VALUE, f"amount beyond ±{MONEY_MAX}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise _error(rules.NON_POSITIVE_AMOUNT, "amount must be at least 0.01 (after rounding)")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise _error(rules.INVALID_VALUE, "amount must not be negative")
    return value


def to_integer(value: object) -> int:
    """A JSON integer. As in JSON Schema, a number with no fractional part is one (``2.0``,
    ``1E+2``): PostgreSQL's jsonb writes it that way, so replay reads what streaming read."""
    if isinstance(value, bool):
        raise _error(rules.WRONG_TYPE, "expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        number = _bounded(Decimal(repr(value)) if isinstance(value, float) else value)
        if number == number.to_integral_value():
            return int(number)
    raise _error(rules.WRONG_TYPE, f"expected an integer, got {_kind(value)}")


def _quantity(value: int) -> int:
    if value <= 0:
        raise _error(rules.INVALID_QUANTITY, "quantity must be at least 1")
    if value > QTY_MAX:
        raise _error(rules.INVALID_VALUE, f"quantity beyond {QTY_MAX}")
    return value


def _version(value: int) -> int:
    if not 1 <= value <= INT4_MAX:
        raise _error(rules.INVALID_VALUE, f"version must be 1..{INT4_MAX}")
    return value


def to_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``±hh:mm``); the offset is kept."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _error(rules.INVALID_VALUE, "timestamp has no UTC offset")
        parsed = value
    elif not isinstance(value, str):
        raise _error(rules.WRONG_TYPE, f"expected an RFC 3339 string, got {_kind(value)}")
    elif not _RFC3339.fullmatch(value):
        raise _error(rules.INVALID_VALUE, "not an RFC 3339 timestamp with an offset")
    else:
        try:
            parsed = _from_rfc3339(value)
        except (ValueError, OverflowError):  # overflow: a leap second at the end of 9999
            raise _error(rules.INVALID_VALUE, "not a valid calendar date or time") from None
    # Compared as instants (no conversion, which overflows at year 1 or 9999).
    if not TIME_MIN <= parsed < TIME_MAX:
        raise _error(rules.INVALID_VALUE, f"timestamp outside {TIME_MIN:%Y}..{TIME_MAX:%Y}")
    return parsed


def _from_rfc3339(text: str) -> datetime:
    """Text that :data:`_RFC3339` matched, read as PostgreSQL reads it (bronze keeps the text;
    replay reads it again). RFC 3339 allows a lowercase ``z`` and a leap second (``:60``),
    which ``fromisoformat`` refuses: the ``z`` is read as ``Z``, second 60 as the start of the
    next second (``23:59:60Z`` is ``00:00:00Z`` of the next day). PostgreSQL refuses one
    case read here: a fraction on a leap second that passes midnight (``23:59:60.5``)."""
    if text[-1] == "z":
        text = f"{text[:-1]}Z"
    if text[17:19] == "60":  # the pattern puts the seconds here
        return datetime.fromisoformat(f"{text[:17]}59{text[19:]}") + timedelta(seconds=1)
    return datetime.fromisoformat(text)


def to_day(value: object) -> date:
    """A calendar date ``YYYY-MM-DD``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif not isinstance(value, str):
        raise _error(rules.WRONG_TYPE, f"expected a YYYY-MM-DD string, got {_kind(value)}")
    elif not _DAY.fullmatch(value):
        raise _error(rules.INVALID_VALUE, "not a YYYY-MM-DD date")
    else:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise _error(rules.INVALID_VALUE, "not a valid calendar date") from None
    if not DAY_MIN <= day <= DAY_MAX:
        raise _error(rules.INVALID_VALUE, f"date outside {DAY_MIN}..{DAY_MAX}")
    return day


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
    count = to_integer(value)
    if not 0 <= count <= FOOTFALL_MAX:
        raise _error(rules.INVALID_VALUE, f"footfall must be 0..{FOOTFALL_MAX}")
    return Decimal(count)


def _temperature(value: Decimal) -> Decimal:
    low, high = TEMPERATURE_RANGE
    if not low <= value <= high:
        raise _error(rules.INVALID_VALUE, f"temperature outside {low}..{high} °C")
    return value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def _storable(value: str) -> str:
    """Text PostgreSQL can hold: no NUL, no unpaired surrogate (master data reaches silver
    without bronze's jsonb, so the rule is here)."""
    if "\x00" in value:
        raise _error(rules.INVALID_VALUE, "text holds NUL, which PostgreSQL cannot store")
    if value.isascii():  # no surrogate; isascii() reads a flag, encode() would copy
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _error(rules.INVALID_VALUE, "text holds an unpaired surrogate") from None
    return value


def storable_or_none(value: object) -> str | None:
    """``value`` if it is a text PostgreSQL can hold, else None (for a field kept as is or
    not at all, as when a record that failed on its own is kept)."""
    if type(value) is not str:
        return None
    try:
        return _storable(value)
    except PydanticCustomError:
        return None


def storable_text(text: str) -> str:
    """A detail fit for a text column: NUL dropped, unpaired surrogates replaced, bounded."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:500]


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# A type whose Python rule gives the final value validates with that rule alone: as a
# BeforeValidator its result went through pydantic's own Decimal or int validation again, and
# an AfterValidator was one more call per field (a POS record validates in about 0.86 of the time;
# bench/results/chain.md). A plain validator's serialiser expects the type's Python value
# where JSON mode has text, so the Decimal types name their JSON text: the decimal's own
# str(), as pydantic wrote it.
_DECIMAL_TEXT_OUT = PlainSerializer(str, return_type=str, when_used="json")


def _positive_cents(value: object) -> Decimal:
    return _positive(to_cents(value))


def _non_negative_cents(value: object) -> Decimal:
    return _non_negative(to_cents(value))


def _quantity_of(value: object) -> int:
    return _quantity(to_integer(value))


def _version_of(value: object) -> int:
    return _version(to_integer(value))


def _temperature_of(value: object) -> Decimal:
    return _temperature(to_decimal(value))


Money = Annotated[
    Decimal,
    PlainValidator(to_cents),
    _DECIMAL_TEXT_OUT,
    WithJsonSchema(_money_json_schema(-MONEY_MAX, "money")),
]
PositiveMoney = Annotated[
    Decimal,
    PlainValidator(_positive_cents),
    _DECIMAL_TEXT_OUT,
    WithJsonSchema(_money_json_schema(CENT / 2, "at least 0.01")),
]
NonNegativeMoney = Annotated[
    Decimal,
    PlainValidator(_non_negative_cents),
    _DECIMAL_TEXT_OUT,
    WithJsonSchema(_money_json_schema(Decimal(0), "0 or more")),
]
Quantity = Annotated[
    int,
    PlainValidator(_quantity_of),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": QTY_MAX}),
]
Version = Annotated[
    int,
    PlainValidator(_version_of),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": INT4_MAX, "default": 1}),
]
Timestamp = Annotated[
    datetime,
    BeforeValidator(to_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_RFC3339.pattern}$",
            "formatMinimum": TIME_MIN.isoformat(),
            "formatExclusiveMaximum": TIME_MAX.isoformat(),
            "description": (
                "RFC 3339 with an offset, e.g. 2026-11-25T10:15:00+08:00; "
                f"from {TIME_MIN:%Y-%m-%d} to before {TIME_MAX:%Y-%m-%d} (UTC)"
            ),
        }
    ),
]
Day = Annotated[
    date,
    BeforeValidator(to_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "formatMinimum": DAY_MIN.isoformat(),
            "formatMaximum": DAY_MAX.isoformat(),
        }
    ),
]
Id = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=ID_MAX_CHARS),
    AfterValidator(_storable),
]
Text = Annotated[
    str, Strict(), StringConstraints(max_length=TEXT_MAX_CHARS), AfterValidator(_storable)
]
Currency = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]
TimezoneName = Annotated[
    str,
    Strict(),
    AfterValidator(_timezone),
    WithJsonSchema({"type": "string", "description": "IANA time zone, e.g. Asia/Manila"}),
]
Footfall = Annotated[
    Decimal,
    PlainValidator(_footfall),
    _DECIMAL_TEXT_OUT,
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": FOOTFALL_MAX}),
]
Temperature = Annotated[
    Decimal,
    PlainValidator(_temperature_of),
    _DECIMAL_TEXT_OUT,
    WithJsonSchema(
        {
            "type": "number",
            "minimum": float(TEMPERATURE_RANGE[0]),
            "maximum": float(TEMPERATURE_RANGE[1]),
        }
    ),
]


def json_depth_exceeds(value: Any, limit: int = JSON_DEPTH_MAX) -> bool:
    """True when ``value`` (parsed JSON) nests arrays/objects deeper than ``limit``."""
    level: list[Any] = [value]
    for _ in range(limit):
        nested: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                nested.extend(v for v in item if isinstance(v, dict | list))
        if not nested:
            return False
        level = nested
    return True
