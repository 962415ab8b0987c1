"""Kafka transport settings become the clients' arguments (pure: no broker involved)."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest
import yaml

from services.common.errors import ConfigError
from services.common.kafka import client_security, faust_security, topics_for
from services.common.kafka_acls import all_acls, kafka_acls_commands, strimzi_users
from services.common.settings import SERVICE_ROLES, Settings


def _settings(**values: object) -> Settings:
    """Explicit values only: the environment of the shell (a secure stack's) must not leak in."""
    plain = {"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_username": None,
             "kafka_sasl_password": None, "kafka_ssl_cafile": None}  # fmt: skip
    for service in SERVICE_ROLES:
        plain |= {f"kafka_sasl_username_{service}": None, f"kafka_sasl_password_{service}": None}
    return Settings(**(plain | values))  # type: ignore[arg-type]


def test_plaintext_adds_nothing() -> None:
    assert client_security(_settings()) == {}
    assert faust_security(_settings()) == {}


def test_sasl_ssl_gives_every_client_tls_and_scram() -> None:
    s = _settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="scout-silver",
                  kafka_sasl_password="pw", kafka_sasl_mechanism="SCRAM-SHA-256")  # fmt: skip
    config = client_security(s)
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("scout-silver", "pw")
    assert config["ssl_context"].check_hostname
    credentials = faust_security(s)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (
        credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    )


def test_sasl_without_credentials_says_what_to_set() -> None:
    with pytest.raises(
        ConfigError, match="SCOUT_KAFKA_SASL_USERNAME and SCOUT_KAFKA_SASL_PASSWORD"
    ):
        client_security(_settings(kafka_security_protocol="SASL_SSL"))


def test_missing_ca_file_is_refused(tmp_path: Path) -> None:
    s = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "none.crt")
    with pytest.raises(ConfigError, match="does not exist"):
        client_security(s)


def test_sasl_plaintext_has_no_tls() -> None:
    s = _settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                  kafka_sasl_password="p")  # fmt: skip
    assert "ssl_context" not in client_security(s)
    assert faust_security(s)["broker_credentials"].protocol.value == "SASL_PLAINTEXT"


def test_a_service_speaks_as_its_own_user_when_one_is_configured() -> None:
    s = _settings(kafka_sasl_username="scout-admin", kafka_sasl_password="admin",
                  kafka_sasl_username_silver="scout-silver",
                  kafka_sasl_password_silver="pw")  # fmt: skip
    silver, gold = s.as_service("silver"), s.as_service("gold")
    assert silver.kafka_sasl_username == "scout-silver"
    assert silver.kafka_sasl_password is not None
    assert silver.kafka_sasl_password.get_secret_value() == "pw"
    assert gold is s  # none of its own: the process's one user


def test_each_service_may_touch_only_its_own_topics() -> None:
    s = _settings(topic_prefix="p.")
    topics = topics_for(s)
    acls = all_acls(s, {"gold": "g"})
    by = {(a.principal, a.operation, a.name) for a in acls if a.resource == "topic"}
    # Only bronze writes the hand-off; nobody writes a source or master topic.
    writers = {(p, name) for p, op, name in by if op in ("WRITE", "ALL")}
    assert writers == {("User:scout-bronze", topics.bronze_landed),
                       *((f"User:{u}", f"p-{svc}-") for svc, u in (("bronze", "scout-bronze"),
                         ("silver", "scout-silver"), ("gold", "g"),
                         ("platinum", "scout-platinum")))}  # fmt: skip
    reads = {name for p, op, name in by if op == "READ" and p == "User:scout-silver"}
    assert reads == {topics.bronze_landed, topics.master_stores, topics.master_products}
    assert {name for p, op, name in by if op == "READ" and p == "User:g"} == {topics.gold_shards}
    groups = {
        (a.principal, a.name) for a in acls if a.resource == "group" and a.operation == "READ"
    }
    assert groups == {("User:scout-bronze", "p-bronze"), ("User:scout-silver", "p-silver"),
                      ("User:g", "p-gold"), ("User:scout-platinum", "p-platinum")}  # fmt: skip
    # Every pipeline topic is covered by some service's prefixed DESCRIBE (lag, start check).
    assert all(a.name == "p." for a in acls if a.operation == "DESCRIBE" and a.resource == "topic")
    # The autoscaler's user sees the topics and the lag-scaled groups' offsets, nothing more.
    lag = {(a.resource, a.name, a.pattern, a.operation) for a in acls
           if a.principal == "User:scout-lag"}  # fmt: skip
    assert lag == {("topic", "p.", "prefixed", "DESCRIBE"),
                   ("group", "p-bronze", "literal", "DESCRIBE"),
                   ("group", "p-silver", "literal", "DESCRIBE")}  # fmt: skip


def test_printed_acl_commands_name_pattern_and_group() -> None:
    acls = all_acls(_settings(topic_prefix="p."))
    lines = kafka_acls_commands(acls, "b:9093", "admin.properties")
    assert len(lines) == len(acls)
    assert (
        "kafka-acls.sh --bootstrap-server b:9093 --command-config admin.properties --add"
        " --allow-principal User:scout-silver --operation Read --group p-silver"
    ) in lines
    assert any(line.endswith("--topic p. --resource-pattern-type prefixed") for line in lines)


def test_strimzi_users_grant_the_same_acls() -> None:
    acls = all_acls(_settings(topic_prefix="p."))
    users = list(yaml.safe_load_all(strimzi_users(acls, "retail")))
    assert [u["metadata"]["name"] for u in users] == [f"scout-{s}" for s in SERVICE_ROLES] + [
        "scout-lag"
    ]
    assert {u["metadata"]["labels"]["strimzi.io/cluster"] for u in users} == {"retail"}
    granted = {
        (f"User:{u['metadata']['name']}", a["resource"]["type"], a["resource"]["name"],
         a["resource"]["patternType"], a["operations"][0].upper())
        for u in users for a in u["spec"]["authorization"]["acls"]
    }  # fmt: skip
    assert granted == {(a.principal, a.resource, a.name,
                        "prefix" if a.pattern == "prefixed" else "literal", a.operation)
                       for a in acls}  # fmt: skip
