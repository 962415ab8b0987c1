"""ML features per (store, calendar day). Pure: gold rows in, feature rows out.

Unlike the seed's SQL, windows are over *calendar days*, not rows: a day without a gold row
is a day with zero sales. A store's calendar starts on its first day in gold (before that it
did not exist) and runs to the build's last day.

- ``revenue_7d_ma`` / ``revenue_30d_ma``: mean daily revenue over the 7 / 30 calendar days
  ending on the day (fewer when the store is younger than the window).
- ``wow_growth``: (revenue - revenue 7 days before) / revenue 7 days before; None when that
  day had no sales or was before the store opened.
- ``day_of_week_index``: revenue / mean revenue of the same weekday over the trailing 12 weeks
  (the day itself and the 11 same weekdays before it, those since the store opened); None
  when that mean is 0.
- ``store_percentile`` / ``performance_tier``: each day, the stores' 30-day averages are
  ranked; percentile = percent_rank, tier ``high_performer`` when the value is at least the
  90th percentile of that day (linear interpolation, as PERCENTILE_CONT), ``average_performer``
  when at least the median, else ``low_performer``. Ties share a tier.
- ``basket_value`` (revenue per transaction), ``basket_units`` (units per transaction, from
  silver), ``repeat_customer_rate`` (regular customers / distinct customers),
  ``footfall_conversion``, ``campaign_flag``: that day's values (None on a day without sales).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

WEEKS_FOR_DOW_INDEX = 12
HISTORY_DAYS = 7 * WEEKS_FOR_DOW_INDEX  # history a build must read before its first day

COLUMNS = (
    "store_id", "date_key", "region", "city", "daily_revenue", "transaction_count",
    "revenue_7d_ma", "revenue_30d_ma", "wow_growth", "day_of_week", "day_of_week_index",
    "store_percentile", "performance_tier", "basket_value", "basket_units",
    "repeat_customer_rate", "footfall_conversion", "campaign_flag", "as_of",
)  # fmt: skip


@dataclass(frozen=True)
class GoldDay:
    """One gold_business_metrics row (the columns the features use)."""

    store_id: str
    date_key: date
    region: str
    city: str
    daily_revenue: Decimal
    transaction_count: int
    avg_transaction: Decimal
    unique_customers: int
    returning_customers: int
    conversion_rate: Decimal | None
    campaign_spend: Decimal


def percentile_cont(sorted_values: Sequence[float], fraction: float) -> float:
    """PostgreSQL's PERCENTILE_CONT over already sorted values."""
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def tier(value: float, p50: float, p90: float) -> str:
    if value >= p90:
        return "high_performer"
    if value >= p50:
        return "average_performer"
    return "low_performer"


@dataclass
class _Series:
    """One store's dense daily series from ``start`` (its first day or the read start)."""

    start: date
    first_day: date
    revenue: list[float]
    gold: dict[int, GoldDay]


def _series(rows: list[GoldDay], first_day: date, read_start: date, end: date) -> _Series:
    start = max(first_day, read_start)
    revenue = [0.0] * ((end - start).days + 1)
    gold = {}
    for row in rows:
        i = (row.date_key - start).days
        if 0 <= i < len(revenue):
            revenue[i] = float(row.daily_revenue)
            gold[i] = row
    return _Series(start, first_day, revenue, gold)


def _window_mean(prefix: list[float], i: int, days: int, opened: int) -> float:
    lo = max(i - days + 1, opened)
    return (prefix[i + 1] - prefix[lo]) / (i + 1 - lo)


def _store_rows(s: _Series, start: date, end: date) -> Iterable[tuple[int, dict[str, object]]]:
    """Per-store features (all but the cross-store percentile) for days start..end."""
    prefix = [0.0]
    for value in s.revenue:
        prefix.append(prefix[-1] + value)
    # Index of the first day the store existed, relative to s.start (negative: before s.start).
    opened = (s.first_day - s.start).days
    for i in range(max(0, (start - s.start).days), len(s.revenue)):
        rev = s.revenue[i]
        week_ago = i - 7
        wow = None
        if week_ago >= max(0, opened) and s.revenue[week_ago] != 0:
            wow = (rev - s.revenue[week_ago]) / s.revenue[week_ago]
        same_days = [s.revenue[j] for j in range(i, i - 7 * WEEKS_FOR_DOW_INDEX, -7)
                     if j >= max(0, opened)]  # fmt: skip
        dow_mean = sum(same_days) / len(same_days)
        yield (
            i,
            {
                "revenue_7d_ma": _window_mean(prefix, i, 7, max(0, opened)),
                "revenue_30d_ma": _window_mean(prefix, i, 30, max(0, opened)),
                "wow_growth": wow,
                "day_of_week_index": rev / dow_mean if dow_mean else None,
            },
        )


def build_features(
    gold: Iterable[GoldDay],
    first_days: Mapping[str, date],
    basket_units: Mapping[tuple[str, date], float],
    start: date,
    end: date,
    as_of: date,
) -> list[tuple[object, ...]]:
    """Feature rows (in :data:`COLUMNS` order) for every store and day in ``start..end``.

    ``gold`` must hold each store's rows from ``start - HISTORY_DAYS``; ``first_days`` each
    store's first day in gold (all time).
    """
    by_store: dict[str, list[GoldDay]] = {}
    for row in gold:
        by_store.setdefault(row.store_id, []).append(row)
    read_start = start - timedelta(days=HISTORY_DAYS)
    per_day: dict[date, list[tuple[float, dict[str, object]]]] = {}
    for store_id in sorted(by_store):
        rows = sorted(by_store[store_id], key=lambda r: r.date_key)
        latest = rows[-1]
        s = _series(rows, first_days.get(store_id, rows[0].date_key), read_start, end)
        for i, feats in _store_rows(s, start, end):
            day = s.start + timedelta(days=i)
            g = s.gold.get(i)
            record: dict[str, object] = {
                "store_id": store_id, "date_key": day, "region": latest.region,
                "city": latest.city,
                "daily_revenue": g.daily_revenue if g else Decimal("0.00"),
                "transaction_count": g.transaction_count if g else 0,
                "day_of_week": (day.weekday() + 1) % 7,
                "basket_value": g.avg_transaction if g else None,
                "basket_units": basket_units.get((store_id, day)),
                "repeat_customer_rate": (g.returning_customers / g.unique_customers
                                         if g and g.unique_customers else None),
                "footfall_conversion": g.conversion_rate if g else None,
                "campaign_flag": bool(g and g.campaign_spend > 0),
                "as_of": as_of,
                **feats,
            }  # fmt: skip
            per_day.setdefault(day, []).append((float(feats["revenue_30d_ma"]), record))  # type: ignore[arg-type]
    return _rank(per_day)


def _rank(per_day: dict[date, list[tuple[float, dict[str, object]]]]) -> list[tuple[object, ...]]:
    out = []
    for day in sorted(per_day):
        entries = per_day[day]
        values = sorted(v for v, _ in entries)
        p50, p90 = percentile_cont(values, 0.5), percentile_cont(values, 0.9)
        n = len(values)
        below = _count_below(values)
        for value, record in entries:
            record["store_percentile"] = below[value] / (n - 1) if n > 1 else 0.0
            record["performance_tier"] = tier(value, p50, p90)
            out.append(tuple(record[c] for c in COLUMNS))
    return out


def _count_below(sorted_values: list[float]) -> dict[float, int]:
    """Value → how many values are strictly smaller (rank - 1, as percent_rank uses)."""
    below: dict[float, int] = {}
    for i, value in enumerate(sorted_values):
        below.setdefault(value, i)
    return below
