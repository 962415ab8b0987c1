"""Parquet archives of bronze (`scout bronze retention --archive-url`, `scout bronze restore`):
the file read back with pyarrow equals the partition, and after detach → restore → replay
silver is what it was."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
import pytest

from services.common.kafka import make_producer, topics_for
from services.common.settings import Settings
from tests.integration.test_silver import _snapshot
from tests.support import ServiceProcess, settings_env, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration

OLD = datetime(2001, 1, 15, 12, tzinfo=UTC)  # Kafka time of the records: bronze month 2001-01
PARTITION = "bronze_transactions_raw_200101"
N = 60


def _scout(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=settings_env(settings),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


async def _publish_old_month(settings: Settings) -> None:
    topics = topics_for(settings)
    store = {"schema": "master.store/1", "store_id": "S0001", "name": "Store", "region": "NCR",
             "city": "Quezon City", "timezone": "Asia/Manila"}  # fmt: skip
    product = {"schema": "master.product/1", "sku": "P-1", "name": "Chips", "brand": "Oishi",
               "category": "snacks", "unit_price": "22.50"}  # fmt: skip
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topics.master_stores, json.dumps(store).encode(), key=b"S0001")
        await producer.send_and_wait(topics.master_products, json.dumps(product).encode(),
                                     key=b"P-1")  # fmt: skip
        ts = int(OLD.timestamp() * 1000)
        for i in range(N):
            body = {"schema": "pos.transaction/1", "event_id": f"OLD-{i}", "store_id": "S0001",
                    "occurred_at": "2026-11-20T10:15:00+08:00", "total_amount": "45.00",
                    "notes": 'quote " and\nnewline ñ',
                    "items": [{"sku": "P-1", "qty": 2, "unit_price": "22.50"}]}  # fmt: skip
            await producer.send(topics.pos, json.dumps(body).encode(), key=b"S0001",
                                timestamp_ms=ts + i)  # fmt: skip
        await producer.flush()
    finally:
        await producer.stop()


def _digest(pairs: list[tuple[str, str]]) -> str:
    """md5 over (id, raw JSON) in id order: computed here, independently of the archiver."""
    return hashlib.md5(
        ",".join(f"{i}:{raw}" for i, raw in sorted(pairs)).encode(), usedforsecurity=False
    ).hexdigest()


async def _bronze_month(db: asyncpg.Connection) -> tuple[int, str]:
    rows = await db.fetch(
        f"SELECT id::text AS id, raw_data::text AS raw FROM scout.{PARTITION}"
    )  # fmt: skip
    return len(rows), _digest([(r["id"], r["raw"]) for r in rows])


async def _attached(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'scout.bronze_transactions_raw'::regclass"
    )
    return {r["relname"] for r in rows}


async def _silver_filled(db: asyncpg.Connection) -> None:
    async def done() -> bool:
        n = await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
        lineage = await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
        return bool(n == N and lineage == N)

    await wait_for(done, timeout=90)


@pytest.fixture
async def landed_old_month(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> dict[str, Any]:
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    try:
        await _publish_old_month(settings)
        await _silver_filled(db)
        await asyncio.sleep(0.5)
    finally:
        stop_all(services)
    count, digest = await _bronze_month(db)
    assert count == N
    return {"count": count, "digest": digest, "silver": await _snapshot(db)}


async def test_parquet_archive_detach_restore_replay(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, landed_old_month: dict[str, Any]
) -> None:
    url = (tmp_path / "lake" / "bronze").as_uri()
    result = _scout(settings, "bronze", "retention", "--older-than", "24mo", "--archive-url", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified by reading the file back" in result.stdout
    assert PARTITION not in await _attached(db), "detached after the verified export"

    # What a lake tool sees: the file, read with pyarrow, holds exactly the partition.
    table = pq.read_table(tmp_path / "lake" / "bronze" / f"{PARTITION}.parquet")
    assert table.num_rows == landed_old_month["count"]
    pairs = list(zip(table.column("id").to_pylist(), table.column("raw_data").to_pylist(),
                     strict=True))  # fmt: skip
    assert _digest(pairs) == landed_old_month["digest"]
    assert set(table.column("kafka_topic").to_pylist()) == {topics_for(settings).pos}

    # The operator drops the archive table once the file is safe; silver is lost too.
    await db.execute(f"DROP TABLE scout_archive.{PARTITION}")
    await db.execute("DELETE FROM scout.silver_transactions_cleaned")
    await db.execute("DELETE FROM scout.silver_lineage")

    restored = _scout(settings, "bronze", "restore", "--month", "2001-01", "--archive-url", url)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restored 2001-01: 1 source(s), {N} rows" in restored.stdout
    assert await _bronze_month(db) == (landed_old_month["count"], landed_old_month["digest"])
    again = _scout(settings, "bronze", "restore", "--month", "2001-01", "--archive-url", url)
    assert again.returncode == 0, again.stderr
    assert (await _bronze_month(db))[0] == N, "a second restore adds nothing"

    replay = _scout(settings, "replay")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    replayed = await _snapshot(db)
    for name, rows in landed_old_month["silver"].items():
        assert replayed[name] == rows, name
    assert replayed["silver_transactions_cleaned"]


async def test_restore_reattaches_an_archive_table_still_there(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, landed_old_month: dict[str, Any]
) -> None:
    url = (tmp_path / "lake").as_uri()
    result = _scout(settings, "bronze", "retention", "--older-than", "24mo", "--archive-url", url)
    assert result.returncode == 0, result.stderr
    assert PARTITION not in await _attached(db)
    restored = _scout(settings, "bronze", "restore", "--month", "2001-01")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert PARTITION in await _attached(db)
    assert await _bronze_month(db) == (landed_old_month["count"], landed_old_month["digest"])
    # Immutable again, through the trigger the parent clones onto it at ATTACH.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute(f"DELETE FROM scout.{PARTITION}")
