"""CPU and wall time of a worker's start, from ``scout run <service>`` to its /ready.

Each round starts every service once from every tree (this one, then ``--base-tree``),
one process at a time, each on a topic prefix of its own (no group to join, no rebalance);
the medians of the rounds are printed per tree and service. A catch-up pays this once per
process, a rolling restart or a scale-out once per new worker. Not a test; needs the dev
stack (``SCOUT_KAFKA_BOOTSTRAP``, ``SCOUT_DATABASE_URL``).

    .venv/bin/python -m bench.startup [--rounds 3] [--base-tree <worktree>]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

from bench.bronze import free_port
from bench.common import load1, median, process_cpu

SERVICES = ("bronze", "silver", "gold")


def start_once(tree: Path, service: str, timeout: float = 60.0) -> tuple[float, float]:
    """(wall s, CPU s) of one worker from its spawn to its first ready answer."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(tree), SCOUT_WEB_PORT=str(port),
               SCOUT_TOPIC_PREFIX=f"startup{uuid.uuid4().hex[:8]}")  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(tree / ".venv" / "bin" / "python"), "-m", "services.cli", "run", service],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while time.monotonic() - started < timeout:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
                return time.monotonic() - started, process_cpu(proc.pid)
            except OSError as exc:
                if proc.poll() is not None:
                    raise RuntimeError(f"{service} in {tree} exited: {proc.returncode}") from exc
                time.sleep(0.05)
        raise RuntimeError(f"{service} in {tree} not ready in {timeout} s")
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base-tree", type=Path)
    args = ap.parse_args()
    trees = {"this": Path.cwd()}
    if args.base_tree:
        trees["base"] = args.base_tree.resolve()
    runs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    print(f"load 1m before: {load1():.2f}")
    for r in range(1, args.rounds + 1):
        for name, tree in trees.items():
            for service in SERVICES:
                wall, cpu = start_once(tree, service)
                runs[name, service].append((wall, cpu))
                print(f"  round {r} {name:4s} {service:6s} ready {wall:5.2f} s, CPU {cpu:5.2f} s")
    print(f"load 1m after: {load1():.2f}\n")
    print("| tree | service | ready s (median) | CPU s (median) | CPU / base |")
    print("|---|---|---|---|---|")
    for (name, service), values in runs.items():
        cpu = median([c for _, c in values])
        base = runs.get(("base", service))
        ratio = f"{cpu / median([c for _, c in base]):.2f}" if base else ""
        wall = median([w for w, _ in values])
        print(f"| {name} | {service} | {wall:.2f} | {cpu:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
