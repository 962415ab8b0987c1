"""What every Faust service shares: its database pool, readiness, lag and pool metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import asyncpg

from services.common.batching import batch_failing
from services.common.db import create_pool
from services.common.errors import SessionSettingsMissing
from services.common.lag import LagMonitor
from services.common.lifecycle import NEW_SESSION_ERRORS
from services.common.metrics import DB_POOL_CONNECTIONS, DB_RETRIES, DB_UP
from services.common.settings import Settings
from services.common.web import assigned_partitions, install_views

LAG_INTERVAL_S = 5.0


class ServiceContext:
    """Per-process state of one service: lazily created pool, health and metrics hooks."""

    def __init__(self, settings: Settings, service: str, app: Any):
        self.settings = settings
        self.service = service
        self.app = app
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._new_sessions = False  # the pool's sessions are to be replaced (db_failed)
        self._assigned: Callable[[], int] = partial(assigned_partitions, app)
        self._lag = LagMonitor.for_service(settings, service)  # the topics it consumes
        install_views(app, self.readiness)
        DB_RETRIES.labels(service)  # export the series at 0 from the start (for rate() and alerts)
        app.timer(interval=LAG_INTERVAL_S, name=f"{service}-lag")(self._measure)
        app.on_before_shutdown.connect(self._close)

    async def pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await create_pool(self.settings, self.service)
            elif self._new_sessions:  # each session is replaced as it is next acquired
                await self._pool.expire_connections()
            self._new_sessions = False
            return self._pool

    def count_partitions_with(self, assigned: Callable[[], int]) -> None:
        """Readiness counts the partitions of this consumer instead of the Faust app's
        (for a service that consumes outside Faust's stream, see ``batch_consumer``)."""
        self._assigned = assigned

    def db_ok(self) -> None:
        DB_UP.labels(self.service).set(1)

    def db_failed(self, exc: BaseException) -> None:
        """Called on each retried database error: the outage shows in metrics and logs."""
        DB_UP.labels(self.service).set(0)
        DB_RETRIES.labels(self.service).inc()
        if isinstance(exc, NEW_SESSION_ERRORS):
            self._new_sessions = True

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "kafka_partitions_assigned": self._assigned() > 0,
            "batches_succeed": not batch_failing(self.service),
        }
        try:
            pool = await asyncio.wait_for(self.pool(), timeout=2)
            checks["postgres"] = await asyncio.wait_for(pool.fetchval("SELECT true"), timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError, SessionSettingsMissing):
            checks["postgres"] = False
        return checks

    async def _close(self, app: Any, **_: Any) -> None:
        # Only the lag monitor: this runs before the agents stop, and a batch in flight must
        # still be able to commit through the pool (its connections end with the process).
        await self._lag.close()

    async def _measure(self) -> None:
        await self._lag.measure()
        if self._pool is not None:
            size, idle = self._pool.get_size(), self._pool.get_idle_size()
            DB_POOL_CONNECTIONS.labels(self.service, "in_use").set(size - idle)
            DB_POOL_CONNECTIONS.labels(self.service, "idle").set(idle)
