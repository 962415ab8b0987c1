"""``scout simulate``: publish realistic POS / API / IoT / master traffic with faults.

Order of a run: master data (stores, products) and wait for the broker's acks; the
``--days`` backfill as fast as the producer takes it; live traffic at ``--rate`` for
``--duration`` seconds; then the master records of the late stores (so the transactions
silver quarantined as ``unknown_store`` can be re-processed). A progress line per second
goes to stderr; the manifest (JSON) to ``--manifest`` (default
``<state_dir>/simulate-manifest.json``) and its summary to stdout.

Determinism: the payloads are a function of ``--seed``, ``--start`` and the options. Without
``--start``, a seeded run starts its simulated clock at the current hour (UTC): two runs with
the same seed in the same hour are byte-identical, and event times stay near the wall clock.
``future_timestamp`` faults lie 1-7 days after the simulated clock: with a ``--start`` more
than a day in the past, silver will (rightly) accept them, so the manifest's expectation only
holds for a start near the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from services.common import registry
from services.common.events.types import to_timestamp
from services.common.kafka import create_topics, make_producer, topics_for
from services.common.progress import Progress
from services.common.settings import Settings
from services.simulator import records as r
from services.simulator.formats import PLAIN, Framer, parse_formats
from services.simulator.generator import SimConfig, TrafficGenerator, default_start
from services.simulator.manifest import Manifest
from services.simulator.publisher import Publisher


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="publish realistic POS / API / IoT / master traffic, with faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="records/s (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--faults", type=_share, default=0.0, help="faulty share 0..1")
    parser.add_argument("--seed", type=int, default=None, help="seed for identical runs")
    parser.add_argument("--stores", type=int, default=50, help="number of stores (default 50)")
    parser.add_argument("--days", type=int, default=0, help="days of history to backfill first")
    parser.add_argument("--start", type=_start, default=None, help="RFC 3339 simulated start")
    parser.add_argument("--manifest", type=Path, default=None, help="manifest JSON path")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap (overrides setting)")
    parser.add_argument(
        "--format",
        type=_formats,
        default=(PLAIN,),
        help="json (default), json-sr (JSON Schema frames), avro (Avro frames), or several "
        "comma-separated: fault-free records take them in turn on the same topics; frames use "
        "SCOUT_SCHEMA_REGISTRY_URL (subjects registered if missing)",
    )
    parser.set_defaults(func=_simulate)


def _formats(text: str) -> tuple[str, ...]:
    try:
        return parse_formats(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _counted(records: Iterator[r.SimRecord], meter: Progress) -> Iterator[r.SimRecord]:
    for record in records:
        meter.advance()
        yield record


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _start(text: str) -> datetime:
    try:
        return to_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be RFC 3339 with an offset") from exc


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap": args.bootstrap})
    if args.rate <= 0 or args.duration < 0 or args.stores < 1 or args.days < 0:
        print("scout simulate: --rate > 0, --duration >= 0, --stores >= 1, --days >= 0",
              file=sys.stderr)  # fmt: skip
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    config = SimConfig(
        seed=seed,
        start=args.start or default_start(args.seed),
        rate=args.rate,
        faults=args.faults,
        stores=args.stores,
        days=args.days,
        max_record_bytes=settings.max_record_bytes,
    )
    path: Path = args.manifest or settings.state_dir / "simulate-manifest.json"
    manifest = asyncio.run(run(settings, config, duration_s=args.duration, formats=args.format))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    achieved = manifest["live"]["achieved_rate"]
    print(f"sent {manifest['sent']} records ({manifest['live']['sent']} live at "
          f"{achieved:,.0f}/s of {args.rate:,.0f}/s requested); manifest: {path}")  # fmt: skip
    if manifest["live"]["sent"] < manifest["live"]["requested"]:
        print(f"scout simulate: could not reach the requested rate: {achieved:,.0f}/s",
              file=sys.stderr)  # fmt: skip
    return 0


async def run(
    settings: Settings,
    config: SimConfig,
    *,
    duration_s: float,
    formats: tuple[str, ...] = (PLAIN,),
) -> dict[str, Any]:
    """One simulator run against the broker of ``settings``; returns the manifest."""
    await create_topics(settings)
    topics = topics_for(settings)
    names = {r.POS: topics.pos, r.API: topics.api, r.IOT: topics.iot,
             r.STORES: topics.master_stores, r.PRODUCTS: topics.master_products}  # fmt: skip
    generator = TrafficGenerator(config)
    manifest = Manifest()
    framer = None
    if formats != (PLAIN,):
        framer = Framer(registry.client(settings.registry_url()), topics, names, formats)
        await framer.prepare()
    producer = make_producer(settings)
    await producer.start()
    try:
        publisher = Publisher(producer, names, manifest, framer)
        masters = generator.masters()
        await publisher.send_all(masters)
        await publisher.drain()  # master data is on the broker before any transaction
        meter = Progress(generator.backfill_total(), "backfill",
                         quiet=settings.log_format == "json")  # fmt: skip
        await publisher.send_all(_counted(generator.backfill(), meter))
        meter.finish()
        backfilled = manifest.sent
        live = await publisher.live(generator.live, rate=config.rate, duration_s=duration_s)
        await publisher.send_all(generator.late_masters())
        await publisher.drain()
    finally:
        await producer.stop()
        if framer is not None:
            await framer.client.aclose()
    return manifest.to_dict(
        seed=config.seed,
        start=config.start.isoformat(),
        stores=config.stores,
        days=config.days,
        fault_share=config.faults,
        formats=dict(framer.counts) if framer is not None else {PLAIN: manifest.sent},
        backfill_sent=backfilled - len(masters),
        live={
            "requested": int(config.rate * duration_s),
            "sent": live.sent,
            "elapsed_s": round(live.elapsed_s, 3),
            "requested_rate": config.rate,
            "achieved_rate": round(live.rate, 1),
        },
    )
