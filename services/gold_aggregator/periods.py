"""The periods gold keeps: local days, ISO weeks (from Monday) and calendar months.

A change of local day ``d`` belongs to one group of each period. The names are those of
PostgreSQL's ``date_trunc`` (``sql.period_of``).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

DAY, WEEK, MONTH = "day", "week", "month"
PERIODS = (DAY, WEEK, MONTH)
ROLLUPS = (WEEK, MONTH)
# The capture table's ``rebuilt`` mask: bit 1, the day's partial sums hold the change (a
# rebuild counted it). Bits 2 and 4 were weeks' and months' until 0072 kept partial sums
# per day only; one still set on a waiting change means nothing.
REBUILT_DAY = 1


@lru_cache(maxsize=8192)  # a flush asks for the same few days thousands of times
def start_of(period: str, day: date) -> date:
    if period == DAY:
        return day
    if period == WEEK:
        return day - timedelta(days=day.weekday())
    if period == MONTH:
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def end_of(period: str, start: date) -> date:
    """The day after the period that starts on ``start``."""
    if period == DAY:
        return start + timedelta(days=1)
    if period == WEEK:
        return start + timedelta(days=7)
    if period == MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown period {period!r}")
