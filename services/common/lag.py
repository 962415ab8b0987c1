"""Consumer lag per group/topic/partition: log-end offset minus committed offset; and, when a
service starts, the records Kafka deleted before its group read them.

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

from services.common.kafka import app_id, client_security, topics_for
from services.common.metrics import CONSUMER_DELETED_UNREAD, CONSUMER_LAG
from services.common.settings import Settings

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

    @classmethod
    def for_service(cls, settings: Settings, service: str) -> LagMonitor:
        """The monitor of ``service``'s consumer group, on the topics it consumes."""
        topics = topics_for(settings).consumed_by(service)
        group, security = app_id(settings, service), client_security(settings)
        return cls(settings.kafka_bootstrap, group, topics, security)

    async def _partitions_of(self, admin: AIOKafkaAdminClient) -> list[TopicPartition]:
        if not self._partitions:
            # The consumer is not subscribed, so its metadata knows no partitions: ask.
            described = await admin.describe_topics(list(self.topics))
            self._partitions = [
                TopicPartition(d["topic"], p["partition"])
                for d in described
                if d["error_code"] == 0
                for p in d["partitions"]
            ]
        return self._partitions

    async def measure(self) -> dict[TopicPartition, int]:
        try:
            admin, consumer = await self._clients()
            committed = await admin.list_consumer_group_offsets(self.group)
            partitions = await self._partitions_of(admin)
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

    async def deleted_unread(self) -> dict[TopicPartition, int]:
        """Per partition consumed, the records between the group's committed offset and the
        log's start: retention deleted them before the group read them (the service was
        stopped, or behind, for longer than the topic keeps records). A consumer resuming
        there is moved to the log's start, past them, without a word; a service's start is
        the moment to say so (:func:`report_deleted_unread`)."""
        if not self.topics:
            return {}
        admin, consumer = await self._clients()
        offsets = await admin.list_consumer_group_offsets(self.group)
        read = {tp.topic for tp, m in offsets.items() if m.offset >= 0} & set(self.topics)
        # On a topic the group reads, a partition without a committed offset was read from 0
        # (the first record it got was there when it joined); a topic it has no offset on at
        # all is a new group's, and nothing says what it should have read.
        committed = {tp: 0 for tp in await self._partitions_of(admin) if tp.topic in read}
        committed |= {tp: m.offset for tp, m in offsets.items()
                      if tp.topic in read and m.offset >= 0}  # fmt: skip
        starts = await consumer.beginning_offsets(list(committed)) if committed else {}
        return {tp: n - committed[tp] for tp, n in starts.items() if n > committed[tp]}

    async def close(self) -> None:
        if self._admin is not None and self._consumer is not None:
            await self._consumer.stop()
            await self._admin.close()
            self._admin = self._consumer = None


# What to do about records a service never read, in its log line.
RECOVERY = {
    "bronze": "their producers must send them again",
    "silver": "their records are in bronze without silver lineage; run `scout replay --from "
    "<the day silver stopped>`",
}


async def report_deleted_unread(settings: Settings, service: str) -> int:
    """Log and export (``scout_consumer_deleted_unread``, alert ScoutRecordsDeletedUnread)
    what :meth:`LagMonitor.deleted_unread` finds; returns the records in all. Kafka failing
    to answer delays nothing: the service starts, and says it could not check."""
    monitor = LagMonitor.for_service(settings, service)
    try:
        gaps = await monitor.deleted_unread()
    except KafkaError as exc:
        log.warning("%s: could not check for records deleted before they were read: %r",
                    service, exc)  # fmt: skip
        return 0
    finally:
        await monitor.close()
    group = monitor.group
    for tp, n in sorted(gaps.items()):
        CONSUMER_DELETED_UNREAD.labels(group, tp.topic, str(tp.partition)).set(n)
        log.error("%s: Kafka deleted %d record(s) of %s[%d] before group %s read them "
                  "(retention); they never reach %s: %s", service, n, tp.topic, tp.partition,
                  group, service, RECOVERY.get(service, "see the runbook"))  # fmt: skip
    return sum(gaps.values())
