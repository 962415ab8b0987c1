"""The secure stack really is: Kafka only over SASL_SSL with valid SCRAM credentials, each
service on its own Kafka user limited by the broker's ACLs, PostgreSQL only over TLS, and the
services' own connections encrypted.

Runs in the secure CI job (``.ci/run`` → ``scout dev up --secure``), marked ``secure_stack``
so the plaintext default run leaves it out.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from services.common import kafka_acls
from services.common.db import create_pool
from services.common.kafka import app_id, client_security, make_producer, topics_for
from services.common.lag import LagMonitor
from services.common.settings import SERVICE_ROLES, Settings
from tests.support import settings_env

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


async def _write(settings: Settings, topic: str) -> str:
    """ "ok", or the name of the error the broker answered a write to ``topic`` with."""
    producer = make_producer(settings, request_timeout_ms=10_000, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await producer.stop()
    return "ok"


async def _read(settings: Settings, topic: str, group: str) -> str:
    """ "ok", or the name of the error the broker answered a read of ``topic`` with."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False, **client_security(settings))  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        await consumer.getmany(timeout_ms=3000)
        await consumer.commit()
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()
    return "ok"


async def test_each_service_may_use_only_its_own_topics_and_group(settings: Settings) -> None:
    """The broker, not the code, keeps a service to its topics: a leaked service password
    cannot inject records into silver through the hand-off topic, nor read raw sales."""
    assert settings.kafka_sasl_username_silver, "run against the secure stack (its users)"
    topics = topics_for(settings)
    bronze, silver, gold = (settings.as_service(s) for s in ("bronze", "silver", "gold"))
    assert {bronze.kafka_sasl_username, silver.kafka_sasl_username, gold.kafka_sasl_username,
            settings.kafka_sasl_username} == {"scout-bronze", "scout-silver", "scout-gold",
                                              "scout-admin"}  # fmt: skip
    refused = "TopicAuthorizationFailedError"
    assert await _write(bronze, topics.bronze_landed) == "ok"
    for service in ("silver", "gold", "platinum"):
        assert await _write(settings.as_service(service), topics.bronze_landed) == refused
    assert await _write(bronze, topics.pos) == refused  # it reads its sources, never writes
    assert await _write(silver, topics.master_stores) == refused
    assert await _read(silver, topics.bronze_landed, app_id(settings, "silver")) == "ok"
    assert await _read(gold, topics.pos, app_id(settings, "gold")) == refused
    assert await _read(gold, topics.gold_shards, app_id(settings, "silver")) == (
        "GroupAuthorizationFailedError")  # fmt: skip


async def test_the_lag_reader_sees_the_groups_offsets_and_reads_no_record(
    settings: Settings,
) -> None:
    """The autoscaler's user (KEDA) measures bronze's and silver's lag as the services' own
    gauges do, and may do nothing else."""
    assert settings.kafka_sasl_username_silver, "run against the secure stack (its users)"
    topics, group = topics_for(settings), app_id(settings, "silver")
    user, password = f"t-lag-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)
    await asyncio.to_thread(_scram_user, settings, user, password)
    acls = kafka_acls.lag_reader_acls(settings, user)
    await kafka_acls.grant(settings, acls)
    try:
        producer = make_producer(settings.as_service("bronze"), enable_idempotence=False)
        await producer.start()
        try:
            for _ in range(3):
                await producer.send_and_wait(topics.bronze_landed, b"{}", partition=0)
        finally:
            await producer.stop()
        tp = TopicPartition(topics.bronze_landed, 0)
        silver = settings.as_service("silver")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=silver.kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            **client_security(silver),
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: 1})
        finally:
            await consumer.stop()
        lag = settings.model_copy(
            update={"kafka_sasl_username": user, "kafka_sasl_password": SecretStr(password)}
        )
        monitor = LagMonitor(settings.kafka_bootstrap, group, [topics.bronze_landed],
                             client_security(lag))  # fmt: skip
        try:
            measured: dict[TopicPartition, int] = {}
            for _ in range(40):  # the new user's credential reaches the broker a moment later
                measured = await monitor.measure()
                if measured:
                    break
                await asyncio.sleep(0.25)
            assert measured[tp] == 2, measured
        finally:
            await monitor.close()
        assert await _read(lag, topics.bronze_landed, group) == "TopicAuthorizationFailedError"
        assert await _write(lag, topics.pos) == "TopicAuthorizationFailedError"
    finally:
        await kafka_acls.grant(settings, acls, revoke=True)
        await asyncio.to_thread(_scram_user, settings, user, None)


def _scram_user(settings: Settings, user: str, password: str | None) -> None:
    """Create (or, without a password, delete) a SCRAM-SHA-512 user, as the stack's admin."""
    ck = importlib.import_module("confluent_kafka.admin")
    mechanism = ck.ScramMechanism.SCRAM_SHA_512
    change = (ck.UserScramCredentialDeletion(user, mechanism) if password is None else
              ck.UserScramCredentialUpsertion(user, ck.ScramCredentialInfo(mechanism, 8192),
                                              password.encode()))  # fmt: skip
    admin = kafka_acls.admin_client(settings)
    for future in admin.alter_user_scram_credentials([change]).values():
        future.result(timeout=30)


def test_a_service_may_not_create_the_pipelines_topics(settings: Settings) -> None:
    """Topics are the admin's to create: a service whose topics are missing stops, saying so."""
    assert settings.kafka_sasl_username_gold, "run against the secure stack (its users)"
    bare = settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}."})
    command = [sys.executable, "-m", "services.cli", "run", "gold"]
    run = subprocess.run(command, env=settings_env(bare), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "user 'scout-gold' may not create them" in run.stderr, run.stderr[-2000:]


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
