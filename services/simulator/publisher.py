"""Thin I/O: publish simulator records to Kafka at a target rate and report progress.

Sends are not awaited one by one: records are appended to the producer's batches (lz4) and
the delivery futures are gathered per chunk, so the broker sees large compressed batches.
The live phase is paced by a schedule (``rate`` records per second since the phase
began); when the machine cannot keep up, the run stops at its
duration and the manifest reports the rate actually achieved.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka.partitioner import DefaultPartitioner

from services.simulator.formats import Framer
from services.simulator.manifest import Manifest
from services.simulator.records import SimRecord

CHUNK = 2000  # records generated and handed to the producer per step
MAX_IN_FLIGHT = 32  # chunks whose delivery is not yet confirmed
LARGE_RECORD = 256 * 1024  # sent on its own, not appended to a shared batch


@dataclass
class LiveResult:
    sent: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Publisher:
    """Sends :class:`SimRecord` s with one producer and counts them in a :class:`Manifest`."""

    def __init__(self, producer: Any, topics: dict[str, str], manifest: Manifest,
                 framer: Framer | None = None) -> None:  # fmt: skip
        self._producer = producer
        self._framer = framer  # re-encodes records for a schema registry (--format)
        self._topics = topics
        self.manifest = manifest
        self._in_flight: list[asyncio.Future[Any]] = []
        self._partitions: dict[str, list[int]] = {}
        # murmur2 is pure Python in aiokafka; store and device keys repeat, so remember them.
        self._partition_of: dict[tuple[str, bytes], int] = {}
        # The producer's own default: murmur2 of the key, like the Java client.
        self._partitioner = DefaultPartitioner()

    async def send(self, records: Sequence[SimRecord]) -> None:
        """Hand ``records`` to the producer; wait only when too many chunks are unconfirmed.

        Records are appended to one open batch per topic-partition (the partition the
        default partitioner gives the key, as ``producer.send`` would), and full batches are
        submitted whole: one Python call per batch instead of one per record. Per-partition
        order is the order of ``records``.
        """
        if self._framer is not None:
            records = await self._framer.apply(records)
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        open_batches: dict[tuple[str, int], Any] = {}
        for record in records:
            topic = self._topics[record.topic]
            self.manifest.add(record, topic)
            partition = await self._partition(topic, record.key)
            slot = (topic, partition)
            if len(record.value) > LARGE_RECORD:
                # A record larger than a batch: close this partition's batch first (order).
                if slot in open_batches:
                    futures.append(await self._submit(open_batches.pop(slot), slot))
                futures.append(
                    await producer.send(topic, record.value, key=record.key, partition=partition)
                )
                continue
            batch = open_batches.get(slot)
            if batch is None:
                batch = open_batches[slot] = producer.create_batch()
            if batch.append(timestamp=None, key=record.key, value=record.value) is None:
                futures.append(await self._submit(batch, slot))
                batch = open_batches[slot] = producer.create_batch()
                batch.append(timestamp=None, key=record.key, value=record.value)
        for slot, batch in open_batches.items():
            futures.append(await self._submit(batch, slot))
        if futures:
            self._in_flight.append(asyncio.ensure_future(_all(futures)))
        while len(self._in_flight) > MAX_IN_FLIGHT:
            await self._in_flight.pop(0)

    async def _submit(self, batch: Any, slot: tuple[str, int]) -> asyncio.Future[Any]:
        batch.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, slot[0], partition=slot[1]
        )
        return future

    async def _partition(self, topic: str, key: bytes) -> int:
        cached = self._partition_of.get((topic, key))
        if cached is not None:
            return cached
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = partitions
        result: int = self._partitioner(key, partitions, partitions)
        if len(self._partition_of) > 100_000:  # batch ids are unique: bound the cache
            self._partition_of.clear()
        self._partition_of[topic, key] = result
        return result

    async def drain(self) -> None:
        """Wait until every record sent so far is acknowledged by the broker."""
        await self._producer.flush()
        while self._in_flight:
            await self._in_flight.pop(0)

    async def send_all(self, records: Iterable[SimRecord]) -> None:
        """Send as fast as the producer takes them (master data, backfill)."""
        chunk: list[SimRecord] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= CHUNK:
                await self.send(chunk)
                chunk = []
        await self.send(chunk)

    async def live(
        self,
        generate: Callable[[int], list[SimRecord]],
        *,
        rate: float,
        duration_s: float,
        progress: TextIO | None = sys.stderr,
    ) -> LiveResult:
        """Publish ``rate * duration_s`` records paced at ``rate`` per second, or fewer if
        the duration runs out first."""
        total = int(rate * duration_s)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sent = 0
        next_report = 1.0
        start_faults = sum(self.manifest.faults.values())
        while sent < total:
            elapsed = loop.time() - t0
            if elapsed >= duration_s:
                break
            due = min(total, int(rate * (elapsed + 0.05)) + 1)
            if due > sent:
                n = min(due - sent, CHUNK)
                await self.send(generate(n))
                sent += n
            else:
                await asyncio.sleep(max(0.001, (sent + 1) / rate - elapsed - 0.05))
            if progress is not None and loop.time() - t0 >= next_report:
                faults = sum(self.manifest.faults.values()) - start_faults
                now = loop.time() - t0
                print(f"simulate: sent {sent} in {now:.1f}s, rate {sent / now:,.0f}/s, "
                      f"faults {faults}", file=progress, flush=True)  # fmt: skip
                next_report += 1.0
        await self.drain()
        return LiveResult(sent, loop.time() - t0)


async def _all(futures: list[asyncio.Future[Any]]) -> None:
    await asyncio.gather(*futures)
