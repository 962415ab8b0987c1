"""Helpers shared by ``bench/silver.py`` and ``bench/gold.py``.

Fresh databases, topic prefixes and worker processes come from ``bench/bronze.py`` (its
``scenario``, ``start``, ``stop``, ``wait_ready``); this module adds what the layers after
bronze need: simulated traffic (the simulator's generator and publisher, not the CLI),
master data loaded before a measurement, rates measured from per-transaction timestamps in
PostgreSQL, and Prometheus histograms read from a worker's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench.bronze import http_get
from services.common.events import ProductRecord, StoreRecord, parse_master
from services.common.kafka import make_producer, topics_for
from services.common.settings import Settings
from services.silver_enricher import repo as silver_repo
from services.simulator import records as r
from services.simulator.generator import SimConfig, TrafficGenerator
from services.simulator.manifest import Manifest
from services.simulator.publisher import CHUNK, Publisher

FAULTS = 0.02  # a small share of faulty records, as in production traffic


def topic_names(settings: Settings) -> dict[str, str]:
    t = topics_for(settings)
    return {r.POS: t.pos, r.API: t.api, r.IOT: t.iot, r.STORES: t.master_stores,
            r.PRODUCTS: t.master_products}  # fmt: skip


def generator(seed: int, rate: float, faults: float = FAULTS) -> TrafficGenerator:
    """The simulator's generator, its clock starting now (so no record is "future")."""
    return TrafficGenerator(
        SimConfig(seed=seed, start=datetime.now(UTC), rate=rate, faults=faults, stores=50)
    )


def masters(gen: TrafficGenerator) -> tuple[dict[str, StoreRecord], dict[str, ProductRecord]]:
    """The generator's stores and products, by key (the last record of a key wins)."""
    stores: dict[str, StoreRecord] = {}
    products: dict[str, ProductRecord] = {}
    for record in gen.masters():
        parsed = parse_master(record.value)
        if isinstance(parsed, StoreRecord):
            stores[parsed.store_id] = parsed
        elif isinstance(parsed, ProductRecord):
            products[parsed.sku] = parsed
    return stores, products


async def load_masters(url: str, gen: TrafficGenerator) -> None:
    """Put the generator's stores and products in silver before a measurement, so no
    record waits in quarantine for master data that is merely late in the test set-up."""
    by_id, by_sku = masters(gen)
    stores, products = list(by_id.values()), list(by_sku.values())
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await silver_repo.upsert_stores(conn, stores)
            await silver_repo.upsert_products(conn, products)
    finally:
        await conn.close()


async def publish_all(
    settings: Settings,
    gen: TrafficGenerator,
    n: int,
    *,
    only: str | None = None,
    on_record: Callable[[r.SimRecord], None] | None = None,
) -> Manifest:
    """Master records, then ``n`` live records as fast as the producer takes them. ``only``:
    the live records of that topic only (e.g. ``r.POS``; the others are dropped
    unpublished) until ``n`` are sent. Each published live record is shown to ``on_record``."""
    producer = make_producer(settings)
    await producer.start()
    manifest = Manifest()
    try:
        publisher = Publisher(producer, topic_names(settings), manifest)
        await publisher.send_all(gen.masters())
        done = 0
        while done < n:
            if only is None:
                chunk = gen.live(min(CHUNK, n - done))
            else:
                chunk = [rec for rec in gen.live(CHUNK) if rec.topic == only][: n - done]
            await publisher.send(chunk)
            if on_record is not None:
                for rec in chunk:
                    on_record(rec)
            done += len(chunk)
        await publisher.drain()
    finally:
        await producer.stop()
    return manifest


async def count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def wait_count(
    url: str,
    sql: str,
    n: int,
    *,
    timeout: float,
    procs: Sequence[subprocess.Popen[bytes]] = (),
    interval: float = 0.5,
) -> float:
    """Poll ``sql`` until it returns at least ``n``; returns the seconds waited."""
    conn = await asyncpg.connect(url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if int(await conn.fetchval(sql)) >= n:
                return time.monotonic() - started
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}")
            await asyncio.sleep(interval)
    finally:
        await conn.close()
    raise TimeoutError(f"{sql!r} did not reach {n} in {timeout}s")


@dataclass(frozen=True)
class TxRate:
    """Rows stamped by per-transaction ``now()`` defaults: rows after the first transaction
    over the time from the first to the last transaction (free of start-up and polling)."""

    rows: int
    transactions: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


async def tx_rate(url: str, table: str, column: str) -> TxRate:
    sql = f"""
    WITH tx AS (SELECT {column} AS t, count(*) AS n FROM {table} GROUP BY {column})
    SELECT sum(n) AS total, count(*) AS transactions, min(t) AS first, max(t) AS last,
           (SELECT n FROM tx ORDER BY t LIMIT 1) AS first_n
    FROM tx
    """
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(sql)
    finally:
        await conn.close()
    return TxRate(int(row["total"] - row["first_n"]), int(row["transactions"]),
                  (row["last"] - row["first"]).total_seconds())  # fmt: skip


# --- Prometheus histograms -----------------------------------------------------------------


def histogram(metrics: str, name: str, **labels: str) -> dict[float, float]:
    """Cumulative bucket counts of one histogram series: ``le`` → count."""
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        if not line.startswith(f"{name}_bucket{{"):
            continue
        head, _, value = line.rpartition(" ")
        if not all(f'{k}="{v}"' in head for k, v in labels.items()):
            continue
        le = head.split('le="', 1)[1].split('"', 1)[0]
        buckets[float(le)] = buckets.get(float(le), 0.0) + float(value)
    return buckets


def scrape_histogram(port: int, name: str, **labels: str) -> dict[float, float]:
    return histogram(http_get(port, "/metrics"), name, **labels)


def delta(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {le: n - before.get(le, 0.0) for le, n in after.items()}


def quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' ``histogram_quantile`` (linear inside the bucket)."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return float("nan")
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, n in ordered:
        if n >= rank:
            if bound == float("inf"):
                return lower_bound
            if n == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (n - lower_count)
        lower_bound, lower_count = bound, n
    return float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process on this machine, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load1() -> float:
    return os.getloadavg()[0]
