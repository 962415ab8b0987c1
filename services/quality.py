"""``scout quality [--json]``: print the data quality dashboard (``scout.data_quality_dashboard``).

One row per layer: records and valid records in the layer's window, quality score, freshness,
and whether the seed's score gate and freshness SLA are met. The definitions live with the
view, in ``schemas/sql/0031_quality_dashboard.sql``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from decimal import Decimal
from typing import Any

from services.common.db import connect
from services.common.settings import Settings
from services.platinum_builder.quality import read

HEADER = ("layer", "records", "valid", "score %", "gate %", "fresh s", "SLA s", "score", "SLA",
          "gate")  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quality", help="print the data quality dashboard",
        description="Quality score and freshness of each layer against its gate and SLA.",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_quality)


async def fetch(settings: Settings) -> list[dict[str, Any]]:
    # As the platinum service (its own login when configured), which may read the view.
    conn = await connect(settings, role=settings.db_role("platinum"), attempts=3,
                         application_name="scout-quality",
                         database_url=settings.database_url_for("platinum"))  # fmt: skip
    try:
        return await read(conn)
    finally:
        await conn.close()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "MISSED"
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(rows: list[dict[str, Any]]) -> str:
    keys = ("layer", "total_records", "valid_records", "quality_score", "score_gate",
            "freshness_seconds", "sla_seconds", "score_met", "sla_met", "gate_met")  # fmt: skip
    table = [HEADER, *[tuple(_cell(r[k]) for k in keys) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths, strict=True)))
             for line in table]  # fmt: skip
    return "\n".join(lines)


def to_json(rows: list[dict[str, Any]]) -> str:
    def default(value: Any) -> Any:
        return float(value) if isinstance(value, Decimal) else str(value)

    return json.dumps(rows, default=default, indent=2)


def _quality(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(fetch(settings))
    print(to_json(rows) if args.json else render(rows))
    return 0
