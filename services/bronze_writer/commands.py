"""``scout bronze …``: operator commands of the bronze layer (``retention``, ``restore``,
``erase-customer``).

Both run as the owner's login (SCOUT_DATABASE_URL) without switching to the bronze writer's
role: detaching partitions and erasing need the tables' owner, and the writer may only INSERT.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from services.bronze_writer.erasure import erase_customer
from services.bronze_writer.restore import restore_month
from services.bronze_writer.retention import CSV, PARQUET, archive_expired, cutoff_for, describe
from services.common.db import connect
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bronze",
        help="bronze layer operations (retention, restore, erase-customer)",
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
        default="2y",
        metavar="PERIOD",
        help="retention period: 24mo (months), 2y (years) or 730d (days); default 2y, the "
        "retention of personal data in bronze",
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
    erase = commands.add_parser(
        "erase-customer",
        help="erase one customer's raw records (data-subject request)",
        description=(
            "Delete every raw bronze record of one customer id (live and archived partitions) "
            "and the error-log payloads quoting it, in one transaction, through the owner-only "
            "scout.erase_customer_raw(); bronze stays append-only for everything else. The "
            "request is recorded in scout.pii_erasure_log (digest of the id, reason, who, "
            "counts). Archive files already exported by retention are outside the database: "
            "re-export or delete them by hand."
        ),
    )
    erase.add_argument("customer_id", help="the customer id as the source systems send it")
    erase.add_argument("--reason", required=True, help="request or ticket id (recorded)")
    erase.set_defaults(func=_erase)


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


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        conn = await connect(settings, attempts=5, application_name="scout-bronze-erasure")
        try:
            result = await erase_customer(conn, args.customer_id, args.reason)
        finally:
            await conn.close()
        print(result.describe())
        return 0

    return asyncio.run(run())
