"""PostgreSQL goes away under running workers: they retry, lose nothing, double nothing,
say so, and none of them exits.

- a fast shutdown and restart under the bronze writer, staged step by step;
- a crash (immediate shutdown: no checkpoint, recovery at the next start) under the whole
  chain, bronze, silver and gold, while records keep arriving;
- COMMITs that reach the server but whose answer never reaches the worker;
- a server that refuses every record alike: read-only after a failover, a grant missing;
- a server whose statement_timeout is shorter than a batch's write takes.

The restart and the crash use a private PostgreSQL cluster (own port and folder), so they
do not disturb the other tests' server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from pydantic import SecretStr

from services.common.db import connect
from services.common.migrations import migrate
from services.common.settings import SERVICE_ROLES, Settings
from services.devstack import postgres
from tests.fuzz import STORES
from tests.integration.test_bronze_writer import pos_records
from tests.integration.test_never_stop import (
    _masters,
    _valid,
    assert_never_stopped,
    gold_verify,
    until_settled,
)
from tests.support import (
    LostCommitReplies,
    ServiceProcess,
    free_port,
    publish,
    start_all,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def private_pg(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """A migrated private cluster; the services connect as its owner."""
    pg_settings = settings.model_copy(
        update={"state_dir": tmp_path / "pgstate", "pg_port": free_port()}
    )
    # one an earlier run left at the same path: start empty (devstack runs its own loop)
    await asyncio.to_thread(postgres.discard, pg_settings)
    try:
        await asyncio.to_thread(postgres.up, pg_settings)
        private = pg_settings.model_copy(
            update={
                "database_url": SecretStr(postgres.url(pg_settings)),
                "state_dir": settings.state_dir,
                # The harness's service logins live in the shared cluster: here the service
                # connects as this private cluster's owner.
                **{f"database_url_{service}": None for service in SERVICE_ROLES},
            }
        )
        conn = await connect(private, attempts=20)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield private
    finally:
        await asyncio.to_thread(postgres.discard, pg_settings)


async def test_postgres_restart_is_survived_and_reported(
    private_pg: Settings, tmp_path: Path
) -> None:
    """Records keep arriving while PostgreSQL is down: bronze holds them (retrying, saying
    so in its metrics and log) and lands every one exactly once when the server is back.

    The outage is staged, not timed: bronze has landed records (its pool is in use) before
    the server stops, and the server starts again only once bronze has counted a retry, so
    a slow start of the service cannot move the outage to a moment bronze never sees.
    """
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


OPEN_QUARANTINE = "SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL"


def _recent_sales(settings: Settings, n: int, tag: str) -> list[tuple[str, bytes, bytes]]:
    """Valid sales of 30.00 each, of the last minute: gold's live rolling windows hold them."""
    at = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    return [(t, k, json.dumps({**json.loads(v), "occurred_at": at}).encode())
            for t, k, v in _valid(settings, n, tag)]  # fmt: skip


async def assert_each_sale_once(db: asyncpg.Connection, published: int, gold: ServiceProcess,
                                settings: Settings) -> None:  # fmt: skip
    """Every sale in bronze once (by its Kafka coordinates) and in silver once, none left in
    quarantine, gold equal to its recomputation, and gold's live rolling windows counting
    each sale once (the test's sales are all of the last minute)."""
    counts = await db.fetchrow("""
        SELECT (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze,
               (SELECT count(DISTINCT (kafka_topic, kafka_partition, kafka_offset))
                  FROM scout.bronze_transactions_raw) AS bronze_coordinates,
               (SELECT count(*) FROM scout.silver_transactions_cleaned) AS silver,
               (SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL)
                 AS quarantined""")  # fmt: skip
    assert dict(counts) == {"bronze": published, "bronze_coordinates": published,
                            "silver": published, "quarantined": 0}  # fmt: skip
    verify = await asyncio.to_thread(gold_verify, settings)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    per_store = await db.fetch(
        "SELECT store_id, count(*) AS n FROM scout.silver_transactions_cleaned GROUP BY 1"
    )
    await asyncio.sleep(1.0)  # the windows take a flush's changes after its commit
    rolling = json.loads(gold.get("/gold/rolling"))["stores"]
    assert rolling == {r["store_id"]: {"transactions": r["n"], "revenue": f"{30 * r['n']}.00"}
                       for r in per_store}  # fmt: skip


async def test_a_postgres_crash_under_the_running_chain_loses_and_doubles_nothing(
    private_pg: Settings, tmp_path: Path
) -> None:
    """Bronze, silver and gold run while sales keep arriving; PostgreSQL crashes while
    silver is behind bronze (so every layer has work in flight), stays down until each layer
    has retried, and comes back through crash recovery. Every sale is then in bronze once,
    in silver once, gold equals its recomputation, and every worker is the process it was."""
    pg_state = private_pg.model_copy(update={"state_dir": tmp_path / "pgstate"})
    url = private_pg.database_url.get_secret_value()
    services = start_all(
        ServiceProcess(n, private_pg, tmp_path, SCOUT_BATCH_MAX="500")
        for n in ("bronze", "silver", "gold")
    )
    pids = [s.proc.pid for s in services if s.proc is not None]
    before = _recent_sales(private_pg, 1_000, "BEFORE")
    during = _recent_sales(private_pg, 3_000, "DURING")
    after = _recent_sales(private_pg, 1_000, "AFTER")
    seen: dict[str, int] = {}

    async def silver_behind() -> bool:
        # silver is busy with DURING and bronze has landed records silver has not taken yet
        c = await asyncpg.connect(url)
        try:
            row = await c.fetchrow("""
                SELECT (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze,
                       (SELECT count(*) FROM scout.silver_lineage) AS silver""")  # fmt: skip
        finally:
            await c.close()
        seen.update(dict(row))
        return bool(row["silver"] >= len(before) + 300 and row["bronze"] - row["silver"] >= 100)

    async def every_layer_retried() -> bool:
        retries = {s.service: s.metric("scout_db_retries_total", layer=s.service)
                   for s in services}  # fmt: skip
        seen.update({f"{k} retries": int(v) for k, v in retries.items()})
        return all(v >= 1 for v in retries.values())

    try:
        await publish(private_pg, _masters(private_pg) + before)
        db = await asyncpg.connect(url)
        try:
            await until_settled(db, len(before))
        finally:
            await db.close()
        publishing = asyncio.create_task(publish(private_pg, during, rate=1_500))
        await wait_for(silver_behind, timeout=60, interval=0.05, context=lambda: seen)
        await asyncio.to_thread(partial(postgres.down, pg_state, mode="immediate"))
        # Silver may have finished its hand-offs in the moment the server took to stop, and
        # bronze lands (and hands off) nothing while it is down: a master record, which
        # silver reads from Kafka itself, gives silver work that needs the server.
        await publish(private_pg, _masters(private_pg)[:1])
        await wait_for(every_layer_retried, timeout=60, context=lambda: seen)
        await publishing
        assert all(s.metric("scout_db_up", layer=s.service) == 0 for s in services)
        await asyncio.to_thread(postgres.up, pg_state)
        await publish(private_pg, after)
        published = len(before) + len(during) + len(after)
        db = await asyncpg.connect(url)
        try:
            await until_settled(db, published, timeout=240)
            await assert_each_sale_once(db, published, services[-1], private_pg)
        finally:
            await db.close()
        assert [s.proc.pid for s in services if s.proc is not None] == pids
        assert_never_stopped(services)
        assert all(s.metric("scout_db_up", layer=s.service) == 1 for s in services)
    finally:
        stop_all(services, check=False)


async def test_commits_whose_answer_is_lost_are_retried_without_a_double(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Each of bronze, silver and gold talks to PostgreSQL through a proxy that, while sales
    arrive, lets three COMMITs through and cuts the connection before their answer (gold's:
    of flushes that took changes): the transaction committed, and the worker cannot know it
    ("transaction resolution unknown"). It retries; every write being idempotent, nothing
    doubles, and gold's live rolling windows, kept in memory, are loaded again."""
    layers = ("bronze", "silver", "gold")
    proxies = {}
    for layer in layers:
        own = getattr(settings, f"database_url_{layer}")
        proxies[layer] = await LostCommitReplies(
            own.get_secret_value(), only_with_rows=layer == "gold"
        ).start()
    proxied = settings.model_copy(
        update={f"database_url_{n}": SecretStr(p.url) for n, p in proxies.items()}
    )
    # The proxies serve in this event loop: what waits on the workers runs in a thread.
    services = await asyncio.to_thread(
        start_all, [ServiceProcess(n, proxied, tmp_path, SCOUT_BATCH_MAX="200") for n in layers]
    )
    first, second = _recent_sales(settings, 500, "FIRST"), _recent_sales(settings, 2_000, "SECOND")
    seen: dict[str, int] = {}

    async def every_layer_lost_three() -> bool:
        seen.update({n: p.dropped for n, p in proxies.items()})
        return all(p.dropped >= 3 for p in proxies.values())

    try:
        await publish(settings, _masters(settings) + first)
        await until_settled(db, len(first))
        for proxy in proxies.values():
            proxy.to_drop = 3
        await publish(settings, second, rate=1_000)
        await wait_for(every_layer_lost_three, timeout=60, context=lambda: seen)
        published = len(first) + len(second)
        await until_settled(db, published)
        await assert_each_sale_once(db, published, services[-1], settings)
        assert_never_stopped(services)
        for service in services:
            assert service.metric("scout_db_retries_total", layer=service.service) >= 1
    finally:
        await asyncio.to_thread(partial(stop_all, services, check=False))
        for proxy in proxies.values():
            await proxy.close()


async def test_a_read_only_database_is_an_outage_not_bad_data(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A failover leaves a worker on a server that refuses writes (a standby, a demoted
    primary, ``default_transaction_read_only``): the records are not at fault, so nothing is
    isolated, quarantined or dead-lettered. The worker waits as in an outage and opens new
    sessions, which reach a writable server once there is one; then everything lands once.

    Staged one layer at a time, downstream first, so each has work while it may not write:
    gold's login turns read-only (its sessions end, as in a failover), then silver's, then
    bronze's, each with sales behind it."""
    layers = ("bronze", "silver", "gold")
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in layers)
    logins = {n: urlsplit(getattr(settings, f"database_url_{n}").get_secret_value()).username
              for n in layers}  # fmt: skip
    sales = [_recent_sales(settings, 200, tag) for tag in ("FIRST", "GOLD", "SILVER", "BRONZE")]
    retries: dict[str, float] = {}

    def waiting(layer: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            retries.update({s.service: s.metric("scout_db_retries_total", layer=s.service)
                            for s in services})  # fmt: skip
            return retries[layer] >= 2

        return check

    try:
        await publish(settings, _masters(settings) + sales[0])
        await until_settled(db, len(sales[0]))
        for layer, behind in zip(("gold", "silver", "bronze"), sales[1:], strict=True):
            await db.execute(f'ALTER ROLE "{logins[layer]}" SET default_transaction_read_only = on')
            await db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE usename = $1", logins[layer])  # fmt: skip
            await publish(settings, behind)
            await wait_for(waiting(layer), timeout=60, context=lambda: retries)
        kept = await db.fetchrow("""
            SELECT (SELECT count(*) FROM scout.bronze_error_log) AS bronze,
                   (SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL)
                     AS silver,
                   (SELECT count(*) FROM scout.gold_dead_letters) AS gold""")  # fmt: skip
        assert dict(kept) == {"bronze": 0, "silver": 0, "gold": 0}
        assert not any(s.metric("scout_db_up", layer=s.service) for s in services)
        # Writable again; the workers' sessions are still read-only ones.
        for login in logins.values():
            await db.execute(f'ALTER ROLE "{login}" RESET default_transaction_read_only')
        published = sum(len(part) for part in sales)
        await until_settled(db, published, timeout=120)
        await assert_each_sale_once(db, published, services[-1], settings)
        assert_never_stopped(services)
    finally:
        for login in logins.values():
            await db.execute(f'ALTER ROLE "{login}" RESET default_transaction_read_only')
        stop_all(services, check=False)


async def test_a_missing_grant_is_waited_out_not_quarantined(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A deployment that lost a grant (or has not run a migration yet) refuses every record
    alike: silver waits, says so, keeps nothing aside, and lands everything once the grant
    is back."""
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    silver = services[1]
    role = settings.db_role_silver
    first, second = _recent_sales(settings, 200, "FIRST"), _recent_sales(settings, 300, "SECOND")
    try:
        await publish(settings, _masters(settings) + first)
        await until_settled(db, len(first), gold=False)
        await db.execute(f'REVOKE INSERT ON scout.silver_transactions_cleaned FROM "{role}"')
        await publish(settings, second)

        async def waits() -> bool:
            return silver.metric("scout_db_retries_total", layer="silver") >= 2

        await wait_for(waits, timeout=60, context=silver.log_tail)
        assert silver.metric("scout_db_up", layer="silver") == 0
        assert await db.fetchval(OPEN_QUARANTINE) == 0
        await db.execute(f'GRANT INSERT ON scout.silver_transactions_cleaned TO "{role}"')
        await until_settled(db, len(first) + len(second), gold=False)
        assert await db.fetchval(OPEN_QUARANTINE) == 0
        assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 500
        assert_never_stopped(services)
    finally:
        stop_all(services, check=False)


# Per row written, in seconds, and each login's statement_timeout: a whole batch outlasts it,
# a part of it does not. Gold writes a row per (store, day), three here: three rows outlast
# its timeout, two do not.
SLOW_ROWS = {
    "bronze": ("bronze_transactions_raw", 0.002, "500ms"),
    "silver": ("silver_transactions_cleaned", 0.002, "500ms"),
    "gold": ("gold_business_metrics", 0.6, "1500ms"),
}


def _one_store_over_three_days(settings: Settings, n: int) -> list[tuple[str, bytes, bytes]]:
    """Sales of one store, today (in the live windows), yesterday and the day before, in
    turn: every part silver writes, and so every gold flush, holds all three of its days."""
    now, store = datetime.now(UTC) - timedelta(seconds=60), STORES[0]
    out = []
    for i, (topic, _, value) in enumerate(_valid(settings, 3 * n, "DAYS")):
        at = (now - timedelta(days=i % 3)).isoformat()
        sale = {**json.loads(value), "store_id": store, "occurred_at": at}
        out.append((topic, store.encode(), json.dumps(sale).encode()))
    return out


async def test_a_statement_timeout_shorter_than_a_batch_splits_it_and_loses_nothing(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """The database sets each service's login a statement_timeout (as a DBA does) that every
    whole batch outlasts: the server cancels the statement (57014), which retried as it is
    would be cancelled again forever. Each layer writes the batch again in halves instead
    (bronze's COPY, silver's parts, gold's shards, then the groups of a single shard), keeps
    nothing aside, and every sale lands once. The time a write takes is made by a trigger
    that sleeps per row."""
    database = await db.fetchval("SELECT current_database()")
    await db.execute("""
        CREATE FUNCTION public.test_slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(TG_ARGV[0]::float8); RETURN NEW; END $$""")  # fmt: skip
    for layer, (table, seconds, timeout) in SLOW_ROWS.items():
        login = urlsplit(getattr(settings, f"database_url_{layer}").get_secret_value()).username
        await db.execute(f'ALTER ROLE "{login}" IN DATABASE "{database}" '
                         f"SET statement_timeout = '{timeout}'")  # fmt: skip
        slow = f"EXECUTE FUNCTION public.test_slow_row({seconds})"
        await db.execute(f"CREATE TRIGGER test_slow BEFORE INSERT OR UPDATE ON scout.{table} "
                         f"FOR EACH ROW {slow}")  # fmt: skip
    services = start_all(
        ServiceProcess(n, settings, tmp_path, SCOUT_BATCH_MAX="500") for n in SLOW_ROWS
    )
    gold = services[-1]
    sales = _recent_sales(settings, 1_500, "SLOW")
    # The stores of the test are in three shards: a flush of them all outlasts gold's
    # timeout, and so does the flush of the one shard of a store with three days.
    days = _one_store_over_three_days(settings, 200)
    try:
        await publish(settings, _masters(settings) + sales)
        await until_settled(db, len(sales), timeout=240)
        await assert_each_sale_once(db, len(sales), gold, settings)
        await publish(settings, days)
        published = len(sales) + len(days)
        await until_settled(db, published, timeout=240)
        counts = await db.fetchrow("""
            SELECT (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze,
                   (SELECT count(*) FROM scout.silver_transactions_cleaned) AS silver,
                   (SELECT count(*) FROM scout.silver_quarantine) AS quarantined,
                   (SELECT count(*) FROM scout.bronze_error_log) AS refused,
                   (SELECT count(*) FROM scout.gold_dead_letters) AS dead_letters""")  # fmt: skip
        assert dict(counts) == {"bronze": published, "silver": published, "quarantined": 0,
                                "refused": 0, "dead_letters": 0}  # fmt: skip
        verify = await asyncio.to_thread(gold_verify, settings)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        await asyncio.sleep(1.0)
        rolling = json.loads(gold.get("/gold/rolling"))["stores"]
        assert rolling[STORES[0]]["transactions"] == 500 + 200  # today's: 1/3 of each part
        for service in services:
            cancelled = service.metric("scout_statements_cancelled_total", layer=service.service)
            assert cancelled >= 1, service.log_tail()
        assert "cancelled by the server" in gold.log_path.read_text()
        assert_never_stopped(services)
    finally:
        stop_all(services, check=False)
