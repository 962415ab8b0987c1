"""Gold with 1 and 2 replicas at the same silver input, and CPU per record per stage (not a
test).

Per round and replica count, on a fresh database and topic prefix: the simulator's traffic
(``--records``, 2 % faults) is published as a backlog; ``scout run bronze`` and ``scout run
silver`` land it while gold is stopped, so every round hands gold the same silver changes
(waiting in ``gold_silver_changes``). Then ``--gold`` replicas of ``scout run gold`` start
and the script times how long they take to apply every change (the catch-up rate gold
sustains at that replica count). CPU is read from /proc for the script's own worker
processes and for the PostgreSQL backends whose client is one of them (``ss``), so other
processes on a shared machine are not counted.

    .venv/bin/python -m bench.scale [--records 60000] [--gold 1,2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bronze import Scenario, http_get, scenario, start, stop, wait_ready
from bench.common import count, generator, load1, load_masters, median, publish_all, wait_count
from bench.cpu_share import Cpu
from services.common.settings import load_settings
from services.gold_aggregator.shards import SHARDS

WAITING = "SELECT count(*) FROM scout.gold_silver_changes"
SILVER_TX = "SELECT count(*) FROM scout.silver_transactions_cleaned"
LINEAGE = "SELECT count(*) FROM scout.silver_lineage"


@dataclass(frozen=True)
class Round:
    gold: int
    records: int  # published
    transactions: int  # in silver
    changes: int  # waiting for gold when it started
    landed_s: float  # bronze + silver over the backlog
    gold_s: float  # gold replicas over the changes, from the first replica ready
    settled_changes: int  # changes still waiting once every replica owned shards
    settled_s: float  # from then until none was left
    cpu_us: dict[str, float]  # per stage ("bronze", "pg<-silver", …): µs over its phase

    def per_record(self, stage: str) -> float:
        """µs of CPU per record of the stage's input (bronze, silver: published records;
        gold: silver transactions)."""
        n = self.transactions if "gold" in stage else self.records
        return self.cpu_us.get(stage, 0.0) / max(n, 1)


async def one_round(s: Scenario, gold: int, records: int, seed: int, logs: Path) -> Round:
    gen = generator(seed, rate=5000.0)
    await load_masters(s.url, gen)
    procs: list[subprocess.Popen[bytes]] = []
    cpu = Cpu()
    try:
        for service in ("bronze", "silver"):
            proc, port = start(s, ["services.cli", "run", service], logs / f"{service}.log")
            procs.append(proc)
            await wait_ready(port, proc, timeout=120)
            cpu.ready(proc.pid, service)
        started = time.monotonic()
        manifest = await publish_all(s.settings, gen, records)
        expected = manifest.expected()["bronze_transactions_raw"]
        await wait_count(s.url, LINEAGE, expected, timeout=900, procs=procs)
        landed_s = time.monotonic() - started
        used = cpu.us("bronze") | cpu.us("silver")
        changes = await count(s.url, WAITING)
        golds = []
        for i in range(gold):
            proc, port = start(s, ["services.cli", "run", "gold"], logs / f"gold-{i}.log")
            procs.append(proc)
            golds.append((proc, port))
        started = 0.0
        for proc, port in golds:
            await wait_ready(port, proc, timeout=120)
            cpu.ready(proc.pid, "gold")
            started = started or time.monotonic()  # the first replica ready starts the work
        # The group has settled when the replicas' shards add up to all of them, each some:
        # from then on the rate is the N-replica rate (before, a join's rebalance).
        while True:
            owned = [_owned(port) for _, port in golds]
            if sum(owned) == SHARDS and all(owned):
                break
            await asyncio.sleep(0.1)
        settled_at, settled_changes = time.monotonic(), await count(s.url, WAITING)
        await wait_count(s.url, f"SELECT (({WAITING}) = 0 AND ({SILVER_TX}) > 0)::int", 1,
                         timeout=900, procs=procs, interval=0.2)  # fmt: skip
        gold_s = time.monotonic() - started
        settled_s = time.monotonic() - settled_at
        used |= cpu.us("gold")
        transactions = await count(s.url, SILVER_TX)
    finally:
        for proc in procs:
            stop(proc)
    return Round(gold, records, transactions, changes, landed_s, gold_s, settled_changes,
                 settled_s, used)  # fmt: skip


def _owned(port: int) -> int:
    try:
        text = http_get(port, "/metrics")
    except OSError:  # a flush of a large backlog holds the worker's loop: ask again
        return 0
    for line in text.splitlines():
        if line.startswith("scout_gold_shards_owned "):
            return int(float(line.split()[1]))
    return 0


def report(rounds: list[Round], loads: tuple[float, float]) -> str:
    lines = [
        f"load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f}",
        "",
        "| gold replicas | records | silver tx | changes | bronze+silver s | gold s "
        "| gold tx/s | gold changes/s | changes/s once settled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in sorted({r.gold for r in rounds}):
        mine = [r for r in rounds if r.gold == k]
        gold_s = median([r.gold_s for r in mine])
        tx, ch = mine[0].transactions, mine[0].changes
        lines.append(
            f"| {k} | {mine[0].records:,} | {tx:,} | {ch:,} "
            f"| {median([r.landed_s for r in mine]):.1f} | {gold_s:.1f} "
            f"| {tx / gold_s:,.0f} | {ch / gold_s:,.0f} "
            f"| {median([r.settled_changes / max(r.settled_s, 1e-9) for r in mine]):,.0f} |"
        )
    stages = ["bronze", "pg<-bronze", "silver", "pg<-silver", "gold", "pg<-gold"]
    lines += ["", "CPU µs per record (bronze, silver: per published record; gold: per silver "
              "transaction; process and its PostgreSQL backends):", "",
              "| gold replicas | " + " | ".join(stages) + " |",
              "|---" * (len(stages) + 1) + "|"]  # fmt: skip
    for k in sorted({r.gold for r in rounds}):
        mine = [r for r in rounds if r.gold == k]
        cells = [f"{median([r.per_record(st) for r in mine]):.0f}" for st in stages]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    base = load_settings()
    before = load1()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.rounds):
            for gold in args.gold:  # interleaved: 1, 2, 1, 2 …
                async with scenario(base, f"scale{gold}", work) as s:
                    r = await one_round(s, gold, args.records, seed=100 + i, logs=work)
                print(f"round {i + 1}, {gold} gold: {r.transactions:,} tx, {r.changes:,} "
                      f"changes in {r.gold_s:.1f} s ({r.settled_changes:,} in the last "
                      f"{r.settled_s:.1f} s, once settled); bronze+silver {r.landed_s:.1f} s",
                      flush=True)  # fmt: skip
                rounds.append(r)
    print(report(rounds, (before, load1())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--gold", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
