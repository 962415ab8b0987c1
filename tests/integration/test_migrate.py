"""`scout migrate` on the real PostgreSQL: idempotent, atomic per file, records versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from services.common.errors import MigrationError
from services.common.migrations import default_migrations_dir, migrate

pytestmark = pytest.mark.integration


async def _schema_snapshot(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'scout' ORDER BY 1, 2"
    )
    return [(r["table_name"], r["column_name"]) for r in rows]


async def test_migrate_twice_changes_nothing(db: asyncpg.Connection) -> None:
    # The test database is a clone of a migrated template: everything is applied already.
    before = await _schema_snapshot(db)
    versions_before = await db.fetch("SELECT * FROM public.scout_schema_migrations ORDER BY 1")
    assert await migrate(db) == []
    assert await _schema_snapshot(db) == before
    assert await db.fetch("SELECT * FROM public.scout_schema_migrations ORDER BY 1") == (
        versions_before
    )
    assert len(versions_before) == len(list(default_migrations_dir().glob("*.sql")))


async def test_broken_migration_leaves_no_partial_change(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    migrations = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), migrations)
    (migrations / "9998_good.sql").write_text("CREATE TABLE scout.good_one (id int);")
    (migrations / "9999_broken.sql").write_text(
        "CREATE TABLE scout.half_done (id int);\nSELECT no_such_function();"
    )
    with pytest.raises(MigrationError, match="9999_broken failed and was rolled back"):
        await migrate(db, migrations)
    # The good migration before it stays applied; the broken one left nothing behind.
    assert await db.fetchval("SELECT to_regclass('scout.good_one')") is not None
    assert await db.fetchval("SELECT to_regclass('scout.half_done')") is None
    versions = {r["version"] for r in await db.fetch("SELECT version FROM scout_schema_migrations")}
    assert 9998 in versions and 9999 not in versions


def test_cli_migrate_exits_non_zero_on_failure(database_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), migrations)
    (migrations / "9999_broken.sql").write_text("SELECT 1/0;")
    env = {**os.environ, "SCOUT_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate", "--dir", str(migrations)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 5, result.stderr
    assert "9999_broken failed and was rolled back" in result.stderr
    again = subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert again.returncode == 0 and "up to date" in again.stdout


async def test_edited_migration_is_refused(db: asyncpg.Connection, tmp_path: Path) -> None:
    migrations = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), migrations)
    first = sorted(migrations.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(db, migrations)
