"""``scout dev up | down | status``: the local stack as one idempotent unit.

A component is *managed* when this command starts it; a ``SCOUT_DATABASE_URL`` (or a
``SCOUT_KAFKA_BOOTSTRAP`` not on the local port, or a ``SCOUT_SCHEMA_REGISTRY_URL``) names an
external service that ``up`` and ``down`` leave alone and ``status`` only checks.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from services.common import kafka_acls
from services.common.db import redact_dsn
from services.common.errors import ConfigError
from services.common.kafka import client_security, create_topics
from services.common.settings import SERVICE_ROLES, Settings
from services.devstack import kafka, logins, postgres, registry, tls

# The secure stack's defaults: beside the plaintext one, never on its ports or state.
SECURE_STATE_DIR = Path(".scout-secure")
SECURE_KAFKA_PORT = 19093  # controller on 19094
SECURE_PG_PORT = 55443


@dataclass(frozen=True)
class Component:
    name: str
    address: str
    managed: bool
    pid: int | None
    healthy: bool
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def secure(settings: Settings) -> Settings:
    """The settings of the secure stack: its own state dir and ports (unless given), Kafka
    over SASL_SSL as ``scout-admin``, the owner's TLS URL. Unchanged without dev_secure."""
    if not settings.dev_secure:
        return settings
    given = settings.model_fields_set
    state = (settings.state_dir if "state_dir" in given else SECURE_STATE_DIR).resolve()
    kafka_port = settings.kafka_port if "kafka_port" in given else SECURE_KAFKA_PORT
    pg_port = settings.pg_port if "pg_port" in given else SECURE_PG_PORT
    _check_state_kind(state, secure=True)
    creds = tls.ensure_credentials(state)
    base = settings.model_copy(update={"state_dir": state, "pg_port": pg_port})
    return base.model_copy(
        update={
            "kafka_port": kafka_port,
            "kafka_bootstrap": f"127.0.0.1:{kafka_port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": tls.KAFKA_ADMIN,
            "kafka_sasl_password": SecretStr(creds.kafka_admin_password),
            "kafka_ssl_cafile": tls.TlsFiles(state / "tls").ca_cert,
            "database_url": SecretStr(postgres.url(base)),
            **service_kafka_users(creds),
        }
    )


def service_kafka_users(creds: tls.Credentials) -> dict[str, Any]:
    """Each service's own SCRAM user, as settings (``kafka_sasl_username_<service>``, …)."""
    users: dict[str, Any] = {}
    for service in SERVICE_ROLES:
        user = kafka_acls.default_user(service)
        users[f"kafka_sasl_username_{service}"] = user
        users[f"kafka_sasl_password_{service}"] = SecretStr(creds.kafka[user])
    return users


SECURE_MARKER = "secure-stack"


def _check_state_kind(state: Path, *, secure: bool) -> None:
    """One state dir holds one kind of stack: never start the secure stack over the
    plaintext one's data (or the reverse)."""
    marker = state / SECURE_MARKER
    has_stack = (state / "kafka").exists() or (state / "postgres").exists()
    if secure and has_stack and not marker.exists():
        raise ConfigError(
            f"{state} holds the plaintext stack: for --secure unset SCOUT_STATE_DIR (default "
            f"{SECURE_STATE_DIR}) or choose another folder"
        )
    if not secure and marker.exists():
        raise ConfigError(f"{state} holds the secure stack: use --secure (or SCOUT_DEV_SECURE)")
    if secure:
        state.mkdir(parents=True, exist_ok=True)
        marker.touch()


def _kafka_managed(settings: Settings) -> bool:
    if settings.dev_secure:
        return True
    return (
        "kafka_bootstrap" not in settings.model_fields_set
        or settings.kafka_bootstrap == f"127.0.0.1:{settings.kafka_port}"
    )


def _pg_managed(settings: Settings) -> bool:
    return settings.dev_secure or "database_url" not in settings.model_fields_set


def kafka_address(settings: Settings) -> str:
    return (
        f"127.0.0.1:{settings.kafka_port}" if _kafka_managed(settings) else settings.kafka_bootstrap
    )


def database_url(settings: Settings) -> str:
    if _pg_managed(settings):
        return postgres.url(settings)
    return settings.database_url.get_secret_value()


def up(settings: Settings) -> list[tuple[Component, bool]]:
    """Start what is not running; returns each component and whether it was started now."""
    if not settings.dev_secure:
        _check_state_kind(settings.state_dir.resolve(), secure=False)
    results = []
    if _kafka_managed(settings):
        pid, started = kafka.up(settings)
        results.append((Component("kafka", kafka_address(settings), True, pid, True), started))
        if settings.dev_secure:
            # With the authorizer on, the services may not create topics: the admin does,
            # then grants each service its own (idempotent, so every `up` repeats it).
            asyncio.run(_provision_kafka(settings))
    if _pg_managed(settings):
        pid, started = postgres.up(settings)
        address = redact_dsn(database_url(settings))
        results.append((Component("postgres", address, True, pid, True), started))
    if not settings.schema_registry_url:
        reg_pid, started = registry.up(settings)
        results.append(
            (Component("registry", settings.registry_url(), True, reg_pid, True), started)
        )
    return results


async def _provision_kafka(settings: Settings) -> None:
    await create_topics(settings)
    await kafka_acls.grant(settings, kafka_acls.all_acls(settings))


def exports(settings: Settings) -> dict[str, str]:
    """What the services need to reach the stack: addresses, each service's own login (on a
    managed cluster), and SCOUT_ENV=dev, said explicitly (the default is not dev)."""
    env = {
        "SCOUT_ENV": "dev",
        "SCOUT_KAFKA_BOOTSTRAP": kafka_address(settings),
        "SCOUT_DATABASE_URL": database_url(settings),
        "SCOUT_SCHEMA_REGISTRY_URL": settings.registry_url(),
    }
    if settings.dev_secure:
        env |= {
            "SCOUT_STATE_DIR": str(settings.state_dir),
            "SCOUT_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
            "SCOUT_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
            "SCOUT_KAFKA_SASL_USERNAME": settings.kafka_sasl_username or "",
            "SCOUT_KAFKA_SASL_PASSWORD": (
                settings.kafka_sasl_password.get_secret_value()
                if settings.kafka_sasl_password
                else ""
            ),
            "SCOUT_KAFKA_SSL_CAFILE": str(settings.kafka_ssl_cafile),
        }
        for service in SERVICE_ROLES:
            user = getattr(settings, f"kafka_sasl_username_{service}")
            password = getattr(settings, f"kafka_sasl_password_{service}")
            if user and password:
                env[f"SCOUT_KAFKA_SASL_USERNAME_{service.upper()}"] = user
                env[f"SCOUT_KAFKA_SASL_PASSWORD_{service.upper()}"] = password.get_secret_value()
    if _pg_managed(settings):
        env |= logins.ensure(settings.state_dir, database_url(settings))
    return env


def down(settings: Settings) -> list[tuple[str, bool]]:
    """Stop the managed components; returns (name, was_running)."""
    results = []
    if not settings.schema_registry_url:
        results.append(("registry", registry.down(settings)))
    if _pg_managed(settings):
        results.append(("postgres", postgres.down(settings)))
    if _kafka_managed(settings):
        results.append(("kafka", kafka.down(settings)))
    return results


def status(settings: Settings) -> list[Component]:
    k_managed = _kafka_managed(settings)
    k_pid = kafka.running_pid(settings) if k_managed else None
    k_ok = (not k_managed or k_pid is not None) and kafka.healthy(
        kafka_address(settings), client_security(settings)
    )
    p_managed = _pg_managed(settings)
    p_pid = postgres.running_pid(settings) if p_managed else None
    db_url = database_url(settings)
    p_ok = (not p_managed or p_pid is not None) and postgres.healthy(db_url)
    return [
        Component(
            "kafka",
            kafka_address(settings),
            k_managed,
            k_pid,
            k_ok,
            "" if k_managed else "external (SCOUT_KAFKA_BOOTSTRAP)",
        ),
        Component(
            "postgres",
            redact_dsn(db_url),
            p_managed,
            p_pid,
            p_ok,
            "" if p_managed else "external (SCOUT_DATABASE_URL)",
        ),
        _registry_status(settings),
    ]


def _registry_status(settings: Settings) -> Component:
    managed = not settings.schema_registry_url
    pid = registry.running_pid(settings) if managed else None
    ok = (not managed or pid is not None) and registry.healthy(settings.registry_url())
    note = "" if managed else "external (SCOUT_SCHEMA_REGISTRY_URL)"
    return Component("registry", settings.registry_url(), managed, pid, ok, note)
