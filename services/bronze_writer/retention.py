"""Bronze retention: archive whole monthly partitions past the retention period.

Bronze is immutable, so the only removal allowed is of whole partitions. For each monthly
partition of ``scout.bronze_transactions_raw`` that lies entirely before the cutoff:

1. export its rows under a read-only repeatable-read snapshot, either as Parquet to any
   fsspec URL (:mod:`services.bronze_writer.parquet_archive`: the file is read back with
   pyarrow and its row count and checksum must equal the partition's), or as CSV with a
   header (``COPY … TO STDOUT``) into a gzip file in a local folder, whose row count must
   equal the partition's;
2. in a second, short transaction: lock the parent table, count the partition again (an
   append-only table that still has the exported count still has the exported rows),
   ``DETACH PARTITION`` it and move it to the ``scout_archive`` schema, where it keeps its
   immutability triggers and stays readable until an operator drops it by hand.

Any failure rolls the partition's transaction back: the partition stays attached and a
rerun starts it over (the temporary file is replaced). A rerun after success finds nothing
to do. The export runs without locks that could block the bronze writer; the parent is
locked in the same order the writer uses (parent, then partition), so no deadlock, and only
for the recount and the detach.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from services.bronze_writer import parquet_archive
from services.common.errors import ScoutError
from services.common.progress import Progress

log = logging.getLogger(__name__)

PARENT = "bronze_transactions_raw"
ARCHIVE_SCHEMA = "scout_archive"
_PARTITION_NAME = re.compile(rf"^{PARENT}_(\d{{4}})(\d{{2}})$")
_PERIOD = re.compile(r"^(\d+)(mo|y|d)$")
LOCK_TIMEOUT = "10s"

# Attached partitions of the bronze table, from the catalog (names quoted by the server).
LIST_PARTITIONS = """
SELECT c.relname, quote_ident(c.relname) AS ident
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'scout.bronze_transactions_raw'::regclass
ORDER BY c.relname
"""
ARCHIVED_EXISTS = "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL"
QUOTE_IDENT = "SELECT quote_ident($1)"
# Index names of a renamed partition follow its new name (…_200101_pkey → …_200101_2_pkey).
INDEX_RENAMES = """
SELECT quote_ident(i.relname) AS old,
       quote_ident($2::text || substr(i.relname, length($3::text) + 1)) AS new
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::regclass AND starts_with(i.relname, $3::text)
"""


class RetentionError(ScoutError):
    """A partition could not be archived; it is still attached."""


@dataclass(frozen=True)
class Partition:
    name: str  # as in the catalog
    ident: str  # quote_ident(name), from the server
    month: date  # first day of the month it holds

    @property
    def end(self) -> datetime:
        """Exclusive upper bound of the partition (UTC)."""
        year, month = divmod(self.month.year * 12 + self.month.month, 12)
        return datetime(year, month + 1, 1, tzinfo=UTC)


CSV, PARQUET = "csv", "parquet"


@dataclass(frozen=True)
class Archived:
    partition: str
    rows: int
    path: Path | str | None  # file (a URL for Parquet); None on a dry run
    table: str  # scout_archive.<table> (or where it would go)


def cutoff_for(period: str, now: datetime) -> datetime:
    """``24mo`` / ``2y`` / ``730d`` before ``now``; calendar months, day clamped."""
    match = _PERIOD.match(period.strip())
    if not match or int(match[1]) < 1:
        raise RetentionError(f"--older-than {period!r}: use a positive count and mo, y or d")
    count, unit = int(match[1]), match[2]
    if unit == "d":
        return now - timedelta(days=count)
    months = count * 12 if unit == "y" else count
    year, month0 = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month0 + 1)[1])
    return now.replace(year=year, month=month0 + 1, day=day)


async def expired_partitions(conn: asyncpg.Connection, cutoff: datetime) -> list[Partition]:
    """Attached monthly partitions whose whole range lies before ``cutoff``, oldest first."""
    found = []
    for row in await conn.fetch(LIST_PARTITIONS):
        match = _PARTITION_NAME.match(row["relname"])
        if match is None:
            log.warning("skipping partition %s: not a monthly bronze partition", row["relname"])
            continue
        part = Partition(row["relname"], row["ident"], date(int(match[1]), int(match[2]), 1))
        if part.end <= cutoff:
            found.append(part)
    return sorted(found, key=lambda p: p.month)


async def archive_expired(
    conn: asyncpg.Connection,
    cutoff: datetime,
    archive_dir: Path | str,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] = print,
    file_format: str = CSV,
    quiet: bool = False,
) -> list[Archived]:
    """Archive every expired partition (see the module docstring); stops at the first failure.

    ``archive_dir`` is a local folder for CSV, a folder URL (``file://``, ``s3://`` …) for
    Parquet. ``conn`` must act as the owner of the bronze tables (the migration user), not as
    the bronze writer's role.
    """
    parts = await expired_partitions(conn, cutoff)
    progress(f"cutoff {cutoff.isoformat()}: {len(parts)} partition(s) to archive")
    done = []
    for part in parts:
        table = await _archive_name(conn, part.name)
        if dry_run:
            rows = await conn.fetchval(f"SELECT count(*) FROM scout.{part.ident}")
            where = f"{str(archive_dir).rstrip('/')}/{_file_name(table, file_format)}"
            progress(f"{part.name}: {rows} rows would go to {where}")
            done.append(Archived(part.name, rows, None, table))
            continue
        try:
            if file_format == PARQUET:
                done.append(
                    await _archive_parquet(conn, part, table, str(archive_dir), progress, quiet)
                )
            else:
                done.append(await _archive_one(conn, part, table, Path(archive_dir), progress))
        except (OSError, asyncpg.PostgresError) as exc:
            raise RetentionError(
                f"{part.name}: {type(exc).__name__}: {exc}; the partition is still attached"
            ) from exc
    return done


async def _archive_name(conn: asyncpg.Connection, name: str) -> str:
    """``name``, or ``name_2``… when a partition of that month was archived before (a late
    record re-created it): an earlier archive is never overwritten."""
    candidate, n = name, 1
    while await conn.fetchval(ARCHIVED_EXISTS, ARCHIVE_SCHEMA, candidate):
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _file_name(table: str, file_format: str = CSV) -> str:
    return f"{table}.parquet" if file_format == PARQUET else f"{table}.csv.gz"


async def _archive_parquet(
    conn: asyncpg.Connection,
    part: Partition,
    table: str,
    url: str,
    progress: Callable[[str], None],
    quiet: bool,
) -> Archived:
    fs, base = parquet_archive.filesystem(url)
    fs.makedirs(base, exist_ok=True)
    final = f"{base}/{_file_name(table, PARQUET)}"
    temp = f"{final}.part"
    source = f"scout.{part.ident}"
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            expected = await parquet_archive.database_checksum(conn, source)
            meter = Progress(expected.rows, f"{part.name}: export", quiet=quiet)
            written = await parquet_archive.write_partition(conn, source, fs, temp, meter.advance)
            meter.finish()
        in_file = parquet_archive.file_checksum(fs, temp)
        if written != expected.rows or in_file != expected:
            raise RetentionError(
                f"{part.name}: partition has {expected}, the file read back has {in_file}; "
                "the partition is still attached"
            )
        progress(f"{part.name}: exported {in_file}, verified by reading the file back")
        await _detach(conn, part, table, expected.rows, lambda: fs.mv(temp, final))
    finally:
        if fs.exists(temp):
            fs.rm(temp)
    progress(f"{part.name}: detached, now {ARCHIVE_SCHEMA}.{table}; archive {final}")
    return Archived(part.name, expected.rows, fs.unstrip_protocol(final), table)


async def _archive_one(
    conn: asyncpg.Connection,
    part: Partition,
    table: str,
    archive_dir: Path,
    progress: Callable[[str], None],
) -> Archived:
    final = _prepare(archive_dir) / _file_name(table)
    temp = final.with_name(final.name + ".part")
    try:
        rows = await _export(conn, part, temp)
        progress(f"{part.name}: exported and verified {rows} rows")
        await _detach(conn, part, table, rows, lambda: os.replace(temp, final))
    finally:
        temp.unlink(missing_ok=True)
    progress(f"{part.name}: detached, now {ARCHIVE_SCHEMA}.{table}; archive {final}")
    return Archived(part.name, rows, final, table)


async def _export(conn: asyncpg.Connection, part: Partition, path: Path) -> int:
    """COPY the partition into a gzip CSV; returns the verified row count."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        expected = await conn.fetchval(f"SELECT count(*) FROM scout.{part.ident}")
        with gzip.open(path, "wb") as out:

            async def sink(chunk: bytes) -> None:
                out.write(chunk)

            status = await conn.copy_from_table(
                part.name, schema_name="scout", output=sink, format="csv", header=True
            )
        _fsync(path)
    copied = int(status.rsplit(" ", 1)[1])
    in_file = count_csv_rows(path)
    if not expected == copied == in_file:
        raise RetentionError(
            f"{part.name}: partition has {expected} rows, COPY sent {copied}, file holds "
            f"{in_file}; the partition is still attached"
        )
    return in_file


def count_csv_rows(path: Path) -> int:
    """Data rows of a gzip CSV with a header (quoted newlines in JSON count once)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return sum(1 for _ in reader)


def _prepare(directory: Path) -> Path:
    # Blocking file calls are fine here: a one-shot command, not a service's event loop.
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


async def _detach(
    conn: asyncpg.Connection, part: Partition, table: str, rows: int, publish: Callable[[], None]
) -> None:
    """Detach and move the partition; ``publish`` puts the verified file in its place."""
    archived = await conn.fetchval(QUOTE_IDENT, table)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute("LOCK TABLE scout.bronze_transactions_raw IN ACCESS EXCLUSIVE MODE")
        now = await conn.fetchval(f"SELECT count(*) FROM scout.{part.ident}")
        if now != rows:  # bronze only grows: same count means the same rows
            raise RetentionError(
                f"{part.name}: {now - rows} rows arrived during the export; the partition is "
                "still attached, run retention again"
            )
        publish()
        await conn.execute(f"ALTER TABLE scout.{PARENT} DETACH PARTITION scout.{part.ident}")
        if table != part.name:  # rename first: the archive schema has the names already
            await conn.execute(f"ALTER TABLE scout.{part.ident} RENAME TO {archived}")
            for index in await conn.fetch(INDEX_RENAMES, f"scout.{archived}", table, part.name):
                await conn.execute(f"ALTER INDEX scout.{index['old']} RENAME TO {index['new']}")
        await conn.execute(f"ALTER TABLE scout.{archived} SET SCHEMA {ARCHIVE_SCHEMA}")
        target = f"{ARCHIVE_SCHEMA}.{archived}"
        # DETACH drops the triggers cloned from the parent: the archive stays immutable.
        await conn.execute(
            f"CREATE TRIGGER archived_immutable BEFORE UPDATE OR DELETE ON {target} "
            "FOR EACH ROW EXECUTE FUNCTION scout.bronze_raw_refuse_change()"
        )
        await conn.execute(
            f"CREATE TRIGGER archived_no_truncate BEFORE TRUNCATE ON {target} "
            "FOR EACH STATEMENT EXECUTE FUNCTION scout.refuse_change()"
        )
        # No grant to scout_reader: raw payloads are read only through the audited
        # functions of 0061 (scout_pii_auditor); erasure still reaches archived rows.


def describe(result: list[Archived]) -> str:
    rows = sum(a.rows for a in result)
    return f"{len(result)} partition(s), {rows} rows"


__all__ = [
    "CSV",
    "PARQUET",
    "Archived",
    "Partition",
    "RetentionError",
    "archive_expired",
    "count_csv_rows",
    "cutoff_for",
    "describe",
    "expired_partitions",
]
