"""Thin I/O: publish simulator records to Kafka at a target rate and report progress.

Sends are not awaited one by one: each ``producer.send`` only appends to the producer's
batch (linger, lz4), and the delivery futures are gathered per chunk, so the broker sees
large compressed batches. The live phase is paced by a token schedule (``rate`` records per
second since the phase began); when the machine cannot keep up, the run stops at its
duration and the manifest reports the rate actually achieved.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from services.simulator.manifest import Manifest
from services.simulator.records import SimRecord

CHUNK = 2000  # records generated and handed to the producer per step
MAX_IN_FLIGHT = 8  # chunks whose delivery is not yet confirmed


@dataclass
class LiveResult:
    sent: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Publisher:
    """Sends :class:`SimRecord` s with one producer and counts them in a :class:`Manifest`."""

    def __init__(self, producer: Any, topics: dict[str, str], manifest: Manifest) -> None:
        self._producer = producer
        self._topics = topics
        self.manifest = manifest
        self._in_flight: list[asyncio.Future[Any]] = []

    async def send(self, records: Sequence[SimRecord]) -> None:
        """Hand ``records`` to the producer; wait only when too many chunks are unconfirmed."""
        send = self._producer.send
        futures = []
        for record in records:
            topic = self._topics[record.topic]
            futures.append(await send(topic, record.value, key=record.key))
            self.manifest.add(record, topic)
        if futures:
            self._in_flight.append(asyncio.ensure_future(_all(futures)))
        while len(self._in_flight) > MAX_IN_FLIGHT:
            await self._in_flight.pop(0)

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
