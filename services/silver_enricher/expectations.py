"""Data-quality expectations of silver, declared as data (in the spirit of DLT's
``expect`` / ``expect_or_drop`` / ``expect_or_fail``).

Each expectation has a name (the quarantine rule and metric label), an action and a check
that returns a detail when the record violates it:

- ``quarantine``: the record goes to ``silver_quarantine`` with the rule and detail;
- ``warn``: the record is kept and the violation counted;
- ``fail``: the whole batch stops (the worker exits without committing, and alerts).

The parser's own rejections (not JSON, unknown schema, missing field, wrong type, anything
outside the input domain of ``services.common.events.types`` — amounts, quantities, time
window, …) are quarantined under their rule names before these run: the event types own
what one record may say; expectations own the rules that need context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

from services.common.events import ProductRecord, StoreRecord, Transaction

Action = Literal["quarantine", "warn", "fail"]

UNKNOWN_STORE = "unknown_store"
FUTURE_TIMESTAMP = "future_timestamp"
ITEMS_SUM_TO_TOTAL = "items_sum_to_total"
UNKNOWN_SKU = "unknown_sku"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Context:
    """What the checks may look at besides the record."""

    now: datetime
    allowed_skew: timedelta
    stores: Mapping[str, StoreRecord]
    products: Mapping[str, ProductRecord]


Check = Callable[[Transaction, Context], str | None]


@dataclass(frozen=True)
class Expectation:
    name: str
    action: Action
    check: Check
    description: str


def _known_store(tx: Transaction, ctx: Context) -> str | None:
    return None if tx.store_id in ctx.stores else "store is not in master data (yet)"


def _not_in_future(tx: Transaction, ctx: Context) -> str | None:
    if tx.occurred_at > ctx.now + ctx.allowed_skew:
        # No "how far ahead" in the detail: it would change with each replay.
        return f"occurred_at is later than now + the allowed skew ({ctx.allowed_skew})"
    return None


def _items_sum_to_total(tx: Transaction, ctx: Context) -> str | None:
    items = sum((i.unit_price * i.qty for i in tx.items), Decimal(0))
    if abs(items - tx.gross_amount) > CENT:
        return f"items add up to {items}, gross amount is {tx.gross_amount}"
    return None


def _known_skus(tx: Transaction, ctx: Context) -> str | None:
    unknown = sorted({i.sku for i in tx.items if i.sku not in ctx.products})
    return f"{len(unknown)} SKU(s) not in master data" if unknown else None


DEFAULT_EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(FUTURE_TIMESTAMP, "quarantine", _not_in_future, "occurred_at <= now + skew"),
    Expectation(UNKNOWN_STORE, "quarantine", _known_store, "store exists in master data"),
    Expectation(ITEMS_SUM_TO_TOTAL, "warn", _items_sum_to_total, "items sum to gross ± 0.01"),
    Expectation(UNKNOWN_SKU, "warn", _known_skus, "every SKU exists in master data"),
)


class ExpectationFailed(Exception):
    """A ``fail`` expectation was violated: the batch must not be committed."""


class Verdict(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    quarantine: tuple[str, str] | None  # (rule, detail) of the first quarantine violation
    warnings: tuple[str, ...]  # names of the warn expectations violated


def evaluate(tx: Transaction, ctx: Context, expectations: Sequence[Expectation]) -> Verdict:
    """Run every expectation; raises :class:`ExpectationFailed` for a ``fail`` violation."""
    quarantine: tuple[str, str] | None = None
    warnings: list[str] = []
    for expectation in expectations:
        detail = expectation.check(tx, ctx)
        if detail is None:
            continue
        if expectation.action == "fail":
            raise ExpectationFailed(f"{expectation.name}: {detail}")
        if expectation.action == "warn":
            warnings.append(expectation.name)
        elif quarantine is None:
            quarantine = (expectation.name, detail)
    return Verdict(quarantine, tuple(warnings))
