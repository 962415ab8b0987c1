"""``scout platinum run [JOB] [--now] [--period DAY]``: build platinum products at once.

Runs one job (or all, in declaration order) through the same scheduler code as the worker
(run history, retries, one transaction per job), printing progress and rows written.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime
from typing import Any

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler
from services.platinum_builder.config import load_platinum_settings


def register(subparsers: Any) -> None:
    platinum = subparsers.add_parser(
        "platinum", help="platinum data products (ML features, summary, forecasts, DP views)",
        description="Build the platinum products now, outside the worker's schedule.",
    )  # fmt: skip
    sub = platinum.add_subparsers(dest="platinum_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run one job, or all of them, now")
    run.add_argument("job", nargs="?", choices=sorted(jobs.JOBS_BY_NAME), default=None,
                     help="the job (default: all, in order)")  # fmt: skip
    run.add_argument("--now", action="store_true",
                     help="run at once, whatever the schedule")  # fmt: skip
    run.add_argument("--period", type=date.fromisoformat, default=None,
                     help="as-of day YYYY-MM-DD (default: yesterday, UTC)")  # fmt: skip
    run.add_argument("--epsilon-budget", type=float, default=None,
                     help="override SCOUT_PRIVACY_EPSILON_BUDGET for this run")  # fmt: skip
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    overrides: dict[str, object] = {}
    if args.epsilon_budget is not None:
        overrides["privacy_epsilon_budget"] = args.epsilon_budget
    cfg = load_platinum_settings(**overrides)
    selected = [jobs.JOBS_BY_NAME[args.job]] if args.job else list(jobs.JOBS)

    async def run() -> int:
        pool = await create_pool(settings, "platinum")
        failed = 0
        try:
            for job in selected:
                period = args.period or job.period(datetime.now(UTC))
                print(f"{job.name:<22} {period}  running…", flush=True)
                r = await scheduler.run_job(pool, job, period, cfg)
                line = (f"{job.name:<22} {period}  {r.status:<9} {r.rows:>9,} rows "
                        f"{r.seconds:7.2f}s")  # fmt: skip
                print(line + (f"  {r.error}" if r.error else ""), flush=True)
                failed += r.status == "failed"
        finally:
            await pool.close()
        return 1 if failed else 0

    return asyncio.run(run())
