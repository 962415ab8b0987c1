"""The shape of demand: hourly and weekday seasonality, paydays, baskets, customers. Pure.

Numbers follow a Philippine convenience store: a breakfast peak (6-9), lunch, and the
evening peak after work (17-21); busier weekends and paydays (15th and end of month);
baskets of one to a few lines, mostly single units.
"""

from __future__ import annotations

import random
from datetime import date

# Relative traffic per local hour 0..23.
HOURLY = (
    0.25, 0.15, 0.1, 0.08, 0.1, 0.35, 0.9, 1.4, 1.5, 1.1, 1.0, 1.2,
    1.5, 1.3, 1.0, 1.0, 1.2, 1.6, 1.9, 1.8, 1.5, 1.1, 0.7, 0.4,
)  # fmt: skip
# Monday .. Sunday
WEEKDAY = (0.9, 0.88, 0.9, 0.95, 1.1, 1.25, 1.15)
PAYMENT_METHODS = ("cash", "gcash", "maya", "card")
PAYMENT_WEIGHTS = (60, 25, 7, 8)


def day_factor(day: date) -> float:
    """Weekday seasonality times the payday bump (15th and the last two days of a month)."""
    factor = WEEKDAY[day.weekday()]
    if day.day in (15, 16) or day.day >= 30 or (day.month == 2 and day.day >= 28):
        factor *= 1.3
    return factor


def basket_lines(rng: random.Random, campaign: bool) -> int:
    """Distinct SKUs in a basket: geometric, 1 most often; campaigns add one."""
    lines = 1
    while lines < 8 and rng.random() < 0.45:
        lines += 1
    return lines + (1 if campaign else 0)


def quantity(rng: random.Random, max_qty: int) -> int:
    """Units of one SKU: skewed towards 1, up to the category's usual maximum."""
    return 1 + int(rng.random() ** 2.5 * max_qty)


def popularity_weights(n: int) -> list[float]:
    """Zipf-like cumulative weights for ``n`` products ranked by popularity."""
    total = 0.0
    cumulative = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**0.8
        cumulative.append(total)
    return cumulative


def cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out
