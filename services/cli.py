"""The ``scout`` command: one entry point for the local stack, the services and the tools.

Each area registers its own subcommands (``register(subparsers)`` in its ``commands``
module); this module only parses, builds the settings once, configures logging and turns
:class:`ScoutError` into one clear line and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from services.common.errors import ScoutError
from services.common.logging import configure_logging
from services.common.settings import load_settings

# Modules that add subcommands, in the order they appear in `scout --help`.
COMMAND_MODULES = (
    "services.devstack.commands",
    "services.common.commands",
    "services.common.schema_commands",
    "services.runner",
    "services.simulator.commands",
    "services.bronze_writer.commands",
    "services.silver_enricher.commands",
    "services.silver_enricher.rekey",
    "services.gold_aggregator.commands",
    "services.platinum_builder.commands",
    "services.quality",
    "services.demo",
)

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scout",
        description=(
            "Scout streaming medallion pipeline: Kafka → bronze → silver → gold → platinum "
            "in PostgreSQL. Settings come from SCOUT_* environment variables (see README)."
        ),
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # area not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"scout: invalid setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level or settings.log_level, settings.log_format)
    try:
        code: int = args.func(args, settings)
    except ScoutError as exc:
        print(f"scout: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
