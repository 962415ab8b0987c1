"""DP release: noise follows the stated Laplace mechanism (KS test), small groups are
suppressed by a noisy threshold, the budget refuses releases past it."""

from __future__ import annotations

import math

import pytest

from services.platinum_builder import privacy

PARAMS = privacy.PrivacyParams(epsilon=1.0, delta=1e-6, max_partitions=1, max_contributions=5,
                               amount_max=2000.0)  # fmt: skip
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


@pytest.fixture(scope="module")
def noise() -> tuple[list[float], list[float]]:
    counts, sums = [], []
    for _ in range(RELEASES):
        group = privacy.release({KEY: (TRUE_COUNT, TRUE_SUM)}, PARAMS)[KEY]
        counts.append(group.count - TRUE_COUNT)
        sums.append(group.noisy_sum - TRUE_SUM)
    return counts, sums


def test_scales_follow_sensitivity_and_epsilon() -> None:
    assert PARAMS.count_scale == pytest.approx(5 / 0.5)  # L0·L∞ / (ε/2)
    assert PARAMS.sum_scale == pytest.approx(5 * 2000 / 0.5)


Noise = tuple[list[float], list[float]]


def test_count_noise_is_laplace_with_the_stated_scale(noise: Noise) -> None:
    counts, _ = noise
    b = PARAMS.count_scale
    assert ks_p_value(ks_statistic(counts, lambda x: privacy.laplace_cdf(x, b)), RELEASES) > 0.001
    # The test has power: the same samples reject a Laplace of twice the scale, and a normal
    # distribution of the same variance is a worse fit than the Laplace.
    assert ks_p_value(ks_statistic(counts, lambda x: privacy.laplace_cdf(x, 2 * b)),
                      RELEASES) < 0.001  # fmt: skip
    variance = sum(c * c for c in counts) / len(counts)
    assert variance == pytest.approx(2 * b * b, rel=0.15)


def test_sum_noise_is_laplace_with_the_stated_scale(noise: Noise) -> None:
    _, sums = noise
    b = PARAMS.sum_scale
    assert ks_p_value(ks_statistic(sums, lambda x: privacy.laplace_cdf(x, b)), RELEASES) > 0.001
    assert ks_p_value(ks_statistic(sums, lambda x: privacy.laplace_cdf(x, b / 2)),
                      RELEASES) < 0.001  # fmt: skip


def test_small_groups_are_suppressed_by_a_noisy_threshold() -> None:
    threshold = privacy.threshold(PARAMS)
    assert threshold > PARAMS.max_contributions
    small = ("Cebu", "Cebu City")
    released = sum(small in privacy.release({small: (20.0, 2000.0), KEY: (TRUE_COUNT, TRUE_SUM)},
                                            PARAMS) for _ in range(300))  # fmt: skip
    assert released == 0
    # Around the threshold, release is random (noisy), not decided by the exact count.
    near = sum(small in privacy.release({small: (threshold, 1000.0)}, PARAMS)
               for _ in range(300))  # fmt: skip
    assert 90 < near < 210


def test_average_is_clamped_to_the_amount_bounds() -> None:
    group = privacy.release({KEY: (TRUE_COUNT, TRUE_SUM)}, PARAMS)[KEY]
    assert 0 <= group.avg_amount <= PARAMS.amount_max
    assert group.avg_amount == pytest.approx(TRUE_SUM / TRUE_COUNT, rel=0.2)


def test_budget_refuses_a_release_past_it() -> None:
    privacy.check_budget(spent=9.0, budget=10.0, epsilon=1.0)
    with pytest.raises(privacy.PrivacyBudgetExceededError, match="privacy budget exhausted"):
        privacy.check_budget(spent=9.5, budget=10.0, epsilon=1.0)
    with pytest.raises(privacy.PrivacyBudgetExceededError):
        privacy.check_budget(spent=0.0, budget=10.0, epsilon=1.0, releases=11)
