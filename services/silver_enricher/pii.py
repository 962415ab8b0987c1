"""Pseudonymisation and PII scrubbing (pure).

Customer ids become a keyed HMAC-SHA256 pseudonym: stable for joins and repeat-customer
metrics, useless without ``SCOUT_PII_KEY``. Free text loses anything that looks like an
e-mail address, a phone number or a payment card number before it reaches silver.
"""

from __future__ import annotations

import hashlib
import hmac
import re

REDACTED = "[removed]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Card-like: 13-19 digits, optionally grouped by spaces or dashes.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Phone numbers: international (+63 917 123 4567) or local (0917-123-4567) forms, 9+ digits.
_PHONE = re.compile(r"(?<![\w])(?:\+\d{1,3}[\s.-]?)?(?:\(?\d{2,4}\)?[\s.-]?){2,4}\d{3,4}(?![\w])")


def pseudonymise(customer_id: str, key: bytes) -> str:
    """Keyed pseudonym of a customer id (hex HMAC-SHA256, 32 hex chars)."""
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()[:32]


def scrub_text(text: str | None) -> str | None:
    """``text`` without e-mail addresses, card-like numbers and phone numbers."""
    if text is None:
        return None
    text = _EMAIL.sub(REDACTED, text)
    text = _CARD.sub(REDACTED, text)
    return _PHONE.sub(_phone_or_keep, text)


def _phone_or_keep(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return REDACTED if digits >= 9 else match.group(0)
