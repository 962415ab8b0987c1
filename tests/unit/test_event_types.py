"""The scalar types' shortcuts give what their general rule gives (pure)."""

from __future__ import annotations

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
