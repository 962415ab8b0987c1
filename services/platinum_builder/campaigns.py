"""Campaign insights: spend, revenue lift against a baseline, ROI. Pure.

A campaign's stores are those with spend rows for it; its days run from the first to the
last spend day. The baseline is a difference-in-differences estimate: the campaign stores'
mean daily revenue over the ``PRE_DAYS`` days before the campaign, times the campaign's days,
times the growth the *other* stores (the control group, no spend for this campaign) showed
between those same two periods. Without control stores the growth factor is 1
(``pre_period``). Lift = revenue during - baseline; ROI = (lift - spend) / spend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

PRE_DAYS = 28
COLUMNS = (
    "campaign_id", "first_day", "last_day", "stores", "control_stores", "spend",
    "revenue_during", "baseline_revenue", "revenue_lift", "lift_pct", "roi",
    "attributed_revenue", "method", "as_of",
)  # fmt: skip


@dataclass(frozen=True)
class Spend:
    campaign_id: str
    store_id: str
    spend_date: date
    spend: Decimal


def _sum(revenue: Mapping[tuple[str, date], float], stores: Iterable[str], first: date,
         days: int) -> float:  # fmt: skip
    dates = [first + timedelta(days=i) for i in range(days)]
    return sum(revenue.get((s, d), 0.0) for s in stores for d in dates)


def insights(
    spend: Iterable[Spend],
    revenue: Mapping[tuple[str, date], float],
    all_stores: Iterable[str],
    attributed: Mapping[str, Decimal],
    as_of: date,
) -> list[tuple[object, ...]]:
    """One row per campaign (in :data:`COLUMNS` order); ``revenue`` is per (store, day)."""
    campaigns: dict[str, list[Spend]] = {}
    for row in spend:
        campaigns.setdefault(row.campaign_id, []).append(row)
    stores_all = set(all_stores)
    out: list[tuple[object, ...]] = []
    for campaign_id in sorted(campaigns):
        rows = campaigns[campaign_id]
        first, last = min(r.spend_date for r in rows), max(r.spend_date for r in rows)
        days = (last - first).days + 1
        treated = sorted({r.store_id for r in rows})
        control = sorted(stores_all - set(treated))
        pre_start = first - timedelta(days=PRE_DAYS)
        during = _sum(revenue, treated, first, days)
        pre = _sum(revenue, treated, pre_start, PRE_DAYS)
        growth, method = 1.0, "pre_period"
        control_pre = _sum(revenue, control, pre_start, PRE_DAYS)
        if control and control_pre > 0:
            growth = (_sum(revenue, control, first, days) / days) / (control_pre / PRE_DAYS)
            method = "diff_in_diff"
        baseline = pre / PRE_DAYS * days * growth if pre > 0 else None
        spent = sum((r.spend for r in rows), Decimal(0))
        lift = during - baseline if baseline is not None else None
        out.append((
            campaign_id, first, last, len(treated), len(control), spent,
            _money(during), _money(baseline), _money(lift),
            lift / baseline if lift is not None and baseline else None,
            (lift - float(spent)) / float(spent) if lift is not None and spent else None,
            attributed.get(campaign_id, Decimal("0.00")), f"{method}_{PRE_DAYS}d", as_of,
        ))  # fmt: skip
    return out


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 2)))
