"""``scout bronze restore``: an archived month back in ``bronze_transactions_raw``.

Two ways, tried in this order:

1. **Re-attach** the detached table ``scout_archive.bronze_transactions_raw_YYYYMM`` (and
   ``…_2``, … of the same month) when it still exists and no partition of that month is
   attached: its archive triggers are dropped and the parent's are cloned again on ATTACH.
   When the month has a partition again (late records re-created it), the archived rows are
   copied into it instead (``ON CONFLICT DO NOTHING``) and the archive table stays.
2. **Load the Parquet files** of that month from ``--archive-url`` when the archive tables
   are gone (an operator dropped them once the files were safe): each file is read with
   pyarrow, checked against its own checksum after loading, and copied in through a staging
   table with ``ON CONFLICT DO NOTHING``, so a second restore adds nothing.

Afterwards ``scout replay`` (silver, then gold) sees the month like any other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.bronze_writer import parquet_archive
from services.bronze_writer.retention import ARCHIVE_SCHEMA, PARENT, RetentionError
from services.common.progress import Progress

log = logging.getLogger(__name__)

ARCHIVED_OF_MONTH = """
SELECT c.relname, quote_ident(c.relname) AS ident
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname ~ $2
ORDER BY c.relname
"""
ATTACHED_MONTH = "SELECT to_regclass(format('scout.%I', $1::text)) IS NOT NULL"
STAGING = "bronze_restore_staging"
CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (LIKE scout.{PARENT} INCLUDING DEFAULTS)
ON COMMIT DELETE ROWS
"""
_COLS = ", ".join(parquet_archive.COLUMNS)
INSERT_STAGED = f"""
INSERT INTO scout.{PARENT} ({_COLS}) SELECT {_COLS} FROM {STAGING} ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class Restored:
    source: str  # archive table or file
    how: str  # attached | copied | loaded
    rows: int


def month_name(month: date) -> str:
    return f"{PARENT}_{month:%Y%m}"


async def restore_month(
    conn: asyncpg.Connection,
    month: date,
    archive_url: str | None,
    *,
    progress: Callable[[str], None] = print,
    quiet: bool = False,
) -> list[Restored]:
    name = month_name(month)
    tables = await conn.fetch(ARCHIVED_OF_MONTH, ARCHIVE_SCHEMA, f"^{name}(_[0-9]+)?$")
    if tables:
        return [await _from_table(conn, month, t["relname"], t["ident"], progress) for t in tables]
    if archive_url is None:
        raise RetentionError(f"no {ARCHIVE_SCHEMA}.{name}*: pass --archive-url to load its files")
    fs, base = parquet_archive.filesystem(archive_url)
    pattern = re.compile(rf"^{name}(_[0-9]+)?\.parquet$")
    files = sorted(p for p in fs.ls(base, detail=False) if pattern.match(p.rsplit("/", 1)[-1]))
    if not files:
        raise RetentionError(f"no {ARCHIVE_SCHEMA}.{name}* table and no {name}*.parquet in "
                             f"{archive_url}")  # fmt: skip
    return [await _from_file(conn, month, fs, path, progress, quiet) for path in files]


async def _from_table(
    conn: asyncpg.Connection, month: date, relname: str, ident: str,
    progress: Callable[[str], None],
) -> Restored:  # fmt: skip
    source = f"{ARCHIVE_SCHEMA}.{ident}"
    async with conn.transaction():
        # A month archived before migration 0080 lacks the registry columns the parent has.
        await conn.execute(f"ALTER TABLE {source} ADD COLUMN IF NOT EXISTS registry_schema_id "
                           "integer, ADD COLUMN IF NOT EXISTS registry_payload bytea")  # fmt: skip
        rows = int(await conn.fetchval(f"SELECT count(*) FROM {source}"))
        if await conn.fetchval(ATTACHED_MONTH, month_name(month)):
            status = await conn.execute(
                f"INSERT INTO scout.{PARENT} ({_COLS}) SELECT {_COLS} FROM {source} "
                "ON CONFLICT DO NOTHING"
            )
            progress(f"{relname}: {status.rsplit(' ', 1)[1]} of {rows} rows copied into the "
                     "month's current partition")  # fmt: skip
            return Restored(source, "copied", rows)
        await conn.execute(f"DROP TRIGGER IF EXISTS archived_immutable ON {source}")
        await conn.execute(f"DROP TRIGGER IF EXISTS archived_no_truncate ON {source}")
        await conn.execute(f"ALTER TABLE {source} SET SCHEMA scout")
        end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        await conn.execute(
            f"ALTER TABLE scout.{PARENT} ATTACH PARTITION scout.{ident} "
            f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{end.isoformat()} "
            "00:00:00+00')"
        )
    progress(f"{relname}: re-attached ({rows} rows)")
    return Restored(source, "attached", rows)


async def _from_file(
    conn: asyncpg.Connection, month: date, fs: Any, path: str,
    progress: Callable[[str], None], quiet: bool,
) -> Restored:  # fmt: skip
    expected = parquet_archive.file_checksum(fs, path)
    meter = Progress(expected.rows, f"{path.rsplit('/', 1)[-1]}: load", quiet=quiet)
    async with conn.transaction():
        await conn.execute("SELECT scout.ensure_bronze_partition($1)", month)
        await conn.execute(CREATE_STAGING)
        for batch in parquet_archive.read_batches(fs, path):
            records = parquet_archive.copy_records(batch)
            await conn.copy_records_to_table(
                STAGING, records=records, columns=parquet_archive.COLUMNS
            )
            meter.advance(len(records))
        await conn.execute(INSERT_STAGED)
        loaded = await parquet_archive.database_checksum(
            conn, f"scout.{PARENT} WHERE id IN (SELECT id FROM {STAGING})"
        )
    meter.finish()
    if loaded != expected:
        raise RetentionError(f"{path}: file has {expected}, bronze holds {loaded} of its rows")
    progress(f"{path}: loaded and verified {expected}")
    return Restored(fs.unstrip_protocol(path), "loaded", expected.rows)
