"""``scout kafka acls [--strimzi CLUSTER | --grant]``: each service's Kafka ACLs, printed
(``kafka-acls.sh`` commands or Strimzi ``KafkaUser`` resources) or granted.

The list is :func:`services.common.kafka_acls.all_acls`, the one the secure local stack and
the tests grant: an operator applies the same with ``kafka-acls.sh`` (the printed commands),
as Strimzi ``KafkaUser`` authorizations, or with ``--grant`` as the cluster's admin.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services.common import kafka_acls
from services.common.errors import ConfigError
from services.common.settings import SERVICE_ROLES, Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kafka",
        help="each service's Kafka ACLs: print them as kafka-acls.sh commands, or grant them",
        description="Least privilege on Kafka: what each service may read, write and join.",
    )
    actions = parser.add_subparsers(dest="kafka_action", metavar="ACTION", required=True)
    acls = actions.add_parser(
        "acls",
        help="print (or --grant) every service's ACLs for SCOUT_TOPIC_PREFIX's topics",
        description=(
            "Print one kafka-acls.sh command per ACL of every service and of the autoscaler's "
            "lag reader ('lag': KEDA), for the topics under SCOUT_TOPIC_PREFIX. Users: --user, "
            "else SCOUT_KAFKA_SASL_USERNAME_<SERVICE>, else scout-<service> (scout-lag). With "
            "--grant, create them as the configured Kafka user (an admin of the cluster's "
            "ACLs) and wait until the broker applies them."
        ),
    )
    acls.add_argument("--user", action="append", default=[], metavar="SERVICE=NAME",
                      help="the SASL user of a service (repeatable)")  # fmt: skip
    acls.add_argument("--command-config", default="admin.properties",
                      help="the --command-config file of the printed commands")  # fmt: skip
    acls.add_argument("--strimzi", metavar="CLUSTER", default=None,
                      help="print them as KafkaUser resources of this Strimzi cluster")  # fmt: skip
    acls.add_argument("--grant", action="store_true", help="create them instead of printing")
    acls.set_defaults(func=_acls)


def _users(pairs: list[str]) -> dict[str, str]:
    users = {}
    for pair in pairs:
        service, _, name = pair.partition("=")
        names = (*SERVICE_ROLES, kafka_acls.LAG_READER)
        if service not in names or not name:
            raise ConfigError(f"--user {pair!r}: expected SERVICE=NAME, SERVICE one of "
                              f"{', '.join(names)}")  # fmt: skip
        users[service] = name
    return users


def _acls(args: argparse.Namespace, settings: Settings) -> int:
    acls = kafka_acls.all_acls(settings, _users(args.user))
    if args.grant:
        asyncio.run(kafka_acls.grant(settings, acls))
        print(f"scout kafka acls: {len(acls)} ACLs in force on {settings.kafka_bootstrap}")
        return 0
    if args.strimzi:
        print(kafka_acls.strimzi_users(acls, args.strimzi), end="")
        return 0
    for line in kafka_acls.kafka_acls_commands(acls, settings.kafka_bootstrap, args.command_config):
        print(line)
    return 0
