"""PostgreSQL's CPU for silver's two merges, and what its indexes and capture triggers cost.

The rows are the simulator's POS records refined by this tree (``stage_copy.refined_part``),
in parts of ``--part`` transactions, each part COPYed into the stages and merged exactly as
``repo.write`` does it (``MERGE_TRANSACTIONS``, then ``INSERT_ITEMS``), one transaction per
part. Each variant runs in a fresh migrated database (``bench.bronze.scenario``), with one thing
taken away:

- ``deployed``: the schema as migrated;
- ``no optional silver indexes``: without ``silver_tx_day_idx`` and ``silver_tx_amount_idx``
  (readers' indexes: neither silver nor gold needs them to write);
- ``no capture indexes``: without the two indexes of ``gold_silver_changes``;
- ``no capture triggers``: without the insert triggers that write gold's changes.

The figure is the backend's CPU (/proc, same machine) per transaction of one statement,
over the parts after the first ``--warm`` of each; variants interleaved, ``--rounds``
rounds, medians of the rounds. Not a test; needs the dev stack (``SCOUT_DATABASE_URL``, a
role that may create databases; the scenario's topics are made and deleted, unused); its
databases are dropped.

    PYTHONPATH=. .venv/bin/python -m bench.silver_merge [--part 2500 --parts 10 --rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import asyncpg

from bench.bronze import scenario
from bench.common import process_cpu
from bench.stage_copy import refined_part
from services.common.settings import load_settings
from services.silver_enricher import repo
from services.silver_enricher.transform import SilverTransaction

VARIANTS = {
    "deployed": "",
    "no optional silver indexes": (
        "DROP INDEX scout.silver_tx_day_idx; DROP INDEX scout.silver_tx_amount_idx"
    ),
    "no capture indexes": (
        "DROP INDEX scout.gold_silver_changes_group_idx;"
        "DROP INDEX scout.gold_silver_changes_shard_idx"
    ),
    "no capture triggers": (
        "ALTER TABLE scout.silver_transactions_cleaned DISABLE TRIGGER gold_capture_insert;"
        "ALTER TABLE scout.silver_transaction_items DISABLE TRIGGER gold_capture_insert"
    ),
}


async def run_variant(
    change: str, parts: list[list[SilverTransaction]], warm: int, state_dir: Path
) -> tuple[float, float]:
    """(merge, items) backend CPU µs per transaction over the parts after the first
    ``warm`` (summed: /proc counts in clock ticks, too coarse for one part)."""
    async with scenario(load_settings(), "merge", state_dir) as s:
        conn = await asyncpg.connect(s.url)
        try:
            if change:
                await conn.execute(change)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            merge = items = 0.0
            for n, txs in enumerate(parts):
                async with conn.transaction():
                    await conn.execute(repo.CREATE_STAGES)
                    await conn.copy_records_to_table(
                        repo.TX_STAGE, records=[t.row for t in txs], columns=repo.TX_COLUMNS
                    )
                    await conn.copy_records_to_table(
                        repo.ITEM_STAGE,
                        records=[i for t in txs for i in t.items],
                        columns=repo.ITEM_COLUMNS,
                    )
                    before = process_cpu(pid)
                    merged = await conn.fetch(repo.MERGE_TRANSACTIONS)
                    between = process_cpu(pid)
                    await conn.execute(repo.INSERT_ITEMS, [r["transaction_id"] for r in merged])
                    after = process_cpu(pid)
                if n >= warm:
                    merge += between - before
                    items += after - between
        finally:
            await conn.close()
    counted = sum(len(txs) for txs in parts[warm:])
    return merge / counted * 1e6, items / counted * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", type=int, default=2500, help="transactions per part")
    parser.add_argument("--parts", type=int, default=10, help="parts per variant and round")
    parser.add_argument("--warm", type=int, default=2, help="first parts not counted")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"refining {args.part * args.parts:,} transactions …", flush=True)
    txs = refined_part(args.part * args.parts)
    parts = [txs[i * args.part : (i + 1) * args.part] for i in range(args.parts)]
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for round_no in range(1, args.rounds + 1):
        for variant, change in VARIANTS.items():
            with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
                merge, items = await run_variant(change, parts, args.warm, Path(tmp))
            results[variant].append((merge, items))
            print(f"round {round_no}: {variant}: merge {merge:.1f}, items {items:.1f} "
                  "µs per transaction", flush=True)  # fmt: skip
    lines = sum(len(t.items) for t in txs) / len(txs)
    print(f"\n{args.part:,} transactions per part ({lines:.2f} lines each), {args.parts} "
          f"parts ({args.warm} not counted), {args.rounds} rounds, medians\n")  # fmt: skip
    print("| variant | merge µs/tx | items insert µs/tx | both | both / deployed |")
    print("|---|---|---|---|---|")
    base = statistics.median(m + i for m, i in results["deployed"])
    for variant, rows in results.items():
        merge = statistics.median(m for m, _ in rows)
        items = statistics.median(i for _, i in rows)
        both = statistics.median(m + i for m, i in rows)
        print(f"| {variant} | {merge:.1f} | {items:.1f} | {both:.1f} | {both / base:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
