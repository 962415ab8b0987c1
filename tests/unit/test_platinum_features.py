"""ML features against values computed by hand, on a fixture with missing days and ties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.platinum_builder.features import COLUMNS, GoldDay, build_features, percentile_cont

D0 = date(2026, 1, 1)  # a Thursday
END = D0 + timedelta(days=9)

# Revenue per store and day offset; missing offsets are days without sales.
REVENUE = {
    "A": {0: 100, 2: 50, 7: 200, 9: 100},
    "B": dict.fromkeys(range(10), 60),
    "C": {3: 105, 6: 105, 9: 105},  # opened on day 3
    "D": {0: 30},
}


def fixture_rows() -> list[GoldDay]:
    rows = []
    for store, days in REVENUE.items():
        for offset, revenue in days.items():
            rows.append(GoldDay(
                store_id=store, date_key=D0 + timedelta(days=offset), region="NCR",
                city="Makati", daily_revenue=Decimal(revenue), transaction_count=4,
                avg_transaction=Decimal(revenue) / 4, unique_customers=3,
                returning_customers=1, conversion_rate=Decimal("0.25"),
                campaign_spend=Decimal(500 if (store, offset) == ("A", 7) else 0),
            ))  # fmt: skip
    return rows


FIRST_DAYS = {"A": D0, "B": D0, "C": D0 + timedelta(days=3), "D": D0}


def features() -> dict[tuple[str, int], dict[str, object]]:
    rows = build_features(fixture_rows(), FIRST_DAYS, {("A", D0): 2.5}, D0, END, END)
    return {(r[0], (r[1] - D0).days): dict(zip(COLUMNS, r, strict=True)) for r in rows}  # type: ignore[operator]


def test_dense_calendar_with_zero_days() -> None:
    f = features()
    assert len(f) == 10 + 10 + 7 + 10  # C exists from day 3 only
    assert f[("A", 1)]["daily_revenue"] == 0 and f[("A", 1)]["transaction_count"] == 0
    assert f[("A", 1)]["basket_value"] is None and f[("A", 1)]["campaign_flag"] is False


@pytest.mark.parametrize(("store", "day", "ma7", "ma30"), [
    ("A", 0, 100.0, 100.0),
    ("A", 1, 50.0, 50.0),
    ("A", 2, 50.0, 50.0),
    ("A", 6, 150 / 7, 150 / 7),
    ("A", 7, 250 / 7, 350 / 8),     # days 1..7 for the 7-day window
    ("A", 9, 300 / 7, 45.0),
    ("C", 3, 105.0, 105.0),        # first day of C: nothing before it counts
    ("C", 9, 315 / 7, 45.0),
    ("D", 9, 0.0, 3.0),
])  # fmt: skip
def test_moving_averages_over_calendar_days(store: str, day: int, ma7: float, ma30: float) -> None:
    f = features()[(store, day)]
    assert f["revenue_7d_ma"] == pytest.approx(ma7)
    assert f["revenue_30d_ma"] == pytest.approx(ma30)


def test_week_over_week_growth() -> None:
    f = features()
    assert f[("A", 7)]["wow_growth"] == pytest.approx(1.0)  # 200 vs 100
    assert f[("A", 9)]["wow_growth"] == pytest.approx(1.0)  # 100 vs 50
    assert f[("A", 8)]["wow_growth"] is None  # a week before had no sales
    assert f[("A", 6)]["wow_growth"] is None  # before the store's first week
    assert f[("B", 9)]["wow_growth"] == pytest.approx(0.0)


def test_day_of_week_index() -> None:
    f = features()
    assert f[("A", 7)]["day_of_week_index"] == pytest.approx(200 / 150)  # days 7 and 0
    assert f[("A", 9)]["day_of_week_index"] == pytest.approx(100 / 75)  # days 9 and 2
    assert f[("A", 1)]["day_of_week_index"] is None  # mean of its weekday is 0
    assert f[("A", 8)]["day_of_week_index"] is None  # days 8 and 1: no sales, mean 0
    assert f[("A", 0)]["day_of_week"] == 4  # Thursday, 0 = Sunday


def test_tiers_and_percentiles_with_ties() -> None:
    f = features()
    # Day 9, 30-day averages: D 3, A 45, C 45, B 60 → p50 45, p90 55.5.
    assert {s: f[(s, 9)]["performance_tier"] for s in "ABCD"} == {
        "A": "average_performer", "B": "high_performer", "C": "average_performer",
        "D": "low_performer",
    }  # fmt: skip
    assert {s: f[(s, 9)]["store_percentile"] for s in "ABCD"} == pytest.approx(
        {"A": 1 / 3, "B": 1.0, "C": 1 / 3, "D": 0.0}
    )


def test_day_values_from_gold_and_silver() -> None:
    f = features()[("A", 7)]
    assert f["campaign_flag"] is True
    assert f["basket_value"] == Decimal(50)
    assert f["repeat_customer_rate"] == pytest.approx(1 / 3)
    assert f["footfall_conversion"] == Decimal("0.25")
    assert features()[("A", 0)]["basket_units"] == 2.5


def test_percentile_cont_matches_postgres() -> None:
    assert percentile_cont([3, 45, 45, 60], 0.9) == pytest.approx(55.5)
    assert percentile_cont([3, 45, 45, 60], 0.5) == pytest.approx(45)
    assert percentile_cont([7], 0.9) == 7
