"""``scout run bronze|silver|gold|platinum|all``: run a service as a Faust worker.

``all`` starts each service as its own process (as in production, where each is scaled on
its own) and stops them all when one fails or on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import signal
import subprocess
import sys
import time
from typing import Any

from services.common.errors import ConfigError
from services.common.kafka import create_topics
from services.common.lag import report_deleted_unread
from services.common.settings import Settings

SERVICES = {
    "bronze": "services.bronze_writer.app",
    "silver": "services.silver_enricher.app",
    "gold": "services.gold_aggregator.app",
    "platinum": "services.platinum_builder.app",
}


GC_THRESHOLD = 50_000  # net allocations between young-generation collections (default 700)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one service (a Faust worker), or all of them",
        description=(
            "Run a pipeline service as a Faust worker. Each serves /metrics, /health and "
            "/ready on its web port (SCOUT_WEB_PORT, default 6066-6069). SIGTERM stops it "
            "after the batch in flight is committed."
        ),
    )
    parser.add_argument("service", choices=[*SERVICES, "all"])
    parser.set_defaults(func=_run)


def available_services() -> list[str]:
    return [name for name, module in SERVICES.items() if importlib.util.find_spec(module)]


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.service == "all":
        return run_all(available_services())
    return run_one(args.service, settings)


def run_one(service: str, settings: Settings) -> int:
    if importlib.util.find_spec(SERVICES[service]) is None:
        raise ConfigError(f"service {service!r} is not built in this version")
    import faust  # heavy import, only for workers

    settings = settings.as_service(service)
    asyncio.run(_before_start(settings, service))
    module = importlib.import_module(SERVICES[service])
    app = module.build_app(settings)
    tune_garbage_collector()
    worker = faust.Worker(
        app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits


async def _before_start(settings: Settings, service: str) -> None:
    """The topics exist; records deleted before the service's group read them are reported
    before its consumer moves past them."""
    await create_topics(settings)
    await report_deleted_unread(settings, service)


def tune_garbage_collector() -> None:
    """Collect cycles far less often than Python's default (every 700 net allocations).

    A worker allocates a few containers per record (JSON dicts, models, row tuples) that die
    with the batch, while its heap holds a whole batch: the default thresholds scanned that
    heap again and again, about half of silver's refine time (57 → 32 µs per record,
    decode 13 → 6 µs; bench/results/gold.md). The objects that live as long as the process
    (modules, the app) are frozen out of every collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def run_all(services: list[str]) -> int:
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "services.cli", "run", name])
        for name in services
    }
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"scout run all: {name} exited with {proc.returncode}", file=sys.stderr)
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code
