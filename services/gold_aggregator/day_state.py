"""Exact incremental state of one local day of the day-wide gold tables.

- ``gold_customer_insights`` per customer segment: transactions, revenue, units, and the
  segment's customers as a multiset (key → transactions that day), with the number of keys
  at two or more kept as keys cross that line (the repeat rate's numerator);
- ``gold_geographic_performance`` per (region, city): transactions, revenue, and the stores
  as a multiset (active stores = number of keys);
- ``gold_product_performance`` per (category, brand): units, revenue and transactions with
  such lines, as sums (silver's capture already counts distinct transactions per statement).

Shares and ranks depend on the whole day, so the writer computes them in SQL from these
sums with the recomputation's own expressions (``sql.DAY_ROWS``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from services.gold_aggregator.state import TRANSACTION, InconsistentState, decrement

ITEMS = "items"
Rows = list[tuple[object, ...]]


@dataclass
class Segment:
    transactions: int = 0
    revenue: Decimal = Decimal(0)
    units: int = 0
    customers: Counter[str] = field(default_factory=Counter)
    repeaters: int = 0  # customers with two or more transactions that day


@dataclass
class Place:
    transactions: int = 0
    revenue: Decimal = Decimal(0)
    stores: Counter[str] = field(default_factory=Counter)


@dataclass
class Brand:
    units: int = 0
    revenue: Decimal = Decimal(0)
    transactions: int = 0


@dataclass(frozen=True)
class DayChange:
    """A change to a day's tables: a transaction (±1) or a statement's lines of one brand."""

    kind: str
    sign: int
    value: Decimal  # amount, or the lines' amounts
    units: int
    store_id: str = ""
    customer_key: str | None = None
    customer_type: str | None = None
    region: str | None = None
    city: str | None = None
    category: str | None = None
    brand: str | None = None
    transactions: int = 0  # items: distinct transactions


@dataclass
class DayState:
    revision: int = 0
    segments: dict[str, Segment] = field(default_factory=dict)
    places: dict[tuple[str, str], Place] = field(default_factory=dict)
    brands: dict[tuple[str, str], Brand] = field(default_factory=dict)

    def apply(self, changes: list[DayChange]) -> None:
        """Additions first, so every removal finds what it removes (see state.GroupState)."""
        for change in sorted(changes, key=lambda c: -c.sign):
            if change.kind == TRANSACTION:
                self._transaction(change)
            elif change.kind == ITEMS:
                self._items(change)

    def _transaction(self, c: DayChange) -> None:
        segment = self.segments.setdefault(c.customer_type or "", Segment())
        segment.transactions += c.sign
        segment.revenue += c.sign * c.value
        segment.units += c.sign * c.units
        if c.customer_key is not None:
            before = segment.customers.get(c.customer_key, 0)
            if c.sign > 0:
                segment.customers[c.customer_key] += 1
            else:
                decrement(segment.customers, c.customer_key)
            after = before + c.sign
            segment.repeaters += (after >= 2) - (before >= 2)
        place = self.places.setdefault((c.region or "", c.city or ""), Place())
        place.transactions += c.sign
        place.revenue += c.sign * c.value
        if c.sign > 0:
            place.stores[c.store_id] += 1
        else:
            decrement(place.stores, c.store_id)
        if segment.transactions < 0 or place.transactions < 0:
            raise InconsistentState("a removed transaction was not held")

    def _items(self, c: DayChange) -> None:
        brand = self.brands.setdefault((c.category or "", c.brand or ""), Brand())
        brand.units += c.sign * c.units
        brand.revenue += c.sign * c.value
        brand.transactions += c.sign * c.transactions
        if brand.transactions < 0:
            raise InconsistentState("removed lines were not held")

    def rows(self) -> tuple[Rows, Rows, Rows]:
        """The day's (segments, places, brands) sums, groups without transactions left out:
        (segment, transactions, revenue, customers, units, repeaters), (region, city,
        revenue, transactions, stores), (category, brand, units, revenue, transactions)."""
        segments: Rows = [
            (name, s.transactions, s.revenue, len(s.customers), s.units, s.repeaters)
            for name, s in sorted(self.segments.items())
            if s.transactions > 0
        ]
        places: Rows = [
            (region, city, p.revenue, p.transactions, len(p.stores))
            for (region, city), p in sorted(self.places.items())
            if p.transactions > 0
        ]
        brands: Rows = [
            (category, brand, b.units, b.revenue, b.transactions)
            for (category, brand), b in sorted(self.brands.items())
            if b.transactions > 0
        ]
        return segments, places, brands
