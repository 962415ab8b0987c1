"""`scout bronze retention`: old partitions become verified files and detached archive tables."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest

from services.common.settings import Settings
from tests.conftest import Stack
from tests.support import settings_env

pytestmark = pytest.mark.integration

OLD_MONTHS = {  # month → rows; awkward JSON on purpose (newline, quotes, comma, unicode)
    date(2001, 1, 1): [
        {"event_id": "a1", "note": 'line one\nline "two", three'},
        {"event_id": "a2", "amount": 1500.00},
        {"event_id": "a3", "name": "Sari-sari ñ ✓"},
    ],
    date(2001, 2, 1): [{"event_id": "b1"}, {"event_id": "b2"}],
    date(2001, 3, 1): [],  # empty partition: archived with a header-only file
}


def retention(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "bronze", "retention", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def insert(db: asyncpg.Connection, month: date, rows: list[dict], offset0: int) -> None:
    await db.execute("SELECT scout.ensure_bronze_partition($1)", month)
    ts = datetime(month.year, month.month, 15, 12, tzinfo=UTC)
    for i, body in enumerate(rows):
        await db.execute(
            "INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, "
            "kafka_topic, kafka_partition, kafka_offset, kafka_timestamp) "
            "VALUES ($1, $2, 'pos', 'scout.pos.transactions', 0, $3, $4)",
            uuid.uuid4(), json.dumps(body), offset0 + i, ts,
        )  # fmt: skip


async def attached(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'scout.bronze_transactions_raw'::regclass"
    )
    return {r["relname"] for r in rows}


def read_archive(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def part(month: date) -> str:
    return f"bronze_transactions_raw_{month:%Y%m}"


@pytest.fixture
def cli_settings(stack: Stack, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap=stack.kafka_bootstrap,
        database_url=database_url,  # type: ignore[arg-type]
        state_dir=tmp_path / "state",
    )


async def test_retention_archives_old_partitions_exactly_once(
    cli_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    for n, (month, rows) in enumerate(OLD_MONTHS.items()):
        await insert(db, month, rows, offset0=100 * n)
    today = datetime.now(UTC).date().replace(day=1)
    recent = date(today.year - 1, today.month, 1)  # 12 months back: inside 24 months
    await insert(db, recent, [{"event_id": "r1"}], offset0=1000)
    await insert(db, today, [{"event_id": "t1"}, {"event_id": "t2"}], offset0=2000)
    before = await attached(db)
    archive = tmp_path / "archive"

    dry = retention(
        cli_settings, "--older-than", "24mo", "--archive-dir", str(archive), "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "would archive 3 partition(s), 5 rows" in dry.stdout
    assert await attached(db) == before and not archive.exists()

    run = retention(cli_settings, "--older-than", "24mo", "--archive-dir", str(archive))
    assert run.returncode == 0, run.stderr
    assert "archived 3 partition(s), 5 rows" in run.stdout
    for month in OLD_MONTHS:
        assert f"{part(month)}: detached" in run.stdout

    # Files: exactly the rows of each month, nothing else in the folder.
    assert sorted(p.name for p in archive.iterdir()) == [
        f"{part(m)}.csv.gz" for m in sorted(OLD_MONTHS)
    ]
    for month, rows in OLD_MONTHS.items():
        exported = read_archive(archive / f"{part(month)}.csv.gz")
        bodies = sorted((json.loads(r["raw_data"]) for r in exported), key=lambda b: b["event_id"])
        assert bodies == rows
        archived = await db.fetch(
            f"SELECT id::text, raw_data::text, kafka_offset::text FROM scout_archive.{part(month)}"
        )
        assert {(r["id"], r["raw_data"], r["kafka_offset"]) for r in archived} == {
            (r["id"], r["raw_data"], r["kafka_offset"]) for r in exported
        }

    # Detached and moved; newer partitions untouched, with their rows.
    assert await attached(db) == before - {part(m) for m in OLD_MONTHS}
    assert {part(recent), part(today)} <= await attached(db)
    assert await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") == 3
    assert await db.fetchval("SELECT to_regclass('scout.bronze_transactions_raw_200101')") is None
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await db.execute("DELETE FROM scout_archive.bronze_transactions_raw_200101")

    # Rerun: nothing to do, files untouched.
    snapshot = {p.name: p.read_bytes() for p in archive.iterdir()}
    again = retention(cli_settings, "--older-than", "24mo", "--archive-dir", str(archive))
    assert again.returncode == 0, again.stderr
    assert "archived 0 partition(s), 0 rows" in again.stdout
    assert {p.name: p.read_bytes() for p in archive.iterdir()} == snapshot

    # A late record re-creates an archived month: archived next to the first one, never over it.
    await insert(db, date(2001, 1, 1), [{"event_id": "late"}], offset0=5000)
    late = retention(cli_settings, "--older-than", "24mo", "--archive-dir", str(archive))
    assert late.returncode == 0, late.stderr
    second = read_archive(archive / "bronze_transactions_raw_200101_2.csv.gz")
    assert [json.loads(r["raw_data"]) for r in second] == [{"event_id": "late"}]
    assert {p.name: p.read_bytes() for p in archive.iterdir() if p.name in snapshot} == snapshot
    late_table = "scout_archive.bronze_transactions_raw_200101_2"
    assert await db.fetchval(f"SELECT count(*) FROM {late_table}") == 1


async def test_failed_export_leaves_the_partition_attached(
    cli_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await insert(db, date(2002, 5, 1), [{"event_id": "x"}], offset0=0)
    not_a_dir = tmp_path / "archive"
    not_a_dir.write_text("a file where the archive folder should be")

    run = retention(cli_settings, "--older-than", "24mo", "--archive-dir", str(not_a_dir))

    assert run.returncode != 0
    assert "still attached" in run.stderr
    assert part(date(2002, 5, 1)) in await attached(db)
    assert await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") == 1


def test_period_is_validated(cli_settings: Settings) -> None:
    run = retention(cli_settings, "--older-than", "24 months")
    assert run.returncode != 0 and "--older-than" in run.stderr
