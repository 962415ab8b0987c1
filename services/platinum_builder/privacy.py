"""Differentially private weekly analytics per (region, city), with OpenDP. Pure (no I/O).

**Unit of privacy: the customer-week** — all transactions of one pseudonymous customer in one
local week. A walk-in transaction has no customer id and cannot be linked to others, so each
is its own unit (a person shopping anonymously t times a week is protected as t units, i.e.
at up to t·ε by group privacy). Neighbouring data sets differ by one unit, added or removed.

One weekly release spends ε (``epsilon``), split three ways by basic sequential composition:

1. **bounds** (``ε_bounds``, only for bounds not declared in configuration): OpenDP's
   ``make_private_quantile`` (exponential mechanism) over one value per unit: its number of
   transactions, and its total spend. The bound is ``headroom *`` the DP quantile, capped
   (``COUNT_CAP``, ``SPEND_CAP``): at the data sizes of a week the high tail (p99.9) cannot be
   resolved with a small ε, a mid quantile (p90) can, and the headroom (2.5) keeps the
   clamping bias small (on simulated weeks: c = 5, about 0.2 % of transactions clamped);
2. **counts** (``ε_count``): each unit keeps at most ``max_partitions`` groups and counts at
   most ``c`` transactions per group; Laplace noise of scale ``b_c = L0·c / ε_count`` on every
   group's bounded count (OpenDP ``make_laplace``, its privacy map checked);
3. **sums** (``ε_sum``): each unit's total spend per group clamped to ``[0, S]``; Laplace
   noise of scale ``b_s = L0·S / ε_sum`` on every group's bounded sum.

The groups are *public*: the (region, city) of the stores in the master data, not of the
transactions, so which groups exist reveals nothing about customers and no δ is needed.
A group whose noisy count is too small for its error (95 % error > ``max_relative_error`` of
the noisy count) is published as suppressed: a decision on the noisy value, never on an exact
count. ``avg_amount`` = noisy sum / noisy count; its interval comes from both noise scales
(a union bound, each at alpha/2). Everything after the noise is post-processing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")

MECHANISM = "opendp private_quantile (bounds) + laplace (counts) + laplace (sums), public groups"
COMPOSITION = "basic sequential composition: ε of releases add up within the budget window"
COUNT_CAP = 16
SPEND_CAP = 20_000.0
COUNT_CANDIDATES = [float(i) for i in range(1, COUNT_CAP + 1)]
SPEND_CANDIDATES = [round(10 * 1.15**i, 2) for i in range(80) if 10 * 1.15**i <= SPEND_CAP]

Key = tuple[str, str]


class PrivacyBudgetExceededError(Exception):
    """The release would spend more ε than the configured budget allows."""


@dataclass(frozen=True)
class PrivacyParams:
    epsilon: float  # per weekly release, all parts together
    max_partitions: int = 1
    max_contributions: int = 0  # 0: chosen from the data (DP quantile)
    spend_max: float = 0.0  # 0: chosen from the data (DP quantile)
    bounds_share: float = 0.1  # of ε, for the bounds chosen from the data
    count_share: float = 0.45  # of the rest, for the counts (the sums get the remainder)
    bound_quantile: float = 0.9
    bound_headroom: float = 2.5
    max_relative_error: float = 0.5
    confidence: float = 0.95

    @property
    def auto_bounds(self) -> int:
        return (self.max_contributions <= 0) + (self.spend_max <= 0)

    @property
    def epsilon_bounds(self) -> float:
        return self.epsilon * self.bounds_share if self.auto_bounds else 0.0

    @property
    def epsilon_count(self) -> float:
        return (self.epsilon - self.epsilon_bounds) * self.count_share

    @property
    def epsilon_sum(self) -> float:
        return self.epsilon - self.epsilon_bounds - self.epsilon_count


@dataclass(frozen=True)
class Bounds:
    max_contributions: int  # c: transactions counted per unit and group
    spend_max: float  # S: a unit's spend per group is clamped to [0, S]
    count_source: str  # "declared" or "dp_quantile"
    spend_source: str
    count_quantile: float | None = None  # the DP quantile the bound came from
    spend_quantile: float | None = None


@dataclass(frozen=True)
class Group:
    suppressed: bool
    count: float | None  # noisy count of transactions (bounded per unit)
    count_error: float  # half-width of the count's interval at params.confidence
    avg_amount: float | None
    avg_lower: float | None
    avg_upper: float | None
    noisy_sum: float | None


def count_scale(params: PrivacyParams, bounds: Bounds) -> float:
    return params.max_partitions * bounds.max_contributions / params.epsilon_count


def sum_scale(params: PrivacyParams, bounds: Bounds) -> float:
    return params.max_partitions * bounds.spend_max / params.epsilon_sum


def laplace_error(scale: float, alpha: float) -> float:
    """t with P(|Laplace(scale)| > t) = alpha (OpenDP's accuracy helper: scale·ln(1/alpha))."""
    return float(dp.laplacian_scale_to_accuracy(scale, alpha))


@functools.lru_cache(maxsize=64)
def _quantile_measurement(candidates: tuple[float, ...], alpha: float, d_in: int,
                          epsilon: float) -> dp.Measurement:  # fmt: skip
    """The private quantile spending ``epsilon`` at distance ``d_in`` (measurements are
    reusable: every call draws fresh noise; cached because the scale search is slow)."""
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))

    def make(scale: float) -> dp.Measurement:
        return dp.m.make_private_quantile(domain, dp.symmetric_distance(), dp.max_divergence(),
                                          candidates=list(candidates), alpha=alpha,
                                          scale=scale)  # fmt: skip

    meas = make(dp.binary_search_param(make, d_in=d_in, d_out=epsilon))
    spent = meas.map(d_in)  # type: ignore[no-untyped-call]
    if spent > epsilon * (1 + 1e-9):
        raise ValueError(f"quantile spends ε={spent} > {epsilon}")
    return meas


def _quantile(values: Sequence[float], candidates: list[float], params: PrivacyParams,
              epsilon: float) -> float:  # fmt: skip
    # A unit adds one value per group it keeps: distance max_partitions.
    meas = _quantile_measurement(tuple(candidates), params.bound_quantile,
                                 params.max_partitions, epsilon)  # fmt: skip
    return float(meas([float(v) for v in values]))


def choose_bounds(unit_counts: Sequence[float], unit_spends: Sequence[float],
                  params: PrivacyParams) -> Bounds:  # fmt: skip
    """Declared bounds as they are; the others from a DP quantile of the units' values."""
    epsilon = params.epsilon_bounds / params.auto_bounds if params.auto_bounds else 0.0
    if params.max_contributions > 0:
        c, c_src, c_q = params.max_contributions, "declared", None
    else:
        c_q = _quantile(unit_counts, COUNT_CANDIDATES, params, epsilon)
        c = min(COUNT_CAP, max(1, math.ceil(c_q * params.bound_headroom)))
        c_src = "dp_quantile"
    if params.spend_max > 0:
        s, s_src, s_q = params.spend_max, "declared", None
    else:
        s_q = _quantile(unit_spends, SPEND_CANDIDATES, params, epsilon)
        s, s_src = min(SPEND_CAP, round(s_q * params.bound_headroom, 2)), "dp_quantile"
    return Bounds(c, s, c_src, s_src, c_q, s_q)


def bound(contributions: Sequence[tuple[Key, float, float]], bounds: Bounds
          ) -> dict[Key, tuple[float, float]]:  # fmt: skip
    """Per group: (Σ min(n, c), Σ min(max(s, 0), S)) over the units' (group, n, s)."""
    out: dict[Key, tuple[float, float]] = {}
    c, cap = bounds.max_contributions, bounds.spend_max
    for key, n, s in contributions:
        count, total = out.get(key, (0.0, 0.0))
        out[key] = (count + min(n, c), total + min(max(s, 0.0), cap))
    return out


@functools.lru_cache(maxsize=256)
def _laplace(scale: float, sensitivity: float, epsilon: float) -> dp.Measurement:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    meas = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=scale)
    spent = meas.map(float(sensitivity))  # type: ignore[no-untyped-call]
    if spent > epsilon * (1 + 1e-9):
        raise ValueError(f"laplace measurement spends ε={spent} > {epsilon}")
    return meas


def release(groups: Sequence[Key], bounded: Mapping[Key, tuple[float, float]],
            params: PrivacyParams, bounds: Bounds) -> dict[Key, Group]:  # fmt: skip
    """Noisy count, average and their intervals for every public group (suppressed or not).

    Randomness comes from OpenDP's sampler: every call is a fresh release that spends
    ``params.epsilon_count + params.epsilon_sum``.
    """
    keys = sorted(set(groups))
    if not keys:
        return {}
    b_c, b_s = count_scale(params, bounds), sum_scale(params, bounds)
    l0 = params.max_partitions
    counts = _laplace(b_c, l0 * bounds.max_contributions, params.epsilon_count)(
        [float(bounded.get(k, (0.0, 0.0))[0]) for k in keys])  # fmt: skip
    sums = _laplace(b_s, l0 * bounds.spend_max, params.epsilon_sum)(
        [float(bounded.get(k, (0.0, 0.0))[1]) for k in keys])  # fmt: skip
    alpha = 1 - params.confidence
    t_c = laplace_error(b_c, alpha)
    t_c2, t_s2 = laplace_error(b_c, alpha / 2), laplace_error(b_s, alpha / 2)
    out = {}
    for key, count, total in zip(keys, counts, sums, strict=True):
        if count <= 0 or t_c > params.max_relative_error * count:
            out[key] = Group(True, None, t_c, None, None, None, None)
            continue
        avg = min(max(total / count, 0.0), bounds.spend_max)
        lower = max(total - t_s2, 0.0) / (count + t_c2)
        upper = (total + t_s2) / (count - t_c2) if count > t_c2 else bounds.spend_max
        out[key] = Group(False, float(count), t_c, avg, min(lower, avg),
                         max(min(upper, bounds.spend_max), avg), float(total))  # fmt: skip
    return out


def window_spent(ledger: Sequence[tuple[int, float]], week: int, window: int) -> float:
    """ε spent on the releases of weeks in the ``window`` weeks ending at ``week``
    (weeks numbered consecutively; window 0 = all time)."""
    return sum(eps for w, eps in ledger if window <= 0 or week - window < w <= week)


def check_budget(ledger: Sequence[tuple[int, float]], new_weeks: Sequence[int], epsilon: float,
                 budget: float, window: int) -> None:  # fmt: skip
    """Refuse (raise) if, with ``epsilon`` spent on each of ``new_weeks``, any ``window``
    consecutive weeks would spend more than ``budget`` (basic sequential composition)."""
    entries = [*ledger, *((w, epsilon) for w in new_weeks)]
    ends = {w + k for w in new_weeks for k in range(window)} if window > 0 else {max(
        [w for w, _ in entries], default=0)}  # fmt: skip
    for end in sorted(ends):
        spent = window_spent(entries, end, window)
        if spent > budget + 1e-12:
            before = window_spent(ledger, end, window)
            span = f"any {window} consecutive weeks" if window > 0 else "all time"
            raise PrivacyBudgetExceededError(
                f"privacy budget exhausted: {len(new_weeks)} release(s) of ε={epsilon:g} would "
                f"bring the ε spent over {span} to {spent:g} > budget ε={budget:g} (already "
                f"spent in that window: ε={before:g}); nothing was released. Raising "
                "SCOUT_PRIVACY_EPSILON_BUDGET weakens the privacy guarantee and needs the data "
                "protection officer's approval."
            )


def laplace_cdf(x: float, scale: float) -> float:
    """CDF of Laplace(0, scale), for checking released noise against the mechanism."""
    if x < 0:
        return 0.5 * math.exp(x / scale)
    return 1.0 - 0.5 * math.exp(-x / scale)
