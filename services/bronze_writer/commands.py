"""``scout bronze …``: operator commands of the bronze layer (``retention``, ``restore``).

Retention runs as the login user of SCOUT_DATABASE_URL without switching to the bronze
writer's role: detaching partitions needs the tables' owner, and the writer's role may
only INSERT.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from services.bronze_writer.restore import restore_month
from services.bronze_writer.retention import CSV, PARQUET, archive_expired, cutoff_for, describe
from services.common.db import connect
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bronze",
        help="bronze layer operations (retention, restore)",
        description="Operator commands of the bronze layer.",
    )
    commands = parser.add_subparsers(dest="bronze_command", metavar="SUBCOMMAND", required=True)
    retention = commands.add_parser(
        "retention",
        help="archive and detach monthly bronze partitions past the retention period",
        description=(
            "For each monthly partition of scout.bronze_transactions_raw lying entirely "
            "before now minus --older-than: export its rows, verify them, then detach it and "
            "move it to the scout_archive schema (still immutable; drop it by hand once the "
            "file is safe). With --archive-url the file is <url>/<partition>.parquet on any "
            "fsspec filesystem (file://, s3:// with s3fs), verified by reading it back (row "
            "count and checksum); with --archive-dir (or --format csv) <dir>/<partition>"
            ".csv.gz, CSV with a header, row count verified. A failure leaves the partition "
            "attached; re-running is safe and a no-op when nothing is due. Runs as the "
            "database owner, not the bronze role."
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
        "--archive-url",
        default=None,
        metavar="URL",
        help="folder URL for Parquet files (file:///…, s3://bucket/prefix …)",
    )
    retention.add_argument(
        "--format",
        choices=(PARQUET, CSV),
        default=None,
        help="archive format (default: parquet with --archive-url, csv otherwise)",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="list what would be archived, change nothing"
    )
    retention.set_defaults(func=_retention)
    restore = commands.add_parser(
        "restore",
        help="put an archived month back into bronze (then `scout replay` covers it)",
        description=(
            "Re-attach the month's detached table from scout_archive when it is still there "
            "(or copy its rows into the month's partition if one exists again); otherwise "
            "load the month's Parquet files from --archive-url, verified by checksum. "
            "Idempotent. Runs as the database owner."
        ),
    )
    restore.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    restore.add_argument("--archive-url", default=None, metavar="URL", help="Parquet folder URL")
    restore.set_defaults(func=_restore)


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError as exc:
        raise argparse.ArgumentTypeError("use YYYY-MM") from exc


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    cutoff = cutoff_for(args.older_than, datetime.now(UTC))
    file_format = args.format or (PARQUET if args.archive_url else CSV)
    where: Path | str
    if file_format == PARQUET:
        where = args.archive_url or (settings.state_dir / "archive" / "bronze").resolve().as_uri()
    else:
        where = args.archive_dir or settings.state_dir / "archive" / "bronze"
    quiet = settings.log_format == "json"

    async def run() -> int:
        conn = await connect(settings, attempts=5, application_name="scout-bronze-retention")
        try:
            result = await archive_expired(conn, cutoff, where, dry_run=args.dry_run,
                                           file_format=file_format, quiet=quiet)  # fmt: skip
        finally:
            await conn.close()
        verb = "would archive" if args.dry_run else "archived"
        print(f"{verb} {describe(result)}")
        return 0

    return asyncio.run(run())


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        conn = await connect(settings, attempts=5, application_name="scout-bronze-restore")
        try:
            restored = await restore_month(conn, args.month, args.archive_url,
                                           quiet=settings.log_format == "json")  # fmt: skip
        finally:
            await conn.close()
        rows = sum(r.rows for r in restored)
        print(f"restored {args.month:%Y-%m}: {len(restored)} source(s), {rows} rows")
        return 0

    return asyncio.run(run())
