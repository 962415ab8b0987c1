"""Pseudonymisation keys and PII scrubbing (pure).

Customer ids become a keyed HMAC-SHA256 pseudonym ``<key id>:<32 hex>``: stable for joins and
repeat-customer metrics, useless without the key. The key id travels with every pseudonym so
a key can be rotated: new rows get the new id, ``scout silver rekey`` rewrites the old ones.

Free text loses anything that looks like an e-mail address (non-ASCII ones and
``name(at)domain(dot)com`` spellings included), a phone number (Philippine mobiles and
landlines, international forms, any dash, dots, slashes, underscores, spaces, brackets) or a
payment card number (any separator) before it reaches silver. Dates, UUIDs and decimal
amounts are kept: they are what free-text fields legitimately hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from services.common.errors import ConfigError

REDACTED = "[removed]"

# --- keys -----------------------------------------------------------------------------------

MIN_SECRET_CHARS = 24
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# Values that are documentation, not secrets: refused outside dev whatever their length.
PLACEHOLDER_SECRETS = frozenset({
    "changeme", "change-me", "change_me", "secret", "dev", "test", "test-pii-key", "pii-key",
    "scout-dev-only-pii-key", "replace-me", "replace-with-a-real-key", "todo", "example",
    "<set-me>", "set-me", "xxx",
})  # fmt: skip


@dataclass(frozen=True)
class PiiKey:
    """A pseudonymisation key: its id (stored with each pseudonym) and its secret."""

    id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"PiiKey(id={self.id!r})"


DEV_KEY = PiiKey("dev", b"scout-dev-only-pii-key")


def parse_key(raw: str, key_id: str | None = None) -> PiiKey:
    """``<id>:<secret>`` (or the secret alone with ``key_id``) as a :class:`PiiKey`."""
    if key_id:
        kid, secret = key_id, raw
    elif ":" in raw:
        kid, secret = raw.split(":", 1)
    else:
        raise ConfigError(
            "SCOUT_PII_KEY has no key id: set SCOUT_PII_KEY=<key id>:<secret> "
            "(or SCOUT_PII_KEY_ID=<key id>), e.g. SCOUT_PII_KEY=k2026a:$(openssl rand -hex 32)"
        )
    if not _KEY_ID.match(kid):
        raise ConfigError(f"PII key id {kid!r} must be 1-32 of A-Z a-z 0-9 _ . - (no ':')")
    return PiiKey(kid, secret.encode())


def is_placeholder(key: PiiKey) -> bool:
    secret = key.secret.decode(errors="replace").strip()
    return (
        secret.lower() in PLACEHOLDER_SECRETS
        or len(secret) < MIN_SECRET_CHARS
        or len(set(secret)) < 8  # "aaaaaaaa…", "00000000…"
        or key == DEV_KEY
    )


@lru_cache(maxsize=65536)  # repeat customers recur; the worker's memory only
def pseudonymise(customer_id: str, key: PiiKey) -> str:
    """Keyed pseudonym of a customer id: ``<key id>:<hex HMAC-SHA256, 32 chars>``."""
    digest = hmac.new(key.secret, customer_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{key.id}:{digest}"


def key_id_of(pseudonym: str) -> str | None:
    """The key id a pseudonym was made with (None for the id-less pseudonyms of old rows)."""
    kid, sep, _ = pseudonym.rpartition(":")
    return kid if sep else None


# --- scrubbing ------------------------------------------------------------------------------

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_AT = r"(?:\s?[@\uff20]\s?|\s*[(\[{<]\s*at\s*[)\]}>]\s*)"
_DOT = r"(?:\s?[.\u3002\uff0e]\s?|\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[\w-]+"
_TLD = r"(?:[^\W\d_]{2,}|xn--[\w-]+)"
_EMAIL = re.compile(rf"{_LOCAL}{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}{_TLD}(?!\w)", re.I)
# Spelled out entirely ("juan at example dot com"): both words must be there.
_EMAIL_SPELLED = re.compile(
    rf"{_LOCAL}\s+at\s+{_LABEL}(?:\s+dot\s+{_LABEL})*\s+dot\s+{_TLD}(?!\w)", re.I
)
_SEP = rf"[\s{_DASHES}._/\\()\[\]]"
# One pass, left to right: what must stay (UUIDs, dates and times, decimal amounts) is matched
# first at each position, so a phone-like run cannot start inside it.
_NUMBERS = re.compile(
    rf"""
    (?P<keep>
        [0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}
      | \d{{4}}-\d{{2}}-\d{{2}}(?:[T\s]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?)?
      | (?<![\d.])\d{{1,12}}\.\d{{2}}(?![\d.])
    )
  | (?P<number>
        (?<![\w{_DASHES}/\\])
        (?:\+|\uff0b|\(\s*\+?)?\d(?:{_SEP}{{0,3}}\d)+\)?
        (?!\w)
    )
    """,
    re.I | re.X,
)
MIN_PHONE_DIGITS = 7  # 123-4567 (provincial landline) … 19-digit cards


def scrub_text(text: str | None) -> str | None:
    """``text`` without e-mail addresses, card numbers and phone numbers."""
    if text is None:
        return None
    if len(text) <= _CACHED_CHARS:  # codes and ids repeat (terminals, batches, payment)
        return _scrub_short(text)
    return _scrub(text)


# Short texts are cached: most are codes that recur on every record of a store or a batch.
# The cache lives in the worker's memory only, like the batch it came with.
_CACHED_CHARS = 64


@lru_cache(maxsize=16384)
def _scrub_short(text: str) -> str:
    return _scrub(text)


def _scrub(text: str) -> str:
    if not _may_hold_pii(text):
        return text
    text = _EMAIL.sub(REDACTED, text)
    text = _EMAIL_SPELLED.sub(REDACTED, text)
    return _NUMBERS.sub(_number_or_keep, text)


def _may_hold_pii(text: str) -> bool:
    """False only when no pattern can redact anything: every e-mail form needs an "@" (or
    its full-width form) or the word "at", and a number is redacted only from
    ``MIN_PHONE_DIGITS`` digits on (a cheap test that spares the regexes most codes)."""
    if "@" in text or "\uff20" in text or "at" in text.lower():
        return True
    return sum(ch.isdigit() for ch in text) >= MIN_PHONE_DIGITS


def _number_or_keep(match: re.Match[str]) -> str:
    if match.group("keep") is not None:
        return match.group(0)
    digits = sum(ch.isdigit() for ch in match.group(0))
    return REDACTED if digits >= MIN_PHONE_DIGITS else match.group(0)
