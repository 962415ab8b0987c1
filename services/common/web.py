"""HTTP endpoints every service serves on its Faust web server.

``/metrics`` (Prometheus), ``/health`` (the process is alive) and ``/ready`` (connected to
Kafka and PostgreSQL, with partitions assigned).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def install_views(app: Any, readiness: ReadinessCheck) -> None:
    """Register the three endpoints on ``app`` (a ``faust.App``)."""

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        checks = await readiness()
        ok = all(checks.values())
        return web.json({"ready": ok, "checks": checks}, status=200 if ok else 503)


def assigned_partitions(app: Any) -> int:
    """Partitions currently assigned to this worker (0 before the first rebalance)."""
    try:
        return len(app.consumer.assignment())
    except Exception:  # consumer not started yet
        return 0
