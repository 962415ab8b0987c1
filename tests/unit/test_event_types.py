"""The scalar types' shortcuts give what their general rule gives (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from services.common.events import types

_DIGITS = st.lists(st.integers(0, 9), min_size=1, max_size=14).map(tuple)
_FINITE = st.builds(lambda sign, digits, exponent: Decimal((sign, digits, exponent)),
                    st.integers(0, 1), _DIGITS, st.integers(-60, 40))  # fmt: skip
_SPECIAL = st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
                            Decimal("-Infinity"), Decimal("-0"), Decimal("0E-99")])  # fmt: skip


def _outcome(rule: object, value: object) -> tuple[str, str]:
    try:
        result = rule(value)  # type: ignore[operator]
    except PydanticCustomError as exc:
        return ("refused", exc.type)
    return ("cents", str(result))  # str: the sign of zero and the exponent must agree too


@given(st.one_of(_FINITE, _SPECIAL))
@example(Decimal("99999999.995"))
@example(Decimal("-99999999.995"))
@example(Decimal("99999999.994999"))
@example(Decimal("1E-31"))
@example(Decimal("-1E-31"))
def test_money_shortcut_rounds_and_refuses_like_the_general_rule(value: Decimal) -> None:
    # to_cents takes an in-range JSON number straight to quantize; everything else goes
    # through to_decimal's checks. The two must not be told apart.
    general = _outcome(lambda v: types._cents(types.to_decimal(v)), value)
    assert _outcome(types.to_cents, value) == general


# Letters, digits, control characters (NUL among them) and lone surrogates.
_TEXT = st.text(st.characters(categories=["Ll", "Lu", "Nd", "Cc", "Cs"]), max_size=50)


@given(_TEXT)
@example("plain ascii")
@example("nul\x00inside")
@example("lone \ud800 surrogate")
def test_storable_text_shortcut_refuses_like_the_encoder(text: str) -> None:
    try:
        text.encode("utf-8")
        storable = "\x00" not in text
    except UnicodeEncodeError:
        storable = False
    try:
        assert types._storable(text) is text
        assert storable
    except PydanticCustomError:
        assert not storable


_OFFSET = st.one_of(
    st.sampled_from(["Z", "z"]),
    st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
              st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
)  # fmt: skip


@given(
    st.integers(1969, 2100), st.integers(1, 12), st.integers(1, 31), st.integers(0, 23),
    st.integers(0, 59), st.integers(0, 60), st.one_of(st.none(), st.integers(0, 999_999)),
    st.sampled_from("Tt "), _OFFSET,
)  # fmt: skip
@example(2016, 12, 31, 23, 59, 60, None, "T", "Z")  # a real leap second
@example(2099, 12, 31, 23, 59, 60, None, "T", "Z")  # rolls into 2100: out of range
@example(1970, 1, 1, 0, 0, 0, None, "T", "+00:01")  # a minute before 1970 (UTC)
def test_every_rfc3339_text_the_pattern_admits_is_read_or_refused_by_calendar_or_range(
    year: int, month: int, day: int, hour: int, minute: int, second: int,
    micro: int | None, separator: str, offset: str,
) -> None:  # fmt: skip
    # The JSON Schema publishes the pattern, so every text it admits must be read (or refused
    # by the calendar or the range, as invalid_value), never refused for a lowercase letter or
    # a leap second. Second 60 is the next second's start, as PostgreSQL reads it
    # (tests/integration/test_silver.py holds silver's reading equal to PostgreSQL's).
    fraction = "" if micro is None else f".{micro:06d}"
    text = (f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:"
            f"{second:02d}{fraction}{offset}")  # fmt: skip
    assert types._RFC3339.fullmatch(text)
    if offset in "Zz":
        zone = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        expected: datetime | None = datetime(
            year, month, day, hour, minute, min(second, 59), micro or 0, zone
        ) + timedelta(seconds=second - min(second, 59))
    except ValueError:  # no such calendar day
        expected = None
    if expected is not None and not types.TIME_MIN <= expected < types.TIME_MAX:
        expected = None
    try:
        parsed = types.to_timestamp(text)
    except PydanticCustomError as exc:
        assert exc.type == "invalid_value"
        assert expected is None
    else:
        assert parsed == expected
        assert parsed.utcoffset() == expected.utcoffset()
