"""Platinum Faust worker: a scheduler timer runs the due jobs (see ``jobs.JOBS``) in turn.

The worker consumes no topic; every ``SCOUT_PLATINUM_TICK_S`` seconds (and once at start)
it asks the run history which jobs are due and runs them one after the other (2 cores: the
jobs are CPU-heavy Python, running them in parallel would only slow the other services).
Another timer exports the data quality dashboard as the ``scout_quality_*`` gauges.
Readiness is "PostgreSQL answers", since there are no partitions to be assigned.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust

from services.common.kafka import make_app
from services.common.service import ServiceContext
from services.common.settings import Settings
from services.platinum_builder import scheduler
from services.platinum_builder.config import PlatinumSettings, load_platinum_settings
from services.platinum_builder.quality import read as read_quality

log = logging.getLogger(__name__)
LAYER = "platinum"
QUALITY_EVERY_S = 15.0


class PlatinumContext(ServiceContext):
    async def readiness(self) -> dict[str, bool]:
        try:
            pool = await asyncio.wait_for(self.pool(), timeout=2)
            ok = bool(await asyncio.wait_for(pool.fetchval("SELECT true"), timeout=2))
        except (TimeoutError, OSError, asyncpg.PostgresError):
            ok = False
        return {"postgres": ok}


async def run_due(ctx: ServiceContext, cfg: PlatinumSettings) -> list[scheduler.RunResult]:
    pool = await ctx.pool()
    results = []
    await scheduler.export_privacy(pool, cfg)
    for job in await scheduler.due_jobs(pool):
        period = job.period(datetime.now(UTC))
        result = await scheduler.run_job(pool, job, period, cfg)
        log.info("platinum job %s for %s: %s, %d rows in %.1fs", job.name, period,
                 result.status, result.rows, result.seconds)  # fmt: skip
        results.append(result)
    ctx.db_ok()
    return results


def build_app(settings: Settings, cfg: PlatinumSettings | None = None) -> faust.App:
    cfg = cfg or load_platinum_settings()
    app = make_app(settings, LAYER)
    ctx = PlatinumContext(settings, LAYER, app)
    lock = asyncio.Lock()

    async def tick() -> None:
        if lock.locked():
            return
        async with lock:
            try:
                await run_due(ctx, cfg)
            except Exception as exc:  # the database is away: try again next tick
                ctx.db_failed(exc)
                log.exception("platinum scheduler round failed")

    @app.task()
    async def on_start() -> None:
        await tick()

    @app.timer(interval=cfg.platinum_tick_s, name="platinum-scheduler")
    async def scheduled() -> None:
        await tick()

    @app.timer(interval=QUALITY_EVERY_S, name="platinum-quality")
    async def quality() -> None:
        # The dashboard is a live view; exporting it here puts the scores on /metrics.
        try:
            await read_quality(await ctx.pool())
        except (OSError, asyncpg.PostgresError) as exc:
            ctx.db_failed(exc)

    @app.page("/platinum/jobs")
    async def job_status(web: Any, request: Any) -> Any:
        pool = await ctx.pool()
        rows = await pool.fetch(
            "SELECT DISTINCT ON (job) job, period, status, rows, started_at, finished_at, error "
            "FROM scout.platinum_job_runs ORDER BY job, started_at DESC"
        )
        return web.json({r["job"]: {k: str(v) for k, v in dict(r).items()} for r in rows})

    return app
