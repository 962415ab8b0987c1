"""Running jobs: one attempt = one transaction, recorded in the run history, retried with
backoff on transient database errors, exported as metrics; and which jobs are due.

A job that fails on its data (a value it cannot compute) is not re-run every tick: after each
failed attempt it waits longer (``FAILED_PAUSE_S`` doubling up to ``FAILED_PAUSE_MAX_S``),
and after ``GIVE_UP_AFTER`` failed attempts since its last success it is left alone and
reported (``scout_platinum_job_gave_up``, alert ``ScoutPlatinumJobGaveUp``) until it succeeds
once (an operator runs ``scout platinum run JOB --now`` after fixing the cause). A run row
left 'running' by a killed worker is marked failed by the next worker that takes the lock.

The run row is written in its own short transactions (so a failed build still leaves its
``failed`` row), the build in another that commits all of its rows or none. A per-job
advisory lock keeps two workers from building the same job at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg

from services.common.lifecycle import backoff_delays, is_transient
from services.common.metrics import (
    FRESHNESS,
    PLATINUM_JOB_DURATION,
    PLATINUM_JOB_GAVE_UP,
    PLATINUM_JOB_LAST_SUCCESS,
    PLATINUM_JOB_RUNS,
    PRIVACY_EPSILON_BUDGET,
    PRIVACY_EPSILON_SPENT,
)
from services.platinum_builder import jobs, sql
from services.platinum_builder.config import PlatinumSettings

log = logging.getLogger(__name__)
FAILED_PAUSE_S = 60.0
FAILED_PAUSE_MAX_S = 3600.0
GIVE_UP_AFTER = 12  # failed attempts since the last success


@dataclass(frozen=True)
class RunResult:
    job: str
    period: date
    status: str  # succeeded, failed, skipped (another worker holds the job)
    rows: int
    seconds: float
    error: str | None = None


async def run_job(pool: asyncpg.Pool, job: jobs.Job, period: date,
                  cfg: PlatinumSettings) -> RunResult:  # fmt: skip
    """Run ``job`` for ``period`` with retries; never raises for a failed build."""
    started = time.perf_counter()
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval(sql.JOB_LOCK, job.name):
            return RunResult(job.name, period, "skipped", 0, 0.0, "running elsewhere")
        reaped = await lock_conn.execute(sql.REAP_ABANDONED, job.name)
        if reaped != "UPDATE 0":
            log.warning("platinum job %s: marked runs of a stopped worker failed (%s)",
                        job.name, reaped)  # fmt: skip
        # Freshness of a platinum product: the age, when it is published, of the newest
        # gold change it could include (gold is small; no index needed).
        newest_input = await lock_conn.fetchval(
            "SELECT max(updated_at) FROM scout.gold_business_metrics"
        )
        try:
            result = await _attempts(pool, job, period, cfg, started)
        finally:
            await lock_conn.fetchval(sql.JOB_UNLOCK, job.name)
    PLATINUM_JOB_RUNS.labels(job.name, result.status).inc()
    PLATINUM_JOB_DURATION.labels(job.name).observe(result.seconds)
    if result.status == "succeeded":
        PLATINUM_JOB_LAST_SUCCESS.labels(job.name).set(time.time())
        if newest_input is not None:
            FRESHNESS.labels("platinum").observe(max(0.0, time.time() - newest_input.timestamp()))
    if job.name == jobs.RELEASE:
        await export_privacy(pool, cfg)
    return result


async def _attempts(pool: asyncpg.Pool, job: jobs.Job, period: date, cfg: PlatinumSettings,
                    started: float) -> RunResult:  # fmt: skip
    delays = backoff_delays(base=1.0, cap=60.0)
    for attempt in range(1, cfg.platinum_retries + 1):
        run_id = await pool.fetchval(sql.RUN_START, job.name, period.isoformat(), attempt)
        try:
            async with pool.acquire() as conn, conn.transaction():
                rows = await job.build(conn, period, cfg)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            await pool.execute(sql.RUN_FINISH, run_id, "failed", None, message[:2000])
            transient = is_transient(exc)
            if not transient or attempt == cfg.platinum_retries:
                log.error("platinum job %s (%s) failed: %s", job.name, period, message)
                return RunResult(job.name, period, "failed", 0,
                                 time.perf_counter() - started, message)  # fmt: skip
            delay = next(delays)
            log.warning("platinum job %s attempt %d failed (%s); retrying in %.1fs",
                        job.name, attempt, message, delay)  # fmt: skip
            await asyncio.sleep(delay)
            continue
        await pool.execute(sql.RUN_FINISH, run_id, "succeeded", rows, None)
        return RunResult(job.name, period, "succeeded", rows, time.perf_counter() - started)
    raise AssertionError("unreachable")  # pragma: no cover


async def export_privacy(pool: asyncpg.Pool, cfg: PlatinumSettings) -> None:
    async with pool.acquire() as conn:
        PRIVACY_EPSILON_SPENT.labels(jobs.RELEASE).set(await jobs.epsilon_spent(conn, cfg))
    PRIVACY_EPSILON_BUDGET.labels(jobs.RELEASE).set(cfg.privacy_epsilon_budget)


async def due_jobs(pool: asyncpg.Pool, now: datetime | None = None) -> list[jobs.Job]:
    """Jobs whose period has no successful run yet, or whose last success is older than the
    cadence (gold keeps changing within a period: late data, corrections); a job that keeps
    failing waits (:func:`pause_after_failures`) and is given up after ``GIVE_UP_AFTER``."""
    now = now or datetime.now(UTC)
    last = {r["job"]: r for r in await pool.fetch(sql.LAST_SUCCESS)}
    failed = {r["job"]: r for r in await pool.fetch(sql.FAILURES_SINCE_SUCCESS)}
    due = []
    for job in jobs.JOBS:
        row = last.get(job.name)
        stale = (row is None or row["period"] != job.period(now).isoformat()
                 or (now - row["started_at"]).total_seconds() >= job.cadence_s)  # fmt: skip
        failures = failed.get(job.name)
        n = int(failures["failures"]) if failures is not None else 0
        PLATINUM_JOB_GAVE_UP.labels(job.name).set(1 if n >= GIVE_UP_AFTER else 0)
        if not stale or n >= GIVE_UP_AFTER:
            continue
        waited = (now - failures["last_failed"]).total_seconds() if failures is not None else 0.0
        if n and waited < pause_after_failures(n):
            continue
        due.append(job)
    return due


def pause_after_failures(failures: int) -> float:
    """Seconds to wait before the next run of a job with ``failures`` failed attempts."""
    return float(min(FAILED_PAUSE_MAX_S, FAILED_PAUSE_S * 2 ** max(0, failures - 1)))
