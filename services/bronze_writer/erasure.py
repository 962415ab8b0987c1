"""Erasure of one customer's raw bronze records (a data-subject request).

Bronze stays append-only: the only delete the immutability triggers let through is the one
``scout.erase_customer_raw`` (migration 0062, SECURITY DEFINER, owner only) makes for the
customer named in its transaction. It removes the customer's raw records (live partitions and
the ones retention archived) and the error-log payloads that quote the id, and records the
request in ``scout.pii_erasure_log`` with a digest of the id.

Silver keeps only the keyed pseudonym, which cannot be traced back without bronze and the key;
``scout replay`` after an erasure no longer sees the erased records.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

ERASE = "SELECT raw_rows, archived_rows, error_rows FROM scout.erase_customer_raw($1, $2)"


@dataclass(frozen=True)
class Erased:
    raw_rows: int
    archived_rows: int
    error_rows: int

    def describe(self) -> str:
        return (
            f"erased {self.raw_rows} raw record(s), {self.archived_rows} archived record(s), "
            f"{self.error_rows} error-log payload(s)"
        )


async def erase_customer(conn: asyncpg.Connection, customer_id: str, reason: str) -> Erased:
    """Erase ``customer_id``'s raw records in one transaction; ``reason`` is required."""
    async with conn.transaction():
        row = await conn.fetchrow(ERASE, customer_id, reason)
    assert row is not None
    return Erased(row["raw_rows"], row["archived_rows"], row["error_rows"])
