"""``scout demo``: the whole pipeline on the local stack, with a live view of every layer.

Brings the stack up (unless SCOUT_KAFKA_BOOTSTRAP / SCOUT_DATABASE_URL name existing
services), migrates, starts every service and the simulator (with faults), and shows each
layer filling: records, rate, lag, freshness, quality, quarantine by rule. With
``--duration`` it stops by itself once the pipeline has drained and prints where every
published record ended up. Ctrl-C stops the services and the simulator cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.common.db import connect
from services.common.kafka import create_topics
from services.common.migrations import migrate
from services.common.settings import Settings
from services.devstack import stack
from services.runner import available_services

DRAIN_TIMEOUT_S = 120.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the local stack with simulated traffic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=int, default=500, help="simulated records/s (500)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of traffic, then drain, summarise and stop")  # fmt: skip
    parser.add_argument("--faults", type=float, default=0.05, help="faulty share (0.05)")
    parser.add_argument(
        "--seed", type=int, default=None,
        help="simulator seed (default: a new one each run; the same seed in the same hour "
        "re-sends identical events, which silver de-duplicates)",
    )  # fmt: skip
    parser.add_argument("--stores", type=int, default=30)
    parser.add_argument("--days", type=int, default=0, help="days of history to backfill first")
    parser.add_argument("--port-base", type=int, default=6066,
                        help="web port of the first service; the others follow")  # fmt: skip
    parser.set_defaults(func=_demo)


@dataclass
class Demo:
    settings: Settings
    env: dict[str, str]
    ports: dict[str, int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path = Path(".")

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - child keeps it
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                print(f"demo: {name} did not stop in time; killing it", file=sys.stderr)
                proc.kill()

    def metrics(self, service: str) -> dict[str, float]:
        """Metric samples of a service, summed over labels other than layer."""
        try:
            url = f"http://127.0.0.1:{self.ports[service]}/metrics"
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            head, value = line.rsplit(" ", 1)
            name = head.split("{", 1)[0]
            samples[name] = samples.get(name, 0.0) + float(value)
            if 'le="1.0"' in head or 'le="5.0"' in head:
                samples[f"{name}@{head.split('le=')[1][1:-2]}"] = float(value)
        return samples


VIEW_QUERY = """
SELECT
  (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze,
  (SELECT count(*) FROM scout.bronze_error_log) AS errors,
  (SELECT count(*) FROM scout.silver_lineage) AS silver_seen,
  (SELECT count(*) FROM scout.silver_transactions_cleaned) AS silver,
  (SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL) AS quarantined,
  (SELECT count(*) FROM scout.gold_business_metrics) AS gold,
  (SELECT coalesce(sum(transaction_count), 0)::bigint FROM scout.gold_business_metrics) AS gold_tx,
  (SELECT count(*) FROM scout.gold_silver_changes) AS gold_pending
"""
RULES_QUERY = """
SELECT rule, count(*) AS n FROM scout.silver_quarantine WHERE resolved_at IS NULL
GROUP BY rule ORDER BY n DESC
"""


def _ratio(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "   - "


def render(counts: asyncpg.Record, rules: list[asyncpg.Record], rates: dict[str, float],
           demo: Demo) -> str:  # fmt: skip
    lines = [f"scout demo — {time.strftime('%H:%M:%S')}   (Ctrl-C stops)", ""]
    lines.append(f"{'layer':<8} {'rows':>10} {'rate/s':>9} {'lag':>8} {'fresh<1s':>9} "
                 f"{'fresh<5s':>9} {'quality':>8}")  # fmt: skip
    for layer, rows in (("bronze", counts["bronze"]), ("silver", counts["silver"]),
                        ("gold", counts["gold_tx"])):  # fmt: skip
        m = demo.metrics(layer)
        total = m.get("scout_freshness_seconds_count", 0.0)
        under_1s = m.get("scout_freshness_seconds_bucket@1.0", 0.0)
        under_5s = m.get("scout_freshness_seconds_bucket@5.0", 0.0)
        quality = (
            _ratio(counts["bronze"], counts["bronze"] + counts["errors"]) if layer == "bronze"
            else _ratio(counts["silver_seen"] - counts["quarantined"], counts["silver_seen"])
            if layer == "silver" else ("pending" if counts["gold_pending"] else "exact")
        )  # fmt: skip
        lines.append(f"{layer:<8} {rows:>10,} {rates.get(layer, 0):>9,.0f} "
                     f"{m.get('scout_consumer_lag', 0):>8,.0f} {_ratio(under_1s, total):>9} "
                     f"{_ratio(under_5s, total):>9} {quality:>8}")  # fmt: skip
    lines.append(f"\nbronze error log: {counts['errors']:,}   silver quarantine (open): "
                 f"{counts['quarantined']:,}   gold groups: {counts['gold']:,}")  # fmt: skip
    if rules:
        lines.append("quarantine by rule: " + ", ".join(f"{r['rule']} {r['n']}" for r in rules))
    return "\n".join(lines)


async def _watch(demo: Demo, conn: asyncpg.Connection, until: float | None) -> None:
    tty = sys.stdout.isatty()
    previous: dict[str, int] = {}
    last = time.monotonic()
    sim = demo.procs.get("simulate")
    drained_since: float | None = None
    while True:
        await asyncio.sleep(1.0)
        counts = await conn.fetchrow(VIEW_QUERY)
        rules = await conn.fetch(RULES_QUERY)
        now = time.monotonic()
        current = {"bronze": counts["bronze"], "silver": counts["silver_seen"],
                   "gold": counts["gold_tx"]}  # fmt: skip
        rates = {k: (v - previous.get(k, v)) / (now - last) for k, v in current.items()}
        previous, last = current, now
        view = render(counts, rules, rates, demo)
        print("\x1b[2J\x1b[H" + view if tty else view + "\n", flush=True)
        if until is None:
            continue
        settled = (
            sim is not None and sim.poll() is not None
            and counts["bronze"] == counts["silver_seen"] and counts["gold_pending"] == 0
            and counts["gold_tx"] == counts["silver"]
        )  # fmt: skip
        drained_since = (drained_since or now) if settled else None
        if drained_since is not None and now - drained_since >= 3:
            return
        if now > until + DRAIN_TIMEOUT_S:
            print("demo: the pipeline did not drain in time", file=sys.stderr)
            return


RUN_QUERY = """
SELECT
  (SELECT count(*) FROM scout.bronze_transactions_raw WHERE ingested_at >= $1) AS bronze,
  (SELECT count(*) FROM scout.bronze_error_log WHERE logged_at >= $1) AS errors,
  (SELECT count(*) FROM scout.silver_transactions_cleaned WHERE created_at >= $1) AS silver,
  (SELECT count(*) FROM scout.gold_business_metrics WHERE updated_at >= $1) AS gold,
  (SELECT coalesce(sum(transaction_count), 0)::bigint FROM scout.gold_business_metrics) AS gold_tx,
  (SELECT count(*) FROM scout.silver_transactions_cleaned) AS silver_all
"""


async def summary(conn: asyncpg.Connection, manifest: dict[str, Any], since: datetime) -> str:
    """Where the records of this run ended up, next to what the simulator says it sent."""
    expected = manifest.get("expected", {})
    counts = await conn.fetchrow(RUN_QUERY, since)
    targets = await conn.fetch(
        "SELECT l.target, count(*) AS n FROM scout.silver_lineage l "
        "JOIN scout.bronze_transactions_raw b ON b.id = l.bronze_id "
        "WHERE b.ingested_at >= $1 GROUP BY l.target ORDER BY l.target", since)  # fmt: skip
    rules = await conn.fetch(
        "SELECT rule, count(*) FILTER (WHERE resolved_at IS NULL) AS open, "
        "count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved "
        "FROM scout.silver_quarantine WHERE quarantined_at >= $1 GROUP BY rule ORDER BY rule",
        since,
    )
    lines = ["", "Where every record of this run ended up", ""]
    lines.append(f"published: {manifest.get('sent', 0):,} Kafka records (simulator manifest)")
    lines.append(f"  bronze rows            {counts['bronze']:>9,}  "
                 f"(expected {expected.get('bronze_transactions_raw', '?')})")  # fmt: skip
    lines.append(f"  bronze error log       {counts['errors']:>9,}  "
                 f"(expected {expected.get('bronze_error_log', '?')})")  # fmt: skip
    for r in targets:
        lines.append(f"    → {r['target']:<28} {r['n']:>9,}")
    for r in rules:
        lines.append(f"        quarantine {r['rule']:<20} open {r['open']:>6,}  "
                     f"resolved later {r['resolved']:>6,}")  # fmt: skip
    lines.append(f"  new silver transactions {counts['silver']:>8,}  "
                 f"(expected {expected.get('silver_transactions_cleaned', '?')}; "
                 "duplicates and corrections folded)")  # fmt: skip
    balanced = "equal" if counts["gold_tx"] == counts["silver_all"] else "NOT equal"
    lines.append(f"  gold store-days updated {counts['gold']:>8,}; gold covers "
                 f"{counts['gold_tx']:,} transactions, silver holds {counts['silver_all']:,} "
                 f"({balanced})")  # fmt: skip
    return "\n".join(lines)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    started_stack = [c.name for c, started in stack.up(settings) if started]
    env = {k: v for k, v in os.environ.items()}
    env |= stack.exports(settings)  # SCOUT_ENV=dev and each service's own login
    run_settings = settings.model_copy(update={"kafka_bootstrap": env["SCOUT_KAFKA_BOOTSTRAP"]})
    run_settings = Settings(
        **{**run_settings.model_dump(), "database_url": env["SCOUT_DATABASE_URL"]}
    )

    async def prepare() -> None:
        conn = await connect(run_settings, attempts=20)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        await create_topics(run_settings)

    asyncio.run(prepare())
    services = available_services()
    ports = {name: args.port_base + i for i, name in enumerate(("bronze", "silver", "gold",
                                                                "platinum"))}  # fmt: skip
    log_dir = settings.state_dir / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(run_settings, env, ports, log_dir=log_dir)
    manifest = log_dir / "manifest.json"
    manifest.unlink(missing_ok=True)
    run_started = datetime.now(UTC)
    try:
        for name in services:
            demo.start(name, ["run", name], env | {"SCOUT_WEB_PORT": str(ports[name])})
        time.sleep(8)  # let the workers join their groups before traffic starts
        duration = args.duration if args.duration is not None else 365 * 86400
        demo.start("simulate", [
            "simulate", "--rate", str(args.rate), "--duration", str(duration), "--faults",
            str(args.faults), "--stores", str(args.stores), "--days", str(args.days),
            "--manifest", str(manifest),
            *(["--seed", str(args.seed)] if args.seed is not None else []),
        ], env)  # fmt: skip
        print(f"demo: services {', '.join(services)}; logs in {log_dir}", flush=True)

        async def watch() -> str:
            conn = await connect(run_settings, attempts=5)
            try:
                until = None if args.duration is None else time.monotonic() + args.duration
                await _watch(demo, conn, until)
                sent = json.loads(manifest.read_text()) if manifest.exists() else {}
                return await summary(conn, sent, run_started)
            finally:
                await conn.close()

        print(asyncio.run(watch()))
        return 0
    except KeyboardInterrupt:
        print("\ndemo: stopping …", file=sys.stderr)
        return 130
    finally:
        demo.stop()
        if started_stack:
            print(f"demo: the local stack ({', '.join(started_stack)}) keeps running; "
                  "`scout dev down` stops it")  # fmt: skip
