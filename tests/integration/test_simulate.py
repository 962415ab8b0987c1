"""`scout simulate` against the real broker: what lands on the topics is what the manifest
says, record for record."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from services.common.kafka import topics_for
from services.common.settings import Settings
from services.simulator.generator import SimConfig, TrafficGenerator
from tests.unit.test_simulator import Classifier

pytestmark = pytest.mark.integration


async def consume_all(settings: Settings, expected: dict[str, int]) -> dict[str, list[bytes]]:
    """Every record of the given topics; waits until the expected counts are there, then
    makes sure nothing more arrives."""
    consumer = AIOKafkaConsumer(
        *expected,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"{settings.topic_prefix}simulate-test",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    seen: dict[str, list[bytes]] = {topic: [] for topic in expected}
    try:
        deadline = asyncio.get_running_loop().time() + 60
        quiet_polls = 0
        while quiet_polls < 2:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, messages in batch.items():
                seen[tp.topic].extend(m.value for m in messages)
            done = all(len(seen[t]) >= n for t, n in expected.items())
            quiet_polls = quiet_polls + 1 if done and not batch else 0
            assert asyncio.get_running_loop().time() < deadline, {
                t: len(v) for t, v in seen.items()
            }
    finally:
        await consumer.stop()
    return seen


async def test_simulate_cli_publishes_exactly_the_manifest(
    settings: Settings, tmp_path: Path
) -> None:
    manifest_path = tmp_path / "manifest.json"
    start = "2026-11-25T10:00:00+08:00"
    env = {
        **os.environ,
        "SCOUT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCOUT_TOPIC_PREFIX": settings.topic_prefix,
        "SCOUT_STATE_DIR": str(tmp_path / "state"),
    }
    cmd = [sys.executable, "-m", "services.cli", "simulate", "--rate", "2000", "--duration",
           "5", "--faults", "0.05", "--seed", "7", "--start", start,
           "--manifest", str(manifest_path)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"10000 live" in out, out
    assert b"simulate: sent" in err, "a progress line per second on stderr"
    manifest = json.loads(manifest_path.read_text())

    topics = topics_for(settings)
    assert set(manifest["topics"]) == {
        topics.pos,
        topics.api,
        topics.iot,
        topics.master_stores,
        topics.master_products,
    }
    assert manifest["live"]["sent"] == 10_000, manifest["live"]
    assert sum(manifest["faults"].values()) > 0.03 * 10_000

    seen = await consume_all(settings, manifest["topics"])
    assert {t: len(v) for t, v in seen.items()} == manifest["topics"]

    # Every record on the topics, judged by the real parser, ends where the manifest says.
    config = SimConfig(seed=7, start=datetime.fromisoformat(start), rate=2000,
                       faults=0.05, stores=50)  # fmt: skip
    generator = TrafficGenerator(config)
    now = config.start + timedelta(seconds=5)
    classify = Classifier(generator, now, settings.max_record_bytes)
    destinations: Counter[str] = Counter()
    # Per-partition order is what a consumer sees; replay in the generator's order instead
    # (same bytes) so "duplicate" / "correction" are judged against the earlier event.
    expected_stream = [*generator.masters(), *generator.live(10_000), *generator.late_masters()]
    published = Counter(v for values in seen.values() for v in values)
    assert published == Counter(x.value for x in expected_stream), "same bytes as the seed"
    for record in expected_stream:
        destinations.update(classify.outcomes(record.topic, record.value))
    assert dict(destinations) == manifest["destinations"]
