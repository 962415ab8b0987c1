"""Daily revenue forecasts with honest error: a small regression model, its backtest, and a
seasonal-naive baseline measured on the same hold-out. Pure Python, no I/O.

Model ``ols_trend_dow_payday``: ordinary least squares on the last ``fit_days`` days with an
intercept, a linear trend, day-of-week dummies and a payday dummy (the 15th-16th and the
month's last days, the Philippine semi-monthly pay cycle that moves retail demand).
Baseline ``seasonal_naive_7``: each day repeats the same weekday of the last observed week.

Error: MAPE of daily values over the last ``holdout`` days, with the model fitted on the days
before them. Prediction interval of a horizon's total: from rolling-origin backtests (origins
a week apart), the root-mean-square relative error of the horizon total, times z.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

MODEL = "ols_trend_dow_payday"
BASELINE = "seasonal_naive_7"
FIT_DAYS = 182
HOLDOUT = 28
MIN_TRAIN = 28
ORIGINS = 8
Z_95 = 1.959964
LEVEL = 0.95

Forecaster = Callable[[Sequence[date], Sequence[float], int], list[float]]


@dataclass(frozen=True)
class Forecast:
    model: str
    horizon: int
    total: float
    lower: float
    upper: float
    level: float
    backtest_mape: float | None
    baseline: str
    baseline_mape: float | None
    daily: list[float]


def is_payday(day: date) -> bool:
    last = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return day.day in (15, 16) or day.day >= min(30, last.day - 1)


def _features(day: date, origin: date) -> list[float]:
    dow = [1.0 if day.weekday() == k else 0.0 for k in range(6)]
    return [1.0, (day - origin).days / 100.0, *dow, 1.0 if is_payday(day) else 0.0]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small and, with the ridge, regular)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= factor * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def ols_forecast(days: Sequence[date], values: Sequence[float], horizon: int) -> list[float]:
    """The regression model fitted on the last FIT_DAYS points, ``horizon`` days ahead."""
    days, values = days[-FIT_DAYS:], values[-FIT_DAYS:]
    origin = days[0]
    rows = [_features(d, origin) for d in days]
    k = len(rows[0])
    xtx = [[sum(r[i] * r[j] for r in rows) + (1e-6 if i == j else 0.0) for j in range(k)]
           for i in range(k)]  # fmt: skip
    xty = [sum(r[i] * v for r, v in zip(rows, values, strict=True)) for i in range(k)]
    beta = _solve(xtx, xty)
    last = days[-1]
    out = []
    for h in range(1, horizon + 1):
        x = _features(last + timedelta(days=h), origin)
        out.append(max(0.0, sum(b * xi for b, xi in zip(beta, x, strict=True))))
    return out


def seasonal_naive(days: Sequence[date], values: Sequence[float], horizon: int) -> list[float]:
    season = list(values[-7:])
    return [season[(h - 1) % len(season)] for h in range(1, horizon + 1)]


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Mean absolute percentage error over the days with sales (percent)."""
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=True) if a > 0]
    if not pairs:
        return None
    return 100.0 * sum(abs(a - p) / a for a, p in pairs) / len(pairs)


def backtest(forecaster: Forecaster, days: Sequence[date], values: Sequence[float],
             holdout: int = HOLDOUT) -> float | None:  # fmt: skip
    """MAPE of ``forecaster`` on the last ``holdout`` days, fitted on the days before."""
    if len(values) < holdout + MIN_TRAIN:
        return None
    predicted = forecaster(days[:-holdout], values[:-holdout], holdout)
    return mape(values[-holdout:], predicted)


def total_error(forecaster: Forecaster, days: Sequence[date], values: Sequence[float],
                horizon: int) -> float | None:  # fmt: skip
    """RMS relative error of the horizon total over rolling origins a week apart."""
    errors = []
    for k in range(ORIGINS):
        cut = len(values) - horizon - 7 * k
        if cut < MIN_TRAIN:
            break
        predicted = sum(forecaster(days[:cut], values[:cut], horizon))
        actual = sum(values[cut : cut + horizon])
        if predicted > 0:
            errors.append((actual - predicted) / predicted)
    if len(errors) < 2:
        return None
    return math.sqrt(sum(e * e for e in errors) / len(errors))


def forecast(days: Sequence[date], values: Sequence[float], horizon: int) -> Forecast:
    """Forecast the next ``horizon`` days' total with a 95 % interval and both errors.

    ``days`` must be consecutive (fill missing days with 0 first)."""
    if len(values) < MIN_TRAIN:
        # Too little history for the regression: fall back to the baseline, say so.
        daily = seasonal_naive(days, values, horizon) if values else [0.0] * horizon
        total = sum(daily)
        return Forecast(BASELINE, horizon, total, total, total, LEVEL, None, BASELINE, None,
                        daily)  # fmt: skip
    daily = ols_forecast(days, values, horizon)
    total = sum(daily)
    rel = total_error(ols_forecast, days, values, horizon)
    if rel is None:  # fall back to daily residual spread, assuming independent days
        fitted = ols_forecast(days[:-7], values[:-7], 7) if len(values) >= MIN_TRAIN + 7 else []
        resid = [a - p for a, p in zip(values[-7:], fitted, strict=False)]
        sd = math.sqrt(sum(r * r for r in resid) / len(resid)) if resid else 0.0
        half = Z_95 * sd * math.sqrt(horizon)
    else:
        half = Z_95 * rel * total
    return Forecast(
        MODEL, horizon, total, max(0.0, total - half), total + half, LEVEL,
        backtest(ols_forecast, days, values), BASELINE,
        backtest(seasonal_naive, days, values), daily,
    )  # fmt: skip


def dense(points: dict[date, float], start: date, end: date) -> tuple[list[date], list[float]]:
    """Consecutive days start..end with 0 for the missing ones."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return days, [points.get(d, 0.0) for d in days]
