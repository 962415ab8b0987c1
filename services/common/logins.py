"""Service logins: one PostgreSQL LOGIN role per service, holding nothing of its own.

A login is ``NOINHERIT``, owns nothing, and is a member of exactly one role: its service's
NOLOGIN role (``scout_bronze_writer`` …, created by the migrations). It connects with the
``role`` startup parameter, i.e. acts as that role for the whole session; ``SET ROLE NONE``
falls back to the login, which has no privilege at all. Because the service roles are members
of nothing, no ``SET ROLE`` from a service session reaches the owner or another layer. The
login also carries its role and Scout's planner setting as its own defaults (``ALTER ROLE …
SET``), which is what a session behind a pooler that refuses those startup parameters gets
(``SCOUT_DATABASE_POOLER=session``, services/common/db.py).

Roles are cluster-wide: creation is idempotent and races with a concurrent creator are
absorbed. Passwords are generated here (``scout dev up``, the test harness) and only ever
travel in the per-service URL (``SCOUT_DATABASE_URL_<SERVICE>``). Run as the owner.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from services.common.db import PLAN_CACHE_MODE
from services.common.errors import ConfigError
from services.common.settings import SERVICE_ROLES, Settings

DEFAULT_LOGIN_PREFIX = "scout_"

ROLE_INFO = "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = $1"
CREATE_NOLOGIN = "SELECT format('CREATE ROLE %I NOLOGIN', $1::text)"
CREATE_LOGIN = "SELECT format('CREATE ROLE %I LOGIN NOINHERIT', $1::text)"
# Every attribute spelled out, so a pre-existing role of that name is brought to this shape.
HARDEN_LOGIN = """
SELECT format('ALTER ROLE %I LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
              'NOREPLICATION NOBYPASSRLS PASSWORD %L', $1::text, $2::text)
"""
GRANT_MEMBERSHIP = "SELECT format('GRANT %I TO %I', $1::text, $2::text)"
OTHER_MEMBERSHIPS = """
SELECT r.rolname FROM pg_auth_members m
JOIN pg_roles r ON r.oid = m.roleid
JOIN pg_roles l ON l.oid = m.member
WHERE l.rolname = $1 AND r.rolname <> $2
"""
REVOKE_MEMBERSHIP = "SELECT format('REVOKE %I FROM %I', $1::text, $2::text)"
SET_DEFAULT = "SELECT format('ALTER ROLE %I SET %s = %L', $1::text, $2::text, $3::text)"
DROP_LOGIN = "SELECT format('DROP ROLE IF EXISTS %I', $1::text)"


@dataclass(frozen=True)
class Login:
    service: str
    user: str
    password: str

    def url(self, base_url: str) -> str:
        """``base_url`` (the owner's) with this login's user and password."""
        return url_with_login(base_url, self.user, self.password)


def generate_password() -> str:
    return secrets.token_urlsafe(24)


def login_name(service: str, prefix: str = DEFAULT_LOGIN_PREFIX) -> str:
    return f"{prefix}{service}_login"


def new_logins(prefix: str = DEFAULT_LOGIN_PREFIX) -> dict[str, Login]:
    """A login with a fresh password for every service."""
    return {s: Login(s, login_name(s, prefix), generate_password()) for s in SERVICE_ROLES}


def logins_from_settings(settings: Settings) -> dict[str, Login]:
    """The logins named by the SCOUT_DATABASE_URL_<SERVICE> settings that are set (a
    deployment's secrets): ``scout migrate --service-logins`` creates them as given."""
    logins = {}
    for service in SERVICE_ROLES:
        url = getattr(settings, f"database_url_{service}")
        if url is None:
            continue
        parts = urlsplit(url.get_secret_value())
        if not parts.username or not parts.password:
            raise ConfigError(f"SCOUT_DATABASE_URL_{service.upper()} needs a user and password")
        logins[service] = Login(service, unquote(parts.username), unquote(parts.password))
    return logins


def url_with_login(base_url: str, user: str, password: str) -> str:
    parts = urlsplit(base_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def _execute_formatted(conn: asyncpg.Connection, query: str, *args: str) -> None:
    statement = await conn.fetchval(query, *args)
    await conn.execute(statement)


async def _create(conn: asyncpg.Connection, query: str, name: str) -> None:
    # A concurrent creator (another database of the cluster) may have been first.
    with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        await _execute_formatted(conn, query, name)


async def ensure_login(conn: asyncpg.Connection, login: Login) -> None:
    """Create or reshape ``login``: NOINHERIT, member of its service role and nothing else,
    acting as that role by default."""
    role = SERVICE_ROLES[login.service]
    if login.user in SERVICE_ROLES.values() or login.user == await conn.fetchval(
        "SELECT current_user"
    ):
        raise ConfigError(f"{login.user!r} cannot be a service login (it is a role or the owner)")
    info = await conn.fetchrow(ROLE_INFO, login.user)
    if info is not None and info["rolsuper"]:
        raise ConfigError(f"{login.user!r} is a superuser; choose another service login name")
    if await conn.fetchrow(ROLE_INFO, role) is None:
        await _create(conn, CREATE_NOLOGIN, role)
    if info is None:
        await _create(conn, CREATE_LOGIN, login.user)
    await _execute_formatted(conn, HARDEN_LOGIN, login.user, login.password)
    for row in await conn.fetch(OTHER_MEMBERSHIPS, login.user, role):
        await _execute_formatted(conn, REVOKE_MEMBERSHIP, row["rolname"], login.user)
    await _execute_formatted(conn, GRANT_MEMBERSHIP, role, login.user)
    for name, value in (("role", role), ("plan_cache_mode", PLAN_CACHE_MODE)):
        await _execute_formatted(conn, SET_DEFAULT, login.user, name, value)


async def ensure_logins(conn: asyncpg.Connection, logins: Mapping[str, Login]) -> None:
    for login in logins.values():
        await ensure_login(conn, login)


async def drop_logins(conn: asyncpg.Connection, logins: Mapping[str, Login]) -> None:
    """Drop the logins (they own nothing and hold no grant, so nothing else goes)."""
    for login in logins.values():
        await _execute_formatted(conn, DROP_LOGIN, login.user)


def service_url_env(logins: Mapping[str, Login], base_url: str) -> dict[str, str]:
    """``SCOUT_DATABASE_URL_<SERVICE>`` for each login."""
    return {f"SCOUT_DATABASE_URL_{s.upper()}": lg.url(base_url) for s, lg in logins.items()}
