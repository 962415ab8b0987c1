"""Exact incremental state of one (store, period) group of ``gold_business_metrics``
(a local day) or of ``gold_business_metrics_rollups`` (a week or a month).

A group's row is a function of the multiset of its silver transactions (and two sums), so
the state keeps exactly what that function needs, in a form a change can update cheaply:

- amounts as integer cents in a sorted list: count, sum, sum of squares (for the sample
  standard deviation) and the exact median (the two middle elements) without a sort;
- customers as multisets (key → transactions), overall and per customer type, so a distinct
  count is the number of keys and a removed transaction drops a key only at zero;
- (region, city) as a multiset (the recomputation takes ``min`` of each);
- footfall and campaign spend as exact decimal sums.

Applying a change is O(log n) comparisons plus a list insert; producing the row is O(1).
The arithmetic reproduces the SQL recomputation (``sql.BUSINESS_METRICS_FRESH``) digit for
digit: PostgreSQL's ``round`` rounds half away from zero, amounts are positive, and no
quotient here can fall close enough to a rounding boundary for the digits PostgreSQL keeps
to matter (``scout gold verify`` checks the equality on every reconciliation).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TypeVar

from services.gold_aggregator.changes import FOOTFALL, SPEND, TRANSACTION, Change

__all__ = [
    "FOOTFALL", "SPEND", "TRANSACTION", "Change", "GroupState", "InconsistentState", "business_row",
    "decrement",
]  # fmt: skip

_Q4 = Decimal("0.0001")
_EXACT = Context(prec=60)  # far more digits than any quotient here needs before rounding
K = TypeVar("K")
# From this many additions to a group in one flush, appending them and sorting once costs
# less than inserting each in place: an insert moves half the list (a month of a busy store
# holds tens of thousands of amounts), a sort of a sorted list plus a tail is one pass.
SORT_FROM = 64


class InconsistentState(Exception):
    """A removal of something the state does not hold: the state must be reloaded."""


@dataclass
class GroupState:
    revision: int = 0
    amounts: list[int] = field(default_factory=list)  # cents, sorted
    total: int = 0  # cents
    squares: int = 0  # cents²
    customers: Counter[str] = field(default_factory=Counter)
    new_customers: Counter[str] = field(default_factory=Counter)
    regular_customers: Counter[str] = field(default_factory=Counter)
    places: Counter[tuple[str, str]] = field(default_factory=Counter)
    footfall: Decimal = Decimal(0)
    spend: Decimal = Decimal(0)

    def apply(self, changes: list[Change]) -> None:
        """Apply a flush's changes. Additions go first: every removal then finds what it
        removes (it was in the state before, or was added by this flush), in any order the
        changes were captured."""
        additions = [c for c in changes if c.sign > 0]
        self._add_all(additions, keep_sorted=len(additions) < SORT_FROM)
        for change in changes:
            if change.sign <= 0:
                self._apply(change)

    def _apply(self, change: Change) -> None:
        if change.kind == FOOTFALL:
            self.footfall += change.sign * change.value
        elif change.kind == SPEND:
            self.spend += change.sign * change.value
        elif change.sign > 0:
            self._add(change)
        else:
            self._remove(change)

    def load(self, changes: list[Change]) -> None:
        """Add a whole group at once (a load from silver): one sort instead of inserts."""
        self._add_all(changes, keep_sorted=False)

    def _add_all(self, changes: list[Change], *, keep_sorted: bool) -> None:
        """Add these changes; unless ``keep_sorted``, the amounts are sorted once at the end
        instead of each being inserted in place."""
        for change in changes:
            if change.kind == TRANSACTION:
                self._add(change, keep_sorted=keep_sorted)
            else:
                self._apply(change)
        if not keep_sorted:
            self.amounts.sort()

    def _add(self, c: Change, *, keep_sorted: bool = True) -> None:
        cents = int(c.value.scaleb(2))
        if keep_sorted:
            bisect.insort(self.amounts, cents)
        else:
            self.amounts.append(cents)
        self.total += cents
        self.squares += cents * cents
        self.places[(c.region or "", c.city or "")] += 1
        if c.customer_key is not None:
            self.customers[c.customer_key] += 1
            by_type = self._by_type(c.customer_type)
            if by_type is not None:
                by_type[c.customer_key] += 1

    def _remove(self, c: Change) -> None:
        cents = int(c.value.scaleb(2))
        i = bisect.bisect_left(self.amounts, cents)
        if i == len(self.amounts) or self.amounts[i] != cents:
            raise InconsistentState("a removed amount was not held")
        del self.amounts[i]
        self.total -= cents
        self.squares -= cents * cents
        decrement(self.places, (c.region or "", c.city or ""))
        if c.customer_key is not None:
            decrement(self.customers, c.customer_key)
            by_type = self._by_type(c.customer_type)
            if by_type is not None:
                decrement(by_type, c.customer_key)

    def place(self) -> tuple[str, str] | None:
        """(region, city) when all transactions agree; None when the caller must take the
        ``min`` of each in the database's collation (a store that moved during the day)."""
        return next(iter(self.places)) if len(self.places) == 1 else None

    def _by_type(self, customer_type: str | None) -> Counter[str] | None:
        if customer_type == "new":
            return self.new_customers
        if customer_type == "regular":
            return self.regular_customers
        return None


def decrement(counter: Counter[K], key: K) -> None:
    """Remove one occurrence of ``key``; the key leaves the multiset at zero."""
    n = counter.get(key, 0)
    if n <= 0:
        raise InconsistentState("a removed contribution was not held")
    if n == 1:
        del counter[key]
    else:
        counter[key] = n - 1


def _round4(x: Decimal) -> Decimal:
    return x.quantize(_Q4, rounding=ROUND_HALF_UP)


def business_row(
    store_id: str, date_key: date, region: str, city: str, s: GroupState
) -> tuple[object, ...]:
    """The ``gold_business_metrics`` row of a group with transactions, in
    ``sql.BUSINESS_COLUMNS`` order. ``region``/``city``: see :meth:`GroupState.place`."""
    n = len(s.amounts)
    if n == 0:
        raise ValueError("a group without transactions has no row")
    half = (n + 1) // 2  # percentile_disc(0.5): the ceil(n/2)-th value, from either end
    median = _round4(_EXACT.divide(Decimal(s.amounts[half - 1] + s.amounts[n - half]), 200))
    stddev: Decimal | None = None
    if n > 1:
        spread = n * s.squares - s.total * s.total
        variance = _EXACT.divide(Decimal(max(spread, 0)), Decimal(n * (n - 1)))
        stddev = _round4(_EXACT.divide(_EXACT.sqrt(variance), 100))
    footfall = s.footfall
    conversion = _round4(_EXACT.divide(Decimal(n), footfall)) if footfall > 0 else None
    return (
        store_id, date_key, region, city, n, Decimal(s.total).scaleb(-2),
        _round4(_EXACT.divide(Decimal(s.total), Decimal(n * 100))),
        len(s.customers), median, stddev, len(s.new_customers), len(s.regular_customers),
        int(footfall.quantize(Decimal(1), rounding=ROUND_HALF_UP)), conversion, s.spend,
    )  # fmt: skip
