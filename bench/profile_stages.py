"""CPU of each stage's pure Python work per record, in one process (not a test).

The simulator's traffic (no faults by default) runs through bronze's ``land`` + the
hand-off encoding, then silver's ``decode_landed`` + ``refine``, with no Kafka and no
PostgreSQL: what each record costs the two services before any I/O. ``--profile bronze``
or ``--profile silver`` prints cProfile's top entries for that stage.

    .venv/bin/python -m bench.profile_stages [--records 20000] [--faults 0] [--profile silver]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import generator
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.events import ProductRecord, StoreRecord, parse_master
from services.common.handoff import decode_landed, encode_landed
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.pii import DEV_KEY
from services.silver_enricher.transform import Refined, Refiner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--faults", type=float, default=0.0)
    ap.add_argument("--profile", choices=("bronze", "silver"))
    args = ap.parse_args()
    gen = generator(7, 5000.0, args.faults)
    stores: dict[str, StoreRecord] = {}
    products: dict[str, ProductRecord] = {}
    for rec in gen.masters():
        parsed = parse_master(rec.value)
        if isinstance(parsed, StoreRecord):
            stores[parsed.store_id] = parsed
        elif isinstance(parsed, ProductRecord):
            products[parsed.sku] = parsed
    records = gen.live(args.records)
    now = datetime.now(UTC)
    refiner = Refiner(DEV_KEY, DEFAULT_EXPECTATIONS)

    def bronze() -> tuple[Landing, list[bytes]]:
        landing = Landing()
        for i, record in enumerate(records):
            kafka = KafkaCoordinates(record.topic, 0, i, now)
            landing.extend(land(record.value, record.topic, kafka, 1_000_000, None))
        for row in landing.rows:
            row.as_copy_record()
        return landing, list(encode_landed(row.landed() for row in landing.rows))

    landing, messages = bronze()

    def silver() -> Refined:
        decoded = [d for m in messages for d in decode_landed(m)]
        ctx = Context(datetime.now(UTC), timedelta(seconds=300), stores, products)
        return refiner.refine(decoded, stores, products, ctx)

    refined = silver()
    rows = len(landing.rows)
    print(f"{args.records:,} source records → {rows:,} bronze rows → "
          f"{len(refined.transactions):,} transactions, {len(refined.readings):,} readings, "
          f"{len(refined.quarantine):,} quarantined")  # fmt: skip
    for name, stage, n, unit in (("bronze", bronze, args.records, "source record"),
                                 ("silver", silver, rows, "bronze row")):  # fmt: skip
        print(f"{name}: {_cpu(stage) / n * 1e6:.1f} µs CPU per {unit}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        (bronze if args.profile == "bronze" else silver)()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def _cpu(stage: Callable[[], Any], rounds: int = 3) -> float:
    """Median process CPU seconds of ``stage`` over ``rounds``."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        stage()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    main()
