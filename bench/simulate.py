"""Benchmark of the traffic simulator: generation alone, publishing to the broker, and the
whole `scout simulate` run at a rate above what it can reach, against a naive baseline
(json.dumps per record and awaiting each send) measured in the same run.

    SCOUT_KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/simulate.py [--records N]

Uses throw-away topics under a fresh prefix (deleted afterwards). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

from services.common.kafka import (
    create_topics,
    delete_topics_with_prefix,
    make_producer,
    topics_for,
)
from services.common.settings import Settings
from services.simulator import records as r
from services.simulator.commands import run
from services.simulator.generator import SimConfig, TrafficGenerator
from services.simulator.manifest import Manifest
from services.simulator.publisher import CHUNK, Publisher

START = datetime(2026, 11, 25, 2, tzinfo=UTC)


def config(rate: float = 50_000.0) -> SimConfig:
    return SimConfig(seed=1, start=START, rate=rate, faults=0.05, stores=50)


def bench_generate(n: int) -> tuple[float, int]:
    generator = TrafficGenerator(config())
    generator.masters()
    t0 = time.perf_counter()
    size = 0
    done = 0
    while done < n:
        chunk = generator.live(min(CHUNK, n - done))
        size += sum(len(x.value) for x in chunk)
        done += len(chunk)
    return n / (time.perf_counter() - t0), size // n


def names(settings: Settings) -> dict[str, str]:
    t = topics_for(settings)
    return {r.POS: t.pos, r.API: t.api, r.IOT: t.iot, r.STORES: t.master_stores,
            r.PRODUCTS: t.master_products}  # fmt: skip


async def bench_publish(settings: Settings, n: int) -> float:
    generator = TrafficGenerator(config())
    producer = make_producer(settings)
    await producer.start()
    try:
        publisher = Publisher(producer, names(settings), Manifest())
        t0 = time.perf_counter()
        done = 0
        while done < n:
            chunk = generator.live(min(CHUNK, n - done))
            await publisher.send(chunk)
            done += len(chunk)
        await publisher.drain()
        return n / (time.perf_counter() - t0)
    finally:
        await producer.stop()


async def bench_baseline(settings: Settings, n: int) -> float:
    """Naive: a dict per record, json.dumps, await every send before the next one."""
    generator = TrafficGenerator(config())
    records = generator.live(n)
    dicts = [_decoded(x.value) for x in records]
    topic = names(settings)
    producer = make_producer(settings, linger_ms=0)
    await producer.start()
    try:
        t0 = time.perf_counter()
        for record, obj in zip(records, dicts, strict=True):
            value = json.dumps(obj).encode() if obj is not None else record.value
            await producer.send_and_wait(topic[record.topic], value, key=record.key)
        return n / (time.perf_counter() - t0)
    finally:
        await producer.stop()


def _decoded(value: bytes) -> object:
    try:
        return json.loads(value)
    except ValueError:  # the faulty ones are sent as they are
        return None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--baseline-records", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=60_000.0)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = Settings(topic_prefix=prefix)
    await create_topics(settings)
    try:
        gen_rate, avg_bytes = bench_generate(args.records)
        pub_rate = await bench_publish(settings, args.records)
        base_rate = await bench_baseline(settings, args.baseline_records)
        manifest = await run(settings, config(args.rate), duration_s=args.duration)
    finally:
        await delete_topics_with_prefix(settings, prefix)
    live = manifest["live"]
    rows = [
        ("baseline: json.dumps, await each send", args.baseline_records, base_rate),
        ("generate only (faults 5 %)", args.records, gen_rate),
        ("generate + publish (lz4, batched)", args.records, pub_rate),
        (f"scout simulate --rate {args.rate:.0f} --duration {args.duration:g}", live["sent"],
         live["achieved_rate"]),
    ]  # fmt: skip
    print(f"records average {avg_bytes} bytes; broker {settings.kafka_bootstrap}")
    print(f"| {'case':<48} | {'records':>8} | {'records/s':>10} | {'vs baseline':>11} |")
    print(f"|{'-' * 50}|{'-' * 10}:|{'-' * 11}:|{'-' * 12}:|")
    for name, count, rate in rows:
        print(f"| {name:<48} | {count:>8} | {rate:>10,.0f} | {rate / base_rate:>10.1f}x |")


if __name__ == "__main__":
    asyncio.run(main())
