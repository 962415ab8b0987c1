"""CPU of each stage's pure Python work per record, in one process (not a test).

The simulator's traffic (no faults by default) runs through bronze's ``land`` + the
hand-off encoding, then silver's ``decode_landed`` + ``refine``, with no Kafka and no
PostgreSQL: what each record costs the two services before any I/O. ``--profile bronze``
or ``--profile silver`` prints cProfile's top entries for that stage. ``--best-of N`` takes
the least CPU of N repetitions instead of the median of 3 (other load only adds to a
repetition), and splits silver into decoding, parsing and the rest of ``refine``, beside the
validation of one wire record (CONTRACTS' POS example, 20,000 times per repetition).

    .venv/bin/python -m bench.profile_stages [--records 20000] [--faults 0] [--profile silver]
    .venv/bin/python -m bench.profile_stages --records 10000 --best-of 7
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import generator, masters
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.events import ProductRecord, StoreRecord, parse_record
from services.common.events.parse import load_json
from services.common.events.wire import PosTransactionV1
from services.common.handoff import decode_landed, encode_landed
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.pii import DEV_KEY
from services.silver_enricher.transform import Refined, Refiner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--faults", type=float, default=0.0)
    ap.add_argument("--profile", choices=("bronze", "silver"))
    ap.add_argument("--best-of", type=int, default=0)
    args = ap.parse_args()
    gen = generator(7, 5000.0, args.faults)
    stores, products = masters(gen)
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
        print(f"{name}: {_cpu(stage, args.best_of) / n * 1e6:.1f} µs CPU per {unit}")
    if args.best_of:
        _split(args.best_of, messages, refiner, stores, products)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        (bronze if args.profile == "bronze" else silver)()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def _split(best_of: int, messages: list[bytes], refiner: Refiner,
           stores: dict[str, StoreRecord], products: dict[str, ProductRecord]) -> None:  # fmt: skip
    """Silver's work split into decoding the hand-off, parsing, and the rest of ``refine``;
    and the validation of one wire record."""
    decoded = [d for m in messages for d in decode_landed(m)]
    ctx = Context(datetime.now(UTC), timedelta(seconds=300), stores, products)

    def parse() -> None:
        for r in decoded:
            parse_record(r.raw, r.source_system, batch_id=r.batch_id, partner=r.partner)

    parts: dict[str, Callable[[], Any]] = {
        "decode": lambda: [d for m in messages for d in decode_landed(m)],
        "parse": parse,
        "refine": lambda: refiner.refine(decoded, stores, products, ctx),
    }
    cpu = {name: _cpu(part, best_of) / len(decoded) * 1e6 for name, part in parts.items()}
    print(f"silver split, µs CPU per bronze row: decode {cpu['decode']:.1f}, parse "
          f"{cpu['parse']:.1f}, refine {cpu['refine']:.1f} (of which not parsing "
          f"{cpu['refine'] - cpu['parse']:.1f})")  # fmt: skip
    raw = load_json(json.dumps(POS_EXAMPLE))

    def validate() -> None:
        for _ in range(20_000):
            PosTransactionV1.model_validate(raw)

    print(f"validate one POS record: {_cpu(validate, best_of) / 20_000 * 1e6:.1f} µs CPU")


def _cpu(stage: Callable[[], Any], best_of: int = 0) -> float:
    """Process CPU seconds of ``stage``: the median of 3 repetitions, or the least of
    ``best_of``."""
    times = []
    for _ in range(best_of or 3):
        started = time.process_time()
        stage()
        times.append(time.process_time() - started)
    return min(times) if best_of else sorted(times)[len(times) // 2]


# The pos.transaction/1 example of CONTRACTS §2 (a customer, two lines), as a producer sends it.
POS_EXAMPLE = {
    "schema": "pos.transaction/1", "event_id": "T0042-000123", "store_id": "S0042",
    "terminal_id": "T0042-1", "occurred_at": "2026-11-25T10:15:00+08:00", "currency": "PHP",
    "total_amount": 125.50, "payment_method": "cash",
    "customer": {"id": "C-99812", "type": "regular", "phone": "+639171234567"},
    "items": [{"sku": "P-1001", "qty": 2, "unit_price": 20.00},
              {"sku": "P-2040", "qty": 1, "unit_price": 85.50}],
}  # fmt: skip


if __name__ == "__main__":
    main()
