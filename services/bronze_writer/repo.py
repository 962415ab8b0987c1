"""Bronze SQL: one transaction per batch, COPY for the rows, idempotent on redelivery.

The fast path COPYs straight into ``bronze_transactions_raw``. If the batch holds a record
that is already there (a redelivery after a crash), the COPY fails on the primary key and
the batch goes through a staging table with ``ON CONFLICT DO NOTHING`` instead: same rows,
no doubles. If PostgreSQL refuses a record of the batch (on either path: a redelivered batch
may hold both landed and refused records), the rows are inserted one by one, each in its
own savepoint, and the refused ones go to the error log with the database's reason. A COPY
the server cancels (it outlasted the role's statement_timeout) is written again in halves,
each in its own savepoint. The role needs nothing but INSERT (and the partition function).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.bronze_writer.transform import BronzeRow, ErrorRow, Landing, database_rejection
from services.common.isolation import describe
from services.common.lifecycle import is_transient, splits
from services.common.metrics import RECORDS_ISOLATED, STATEMENTS_CANCELLED

log = logging.getLogger(__name__)

RAW_COLUMNS = (
    "id", "raw_data", "source_system", "schema_name", "batch_id", "record_index",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp",
    "registry_schema_id", "registry_payload",
)  # fmt: skip
STAGING_TABLE = "bronze_raw_staging"
CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (
    id uuid, raw_data jsonb, source_system text, schema_name text, batch_id text,
    record_index integer, kafka_topic text, kafka_partition integer, kafka_offset bigint,
    kafka_timestamp timestamptz, registry_schema_id integer, registry_payload bytea
) ON COMMIT DELETE ROWS
"""
INSERT_FROM_STAGING = f"""
INSERT INTO scout.bronze_transactions_raw ({", ".join(RAW_COLUMNS)})
SELECT {", ".join(RAW_COLUMNS)} FROM {STAGING_TABLE}
ON CONFLICT DO NOTHING
"""
INSERT_ONE_RAW = f"""
INSERT INTO scout.bronze_transactions_raw ({", ".join(RAW_COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT DO NOTHING
"""
INSERT_BATCH = """
INSERT INTO scout.bronze_ingestion_batches
    (batch_id, partner, record_count, sent_at, status, kafka_topic, kafka_partition, kafka_offset,
     kafka_timestamp)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING
"""
INSERT_ERROR = """
INSERT INTO scout.bronze_error_log
    (id, raw_bytes, reason, detail, source_system, kafka_topic, kafka_partition, kafka_offset,
     kafka_timestamp, record_index)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT DO NOTHING
"""
ENSURE_PARTITION = "SELECT scout.ensure_bronze_partition($1)"


@dataclass(frozen=True)
class WriteResult:
    rows_new: int
    errors: list[ErrorRow]  # including rows the database refused
    landed: list[BronzeRow]  # rows now in bronze (new or from an earlier delivery)


class BronzeRepo:
    """Writes landings; remembers which monthly partitions exist."""

    def __init__(self) -> None:
        self._months: set[date] = set()

    async def write(self, conn: asyncpg.Connection, landing: Landing) -> WriteResult:
        """Everything in one transaction; returns how many raw rows were new."""
        errors = list(landing.errors)
        async with conn.transaction():
            await self._ensure_partitions(conn, landing.rows)
            rows_new, refused = await self._write_rows(conn, landing.rows)
            errors.extend(database_rejection(row, reason) for row, reason in refused)
            if landing.batches:
                await conn.executemany(INSERT_BATCH, [b.as_record() for b in landing.batches])
            if errors:
                await conn.executemany(INSERT_ERROR, [e.as_record() for e in errors])
        refused_ids = {row.id for row, _ in refused}
        landed = [r for r in landing.rows if r.id not in refused_ids]
        return WriteResult(rows_new, errors, landed)

    async def _ensure_partitions(self, conn: asyncpg.Connection, rows: Sequence[BronzeRow]) -> None:
        months = {r.kafka.timestamp.date().replace(day=1) for r in rows} - self._months
        for month in sorted(months):
            await conn.execute(ENSURE_PARTITION, month)
        self._months |= months

    async def _write_rows(
        self, conn: asyncpg.Connection, rows: Sequence[BronzeRow]
    ) -> tuple[int, list[tuple[BronzeRow, str]]]:
        if not rows:
            return 0, []
        records = [r.as_copy_record() for r in rows]
        try:
            async with conn.transaction():  # savepoint: a failed COPY leaves the batch usable
                await conn.copy_records_to_table(
                    "bronze_transactions_raw", schema_name="scout", records=records,
                    columns=RAW_COLUMNS,
                )  # fmt: skip
            return len(rows), []
        except asyncpg.UniqueViolationError:
            log.info("batch holds already-landed records (redelivery); de-duplicating")
        except Exception as exc:
            return await self._after_failure(conn, rows, exc, "a record of the batch")
        try:
            async with conn.transaction():
                await conn.execute(CREATE_STAGING)
                await conn.copy_records_to_table(
                    STAGING_TABLE, records=records, columns=RAW_COLUMNS
                )
                status = await conn.execute(INSERT_FROM_STAGING)
            return int(status.rsplit(" ", 1)[1]), []
        except Exception as exc:
            return await self._after_failure(conn, rows, exc, "a record of a redelivered batch")

    async def _after_failure(
        self, conn: asyncpg.Connection, rows: Sequence[BronzeRow], exc: Exception, what: str
    ) -> tuple[int, list[tuple[BronzeRow, str]]]:
        """The rows of a COPY that failed on ``exc``: in halves if the server cancelled it
        (it outlasted the statement_timeout; each half in its own savepoint), one by one if
        PostgreSQL refused one of them; a transient error is raised to the batch's retry."""
        if splits(exc, len(rows)):
            STATEMENTS_CANCELLED.labels("bronze").inc()
            log.warning("PostgreSQL cancelled the COPY of %d rows (%s); writing it in halves",
                        len(rows), describe(exc)[1])  # fmt: skip
            middle = len(rows) // 2
            first, second = [await self._write_rows(conn, half)
                             for half in (rows[:middle], rows[middle:])]  # fmt: skip
            return first[0] + second[0], first[1] + second[1]
        if is_transient(exc):
            raise exc
        log.warning("PostgreSQL refused %s; landing row by row", what)
        return await self._write_one_by_one(conn, rows)

    async def _write_one_by_one(
        self, conn: asyncpg.Connection, rows: Sequence[BronzeRow]
    ) -> tuple[int, list[tuple[BronzeRow, str]]]:
        new, refused = 0, []
        for row in rows:
            try:
                async with conn.transaction():
                    status = await conn.execute(INSERT_ONE_RAW, *row.as_copy_record())
                new += int(status.rsplit(" ", 1)[1])
            except Exception as exc:
                if is_transient(exc):
                    raise
                reason, detail = describe(exc)
                RECORDS_ISOLATED.labels("bronze", reason).inc()
                refused.append((row, f"{reason}: {detail}"))
        return new, refused
