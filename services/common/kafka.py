"""Kafka: topic names, the Faust app factory, client security, and admin helpers.

Topic names come from one place so a prefix (SCOUT_TOPIC_PREFIX) moves all of them: tests
use a fresh prefix per test to get clean topics.

Transport security comes from one place too: :func:`client_security` turns the
``SCOUT_KAFKA_SECURITY_PROTOCOL`` / ``SCOUT_KAFKA_SASL_*`` / ``SCOUT_KAFKA_SSL_CAFILE``
settings into aiokafka arguments, :func:`faust_security` into Faust's ``broker_credentials``;
every client the pipeline makes (Faust apps, direct consumers, producers, admin clients, the
lag monitor) takes them, so SASL_SSL is one setting away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context

from services.common.errors import ConfigError, ServiceUnavailableError
from services.common.settings import Settings

log = logging.getLogger(__name__)

# Gold's shards (scout.gold_shard, schemas/sql/0070) = the partitions of the gold-shards
# topic: one partition per shard, so the group's assignor spreads them evenly over any
# number of gold replicas up to this (services/gold_aggregator/shards.py).
GOLD_SHARDS = 64


@dataclass(frozen=True)
class Topics:
    """Every topic of the pipeline, under one prefix (default ``scout.``)."""

    prefix: str = "scout."

    # Source topics (CONTRACTS §1)
    @property
    def pos(self) -> str:
        return f"{self.prefix}pos.transactions"

    @property
    def api(self) -> str:
        return f"{self.prefix}api.batches"

    @property
    def iot(self) -> str:
        return f"{self.prefix}iot.readings"

    @property
    def master_stores(self) -> str:
        return f"{self.prefix}master.stores"

    @property
    def master_products(self) -> str:
        return f"{self.prefix}master.products"

    # Internal topics between the services
    @property
    def bronze_landed(self) -> str:
        """Batches of landed bronze records, bronze → silver."""
        return f"{self.prefix}internal.bronze-landed"

    @property
    def gold_shards(self) -> str:
        """Gold replicas' consumer group membership: partition p owns the gold shards
        s % partitions == p. Nothing is written to it (silver → gold goes through
        PostgreSQL, services/gold_aggregator/changes.py)."""
        return f"{self.prefix}internal.gold-shards"

    @property
    def sources(self) -> tuple[str, str, str]:
        return (self.pos, self.api, self.iot)

    @property
    def compacted(self) -> tuple[str, str]:
        return (self.master_stores, self.master_products)

    def all(self) -> tuple[str, ...]:
        return (*self.sources, *self.compacted, self.bronze_landed, self.gold_shards)

    def consumed_by(self, service: str) -> tuple[str, ...]:
        """The topics ``service`` reads (its consumer group's)."""
        return {
            "bronze": self.sources,
            "silver": (self.bronze_landed, *self.compacted),
            "gold": (self.gold_shards,),
        }.get(service, ())

    def source_system(self, topic: str) -> str:
        """``pos`` / ``api`` / ``iot`` for a source topic."""
        return {self.pos: "pos", self.api: "api", self.iot: "iot"}[topic]


_EPOCH = datetime.fromtimestamp(0, UTC)
_YEAR_10000_S = 253_402_300_800  # the first second no datetime holds


def kafka_time(timestamp_s: float | None) -> datetime:
    """A Kafka record's time. Records without one (-1), or with one past year 9999 (a
    producer's clock, which a topic may accept: ``message.timestamp.after.max.ms``), get the
    epoch, deterministically: read as no time, they are the oldest wherever Kafka time
    decides "newest wins"."""
    if timestamp_s is None or not 0 <= timestamp_s < _YEAR_10000_S:
        return _EPOCH
    return datetime.fromtimestamp(timestamp_s, UTC)


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the brokers against SCOUT_KAFKA_SSL_CAFILE (or the system CAs)."""
    cafile = settings.kafka_ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise ConfigError(f"SCOUT_KAFKA_SSL_CAFILE {cafile} does not exist")
    context: ssl.SSLContext = create_ssl_context(cafile=str(cafile) if cafile else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def _sasl_credentials(settings: Settings) -> tuple[str, str]:
    password = settings.kafka_sasl_password
    if not settings.kafka_sasl_username or password is None:
        raise ConfigError(
            f"SCOUT_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "SCOUT_KAFKA_SASL_USERNAME and SCOUT_KAFKA_SASL_PASSWORD (this service's own user)"
        )
    return settings.kafka_sasl_username, password.get_secret_value()


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured transport (none for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        config["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        username, password = _sasl_credentials(settings)
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": username,
            "sasl_plain_password": password,
        }
    return config


def faust_security(settings: Settings) -> dict[str, Any]:
    """Faust app settings for the configured transport (``broker_credentials``)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    if protocol == "SSL":
        return {"broker_credentials": faust.SSLCredentials(ssl_context(settings))}
    username, password = _sasl_credentials(settings)
    return {
        "broker_credentials": faust.SASLCredentials(
            username=username,
            password=password,
            ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
            mechanism=settings.kafka_sasl_mechanism,
        )
    }


def broker_url(settings: Settings) -> str:
    return ",".join(f"kafka://{host}" for host in settings.kafka_bootstrap.split(","))


def make_app(
    settings: Settings, service: str, *, datadir: Path | None = None, **config: Any
) -> faust.App:
    """A Faust app for ``service`` with the pipeline's defaults.

    Values are raw bytes: the services decode themselves, so a payload that is not JSON is
    kept (error log, quarantine) instead of crashing a Faust codec. Offsets are committed
    only for acknowledged events, and the agents acknowledge a batch only after its
    database transaction commits.
    """
    app = app_id(settings, service)
    defaults: dict[str, Any] = {
        "broker": broker_url(settings),
        "value_serializer": "raw",
        "key_serializer": "raw",
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": True,
        "broker_commit_every": 10_000,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        # A crashed worker's partitions move to the others after 10 s, not the default 60 s.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
        # No Faust tables here (state is in PostgreSQL), so no standbys: with the default of
        # one, Faust's assignor keeps every worker at ceil(partitions / workers) and a worker
        # joining when that bound does not change (4 partitions, 2 -> 3 workers) gets none
        # and is never ready; with none, it first trims each to floor(partitions / workers).
        "table_standby_replicas": 0,
        "stream_buffer_maxsize": 16_384,
        "producer_linger_ms": 5,
        "producer_max_request_size": 8 * 1024 * 1024,
        # The internal topics (bronze-landed, gold-shards): aiokafka's lz4 is level 9, 4.9 µs
        # per hand-off record to compress against 1.0 µs for zstd at its default level 3,
        # which also packs them 7.9x against 5.6x (`python -m bench.handoff_codec`).
        "producer_compression_type": "zstd",
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_port": settings.web_port_for(service),
        "web_host": settings.web_host,
        "datadir": str(datadir or settings.state_dir / "faust" / app),
        "logging_config": None,
        **faust_security(settings),
    }
    defaults.update(config)
    Path(defaults["datadir"]).mkdir(parents=True, exist_ok=True)
    return faust.App(app, **defaults)


def app_id(settings: Settings, service: str) -> str:
    """The Faust app id of ``service``: its consumer group, and its internal topics' prefix."""
    return f"{settings.topic_prefix}{service}".replace(".", "-").strip("-")


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The configuration a pipeline topic is created with: master topics are compacted, the
    internal hand-off keeps its records ``SCOUT_HANDOFF_RETENTION_HOURS``, the others keep
    the cluster's default retention (the source topics' is their producers' decision)."""
    topics = topics_for(settings)
    configs = {"max.message.bytes": str(16 * 1024 * 1024)}
    if name in topics.compacted:
        configs["cleanup.policy"] = "compact"
    if name == topics.bronze_landed:
        configs["retention.ms"] = str(settings.handoff_retention_hours * 3_600_000)
    return configs


async def create_topics(settings: Settings, *, timeout: float = 30.0) -> None:
    """Create every pipeline topic that does not exist (:func:`topic_configs`)."""
    topics = topics_for(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **client_security(settings)
    )
    await _start_with_timeout(admin, settings.kafka_bootstrap, timeout)
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=GOLD_SHARDS
                if name == topics.gold_shards
                else settings.topic_partitions,
                replication_factor=1,
                topic_configs=topic_configs(settings, name),
            )
            for name in topics.all()
            if name not in existing
        ]
        if new:
            # Another process may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(new)
                _check_created(response, settings)
            # Creation is asynchronous in the cluster: wait until metadata shows them, so a
            # consumer subscribing right after does not skip a "missing" topic.
            wanted = {t.name for t in new}
            for _ in range(100):
                if wanted <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


def _check_created(response: Any, settings: Settings) -> None:
    """Raise on a topic the broker refused to create (other than one that now exists)."""
    refused = [(topic, code) for topic, code, *_ in response.topic_errors
               if code not in (0, TopicAlreadyExistsError.errno)]  # fmt: skip
    if not refused:
        return
    if all(code == TopicAuthorizationFailedError.errno for _, code in refused):
        raise ConfigError(
            f"Kafka topics {', '.join(t for t, _ in refused)} do not exist (or are not visible)"
            f" and user {settings.kafka_sasl_username!r} may not create them: create the"
            " pipeline's topics as the cluster's admin, and grant each service its ACLs"
            " (`scout kafka acls`)"
        )
    raise ServiceUnavailableError(f"Kafka refused to create topics: {refused}")


async def delete_topics_with_prefix(settings: Settings, prefix: str) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **client_security(settings)
    )
    await _start_with_timeout(admin, settings.kafka_bootstrap, 30.0)
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def wait_for_kafka(
    bootstrap: str, timeout: float = 30.0, security: dict[str, Any] | None = None
) -> None:
    """Ready means a metadata request succeeds, not just an open port. While the broker is
    still starting, aiokafka's connection errors are expected: they are not logged (the
    timeout's error says what failed)."""
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(security or {}))
        await _start_with_timeout(admin, bootstrap, timeout)
    finally:
        client_log.setLevel(level)
    try:
        await admin.list_topics()
    finally:
        await admin.close()


async def _start_with_timeout(client: Any, bootstrap: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await asyncio.wait_for(client.start(), timeout=max(1.0, timeout))
            return
        except (TimeoutError, KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise ServiceUnavailableError(
                    f"Kafka at {bootstrap} did not answer ({exc!r}). "
                    "Start the local stack with `scout dev up` or set SCOUT_KAFKA_BOOTSTRAP."
                ) from exc
            await asyncio.sleep(0.5)


def make_producer(settings: Settings, **config: Any) -> AIOKafkaProducer:
    """A producer tuned for throughput: batching, lz4, idempotence against resend doubles."""
    defaults: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        **client_security(settings),
        "linger_ms": 20,
        "max_batch_size": 512 * 1024,
        "compression_type": "lz4",
        "max_request_size": 8 * 1024 * 1024,
        "enable_idempotence": True,
        "acks": "all",
    }
    defaults.update(config)
    return AIOKafkaProducer(**defaults)
