"""Bronze throughput and freshness on the local stack (not a test; prints markdown tables).

Per repetition, each on a fresh database (migrated from scratch) and a fresh topic prefix,
with the same POS payloads published to the topic *before* the consumer starts:

- (c) the limit: one aiokafka consumer, ``getmany`` + the same per-record work as bronze
  (UTF-8, JSON object check, uuid5 id) + one COPY per batch, offsets committed after it;
- (a) the bronze writer: ``scout run bronze`` as its own process, one worker;
- (b) the naive Faust agent of ``bench/naive_bronze_agent.py``: one INSERT per record;
- freshness: the bronze writer fed at a paced rate (default 2,000 records/s).

Throughput is measured in PostgreSQL, from the first to the last row landed: every batch
transaction stamps its rows with one ``ingested_at`` (its start), so rows after the first
transaction divided by the time between the first and the last transaction is the landing
rate, free of process start-up and of the polling of this script.

    .venv/bin/python -m bench.bronze [--records 200000] [--naive-records 20000] [--runs 3]

``--formats``: the bronze writer alone on the same payloads as plain JSON, as JSON Schema
frames and as Avro frames (Confluent wire format, schemas registered in the registry of
``SCOUT_SCHEMA_REGISTRY_URL``), one fresh scenario each, in the same run.

    .venv/bin/python -m bench.bronze --formats [--records 100000] [--runs 1]

``--landing-cost``: the per-record CPU cost of the pure landing step (frame decoding, ``land``,
COPY record, handoff encoding) for each format, in this process, no services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import fastavro
import orjson
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from services.bronze_writer.app import BronzeWriter
from services.bronze_writer.framing import FrameDecoder, _Writer
from services.bronze_writer.repo import BronzeRepo
from services.bronze_writer.transform import KafkaCoordinates, Landing, bronze_id, land
from services.common import registered_schemas, registry
from services.common.handoff import encode_landed
from services.common.kafka import (
    create_topics,
    delete_topics_with_prefix,
    make_producer,
    topics_for,
)
from services.common.migrations import migrate
from services.common.settings import Settings, load_settings

RAW_COLUMNS = (
    "id", "raw_data", "source_system", "schema_name", "batch_id", "record_index",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp",
)  # fmt: skip

RATE_SQL = """
WITH tx AS (
    SELECT ingested_at, count(*) AS n FROM scout.bronze_transactions_raw GROUP BY ingested_at
)
SELECT sum(n) AS total, count(*) AS transactions, min(ingested_at) AS first,
       max(ingested_at) AS last, (SELECT n FROM tx ORDER BY ingested_at LIMIT 1) AS first_n
FROM tx
"""
FRESHNESS_SQL = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM ingested_at - kafka_timestamp)) AS q,
       max(extract(epoch FROM ingested_at - kafka_timestamp)) AS worst
FROM scout.bronze_transactions_raw
"""


def payload(i: int) -> bytes:
    """A POS transaction as in CONTRACTS §2.1 (~450 bytes), unique per ``i``."""
    store = i % 200
    return orjson.dumps(
        {
            "schema": "pos.transaction/1",
            "event_id": f"T{store:04d}-{i:09d}",
            "store_id": f"S{store:04d}",
            "terminal_id": f"T{store:04d}-{i % 3 + 1}",
            "occurred_at": "2026-11-25T10:15:00+08:00",
            "currency": "PHP",
            "total_amount": 125.50 + i % 100,
            "payment_method": ("cash", "card", "gcash")[i % 3],
            "customer": {"id": f"C-{i % 50_000:05d}", "type": "regular", "phone": "+639171234567"},
            "items": [
                {"sku": f"P-{1000 + i % 400}", "qty": 2, "unit_price": 20.00},
                {"sku": f"P-{2000 + i % 300}", "qty": 1, "unit_price": 85.50},
            ],
            "campaign_id": None,
            "version": 1,
        }
    )


def record_time(timestamp_s: float) -> datetime:
    """The Kafka record time as bronze stores it (the bench's records all carry one)."""
    return datetime.fromtimestamp(timestamp_s, UTC)


@dataclass
class Scenario:
    """A fresh database and topic prefix for one measurement."""

    settings: Settings
    admin_url: str
    db_name: str

    @property
    def url(self) -> str:
        return self.settings.database_url.get_secret_value()

    @property
    def topic(self) -> str:
        return f"{self.settings.topic_prefix}pos.transactions"


@contextlib.asynccontextmanager
async def scenario(base: Settings, label: str, state_dir: Path) -> AsyncIterator[Scenario]:
    admin_url = base.database_url.get_secret_value()
    name = f"scout_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{admin_url.rpartition('/')[0]}/{name}"
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        settings = base.model_copy(
            update={
                "database_url": SecretStr(url),
                "topic_prefix": f"bench{uuid.uuid4().hex[:8]}.",
                "state_dir": state_dir / name,
            }
        )
        await create_topics(settings)
        try:
            yield Scenario(settings, admin_url, name)
        finally:
            await delete_topics_with_prefix(settings, settings.topic_prefix)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def publish(
    s: Scenario, n: int, *, rate: float = 0, encode: Callable[[bytes], bytes] | None = None
) -> float:
    """Publish ``n`` payloads (paced when ``rate`` > 0, re-encoded by ``encode``); returns
    records/s achieved."""
    producer = make_producer(s.settings)
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for i in range(n):
            value = payload(i) if encode is None else encode(payload(i))
            pending.append(await producer.send(s.topic, value, key=b"S%04d" % (i % 200)))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0 and i % 50 == 49:
                ahead = (i + 1) / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n / (time.monotonic() - started)


@dataclass(frozen=True)
class Landed:
    rows: int
    transactions: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


async def landed(url: str) -> Landed:
    """Rows after the first transaction / time from the first to the last transaction."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(RATE_SQL)
    finally:
        await conn.close()
    seconds = (row["last"] - row["first"]).total_seconds()
    return Landed(int(row["total"] - row["first_n"]), int(row["transactions"]), seconds)


async def wait_rows(url: str, n: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    conn = await asyncpg.connect(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") >= n:
                return
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise TimeoutError(f"{n} rows not landed in {timeout}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    s: Scenario,
    module_args: list[str],
    log: Path,
    tree: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m module_args`` on the scenario; of another source ``tree``'s services if
    given (bench/chain.py's base variant), with the settings ``extra`` on top."""
    port = free_port()
    env = service_env(s, port, tree) | dict(extra or {})
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *module_args], env=env, cwd=tree,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, port


def service_env(s: Scenario, port: int, tree: Path | None = None) -> dict[str, str]:
    """The environment of a ``scout`` process on the scenario (web port ``port``; the
    services of source ``tree`` first on the path, if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOUT_")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    env |= {
        # A local benchmark: dev said explicitly (the default environment is prod, where silver
        # refuses to start without a real key).
        "SCOUT_ENV": "dev",
        "SCOUT_KAFKA_BOOTSTRAP": s.settings.kafka_bootstrap,
        "SCOUT_DATABASE_URL": s.url,
        "SCOUT_TOPIC_PREFIX": s.settings.topic_prefix,
        "SCOUT_STATE_DIR": str(s.settings.state_dir),
        "SCOUT_WEB_PORT": str(port),
        "SCOUT_LOG_LEVEL": "WARNING",
        "SCOUT_LOG_FORMAT": "text",
    }
    if s.settings.schema_registry_url:
        env["SCOUT_SCHEMA_REGISTRY_URL"] = s.settings.schema_registry_url
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


async def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            http_get(port, "/ready")
            return
        await asyncio.sleep(0.3)
    raise TimeoutError("worker not ready")


# --- the three ways to land records ---------------------------------------------------------


async def run_writer(
    s: Scenario, n: int, logs: Path, profile: Path | None = None, faust_config: str = "",
    encode: Callable[[bytes], bytes] | None = None,
) -> Landed:  # fmt: skip
    """(a) ``scout run bronze`` on ``n`` records already in the topic (optionally sampled by
    py-spy into ``profile``, collapsed stacks; re-encoded by ``encode``)."""
    await publish(s, n, encode=encode)
    command = ["services.cli", "run", "bronze"]
    if faust_config:
        os.environ["BENCH_FAUST_CONFIG"] = faust_config
        command = ["bench.tuned_bronze_writer"]
    proc, _ = start(s, command, logs / "bronze.log")
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(proc.pid),
             "--format", "raw", "--rate", "50", "--nonblocking", "-o", str(profile)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        await wait_rows(s.url, n, timeout=900, proc=proc)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop(proc)
    return await landed(s.url)


async def run_naive(s: Scenario, n: int, logs: Path) -> Landed:
    """(b) the naive Faust agent, one INSERT per record."""
    await publish(s, n)
    proc, _ = start(s, ["bench.naive_bronze_agent"], logs / "naive.log")
    try:
        await wait_rows(s.url, n, timeout=900, proc=proc)
    finally:
        stop(proc)
    return await landed(s.url)


async def run_raw(s: Scenario, n: int, batch: int = 5000) -> Landed:
    """(c) aiokafka ``getmany`` + COPY, no framework, same per-record work as bronze."""
    await publish(s, n)
    await consume_raw(s, n, batch)
    return await landed(s.url)


async def consume_raw(s: Scenario, n: int, batch: int = 5000) -> float:
    """The loop of (c) over ``n`` records already in the topic; returns its seconds. Records
    that are not JSON objects are skipped (bronze's error log is not the limit's work)."""
    consumer = AIOKafkaConsumer(
        s.topic,
        bootstrap_servers=s.settings.kafka_bootstrap,
        group_id=f"{s.settings.topic_prefix}raw",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    conn = await asyncpg.connect(
        s.url, server_settings={"role": s.settings.db_role_bronze, "timezone": "UTC"}
    )
    started = time.monotonic()
    await consumer.start()
    try:
        done = 0
        while done < n:
            fetched = await consumer.getmany(timeout_ms=200, max_records=batch)
            records = []
            for messages in fetched.values():
                done += len(messages)
                for m in messages:
                    try:
                        value = orjson.loads(m.value)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(value, dict):
                        continue
                    kafka = KafkaCoordinates(
                        m.topic, m.partition, m.offset, record_time(m.timestamp / 1000)
                    )
                    records.append((bronze_id(kafka, 0), m.value.decode(), "pos",
                                    value.get("schema"), None, 0, m.topic, m.partition,
                                    m.offset, kafka.timestamp))  # fmt: skip
            if not records:
                continue
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bronze_transactions_raw", schema_name="scout", records=records,
                    columns=RAW_COLUMNS,
                )  # fmt: skip
            await consumer.commit()
    finally:
        await consumer.stop()
        await conn.close()
    return time.monotonic() - started


async def run_writer_code_raw(s: Scenario, n: int, batch: int = 5000) -> Landed:
    """(a') the writer's own code (``land``, ``BronzeRepo.write``, the silver handoff, per-row
    metrics) driven by a raw aiokafka consumer instead of Faust: what (a) would reach if
    only the Faust per-event path were replaced."""
    await publish(s, n)
    settings = s.settings
    writer = BronzeWriter.__new__(BronzeWriter)  # no Faust app: only the batch methods
    writer.repo = BronzeRepo()
    writer.max_bytes = settings.max_record_bytes
    producer = make_producer(settings, linger_ms=5)  # as Faust's producer_linger_ms
    conn = await asyncpg.connect(
        s.url, server_settings={"role": settings.db_role_bronze, "timezone": "UTC"}
    )
    consumer = AIOKafkaConsumer(
        s.topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_prefix}rawcode",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    landed_topic = f"{settings.topic_prefix}internal.bronze-landed"
    await producer.start()
    await consumer.start()
    try:
        done = 0
        while done < n:
            fetched = await consumer.getmany(timeout_ms=200, max_records=batch)
            landing = Landing()
            for messages in fetched.values():
                for m in messages:
                    kafka = KafkaCoordinates(
                        m.topic, m.partition, m.offset, record_time(m.timestamp / 1000)
                    )
                    landing.extend(land(m.value, "pos", kafka, writer.max_bytes))
            if not landing.rows:
                continue
            result = await writer.repo.write(conn, landing)
            writer._observe(result)
            sent = [
                await producer.send(landed_topic, payload)
                for payload in encode_landed(row.landed() for row in result.landed)
            ]
            await asyncio.gather(*sent)
            await consumer.commit()
            done += len(result.landed)
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
    return await landed(s.url)


@dataclass(frozen=True)
class Freshness:
    rate: float
    records: int
    table_p50: float
    table_p99: float
    table_max: float
    metric_p99: float  # histogram_quantile over scout_freshness_seconds


async def run_freshness(s: Scenario, rate: float, seconds: float, logs: Path) -> Freshness:
    """The writer fed at ``rate`` records/s: Kafka record time → row in PostgreSQL."""
    proc, port = start(s, ["services.cli", "run", "bronze"], logs / "fresh.log")
    try:
        await wait_ready(port, proc)
        n = int(rate * seconds)
        achieved = await publish(s, n, rate=rate)
        await wait_rows(s.url, n, timeout=120, proc=proc)
        await asyncio.sleep(1)  # the last batch's metrics are observed right after commit
        metric_p99 = histogram_quantile(0.99, http_get(port, "/metrics"))
    finally:
        stop(proc)
    conn = await asyncpg.connect(s.url)
    try:
        row = await conn.fetchrow(FRESHNESS_SQL)
    finally:
        await conn.close()
    return Freshness(achieved, n, row["q"][0], row["q"][1], float(row["worst"]), metric_p99)


def histogram_quantile(q: float, metrics: str) -> float:
    """Prometheus' histogram_quantile for bronze's scout_freshness_seconds."""
    buckets = []
    for line in metrics.splitlines():
        if line.startswith("scout_freshness_seconds_bucket{") and 'layer="bronze"' in line:
            head, _, value = line.rpartition(" ")
            le = head.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(value)))
    buckets.sort()
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return float("nan")


# --- driver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    writer: Landed
    naive: Landed
    raw: Landed
    code_raw: Landed
    fresh: Freshness
    load: tuple[float, float]  # 1-minute load average at the start and the end of the run


async def only_writer(base: Settings, args: argparse.Namespace, work: Path) -> None:
    """``--only-writer``: just (a), e.g. to profile it with ``--profile``."""
    async with scenario(base, "a", work) as s:
        writer = await run_writer(s, args.records, work, args.profile, args.faust_config)
    print(f"(a) bronze writer: {writer.rate:,.0f} rec/s in {writer.transactions} transactions")


async def one_run(base: Settings, args: argparse.Namespace, work: Path) -> Run:
    load_before = os.getloadavg()[0]
    async with scenario(base, "c", work) as s:
        raw = await run_raw(s, args.records)
    print(f"  (c) raw getmany+COPY: {raw.rate:,.0f} rec/s", flush=True)
    async with scenario(base, "a", work) as s:
        writer = await run_writer(s, args.records, work)
    print(f"  (a) bronze writer:    {writer.rate:,.0f} rec/s", flush=True)
    async with scenario(base, "d", work) as s:
        code_raw = await run_writer_code_raw(s, args.records)
    print(f"  (a') writer code, raw aiokafka: {code_raw.rate:,.0f} rec/s", flush=True)
    async with scenario(base, "b", work) as s:
        naive = await run_naive(s, args.naive_records, work)
    print(f"  (b) naive Faust:      {naive.rate:,.0f} rec/s", flush=True)
    async with scenario(base, "f", work) as s:
        fresh = await run_freshness(s, args.fresh_rate, args.fresh_seconds, work)
    print(f"  freshness p99: {fresh.table_p99:.3f} s (table), {fresh.metric_p99:.3f} s (metric)")
    return Run(writer, naive, raw, code_raw, fresh, (load_before, os.getloadavg()[0]))


async def encoder(s: Scenario, fmt: str) -> Callable[[bytes], bytes] | None:
    """Registers Scout's schemas for the scenario's topics; returns the framing of ``fmt``."""
    if fmt == "json":
        return None
    client = registry.client(s.settings.registry_url())
    try:
        outcomes = await registered_schemas.register_all(
            client, registered_schemas.published(topics_for(s.settings))
        )
    finally:
        await client.aclose()
    schema_type = registry.FORMATS[fmt]
    subject = registry.subject(s.topic, "pos.transaction/1", schema_type)
    schema_id = next(o.schema_id for o in outcomes if o.subject == subject)
    assert schema_id is not None, outcomes
    if schema_type == registry.JSON_SCHEMA:
        return lambda value: registry.frame(schema_id, value)
    parsed = fastavro.parse_schema(
        orjson.loads(registered_schemas.schema_text("pos.transaction/1", registry.AVRO))
    )

    def avro(value: bytes) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, orjson.loads(value))
        return registry.frame(schema_id, out.getvalue())

    return avro


async def run_formats(base: Settings, args: argparse.Namespace, work: Path) -> list[str]:
    """The writer on plain JSON, JSON Schema frames and Avro frames, same payloads."""
    rows = []
    for run in range(1, args.runs + 1):
        for fmt in ("json", "json-sr", "avro"):
            load_before = os.getloadavg()[0]
            async with scenario(base, fmt.replace("-", ""), work) as s:
                landed_ = await run_writer(s, args.records, work, encode=await encoder(s, fmt))
            load = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
            print(f"  run {run} {fmt:<8} {landed_.rate:,.0f} rec/s (load {load})", flush=True)
            rows.append((run, fmt, landed_.rate, landed_.transactions, load))
    plain = {run: rate for run, fmt, rate, _, _ in rows if fmt == "json"}
    lines = [
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `python -m bench.bronze {' '.join(sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores; Kafka, PostgreSQL and the registry on the same machine.",
        "",
        "| run | format | writer rec/s | vs plain JSON | batches | load 1m start/end |",
        "|---|---|---|---|---|---|",
    ]
    for run, fmt, rate, batches, load in rows:
        lines.append(f"| {run} | {fmt} | {rate:,.0f} | {rate / plain[run]:.2f} | {batches} "
                     f"| {load} |")  # fmt: skip
    return lines


def landing_cost(records: int = 20_000, rounds: int = 3) -> list[str]:
    """µs per record of bronze's pure landing step, per format (writer schemas preset)."""
    avro = fastavro.parse_schema(
        orjson.loads(registered_schemas.schema_text("pos.transaction/1", registry.AVRO))
    )
    decoder = FrameDecoder("http://unused")
    decoder._writers[3] = _Writer(registry.JSON_SCHEMA, "pos.transaction/1", None)
    decoder._writers[4] = _Writer(registry.AVRO, "pos.transaction/1", avro)

    def avro_frame(value: bytes) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, avro, orjson.loads(value))
        return registry.frame(4, out.getvalue())

    plain = [payload(i) for i in range(records)]
    sets = {"json": plain, "json-sr": [registry.frame(3, v) for v in plain],
            "avro": [avro_frame(v) for v in plain]}  # fmt: skip
    kafka = KafkaCoordinates("bench", 0, 1, datetime.now(UTC))
    costs: dict[str, list[float]] = {name: [] for name in sets}
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for name, values in sets.items():
            started = time.perf_counter()
            for value in values:
                unframed = decoder.unframe(value) if registry.is_framed(value) else None
                row = land(value, "pos", kafka, 1 << 20, unframed).rows[0]
                row.as_copy_record()
                row.landed().encode()
            costs[name].append((time.perf_counter() - started) / records * 1e6)
    lines = [f"load 1m {load:.1f}/{os.getloadavg()[0]:.1f}", "",
             "| format | µs/record min | median |", "|---|---|---|"]  # fmt: skip
    for name, timings in costs.items():
        lines.append(f"| {name} | {min(timings):.0f} | {statistics.median(timings):.0f} |")
    return lines


def report(runs: list[Run], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} cores; Kafka and PostgreSQL on the same machine.",
        "",
        "| run | (a) writer rec/s | (b) naive rec/s | (c) raw limit rec/s | (a)/(b) | (a)/(c) "
        "| (a) batches | (a') writer code w/o Faust rec/s "
        "| p50 fresh s | p99 fresh s (table) | p99 fresh s (metric) | load 1m start/end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r.writer.rate:,.0f} | {r.naive.rate:,.0f} | {r.raw.rate:,.0f} "
            f"| {r.writer.rate / r.naive.rate:.1f}x | {r.writer.rate / r.raw.rate:.2f} "
            f"| {r.writer.transactions} | {r.code_raw.rate:,.0f} "
            f"| {r.fresh.table_p50:.3f} | {r.fresh.table_p99:.3f} "
            f"| {r.fresh.metric_p99:.3f} | {r.load[0]:.1f}/{r.load[1]:.1f} |"
        )

    def med(values: list[float]) -> float:
        return statistics.median(values)

    a = med([r.writer.rate for r in runs])
    b = med([r.naive.rate for r in runs])
    c = med([r.raw.rate for r in runs])
    lines.append(
        f"| **median** | **{a:,.0f}** | **{b:,.0f}** | **{c:,.0f}** | **{a / b:.1f}x** "
        f"| **{a / c:.2f}** | | {med([r.code_raw.rate for r in runs]):,.0f} "
        f"| {med([r.fresh.table_p50 for r in runs]):.3f} "
        f"| **{med([r.fresh.table_p99 for r in runs]):.3f}** "
        f"| **{med([r.fresh.metric_p99 for r in runs]):.3f}** | |"
    )
    lines += [
        "",
        f"(a) and (c) over {args.records:,} records, (b) over {args.naive_records:,}; freshness "
        f"at {args.fresh_rate:,.0f} records/s for {args.fresh_seconds:.0f} s "
        f"(achieved {med([r.fresh.rate for r in runs]):,.0f}/s).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--naive-records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh-rate", type=float, default=2000.0)
    parser.add_argument("--fresh-seconds", type=float, default=30.0)
    parser.add_argument("--only-writer", action="store_true", help="measure (a) only")
    parser.add_argument("--profile", type=Path, help="with --only-writer: py-spy output file")
    parser.add_argument(
        "--faust-config", default="", help="with --only-writer: JSON of Faust settings to try"
    )
    parser.add_argument(
        "--formats", action="store_true", help="the writer on plain JSON, JSON Schema, Avro"
    )
    parser.add_argument(
        "--landing-cost", action="store_true", help="µs/record of the landing step per format"
    )
    args = parser.parse_args()
    if args.landing_cost:
        print("\n".join(landing_cost()))
        return
    base = load_settings(log_level="WARNING")
    command = "python -m bench.bronze " + " ".join(sys.argv[1:])
    runs = []
    if args.only_writer:
        with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
            asyncio.run(only_writer(base, args, Path(tmp)))
        return
    if args.formats:
        with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
            print("\n".join(asyncio.run(run_formats(base, args, Path(tmp)))))
        return
    with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", flush=True)
            runs.append(asyncio.run(one_run(base, args, Path(tmp))))
    print()
    print(report(runs, args, command))


if __name__ == "__main__":
    main()
