"""Forward-only SQL migrations from ``schemas/sql/NNNN_name.sql``.

Each file runs in its own transaction under a session advisory lock, and is recorded with
its checksum in ``public.scout_schema_migrations``. Re-running applies nothing; a failing
file rolls back completely and stops the run; an applied file that was edited afterwards is
refused (write a new migration instead).

Policy: a migration that has been released (merged into main) is never edited, not even a
comment — its checksum is recorded in every database it ran on, and an edit would either be
refused there or, worse, differ silently between databases migrated before and after it.
Every change is a new numbered file: ``ALTER``, ``CREATE OR REPLACE`` (a view or function
re-created whole in the new file), or a data fix. Number ranges are handed out per branch so
parallel work never collides; files apply in number order.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.common.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x5C0_0001  # arbitrary, constant: one migrator per database at a time
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS public.scout_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_migrations_dir() -> Path:
    """``schemas/sql`` of the source tree (the package is installed in editable mode)."""
    return Path(__file__).resolve().parents[2] / "schemas" / "sql"


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return migrations


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('public.scout_schema_migrations')")
    if exists is None:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM public.scout_schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[Migration]:
    """Apply the pending migrations in order; returns the ones applied now."""
    migrations = load_migrations(directory or default_migrations_dir())
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(CREATE_VERSION_TABLE)
        done = await applied_versions(conn)
        applied = []
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            await _apply(conn, migration)
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    log.info("applying migration %s", label)
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO public.scout_schema_migrations (version, name, checksum) "
                "VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration {label} failed and was rolled back: {exc}") from exc
