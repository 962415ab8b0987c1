"""``scout bronze …``: operator commands of the bronze layer (today: ``retention``).

Retention runs as the login user of SCOUT_DATABASE_URL without switching to the bronze
writer's role: detaching partitions needs the tables' owner, and the writer's role may
only INSERT.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.bronze_writer.retention import archive_expired, cutoff_for, describe
from services.common.db import connect
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bronze",
        help="bronze layer operations (retention)",
        description="Operator commands of the bronze layer.",
    )
    commands = parser.add_subparsers(dest="bronze_command", metavar="SUBCOMMAND", required=True)
    retention = commands.add_parser(
        "retention",
        help="archive and detach monthly bronze partitions past the retention period",
        description=(
            "For each monthly partition of scout.bronze_transactions_raw lying entirely "
            "before now minus --older-than: export its rows to <archive-dir>/<partition>"
            ".csv.gz (CSV with a header), verify the row count, then detach it and move it "
            "to the scout_archive schema (still immutable; drop it by hand once the file is "
            "safe). A failure leaves the partition attached; re-running is safe and a no-op "
            "when nothing is due. Runs as the database owner, not the bronze role."
        ),
    )
    retention.add_argument(
        "--older-than",
        required=True,
        metavar="PERIOD",
        help="retention period: 24mo (months), 2y (years) or 730d (days)",
    )
    retention.add_argument(
        "--archive-dir",
        type=Path,
        default=None,
        help="where the .csv.gz files go (default: $SCOUT_STATE_DIR/archive/bronze)",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="list what would be archived, change nothing"
    )
    retention.set_defaults(func=_retention)


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    cutoff = cutoff_for(args.older_than, datetime.now(UTC))
    archive_dir: Path = args.archive_dir or settings.state_dir / "archive" / "bronze"

    async def run() -> int:
        conn = await connect(settings, attempts=5, application_name="scout-bronze-retention")
        try:
            result = await archive_expired(conn, cutoff, archive_dir, dry_run=args.dry_run)
        finally:
            await conn.close()
        verb = "would archive" if args.dry_run else "archived"
        print(f"{verb} {describe(result)}")
        return 0

    return asyncio.run(run())
