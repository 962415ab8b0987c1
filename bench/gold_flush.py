"""What one gold flush costs per transaction, by how many transactions it takes.

At a paced rate gold flushes every few tenths of a second and each flush takes a few
hundred to a few thousand transactions; in a catch-up a flush takes tens of thousands of
changes. A flush writes rows per (store, period) group and per (period, key, shard) partial
sum, not per change, so its cost per transaction depends on how many of its changes share a
row. This measures it on a real PostgreSQL: the simulator's POS transactions refined by this
tree (``stage_copy.refined_part``) are merged into silver in parts of ``--sizes`` transactions
exactly as ``repo.write`` does (the capture triggers write gold's changes), and after each
part one flush transaction takes them as the worker's does (``claim_changes``, the
business groups of every period, the day-wide partial sums; REPEATABLE READ). Each size
runs in a fresh migrated database (``bench.bronze.scenario``); the first ``--warm`` flushes
(which load every group from silver) are not counted. Reported per transaction: gold's
client CPU, its backend's CPU (/proc, same machine), the gold rows the flush wrote; sizes
interleaved, ``--rounds`` rounds, medians of the rounds. Not a test; needs the dev stack
(``SCOUT_DATABASE_URL``, a role that may create databases); its databases are dropped.

    PYTHONPATH=. .venv/bin/python -m bench.gold_flush [--sizes 1400,10000 --flushes 6 --rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.bronze import scenario
from bench.common import process_cpu
from bench.stage_copy import refined_part
from services.common.settings import load_settings
from services.gold_aggregator.app import CLAIM_DAYS
from services.gold_aggregator.day_tables import DayTables
from services.gold_aggregator.incremental import BusinessMetrics, claim_changes
from services.silver_enricher import repo
from services.silver_enricher.transform import SilverTransaction


@dataclass(frozen=True)
class Cost:
    client_us: float  # gold's Python, per transaction
    backend_us: float  # the PostgreSQL backend serving gold, per transaction
    business_rows: float  # (store, period) rows written, per transaction
    partial_rows: float  # day-wide partial sums written, per transaction
    wall_ms: float  # one flush, median


async def merge_part(conn: asyncpg.Connection, txs: list[SilverTransaction]) -> None:
    """Silver's merge of one part (``repo.write``'s statements for transactions)."""
    async with conn.transaction():
        await conn.execute(repo.CREATE_STAGES)
        await conn.copy_records_to_table(
            repo.TX_STAGE, records=[t.row for t in txs], columns=repo.TX_COLUMNS
        )
        await conn.copy_records_to_table(
            repo.ITEM_STAGE, records=[i for t in txs for i in t.items], columns=repo.ITEM_COLUMNS
        )
        merged = await conn.fetch(repo.MERGE_TRANSACTIONS)
        await conn.execute(repo.INSERT_ITEMS, [r["transaction_id"] for r in merged])


async def run_size(
    size: int, txs: list[SilverTransaction], flushes: int, warm: int, state_dir: Path
) -> Cost:
    client = backend = 0.0
    business = partial = 0
    walls: list[float] = []
    async with scenario(load_settings(), "goldflush", state_dir) as s:
        silver = await asyncpg.connect(s.url)
        gold = await asyncpg.connect(s.url)
        try:
            pid = await gold.fetchval("SELECT pg_backend_pid()")
            metrics, days = BusinessMetrics(), DayTables()
            for n in range(flushes):
                await merge_part(silver, txs[n * size : (n + 1) * size])
                c0, b0, w0 = time.process_time(), process_cpu(pid), time.perf_counter()
                async with gold.transaction(isolation="repeatable_read"):
                    claimed = await claim_changes(gold, CLAIM_DAYS)
                    flushed = await metrics.apply(gold, claimed)
                    day_rows = await days.apply(gold, claimed)
                wall = time.perf_counter() - w0
                if n >= warm:
                    client += time.process_time() - c0
                    backend += process_cpu(pid) - b0
                    business += flushed.written + flushed.rollup_written
                    partial += day_rows
                    walls.append(wall)
        finally:
            await silver.close()
            await gold.close()
    counted = size * (flushes - warm)
    return Cost(client / counted * 1e6, backend / counted * 1e6, business / counted,
                partial / counted, statistics.median(walls) * 1e3)  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1400,10000", help="transactions per flush")
    parser.add_argument("--flushes", type=int, default=6, help="flushes per size and round")
    parser.add_argument("--warm", type=int, default=1, help="first flushes not counted")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    total = max(sizes) * args.flushes
    print(f"refining {total:,} transactions …", flush=True)
    txs = refined_part(total)
    if len(txs) < total:
        raise SystemExit(f"the simulator gave {len(txs):,} transactions, not {total:,}")
    # The refined transactions live through the run: out of the collector's way, so a
    # flush's garbage collections cost what they cost in the worker, not a scan of these.
    gc.collect()
    gc.freeze()
    results: dict[int, list[Cost]] = {size: [] for size in sizes}
    for round_no in range(1, args.rounds + 1):
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
                cost = await run_size(size, txs, args.flushes, args.warm, Path(tmp))
            results[size].append(cost)
            print(f"round {round_no}: {size:,} per flush: gold {cost.client_us:.1f}, "
                  f"pg<-gold {cost.backend_us:.1f} µs per transaction, "
                  f"flush {cost.wall_ms:.0f} ms", flush=True)  # fmt: skip
    print(f"\n{args.flushes} flushes per size ({args.warm} not counted), {args.rounds} rounds, "
          "medians, per transaction\n")  # fmt: skip
    print("| transactions per flush | gold µs | pg<-gold µs | both | both / largest flush's "
          "| business rows | partial-sum rows | flush ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    largest = statistics.median(c.client_us + c.backend_us for c in results[max(sizes)])
    for size, costs in results.items():
        both = statistics.median(c.client_us + c.backend_us for c in costs)
        print(f"| {size:,} | {statistics.median(c.client_us for c in costs):.1f} "
              f"| {statistics.median(c.backend_us for c in costs):.1f} | {both:.1f} "
              f"| {both / largest:.2f} | {statistics.median(c.business_rows for c in costs):.3f} "
              f"| {statistics.median(c.partial_rows for c in costs):.2f} "
              f"| {statistics.median(c.wall_ms for c in costs):.0f} |")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
