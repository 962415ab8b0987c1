"""``scout migrate``: apply the numbered SQL migrations of ``schemas/sql``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from services.common.db import connect
from services.common.logins import ensure_logins, logins_from_settings
from services.common.migrations import default_migrations_dir, migrate
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply database migrations (idempotent)",
        description=(
            "Apply the forward-only migrations of schemas/sql in order, each in its own "
            "transaction under an advisory lock. Re-running is a no-op; a failing migration "
            "is rolled back and the command exits non-zero."
        ),
    )
    parser.add_argument("--dir", type=Path, default=None, help="migrations folder")
    parser.add_argument(
        "--service-logins",
        action="store_true",
        help="then create or update each service's login from the SCOUT_DATABASE_URL_<SERVICE> "
        "settings given (user and password of each URL): NOINHERIT, member of its role only",
    )
    parser.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        conn = await connect(settings, attempts=20, application_name="scout-migrate")
        try:
            applied = await migrate(conn, args.dir or default_migrations_dir())
            logins = logins_from_settings(settings) if args.service_logins else {}
            await ensure_logins(conn, logins)
        finally:
            await conn.close()
        if applied:
            for m in applied:
                print(f"applied {m.version:04d}_{m.name}")
        else:
            print("database is up to date")
        for login in logins.values():
            print(f"service login {login.user} ready ({login.service})")
        return 0

    return asyncio.run(run())
