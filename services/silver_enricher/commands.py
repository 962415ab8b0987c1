"""``scout replay`` and ``scout quarantine replay``: run bronze rows through silver again.

Both use the streaming pipeline's own code and merges, so they may run while the services
stream: merges are idempotent and "newest version wins", and gold takes what changed from
the same capture triggers as the streaming merges.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.common.db import create_pool
from services.common.handoff import DecodedRecord
from services.common.progress import Progress
from services.common.settings import Settings
from services.silver_enricher import repo
from services.silver_enricher.app import pii_key
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS
from services.silver_enricher.pipeline import SilverPipeline, decoded
from services.silver_enricher.transform import Refiner

CHUNK = 5000
SOURCES = ("pos", "api", "iot")


def register(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="rebuild silver (and so gold) from bronze",
        description=(
            "Run bronze rows through the silver pipeline again, in bronze order, with the "
            "same merges as streaming (idempotent, newest version wins); gold takes the "
            "changes silver's triggers capture. Safe while the services run."
        ),
    )
    replay.add_argument(
        "--from",
        dest="from_date",
        type=date.fromisoformat,
        default=None,
        help="only bronze records with a Kafka time from this day (YYYY-MM-DD)",
    )
    replay.add_argument(
        "--source",
        choices=SOURCES,
        action="append",
        default=None,
        help="only this source (repeatable; default all)",
    )
    replay.set_defaults(func=_replay)

    quarantine = subparsers.add_parser(
        "quarantine", help="inspect and re-process quarantined records",
        description="Records silver rejected, with the rule they broke.",
    )  # fmt: skip
    sub = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    again = sub.add_parser(
        "replay", help="re-process open quarantined records (e.g. after a master-data fix)"
    )
    again.add_argument("--rule", default=None, help="only records quarantined under this rule")
    again.set_defaults(func=_quarantine_replay)
    listing = sub.add_parser("list", help="open quarantined records per rule")
    listing.set_defaults(func=_quarantine_list)


async def _pipeline(settings: Settings) -> tuple[SilverPipeline, asyncpg.Pool]:
    """The pipeline over a pool; gold takes what it merges from the captured changes."""
    pool = await create_pool(settings, "silver")

    async def get_pool() -> asyncpg.Pool:
        return pool

    pipeline = SilverPipeline(get_pool, Refiner(pii_key(settings), DEFAULT_EXPECTATIONS),
                              allowed_skew_s=settings.allowed_clock_skew_s)  # fmt: skip
    return pipeline, pool


async def _run_rows(pipeline: SilverPipeline, pool: asyncpg.Pool, query: str,
                    *args: Any, meter: Progress | None = None) -> tuple[int, int]:  # fmt: skip
    """Stream the query's rows through the pipeline in chunks; prints progress (a line with
    an ETA on a terminal when ``meter`` is given, a line per chunk otherwise)."""
    total = changed = 0
    started = time.monotonic()
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(CHUNK):
            result = await pipeline.process([_decoded(r) for r in rows], recheck_master=False)
            total += len(rows)
            changed += result.changed_transactions
            if meter is not None and meter.active:
                meter.advance(len(rows))
                continue
            rate = total / max(time.monotonic() - started, 1e-9)
            print(f"  {total:,} records, {changed:,} silver rows changed ({rate:,.0f}/s)",
                  flush=True)  # fmt: skip
    if meter is not None:
        meter.finish()
    return total, changed


def _decoded(row: asyncpg.Record) -> DecodedRecord:
    return decoded(repo.bronze_record(row))


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pipeline, pool = await _pipeline(settings)
        try:
            since = datetime.combine(args.from_date or date(1970, 1, 1), datetime.min.time(), UTC)
            sources = args.source or list(SOURCES)
            print(f"replaying bronze since {since.date()} for {', '.join(sources)}", flush=True)
            meter = Progress(None, "replay", quiet=settings.log_format == "json")
            if meter.active:  # the ETA needs the total: one count, only for a terminal
                async with pool.acquire() as conn:
                    meter.total = await conn.fetchval(
                        f"SELECT count(*) FROM ({repo.REPLAY_BRONZE}) q", since, sources
                    )
            total, changed = await _run_rows(pipeline, pool, repo.REPLAY_BRONZE, since, sources,
                                             meter=meter)  # fmt: skip
            print(f"replayed {total:,} bronze records; {changed:,} silver rows changed")
            return 0
        finally:
            await pool.close()

    return asyncio.run(run())


def _quarantine_replay(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pipeline, pool = await _pipeline(settings)
        try:
            before = await pool.fetchval(
                "SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL"
            )
            total, _ = await _run_rows(pipeline, pool, repo.OPEN_QUARANTINE, args.rule, None)
            after = await pool.fetchval(
                "SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL"
            )
            print(f"re-processed {total:,} quarantined records: {before - after:,} resolved, "
                  f"{after:,} still open")  # fmt: skip
            return 0
        finally:
            await pool.close()

    return asyncio.run(run())


def _quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        pool = await create_pool(settings, "silver")
        try:
            rows = await pool.fetch(
                "SELECT rule, count(*) FILTER (WHERE resolved_at IS NULL) AS open, "
                "count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved "
                "FROM scout.silver_quarantine GROUP BY rule ORDER BY open DESC, rule"
            )
        finally:
            await pool.close()
        print(f"{'rule':<24} {'open':>8} {'resolved':>9}")
        for r in rows:
            print(f"{r['rule']:<24} {r['open']:>8,} {r['resolved']:>9,}")
        return 0

    return asyncio.run(run())
