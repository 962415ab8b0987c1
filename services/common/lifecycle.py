"""Retry with exponential backoff, the one test of "transient", and the process-level exit.

Every error a worker meets is one of two kinds, decided by :func:`is_transient` alone:

- *infrastructure* (PostgreSQL or the broker unreachable, restarting, overloaded, read-only
  after a failover, missing a grant or a migration; a deadlock or serialization failure):
  nothing is wrong with the records, so the work is retried with backoff, reported, and never
  ends the process;
- *data* (the database refuses a value, a decoder raises, a conversion overflows): retrying
  the same records gives the same error, so the layer isolates the records that cause it
  (:mod:`services.common.isolation`) and goes on with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from services.common.errors import SessionSettingsMissing

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
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: disk full, out of memory
    asyncpg.exceptions.PostgresSystemError,  # class 58: the server's own I/O
)
# Errors of the server's state, not of the records: a server that refuses writes (a standby,
# or a primary demoted by a failover; default_transaction_read_only), a privilege, table,
# column, function or schema the login cannot use (a grant or a migration missing), a lock
# not granted in time. Every record fails the same way, so isolating them would divert all
# traffic into the error log and the quarantine: they are waited out like an outage, shown
# as one (scout_db_up 0, /ready false), until the failover or an operator mends the server.
SERVER_STATE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006
    asyncpg.exceptions.InsufficientPrivilegeError,  # 42501
    asyncpg.exceptions.UndefinedTableError,  # 42P01
    asyncpg.exceptions.UndefinedColumnError,  # 42703
    asyncpg.exceptions.UndefinedFunctionError,  # 42883
    asyncpg.exceptions.UndefinedObjectError,  # 42704
    asyncpg.exceptions.InvalidSchemaNameError,  # 3F000
    asyncpg.exceptions.LockNotAvailableError,  # 55P03
    asyncpg.exceptions.ObjectInUseError,  # 55006
    SessionSettingsMissing,  # behind a pooler, a login without Scout's session defaults
)
# Of those, the ones a new session may not meet: a session opened before a failover (or
# before default_transaction_read_only was lifted) stays read-only, so the pool replaces its
# sessions (ServiceContext.db_failed).
NEW_SESSION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)
# A statement the server cancelled (57014: its statement_timeout, or an operator's
# pg_cancel_backend). Nothing is wrong with the records, so it is transient; but a write that
# outlasts a server's statement_timeout outlasts it again on every retry, so where the work
# can be split (:func:`splits`) it is written again in halves instead of retried whole
# (services.common.isolation.isolate, bronze's COPY): the smaller statements pass.
CANCELLED_STATEMENT = asyncpg.exceptions.QueryCanceledError
# Errors of a value sent to the database, raised before it is sent (asyncpg's client-side
# codec error is an InterfaceError, but retrying the same value fails the same way).
_CLIENT_DATA_ERRORS = (asyncpg.exceptions._base.DataError,)
_KAFKA_DATA_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)


def is_transient(exc: BaseException) -> bool:
    """True for an infrastructure failure worth retrying as it is; False for an error that
    the same input would raise again (the records must be isolated instead)."""
    if isinstance(exc, (*_CLIENT_DATA_ERRORS, *_KAFKA_DATA_ERRORS)):
        return False
    return isinstance(exc, (*TRANSIENT_DB_ERRORS, *SERVER_STATE_ERRORS, KafkaError))


def splits(exc: BaseException, size: int) -> bool:
    """True when the write of ``size`` records that raised ``exc`` should be written again in
    halves rather than retried whole: the server cancelled its statement, and it has more
    than one record to split."""
    return size > 1 and isinstance(exc, CANCELLED_STATEMENT)


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
    retry_on: tuple[type[BaseException], ...] = (),
    raise_on: tuple[type[BaseException], ...] = (),
    on_retry: Callable[[BaseException], None] | None = None,
    max_attempts: int | None = None,
) -> T:
    """Run ``operation`` until it succeeds, sleeping with backoff between transient failures
    (:func:`is_transient`, or one of ``retry_on``); any other error, and one of
    ``raise_on`` (an error the caller answers otherwise, e.g. by splitting the work), is
    raised at once."""
    attempts = 0
    for delay in backoff_delays():
        try:
            return await operation()
        except Exception as exc:
            if isinstance(exc, raise_on) or not (is_transient(exc) or isinstance(exc, retry_on)):
                raise
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
