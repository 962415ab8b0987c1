"""Platinum settings: the privacy budget and mechanism, the job windows and the scheduler tick.

They are ``SCOUT_*`` environment variables like the pipeline's own settings, read by a small
settings class of this package (built once in ``main()`` / ``build_app`` and passed down).
What each privacy setting trades is in the README, section "Privacy"; in short:

- ``SCOUT_PRIVACY_EPSILON_PER_RELEASE`` (0.5): ε of one weekly release (bounds + counts +
  sums); more ε, less noise, weaker protection of each customer-week.
- ``SCOUT_PRIVACY_EPSILON_BUDGET`` (30) over ``SCOUT_PRIVACY_BUDGET_WINDOW_WEEKS`` (52; 0 =
  all time): the most ε the releases of any window of consecutive weeks may spend together
  (basic sequential composition); a release past it is refused.
- ``SCOUT_PRIVACY_MAX_CONTRIBUTIONS`` (0 = from the data) / ``SCOUT_PRIVACY_SPEND_MAX`` (0 =
  from the data): per customer-week and group, transactions counted and spend clamp; declared
  values spend no ε on choosing them. ``SCOUT_PRIVACY_MAX_PARTITIONS`` (1): groups a unit
  may contribute to.
- ``SCOUT_PRIVACY_BOUNDS_SHARE`` (0.1) of ε for choosing bounds, ``SCOUT_PRIVACY_COUNT_SHARE``
  (0.45) of the rest for the counts; ``SCOUT_PRIVACY_BOUND_QUANTILE`` (0.9) and
  ``SCOUT_PRIVACY_BOUND_HEADROOM`` (2.5): bound = headroom * DP quantile.
- ``SCOUT_PRIVACY_MAX_RELATIVE_ERROR`` (0.5): groups whose count's error at
  ``SCOUT_PRIVACY_CONFIDENCE`` (0.95) exceeds this share of the noisy count are suppressed.
- ``SCOUT_PLATINUM_TICK_S`` (30): how often the worker checks which jobs are due.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatinumSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCOUT_", env_file=".env", extra="ignore", frozen=True
    )

    privacy_epsilon_budget: float = Field(default=30.0, gt=0)
    privacy_budget_window_weeks: int = Field(default=52, ge=0)
    privacy_epsilon_per_release: float = Field(default=0.5, gt=0)
    privacy_max_partitions: int = Field(default=1, ge=1)
    privacy_max_contributions: int = Field(default=0, ge=0)
    privacy_spend_max: float = Field(default=0.0, ge=0)
    privacy_bounds_share: float = Field(default=0.1, gt=0, lt=1)
    privacy_count_share: float = Field(default=0.45, gt=0, lt=1)
    privacy_bound_quantile: float = Field(default=0.9, gt=0, lt=1)
    privacy_bound_headroom: float = Field(default=2.5, ge=1)
    privacy_max_relative_error: float = Field(default=0.5, gt=0)
    privacy_confidence: float = Field(default=0.95, gt=0, lt=1)
    privacy_lookback_weeks: int = Field(default=8, ge=1)
    platinum_tick_s: float = Field(default=30.0, gt=0)
    platinum_ml_lookback_days: int = Field(default=400, ge=1)
    platinum_retries: int = Field(default=3, ge=1)


def load_platinum_settings(**overrides: object) -> PlatinumSettings:
    return PlatinumSettings(**overrides)  # type: ignore[arg-type]
