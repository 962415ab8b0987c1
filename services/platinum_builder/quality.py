"""The data quality dashboard (view ``scout.data_quality_dashboard``) as rows and gauges.

The view's definitions live in ``schemas/sql/0031_quality_dashboard.sql``;
the platinum worker calls :func:`read` on a timer so Prometheus shows the same numbers that
``scout quality`` prints.
"""

from __future__ import annotations

from typing import Any

from services.common.metrics import QUALITY_GATE, QUALITY_SCORE

QUERY = "SELECT * FROM scout.data_quality_dashboard"


async def read(conn: Any) -> list[dict[str, Any]]:
    """The dashboard's rows (``conn``: an asyncpg connection or pool); also sets the
    ``scout_quality_score`` and ``scout_quality_gate_met`` gauges of this process."""
    rows = [dict(r) for r in await conn.fetch(QUERY)]
    for row in rows:
        if row["quality_score"] is not None:
            QUALITY_SCORE.labels(row["layer"]).set(float(row["quality_score"]) / 100)
        QUALITY_GATE.labels(row["layer"]).set(1 if row["gate_met"] else 0)
    return rows
