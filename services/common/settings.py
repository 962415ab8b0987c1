"""Runtime settings, read once from ``SCOUT_*`` environment variables (and an optional ``.env``).

``Settings`` is frozen: ``main()`` builds it and passes it down; nothing reads the environment
at import time. Secrets are ``SecretStr`` so they never appear in logs or reprs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PG_PORT = 55432
DEFAULT_DATABASE_URL = f"postgresql://scout@127.0.0.1:{DEFAULT_PG_PORT}/scout"

# Database roles of the services (created by the migrations, NOLOGIN). Each service connects
# with its own LOGIN role (SCOUT_DATABASE_URL_<SERVICE>, see services/common/logins.py): a
# NOINHERIT login that owns nothing and is a member of its service role only, and acts as that
# role (SET ROLE at connect), so a service holds its layer's grants and nothing more.
SERVICE_ROLES = {
    "bronze": "scout_bronze_writer",
    "silver": "scout_silver_enricher",
    "gold": "scout_gold_aggregator",
    "platinum": "scout_platinum_builder",
}

# Default HTTP port (metrics, health) of each service; SCOUT_WEB_PORT overrides it.
SERVICE_WEB_PORTS = {"bronze": 6066, "silver": 6067, "gold": 6068, "platinum": 6069}


class Settings(BaseSettings):
    """Every setting of the pipeline. See the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="SCOUT_", env_file=".env", extra="ignore", frozen=True
    )

    # Not dev by default: a process started without SCOUT_ENV is treated as production (no
    # dev-only key); `scout dev up`, `make demo` and the harness set it explicitly.
    env: Literal["dev", "test", "prod"] = "prod"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka transport: PLAINTEXT (the local default), SSL, SASL_PLAINTEXT or SASL_SSL.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Each service's own SASL user, for one environment that runs several services (the
    # local stack, the tests); a deployment gives each workload its own SCOUT_KAFKA_SASL_*.
    kafka_sasl_username_bronze: str | None = None
    kafka_sasl_password_bronze: SecretStr | None = None
    kafka_sasl_username_silver: str | None = None
    kafka_sasl_password_silver: SecretStr | None = None
    kafka_sasl_username_gold: str | None = None
    kafka_sasl_password_gold: SecretStr | None = None
    kafka_sasl_username_platinum: str | None = None
    kafka_sasl_password_platinum: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # CA bundle that signed the brokers' certificates
    kafka_ssl_check_hostname: bool = True
    # The owner's URL: migrations, retention, erasure and the local tools. TLS to PostgreSQL
    # goes in the URL (…?sslmode=verify-full&sslrootcert=/path/ca.crt).
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    # Each service's own login (falls back to database_url when unset, e.g. a bare checkout).
    database_url_bronze: SecretStr | None = None
    database_url_silver: SecretStr | None = None
    database_url_gold: SecretStr | None = None
    database_url_platinum: SecretStr | None = None
    # A connection pooler between the services and PostgreSQL: "session" for PgBouncer in
    # session mode, which refuses the startup parameters Scout sets otherwise (its role,
    # plan_cache_mode): each login then carries them as its own defaults (ALTER ROLE … SET,
    # which `scout migrate --service-logins` does), and every new session is checked for them.
    database_pooler: Literal["none", "session"] = "none"
    topic_prefix: str = "scout."
    topic_partitions: int = Field(default=4, ge=1)
    # How long the internal hand-off topic (bronze → silver) keeps its records: longer than
    # the longest silver outage planned for (what Kafka deletes before silver reads it is in
    # bronze without silver lineage: `scout replay`). Each record is a full copy (zstd), so
    # this is a storage decision too. Applied when the topic is created (deploy/README.md).
    handoff_retention_hours: int = Field(default=168, ge=1)
    # The pseudonymisation key (silver only): `<id>:<secret>` or the secret with
    # SCOUT_PII_KEY_ID; the id is stored with each pseudonym so keys can be rotated.
    pii_key: SecretStr | None = None
    pii_key_id: str | None = None
    max_record_bytes: int = Field(default=1024 * 1024, ge=1024)
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"
    web_port: int | None = None
    web_host: str = "127.0.0.1"
    # Database role each service acts as; empty string disables SET ROLE (e.g. managed DBs
    # where the login user already is the service role).
    db_role_bronze: str = SERVICE_ROLES["bronze"]
    db_role_silver: str = SERVICE_ROLES["silver"]
    db_role_gold: str = SERVICE_ROLES["gold"]
    db_role_platinum: str = SERVICE_ROLES["platinum"]
    db_pool_max: int = Field(default=4, ge=1)
    # Batching of the agents: at most this many Kafka records per batch, waiting at most
    # batch_wait_s for a batch to fill.
    batch_max: int = Field(default=5000, ge=1)
    batch_wait_s: float = Field(default=0.2, gt=0)
    allowed_clock_skew_s: float = Field(default=300.0, ge=0)
    # How often the gold service compares gold with a from-scratch recomputation.
    gold_verify_interval_s: float = Field(default=300.0, gt=0)
    # How long a gold group whose changes could not be written (gold_dead_letters) waits
    # before gold tries it again (also on start, and at once after `scout gold retry`).
    gold_dead_letter_retry_s: float = Field(default=600.0, gt=0)
    # How often a gold worker looks for captured silver changes and applies them: most of
    # what gold adds to publish -> gold visible at a paced rate (a change waits half of it on
    # average, then the flush).
    gold_flush_interval_s: float = Field(default=0.1, gt=0)
    # The share of the time a gold worker may spend flushing: after a flush it pauses until
    # flushing took at most this share (0.5: as long as the flush took). Beside silver on the
    # same cores the pause leaves silver the CPU in a backlog; where gold has cores of its
    # own it is only latency, and 1 flushes again at the next tick (deploy/README.md).
    gold_flush_duty_cycle: float = Field(default=0.5, gt=0, le=1)
    # A folder of secret files named after the settings (scout_database_url_bronze, …), e.g.
    # docker compose's /run/secrets; read by load_settings, environment variables win.
    secrets_dir: Path | None = None
    # Local stack. dev_secure (`scout dev up --secure`): a second stack with Kafka on
    # SASL_SSL (SCRAM) and PostgreSQL on TLS only, in its own state dir and on its own ports.
    dev_secure: bool = False
    state_dir: Path = Path(".scout")
    cache_dir: Path = Path.home() / ".cache" / "scout"
    kafka_version: str = "4.1.2"
    kafka_port: int = 9092
    pg_port: int = DEFAULT_PG_PORT
    # Schema Registry (Confluent-compatible API): None = the local stack's registry on
    # registry_port (started by `scout dev up`); a URL points at an existing one.
    schema_registry_url: str | None = None
    registry_port: int = 8081
    registry_version: str = "3.3.3"

    def database_url_for(self, service: str) -> str:
        """The URL ``service`` connects with: its own login when configured."""
        own: SecretStr | None = getattr(self, f"database_url_{service}", None)
        return (own or self.database_url).get_secret_value()

    def as_service(self, service: str) -> Settings:
        """These settings as ``service`` speaks to Kafka: as its own SASL user when one is
        configured for it (``kafka_sasl_username_<service>``)."""
        user: str | None = getattr(self, f"kafka_sasl_username_{service}", None)
        password: SecretStr | None = getattr(self, f"kafka_sasl_password_{service}", None)
        if user is None or password is None:
            return self
        return self.model_copy(
            update={"kafka_sasl_username": user, "kafka_sasl_password": password}
        )

    def db_role(self, service: str) -> str | None:
        """The role ``service`` acts as in PostgreSQL, or None to keep the login user."""
        role: str = getattr(self, f"db_role_{service}")
        return role or None

    def registry_url(self) -> str:
        """The Confluent-compatible base URL of the schema registry in use."""
        if self.schema_registry_url:
            return self.schema_registry_url.rstrip("/")
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"  # devstack.registry

    def web_port_for(self, service: str) -> int:
        return self.web_port if self.web_port is not None else SERVICE_WEB_PORTS[service]


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and SCOUT_SECRETS_DIR's files), with explicit
    overrides (CLI flags) on top."""
    secrets_dir = os.environ.get("SCOUT_SECRETS_DIR")
    if secrets_dir:
        return Settings(_secrets_dir=secrets_dir, **overrides)  # type: ignore[arg-type]
    return Settings(**overrides)  # type: ignore[arg-type]
