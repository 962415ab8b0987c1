"""Forecasts: exact on a noiseless series, better than seasonal naive on simulator demand."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from services.platinum_builder import forecast
from services.simulator.shapes import day_factor

START = date(2025, 11, 1)


def simulator_series(days: int, seed: int, noise: float = 0.08) -> tuple[list[date], list[float]]:
    """Daily revenue shaped like the simulator's: weekday and payday factors, slow growth,
    multiplicative noise."""
    rng = random.Random(seed)
    dates = [START + timedelta(days=i) for i in range(days)]
    values = [50_000 * (1 + 0.0005 * i) * day_factor(d) * rng.gauss(1, noise)
              for i, d in enumerate(dates)]  # fmt: skip
    return dates, values


def test_regression_recovers_trend_weekday_and_payday() -> None:
    dates = [START + timedelta(days=i) for i in range(120)]
    truth = [1000 + 3 * i + 50 * (d.weekday() == 5) + 200 * forecast.is_payday(d)
             for i, d in enumerate(dates)]  # fmt: skip
    predicted = forecast.ols_forecast(dates[:-14], truth[:-14], 14)
    assert predicted == pytest.approx(truth[-14:], rel=1e-6)


def test_seasonal_naive_repeats_last_week() -> None:
    dates = [START + timedelta(days=i) for i in range(14)]
    values = [float(i) for i in range(14)]
    assert forecast.seasonal_naive(dates, values, 9) == [7, 8, 9, 10, 11, 12, 13, 7, 8]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_beats_seasonal_naive_on_simulator_seasonality(seed: int) -> None:
    dates, values = simulator_series(365, seed)
    f = forecast.forecast(dates, values, 30)
    assert f.model == forecast.MODEL and f.baseline == forecast.BASELINE
    assert f.backtest_mape is not None and f.baseline_mape is not None
    assert f.backtest_mape < f.baseline_mape
    assert f.lower < f.total < f.upper


def test_interval_covers_the_realised_total_most_of_the_time() -> None:
    covered = 0
    trials = 20
    for seed in range(trials):
        dates, values = simulator_series(365 + 30, 100 + seed)
        f = forecast.forecast(dates[:365], values[:365], 30)
        covered += f.lower <= sum(values[365:]) <= f.upper
    assert covered >= trials * 0.8


def test_short_history_falls_back_to_the_baseline() -> None:
    dates, values = simulator_series(10, 5)
    f = forecast.forecast(dates, values, 7)
    assert f.model == forecast.BASELINE and f.backtest_mape is None
    assert f.total == pytest.approx(sum(values[-7:]))


def test_mape_ignores_days_without_sales() -> None:
    assert forecast.mape([0, 100, 200], [5, 110, 180]) == pytest.approx(10.0)
    assert forecast.mape([0, 0], [1, 2]) is None
