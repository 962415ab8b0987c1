"""``scout run silver`` with wall-clock timers around each step of a batch (bench only).

Wraps, in-process and without changing ``services/``: the master-data lookup, ``refine``,
``repo.write`` (the database transaction's statements)
and the unknown-store re-check; every 10 s the totals go to the log (stderr) as one line.
Used by ``bench/gold.py --silver-module bench.timed_silver_worker`` to see where a
streaming batch spends its time.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import defaultdict
from typing import Any

import services.silver_enricher.app as silver_app
import services.silver_enricher.pipeline as pipeline
from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.runner import run_one

TOTALS: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)
_last = [time.monotonic()]


def report() -> None:
    if time.monotonic() - _last[0] < 10:
        return
    _last[0] = time.monotonic()
    parts = [f"{k}={TOTALS[k]:.2f}s/{COUNTS[k]}" for k in sorted(TOTALS)]
    print("timed-silver " + " ".join(parts), file=sys.stderr, flush=True)


def timed_async(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            TOTALS[name] += time.perf_counter() - started
            COUNTS[name] += 1
            report()

    return wrapper


def timed_sync(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[name] += time.perf_counter() - started
            COUNTS[name] += 1

    return wrapper


def main() -> int:
    p = pipeline.SilverPipeline
    p.process = timed_async("0_process", p.process)  # type: ignore[method-assign]
    p._observe = timed_sync("5_observe", p._observe)  # type: ignore[method-assign]
    pipeline.MasterData.ensure = timed_async(  # type: ignore[method-assign]
        "1_master_ensure", pipeline.MasterData.ensure
    )
    pipeline.Refiner.refine = timed_sync("2_refine", pipeline.Refiner.refine)  # type: ignore[attr-defined,method-assign]
    pipeline.repo.write = timed_async("3_repo_write", pipeline.repo.write)  # type: ignore[attr-defined]
    handler = silver_app.MasterHandler
    for name in ("resolve_unknown_stores", "resolve_late_master"):  # renamed in 8fe6e5b
        if hasattr(handler, name):
            setattr(handler, name, timed_async("6_late_master_recheck", getattr(handler, name)))
    silver_app.decode_landed = timed_sync("7_decode_landed", silver_app.decode_landed)  # type: ignore[attr-defined]
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return run_one("silver", settings)


if __name__ == "__main__":
    sys.exit(main())
