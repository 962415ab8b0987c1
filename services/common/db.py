"""PostgreSQL access: connection pools per service role, connecting with retries.

Each service's pool connects with that service's own login (``SCOUT_DATABASE_URL_<SERVICE>``)
and acts as its database role (``SET ROLE`` at connect time), so the privileges granted in the
migrations are what the running code really has. TLS is asked for in the URL
(``sslmode=verify-full&sslrootcert=…``), which asyncpg honours. Behind PgBouncer in session
mode (``SCOUT_DATABASE_POOLER=session``) the role and the planner setting are the login's own
defaults instead of startup parameters, checked on every new session.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

import asyncpg

from services.common.errors import ServiceUnavailableError, SessionSettingsMissing
from services.common.lifecycle import TRANSIENT_DB_ERRORS, retry
from services.common.settings import Settings

log = logging.getLogger(__name__)


# Scout's session settings: sent as startup parameters, or carried by the login itself
# behind a pooler (SCOUT_DATABASE_POOLER=session: PgBouncer refuses any startup parameter it
# does not track, and these two are not among them).
# Plan each parameterised statement with its values and the tables' current size: the tables
# grow from empty within minutes, and a generic plan made on an empty table (a sequential
# scan) would otherwise stay until the next ANALYZE. The services run few set-based
# statements per batch, so planning each costs little.
PLAN_CACHE_MODE = "force_custom_plan"
# What a session behind a pooler must already be: its login's defaults.
SESSION_CHECK = """
SELECT current_user = $1 AS role_ok, current_setting('plan_cache_mode') = $2 AS plan_ok
"""


def _server_settings(role: str | None, application_name: str, pooler: str) -> dict[str, str]:
    settings = {"application_name": application_name, "timezone": "UTC"}
    if pooler != "none":
        return settings
    settings["plan_cache_mode"] = PLAN_CACHE_MODE
    if role:
        # A startup parameter is equivalent to SET ROLE for the whole session.
        settings["role"] = role
    return settings


async def check_session(conn: asyncpg.Connection, role: str | None, user: str) -> None:
    """Behind a pooler: the session acts as ``role`` and plans as Scout's, or the login
    ``user`` lacks the defaults that stand in for the startup parameters."""
    row = await conn.fetchrow(SESSION_CHECK, role or user, PLAN_CACHE_MODE)
    if row["role_ok"] and row["plan_ok"]:
        return
    raise SessionSettingsMissing(
        f"SCOUT_DATABASE_POOLER=session, and login {user!r} does not carry Scout's session "
        f"settings: as the owner, ALTER ROLE \"{user}\" SET role = '{role or user}'; ALTER ROLE "
        f"\"{user}\" SET plan_cache_mode = '{PLAN_CACHE_MODE}' (`scout migrate "
        "--service-logins` does both), then reconnect the pooler to the server (its open server "
        "connections keep the old defaults: PgBouncer RECONNECT, or a restart)"
    )


async def connect(
    settings: Settings,
    *,
    role: str | None = None,
    application_name: str = "scout",
    attempts: int = 1,
    database_url: str | None = None,
) -> asyncpg.Connection:
    """One connection; ``attempts`` > 1 retries while the server is starting."""
    dsn = database_url or settings.database_url.get_secret_value()

    async def _connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            dsn,
            server_settings=_server_settings(role, application_name, settings.database_pooler),
            timeout=10,
        )

    try:
        return await retry(_connect, what="connect to PostgreSQL", max_attempts=attempts)
    except TRANSIENT_DB_ERRORS as exc:
        raise ServiceUnavailableError(
            f"PostgreSQL at {redact_dsn(dsn)} did not answer ({type(exc).__name__}: {exc}). "
            "Start the local stack with `scout dev up` or set SCOUT_DATABASE_URL."
        ) from exc


async def create_pool(
    settings: Settings, service: str, *, min_size: int = 1, max_size: int | None = None
) -> asyncpg.Pool:
    """A pool of ``service``'s login acting as its role; waits for the server to answer."""
    dsn, role, pooler = (
        settings.database_url_for(service),
        settings.db_role(service),
        settings.database_pooler,
    )
    user = unquote(urlsplit(dsn).username or "")

    async def init(conn: asyncpg.Connection) -> None:
        await check_session(conn, role, user)

    async def _create() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size or settings.db_pool_max,
            server_settings=_server_settings(role, f"scout-{service}", pooler),
            init=init if pooler != "none" else None,
            timeout=10,
        )
        assert pool is not None
        return pool

    return await retry(_create, what=f"create {service} pool", max_attempts=30)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
