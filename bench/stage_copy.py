"""CPU of filling silver's two stages with one part's rows, client and PostgreSQL backend.

The rows are the simulator's POS records refined by the tree it runs in (so two trees
compare: run it in each in turn), one part of ``--records`` transactions COPYed into the
temporary stages exactly as ``repo.write`` does, ``--repeat`` times per round; the least CPU
of ``--rounds`` rounds, per transaction. Not a test; needs the dev stack's PostgreSQL
(``SCOUT_DATABASE_URL``). Nothing is written outside the session's temporary tables.

    cd <tree> && PYTHONPATH=. .venv/bin/python -m bench.stage_copy [--records 2500]

(``python -m`` puts the working directory first on the path: run it from the tree measured.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.common import generator, masters, process_cpu
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.handoff import decode_landed, encode_landed
from services.silver_enricher import repo
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.pii import DEV_KEY
from services.silver_enricher.transform import Refiner, SilverTransaction


def refined_part(n: int) -> list[SilverTransaction]:
    gen = generator(7, 5000.0, 0.0)
    stores, products = masters(gen)
    now = datetime.now(UTC)
    landing = Landing()
    for i, record in enumerate(gen.live(2 * n)):
        kafka = KafkaCoordinates(record.topic, 0, i, now)
        landing.extend(land(record.value, record.topic, kafka, 1_000_000, None))
    messages = encode_landed(row.landed() for row in landing.rows)
    decoded = [d for m in messages for d in decode_landed(m)]
    ctx = Context(now, timedelta(seconds=300), stores, products)
    refined = Refiner(DEV_KEY, DEFAULT_EXPECTATIONS).refine(decoded, stores, products, ctx)
    return sorted(refined.transactions.values(), key=lambda t: t.transaction_id)[:n]


async def measure(txs: list[SilverTransaction], repeat: int, rounds: int) -> tuple[float, float]:
    tx_rows = [t.row for t in txs]
    item_rows = [i for t in txs for i in t.items]
    conn = await asyncpg.connect(os.environ["SCOUT_DATABASE_URL"])
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        best_client = best_backend = float("inf")
        for _ in range(rounds):
            client = backend = 0.0
            for _ in range(repeat):
                async with conn.transaction():  # the stages empty at commit, as in silver
                    await conn.execute(repo.CREATE_STAGES)
                    c0, b0 = time.process_time(), process_cpu(pid)
                    await conn.copy_records_to_table(
                        repo.TX_STAGE, records=tx_rows, columns=repo.TX_COLUMNS
                    )
                    await conn.copy_records_to_table(
                        repo.ITEM_STAGE, records=item_rows, columns=repo.ITEM_COLUMNS
                    )
                    client += time.process_time() - c0
                    backend += process_cpu(pid) - b0
            best_client, best_backend = min(best_client, client), min(best_backend, backend)
        n = repeat * len(txs)
        return best_client / n * 1e6, best_backend / n * 1e6
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=2500, help="transactions in the part")
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    txs = refined_part(args.records)
    items = sum(len(t.items) for t in txs)
    client, backend = asyncio.run(measure(txs, args.repeat, args.rounds))
    print(f"{len(txs):,} transactions, {items:,} line items: COPY into the stages "
          f"{client:.1f} µs client CPU, {backend:.1f} µs backend CPU per transaction "
          f"(least of {args.rounds} rounds of {args.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
