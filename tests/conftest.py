"""Fixtures giving every test a real Kafka broker and a real PostgreSQL, cleanly isolated.

Where a Docker engine answers, testcontainers start both. Otherwise the services named by
SCOUT_KAFKA_BOOTSTRAP and SCOUT_DATABASE_URL are used (``.ci/run`` and ``scout dev up``
start them). With neither, a test that needs them fails and says how to start them.

Isolation: each test gets its own database, cloned from a migrated template (fast), and its
own topic prefix, so tests never see each other's rows or messages.

Logins: the services in the tests connect as they do deployed, each with its own login
(``services/common/logins.py``). A test session creates its own set (unique names, generated
passwords: roles are cluster-wide and other sessions may run at the same time) and drops it at
the end. The ``settings`` fixture carries them as ``database_url_<service>``; ``db`` and
``database_url`` stay the owner's (migrations, assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.common import kafka_acls
from services.common.kafka import create_topics, delete_topics_with_prefix
from services.common.logins import Login, drop_logins, ensure_logins, new_logins
from services.common.migrations import default_migrations_dir, load_migrations, migrate
from services.common.settings import Settings

# `scout dev up` exports the dev stack's own service logins; the tests make theirs.
for _name in [n for n in os.environ if n.startswith("SCOUT_DATABASE_URL_")]:
    del os.environ[_name]

HOW_TO_START = (
    "no Kafka/PostgreSQL for the integration tests: run `scout dev up` and export the "
    "SCOUT_KAFKA_BOOTSTRAP and SCOUT_DATABASE_URL it prints (or run `make test`, or start "
    "a Docker engine for testcontainers)"
)


# A real (not placeholder) key for the test environment, the same in every session.
TEST_PII_SECRET = "scout-tests-5b0e6a1c9d2f4e8ab7c3d1f0e9a8b7c6"


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    database_url: str  # of the server's admin database

    def url_for(self, database: str) -> str:
        """The same server, user and TLS parameters (query), another database."""
        parts = urlsplit(self.database_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    bootstrap = os.environ.get("SCOUT_KAFKA_BOOTSTRAP")
    db_url = os.environ.get("SCOUT_DATABASE_URL")
    if bootstrap and db_url:
        yield Stack(bootstrap, db_url)
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
            PostgresContainer("postgres:16", driver=None) as pg,
        ):
            yield Stack(kafka.get_bootstrap_server(), pg.get_connection_url())
        return
    pytest.fail(HOW_TO_START, pytrace=False)


def _template_name() -> str:
    digest = uuid.uuid5(
        uuid.NAMESPACE_OID, "".join(m.checksum for m in load_migrations(default_migrations_dir()))
    )
    return f"scout_tpl_{digest.hex[:12]}"


@pytest.fixture(scope="session")
async def template_db(stack: Stack) -> str:
    """A migrated database to clone per test; rebuilt when the migrations change."""
    name = _template_name()
    admin = await asyncpg.connect(stack.url_for("postgres"))
    try:
        # Several test runs (or developers) may share one server.
        await admin.execute("SELECT pg_advisory_lock(5150)")
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}_build"')
            conn = await asyncpg.connect(stack.url_for(f"{name}_build"))
            try:
                await migrate(conn)
            finally:
                await conn.close()
            await admin.execute(f'ALTER DATABASE "{name}_build" RENAME TO "{name}"')
        await admin.execute("SELECT pg_advisory_unlock(5150)")
    finally:
        await admin.close()
    return name


# Test-session logins (scout_t<creation time, 8 hex><4 hex>_<service>_login) older than $1.
STALE_TEST_LOGINS = """
SELECT rolname FROM pg_roles
WHERE rolname ~ '^scout_t[0-9a-f]{12}_[a-z]+_login$' AND substr(rolname, 8, 8) < $1
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = rolname)
"""


@pytest.fixture(scope="session")
async def service_logins(stack: Stack, template_db: str) -> AsyncIterator[dict[str, Login]]:
    """This session's login per service (member of its service role only). The name carries
    its creation time, so logins a killed session left behind are dropped a day later."""
    logins = new_logins(f"scout_t{int(time.time()):08x}{uuid.uuid4().hex[:4]}_")
    admin = await asyncpg.connect(stack.url_for("postgres"))
    try:
        stale = await admin.fetch(STALE_TEST_LOGINS, f"{int(time.time()) - 86400:08x}")
        for row in stale:
            with contextlib.suppress(asyncpg.PostgresError):  # in use or gone: next time
                await admin.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
        await ensure_logins(admin, logins)
        yield logins
        await drop_logins(admin, logins)
    finally:
        await admin.close()


@pytest.fixture
async def database_url(stack: Stack, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test (dropped afterwards)."""
    name = f"scout_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(stack.url_for("postgres"))
    try:
        for attempt in range(20):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
                break
            except asyncpg.ObjectInUseError:  # template briefly in use by another clone
                await asyncio.sleep(0.1 * (attempt + 1))
        yield stack.url_for(name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def settings(
    stack: Stack,
    database_url: str,
    topic_prefix: str,
    tmp_path: Path,
    service_logins: dict[str, Login],
) -> AsyncIterator[Settings]:
    """Settings pointing at this test's database and topics; the topics exist."""
    logins = {
        f"database_url_{service}": login.url(database_url)
        for service, login in service_logins.items()
    }
    test_settings = Settings(
        env="test",
        kafka_bootstrap=stack.kafka_bootstrap,
        database_url=database_url,  # type: ignore[arg-type]
        **logins,  # type: ignore[arg-type]
        topic_prefix=topic_prefix,
        topic_partitions=4,
        pii_key=f"t1:{TEST_PII_SECRET}",  # type: ignore[arg-type]
        state_dir=tmp_path / "state",
        batch_wait_s=0.05,
    )
    await create_topics(test_settings)
    # The secure stack's broker enforces ACLs: each service's, for this test's topics.
    acls = kafka_acls.all_acls(test_settings) if test_settings.kafka_sasl_username_bronze else []
    if acls:
        await kafka_acls.grant(test_settings, acls)
    yield test_settings
    if acls:
        await kafka_acls.grant(test_settings, acls, revoke=True)
    await delete_topics_with_prefix(test_settings, topic_prefix)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to this test's database (for assertions)."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()
