"""Local Apache Kafka: jars from Maven Central (cached per version), KRaft single node.

Broker and controller run in one JVM on loopback. Storage is formatted on the first start
and kept across ``down``/``up``; logs go to ``<state>/kafka/kafka.log``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.errors import MissingToolError, ServiceUnavailableError
from services.common.kafka import client_security, wait_for_kafka
from services.common.settings import Settings
from services.devstack import tls
from services.devstack.process import is_alive, read_pid, require_tool, stop_pid

log = logging.getLogger(__name__)

JAVA_HINT = "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
MAVEN_HINT = "install Maven to fetch the Kafka jars (Debian: apt-get install maven)"

LOG4J2_VERSION = "2.24.3"
POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>scout.devstack</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


@dataclass(frozen=True)
class KafkaPaths:
    home: Path  # state folder of this broker
    libs: Path  # cached jars of this version

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_config(self) -> Path:
        return self.home / "log-config.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"


def paths(settings: Settings) -> KafkaPaths:
    return KafkaPaths(
        home=settings.state_dir.resolve() / "kafka",
        libs=settings.cache_dir.expanduser() / "kafka" / settings.kafka_version / "libs",
    )


def _is_kafka3(version: str) -> bool:
    return version.split(".", 1)[0] == "3"


def _dependencies(version: str) -> list[tuple[str, str, str]]:
    deps = [("org.apache.kafka", "kafka_2.13", version)]
    if _is_kafka3(version):
        deps += [
            ("org.slf4j", "slf4j-reload4j", "1.7.36"),
            ("ch.qos.reload4j", "reload4j", "1.2.25"),
        ]
    else:
        deps += [
            ("org.apache.logging.log4j", name, LOG4J2_VERSION)
            for name in ("log4j-slf4j-impl", "log4j-api", "log4j-core")
        ]
    return deps


def fetch_jars(settings: Settings) -> Path:
    """Resolve the broker's jars into the cache (once per version); returns the folder."""
    libs = paths(settings).libs
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = require_tool("mvn", MAVEN_HINT)
    require_tool("java", JAVA_HINT)
    libs.mkdir(parents=True, exist_ok=True)
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in _dependencies(settings.kafka_version)
    )
    pom = libs.parent / "pom.xml"
    pom.write_text(POM_TEMPLATE.format(dependencies=deps))
    print(f"fetching Apache Kafka {settings.kafka_version} jars from Maven Central …", flush=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise MissingToolError(
            f"Maven could not fetch Kafka {settings.kafka_version}:\n{result.stdout[-2000:]}"
            f"{result.stderr[-2000:]}"
        )
    marker.write_text(settings.kafka_version)
    return libs


AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def _listener_lines(settings: Settings) -> list[str]:
    port, controller_port = settings.kafka_port, settings.kafka_port + 1
    if not settings.dev_secure:
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]
    # Clients and the broker itself speak SASL_SSL (SCRAM-SHA-512, TLS verified against the
    # stack's CA); the KRaft controller listener stays on loopback (SCRAM users live in the
    # metadata the controller serves, so it cannot authenticate with them).
    files = tls.ensure_certificates(settings.state_dir.resolve() / "tls")
    admin = tls.ensure_credentials(settings.state_dir.resolve()).kafka_admin_password
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{tls.KAFKA_ADMIN}" password="{admin}";'
    )
    return [
        f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={files.server_pem}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={files.ca_cert}",
        "ssl.endpoint.identification.algorithm=https",
        "ssl.client.auth=none",
        # The broker enforces each service's ACLs (services/common/kafka_acls.py). The admin
        # is a super user, and so is the loopback controller listener's unauthenticated
        # principal (the broker's own link to its controller).
        f"authorizer.class.name={AUTHORIZER}",
        f"super.users=User:{tls.KAFKA_ADMIN};User:ANONYMOUS",
    ]


def _scram_arguments(settings: Settings) -> list[str]:
    """``--add-scram`` arguments of the storage format: the SCRAM users exist from the start."""
    if not settings.dev_secure:
        return []
    creds = tls.ensure_credentials(settings.state_dir.resolve())
    args = []
    for user, password in creds.kafka.items():
        args += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
    return args


def _write_config(settings: Settings, p: KafkaPaths) -> None:
    controller_port = settings.kafka_port + 1
    p.config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                *_listener_lines(settings),
                "controller.listener.names=CONTROLLER",
                f"log.dirs={p.data}",
                f"num.partitions={settings.topic_partitions}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "delete.topic.enable=true",
                "message.max.bytes=16777216",
                "log.retention.hours=168",
                "",
            ]
        )
    )
    if settings.dev_secure:
        os.chmod(p.config, 0o600)  # holds the broker's own SCRAM password
    if _is_kafka3(settings.kafka_version):
        p.log_config.write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={p.log_file}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
    else:
        p.log_config.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {p.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
        )


def _java_command(settings: Settings, p: KafkaPaths, main: str, *args: str) -> list[str]:
    log_flag = (
        f"-Dlog4j.configuration=file:{p.log_config}"
        if _is_kafka3(settings.kafka_version)
        else f"-Dlog4j2.configurationFile={p.log_config}"
    )
    return [
        require_tool("java", JAVA_HINT),
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        log_flag,
        "-cp",
        f"{p.libs}/*",
        main,
        *args,
    ]


def running_pid(settings: Settings) -> int | None:
    pid = read_pid(paths(settings).pid_file)
    return pid if is_alive(pid) else None


def new_cluster_id(draw: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64, as Kafka's own tool makes one.

    One id in 64 would begin with "-", which the storage tool's argument parser reads as an
    option ("--cluster-id: expected one argument"); Kafka's Uuid.randomUuid redraws such ids,
    and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def up(settings: Settings) -> tuple[int, bool]:
    """Start the broker if needed; returns (pid, started_now)."""
    p = paths(settings)
    pid = running_pid(settings)
    if pid is not None:
        _wait_ready(settings)
        return pid, False
    fetch_jars(settings)
    p.home.mkdir(parents=True, exist_ok=True)
    _write_config(settings, p)
    if not (p.data / "meta.properties").exists():
        cluster_id = new_cluster_id()
        fmt = subprocess.run(
            _java_command(
                settings,
                p,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(p.config),
                *_scram_arguments(settings),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise ServiceUnavailableError(f"formatting Kafka storage failed: {fmt.stderr[-2000:]}")
    with open(p.home / "kafka.stdout", "ab") as out:
        proc = subprocess.Popen(
            _java_command(settings, p, "kafka.Kafka", str(p.config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    p.pid_file.write_text(str(proc.pid))
    try:
        _wait_ready(settings, timeout=90)
    except ServiceUnavailableError as exc:
        raise ServiceUnavailableError(f"{exc}\nsee the broker log: {p.log_file}") from exc
    return proc.pid, True


def _wait_ready(settings: Settings, timeout: float = 30) -> None:
    bootstrap = f"127.0.0.1:{settings.kafka_port}"
    asyncio.run(wait_for_kafka(bootstrap, timeout=timeout, security=client_security(settings)))


def healthy(bootstrap: str, security: dict[str, Any] | None = None) -> bool:
    try:
        asyncio.run(wait_for_kafka(bootstrap, timeout=3, security=security))
    except ServiceUnavailableError:
        return False
    return True


def down(settings: Settings) -> bool:
    """Stop the broker; True when one was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    stop_pid(pid, timeout=60)
    paths(settings).pid_file.unlink(missing_ok=True)
    return True
