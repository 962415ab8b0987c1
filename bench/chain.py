"""Catch-up throughput of the whole chain, bronze → silver → gold, against two baselines in
the same run (not a test; prints progress and a markdown table, appends it to
``bench/results/chain.md`` with ``--write``).

Per fault case (``--faults 0,0.05``) and round (``--rounds``), three variants, interleaved
(round 1: raw, quix, scout; round 2: quix, scout, raw; …), each on a fresh database
(migrated from scratch) and a fresh topic prefix holding the same backlog: ``--records``
POS transactions of the simulator's shape (its generator, the seed of the round, the fault
share of the case; master data loaded first), published before anything consumes it.

- ``raw``: the limit, one aiokafka ``getmany`` + COPY loop into bronze's table (this
  process; ``bench/bronze.py``'s ``consume_raw``);
- ``quix``: a plain Quix Streams chain, ``bench/quix_chain.py``: three processes (bronze
  insert, silver validate + dedup + upsert, gold per-store daily stateful reduce + upsert),
  batching ``PostgreSQLSink``s, in its own virtualenv (``--quix-python``; created from
  ``bench/quix-requirements.txt`` when missing);
- ``scout``: ``scout run bronze``, ``scout run silver``, ``scout run gold`` as three
  processes, until bronze holds every row, silver has processed every bronze row and holds
  every transaction, no silver change waits for gold and gold's counts add up to silver's;
  then ``scout gold verify`` (its exit status is recorded);
- ``base`` (with ``--base-tree DIR``): the same as ``scout``, with the services of another
  source tree (e.g. ``git worktree add DIR <commit>``): a change measured against the code
  before it in one run. It runs on this tree's schema (the scenario's migrations), so the
  comparison is fair only while the two trees' migrations agree.

Times run from the first process started to done (start-up included; stage times: when
each stage had landed its share). CPU is read from /proc for each variant's own processes
and for the PostgreSQL backends whose client is one of them (``ss``), from process start
(so start-up is included for every variant alike); PostgreSQL's background processes (WAL
writer, checkpointer, autovacuum) and Kafka are not attributed to anyone.

    .venv/bin/python -m bench.chain [--records 200000] [--rounds 3] [--faults 0,0.05] \\
        [--variants raw,quix,scout] [--base-tree DIR] [--write] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import quix_chain
from bench.bronze import Scenario, consume_raw, scenario, service_env, start, stop
from bench.common import generator, load1, load_masters, median, publish_all
from bench.cpu_share import Cpu
from services.common.events import StoreRecord, parse_master
from services.common.kafka import delete_topics_with_prefix
from services.common.settings import Settings, load_settings
from services.simulator import records as r

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results") / "chain.md"
QUIX_REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
VARIANTS = ("raw", "quix", "scout", "base")
STAGES = ("bronze", "silver", "gold")
SCOUT_PROGRESS = """
SELECT (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze,
       (SELECT count(*) FROM scout.silver_lineage) AS lineage,
       (SELECT count(*) FROM scout.silver_transactions_cleaned) AS silver,
       (SELECT coalesce(sum(transaction_count), 0) FROM scout.gold_business_metrics) AS gold,
       (SELECT count(*) FROM scout.gold_silver_changes) AS waiting
"""
QUIX_PROGRESS = f"""
SELECT ({quix_chain.COUNT_SQL["bronze"]}) AS bronze, ({quix_chain.COUNT_SQL["silver"]}) AS silver,
       ({quix_chain.COUNT_SQL["gold"]}) AS gold
"""
TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Backlog:
    records: int  # POS records published
    bronze_rows: int  # rows Scout's bronze should land
    transactions: int  # valid transactions Scout's silver should hold
    quix_transactions: int  # distinct event ids passing the Quix chain's checks


@dataclass
class Result:
    case: float  # fault share
    variant: str
    round: int
    backlog: Backlog
    seconds: float = float("nan")  # first process started → done
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds when landed
    cpu_us: dict[str, float] = field(default_factory=dict)  # stage / pg<-stage → µs
    verify: str = ""
    load: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def transactions(self) -> int:
        if self.variant == "quix":
            return self.backlog.quix_transactions
        return self.backlog.transactions

    @property
    def rate(self) -> float:
        return self.backlog.records / self.seconds

    @property
    def tx_rate(self) -> float:
        return self.transactions / self.seconds

    def per_record(self, stage: str) -> float:
        """µs of CPU per POS record of the backlog."""
        return self.cpu_us.get(stage, 0.0) / self.backlog.records

    @property
    def total_per_record(self) -> float:
        return sum(self.cpu_us.values()) / self.backlog.records


class QuixExpected:
    """Counts the distinct event ids the Quix chain's silver should keep, as published."""

    def __init__(self, stores: frozenset[str]) -> None:
        self.stores = stores
        self.seen: set[str] = set()

    def __call__(self, record: r.SimRecord) -> None:
        if len(record.value) > quix_chain.MAX_FORWARD_BYTES:
            return  # bronze stores it, does not forward it
        try:
            value = json.loads(record.value)
        except ValueError:
            return
        row = quix_chain.validate(value, self.stores, datetime.now(UTC))
        if row is not None:
            self.seen.add(row["event_id"])


async def prepare(s: Scenario, seed: int, records: int, faults: float) -> Backlog:
    gen = generator(seed, rate=5000.0, faults=faults)
    await load_masters(s.url, gen)
    stores = frozenset(
        parsed.store_id
        for parsed in (parse_master(m.value) for m in gen.masters())
        if isinstance(parsed, StoreRecord)
    )
    quix = QuixExpected(stores)
    manifest = await publish_all(s.settings, gen, records, only=r.POS, on_record=quix)
    expected = manifest.expected()
    return Backlog(records, int(expected["bronze_transactions_raw"]),
                   manifest.destinations[r.SILVER_TRANSACTIONS], len(quix.seen))  # fmt: skip


async def watch(
    url: str,
    sql: str,
    landed: dict[str, Callable[[dict[str, int]], bool]],
    label: str,
    started: float,
    cpu: Cpu,
    procs: list[subprocess.Popen[bytes]],
    interval: float = 1.0,
) -> dict[str, float]:
    """Poll the progress query until every stage has landed (in order); prints progress
    every few seconds; returns each stage's seconds from ``started``."""
    conn = await asyncpg.connect(url)
    times: dict[str, float] = {}
    last_print, last = 0.0, (started, 0)
    try:
        while len(times) < len(landed):
            row = dict(await conn.fetchrow(sql))
            now = time.monotonic()
            for stage, test in landed.items():
                if stage not in times and test(row):
                    times[stage] = now - started
            cpu.poll()
            if now - last_print >= 5.0:
                gold = int(row["gold"])
                rate = (gold - last[1]) / max(now - last[0], 1e-9)
                cells = " ".join(f"{k} {int(v):,}" for k, v in row.items())
                print(f"    {label} {now - started:6.1f} s: {cells} (gold +{rate:,.0f}/s)",
                      flush=True)  # fmt: skip
                last_print, last = now, (now, gold)
            if now - started > TIMEOUT_S:
                raise TimeoutError(f"{label}: not done in {TIMEOUT_S:.0f} s: {row}")
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{label}: a process exited with {proc.returncode}")
            await asyncio.sleep(interval)
    finally:
        await conn.close()
    return times


async def run_raw(s: Scenario, b: Backlog, res: Result, logs: Path) -> None:
    cpu = Cpu()
    cpu.ready(os.getpid(), "bronze")
    stop_at = asyncio.Event()

    async def poll() -> None:  # the loop's backend closes with it: sample it while it runs
        while not stop_at.is_set():
            cpu.poll()
            await asyncio.sleep(1.0)

    poller = asyncio.ensure_future(poll())
    try:
        res.seconds = await consume_raw(s, b.records)
    finally:
        stop_at.set()
        await poller
    res.stages = {"bronze": res.seconds}
    res.cpu_us = cpu.us()


def quix_python(path: str) -> str:
    """The Quix virtualenv's interpreter; the virtualenv is created when missing."""
    python = Path(path).expanduser()
    if not python.exists():
        venv = python.parent.parent
        print(f"  creating the Quix Streams virtualenv {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                        str(QUIX_REQUIREMENTS)], check=True)  # fmt: skip
    return str(python)


async def run_quix(s: Scenario, b: Backlog, res: Result, logs: Path, python: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOUT_")}
    env["PYTHONPATH"] = str(ROOT)
    cpu, procs = Cpu(), []
    started = time.monotonic()
    try:
        for stage in STAGES:
            command = [python, "-m", "bench.quix_chain", stage, "--prefix",
                       s.settings.topic_prefix, "--dsn", s.url, "--bootstrap",
                       s.settings.kafka_bootstrap, "--partitions",
                       str(s.settings.topic_partitions), "--state-dir",
                       str(logs / f"quix-{s.db_name}")]  # fmt: skip
            with open(logs / f"quix-{stage}.log", "ab") as out:
                proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out,
                                        stderr=subprocess.STDOUT)  # fmt: skip
            procs.append(proc)
            cpu.ready(proc.pid, stage)
        await _wait_tables(s.url, procs)
        n = b.quix_transactions
        res.stages = await watch(s.url, QUIX_PROGRESS, {
            "bronze": lambda row: row["bronze"] >= b.records,
            "silver": lambda row: row["silver"] >= n,
            "gold": lambda row: row["gold"] >= n,
        }, "quix", started, cpu, procs)  # fmt: skip
        res.seconds = res.stages["gold"]
        res.cpu_us = cpu.us()
    finally:
        for proc in procs:
            stop(proc)
        await delete_topics_with_prefix(s.settings, f"changelog__{s.settings.topic_prefix}")


async def _wait_tables(url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until the three Quix processes have created their tables."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(600):
            if await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'quix'") == 3:
                return
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"quix: a process exited with {proc.returncode}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise TimeoutError("quix tables not created")


async def run_scout(
    s: Scenario,
    b: Backlog,
    res: Result,
    logs: Path,
    profile: Path | None = None,
    tree: Path | None = None,
) -> None:
    cpu, procs, spies = Cpu(), [], []
    started = time.monotonic()
    try:
        for stage in STAGES:
            proc, _ = start(s, ["services.cli", "run", stage],
                            logs / f"{res.variant}-{stage}.log", tree=tree)  # fmt: skip
            procs.append(proc)
            cpu.ready(proc.pid, stage)
            if profile is not None:
                spies.append(py_spy(proc.pid, profile / f"{res.variant}-{stage}-r{res.round}.txt"))
        res.stages = await watch(s.url, SCOUT_PROGRESS, {
            "bronze": lambda row: row["bronze"] >= b.bronze_rows,
            "silver": lambda row: row["lineage"] >= b.bronze_rows
            and row["silver"] >= b.transactions,
            "gold": lambda row: row["lineage"] >= b.bronze_rows
            and row["silver"] >= b.transactions and row["waiting"] == 0
            and row["gold"] == row["silver"],
        }, "scout", started, cpu, procs)  # fmt: skip
        res.seconds = res.stages["gold"]
        res.cpu_us = cpu.us()
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        for proc in procs:
            stop(proc)
    res.verify = gold_verify(s, logs / f"{res.variant}-verify.log", tree)


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (50 Hz, non-blocking) into ``out`` as collapsed stacks."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--format",
         "raw", "--rate", "50", "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def gold_verify(s: Scenario, log: Path, tree: Path | None = None) -> str:
    """``scout gold verify`` on the scenario (of ``tree``'s services): "passed" or what it
    printed."""
    done = subprocess.run([sys.executable, "-m", "services.cli", "gold", "verify"],
                          env=service_env(s, 0, tree), cwd=tree, capture_output=True,
                          text=True)  # fmt: skip
    log.write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return "passed"
    return f"FAILED ({done.returncode}): {(done.stdout + done.stderr).strip()[-300:]}"


async def one(
    base: Settings, case: float, variant: str, rnd: int, args: argparse.Namespace, logs: Path
) -> Result:
    async with scenario(base, f"chain{variant}", logs) as s:
        b = await prepare(s, seed=100 + rnd, records=args.records, faults=case)
        res = Result(case, variant, rnd, b)
        before = load1()
        runners: dict[str, Callable[[], Awaitable[None]]] = {
            "raw": lambda: run_raw(s, b, res, logs),
            "quix": lambda: run_quix(s, b, res, logs, args.python),
            "scout": lambda: run_scout(s, b, res, logs, args.profile),
            "base": lambda: run_scout(s, b, res, logs, args.profile, args.base_tree),
        }
        await runners[variant]()
        res.load = (before, load1())
    print(f"  case {case:.0%} round {rnd} {variant}: {b.records:,} records in {res.seconds:.1f} s"
          f" = {res.rate:,.0f} records/s, {res.tx_rate:,.0f} tx/s; stages "
          f"{ {k: round(v, 1) for k, v in res.stages.items()} }; CPU µs/record "
          f"{ {k: round(res.per_record(k)) for k in sorted(res.cpu_us)} }"
          f"{'; gold verify ' + res.verify if res.verify else ''}; load "
          f"{res.load[0]:.2f}/{res.load[1]:.2f}", flush=True)  # fmt: skip
    return res


def order(variants: tuple[str, ...], rnd: int) -> list[str]:
    """Round 1: as given; each later round rotated by one."""
    k = (rnd - 1) % len(variants)
    return list(variants[k:] + variants[:k])


def report(results: list[Result], command: str, loads: tuple[float, float], head: str) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {head}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} cores, shared with other work; Kafka, PostgreSQL and every "
        "process on the same machine. Figures are from one run: compare the ratios, not the "
        "absolute numbers of another day or machine.  ",
        f"Load average (1 min) before / after the run: {loads[0]:.2f} / {loads[1]:.2f}",
        "",
        "| faults | variant | rounds | records | transactions | median s | records/s | tx/s "
        "| scout/this | stages s (bronze/silver/gold) | gold verify | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cases = sorted({x.case for x in results})
    variants = [v for v in VARIANTS if any(x.variant == v for x in results)]
    for case in cases:
        med = {v: median([x.seconds for x in results if x.case == case and x.variant == v])
               for v in variants}  # fmt: skip
        for v in variants:
            mine = [x for x in results if x.case == case and x.variant == v]
            if not mine:
                continue
            first = mine[0]
            seconds = med[v]
            scout_tx = first.backlog.transactions / med["scout"] if "scout" in med else None
            ratio = f"{scout_tx / (first.transactions / seconds):.2f}" if scout_tx else ""
            stages = "/".join(
                f"{median([x.stages[s] for x in mine]):.1f}" if s in first.stages else "-"
                for s in STAGES
            )
            verify = ", ".join(x.verify for x in mine if x.verify) or "-"
            loads_ = " ".join(f"{x.load[0]:.1f}/{x.load[1]:.1f}" for x in mine)
            lines.append(
                f"| {case:.0%} | {v} | {len(mine)} | {first.backlog.records:,} "
                f"| {first.transactions:,} | {seconds:.1f} "
                f"| {first.backlog.records / seconds:,.0f} | {first.transactions / seconds:,.0f} "
                f"| {ratio} | {stages} | {verify} | {loads_} |"
            )
    cols = [f"{p}{s}" for s in STAGES for p in ("", "pg<-")]
    lines += [
        "",
        "CPU µs per backlog record (medians over the rounds; `pg<-x`: the PostgreSQL backends "
        "serving x; raw: `bronze` is the bench process's loop):",
        "",
        "| faults | variant | " + " | ".join(cols) + " | processes | PostgreSQL | total "
        "| total / quix's |",
        "|---" * (len(cols) + 6) + "|",
    ]
    for case in cases:
        quix = [x.total_per_record for x in results if x.case == case and x.variant == "quix"]
        for v in variants:
            mine = [x for x in results if x.case == case and x.variant == v]
            if not mine:
                continue
            cells = [f"{median([x.per_record(c) for x in mine]):.0f}" for c in cols]
            procs = median([sum(x.per_record(s) for s in STAGES) for x in mine])
            pg = median([sum(x.per_record(f"pg<-{s}") for s in STAGES) for x in mine])
            total = median([x.total_per_record for x in mine])
            ratio = f"{total / median(quix):.2f}" if quix else ""
            lines.append(f"| {case:.0%} | {v} | " + " | ".join(cells)
                         + f" | {procs:.0f} | {pg:.0f} | {total:.0f} | {ratio} |")  # fmt: skip
    lines += ["", "Per round:", "", "| faults | round | variant | s | records/s | tx/s "
              "| CPU µs/record total | load 1m |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for x in results:
        lines.append(f"| {x.case:.0%} | {x.round} | {x.variant} | {x.seconds:.1f} | {x.rate:,.0f} "
                     f"| {x.tx_rate:,.0f} | {x.total_per_record:.0f} "
                     f"| {x.load[0]:.1f}/{x.load[1]:.1f} |")  # fmt: skip
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> list[Result]:
    base = load_settings(log_level="WARNING")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="scout-chain-") as tmp:
        logs = Path(args.logs) if args.logs else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for case in args.faults:
            for rnd in range(1, args.rounds + 1):
                for variant in order(tuple(args.variants), rnd):
                    try:
                        results.append(await one(base, case, variant, rnd, args, logs))
                    except (RuntimeError, TimeoutError) as exc:  # the others' rounds still count
                        print(f"  case {case:.0%} round {rnd} {variant}: FAILED: {exc}",
                              flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--faults", type=lambda t: [float(x) for x in t.split(",")],
                        default=[0.0, 0.05])  # fmt: skip
    parser.add_argument(
        "--variants",
        type=lambda t: t.split(","),
        help="of raw,quix,scout,base (default: all; base only with --base-tree)",
    )
    parser.add_argument("--base-tree", type=Path, help="variant base: the services of this "
                        "source tree (e.g. a git worktree of an older commit)")  # fmt: skip
    parser.add_argument("--python", default="", help="the Quix Streams virtualenv's python "
                        "(default: venv-quix/bin/python in the Scout cache)")  # fmt: skip
    parser.add_argument("--logs", help="keep the processes' logs in this folder")
    parser.add_argument("--profile", type=Path, help="py-spy Scout's three processes into this "
                        "folder (collapsed stacks, <variant>-<stage>-r<round>.txt)")  # fmt: skip
    parser.add_argument("--write", action="store_true", help=f"append the report to {RESULTS}")
    parser.add_argument("--title", default="catch-up of a pre-loaded backlog",
                        help="the heading of the section written")  # fmt: skip
    args = parser.parse_args()
    if args.variants is None:
        args.variants = [v for v in VARIANTS if v != "base" or args.base_tree]
    if "base" in args.variants and not args.base_tree:
        parser.error("variant base needs --base-tree")
    if args.base_tree:
        args.base_tree = args.base_tree.resolve()
    if "quix" in args.variants:
        cache = Path(os.environ.get("SCOUT_CACHE_DIR", "~/.cache/scout")).expanduser()
        args.python = quix_python(args.python or str(cache / "venv-quix" / "bin" / "python"))
    command = "python -m bench.chain " + " ".join(sys.argv[1:])
    before = load1()
    results = asyncio.run(main_async(args))
    text = report(results, command, (before, load1()), args.title)
    print()
    print(text)
    if args.write:
        with RESULTS.open("a") as out:
            out.write(("\n\n" if RESULTS.exists() and RESULTS.stat().st_size else "") + text + "\n")


if __name__ == "__main__":
    main()
