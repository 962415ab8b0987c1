"""Retry with exponential backoff, and the process-level shutdown helpers.

Transient outages (PostgreSQL restarting, a broker leader moving) are retried here, with
the attempt logged and counted, rather than crashing the worker and losing its batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg

T = TypeVar("T")
log = logging.getLogger(__name__)

# Errors that mean "the database is (temporarily) not reachable", worth retrying. By class:
# every connection error (SQLSTATE class 08, including "transaction resolution unknown"
# when the server went away during COMMIT: safe to retry, every write is idempotent) and
# operator intervention (class 57: shutdown, restart, cancelled by an administrator).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


def backoff_delays(base: float = 0.2, cap: float = 10.0) -> Iterator[float]:
    """Exponential backoff with full jitter: 0.2 s, 0.4 s, … up to ``cap``."""
    attempt = 0
    while True:
        yield random.uniform(0, min(cap, base * 2**attempt))
        attempt += 1


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_DB_ERRORS,
    on_retry: Callable[[BaseException], None] | None = None,
    max_attempts: int | None = None,
) -> T:
    """Run ``operation`` until it succeeds, sleeping with backoff between transient failures."""
    attempts = 0
    for delay in backoff_delays():
        try:
            return await operation()
        except retry_on as exc:
            attempts += 1
            if max_attempts is not None and attempts >= max_attempts:
                raise
            if on_retry is not None:
                on_retry(exc)
            log.warning(
                "%s failed (%s: %s); retrying in %.1fs",
                what,
                type(exc).__name__,
                exc,
                delay,
                extra={"attempt": attempts},
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def hard_exit(reason: str, code: int = 70) -> None:
    """Leave the process at once, without committing Kafka offsets.

    Used when a batch cannot be finished: a normal shutdown would commit the offsets of a
    batch that never reached PostgreSQL. After a hard exit the batch is redelivered to the
    next worker, and the idempotent writes make that harmless.
    """
    log.critical("stopping without committing offsets: %s", reason)
    logging.shutdown()
    os._exit(code)
