"""Helpers for tests that run the real services: start a worker process, wait, publish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol

from services.common.kafka import make_producer
from services.common.settings import SERVICE_ROLES, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports, for a service that binds a run of them
    (a registry's management port, a broker's controller, the demo's workers)."""
    for _ in range(100):
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                for offset in range(1, count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port + offset))
            except (OSError, OverflowError):
                continue
            return port
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process see ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOUT_")}
    env |= {
        "SCOUT_ENV": settings.env,
        "SCOUT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCOUT_DATABASE_URL": settings.database_url.get_secret_value(),
        "SCOUT_DATABASE_POOLER": settings.database_pooler,
        "SCOUT_TOPIC_PREFIX": settings.topic_prefix,
        "SCOUT_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "SCOUT_STATE_DIR": str(settings.state_dir),
        "SCOUT_BATCH_WAIT_S": str(settings.batch_wait_s),
        "SCOUT_BATCH_MAX": str(settings.batch_max),
        "SCOUT_LOG_FORMAT": "text",
    }
    # Transport security of the stack under test (the secure CI job: SASL_SSL and TLS).
    env["SCOUT_KAFKA_SECURITY_PROTOCOL"] = settings.kafka_security_protocol
    env["SCOUT_KAFKA_SASL_MECHANISM"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username is not None:
        env["SCOUT_KAFKA_SASL_USERNAME"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        env["SCOUT_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        env["SCOUT_KAFKA_SSL_CAFILE"] = str(settings.kafka_ssl_cafile)
    for service in SERVICE_ROLES:
        own = getattr(settings, f"database_url_{service}")
        if own is not None:
            env[f"SCOUT_DATABASE_URL_{service.upper()}"] = own.get_secret_value()
        user, password = (
            getattr(settings, f"kafka_sasl_{k}_{service}") for k in ("username", "password")
        )
        if user is not None and password is not None:  # the secure stack: its own Kafka user
            env[f"SCOUT_KAFKA_SASL_USERNAME_{service.upper()}"] = user
            env[f"SCOUT_KAFKA_SASL_PASSWORD_{service.upper()}"] = password.get_secret_value()
    if settings.pii_key is not None:
        env["SCOUT_PII_KEY"] = settings.pii_key.get_secret_value()
    # The registry the test uses, named explicitly: a child with its own state dir (scout
    # demo) must not start a second local registry on the same port.
    env["SCOUT_SCHEMA_REGISTRY_URL"] = settings.registry_url()
    if settings.pii_key_id is not None:
        env["SCOUT_PII_KEY_ID"] = settings.pii_key_id
    return env | extra


class ServiceProcess:
    """``scout run <service>`` in a child process, with its own web port and log file."""

    def __init__(self, service: str, settings: Settings, log_dir: Path, **env: str) -> None:
        self.service = service
        self.port = free_port()
        self.env = settings_env(settings, SCOUT_WEB_PORT=str(self.port), **env)
        self.log_path = log_dir / f"{service}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60.0) -> ServiceProcess:
        self.spawn()
        self.wait_ready(ready_timeout)
        return self

    def spawn(self) -> ServiceProcess:
        """Start the child without waiting for it (:func:`start_all`)."""
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", self.service],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url(path), timeout=5) as response:
            return str(response.read().decode())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        rebinds = 3
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                # free_port's port is free when chosen, not when the child binds it: another
                # process may take it in between. Then the child starts again on another.
                if rebinds and "address already in use" in self.log_tail():
                    rebinds -= 1
                    self.port = free_port()
                    self.env["SCOUT_WEB_PORT"] = str(self.port)
                    self.spawn()
                    continue
                raise AssertionError(f"{self.service} exited early:\n{self.log_tail()}")
            try:
                self.get("/ready")
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"{self.service} not ready in {timeout}s:\n{self.log_tail()}")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        total = 0.0
        for line in self.get("/metrics").splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, label_text = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is committed on the way out."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.terminate()
        return self.wait_stopped()

    def terminate(self) -> None:
        """SIGTERM, without waiting for the shutdown (:func:`stop_all`)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """The exit code once the child has ended; SIGKILL after 60 s of shutting down."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_all(
    services: Iterable[ServiceProcess], ready_timeout: float = 60.0
) -> list[ServiceProcess]:
    """Start the workers together, then wait until each is ready: a worker's start is mostly
    waiting (imports, the group join, Faust's fixed pauses), so three are ready in about
    the time of one (4.6 s against 10.3 s one after the other, measured)."""
    services = [service.spawn() for service in services]
    try:
        for service in services:
            service.wait_ready(ready_timeout)
    except BaseException:
        for service in services:
            service.terminate()
        for service in services:
            service.wait_stopped()
        raise
    return services


def stop_all(services: Iterable[ServiceProcess], *, check: bool = True) -> None:
    """SIGTERM every worker, then wait for each (their shutdowns overlap: each ends with
    mode's fixed 1 s wait); with ``check``, fail unless every one exited cleanly."""
    services = list(services)
    for service in services:
        service.terminate()
    codes = [(service, service.wait_stopped()) for service in services]
    failed = [f"{s.service} exited {code}:\n{s.log_tail()}" for s, code in codes if code != 0]
    assert not (check and failed), "\n".join(failed)


async def publish(
    settings: Settings, records: Iterable[tuple[str, bytes | None, bytes]], *, rate: float = 0
) -> int:
    """Publish (topic, key, value) records; ``rate`` > 0 paces them (records per second)."""
    producer = make_producer(settings)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        pending = []
        for topic, key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0 and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def wait_for(
    predicate: object, *, timeout: float, interval: float = 0.5, context: object = None
) -> None:
    """Poll an async predicate until it returns true; ``context()`` adds to the failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()  # type: ignore[operator]
        if last:
            return
        await asyncio.sleep(interval)
    extra = f"\n{context()}" if callable(context) else ""
    raise AssertionError(f"condition not met in {timeout}s (last value {last!r}){extra}")


def group_id(settings: Settings, service: str) -> str:
    """The Kafka consumer group of ``service``'s workers (the app id of ``make_app``)."""
    return f"{settings.topic_prefix}{service}".replace(".", "-").strip("-")


async def group_assignment(settings: Settings, service: str) -> list[set[TopicPartition]]:
    """Each member's assigned partitions, as the group coordinator reports them; empty while
    the group is not stable (rebalancing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id(settings, service)])
    finally:
        await admin.close()
    [group] = response.groups
    state, members = group[2], group[5]
    if state != "Stable":
        return []
    owned = []
    for member in members:
        assignment = ConsumerProtocol.ASSIGNMENT.decode(member[-1])
        owned.append({TopicPartition(t, p) for t, parts in assignment.assignment for p in parts})
    return owned


async def committed_offsets(settings: Settings, service: str) -> dict[TopicPartition, int]:
    """The offsets ``service``'s group has committed, on the partitions it committed on."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id(settings, service))
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def uncommitted(
    settings: Settings, service: str, partitions: Iterable[TopicPartition]
) -> int:
    """Records of ``partitions`` that ``service``'s group has not committed."""
    committed = await committed_offsets(settings, service)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(partitions))
    finally:
        await consumer.stop()
    return sum(end - committed.get(tp, 0) for tp, end in ends.items())


def gold_verified(settings: Settings) -> str:
    """``scout gold verify`` over the last 90 days: asserts gold equals silver; its output."""
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "gold", "verify", "--days", "90"],
        env=settings_env(settings), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK, equals silver" in result.stdout, result.stdout
    return result.stdout


# asyncpg's transactions, as protocol messages: simple queries.
COMMIT_QUERY = b"Q\x00\x00\x00\x0cCOMMIT;\x00"
BEGIN_QUERY = re.compile(rb"Q.{4}BEGIN", re.DOTALL)
SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


class LostCommitReplies:
    """A TCP proxy in front of PostgreSQL (plaintext) that, while armed, passes a COMMIT to
    the server, waits for the server's answer (the transaction has committed) and then cuts
    the client's connection without passing the answer on. The client cannot know whether
    its transaction committed: a network or server failing at the worst moment.

    With ``only_with_rows``, only the COMMIT of a transaction that read rows counts (gold's
    flush that took changes, not one that found none)."""

    def __init__(self, upstream_url: str, *, only_with_rows: bool = False) -> None:
        parts = urlsplit(upstream_url)
        self._url = parts
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._only_with_rows = only_with_rows
        self._server: asyncio.Server | None = None
        self._port = 0
        self.to_drop = 0  # answers still to drop
        self.dropped = 0

    async def start(self) -> LostCommitReplies:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """The upstream URL, through the proxy."""
        userinfo, at, _ = self._url.netloc.rpartition("@")
        return urlunsplit(self._url._replace(netloc=f"{userinfo}{at}127.0.0.1:{self._port}"))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        committing = asyncio.Event()
        state = {"rows": 0, "unframed": 0}  # data rows in this transaction; bytes to skip

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if data.startswith(SSL_REQUEST):
                    state["unframed"] = 1  # the server answers it with one byte, S or N
                if BEGIN_QUERY.search(data):
                    state["rows"] = 0
                if COMMIT_QUERY in data:
                    if self.to_drop > 0 and (state["rows"] or not self._only_with_rows):
                        self.to_drop -= 1
                        committing.set()
                    state["rows"] = 0
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            frames = bytearray()
            while data := await server_r.read(65536):
                if committing.is_set():  # the server's answer to the COMMIT: never delivered
                    self.dropped += 1
                    client_w.transport.abort()
                    server_w.transport.abort()
                    return
                frames += data[state["unframed"] :]
                state["unframed"] = 0
                while len(frames) >= 5 and len(frames) >= 1 + (n := int.from_bytes(frames[1:5])):
                    state["rows"] += frames[0] == ord("D")  # a DataRow
                    del frames[: 1 + n]
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
