"""The `scout` command's table of subcommands, and that a command loads only its own module."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from services.cli import COMMANDS, _command_in, build_parser


def _registered_by(module_name: str) -> list[str]:
    subparsers = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module_name).register(subparsers)
    return list(subparsers.choices)


def test_the_table_names_every_command_of_every_module() -> None:
    for module_name in dict.fromkeys(COMMANDS.values()):
        owned = [command for command, owner in COMMANDS.items() if owner == module_name]
        assert _registered_by(module_name) == owned, module_name


def test_every_command_parses_alone_as_in_the_whole_parser() -> None:
    whole = build_parser()
    for argv in (["run", "silver"], ["gold", "verify"], ["--log-level", "DEBUG", "migrate"]):
        assert vars(build_parser(argv).parse_args(argv)).keys() == (
            vars(whole.parse_args(argv)).keys()
        )


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "silver"], "run"),
        (["--log-level", "DEBUG", "gold", "verify"], "gold"),
        (["--log-level=DEBUG", "dev", "up"], "dev"),
        (["--help"], None),
        ([], None),
        (["--log-level", "run"], None),  # the option's value is not a command
    ],
)
def test_the_command_is_the_first_word_after_the_global_option(
    argv: list[str], command: str | None
) -> None:
    assert _command_in(argv) == command


def test_a_worker_command_does_not_load_the_other_areas() -> None:
    probe = (
        "import json, sys; from services.cli import build_parser; "
        "build_parser(['run', 'silver']).parse_args(['run', 'silver']); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    loaded = set(json.loads(out.stdout))
    assert "services.runner" in loaded
    for other in (
        "services.devstack.stack",
        "services.platinum_builder.jobs",
        "services.bronze_writer.parquet_archive",
        "services.common.registered_schemas",
    ):
        assert other not in loaded, other
