"""Exceptions with a message meant for the person running the command."""

from __future__ import annotations


class ScoutError(Exception):
    """An error the CLI reports as one clear line and a non-zero exit code."""

    exit_code = 1


class ConfigError(ScoutError):
    """A setting is missing or wrong."""

    exit_code = 2


class MissingToolError(ScoutError):
    """A program the local stack needs (Java, Maven, PostgreSQL) is not installed."""

    exit_code = 3


class ServiceUnavailableError(ScoutError):
    """Kafka or PostgreSQL did not answer in time."""

    exit_code = 4


class MigrationError(ScoutError):
    """A migration failed; the database is left as it was before that migration."""

    exit_code = 5


class SessionSettingsMissing(ConfigError):
    """Behind a connection pooler, a session lacks the role or settings Scout needs (the
    login's defaults): the server's state, waited out like a missing grant."""
