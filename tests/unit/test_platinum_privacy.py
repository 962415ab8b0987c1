"""DP release: noise follows the stated Laplace mechanism (KS test), suppression is decided on
noisy counts only, published intervals cover at their rate, bounds come from DP quantiles or
configuration, and the budget refuses releases past it over its window."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from services.platinum_builder import privacy

PARAMS = privacy.PrivacyParams(epsilon=1.0, max_contributions=5, spend_max=2000.0)
BOUNDS = privacy.choose_bounds([], [], PARAMS)  # both declared: no data read, no ε spent
KEY = ("NCR", "Makati")
TRUE_COUNT, TRUE_SUM = 5000.0, 600_000.0
RELEASES = 1500


def ks_statistic(samples: list[float], cdf: object) -> float:
    xs = sorted(samples)
    n = len(xs)
    d = 0.0
    for i, x in enumerate(xs):
        f = cdf(x)  # type: ignore[operator]
        d = max(d, (i + 1) / n - f, f - i / n)
    return d


def ks_p_value(d: float, n: int) -> float:
    """Asymptotic Kolmogorov distribution: P(D_n >= d)."""
    t = d * math.sqrt(n)
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * t * t)
                                     for k in range(1, 101))))  # fmt: skip


def draw_noise() -> tuple[list[float], list[float]]:
    counts, sums = [], []
    for _ in range(RELEASES):
        group = privacy.release([KEY], {KEY: (TRUE_COUNT, TRUE_SUM)}, PARAMS, BOUNDS)[KEY]
        assert group.count is not None and group.noisy_sum is not None
        counts.append(group.count - TRUE_COUNT)
        sums.append(group.noisy_sum - TRUE_SUM)
    return counts, sums


@pytest.fixture(scope="module")
def noise() -> tuple[list[float], list[float]]:
    return draw_noise()


def test_scales_follow_sensitivity_and_epsilon() -> None:
    assert BOUNDS.count_source == BOUNDS.spend_source == "declared"
    assert PARAMS.epsilon_bounds == 0  # declared bounds cost nothing
    assert PARAMS.epsilon_count == pytest.approx(0.45)
    assert PARAMS.epsilon_sum == pytest.approx(0.55)
    assert privacy.count_scale(PARAMS, BOUNDS) == pytest.approx(5 / 0.45)  # L0·c / ε_count
    assert privacy.sum_scale(PARAMS, BOUNDS) == pytest.approx(2000 / 0.55)  # L0·S / ε_sum
    auto = privacy.PrivacyParams(epsilon=0.5)
    assert auto.epsilon_bounds + auto.epsilon_count + auto.epsilon_sum == pytest.approx(0.5)
    assert auto.epsilon_bounds == pytest.approx(0.05)


def fits(samples: list[float], cdf: object, redraw: Callable[[], list[float]]) -> bool:
    """KS at p > 0.001, on the samples or, if they fail, on one fresh draw. OpenDP's noise
    comes from its own secure generator and cannot be seeded, so the right distribution
    fails one draw once in a thousand; it fails two independent draws once in a million,
    while a wrong scale fails both (the power checks below use the first draw)."""
    if ks_p_value(ks_statistic(samples, cdf), RELEASES) > 0.001:
        return True
    return ks_p_value(ks_statistic(redraw(), cdf), RELEASES) > 0.001


Noise = tuple[list[float], list[float]]


def test_count_noise_is_laplace_with_the_stated_scale(noise: Noise) -> None:
    counts, _ = noise
    b = privacy.count_scale(PARAMS, BOUNDS)
    assert fits(counts, lambda x: privacy.laplace_cdf(x, b), lambda: draw_noise()[0])
    # The test has power: the same samples reject a Laplace of twice the scale, and a normal
    # distribution of the same variance is a worse fit than the Laplace.
    assert ks_p_value(ks_statistic(counts, lambda x: privacy.laplace_cdf(x, 2 * b)),
                      RELEASES) < 0.001  # fmt: skip
    variance = sum(c * c for c in counts) / len(counts)
    assert variance == pytest.approx(2 * b * b, rel=0.15)


def test_sum_noise_is_laplace_with_the_stated_scale(noise: Noise) -> None:
    _, sums = noise
    b = privacy.sum_scale(PARAMS, BOUNDS)
    assert fits(sums, lambda x: privacy.laplace_cdf(x, b), lambda: draw_noise()[1])
    assert ks_p_value(ks_statistic(sums, lambda x: privacy.laplace_cdf(x, b / 2)),
                      RELEASES) < 0.001  # fmt: skip


def test_published_count_error_is_the_laplace_quantile(noise: Noise) -> None:
    counts, _ = noise
    error = privacy.laplace_error(privacy.count_scale(PARAMS, BOUNDS), 0.05)
    assert error == pytest.approx(privacy.count_scale(PARAMS, BOUNDS) * math.log(20))
    inside = sum(abs(c) <= error for c in counts) / len(counts)
    assert 0.93 <= inside <= 0.97


def test_suppression_is_decided_on_the_noisy_count() -> None:
    b = privacy.count_scale(PARAMS, BOUNDS)
    cut = privacy.laplace_error(b, 0.05) / PARAMS.max_relative_error  # noisy count needed
    small, empty = ("Cebu", "Cebu City"), ("Ilocos", "Vigan")
    data = {small: (cut, cut * 300.0), KEY: (TRUE_COUNT, TRUE_SUM)}
    runs = [privacy.release([small, empty, KEY], data, PARAMS, BOUNDS) for _ in range(400)]
    # A public group without data is a row, marked suppressed, with no value.
    assert sum(not r[empty].suppressed for r in runs) <= 3
    assert all(r[empty].count is None and r[empty].avg_amount is None
               for r in runs if r[empty].suppressed)  # fmt: skip
    # At the cut, release is random (noisy), not decided by the exact count.
    near = sum(not r[small].suppressed for r in runs)
    assert 140 < near < 260
    assert all(not r[KEY].suppressed for r in runs)


def test_average_interval_covers_at_its_rate() -> None:
    n, total = 400.0, 400.0 * 310.0
    hits, widths = 0, []
    for _ in range(800):
        g = privacy.release([KEY], {KEY: (n, total)}, PARAMS, BOUNDS)[KEY]
        if g.suppressed:
            continue
        assert g.avg_lower is not None and g.avg_upper is not None and g.avg_amount is not None
        assert g.avg_lower <= g.avg_amount <= g.avg_upper <= BOUNDS.spend_max
        hits += g.avg_lower <= total / n <= g.avg_upper
        widths.append(g.avg_upper - g.avg_lower)
    assert hits / len(widths) >= 0.95  # a union bound: conservative
    assert sorted(widths)[len(widths) // 2] < 0.6 * 310  # and still informative


def test_bound_clamps_each_unit() -> None:
    units = [(KEY, 9.0, 100.0), (KEY, 1.0, 5000.0), (("A", "B"), 2.0, 50.0)]
    assert privacy.bound(units, BOUNDS) == {KEY: (6.0, 2100.0), ("A", "B"): (2.0, 50.0)}


def test_bounds_from_dp_quantiles_of_the_units() -> None:
    rng = random.Random(3)
    counts = [1.0 if rng.random() < 0.6 else float(1 + int(rng.expovariate(0.6)))
              for _ in range(20_000)]  # fmt: skip
    spends = [rng.lognormvariate(5.5, 0.8) for _ in range(20_000)]
    q90 = sorted(spends)[18_000]
    params = privacy.PrivacyParams(epsilon=0.5)
    chosen = [privacy.choose_bounds(counts, spends, params) for _ in range(40)]
    assert all(b.count_source == b.spend_source == "dp_quantile" for b in chosen)
    c_values = sorted(b.max_contributions for b in chosen)
    assert c_values[20] == math.ceil(2.5 * sorted(counts)[18_000])  # headroom * p90, mostly
    s_values = sorted(b.spend_max for b in chosen)
    assert 2.1 * q90 < s_values[20] < 2.9 * q90
    assert max(c_values) <= privacy.COUNT_CAP and max(s_values) <= privacy.SPEND_CAP
    half = privacy.choose_bounds(counts, spends, privacy.PrivacyParams(0.5, max_contributions=4))
    assert half.max_contributions == 4 and half.spend_source == "dp_quantile"


def test_budget_refuses_a_release_past_it_within_its_window() -> None:
    ledger = [(w, 0.5) for w in range(100, 150)]  # 50 weeks of ε = 0.5 → 25
    privacy.check_budget(ledger, [150], 0.5, budget=25.5, window=52)  # 25.5 ≤ 25.5
    with pytest.raises(privacy.PrivacyBudgetExceededError, match="privacy budget exhausted"):
        privacy.check_budget(ledger, [150, 151], 0.5, budget=25.5, window=52)  # 100..151: 26
    # Weeks older than the window no longer count against it.
    privacy.check_budget(ledger, [160, 161, 162], 0.5, budget=25.5, window=52)
    with pytest.raises(privacy.PrivacyBudgetExceededError, match="SCOUT_PRIVACY_EPSILON_BUDGET"):
        privacy.check_budget([], list(range(11)), 1.0, budget=10.0, window=0)  # all time
    assert privacy.window_spent(ledger, 151, 52) == pytest.approx(25.0)
