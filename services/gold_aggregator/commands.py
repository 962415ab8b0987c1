"""``scout gold rebuild``, ``verify``, ``dead-letters`` and ``retry``."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, timedelta
from typing import Any

from services.common.db import create_pool
from services.common.progress import Progress
from services.common.settings import Settings
from services.gold_aggregator import dead_letters, repo
from services.gold_aggregator.periods import DAY, PERIODS

CHUNK = 2000


def register(subparsers: Any) -> None:
    gold = subparsers.add_parser(
        "gold", help="rebuild or verify the gold aggregates",
        description="Gold aggregates are kept incrementally by `scout run gold`; these "
        "commands recompute them from silver, or check them against a recomputation.",
    )  # fmt: skip
    sub = gold.add_subparsers(dest="gold_command", metavar="ACTION", required=True)
    rebuild = sub.add_parser("rebuild", help="recompute gold from silver")
    rebuild.add_argument("--from", dest="from_date", type=date.fromisoformat,
                         default=date(1970, 1, 1), help="first local day (YYYY-MM-DD)")  # fmt: skip
    rebuild.set_defaults(func=_rebuild)
    verify = sub.add_parser(
        "verify", help="compare gold with a from-scratch recomputation (exit 1 on mismatch, "
        "2 when the rest is exact but groups are dead-lettered)",
    )  # fmt: skip
    verify.add_argument("--days", type=int, default=35, help="how many recent days (default 35)")
    verify.add_argument("--from", dest="from_date", type=date.fromisoformat, default=None,
                        help="first local day instead of --days")  # fmt: skip
    verify.set_defaults(func=_verify)
    listed = sub.add_parser(
        "dead-letters", help="list the groups gold set aside because their changes could "
        "not be written (exit 2 if there are any)",
    )  # fmt: skip
    listed.set_defaults(func=_dead_letters)
    again = sub.add_parser(
        "retry", help="after fixing the cause, make every dead-lettered group due: the running "
        "gold workers re-apply their held changes within seconds",
    )  # fmt: skip
    again.set_defaults(func=_retry)


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pool = await create_pool(settings, "gold")
        started = time.monotonic()
        try:
            quiet = settings.log_format == "json"
            for period in PERIODS:
                async with pool.acquire() as conn:
                    groups = await repo.all_store_periods(conn, period, args.from_date)
                    starts = await repo.all_periods(conn, period, args.from_date)
                print(f"rebuilding {len(groups):,} store-{period}s and {len(starts):,} {period}s",
                      flush=True)  # fmt: skip
                meter = Progress(len(groups), f"store-{period}s", quiet=quiet)
                for i in range(0, len(groups), CHUNK):
                    async with pool.acquire() as conn, conn.transaction():
                        await repo.refresh_store_periods(conn, period, groups[i : i + CHUNK])
                    if meter.active:
                        meter.advance(len(groups[i : i + CHUNK]))
                        continue
                    print(f"  store-{period}s {min(i + CHUNK, len(groups)):,}/{len(groups):,}",
                          flush=True)  # fmt: skip
                meter.finish()
                if period != DAY:
                    continue  # the day-wide tables' weeks and months sum their days
                for i in range(0, len(starts), 31):
                    # Its own transaction: it locks the capture table before anything else.
                    async with pool.acquire() as conn, conn.transaction():
                        await repo.refresh_days(conn, starts[i : i + 31])
            print(f"gold rebuilt in {time.monotonic() - started:.1f}s")
            return 0
        finally:
            await pool.close()

    return asyncio.run(run())


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pool = await create_pool(settings, "gold")
        since = args.from_date or date.today() - timedelta(days=args.days)
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                result = await repo.mismatches(conn, since)
                dead = await dead_letters.listed(conn)
        finally:
            await pool.close()
        for table, n in result.items():
            print(f"{table:<40} {n:>6} mismatches")
        total = sum(result.values())
        print(f"gold since {since}: {'OK, equals silver' if total == 0 else f'{total} mismatches'}"
              + (f" (except {len(dead)} dead-lettered group(s))" if dead else ""))  # fmt: skip
        # A dead-lettered group's changes are held back: it is not compared, but named.
        _print_dead_letters(dead)
        return 1 if total else 2 if dead else 0

    return asyncio.run(run())


def _print_dead_letters(dead: list[dead_letters.DeadLetter]) -> None:
    for d in dead:
        print(f"dead letter: store {d.store_id} day {d.date_key}: {d.reason}"
              f" ({d.table_name or 'no table named'}), {d.attempts} attempt(s),"
              f" first {d.first_seen_at:%Y-%m-%d %H:%M:%S}, next retry"
              f" {d.retry_after:%Y-%m-%d %H:%M:%S}: {d.detail}")  # fmt: skip


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pool = await create_pool(settings, "gold")
        try:
            async with pool.acquire() as conn:
                dead = await dead_letters.listed(conn)
        finally:
            await pool.close()
        _print_dead_letters(dead)
        print(f"{len(dead)} dead-lettered gold group(s)")
        return 2 if dead else 0

    return asyncio.run(run())


def _retry(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pool = await create_pool(settings, "gold")
        try:
            async with pool.acquire() as conn:
                n = await dead_letters.retry_all(conn)
        finally:
            await pool.close()
        print(f"{n} dead-lettered gold group(s) due now; gold retries them within seconds")
        return 0

    return asyncio.run(run())
