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

# The subcommands and the module that adds each (``register(subparsers)``), in the order
# they appear in `scout --help`. A command imports only its own module: `scout run silver`
# does not load the stack manager, the archive's Parquet writer or the platinum jobs (about
# half a worker's start-up CPU; tests/unit/test_cli.py holds this table to the modules).
COMMANDS = {
    "dev": "services.devstack.commands",
    "migrate": "services.common.commands",
    "kafka": "services.common.kafka_commands",
    "schemas": "services.common.schema_commands",
    "run": "services.runner",
    "simulate": "services.simulator.commands",
    "bronze": "services.bronze_writer.commands",
    "replay": "services.silver_enricher.commands",
    "quarantine": "services.silver_enricher.commands",
    "rekey": "services.silver_enricher.rekey",
    "gold": "services.gold_aggregator.commands",
    "platinum": "services.platinum_builder.commands",
    "privacy": "services.platinum_builder.commands",
    "quality": "services.quality",
    "demo": "services.demo",
}

log = logging.getLogger(__name__)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only its command's module when ``argv`` names a command,
    every module otherwise (``scout --help``, a typo, or no ``argv``)."""
    parser = argparse.ArgumentParser(
        prog="scout",
        description=(
            "Scout streaming medallion pipeline: Kafka → bronze → silver → gold → platinum "
            "in PostgreSQL. Settings come from SCOUT_* environment variables (see README)."
        ),
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = _command_in(argv) if argv is not None else None
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # area not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is not the global option or its value."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
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
