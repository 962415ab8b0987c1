"""Differentially private weekly analytics per (region, city), with OpenDP. Pure (no I/O).

The privacy unit is a customer (its pseudonymous key; a walk-in transaction is its own unit).
Before anything is released, each unit's contribution to one week is bounded — at most
``max_partitions`` (region, city) groups and ``max_contributions`` transactions per group,
amounts clamped to ``[0, amount_max]`` — by the SQL that aggregates silver (the key never
leaves the database query). Then, with ε split in two halves:

1. counts: OpenDP's ``make_laplace_threshold`` adds Laplace noise of scale
   ``b_c = L0·L∞ / (ε/2)`` to every group's bounded count and releases only the groups whose
   *noisy* count passes a threshold chosen so that δ ≤ ``delta`` (groups are suppressed by a
   DP threshold, never by their exact count);
2. sums: OpenDP's vector Laplace mechanism with scale ``b_s = L0·L∞·amount_max / (ε/2)`` on the
   released groups' bounded sums.

``avg_amount`` = noisy sum / noisy count, clamped to the amount bounds (post-processing).
Each measurement's privacy map is checked against the ε it was given; the release spends ε
(and δ) in the privacy ledger, which refuses a release that would exceed the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")

MECHANISM = "opendp laplace_threshold (counts) + laplace (sums)"


class PrivacyBudgetExceededError(Exception):
    """The release would spend more ε than the configured budget allows."""


@dataclass(frozen=True)
class PrivacyParams:
    epsilon: float
    delta: float
    max_partitions: int
    max_contributions: int
    amount_max: float

    @property
    def count_scale(self) -> float:
        return self.max_partitions * self.max_contributions / (self.epsilon / 2)

    @property
    def sum_scale(self) -> float:
        return self.max_partitions * self.max_contributions * self.amount_max / (self.epsilon / 2)


@dataclass(frozen=True)
class Group:
    count: float  # noisy bounded count
    avg_amount: float
    noisy_sum: float


def _count_measurement(params: PrivacyParams) -> tuple[dp.Measurement, float]:
    """The thresholded count measurement and its threshold (δ ≤ params.delta)."""
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=float, nan=False))
    metric = dp.l01inf_distance(dp.absolute_distance(T=float))
    scale = params.count_scale
    d_in = (params.max_partitions, float(params.max_partitions * params.max_contributions),
            float(params.max_contributions))  # fmt: skip
    threshold = params.max_contributions + scale * math.log(1.0 / params.delta)
    for _ in range(200):
        meas = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)
        epsilon, delta = meas.map(d_in)  # type: ignore[no-untyped-call]
        if delta <= params.delta:
            if epsilon > params.epsilon / 2 * (1 + 1e-9):
                raise ValueError(f"count measurement spends ε={epsilon} > {params.epsilon / 2}")
            return meas, threshold
        threshold += scale
    raise ValueError("no threshold reaches the requested δ")


def _sum_measurement(params: PrivacyParams) -> dp.Measurement:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    meas = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=params.sum_scale)
    sensitivity = params.max_partitions * params.max_contributions * params.amount_max
    epsilon = meas.map(float(sensitivity))  # type: ignore[no-untyped-call]
    if epsilon > params.epsilon / 2 * (1 + 1e-9):
        raise ValueError(f"sum measurement spends ε={epsilon} > {params.epsilon / 2}")
    return meas


def threshold(params: PrivacyParams) -> float:
    return _count_measurement(params)[1]


def release(
    bounded: Mapping[tuple[str, str], tuple[float, float]], params: PrivacyParams
) -> dict[tuple[str, str], Group]:
    """Release (noisy count, noisy average) per group from bounded (count, sum) per group.

    Groups are keyed (region, city). Randomness comes from OpenDP's sampler: every call is a
    fresh release that spends ``params.epsilon``.
    """
    counts_meas, _ = _count_measurement(params)
    keys = {f"{region}\x1f{city}": (region, city) for region, city in bounded}
    noisy_counts = counts_meas({k: float(bounded[g][0]) for k, g in keys.items()})
    released = sorted(noisy_counts)
    if not released:
        return {}
    noisy_sums = _sum_measurement(params)([float(bounded[keys[k]][1]) for k in released])
    out = {}
    for key, noisy_sum in zip(released, noisy_sums, strict=True):
        count = float(noisy_counts[key])
        avg = min(max(noisy_sum / max(count, 1.0), 0.0), params.amount_max)
        out[keys[key]] = Group(count, avg, noisy_sum)
    return out


def check_budget(spent: float, budget: float, epsilon: float, releases: int = 1) -> None:
    """Refuse (raise) when ``releases`` more releases of ``epsilon`` would exceed ``budget``."""
    needed = epsilon * releases
    if spent + needed > budget + 1e-12:
        raise PrivacyBudgetExceededError(
            f"privacy budget exhausted: {releases} release(s) need ε={needed:g} but only "
            f"ε={max(budget - spent, 0.0):g} of the budget ε={budget:g} is left (spent "
            f"ε={spent:g}); nothing was released. Raising SCOUT_PRIVACY_EPSILON_BUDGET weakens "
            "the privacy guarantee and needs the data protection officer's approval."
        )


def laplace_cdf(x: float, scale: float) -> float:
    """CDF of Laplace(0, scale), for checking released noise against the mechanism."""
    if x < 0:
        return 0.5 * math.exp(x / scale)
    return 1.0 - 0.5 * math.exp(-x / scale)
