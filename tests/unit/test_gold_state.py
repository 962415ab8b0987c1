"""The exact incremental state of a gold (store, day) group: pure logic."""

from __future__ import annotations

import random
import statistics
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from services.gold_aggregator.state import (
    FOOTFALL,
    SORT_FROM,
    SPEND,
    TRANSACTION,
    Change,
    GroupState,
    InconsistentState,
    business_row,
)

DAY = date(2026, 11, 20)
Q4 = Decimal("0.0001")


def tx(amount: str, customer: str | None = None, ctype: str = "walk_in", sign: int = 1) -> Change:
    return Change(TRANSACTION, sign, Decimal(amount), customer, ctype, "NCR", "Makati")


def row(state: GroupState) -> dict[str, object]:
    names = ("store_id", "date_key", "region", "city", "transaction_count", "daily_revenue",
             "avg_transaction", "unique_customers", "median_amount", "amount_stddev",
             "new_customers", "returning_customers", "footfall", "conversion_rate",
             "campaign_spend")  # fmt: skip
    place = state.place()
    assert place is not None
    return dict(zip(names, business_row("S1", DAY, *place, state), strict=True))


def test_hand_computed_row() -> None:
    s = GroupState()
    s.apply([tx("10.00", "a", "new"), tx("20.00", "b", "regular"), tx("30.00", "b", "regular"),
             tx("40.00"), Change(FOOTFALL, 1, Decimal(5)), Change(FOOTFALL, 1, Decimal(3)),
             Change(SPEND, 1, Decimal("150.00"))])  # fmt: skip
    r = row(s)
    assert r["transaction_count"] == 4 and r["daily_revenue"] == Decimal("100.00")
    assert r["avg_transaction"] == Decimal("25.0000")
    assert r["median_amount"] == Decimal("25.0000")  # even count: (20 + 30) / 2
    assert r["amount_stddev"] == Decimal("12.9099")
    assert (r["unique_customers"], r["new_customers"], r["returning_customers"]) == (2, 1, 1)
    assert r["footfall"] == 8 and r["conversion_rate"] == Decimal("0.5000")
    assert r["campaign_spend"] == Decimal("150.00")


def test_single_transaction_has_no_stddev_and_no_conversion_without_footfall() -> None:
    s = GroupState()
    s.apply([tx("99.99", "x", "regular")])
    r = row(s)
    assert r["amount_stddev"] is None and r["median_amount"] == Decimal("99.9900")
    assert r["footfall"] == 0 and r["conversion_rate"] is None


def test_a_correction_applied_before_its_original_still_balances() -> None:
    """Within one flush, a removal may be captured after the addition it undoes: additions
    are applied first, so the order of the changes does not matter."""
    s = GroupState()
    s.apply([tx("10.00", "a", "new", sign=-1), tx("12.00", "a", "new"), tx("10.00", "a", "new")])
    r = row(s)
    assert (r["transaction_count"], r["daily_revenue"], r["new_customers"]) == (
        1, Decimal("12.00"), 1)  # fmt: skip


def test_removing_what_is_not_held_is_detected() -> None:
    s = GroupState()
    s.apply([tx("10.00", "a", "new")])
    with pytest.raises(InconsistentState):
        s.apply([tx("11.00", "a", "new", sign=-1)])
    t = GroupState()
    t.apply([tx("10.00", "a", "new")])
    with pytest.raises(InconsistentState):
        t.apply([tx("10.00", "b", "new", sign=-1)])


def test_a_customer_counts_until_their_last_transaction_leaves() -> None:
    s = GroupState()
    s.apply([tx("1.00", "a", "regular"), tx("2.00", "a", "regular")])
    s.apply([tx("1.00", "a", "regular", sign=-1)])
    assert row(s)["returning_customers"] == 1
    s.apply([tx("2.00", "a", "regular", sign=-1), tx("3.00")])
    assert (row(s)["unique_customers"], row(s)["returning_customers"]) == (0, 0)


def test_a_store_that_moved_needs_the_database_min() -> None:
    s = GroupState()
    s.apply([tx("1.00"), Change(TRANSACTION, 1, Decimal("2.00"), None, "walk_in", "NCR", "Pasig")])
    assert s.place() is None


def test_random_changes_match_a_recomputation() -> None:
    rng = random.Random(3)
    s = GroupState()
    held: list[Change] = []
    for _ in range(300):
        if held and rng.random() < 0.3:
            gone = held.pop(rng.randrange(len(held)))
            s.apply([Change(gone.kind, -1, gone.value, gone.customer_key, gone.customer_type,
                            gone.region, gone.city)])  # fmt: skip
        else:
            customer = rng.choice([None, "a", "b", "c"])
            ctype = "walk_in" if customer is None else rng.choice(["new", "regular"])
            change = tx(f"{rng.randint(1, 5000) / 100:.2f}", customer, ctype)
            s.apply([change])
            held.append(change)
        if len(held) < 2:
            continue
        amounts = sorted(c.value for c in held)
        r = row(s)
        assert r["transaction_count"] == len(held)
        assert r["daily_revenue"] == sum(amounts)
        assert r["median_amount"] == statistics.median(amounts).quantize(Q4, ROUND_HALF_UP)
        expected_sd = statistics.stdev(amounts).quantize(Q4, ROUND_HALF_UP)
        assert r["amount_stddev"] == expected_sd
        assert r["unique_customers"] == len({c.customer_key for c in held if c.customer_key})


@pytest.mark.parametrize("batch", [1, SORT_FROM - 1, SORT_FROM, 3 * SORT_FROM])
def test_a_flush_of_many_changes_equals_the_changes_one_by_one(batch: int) -> None:
    """A flush with many additions sorts once instead of inserting each: the state is the
    same as applying every change alone, removals of amounts added in the flush included."""
    rng = random.Random(batch)
    together, alone = GroupState(), GroupState()
    held: list[Change] = []
    for _ in range(4):
        flush: list[Change] = []
        for _ in range(batch):
            if held and rng.random() < 0.2:
                gone = held.pop(rng.randrange(len(held)))
                flush.append(Change(TRANSACTION, -1, gone.value, gone.customer_key,
                                    gone.customer_type, gone.region, gone.city))  # fmt: skip
            else:
                customer = rng.choice([None, "a", "b"])
                change = tx(f"{rng.randint(1, 900) / 100:.2f}", customer,
                            "walk_in" if customer is None else "regular")  # fmt: skip
                flush.append(change)
                held.append(change)
        flush.append(Change(FOOTFALL, 1, Decimal(rng.randint(0, 9))))
        rng.shuffle(flush)  # a removal may come before the addition it undoes
        together.apply(flush)
        for change in sorted(flush, key=lambda c: -c.sign):
            alone.apply([change])
        assert together.amounts == sorted(int(c.value * 100) for c in held)
        assert together == alone
