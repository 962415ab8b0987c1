"""`scout bronze erase-customer`: one customer's raw records go, bronze stays append-only."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest

from services.common.settings import Settings
from tests.support import settings_env

pytestmark = pytest.mark.integration

INSERT_RAW = (
    "INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, kafka_topic, "
    "kafka_partition, kafka_offset, kafka_timestamp) VALUES ($1, $2, 'pos', 'pos', 0, $3, $4)"
)
INSERT_ERROR = (
    "INSERT INTO scout.bronze_error_log (id, raw_bytes, reason, kafka_topic, kafka_partition, "
    "kafka_offset, kafka_timestamp) VALUES ($1, $2, 'not_json', 'pos', 0, $3, now())"
)


def erase(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "bronze", "erase-customer", *args],
        env=settings_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def tx(customer: str | None, n: int) -> str:
    body: dict[str, object] = {"schema": "pos.transaction/1", "event_id": f"E{n}"}
    if customer:
        body["customer"] = {"id": customer, "phone": "+639171234567"}
    return json.dumps(body)


async def _counts(db: asyncpg.Connection) -> tuple[int, int, int]:
    raw = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
    err = await db.fetchval("SELECT count(*) FROM scout.bronze_error_log")
    target = await db.fetchval(
        "SELECT count(*) FROM scout.bronze_transactions_raw "
        "WHERE raw_data -> 'customer' ->> 'id' = 'C-1'"
    )
    return raw, err, target


async def test_erase_one_customer_and_nothing_else(
    settings: Settings, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    old = datetime(2001, 1, 15, tzinfo=UTC)
    await db.execute("SELECT scout.ensure_bronze_partition($1)", date(2001, 1, 1))
    rows = [("C-1", 1, now), ("C-1", 2, old), ("C-10", 3, now), ("C-2", 4, now), (None, 5, now)]
    for customer, offset, ts in rows:
        await db.execute(INSERT_RAW, uuid.uuid4(), tx(customer, offset), offset, ts)
    await db.execute(INSERT_ERROR, uuid.uuid4(), b'{"customer": {"id": "C-1", "pho', 1)
    await db.execute(INSERT_ERROR, uuid.uuid4(), b'{"customer": {"id": "C-10"}', 2)
    # One of C-1's records is already archived by retention.
    await db.execute(
        "ALTER TABLE scout.bronze_transactions_raw DETACH PARTITION "
        "scout.bronze_transactions_raw_200101"
    )
    await db.execute("ALTER TABLE scout.bronze_transactions_raw_200101 SET SCHEMA scout_archive")
    await db.execute(
        "CREATE TRIGGER archived_immutable BEFORE UPDATE OR DELETE ON "
        "scout_archive.bronze_transactions_raw_200101 FOR EACH ROW EXECUTE FUNCTION "
        "scout.bronze_raw_refuse_change()"
    )

    no_reason = erase(settings, "C-1", "--reason", "")
    assert no_reason.returncode != 0 and "reason" in no_reason.stderr
    done = erase(settings, "C-1", "--reason", "DSR-2026-0042")
    assert done.returncode == 0, done.stderr
    assert "erased 1 raw record(s), 1 archived record(s), 1 error-log payload(s)" in done.stdout

    assert await _counts(db) == (3, 1, 0)
    assert (
        await db.fetchval("SELECT count(*) FROM scout_archive.bronze_transactions_raw_200101") == 0
    )
    left = await db.fetch(
        "SELECT raw_data -> 'customer' ->> 'id' AS c FROM scout.bronze_transactions_raw"
    )
    assert sorted(str(r["c"]) for r in left) == ["C-10", "C-2", "None"]
    log = await db.fetchrow("SELECT * FROM scout.pii_erasure_log")
    assert log["reason"] == "DSR-2026-0042" and log["raw_rows"] == 1 and log["error_rows"] == 1
    assert "C-1" not in json.dumps(dict(log), default=str)  # a digest, not the id

    # Everything else is still append-only, for the owner too, even with the setting forged.
    for statement in [
        "DELETE FROM scout.bronze_transactions_raw",
        "UPDATE scout.bronze_transactions_raw SET source_system = 'api'",
        "DELETE FROM scout.bronze_error_log",
    ]:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
            await db.execute(statement)
    async with db.transaction():
        await db.execute("SET LOCAL scout.erasing_customer = 'C-2'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
            await db.execute(
                "UPDATE scout.bronze_transactions_raw SET source_system = 'api' "
                "WHERE raw_data -> 'customer' ->> 'id' = 'C-2'"
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await db.execute("TRUNCATE scout.bronze_transactions_raw")
    assert await _counts(db) == (3, 1, 0)
    again = erase(settings, "C-1", "--reason", "DSR-2026-0042")
    assert again.returncode == 0 and "erased 0 raw record(s)" in again.stdout
