"""Batches straight from aiokafka, inside a Faust worker, with commit-after-write.

Faust's stream pays a per-record cost (events, acks, sensors) that caps an agent at ~12k
records/s on this machine (ARCHITECTURE "Performance"). An edge that only needs whole
batches uses :class:`DirectBatchConsumer` instead: one aiokafka consumer in the app's
consumer group (so the lag monitor and KEDA see the same group), ``getmany`` → the async
handler gets the batch's records → only after the handler returns, the batch's own offsets
(last offset + 1 per partition) are committed. A handler error is retried with backoff
(``run_batch``: the handler isolates records it cannot store, so what remains is an outage
or a defect); a batch that cannot finish at shutdown exits the process without committing
(``hard_exit``): the batch is redelivered and the idempotent writes absorb the repeat. On a
rebalance the revoke callback waits (bounded) for the batch in flight to finish and commit,
so handing partitions over redelivers nothing; if the wait runs out, the late commit fails,
is logged and ignored, and the new owner's redelivery is again absorbed. It runs as a
``mode`` service started after the app (its producer and web server) and stopped before it,
so ``/metrics``, ``/ready``, the lag timer and SIGTERM handling are the worker's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from services.common.batching import SHUTDOWN_GRACE_S, run_batch
from services.common.kafka import client_security
from services.common.lifecycle import backoff_delays, hard_exit, is_transient
from services.common.metrics import BATCH_RETRIES, BATCH_SIZE
from services.common.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["BatchRecordHandler", "DirectBatchConsumer", "KafkaRecord"]

# Fetch sizes: large enough that one getmany can fill a batch of thousands of records.
MAX_PARTITION_FETCH_BYTES = 8 * 1024 * 1024
FETCH_MAX_BYTES = 64 * 1024 * 1024
# How old the consumer's cluster metadata may get. aiokafka's default (5 min) means a topic
# that is deleted and re-created is not consumed again for up to 5 minutes: the subscription
# drops it, and nothing refreshes the metadata before the maximum age. A small request every
# 5 s is the price of picking it up at once (its committed offsets went with the old topic,
# so ``auto_offset_reset`` starts it at 0: nothing skipped).
METADATA_MAX_AGE_MS = 5_000
# How the broker batches a fetch: it answers once FETCH_MIN_BYTES are there or after
# FETCH_MAX_WAIT_MS. aiokafka's defaults (1 byte, 500 ms) answer at once with whatever
# arrived, so at a paced rate the consumer fetched, and the worker wrote a transaction and
# handed off a message, for every few dozen records: three times the CPU per record of a
# catch-up (bench/results/chain.md). A backlog fills the minimum at once; a paced stream
# waits at most FETCH_MAX_WAIT_MS more.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 100


class KafkaRecord(Protocol):
    """What a handler sees of a record (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds since the epoch; -1 when the record has none
    @property
    def value(self) -> bytes | None: ...


BatchRecordHandler = Callable[[Sequence[KafkaRecord]], Awaitable[None]]


class DirectBatchConsumer(Service):
    """Consume ``topics`` in batches for ``handler``; commit each batch after it returns."""

    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        topics: Iterable[str],
        handler: BatchRecordHandler,
        layer: str,
        max_records: int,
        wait_s: float,
        session_timeout_s: float = 10.0,
        heartbeat_interval_s: float = 3.0,
        client_id: str | None = None,
        security: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.group_id = group_id
        self.topics = tuple(topics)
        self.layer = layer
        self._handler = handler
        self._max_records = max_records
        self._wait_ms = max(1, int(wait_s * 1000))
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id or group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
            "fetch_min_bytes": FETCH_MIN_BYTES,
            "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
            "session_timeout_ms": int(session_timeout_s * 1000),
            "heartbeat_interval_ms": int(heartbeat_interval_s * 1000),
            "max_partition_fetch_bytes": MAX_PARTITION_FETCH_BYTES,
            "fetch_max_bytes": FETCH_MAX_BYTES,
            **(security or {}),  # TLS / SASL (services.common.kafka.client_security)
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._loop_task: asyncio.Future[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None

    @classmethod
    def for_app(
        cls, app: Any, settings: Settings, topics: Iterable[str], handler: BatchRecordHandler,
        *, layer: str,
    ) -> DirectBatchConsumer:  # fmt: skip
        """A consumer in ``app``'s group (``app.conf.id``), started and stopped with the app."""
        consumer = cls(
            bootstrap=settings.kafka_bootstrap,
            security=client_security(settings),
            group_id=app.conf.id,
            topics=topics,
            handler=handler,
            layer=layer,
            max_records=settings.batch_max,
            wait_s=settings.batch_wait_s,
            session_timeout_s=float(app.conf.broker_session_timeout),
            heartbeat_interval_s=float(app.conf.broker_heartbeat_interval),
        )

        async def start_with_app() -> None:
            # Runs once the app has started (producer and web server up). As a runtime
            # dependency it is the app's last child, so the app stops it first, before the
            # producer its handler needs.
            await app.add_runtime_dependency(consumer)

        app.task(start_with_app)
        return consumer

    # Readiness -----------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        """Partitions currently assigned to this consumer (empty before the first join)."""
        if self._consumer is None:
            return set()
        return set(self._consumer.assignment())

    def assigned_count(self) -> int:
        return len(self.assignment())

    # Lifecycle -----------------------------------------------------------------------

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._config)
        self._consumer.subscribe(self.topics, listener=_FinishBatchOnRevoke(self))
        await self._consumer.start()
        self._loop_task = asyncio.ensure_future(self._run())
        log.info("%s: consuming %s in batches as group %s", self.layer, self.topics, self.group_id)

    async def on_stop(self) -> None:
        # should_stop is already true: the loop takes no new batch. Wait for the one in
        # flight to commit; if it cannot, leave without committing anything.
        if self._loop_task is not None:
            done, _ = await asyncio.wait({self._loop_task}, timeout=SHUTDOWN_GRACE_S + 5)
            if not done:
                hard_exit(f"{self.layer} batch unfinished at shutdown")
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: the others take over at once
            self._consumer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        for kind in ("transient", "error"):
            BATCH_RETRIES.labels(self.layer, kind)  # the series exist at 0 from the start
        delays = backoff_delays(base=0.5, cap=30.0)
        try:
            while not self.should_stop:
                try:
                    fetched = await consumer.getmany(
                        timeout_ms=self._wait_ms, max_records=self._max_records
                    )
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    delay = next(delays)
                    log.warning("%s: fetch failed (%s); retrying in %.1fs", self.layer, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                delays = backoff_delays(base=0.5, cap=30.0)
                if not fetched or self.should_stop:
                    continue  # at shutdown: fetched, not handled, not committed: redelivered
                records: list[KafkaRecord] = []
                offsets: dict[TopicPartition, int] = {}
                for tp, batch in fetched.items():
                    if batch:
                        records.extend(batch)
                        offsets[tp] = batch[-1].offset + 1
                BATCH_SIZE.labels(self.layer).observe(len(records))
                # Set before the first await, so a revoke always sees the batch in flight.
                self._in_flight = asyncio.ensure_future(
                    run_batch(partial(self._handle_and_commit, records, offsets),
                              layer=self.layer, what=f"{self.layer} batch")
                )  # fmt: skip
                try:
                    await asyncio.shield(self._in_flight)
                except asyncio.CancelledError:
                    # Stopping mid-batch: let it commit (bounded), or leave without commit.
                    if not await self.finish_in_flight(SHUTDOWN_GRACE_S):
                        hard_exit(f"{self.layer} batch unfinished at shutdown")
                    raise
                finally:
                    self._in_flight = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken consumer: restart the process, commit nothing
            log.exception("%s consumer failed", self.layer)
            hard_exit(f"{self.layer} consumer failed: {exc!r}")

    async def _handle_and_commit(
        self, records: Sequence[KafkaRecord], offsets: dict[TopicPartition, int]
    ) -> None:
        await self._handler(records)
        assert self._consumer is not None
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while the batch was written and the partitions may
            # belong to another worker now: it gets the batch again, and the idempotent
            # writes make that harmless. Not an error of this batch.
            log.warning(
                "%s: batch written but its offsets not committed (%s); it will be "
                "redelivered after the rebalance and de-duplicated",
                self.layer,
                exc,
            )

    async def finish_in_flight(self, timeout: float) -> bool:
        """Wait until the batch in flight (if any) has committed; False if it did not."""
        task = self._in_flight
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)


class _FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions are given up, let the batch in flight commit (bounded)."""

    def __init__(self, owner: DirectBatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return
        if not await self.owner.finish_in_flight(SHUTDOWN_GRACE_S):
            log.warning(
                "%s: batch still in flight after %.0fs at rebalance; giving up %d partitions "
                "(its commit will fail and the batch be redelivered)",
                self.owner.layer,
                SHUTDOWN_GRACE_S,
                len(revoked),
            )
        log.info("%s: partitions revoked: %s", self.owner.layer, sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s: partitions assigned: %s", self.owner.layer, sorted(map(str, assigned)))
