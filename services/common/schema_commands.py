"""``scout schemas export [--check] | register | check``: the wire payloads' schemas.

The files in ``schemas/events`` are generated from the pydantic models of
:mod:`services.common.events.wire`; ``export --check`` exits 1 when they differ from the
models (CI runs it, and a unit test does the same), so the published schemas cannot drift.
``register`` publishes them (JSON Schema and derived Avro) to the Schema Registry
(:mod:`services.common.registered_schemas`); ``check`` asks the registry whether the current
models are compatible with what is registered, without registering.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from services.common import registered_schemas, registry
from services.common.events import WIRE_SCHEMAS, json_schema_for, schema_file_name
from services.common.kafka import topics_for
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
        help="export the event payloads' JSON Schemas; register / check them in the registry",
        description=(
            "Generate schemas/events/*.schema.json from the event models, register them (and "
            "the Avro schemas derived from them) in the Schema Registry, or check a change."
        ),
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
    for name, func, text in (
        ("register", _register, "register every subject (BACKWARD); fail when incompatible"),
        ("check", _check, "tell whether the current schemas are compatible; register nothing"),
    ):
        act = actions.add_parser(
            name,
            help=text,
            description=(
                f"{text[0].upper()}{text[1:]}. Registry: SCOUT_SCHEMA_REGISTRY_URL (default the "
                "local stack's). Subjects: <topic>-<kind>.v<N> (JSON Schema) and "
                "<topic>-<kind>.v<N>.avro (Avro), for every source and master topic."
            ),
        )
        act.add_argument(
            "--schema",
            action="append",
            default=[],
            metavar="KIND=FILE",
            help="use this JSON Schema file for KIND (e.g. pos.transaction/1=new.json)",
        )
        act.set_defaults(func=func)


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


def _overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for pair in pairs:
        kind, _, path = pair.partition("=")
        if kind not in WIRE_SCHEMAS or not path:
            raise SystemExit(f"--schema wants KIND=FILE with KIND one of {', '.join(WIRE_SCHEMAS)}")
        out[kind] = json.loads(Path(path).read_text())
    return out


def _run_registry(args: argparse.Namespace, settings: Settings, register_them: bool) -> int:
    items = registered_schemas.published(topics_for(settings), _overrides(args.schema))

    async def run() -> list[registered_schemas.Outcome]:
        client = registry.client(settings.registry_url())
        action = registered_schemas.register_all if register_them else registered_schemas.check_all
        try:
            return await action(client, items)
        finally:
            await client.aclose()

    outcomes = asyncio.run(run())
    for o in outcomes:
        state = "ok" if o.ok else "REFUSED" if register_them else "INCOMPATIBLE"
        detail = f"id {o.schema_id}" if o.schema_id is not None else o.message
        print(f"{state:<12} {o.subject:<60} {detail}", file=sys.stdout if o.ok else sys.stderr)
    failed = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} subjects ok at {settings.registry_url()}")
    return 1 if failed else 0


def _register(args: argparse.Namespace, settings: Settings) -> int:
    return _run_registry(args, settings, register_them=True)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    return _run_registry(args, settings, register_them=False)
