"""Isolation of the records a layer cannot store: the mechanism behind "never stop on a record".

A layer writes a batch in one transaction. When that fails with an error that is not
transient (:func:`services.common.lifecycle.is_transient`: the database refuses a value, a
decoder raises, a conversion overflows), retrying the same batch would fail the same way,
and before this module the worker exited and restarted into the same records forever.

:func:`isolate` instead bisects: it tries the batch, and on such an error tries each half on
its own, down to single records; a record that fails alone is handed to ``keep`` (the layer
stores it where it keeps refused records: bronze's error log, silver's quarantine, with the
reason), and every other record is written. One bad record among n costs about 2·log2(n)
extra transactions, paid only when a batch fails. The parts are written in their own
transactions in order; that is safe because every write of the pipeline is idempotent (a
redelivered batch, or a part written twice, converges to the same rows), and the Kafka
offsets are committed only once the whole batch is done. Transient errors are not isolated:
they propagate to the caller's retry, except a statement the server cancelled
(:func:`services.common.lifecycle.splits`: a write that outlasts its statement_timeout
would outlast it on every retry): that part is split the same way, nothing is kept aside
for it, and a single record cancelled alone propagates to the caller's retry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from services.common.lifecycle import is_transient, splits
from services.common.metrics import RECORDS_ISOLATED, STATEMENTS_CANCELLED

log = logging.getLogger(__name__)

T = TypeVar("T")

Attempt = Callable[[Sequence[T]], Awaitable[object]]
Keep = Callable[[T, str, str], Awaitable[None]]  # (record, reason, detail)

_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')


async def isolate(records: Sequence[T], attempt: Attempt[T], keep: Keep[T], *, layer: str) -> int:
    """Write ``records`` with ``attempt``; records that fail alone go to ``keep``.

    Returns how many records were kept aside. Transient errors propagate.
    """
    pending: list[Sequence[T]] = [records]
    kept = 0
    while pending:
        part = pending.pop()
        if not part:
            continue
        try:
            await attempt(part)
            continue
        except Exception as exc:
            cancelled = splits(exc, len(part))
            if is_transient(exc) and not cancelled:
                raise
            if len(part) > 1:
                if cancelled:  # too slow, not refused: its halves are smaller statements
                    STATEMENTS_CANCELLED.labels(layer).inc()
                    log.warning(
                        "%s: the server cancelled the write of %d records (%s); "
                        "writing it in halves",
                        layer,
                        len(part),
                        describe(exc)[1],
                    )
                elif part is records:
                    log.warning("%s: batch of %d refused (%s); isolating the records that "
                                "cause it", layer, len(part), describe(exc)[0])  # fmt: skip
                middle = len(part) // 2
                pending.extend((part[middle:], part[:middle]))  # first half first
                continue
            reason, detail = describe(exc)
        await keep(part[0], reason, detail)
        RECORDS_ISOLATED.labels(layer, reason).inc()
        kept += 1
    if kept:
        log.warning("%s: kept %d record(s) aside; the rest of the batch is written", layer, kept)
    return kept


def describe(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) of an error, without echoing input: the reason is the SQLSTATE's
    condition name or the exception class; quoted parts of the message are dropped."""
    if isinstance(exc, asyncpg.PostgresError) and getattr(exc, "sqlstate", None):
        reason = _condition_name(type(exc))
        message = str(getattr(exc, "message", "") or exc)
        detail = f"SQLSTATE {exc.sqlstate}: {message}"
    else:
        reason = _condition_name(type(exc))
        detail = f"{type(exc).__name__}: {exc}"
    return reason, _QUOTED.sub("…", detail).replace("\x00", "")[:300]


def _condition_name(cls: type[BaseException]) -> str:
    """``NumericValueOutOfRangeError`` → ``numeric_value_out_of_range``."""
    name = cls.__name__.removesuffix("Error") or cls.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
