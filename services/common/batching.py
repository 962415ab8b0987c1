"""Batch consumption for Faust agents with commit-after-write semantics.

Faust pays its per-record cost once at the edge; the handler then gets a whole batch of
events and writes it in one database transaction. Faust acknowledges (and later commits)
the offsets of a batch only after the handler returns, so an offset is never committed for
a record that is not in PostgreSQL. If a batch cannot be finished — a bug, or a shutdown
that cannot wait any longer — the process exits without committing (see ``hard_exit``);
the batch is redelivered and the idempotent writes absorb the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from services.common.lifecycle import hard_exit
from services.common.metrics import BATCH_SIZE

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0

BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


async def consume_in_batches(
    stream: Any, handle: BatchHandler, *, layer: str, max_records: int, within_s: float
) -> None:
    """Feed ``stream`` to ``handle`` in batches of Faust events (``event.message`` has the
    Kafka coordinates, ``event.value`` the raw bytes)."""
    async for events in stream.take_events(max_records, within_s):
        BATCH_SIZE.labels(layer).observe(len(events))
        await run_to_completion(handle(events), what=f"{layer} batch")


async def run_to_completion(work: Awaitable[object], *, what: str) -> None:
    """Await ``work``; on cancellation finish it first (bounded), on error exit hard."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Graceful stop in the middle of a batch: let it commit, so the offsets Faust acks
        # right after are true; if it cannot finish in time, leave without committing.
        try:
            await asyncio.wait_for(task, timeout=SHUTDOWN_GRACE_S)
        except BaseException as exc:  # any failure here means: do not commit
            hard_exit(f"{what} unfinished at shutdown: {exc!r}")
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        hard_exit(f"{what} failed: {exc!r}")
