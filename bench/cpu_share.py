"""CPU share per pipeline component, sampled from /proc while a benchmark runs (not a test).

Each line: per component, percent of one core over the interval. Components: the Kafka JVM,
each ``scout run <service>`` worker, the bench process, and each PostgreSQL backend labelled
by the process on the other end of its connection (``pg<-silver`` = the backends serving
the silver worker), found through ``ss``. Linux only.

    python bench/cpu_share.py [INTERVAL_S] [SAMPLES]  >  cpu.txt   # beside a bench run
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import defaultdict

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid → (command line, user + system ticks)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended
        out[int(pid)] = (cmd, int(fields[11]) + int(fields[12]))
    return out


def socket_owners() -> dict[str, int]:
    """local address:port → pid of the process holding the socket."""
    lines = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True).stdout.splitlines()
    owners = {}
    for line in lines:
        pid = re.search(r"pid=(\d+)", line)
        if pid:
            owners[line.split()[3]] = int(pid.group(1))
    return owners


def component(cmd: str, owners: dict[str, int], cmds: dict[int, str]) -> str:
    if cmd.startswith("postgres:"):
        client = re.search(r"\((\d+)\)", cmd)
        owner = owners.get(f"127.0.0.1:{client.group(1)}") if client else None
        return "pg<-" + component(cmds.get(owner, ""), owners, cmds) if owner else "pg-other"
    if "java" in cmd and "kafka" in cmd.lower():
        return "kafka"
    service = re.search(r"services\.cli run (\w+)", cmd)
    if service:
        return service.group(1)
    if "bench" in cmd:
        return "bench"
    return "pg-other" if "postgres" in cmd else "other"


Sample = dict[int, tuple[str, int, int]]  # pid → (stage, owner pid, ticks)


def sample(pids: dict[int, str]) -> Sample:
    """CPU ticks of these worker processes (pid → stage) and of their PostgreSQL backends
    (stage ``pg<-<stage>``, owner = the worker holding the connection)."""
    owners = socket_owners()
    out: Sample = {}
    for pid, (cmd, ticks) in cpu_ticks().items():
        if pid in pids:
            out[pid] = (pids[pid], pid, ticks)
        elif cmd.startswith("postgres:"):
            client = re.search(r"\((\d+)\)", cmd)
            owner = owners.get(f"127.0.0.1:{client.group(1)}") if client else None
            if owner in pids:
                out[pid] = (f"pg<-{pids[owner]}", owner, ticks)
    return out


class Cpu:
    """CPU µs per stage (a worker process, or the PostgreSQL backends serving it) from the
    moment ``ready`` names the worker. ``poll`` between whiles keeps the last ticks of every
    process seen, so a backend that closes before the end is still counted up to then."""

    def __init__(self) -> None:
        self.pids: dict[int, str] = {}
        self._base: dict[int, int] = {}
        self._last: dict[int, tuple[str, int]] = {}

    def ready(self, pid: int, stage: str) -> None:
        self.pids[pid] = stage
        for key, (_, owner, ticks) in sample(self.pids).items():
            if owner == pid:
                self._base.setdefault(key, ticks)

    def poll(self) -> None:
        for key, (stage, _, ticks) in sample(self.pids).items():
            self._last[key] = (stage, ticks)

    def us(self, stage_contains: str = "") -> dict[str, float]:
        self.poll()
        out: dict[str, float] = defaultdict(float)
        for key, (stage, ticks) in self._last.items():
            if stage_contains in stage:
                out[stage] += (ticks - self._base.get(key, 0)) / TICKS * 1e6
        return dict(out)


def main() -> None:
    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    before = cpu_ticks()
    for _ in range(samples):
        time.sleep(interval)
        now, owners = cpu_ticks(), socket_owners()
        cmds = {pid: cmd for pid, (cmd, _) in now.items()}
        share: dict[str, float] = defaultdict(float)
        for pid, (cmd, ticks) in now.items():
            if pid in before and ticks > before[pid][1]:
                used = (ticks - before[pid][1]) / TICKS / interval * 100
                share[component(cmd, owners, cmds)] += used
        before = now
        parts = " ".join(
            f"{name}={pct:.0f}"
            for name, pct in sorted(share.items(), key=lambda kv: -kv[1])
            if pct >= 0.5
        )
        print(f"{time.strftime('%H:%M:%S')} {parts} total={sum(share.values()):.0f}", flush=True)


if __name__ == "__main__":
    main()
