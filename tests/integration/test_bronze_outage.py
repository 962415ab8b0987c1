"""PostgreSQL restarts under a running bronze writer: it retries, loses nothing, says so.

Uses a private PostgreSQL cluster (own port and folder) so the restart does not disturb
the other tests' server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from services.common.db import connect
from services.common.migrations import migrate
from services.common.settings import SERVICE_ROLES, Settings
from services.devstack import postgres
from tests.integration.test_bronze_writer import pos_records
from tests.support import ServiceProcess, free_port, publish, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def private_pg(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    pg_settings = settings.model_copy(
        update={"state_dir": tmp_path / "pgstate", "pg_port": free_port()}
    )
    postgres.discard(pg_settings)  # one an earlier run left at the same path: start empty
    postgres.up(pg_settings)
    try:
        yield pg_settings.model_copy(
            update={
                "database_url": SecretStr(postgres.url(pg_settings)),
                "state_dir": settings.state_dir,
                # The harness's service logins live in the shared cluster: here the service
                # connects as this private cluster's owner.
                **{f"database_url_{service}": None for service in SERVICE_ROLES},
            }
        )
    finally:
        postgres.discard(pg_settings)


async def test_postgres_restart_is_survived_and_reported(
    private_pg: Settings, tmp_path: Path
) -> None:
    """Records keep arriving while PostgreSQL is down: bronze holds them (retrying, saying
    so in its metrics and log) and lands every one exactly once when the server is back.

    The outage is staged, not timed: bronze has landed records (its pool is in use) before
    the server stops, and the server starts again only once bronze has counted a retry, so
    a slow start of the service cannot move the outage to a moment bronze never sees.
    """
    conn = await connect(private_pg, attempts=20)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pg_state = private_pg.model_copy(update={"state_dir": tmp_path / "pgstate"})
    service = ServiceProcess("bronze", private_pg, tmp_path, SCOUT_BATCH_MAX="500").start()
    records = list(pos_records(private_pg, 6_000))
    before, during, after = records[:2_000], records[2_000:4_000], records[4_000:]

    async def count() -> int:
        c = await asyncpg.connect(private_pg.database_url.get_secret_value())
        try:
            return int(await c.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw"))
        finally:
            await c.close()

    def landed(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await count() >= n

        return check

    async def retried() -> bool:
        return service.metric("scout_db_retries_total", layer="bronze") >= 1

    try:
        await publish(private_pg, before, rate=2_000)
        await wait_for(landed(len(before)), timeout=120, context=service.log_tail)
        await asyncio.to_thread(postgres.down, pg_state)
        await publish(private_pg, during, rate=2_000)
        await wait_for(retried, timeout=60, context=service.log_tail)
        assert service.metric("scout_db_up", layer="bronze") == 0
        await asyncio.to_thread(postgres.up, pg_state)
        await publish(private_pg, after, rate=2_000)
        await wait_for(landed(len(records)), timeout=120, context=service.log_tail)
        await asyncio.sleep(1)
        assert await count() == len(records)
        assert service.metric("scout_db_up", layer="bronze") == 1
        assert "bronze batch failed" in service.log_path.read_text()
    finally:
        assert service.stop() == 0, service.log_tail()
