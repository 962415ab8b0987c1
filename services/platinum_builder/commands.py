"""``scout platinum run [JOB] [--now] [--period DAY]`` and ``scout privacy report``.

``platinum run`` runs one job (or all, in declaration order) through the same scheduler code
as the worker (run history, retries, one transaction per job), printing progress and rows
written. ``privacy report`` prints the privacy ledger: per release, ε and δ spent, the bounds
and how they were chosen, groups released and suppressed, the expected error, and the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

from services.common.db import create_pool
from services.common.settings import Settings
from services.platinum_builder import jobs, scheduler, sql
from services.platinum_builder.config import PlatinumSettings, load_platinum_settings


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

    privacy = subparsers.add_parser(
        "privacy", help="the differential-privacy ledger of the anonymised analytics",
        description="What each DP release spent and how accurate it is.",
    )  # fmt: skip
    psub = privacy.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    report = psub.add_parser("report", help="ε, δ, bounds, groups and expected error per release")
    report.add_argument("--last", type=int, default=20, help="newest N releases (default 20)")
    report.add_argument("--json", action="store_true", help="one JSON object per release")
    report.set_defaults(func=_report)


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


def report_lines(rows: list[dict[str, object]], spent: float, cfg: PlatinumSettings) -> list[str]:
    """The report's text: a line per release, then the budget (pure, for tests)."""
    lines = [f"{'week':<11} {'ε':>5} {'δ':>4} {'ε bnd/cnt/sum':>17} {'c':>3} {'spend max':>9} "
             f"{'bounds':<8} {'groups rel/sup':>14} {'count ±':>8} {'avg ±':>7} "
             f"{'conf':>5}"]  # fmt: skip
    for r in rows:
        p: dict[str, Any] = r["parameters"]  # type: ignore[assignment]
        split = "/".join(f"{p.get(k, 0):.3g}" for k in ("epsilon_bounds", "epsilon_count",
                                                         "epsilon_sum"))  # fmt: skip
        source = "dp" if "dp_quantile" in (p.get("max_contributions_source"),
                                            p.get("spend_max_source")) else "declared"  # fmt: skip
        lines.append(
            f"{r['period']!s:<11} {r['epsilon']:>5.3g} {r['delta']:>4.2g} {split:>17} "
            f"{p.get('max_contributions', '?'):>3} {p.get('spend_max', 0):>9,.0f} {source:<8} "
            f"{p.get('groups_released', '?'):>6}/{p.get('groups_suppressed', '?'):<7} "
            f"{p.get('count_error', float('nan')):>8.1f} "
            f"{p.get('avg_error_median') or float('nan'):>7.1f} {p.get('confidence', 0):>5.0%}"
        )  # fmt: skip
    window = cfg.privacy_budget_window_weeks
    span = f"the last {window} weeks" if window else "all time"
    lines.append(f"budget: ε={spent:g} spent of {cfg.privacy_epsilon_budget:g} over {span} "
                 f"({jobs.privacy_params(cfg).epsilon:g} per weekly release; "
                 "basic sequential composition)")  # fmt: skip
    return lines


def _report(args: argparse.Namespace, settings: Settings) -> int:
    cfg = load_platinum_settings()

    async def run() -> int:
        pool = await create_pool(settings, "platinum")
        try:
            async with pool.acquire() as conn:
                rows = [dict(r) for r in await conn.fetch(sql.LEDGER_REPORT, jobs.RELEASE,
                                                          args.last)]  # fmt: skip
                spent = await jobs.epsilon_spent(conn, cfg)
        finally:
            await pool.close()
        for r in rows:
            r["parameters"] = json.loads(str(r["parameters"]))
        if args.json:
            for r in rows:
                print(json.dumps({**r, "released_at": r["released_at"].isoformat()}))
        else:
            print("\n".join(report_lines(rows, spent, cfg)))
        return 0

    return asyncio.run(run())
