"""Bronze is immutable in the database itself, and the bronze role may only append."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration

INSERT_ROW = """
INSERT INTO scout.bronze_transactions_raw
    (id, raw_data, source_system, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)
VALUES ($1, '{"schema": "pos.transaction/1"}', 'pos', 't', 0, $2, $3)
"""


async def _insert(conn: asyncpg.Connection, offset: int, when: str = "now") -> None:
    ts = await conn.fetchval("SELECT $1::text::timestamptz", when)
    await conn.execute(INSERT_ROW, uuid.uuid4(), offset, ts)


async def test_update_and_delete_are_refused_even_for_the_owner(db: asyncpg.Connection) -> None:
    await _insert(db, 1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="bronze is immutable"):
        await db.execute("UPDATE scout.bronze_transactions_raw SET source_system = 'api'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="bronze is immutable"):
        await db.execute("DELETE FROM scout.bronze_transactions_raw")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="bronze is immutable"):
        await db.execute("TRUNCATE scout.bronze_transactions_raw")
    assert await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") == 1


async def test_bronze_role_appends_only(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"role": "scout_bronze_writer"})
    try:
        await _insert(conn, 7)
        # A record of a month long past lands too: its partition is made on demand.
        await conn.execute("SELECT scout.ensure_bronze_partition('2019-03-15')")
        await _insert(conn, 8, "2019-03-15T10:00:00+08:00")
        for statement in (
            "SELECT count(*) FROM scout.bronze_transactions_raw",
            "UPDATE scout.bronze_transactions_raw SET source_system = 'api'",
            "DELETE FROM scout.bronze_transactions_raw",
            "DELETE FROM scout.bronze_error_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_redelivered_offset_is_refused(db: asyncpg.Connection) -> None:
    ts = await db.fetchval("SELECT now()")
    await db.execute(INSERT_ROW, uuid.uuid4(), 42, ts)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(INSERT_ROW, uuid.uuid4(), 42, ts)
