"""The scrubber against text as it really arrives, and the PII key rules (pure)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import ConfigError
from services.silver_enricher import pii
from services.silver_enricher.pii import (
    DEV_KEY,
    REDACTED,
    is_placeholder,
    key_id_of,
    parse_key,
    pseudonymise,
    scrub_text,
)

# (text, the personal data in it). Each must disappear; the rest of the text stays.
CORPUS = [
    # Philippine mobiles, every separator people type
    ("call me 09171234567", "09171234567"),
    ("cp 0917-123-4567 po", "0917-123-4567"),
    ("0917 123 4567", "0917 123 4567"),
    ("0917.123.4567", "0917.123.4567"),
    ("0917/123/4567", "0917/123/4567"),
    ("0917_123_4567", "0917_123_4567"),
    ("0917\u2013123\u20134567 (en dash)", "0917\u2013123\u20134567"),
    ("0917\u2014123\u20144567 em dash", "0917\u2014123\u20144567"),
    ("0917\u2212123\u22124567 minus sign", "0917\u2212123\u22124567"),
    ("0917\u2011123\u20114567 nb hyphen", "0917\u2011123\u20114567"),
    ("(0917) 123-4567", "(0917) 123-4567"),
    ("+639171234567", "+639171234567"),
    ("+63 917 123 4567", "+63 917 123 4567"),
    ("+63-917-123-4567", "+63-917-123-4567"),
    ("(+63) 917 123 4567", "(+63) 917 123 4567"),
    ("63-917-123-4567", "63-917-123-4567"),
    ("0917 \u2014 123 \u2014 4567", "0917 \u2014 123 \u2014 4567"),
    ("tel:+63-917-555-0142", "+63-917-555-0142"),
    ("phone#09171234567", "09171234567"),
    # Philippine landlines
    ("landline 8123-4567", "8123-4567"),
    ("(02) 8123-4567", "(02) 8123-4567"),
    ("02-8123-4567", "02-8123-4567"),
    ("+63(2)8123-4567", "+63(2)8123-4567"),
    ("+63 2 8123 4567", "+63 2 8123 4567"),
    ("(032) 123-4567 Cebu", "(032) 123-4567"),
    ("prov. 123-4567", "123-4567"),
    ("8123.4567", "8123.4567"),
    # International
    ("+1 (415) 555-2671", "+1 (415) 555-2671"),
    ("+44 20 7946 0958", "+44 20 7946 0958"),
    ("0044 20 7946 0958", "0044 20 7946 0958"),
    ("+81-3-1234-5678", "+81-3-1234-5678"),
    ("+65 6123 4567", "+65 6123 4567"),
    ("\uff0b63 917 123 4567 fullwidth plus", "\uff0b63 917 123 4567"),
    # E-mail addresses, non-ASCII and obfuscated
    ("mail maria.santos@example.com pls", "maria.santos@example.com"),
    ("jos\u00e9.garc\u00eda@correo.es", "jos\u00e9.garc\u00eda@correo.es"),
    ("juan@b\u00fccher.de", "juan@b\u00fccher.de"),
    ("\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"),
    ("ana@xn--bcher-kva.ph", "ana@xn--bcher-kva.ph"),
    ("juan(at)example(dot)com", "juan(at)example(dot)com"),
    ("juan [at] example [dot] com", "juan [at] example [dot] com"),
    ("juan {at} example {dot} com.ph", "juan {at} example {dot} com.ph"),
    ("juan at example dot com", "juan at example dot com"),
    ("juan @ example . com", "juan @ example . com"),
    ("JUAN(AT)EXAMPLE(DOT)COM", "JUAN(AT)EXAMPLE(DOT)COM"),
    ("juan\uff20example.com fullwidth at", "juan\uff20example.com"),
    ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
    # Card numbers, any separator
    ("card 4111111111111111", "4111111111111111"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("4111-1111-1111-1111", "4111-1111-1111-1111"),
    ("4111.1111.1111.1111", "4111.1111.1111.1111"),
    ("4111/1111/1111/1111", "4111/1111/1111/1111"),
    ("4111_1111_1111_1111", "4111_1111_1111_1111"),
    ("4111\u20131111\u20131111\u20131111", "4111\u20131111\u20131111\u20131111"),
    ("amex 3782 822463 10005", "3782 822463 10005"),
    ("5555 5555 5555 4444 exp 12/29", "5555 5555 5555 4444"),
]

# What free text legitimately holds and must survive.
KEPT = [
    "batch 123e4567-e89b-12d3-a456-426614174000",
    "on 2026-11-25 10:15:00 paid 1250000.00",
    "CMP-20261125",
    "T0042-000123",
    "S0042 P-1001 qty 2",
    "cash",
    "grabmart",
    "social",
    "Deliver after 5pm, gate 3",
]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize(("text", "secret"), CORPUS)
def test_personal_data_is_removed(text: str, secret: str) -> None:
    scrubbed = scrub_text(text)
    assert scrubbed is not None and REDACTED in scrubbed
    assert secret not in scrubbed
    # Nothing recognisable is left: no run of 7+ digits, no address-like token.
    assert not re.search(r"\d(?:\D{0,3}\d){6,}", scrubbed.replace(REDACTED, " "))
    assert "@" not in scrubbed and "\uff20" not in scrubbed and "(at)" not in scrubbed.lower()
    # The words around it stay.
    assert scrubbed.replace(REDACTED, "") == text.replace(secret, "")


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_is_kept(text: str) -> None:
    assert scrub_text(text) == text


def _regexes_only(text: str) -> str:
    """The three patterns applied with no shortcut: what scrub_text must equal."""
    text = pii._EMAIL.sub(REDACTED, text)
    text = pii._EMAIL_SPELLED.sub(REDACTED, text)
    return pii._NUMBERS.sub(pii._number_or_keep, text)


# Text made of what the shortcuts look at: digits of several scripts, separators, "@" in
# both widths, "at"/"dot" in any case, letters, and long runs past the cache's length.
_PIECES = st.sampled_from(
    ["0", "7", "\u0e51", "\u0967", "-", " ", ".", "/", "(", ")", "+", "@", "\uff20", "at",
     "AT", " at ", " dot ", "(at)", "[dot]", "com", "juan", "ph", "x" * 60]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=3), max_size=30).map("".join))
def test_shortcuts_change_no_result(text: str) -> None:
    assert scrub_text(text) == _regexes_only(text)


@pytest.mark.parametrize(("text", "secret"), CORPUS)
def test_corpus_through_the_cache_twice(text: str, secret: str) -> None:
    assert scrub_text(text) == scrub_text(text) == _regexes_only(text)


def test_none_stays_none() -> None:
    assert scrub_text(None) is None


def test_keys_carry_an_id_and_placeholders_are_recognised() -> None:
    key = parse_key("k2026a:" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0")
    assert key.id == "k2026a" and not is_placeholder(key)
    assert parse_key("9f8e7d6c5b4a39281706f5e4d3c2b1a0", "k3").id == "k3"
    assert key_id_of(pseudonymise("C-1", key)) == "k2026a"
    assert pseudonymise("C-1", key) != pseudonymise("C-1", parse_key("k2:" + "x1y2z3" * 6))
    assert "9f8e" not in repr(key)
    for placeholder in ("k1:changeme", "k1:test-pii-key", "k1:short", "k1:" + "a" * 40):
        assert is_placeholder(parse_key(placeholder))
    assert is_placeholder(DEV_KEY)
    with pytest.raises(ConfigError, match="no key id"):
        parse_key("a-secret-without-an-id-at-all")
    with pytest.raises(ConfigError, match="key id"):
        parse_key("bad id!:" + "z" * 30)
