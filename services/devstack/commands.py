"""``scout dev up | down | status [--json]``."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from services.common.settings import Settings
from services.devstack import stack


def register(subparsers: Any) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="start / stop / show the local stack (Kafka KRaft broker, PostgreSQL, registry)",
        description=(
            "Manage the local stack on loopback: a real Apache Kafka broker in KRaft mode "
            "(jars fetched from Maven Central into the cache once per version) and a private "
            "PostgreSQL cluster, and a schema registry (Apicurio, Confluent-compatible API, "
            "skipped when SCOUT_SCHEMA_REGISTRY_URL names one). Idempotent: `up` on a running "
            "stack changes nothing. "
            "Data is kept across down/up. State lives in SCOUT_STATE_DIR (default .scout)."
        ),
    )
    sub = dev.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start what is not running, wait until ready")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop what `up` started (data is kept)")
    down.set_defaults(func=_down)
    st = sub.add_parser("status", help="show each component, address, pid and health")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)
    for action in (up, down, st):
        action.add_argument(
            "--secure",
            action="store_true",
            help="the second, secure stack (SCOUT_DEV_SECURE): Kafka on SASL_SSL with SCRAM "
            f"users (127.0.0.1:{stack.SECURE_KAFKA_PORT}), PostgreSQL on TLS only "
            f"(127.0.0.1:{stack.SECURE_PG_PORT}), certificates made at first start; state in "
            f"{stack.SECURE_STATE_DIR} unless SCOUT_STATE_DIR is set",
        )


def _settings(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.secure and not settings.dev_secure:
        settings = settings.model_copy(update={"dev_secure": True})
    return stack.secure(settings)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    settings = _settings(args, settings)
    for component, started in stack.up(settings):
        verb = "started" if started else "already running"
        print(f"{component.name:<9} {verb:<16} pid {component.pid or '-'!s:<8} "
              f"{component.address}")  # fmt: skip
    # SCOUT_DATABASE_URL is the owner's (migrate, tools); each service gets its own login.
    print()
    for name, value in stack.exports(settings).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    settings = _settings(args, settings)
    for name, was_running in stack.down(settings):
        print(f"{name:<9} {'stopped' if was_running else 'was not running'}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    settings = _settings(args, settings)
    components = stack.status(settings)
    if args.json:
        print(json.dumps([c.as_dict() for c in components], indent=2))
    else:
        print(f"{'component':<10} {'health':<8} {'pid':<8} {'managed':<8} address")
        for c in components:
            health = "up" if c.healthy else "down"
            print(
                f"{c.name:<10} {health:<8} {c.pid or '-'!s:<8} {'yes' if c.managed else 'no':<8} "
                f"{c.address} {c.note}"
            )
    return 0 if all(c.healthy for c in components) else 1
