"""The secure stack really is: Kafka only over SASL_SSL with valid SCRAM credentials,
PostgreSQL only over TLS, and the services' own connections encrypted.

Runs in the secure CI job (``.ci/run`` → ``scout dev up --secure``), marked ``secure_stack``
so the plaintext default run leaves it out.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.common.db import create_pool
from services.common.kafka import client_security
from services.common.settings import SERVICE_ROLES, Settings

pytestmark = [pytest.mark.integration, pytest.mark.secure_stack]

SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


async def _kafka_answers(bootstrap: str, **security: Any) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    try:
        await asyncio.wait_for(admin.start(), timeout=10)
        await admin.list_topics()
    except Exception:
        return False
    finally:
        await admin.close()
    return True


async def test_kafka_needs_tls_and_valid_scram_credentials(settings: Settings) -> None:
    assert settings.kafka_security_protocol == "SASL_SSL", "run against the secure stack"
    good = client_security(settings)
    assert await _kafka_answers(settings.kafka_bootstrap, **good)
    assert not await _kafka_answers(settings.kafka_bootstrap)  # plaintext
    assert not await _kafka_answers(
        settings.kafka_bootstrap, **(good | {"sasl_plain_password": "x"})
    )


def _with_sslmode(url: str, mode: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=f"sslmode={mode}"))


async def test_postgres_only_over_tls(settings: Settings, db: asyncpg.Connection) -> None:
    owner_url = settings.database_url.get_secret_value()
    assert "sslmode=verify-full" in owner_url
    assert await db.fetchval(SSL_IN_USE) is True
    with pytest.raises((asyncpg.InvalidAuthorizationSpecificationError, asyncpg.PostgresError)):
        conn = await asyncpg.connect(_with_sslmode(owner_url, "disable"))
        await conn.close()
    for service in SERVICE_ROLES:
        pool = await create_pool(settings, service)
        try:
            async with pool.acquire() as conn:
                # pg_stat_ssl shows a session to its own login: step out of the role a moment.
                await conn.execute("SET ROLE NONE")
                assert await conn.fetchval(SSL_IN_USE) is True, service
                await conn.execute("RESET ROLE")
                assert await conn.fetchval("SELECT session_user") != await db.fetchval(
                    "SELECT session_user"
                )
        finally:
            await pool.close()
