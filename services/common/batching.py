"""Batch consumption for Faust agents with commit-after-write semantics, and the one loop
that runs a batch until it has been written.

Faust pays its per-record cost once at the edge; the handler then gets a whole batch of
events and writes it in one database transaction. Faust acknowledges (and later commits)
the offsets of a batch only after the handler returns, so an offset is never committed for
a record that is not in PostgreSQL.

A batch that fails is retried with backoff (:func:`run_batch`), never given up and never the
end of the process: an infrastructure failure (database or broker away) passes, and the
records a layer cannot store are isolated by the layer's handler itself
(:mod:`services.common.isolation`), so a handler that still fails is a defect to alert on
(``scout_batch_retries_total``, ``/ready`` false), not a reason to crash-loop on the same
records. Only a batch that cannot finish at shutdown leaves the process without committing
(see ``hard_exit``): it is redelivered and the idempotent writes absorb the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from services.common.lifecycle import backoff_delays, hard_exit, is_transient
from services.common.metrics import BATCH_RETRIES, BATCH_SIZE

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0
RETRY_CAP_S = 30.0

BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]
T = TypeVar("T")

_failing: set[str] = set()  # layers whose current batch is failing (readiness)


def batch_failing(layer: str) -> bool:
    """True while ``layer``'s batch in flight keeps failing (``/ready`` reports it)."""
    return layer in _failing


async def consume_in_batches(
    stream: Any, handle: BatchHandler, *, layer: str, max_records: int, within_s: float
) -> None:
    """Feed ``stream`` to ``handle`` in batches of Faust events (``event.message`` has the
    Kafka coordinates, ``event.value`` the raw bytes)."""
    for kind in ("transient", "error"):
        BATCH_RETRIES.labels(layer, kind)  # the series exist at 0 from the start
    async for events in stream.take_events(max_records, within_s):
        BATCH_SIZE.labels(layer).observe(len(events))
        await run_batch(partial(handle, events), layer=layer, what=f"{layer} batch")


async def run_batch(attempt: Callable[[], Awaitable[T]], *, layer: str, what: str) -> T:
    """Run ``attempt`` until it succeeds, retrying every failure with backoff."""
    for delay in backoff_delays(base=0.5, cap=RETRY_CAP_S):
        try:
            result = await run_to_completion(attempt(), what=what)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            kind = "transient" if is_transient(exc) else "error"
            BATCH_RETRIES.labels(layer, kind).inc()
            _failing.add(layer)
            if kind == "transient":
                log.warning("%s: %s: %s; retrying in %.1fs", what, type(exc).__name__, exc, delay)
            else:
                log.exception("%s failed; retrying in %.1fs (nothing is committed)", what, delay)
            await asyncio.sleep(delay)
            continue
        _failing.discard(layer)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


async def run_to_completion(work: Awaitable[T], *, what: str) -> T:
    """Await ``work``; on cancellation finish it first (bounded), else exit without commit."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Graceful stop in the middle of a batch: let it commit, so the offsets Faust acks
        # right after are true; if it cannot finish in time, leave without committing.
        try:
            await asyncio.wait_for(task, timeout=SHUTDOWN_GRACE_S)
        except BaseException as exc:  # any failure here means: do not commit
            hard_exit(f"{what} unfinished at shutdown: {exc!r}")
        raise
