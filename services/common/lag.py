"""Consumer lag per group/topic/partition: log-end offset minus committed offset.

Each service measures its own consumer group from outside the consumer (admin API), so the
number is what Kafka has committed, i.e. what a restart would resume from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.common.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)


class LagMonitor:
    """Long-lived admin and metadata clients; call :meth:`measure` periodically."""

    def __init__(self, bootstrap: str, group: str, topics: Iterable[str]) -> None:
        self.group = group
        self.topics = tuple(topics)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._started = False

    async def measure(self) -> dict[TopicPartition, int]:
        try:
            if not self._started:
                await self._admin.start()
                await self._consumer.start()
                self._started = True
            committed = await self._admin.list_consumer_group_offsets(self.group)
            partitions = [
                TopicPartition(topic, p)
                for topic in self.topics
                for p in (self._consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                await self._consumer.topics()  # refresh metadata, try again next tick
                return {}
            ends = await self._consumer.end_offsets(partitions)
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
        if self._started:
            await self._consumer.stop()
            await self._admin.close()
            self._started = False
