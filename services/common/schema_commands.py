"""``scout schemas export [--check]``: write the JSON Schemas of the wire payloads.

The files in ``schemas/events`` are generated from the pydantic models of
:mod:`services.common.events.wire`; ``--check`` exits 1 when they differ from the models
(CI runs it, and a unit test does the same), so the published schemas cannot drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.common.events import WIRE_SCHEMAS, json_schema_for, schema_file_name
from services.common.settings import Settings


def default_schema_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "schemas" / "events"


def render_schemas() -> dict[str, str]:
    """File name → exact file content, for every wire schema."""
    return {
        schema_file_name(name): json.dumps(json_schema_for(name), indent=2, sort_keys=False) + "\n"
        for name in WIRE_SCHEMAS
    }


def drifted(directory: Path) -> list[str]:
    """Names of the files that are missing, different or no longer generated."""
    expected = render_schemas()
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    extra = (
        sorted(p.name for p in directory.glob("*.schema.json") if p.name not in expected)
        if directory.is_dir()
        else []
    )
    return sorted(stale) + extra


def export(directory: Path) -> list[str]:
    """Write every schema file; return the names that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = drifted(directory)
    for name, text in render_schemas().items():
        if name in changed:
            (directory / name).write_text(text)
    return changed


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="export the JSON Schemas of the event payloads",
        description="Generate schemas/events/*.schema.json from the event models.",
    )
    actions = parser.add_subparsers(dest="schemas_action", metavar="ACTION", required=True)
    exp = actions.add_parser(
        "export",
        help="write schemas/events/<kind>.v<N>.schema.json",
        description=(
            "Write one JSON Schema per event kind and major version. With --check, write "
            "nothing and exit 1 when the files differ from the models."
        ),
    )
    exp.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    exp.add_argument("--dir", type=Path, default=None, help="output folder")
    exp.set_defaults(func=_export)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    directory: Path = args.dir or default_schema_dir()
    if args.check:
        stale = drifted(directory)
        for name in stale:
            print(f"schema out of date: {directory / name}", file=sys.stderr)
        if stale:
            print("run `scout schemas export` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(WIRE_SCHEMAS)} schemas up to date in {directory}")
        return 0
    changed = export(directory)
    for name in changed:
        print(f"wrote {directory / name}")
    if not changed:
        print(f"{len(WIRE_SCHEMAS)} schemas up to date in {directory}")
    return 0
