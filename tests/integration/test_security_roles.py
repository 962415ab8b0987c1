"""Attacks on the database with each service's own login: the database refuses them all.

Each service connects as it does deployed (its login, acting as its role). From there it
tries to become the owner or another layer, to switch off bronze's immutability, to read what
another layer keeps secret; an analyst (scout_reader) tries to read personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common.db import connect
from services.common.logins import Login, drop_logins, ensure_logins, url_with_login
from services.common.settings import SERVICE_ROLES, Settings

pytestmark = pytest.mark.integration

SERVICES = list(SERVICE_ROLES)
# What each service must not read: another layer's personal or secret data.
SECRETS_OF_OTHERS = {
    "bronze": ["SELECT raw_data FROM scout.bronze_transactions_raw",
               "SELECT customer_key FROM scout.silver_transactions_cleaned",
               "SELECT * FROM scout.pii_access_log"],
    "silver": ["SELECT * FROM scout.platinum_privacy_ledger",
               "SELECT * FROM scout.pii_access_log",
               "SELECT * FROM scout.gold_silver_changes"],
    "gold": ["SELECT raw_data FROM scout.bronze_transactions_raw",
             "SELECT raw_bytes FROM scout.bronze_error_log",
             "SELECT * FROM scout.platinum_privacy_ledger"],
    "platinum": ["SELECT raw_data FROM scout.bronze_transactions_raw",
                 "SELECT raw_bytes FROM scout.bronze_error_log",
                 "SELECT * FROM scout.gold_silver_changes"],
}  # fmt: skip


async def _as_service(settings: Settings, service: str) -> asyncpg.Connection:
    return await connect(settings, role=settings.db_role(service),
                         database_url=settings.database_url_for(service))  # fmt: skip


async def _owner(db: asyncpg.Connection) -> str:
    return str(await db.fetchval("SELECT current_user"))


@pytest.mark.parametrize("service", SERVICES)
async def test_service_login_cannot_become_anyone_else(
    settings: Settings, db: asyncpg.Connection, service: str
) -> None:
    owner = await _owner(db)
    conn = await _as_service(settings, service)
    try:
        login = await conn.fetchval("SELECT session_user")
        assert login != owner and login.endswith(f"{service}_login")
        assert await conn.fetchval("SELECT current_user") == SERVICE_ROLES[service]
        for target in [owner, "pg_read_all_data", "pg_write_server_files",
                       "scout_reader", "scout_pii_auditor",
                       *(r for s, r in SERVICE_ROLES.items() if s != service)]:  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'SET ROLE "{target}"')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'SET SESSION AUTHORIZATION "{owner}"')
        # Back to the bare login: it holds nothing at all (NOINHERIT).
        await conn.execute("SET ROLE NONE")
        assert await conn.fetchval("SELECT current_user") == login
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM scout.silver_master_stores")
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_service_login_cannot_alter_or_disable_immutability(
    settings: Settings, db: asyncpg.Connection, service: str
) -> None:
    conn = await _as_service(settings, service)
    try:
        for statement in [
            "ALTER TABLE scout.bronze_transactions_raw DISABLE TRIGGER ALL",
            "ALTER TABLE scout.bronze_transactions_raw DISABLE TRIGGER "
            "bronze_transactions_raw_immutable",
            "ALTER TABLE scout.bronze_error_log DISABLE TRIGGER bronze_error_log_immutable",
            "ALTER TABLE scout.silver_transactions_cleaned DISABLE TRIGGER ALL",
            "ALTER TABLE scout.gold_business_metrics ADD COLUMN x int",
            "DROP TABLE scout.bronze_error_log",
            "SET session_replication_role = replica",
            "CREATE TABLE scout.planted (id int)",
            "CREATE TABLE public.planted (id int)",
            "CREATE OR REPLACE FUNCTION scout.refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
            "ALTER ROLE CURRENT_USER BYPASSRLS",
            "GRANT scout_reader TO CURRENT_USER",
            "DELETE FROM scout.bronze_transactions_raw",
            "SELECT scout.erase_customer_raw('C-1', 'attack')",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
    # Nothing changed: the triggers are still enabled.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'bronze_transactions_raw_immutable' "
            "AND tgenabled = 'D'"
        )
        == 0
    )


@pytest.mark.parametrize("service", SERVICES)
async def test_service_login_cannot_read_other_layers_secrets(
    settings: Settings, service: str
) -> None:
    conn = await _as_service(settings, service)
    try:
        for query in SECRETS_OF_OTHERS[service]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(query)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT rolpassword FROM pg_authid")
    finally:
        await conn.close()


@pytest.fixture
async def person_logins(
    settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[dict[str, Login]]:
    """An analyst's login (member of scout_reader) and an auditor's (scout_pii_auditor),
    made the way an operator would: a NOINHERIT-free login granted one role."""
    tag = uuid.uuid4().hex[:8]
    people = {"reader": Login("reader", f"scout_t{tag}_analyst", "pw-" + tag),
              "auditor": Login("auditor", f"scout_t{tag}_auditor", "pw-" + tag)}  # fmt: skip
    for person, role in (("reader", "scout_reader"), ("auditor", "scout_pii_auditor")):
        login = people[person]
        await db.execute(f"CREATE ROLE \"{login.user}\" LOGIN PASSWORD '{login.password}'")
        await db.execute(f'GRANT {role} TO "{login.user}"')
    yield people
    for login in people.values():
        await db.execute(f'DROP ROLE IF EXISTS "{login.user}"')


async def _as_person(settings: Settings, login: Login) -> asyncpg.Connection:
    url = url_with_login(settings.database_url.get_secret_value(), login.user, login.password)
    return await asyncpg.connect(url)


async def test_reader_sees_no_personal_data(
    settings: Settings, db: asyncpg.Connection, person_logins: dict[str, Login]
) -> None:
    conn = await _as_person(settings, person_logins["reader"])
    try:
        for query in [
            "SELECT raw_data FROM scout.bronze_transactions_raw",
            "SELECT * FROM scout.bronze_transactions_raw",
            "SELECT raw_bytes FROM scout.bronze_error_log",
            "SELECT detail FROM scout.bronze_error_log",
            "SELECT customer_key FROM scout.silver_transactions_cleaned",
            "SELECT count(DISTINCT customer_key) FROM scout.silver_transactions_cleaned",
            "SELECT * FROM scout.silver_transactions_cleaned",
            "SELECT detail FROM scout.silver_quarantine",
            "SELECT store_id, batch_id, partner FROM scout.silver_quarantine",
            "SELECT customer_key FROM scout.gold_silver_changes",
            "SELECT * FROM scout.read_bronze_raw('curious', now() - interval '1 day', now())",
            "SELECT * FROM scout.pii_access_log",
            "SELECT partner, batch_id FROM scout.bronze_ingestion_batches",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(query)
        # What analysts are for still works.
        await conn.fetch("SELECT status, record_count FROM scout.bronze_ingestion_batches")
        await conn.fetch("SELECT transaction_id, amount, notes, region FROM "
                         "scout.silver_transactions_cleaned")  # fmt: skip
        await conn.fetch("SELECT rule, field, quarantined_at FROM scout.silver_quarantine")
        await conn.fetch("SELECT reason, logged_at FROM scout.bronze_error_log")
        await conn.fetch("SELECT * FROM scout.gold_business_metrics")
        await conn.fetch("SELECT * FROM scout.gold_customer_insights")
        await conn.fetch("SELECT * FROM scout.platinum_anonymized_analytics")
        await conn.fetch("SELECT * FROM scout.data_quality_dashboard")
    finally:
        await conn.close()


async def test_auditor_reads_raw_data_only_through_the_recorded_path(
    settings: Settings, db: asyncpg.Connection, person_logins: dict[str, Login]
) -> None:
    await db.execute(
        "INSERT INTO scout.bronze_transactions_raw (id, raw_data, source_system, kafka_topic, "
        "kafka_partition, kafka_offset, kafka_timestamp) VALUES ($1, $2::jsonb, 'pos', 't', 0, "
        "1, now())",
        uuid.uuid4(),
        '{"customer": {"id": "C-77", "phone": "+639171234567"}}',
    )
    auditor = person_logins["auditor"]
    conn = await _as_person(settings, auditor)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT raw_data FROM scout.bronze_transactions_raw")
        with pytest.raises(asyncpg.InvalidParameterValueError, match="reason"):
            await conn.fetch("SELECT * FROM scout.read_bronze_raw('', now() - interval "
                             "'1 day', now() + interval '1 day')")  # fmt: skip
        rows = await conn.fetch(
            "SELECT raw_data FROM scout.read_bronze_raw('DSR-123', now() - interval '1 day', "
            "now() + interval '1 day', 'C-77')")  # fmt: skip
        assert len(rows) == 1 and "C-77" in rows[0]["raw_data"]
        await conn.fetch("SELECT * FROM scout.read_bronze_errors('DSR-123', now() - interval "
                         "'1 day', now())")  # fmt: skip
        for statement in ["INSERT INTO scout.silver_master_stores (store_id) VALUES ('x')",
                          "DELETE FROM scout.pii_access_log",
                          "UPDATE scout.pii_access_log SET reason = 'nothing'"]:  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
    log = await db.fetch("SELECT login, what, filter, reason, rows_returned "
                         "FROM scout.pii_access_log ORDER BY access_id")  # fmt: skip
    assert [(r["login"], r["what"], r["reason"], r["rows_returned"]) for r in log] == [
        (auditor.user, "read_bronze_raw", "DSR-123", 1),
        (auditor.user, "read_bronze_errors", "DSR-123", 0),
    ]
    assert '"customer_id": "C-77"' in log[0]["filter"]


async def test_logins_are_idempotent_and_hold_one_membership(db: asyncpg.Connection) -> None:
    tag = uuid.uuid4().hex[:8]
    logins = {s: Login(s, f"scout_t{tag}_{s}_login", "first") for s in SERVICES}
    try:
        await ensure_logins(db, logins)
        await db.execute(f'GRANT scout_reader TO "{logins["gold"].user}"')  # a stray grant
        await ensure_logins(db, logins)  # again: reshapes, removes the stray membership
        rows = await db.fetch(
            "SELECT l.rolname AS login, l.rolinherit, l.rolsuper, l.rolcreaterole, "
            "array_agg(r.rolname) AS member_of FROM pg_roles l "
            "JOIN pg_auth_members m ON m.member = l.oid JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE l.rolname LIKE $1 GROUP BY 1, 2, 3, 4", f"scout_t{tag}_%")  # fmt: skip
        assert {r["login"]: r["member_of"] for r in rows} == {
            logins[s].user: [SERVICE_ROLES[s]] for s in SERVICES
        }
        assert not any(r["rolinherit"] or r["rolsuper"] or r["rolcreaterole"] for r in rows)
        # The service roles themselves are members of nothing: no path upwards.
        assert await db.fetchval(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "WHERE r.rolname = ANY($1::text[])", list(SERVICE_ROLES.values())) == 0  # fmt: skip
        owns = await db.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname LIKE $1", f"scout_t{tag}_%")  # fmt: skip
        assert owns == 0
    finally:
        await drop_logins(db, logins)
