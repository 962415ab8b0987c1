"""Consumer lag per group/topic/partition: log-end offset minus committed offset.

Each service measures its own consumer group from outside the consumer (admin API), so the
number is what Kafka has committed, i.e. what a restart would resume from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.common.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)


class LagMonitor:
    """Long-lived admin and metadata clients; call :meth:`measure` periodically."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Iterable[str],
        security: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security or {}
        self.group = group
        self.topics = tuple(topics)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        # Created on first use: aiokafka clients must be made inside the running loop.
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.security
            )
            await admin.start()
            await consumer.start()
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def measure(self) -> dict[TopicPartition, int]:
        try:
            admin, consumer = await self._clients()
            committed = await admin.list_consumer_group_offsets(self.group)
            if not self._partitions:
                # The consumer is not subscribed, so its metadata knows no partitions: ask.
                described = await admin.describe_topics(list(self.topics))
                self._partitions = [
                    TopicPartition(d["topic"], p["partition"])
                    for d in described
                    if d["error_code"] == 0
                    for p in d["partitions"]
                ]
            partitions = self._partitions
            if not partitions:
                return {}
            ends = await consumer.end_offsets(partitions)
        except KafkaError as exc:
            log.warning("lag measurement failed: %r", exc)
            return {}
        lags = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lags[tp] = max(0, end - done)
            CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(lags[tp])
        return lags

    async def close(self) -> None:
        if self._admin is not None and self._consumer is not None:
            await self._consumer.stop()
            await self._admin.close()
            self._admin = self._consumer = None
