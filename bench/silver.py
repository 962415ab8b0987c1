"""Silver throughput on the local stack (not a test; prints a markdown table).

Per repetition, on a fresh database and topic prefix:

1. the simulator's generator publishes its master data and ``--records`` live records
   (realistic mix: POS 70 %, API batches 8 %, IoT 22 %; 2 % faulty) to the source topics;
2. ``scout run bronze`` lands them all and stops: the bronze-landed topic now holds the
   handoff messages silver consumes, exactly as in production after a backlog;
3. (a) ``scout run silver`` processes them; the stores and products are in silver before it
   starts (loaded from the same generator), so no record waits for master data;
4. (b) the naive agent of ``bench/naive_silver_agent.py`` (one upsert transaction per
   record) consumes the *same* bronze-landed topic into a second fresh database.

Rates are measured in PostgreSQL from ``silver_lineage`` (one row per processed bronze
record, ``processed_at`` = its transaction's start): rows after the first transaction over
the time from the first to the last transaction, free of process start-up and polling.

    .venv/bin/python -m bench.silver [--records 100000] [--naive-records 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.bronze import Scenario, scenario, start, stop
from bench.common import (
    TxRate,
    count,
    generator,
    load1,
    load_masters,
    median,
    publish_all,
    tx_rate,
    wait_count,
)
from services.common.kafka import topics_for
from services.common.settings import Settings, load_settings

BRONZE_ROWS = "SELECT count(*) FROM scout.bronze_transactions_raw"
LINEAGE_ROWS = "SELECT count(*) FROM scout.silver_lineage"


@dataclass(frozen=True)
class Run:
    silver: Measured
    naive: Measured | None
    whatif: Measured | None
    bronze_rows: int
    handoff_messages: int
    load: tuple[float, float]


async def topic_messages(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def land_in_bronze(s: Scenario, seed: int, records: int, logs: Path) -> tuple[int, int]:
    """Publish simulated traffic and run bronze over it; returns (bronze rows, handoff
    messages on the bronze-landed topic)."""
    gen = generator(seed, rate=2000.0)
    await load_masters(s.url, gen)
    manifest = await publish_all(s.settings, gen, records)
    expected = manifest.expected()["bronze_transactions_raw"]
    proc, _ = start(s, ["services.cli", "run", "bronze"], logs / "bronze.log")
    try:
        await wait_count(s.url, BRONZE_ROWS, expected, timeout=600, procs=[proc])
        await asyncio.sleep(2)  # the last batch's handoff is sent right after its commit
    finally:
        stop(proc)
    rows = await count(s.url, BRONZE_ROWS)
    messages = await topic_messages(s.settings, topics_for(s.settings).bronze_landed)
    return rows, messages


def spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
         "--format", "raw", "--rate", "50", "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


@dataclass(frozen=True)
class Measured:
    per_tx: TxRate  # rows after the first transaction / first → last transaction start
    rows: int
    seconds: float  # first transaction start → all rows seen (polled every 0.1 s)
    wall_s: float  # process start → all rows seen

    @property
    def rate(self) -> float:
        """All rows over first transaction start → done: robust with few, large batches."""
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


async def run_worker(
    target: Scenario, url: str, module: list[str], n: int, log: Path, profile: Path | None = None
) -> Measured:
    """Start ``module`` on ``target``'s topics, writing into ``url``, until ``n`` lineage rows."""
    started = time.monotonic()
    proc, _ = start(target, module, log)
    sampler = spy(proc.pid, profile) if profile is not None else None
    try:
        await wait_count(url, LINEAGE_ROWS, n, timeout=900, procs=[proc], interval=0.1)
        done_at = datetime.now(UTC)
        wall = time.monotonic() - started
    finally:
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=60)
        stop(proc)
    conn = await asyncpg.connect(url)
    try:
        first = await conn.fetchval("SELECT min(processed_at) FROM scout.silver_lineage")
        rows = await conn.fetchval(LINEAGE_ROWS)
    finally:
        await conn.close()
    per_tx = await tx_rate(url, "scout.silver_lineage", "processed_at")
    return Measured(per_tx, int(rows), (done_at - first).total_seconds(), wall)


def on_topics_of(s: Scenario, db: Scenario) -> Scenario:
    """``db``'s fresh database, with ``s``'s topics (the same bronze-landed messages)."""
    settings = db.settings.model_copy(update={"topic_prefix": s.settings.topic_prefix})
    return Scenario(settings, db.admin_url, db.db_name)


async def one_run(base: Settings, args: argparse.Namespace, work: Path) -> Run:
    before = load1()
    async with (
        scenario(base, "silver", work) as s,
        scenario(base, "naive", work) as nv,
        scenario(base, "whatif", work) as wi,
    ):
        rows, messages = await land_in_bronze(s, 0, args.records, work)
        print(f"  bronze landed {rows:,} records in {messages} handoff messages", flush=True)
        silver = await run_worker(s, s.url, ["services.cli", "run", "silver"], rows,
                                  work / "silver.log", args.profile)  # fmt: skip
        print(f"  (a) silver: {silver.rate:,.0f} rec/s ({silver.per_tx.rate:,.0f} after the "
              f"first of {silver.per_tx.transactions} batches; {silver.wall_s:.1f} s with "
              "start-up)", flush=True)  # fmt: skip
        naive = whatif = None
        if args.whatif:
            await load_masters(wi.url, generator(0, 1.0))
            whatif = await run_worker(on_topics_of(s, wi), wi.url, ["bench.whatif_silver_worker"],
                                      rows, work / "whatif.log")  # fmt: skip
            print(f"  (c) silver, what-if parse._fields: {whatif.rate:,.0f} rec/s", flush=True)
        if not args.only_silver:
            await load_masters(nv.url, generator(0, 1.0))  # same world: master data is per seed
            naive = await run_worker(on_topics_of(s, nv), nv.url, ["bench.naive_silver_agent"],
                                     min(args.naive_records, rows), work / "naive.log")  # fmt: skip
            print(f"  (b) naive:  {naive.rate:,.0f} rec/s", flush=True)
    return Run(silver, naive, whatif, rows, messages, (before, load1()))


def rate(m: Measured | None) -> float:
    return m.rate if m is not None else float("nan")


def report(runs: list[Run], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `{command}`  ",
        "Machine: 2 cores, shared; Kafka and PostgreSQL on the same machine.",
        "",
        "| run | bronze records | handoff msgs | (a) silver rec/s | (a) after 1st batch rec/s "
        "| (a) batches | (a) wall s incl. start-up | (b) naive rec/s | (a)/(b) "
        "| (c) what-if rec/s | (c)/(a) | load 1m start/end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        a, b, c = r.silver.rate, rate(r.naive), rate(r.whatif)
        lines.append(
            f"| {i} | {r.bronze_rows:,} | {r.handoff_messages} | {a:,.0f} "
            f"| {r.silver.per_tx.rate:,.0f} | {r.silver.per_tx.transactions} "
            f"| {r.silver.wall_s:.1f} | {b:,.0f} | {a / b:.1f}x | {c:,.0f} | {c / a:.2f} "
            f"| {r.load[0]:.1f}/{r.load[1]:.1f} |"
        )
    a = median([r.silver.rate for r in runs])
    b = median([rate(r.naive) for r in runs])
    c = median([rate(r.whatif) for r in runs])
    lines.append(
        f"| **median** | | | **{a:,.0f}** | {median([r.silver.per_tx.rate for r in runs]):,.0f} "
        f"| | {median([r.silver.wall_s for r in runs]):.1f} | **{b:,.0f}** | **{a / b:.1f}x** "
        f"| {c:,.0f} | {c / a:.2f} | |"
    )
    lines += [
        "",
        f"{args.records:,} simulated Kafka records per run (API batches carry several bronze "
        f"records); (b) measured over the first {args.naive_records:,} bronze records. "
        "Rates: all lineage rows over first transaction start → last row seen (polled every "
        "0.1 s); 'after 1st batch': rows after the first transaction over first → last "
        "transaction start.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--naive-records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only-silver", action="store_true", help="skip the naive baseline")
    parser.add_argument("--profile", type=Path, help="py-spy raw samples of the silver worker")
    parser.add_argument("--whatif", action="store_true", help="also (c) bench.whatif_silver_worker")
    args = parser.parse_args()
    base = load_settings(log_level="WARNING")
    command = "python -m bench.silver " + " ".join(sys.argv[1:])
    runs = []
    with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", flush=True)
            runs.append(asyncio.run(one_run(base, args, Path(tmp))))
    print()
    print(report(runs, args, command))


if __name__ == "__main__":
    main()
