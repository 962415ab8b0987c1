"""Platinum settings: the privacy budget, the job windows and the scheduler tick.

They are ``SCOUT_*`` environment variables like the pipeline's own settings, read by a small
settings class of this package (built once in ``main()`` / ``build_app`` and passed down):

- ``SCOUT_PRIVACY_EPSILON_BUDGET`` (default 30): total ε the privacy ledger may ever spend on
  the anonymised analytics; a release that would pass it is refused.
- ``SCOUT_PRIVACY_EPSILON_PER_RELEASE`` (default 0.5): ε of one weekly release (half for the
  thresholded counts, half for the sums); ``SCOUT_PRIVACY_DELTA`` (default 1e-6) the δ of the
  threshold.
- ``SCOUT_PRIVACY_MAX_PARTITIONS`` (1) / ``SCOUT_PRIVACY_MAX_CONTRIBUTIONS`` (5) /
  ``SCOUT_PRIVACY_AMOUNT_MAX`` (2000): per customer and week, at most this many (region, city)
  groups, this many transactions per group, each amount clamped to [0, max].
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
    privacy_epsilon_per_release: float = Field(default=0.5, gt=0)
    privacy_delta: float = Field(default=1e-6, gt=0, lt=1)
    privacy_max_partitions: int = Field(default=1, ge=1)
    privacy_max_contributions: int = Field(default=5, ge=1)
    privacy_amount_max: float = Field(default=2000.0, gt=0)
    privacy_lookback_weeks: int = Field(default=8, ge=1)
    platinum_tick_s: float = Field(default=30.0, gt=0)
    platinum_ml_lookback_days: int = Field(default=400, ge=1)
    platinum_retries: int = Field(default=3, ge=1)


def load_platinum_settings(**overrides: object) -> PlatinumSettings:
    return PlatinumSettings(**overrides)  # type: ignore[arg-type]
