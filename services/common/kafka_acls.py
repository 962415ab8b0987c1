"""Each service's Kafka permissions: the ACLs a broker with an authorizer enforces.

One list (:func:`all_acls`), the rule in one place: the secure local stack and the test
harness grant it (:func:`grant`), ``scout kafka acls`` prints it for a cluster's operator
(``kafka-acls.sh`` commands, or Strimzi ``KafkaUser`` resources). A service may see the
pipeline's topics (describe: the lag gauges and the topic check at start), read what it
consumes, write what it produces, use its own consumer group and its Faust app's internal
topics (the leader topic), and nothing else: no service may write the internal hand-off
topic but bronze, and none may create a pipeline topic, alter a configuration or act on
another service's group. The autoscaler's lag reader may only see topics and the offsets of
the groups scaled on lag. Producers of the source topics (POS, partners, devices) are the
cluster's to grant: write on their topic only.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from services.common.errors import ConfigError, ServiceUnavailableError
from services.common.kafka import app_id, topics_for
from services.common.settings import SERVICE_ROLES, Settings

Operation = Literal["READ", "WRITE", "DESCRIBE", "ALL"]


# The autoscaler's own user, beside the services' (its ACLs: :func:`lag_reader_acls`).
LAG_READER = "lag"
LAG_SCALED = ("bronze", "silver")  # the services KEDA scales on consumer lag (gold: on PostgreSQL)


class Acl(NamedTuple):
    """One ALLOW binding, for any host."""

    principal: str  # User:<SASL user>
    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"]
    operation: Operation


def default_user(service: str) -> str:
    """The SASL user a service is given unless told otherwise (the local stack's names)."""
    return f"scout-{service}"


def service_acls(settings: Settings, service: str, user: str) -> list[Acl]:
    """What ``service``, as SASL user ``user``, may do on the topics of ``settings``."""
    topics, app = topics_for(settings), app_id(settings, service)
    writes: dict[str, Sequence[str]] = {"bronze": (topics.bronze_landed,)}
    principal = f"User:{user}"

    def acl(resource: Literal["topic", "group"], name: str, op: Operation,
            pattern: Literal["literal", "prefixed"] = "literal") -> Acl:  # fmt: skip
        return Acl(principal, resource, name, pattern, op)

    return [
        acl("topic", topics.prefix, "DESCRIBE", "prefixed"),
        *(acl("topic", name, "READ") for name in topics.consumed_by(service)),
        *(acl("topic", name, "WRITE") for name in writes.get(service, ())),
        acl("group", app, "READ"),
        acl("topic", f"{app}-", "ALL", "prefixed"),  # Faust's <app id>-__assignor-__leader
    ]


def lag_reader_acls(settings: Settings, user: str) -> list[Acl]:
    """What the autoscaler's user (KEDA's kafka trigger) may do: see the topics and the
    committed offsets of the groups scaled on lag (bronze's, silver's), and nothing else:
    it reads no record and joins no group."""
    principal = f"User:{user}"
    return [
        Acl(principal, "topic", topics_for(settings).prefix, "prefixed", "DESCRIBE"),
        *(Acl(principal, "group", app_id(settings, s), "literal", "DESCRIBE")
          for s in LAG_SCALED),
    ]  # fmt: skip


def all_acls(settings: Settings, users: Mapping[str, str] | None = None) -> list[Acl]:
    """Every service's ACLs and the lag reader's (:data:`LAG_READER`); each as
    ``users[name]``, else its configured own user (``kafka_sasl_username_<service>``), else
    :func:`default_user`."""

    def user(name: str) -> str:
        own: str | None = getattr(settings, f"kafka_sasl_username_{name}", None)
        return (users or {}).get(name) or own or default_user(name)

    return [
        *(acl for service in SERVICE_ROLES
          for acl in service_acls(settings, service, user(service))),
        *lag_reader_acls(settings, user(LAG_READER)),
    ]  # fmt: skip


def kafka_acls_commands(acls: Iterable[Acl], bootstrap: str, command_config: str) -> list[str]:
    """``kafka-acls.sh`` command lines that grant ``acls``."""
    lines = []
    for a in acls:
        target = f"--topic {a.name}" if a.resource == "topic" else f"--group {a.name}"
        pattern = " --resource-pattern-type prefixed" if a.pattern == "prefixed" else ""
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config}"
            f" --add --allow-principal {a.principal} --operation {a.operation.title()}"
            f" {target}{pattern}"
        )
    return lines


def strimzi_users(acls: Iterable[Acl], cluster: str) -> str:
    """Strimzi ``KafkaUser`` resources (SCRAM-SHA-512, simple authorization) granting
    ``acls``, one per principal, as YAML documents."""
    by_user: dict[str, list[Acl]] = {}
    for a in acls:
        by_user.setdefault(a.principal.removeprefix("User:"), []).append(a)
    docs = []
    for user, granted in by_user.items():
        lines = ["apiVersion: kafka.strimzi.io/v1beta2", "kind: KafkaUser", "metadata:",
                 f"  name: {json.dumps(user)}", "  labels:",
                 f"    strimzi.io/cluster: {json.dumps(cluster)}", "spec:",
                 "  authentication:", "    type: scram-sha-512", "  authorization:",
                 "    type: simple", "    acls:"]  # fmt: skip
        for a in granted:
            pattern = "prefix" if a.pattern == "prefixed" else "literal"
            lines += ["      - resource:", f"          type: {a.resource}",
                      f"          name: {json.dumps(a.name)}",
                      f"          patternType: {pattern}",
                      f"        operations: [{a.operation.title()}]",
                      '        host: "*"']  # fmt: skip
        docs.append("\n".join(lines))
    return "---\n" + "\n---\n".join(docs) + "\n"


def _confluent() -> Any:
    # librdkafka's admin client (the ACL API aiokafka lacks); imported only when granting.
    return importlib.import_module("confluent_kafka.admin")


def admin_client(settings: Settings) -> Any:
    """librdkafka's admin client, as ``settings``' user."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username or "",
            "sasl.password": password.get_secret_value() if password else "",
        }
    if settings.kafka_ssl_cafile is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    if not settings.kafka_ssl_check_hostname:
        config["ssl.endpoint.identification.algorithm"] = "none"
    return _confluent().AdminClient(config)


def _bindings(acls: Iterable[Acl], *, filters: bool = False) -> list[Any]:
    ck = _confluent()
    kind = ck.AclBindingFilter if filters else ck.AclBinding
    return [kind(ck.ResourceType[a.resource.upper()], a.name,
                 ck.ResourcePatternType[a.pattern.upper()], a.principal, "*",
                 ck.AclOperation[a.operation], ck.AclPermissionType.ALLOW)
            for a in acls]  # fmt: skip


def _every_binding() -> Any:
    ck = _confluent()
    return ck.AclBindingFilter(ck.ResourceType.ANY, None, ck.ResourcePatternType.ANY, None,
                               None, ck.AclOperation.ANY, ck.AclPermissionType.ANY)  # fmt: skip


def _grant(settings: Settings, acls: Sequence[Acl], revoke: bool) -> None:
    admin = admin_client(settings)
    bindings = _bindings(acls, filters=revoke)
    futures = (admin.delete_acls if revoke else admin.create_acls)(bindings, request_timeout=30)
    for future in futures.values():
        try:
            future.result(timeout=60)  # an error (no authorizer, not allowed) raises here
        except importlib.import_module("confluent_kafka").KafkaException as exc:
            raise _refused(settings, exc) from None
    # The controller commits them; the broker applies them a moment later: wait for that, so
    # a client started next is not refused (and caches no refusal).
    wanted = set(_bindings(acls))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        present = set(admin.describe_acls(_every_binding(), request_timeout=10).result())
        if wanted.isdisjoint(present) if revoke else wanted <= present:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the broker did not apply {len(wanted)} ACL change(s) in 30 s")


def _refused(settings: Settings, exc: Exception) -> Exception:
    error: Any = exc.args[0] if exc.args else None  # a confluent_kafka.KafkaError
    name = str(error.name()) if hasattr(error, "name") else str(exc)
    if name == "SECURITY_DISABLED":
        return ConfigError(
            f"Kafka at {settings.kafka_bootstrap} has no authorizer, so it enforces no ACLs:"
            " configure one (authorizer.class.name); the secure local stack's broker has one"
            " unless an older version started it (`scout dev down --secure`, then up again)"
        )
    if name == "CLUSTER_AUTHORIZATION_FAILED":
        return ConfigError(
            f"Kafka user {settings.kafka_sasl_username!r} may not alter the cluster's ACLs:"
            " grant them as an admin"
        )
    return ServiceUnavailableError(f"Kafka refused the ACL change: {name}")


async def grant(settings: Settings, acls: Sequence[Acl], *, revoke: bool = False) -> None:
    """Create (or delete) ``acls`` as ``settings``' user, which must be allowed to alter the
    cluster's ACLs (the stack's admin), and wait until the broker applies them. Creating an
    existing binding changes nothing."""
    await asyncio.to_thread(_grant, settings, acls, revoke)
