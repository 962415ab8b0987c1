"""End-to-end freshness and sustained rate through bronze → silver → gold (not a test).

Per repetition, on a fresh database and topic prefix, ``scout run bronze``, ``scout run
silver`` and ``scout run gold`` run as three processes (one worker each, default settings)
while this script publishes simulated traffic (the simulator's generator and publisher; 2 %
faulty records) at a fixed rate, in steps: ``--rates 2000,4000,6000,8000`` for
``--first-duration`` then ``--duration`` seconds each, waiting for the pipeline to drain
between steps and stopping after the first step that is not sustained.

Freshness, publish → visible in gold, is measured two ways:

- *curve*: this script knows how many valid transactions it had published at each instant
  (from the simulator's expected outcomes) and polls ``sum(transaction_count)`` of
  ``gold_business_metrics`` every 0.1 s; the k-th transaction's freshness is the time the
  gold count reached k minus the time it was published;
- *metric*: the gold service's ``scout_freshness_seconds`` histogram (source Kafka time of
  the oldest change in a group → the group recomputed), as the bucket delta over the step.

A step is *sustained* when the publisher reached ≥ 97 % of the rate, the pipeline drained
within 5 s after the last publish, no consumer group's lag grew (mean of the second half ≤
1.5 x the first half + a floor) and freshness did not grow (p50 of the last third ≤ 1.5 x
the first third + 0.5 s).

At the end, with the services stopped, the seed's approach is measured on the same silver
data: ``bench/seed_mv.sql`` (gold_business_metrics' columns as a materialized view),
``REFRESH MATERIALIZED VIEW`` and ``… CONCURRENTLY`` (median of 3 each), and the view is
compared with gold (expected: 0 differing rows).

    .venv/bin/python -m bench.gold [--runs 3] [--rates 2000,4000,6000,8000]

``--rates-of-raw 0.1,0.25``: the steps as multiples of the raw limit measured first in the
same run (``--raw-records`` simulator POS records, one aiokafka ``getmany`` + COPY loop into
bronze's table: ``bench/bronze.py``'s ``consume_raw``, on a fresh database and prefix), so
that results compare across machines; the report gives each step's multiple, its p99
publish → gold visible and whether lag stayed flat (``--keep-going``: run every step, also
after one that is not sustained).

    .venv/bin/python -m bench.gold --rates-of-raw 0.1,0.25 [--runs 1] [--raw-records 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.bronze import Scenario, consume_raw, scenario, start, stop, wait_ready
from bench.common import (
    delta,
    generator,
    load1,
    load_masters,
    median,
    publish_all,
    quantile,
    scrape_histogram,
    topic_names,
)
from bench.cpu_share import Cpu
from services.common.kafka import make_producer, topics_for
from services.common.settings import Settings, load_settings
from services.simulator import records as r
from services.simulator.generator import TrafficGenerator
from services.simulator.manifest import Manifest
from services.simulator.publisher import CHUNK, Publisher

GOLD_COUNT = "SELECT coalesce(sum(transaction_count), 0) FROM scout.gold_business_metrics"
SEED_MV = Path(__file__).with_name("seed_mv.sql")
MV = "scout.bench_seed_business_metrics"
PREGENERATED_CHUNK = 50  # records per pre-generated piece: the pacing grain
CPU_STAGES = ("bronze", "pg<-bronze", "silver", "pg<-silver", "gold", "pg<-gold")
LAG_FLOOR = {"bronze": 0.5, "silver": 5.0, "gold": 20.0}  # bronze: x rate (records)


@dataclass(frozen=True)
class Step:
    rate: float
    achieved: float
    seconds: float
    transactions: int  # valid transactions published in the step
    curve_p50: float
    curve_p99: float
    curve_max: float
    metric_p50: float
    metric_p99: float
    silver_p99: float  # scout_freshness_seconds of silver (source Kafka time → silver commit)
    bronze_p99: float
    gold_flush_p50: float  # scout_batch_flush_seconds of gold
    early_p50: float  # curve p50 of the first / last third of the step
    late_p50: float
    drain_s: float
    max_lag: dict[str, int]
    lag_growing: list[str]
    sustained: bool
    # CPU µs per published record over the step and its drain: each service's process and
    # the PostgreSQL backends serving it (``pg<-silver``), as bench.chain attributes them
    cpu_us: dict[str, float]


@dataclass(frozen=True)
class SeedMV:
    silver_rows: int
    groups: int
    create_s: float
    refresh_s: float
    refresh_concurrently_s: float
    mismatches: int


class Lag:
    """Log-end minus committed offset of one consumer group, summed over its partitions.

    Measured here, outside the services: until e184368 their ``LagMonitor`` asked an
    unsubscribed consumer for the partitions, which aiokafka answers with None, so it
    reported nothing. Here the partitions are known (``topic_partitions``).
    """

    def __init__(self, settings: Settings, group: str, topics: tuple[str, ...]) -> None:
        self.group = group
        self.partitions = [TopicPartition(t, p) for t in topics
                           for p in range(settings.topic_partitions)]  # fmt: skip
        self.admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                         enable_auto_commit=False)  # fmt: skip

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def measure(self) -> int:
        committed = await self.admin.list_consumer_group_offsets(self.group)
        ends = await self.consumer.end_offsets(self.partitions)
        total = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            total += max(0, end - (meta.offset if meta is not None and meta.offset >= 0 else 0))
        return total

    async def close(self) -> None:
        await self.consumer.stop()
        await self.admin.close()


@dataclass
class Pipeline:
    s: Scenario
    ports: dict[str, int]
    procs: list[Any]
    producer: Any
    publisher: Publisher
    gen: TrafficGenerator
    lags: dict[str, Lag]
    valid: int = 0  # valid transactions published so far (all steps)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def group_id(settings: Settings, service: str) -> str:
    return f"{settings.topic_prefix}{service}".replace(".", "-").strip("-")


def valid_transactions(chunk: list[r.SimRecord]) -> int:
    return sum(o == r.SILVER_TRANSACTIONS for record in chunk for o in record.outcomes)


def histograms(p: Pipeline) -> dict[str, dict[float, float]]:
    return {
        "gold": scrape_histogram(p.ports["gold"], "scout_freshness_seconds", layer="gold"),
        "flush": scrape_histogram(p.ports["gold"], "scout_batch_flush_seconds", layer="gold"),
        "silver": scrape_histogram(p.ports["silver"], "scout_freshness_seconds", layer="silver"),
        "bronze": scrape_histogram(p.ports["bronze"], "scout_freshness_seconds", layer="bronze"),
    }


async def poll_gold(url: str, out: list[tuple[float, int]], stop_at: asyncio.Event) -> None:
    conn = await asyncpg.connect(url)
    try:
        while not stop_at.is_set():
            out.append((time.monotonic(), int(await conn.fetchval(GOLD_COUNT))))
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def poll_lag(p: Pipeline, out: list[tuple[float, dict[str, int]]], stop_at: asyncio.Event
                   ) -> None:  # fmt: skip
    while not stop_at.is_set():
        sample = {}
        for name, monitor in p.lags.items():
            sample[name] = await monitor.measure()
        out.append((time.monotonic(), sample))
        await asyncio.sleep(1.0)


async def publish_paced(p: Pipeline, rate: float, seconds: float, *, pregenerate: bool
                        ) -> tuple[list[tuple[float, int]], int, float]:  # fmt: skip
    """Publish at ``rate`` for ``seconds``; returns (time, valid transactions so far) after
    each chunk, records sent, and the elapsed time.

    ``pregenerate``: generate (and JSON-encode) the whole step before publishing, so that the
    load generator does not compete for the two cores with the pipeline it measures (it
    took ~35 % of a core at 5,000 events/s). Event times then trail the publish time by the
    generation time (a few seconds: late-ish data, well inside every window).
    """
    # Move the simulated clock to now at the new rate, so event times follow the wall clock
    # (a clock running ahead would make silver quarantine records as future_timestamp).
    gen = p.gen
    gen.config = dataclasses.replace(
        gen.config, rate=rate, start=datetime.now(UTC) - timedelta(seconds=gen._live / rate)
    )
    total = int(rate * seconds)
    ready: list[list[r.SimRecord]] = []
    if pregenerate:
        generated = 0
        while generated < total:
            ready.append(gen.live(min(total - generated, PREGENERATED_CHUNK)))
            generated += len(ready[-1])
        ready.reverse()  # pop() from the end
    marks: list[tuple[float, int]] = []
    t0 = time.monotonic()
    sent = 0
    while sent < total:
        elapsed = time.monotonic() - t0
        if elapsed >= seconds * 1.05:
            break
        due = min(total, int(rate * (elapsed + 0.05)) + 1)
        if due > sent:
            chunk: list[r.SimRecord] = []
            while ready and len(chunk) < due - sent:
                chunk.extend(ready.pop())
            if not pregenerate:
                chunk = gen.live(min(due - sent, CHUNK))
            await p.publisher.send(chunk)
            sent += len(chunk)
            p.valid += valid_transactions(chunk)
            marks.append((time.monotonic(), p.valid))
        else:
            await asyncio.sleep(max(0.001, (sent + 1) / rate - elapsed - 0.05))
    await p.publisher.drain()
    return marks, sent, time.monotonic() - t0


def curve_freshness(
    marks: list[tuple[float, int]], polls: list[tuple[float, int]]
) -> list[tuple[float, float]]:
    """(publish time, freshness) per chunk: when gold's count first reached the chunk's
    cumulative count, minus when the chunk was published."""
    times, counts, high = [], [], 0
    for t, n in polls:
        high = max(high, n)
        times.append(t)
        counts.append(high)
    out = []
    for t_pub, k in marks:
        i = bisect.bisect_left(counts, k)
        out.append((t_pub, times[i] - t_pub if i < len(times) else float("inf")))
    return out


async def run_step(
    p: Pipeline, rate: float, seconds: float, drain_timeout: float, *, pregenerate: bool
) -> Step:
    before = histograms(p)
    cpu = Cpu()  # from here: the step and its drain
    for proc, service in zip(p.procs, p.ports, strict=True):
        cpu.ready(proc.pid, service)
    polls: list[tuple[float, int]] = []
    lags: list[tuple[float, dict[str, int]]] = []
    done = asyncio.Event()
    pollers = [asyncio.ensure_future(poll_gold(p.s.url, polls, done)),
               asyncio.ensure_future(poll_lag(p, lags, done))]  # fmt: skip
    start_valid = p.valid
    marks, sent, elapsed = await publish_paced(p, rate, seconds, pregenerate=pregenerate)
    t_end = time.monotonic()
    drain_s = float("inf")
    while time.monotonic() - t_end < drain_timeout:
        if polls and polls[-1][1] >= p.valid:
            drain_s = max(0.0, polls[-1][0] - t_end)
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # let gold's last flush metrics and a last lag sample land
    done.set()
    await asyncio.gather(*pollers)
    cpu_us = {stage: us / max(sent, 1) for stage, us in cpu.us().items()}
    after = histograms(p)
    fresh = curve_freshness(marks, polls)
    values = [f for _, f in fresh]
    third = (marks[-1][0] - marks[0][0]) / 3 if marks else 0.0
    early = [f for t, f in fresh if t <= marks[0][0] + third]
    late = [f for t, f in fresh if t >= marks[-1][0] - third]
    gold, flush = delta(after["gold"], before["gold"]), delta(after["flush"], before["flush"])
    during = [(t, s) for t, s in lags if t <= t_end]
    half = (during[-1][0] + during[0][0]) / 2 if during else 0.0
    growing, max_lag = [], {}
    for name in p.lags:
        first = [s[name] for t, s in during if t < half]
        second = [s[name] for t, s in during if t >= half]
        max_lag[name] = max((s[name] for _, s in during), default=0)
        floor = LAG_FLOOR[name] * (rate if name == "bronze" else 1)
        if first and second and median(second) > 1.5 * median(first) + floor:
            growing.append(name)
    early_p50, late_p50 = percentile(early, 0.5), percentile(late, 0.5)
    achieved = sent / elapsed if elapsed else 0.0
    sustained = (
        achieved >= 0.97 * rate
        and drain_s <= 5.0
        and not growing
        and late_p50 <= 1.5 * early_p50 + 0.5
    )
    return Step(
        rate, achieved, elapsed, p.valid - start_valid,
        percentile(values, 0.5), percentile(values, 0.99), max(values, default=float("nan")),
        quantile(0.5, gold), quantile(0.99, gold),
        quantile(0.99, delta(after["silver"], before["silver"])),
        quantile(0.99, delta(after["bronze"], before["bronze"])),
        quantile(0.5, flush), early_p50, late_p50, drain_s, max_lag, growing, sustained, cpu_us,
    )  # fmt: skip


async def seed_mv(url: str) -> SeedMV:
    """The seed's materialized view over the same silver data: build, refresh, compare."""
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await conn.execute(SEED_MV.read_text())
        create_s = time.perf_counter() - started
        plain, concurrent = [], []
        for _ in range(3):
            started = time.perf_counter()
            await conn.execute(f"REFRESH MATERIALIZED VIEW {MV}")
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            await conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {MV}")
            concurrent.append(time.perf_counter() - started)
        cols = ("store_id, date_key, region, city, transaction_count, daily_revenue, "
                "avg_transaction, unique_customers, median_amount, amount_stddev, new_customers, "
                "returning_customers, footfall, conversion_rate, campaign_spend")  # fmt: skip
        mismatches = await conn.fetchval(f"""
            SELECT (SELECT count(*) FROM (SELECT {cols} FROM {MV}
                    EXCEPT SELECT {cols} FROM scout.gold_business_metrics) a)
                 + (SELECT count(*) FROM (SELECT {cols} FROM scout.gold_business_metrics
                    EXCEPT SELECT {cols} FROM {MV}) b)""")  # fmt: skip
        rows = await conn.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
        groups = await conn.fetchval(f"SELECT count(*) FROM {MV}")
    finally:
        await conn.close()
    return SeedMV(rows, groups, create_s, median(plain), median(concurrent), int(mismatches))


async def start_pipeline(
    s: Scenario, seed: int, logs: Path, silver_module: str, extra: dict[str, str]
) -> Pipeline:
    gen = generator(seed, rate=1000.0)
    await load_masters(s.url, gen)
    procs, ports = [], {}
    for service in ("bronze", "silver", "gold"):
        module = ["services.cli", "run", service]
        if service == "silver" and silver_module:
            module = [silver_module]
        proc, port = start(s, module, logs / f"{service}.log", extra=extra)
        procs.append(proc)
        ports[service] = port
    for proc, port in zip(procs, ports.values(), strict=True):
        await wait_ready(port, proc, timeout=120)
    producer = make_producer(s.settings)
    await producer.start()
    publisher = Publisher(producer, topic_names(s.settings), Manifest())
    await publisher.send_all(gen.masters())
    await publisher.drain()
    t = topics_for(s.settings)
    lags = {
        "bronze": Lag(s.settings, group_id(s.settings, "bronze"), t.sources),
        "silver": Lag(s.settings, group_id(s.settings, "silver"), (t.bronze_landed,)),
        # Gold reads no topic (silver's changes wait in PostgreSQL): no Kafka lag to watch.
    }
    for lag in lags.values():
        await lag.start()
    return Pipeline(s, ports, procs, producer, publisher, gen, lags)


async def stop_pipeline(p: Pipeline) -> None:
    for monitor in p.lags.values():
        await monitor.close()
    await p.producer.stop()
    for proc in p.procs:
        stop(proc)


async def one_run(
    base: Settings, args: argparse.Namespace, work: Path, seed: int
) -> tuple[list[Step], SeedMV, tuple[float, float]]:
    before = load1()
    steps: list[Step] = []
    async with scenario(base, "gold", work) as s:
        p = await start_pipeline(s, seed, work, args.silver_module, dict(args.service_env))
        try:
            await asyncio.sleep(3)  # master data through silver
            for i, rate in enumerate(args.rates):
                seconds = args.first_duration if i == 0 else args.duration
                step = await run_step(
                    p, rate, seconds, args.drain_timeout, pregenerate=not args.live_generate
                )
                steps.append(step)
                print(f"  {rate:,.0f}/s: achieved {step.achieved:,.0f}/s, freshness p50/p99 "
                      f"{step.curve_p50:.2f}/{step.curve_p99:.2f} s (metric "
                      f"{step.metric_p50:.2f}/{step.metric_p99:.2f}), drain {step.drain_s:.1f} s, "
                      f"max lag {step.max_lag}, growing {step.lag_growing}, "
                      f"early/late p50 {step.early_p50:.2f}/{step.late_p50:.2f} → "
                      f"{'sustained' if step.sustained else 'NOT sustained'}",
                      flush=True)  # fmt: skip
                if not step.sustained and not args.keep_going:
                    break
                await asyncio.sleep(3)
        finally:
            await stop_pipeline(p)
        mv = await seed_mv(s.url)
        print(f"  seed MV: {mv.silver_rows:,} silver rows, {mv.groups} groups, refresh "
              f"{mv.refresh_s:.3f} s, concurrently {mv.refresh_concurrently_s:.3f} s, "
              f"{mv.mismatches} rows differ from gold", flush=True)  # fmt: skip
    return steps, mv, (before, load1())


async def raw_limit(base: Settings, records: int, work: Path) -> float:
    """Records/s of the raw limit on the simulator's POS records (no faults), this run."""
    async with scenario(base, "goldraw", work) as s:
        gen = generator(99, rate=5000.0, faults=0.0)
        await publish_all(s.settings, gen, records, only=r.POS)
        seconds = await consume_raw(s, records)
    return records / seconds


def fmt(x: float, digits: int = 2) -> str:
    return "∞" if x == float("inf") else f"{x:.{digits}f}"


def report(
    runs: list[tuple[list[Step], SeedMV, tuple[float, float]]], args: argparse.Namespace,
    command: str,
) -> str:  # fmt: skip
    raw = args.raw_rate
    lines = [
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `{command}`  ",
        "Machine: 2 cores, shared; Kafka, PostgreSQL, the three services and the publisher "
        "on the same machine.",
    ]
    if raw:
        lines += [
            "",
            f"Raw limit measured first in this run ({args.raw_records:,} POS records, "
            f"getmany + COPY): **{raw:,.0f} records/s**; steps as multiples of it:",
            "",
            "| x raw | rate/s | runs | p99 s publish → gold (curve) | p99 s (metric) "
            "| lag flat | sustained |",
            "|---|---|---|---|---|---|---|",
        ]
        for multiple, rate in zip(args.multiples, args.rates, strict=True):
            steps = [st for run_steps, _, _ in runs for st in run_steps if st.rate == rate]
            if steps:
                flat = sum(not st.lag_growing for st in steps)
                lines.append(
                    f"| {multiple:g} | {rate:,.0f} | {len(steps)} "
                    f"| **{fmt(median([s.curve_p99 for s in steps]))}** "
                    f"| {fmt(median([s.metric_p99 for s in steps]))} | {flat}/{len(steps)} "
                    f"| {sum(s.sustained for s in steps)}/{len(steps)} |"
                )
    lines += [
        "",
        "### Freshness and sustained rate (incremental gold)",
        "",
        "| run | rate/s | achieved/s | p50 s (curve) | p99 s (curve) | max s | p50 s (metric) "
        "| p99 s (metric) | bronze p99 | silver p99 | gold flush p50 s | early/late p50 s "
        "| drain s | max lag bronze/silver | sustained |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, (steps, _, _load) in enumerate(runs, 1):
        for st in steps:
            lag = "/".join(str(st.max_lag[k]) for k in ("bronze", "silver"))
            lines.append(
                f"| {i} | {st.rate:,.0f} | {st.achieved:,.0f} | {fmt(st.curve_p50)} "
                f"| {fmt(st.curve_p99)} | {fmt(st.curve_max)} | {fmt(st.metric_p50)} "
                f"| {fmt(st.metric_p99)} | {fmt(st.bronze_p99)} | {fmt(st.silver_p99)} "
                f"| {fmt(st.gold_flush_p50, 3)} | {fmt(st.early_p50)}/{fmt(st.late_p50)} "
                f"| {fmt(st.drain_s, 1)} | {lag} | {'yes' if st.sustained else '**no**'} |"
            )
    lines += ["", "CPU µs per published record over each step and its drain (`pg<-x`: the "
              "PostgreSQL backends serving x):", "",
              "| run | rate/s | " + " | ".join(CPU_STAGES) + " | total |",
              "|---|---|" + "---|" * (len(CPU_STAGES) + 1)]  # fmt: skip
    for i, (steps, _, _load) in enumerate(runs, 1):
        for st in steps:
            cells = " | ".join(f"{st.cpu_us.get(k, 0.0):.0f}" for k in CPU_STAGES)
            lines.append(f"| {i} | {st.rate:,.0f} | {cells} | {sum(st.cpu_us.values()):.0f} |")
    lines += ["", "Medians over the runs, per rate:", "",
              "| rate/s | runs | p50 s (curve) | p99 s (curve) | p99 s (metric) | sustained in |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for rate in args.rates:
        steps = [st for run_steps, _, _ in runs for st in run_steps if st.rate == rate]
        if not steps:
            continue
        lines.append(
            f"| {rate:,.0f} | {len(steps)} | {fmt(median([s.curve_p50 for s in steps]))} "
            f"| **{fmt(median([s.curve_p99 for s in steps]))}** "
            f"| {fmt(median([s.metric_p99 for s in steps]))} "
            f"| {sum(s.sustained for s in steps)}/{len(steps)} |"
        )
    lines += [
        "",
        "### The seed's approach on the same data (materialized view, `bench/seed_mv.sql`)",
        "",
        "| run | silver rows | groups | CREATE … WITH DATA s | REFRESH s | REFRESH CONCURRENTLY s "
        "| rows differing from gold | load 1m start/end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, (_, mv, load) in enumerate(runs, 1):
        lines.append(
            f"| {i} | {mv.silver_rows:,} | {mv.groups} | {mv.create_s:.3f} | {mv.refresh_s:.3f} "
            f"| {mv.refresh_concurrently_s:.3f} | {mv.mismatches} | {load[0]:.1f}/{load[1]:.1f} |"
        )
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.startswith("SCOUT_"):
        raise argparse.ArgumentTypeError(f"expected SCOUT_NAME=VALUE, got {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", type=lambda t: [float(x) for x in t.split(",")],
                        default=[2000.0, 4000.0, 6000.0, 8000.0])  # fmt: skip
    parser.add_argument(
        "--rates-of-raw",
        dest="multiples",
        default=[],
        type=lambda t: [float(x) for x in t.split(",")],
        help="steps as multiples of the raw limit measured first (e.g. 0.1,0.25)",
    )
    parser.add_argument(
        "--raw-records",
        type=int,
        default=100_000,
        help="POS records for the raw limit of --rates-of-raw",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every step, also after one that is not sustained",
    )
    parser.add_argument("--first-duration", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--silver-module", default="", help="run this module instead of silver")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        type=_setting,
        metavar="SCOUT_NAME=VALUE",
        help="a setting of the three services (repeatable), e.g. SCOUT_GOLD_FLUSH_DUTY_CYCLE=1",
    )
    parser.add_argument(
        "--live-generate",
        action="store_true",
        help="generate records while publishing (the load generator then "
        "shares the cores with the pipeline; before 2026-11-25 21:00)",
    )
    args = parser.parse_args()
    base = load_settings(log_level="WARNING")
    command = "python -m bench.gold " + " ".join(sys.argv[1:])
    runs = []
    args.raw_rate = 0.0
    with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
        work = Path(tmp)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            work = args.logs
        if args.multiples:
            args.raw_rate = asyncio.run(raw_limit(base, args.raw_records, work))
            args.rates = [round(m * args.raw_rate) for m in args.multiples]
            print(f"raw limit {args.raw_rate:,.0f} records/s → steps {args.rates}", flush=True)
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", flush=True)
            runs.append(asyncio.run(one_run(base, args, work, seed=i + 1)))
    print()
    print(report(runs, args, command))


if __name__ == "__main__":
    main()
