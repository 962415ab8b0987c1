"""Kafka transport settings become the clients' arguments (pure: no broker involved)."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from services.common.errors import ConfigError
from services.common.kafka import client_security, faust_security
from services.common.settings import Settings


def _settings(**values: object) -> Settings:
    """Explicit values only: the environment of the shell (a secure stack's) must not leak in."""
    plain = {"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_username": None,
             "kafka_sasl_password": None, "kafka_ssl_cafile": None}  # fmt: skip
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
