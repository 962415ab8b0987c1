"""Silver with N workers while the bronze-landed partitions move under load.

Three versions of each transaction are published in a shuffled order (v3 often before v1),
keyed so that they reach bronze in different batches; bronze hands each batch to a random
partition of ``bronze-landed``, so the versions of one transaction are merged by different
silver workers, in any order, at the same time. A store and a product arrive in master data
in the middle of the traffic (their earlier records wait in quarantine, or keep an item
enriched as unknown), on whichever worker owns that master partition. While the traffic
flows a third worker joins, one worker is SIGKILLed in the middle of its batches (nothing
committed, its batches redelivered to the others) and another starts in its place.

What a user must see afterwards: every transaction exactly once, at its highest version,
with exactly that version's line items; a lineage row for every bronze record pointing at
its own transaction; the quarantine holding only the records that waited for their store,
each once and resolved; every item enriched; silver's offsets all committed; and
``scout gold verify`` equal to silver.

A broken implementation fails here: a merge where the last writer wins (not the highest
version) keeps v1 or v2 of the transactions whose v3 came first; items appended rather than
replaced double the lines of a transaction merged twice (redelivery, two workers); an offset
committed before the write loses the killed worker's batches (lineage short of bronze); a
late store or product missed by the worker that had the batch in flight leaves records
waiting although their master data exists.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.handoff import decode_landed
from services.common.kafka import topics_for
from services.common.settings import Settings
from tests.integration.test_gold import until_gold_settles
from tests.support import (
    ServiceProcess,
    gold_verified,
    group_assignment,
    publish,
    uncommitted,
    wait_for,
)

pytestmark = pytest.mark.integration

EVENTS = 1500
VERSIONS = (1, 2, 3)
RATE = 150.0  # records/s: about 31 s of traffic, long enough for three rebalances
STORES = [f"S{i:02d}" for i in range(1, 9)]
LATE_STORE = "SL1"  # its master record arrives after ~40 % of the traffic
PRODUCTS = {f"P-{i}": Decimal(f"{i * 3}.25") for i in range(1, 6)}
LATE_SKU, LATE_PRICE = "P-LATE", Decimal("9.50")  # its master record arrives after ~60 %
WHEN = "2026-11-20T10:15:00+08:00"


def _store_master(store: str) -> bytes:
    return json.dumps({"schema": "master.store/1", "store_id": store, "name": store,
                       "region": "NCR", "city": "Makati",
                       "timezone": "Asia/Manila"}).encode()  # fmt: skip


def _product_master(sku: str, price: Decimal) -> bytes:
    return json.dumps({"schema": "master.product/1", "sku": sku, "name": sku, "brand": "B",
                       "category": "C", "unit_price": str(price)}).encode()  # fmt: skip


def store_of(i: int) -> str:
    return LATE_STORE if i % 15 == 0 else STORES[i % len(STORES)]


def lines(i: int, version: int) -> list[tuple[int, str, int, Decimal]]:
    """(line_no, sku, qty, unit_price) of version ``version`` of event ``i``: the number of
    lines and the SKUs change from version to version (the highest is not the longest)."""
    skus = sorted(PRODUCTS)
    out = []
    for line in range(1, (i + version) % 3 + 2):
        sku = skus[(i + version + line) % len(skus)]
        out.append((line, sku, version + line, PRODUCTS[sku]))
    if i % 20 == 1:
        out.append((len(out) + 1, LATE_SKU, 1, LATE_PRICE))
    return out


def amount(i: int, version: int) -> Decimal:
    return sum((q * p for _, _, q, p in lines(i, version)), Decimal(0))


def _pos(i: int, version: int) -> bytes:
    return json.dumps({
        "schema": "pos.transaction/1", "event_id": f"E{i:05d}", "store_id": store_of(i),
        "occurred_at": WHEN, "total_amount": str(amount(i, version)), "version": version,
        "items": [{"sku": s, "qty": q, "unit_price": str(p)} for _, s, q, p in lines(i, version)],
    }).encode()  # fmt: skip


def traffic(settings: Settings) -> list[tuple[str, bytes, bytes]]:
    """Every version of every event, shuffled, some sent twice (a source's retry); each
    version keyed on its own so the versions of one event take different partitions; the
    late store and product in the middle."""
    topics = topics_for(settings)
    rng = random.Random(14)
    sends = [(i, v) for i in range(EVENTS) for v in VERSIONS]
    sends += rng.sample(sends, EVENTS // 10)  # duplicates, at other places in the stream
    rng.shuffle(sends)
    out = [(topics.pos, f"E{i:05d}/{v}".encode(), _pos(i, v)) for i, v in sends]
    out.insert(int(len(out) * 0.6), (topics.master_products, LATE_SKU.encode(),
                                     _product_master(LATE_SKU, LATE_PRICE)))  # fmt: skip
    out.insert(int(len(out) * 0.4), (topics.master_stores, LATE_STORE.encode(),
                                     _store_master(LATE_STORE)))  # fmt: skip
    return out


async def landed_owners(settings: Settings) -> list[set[int]]:
    """The bronze-landed partitions each member of silver's group owns (empty: rebalancing)."""
    landed = topics_for(settings).bronze_landed
    return [{tp.partition for tp in owned if tp.topic == landed}
            for owned in await group_assignment(settings, "silver")]  # fmt: skip


async def landed_lag(settings: Settings) -> int:
    """Records of bronze-landed that silver's group has not committed."""
    landed = topics_for(settings).bronze_landed
    parts = [TopicPartition(landed, p) for p in range(settings.topic_partitions)]
    return await uncommitted(settings, "silver", parts)


async def landed_partition_of(settings: Settings) -> dict[str, int]:
    """bronze id → the bronze-landed partition that carried it to silver."""
    landed = topics_for(settings).bronze_landed
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        parts = [TopicPartition(landed, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        out: dict[str, int] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                for message in messages:
                    for record in decode_landed(message.value):
                        out[record.bronze_id] = tp.partition
        return out
    finally:
        await consumer.stop()


def _consumed_landed(worker: ServiceProcess, settings: Settings) -> float:
    topic = topics_for(settings).bronze_landed
    return worker.metric("scout_records_consumed_total", layer="silver", topic=topic)


async def until_settled(db: asyncpg.Connection, sent: int, timeout: float) -> None:
    seen: dict[str, Any] = {}

    async def settled() -> bool:
        row = await db.fetchrow(
            "SELECT (SELECT count(*) FROM scout.bronze_transactions_raw) AS bronze, "
            "(SELECT count(*) FROM scout.silver_lineage) AS lineage, "
            "(SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NULL) AS open, "
            "(SELECT count(*) FROM scout.silver_transaction_items WHERE NOT known_sku) "
            "AS unknown_items"
        )
        seen.update(dict(row), sent=sent)
        return bool(row["bronze"] == sent == row["lineage"] and row["open"] == 0
                    and row["unknown_items"] == 0)  # fmt: skip

    await wait_for(settled, timeout=timeout, context=lambda: seen)


async def test_versions_on_different_workers_while_partitions_move(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    topics = topics_for(settings)
    bronze = ServiceProcess("bronze", settings, tmp_path)
    gold = ServiceProcess("gold", settings, tmp_path)
    silvers = [ServiceProcess("silver", settings, tmp_path) for _ in range(2)]
    late = [ServiceProcess("silver", settings, tmp_path) for _ in range(2)]  # join, replace
    try:
        for service in (bronze, gold, *silvers):
            await asyncio.to_thread(service.start, 90)
        masters = [(topics.master_stores, s.encode(), _store_master(s)) for s in STORES]
        masters += [(topics.master_products, k.encode(), _product_master(k, p))
                    for k, p in PRODUCTS.items()]  # fmt: skip
        await publish(settings, masters)
        await wait_for(lambda: db.fetchval(
            "SELECT (SELECT count(*) FROM scout.silver_master_stores) = $1 AND "
            "(SELECT count(*) FROM scout.silver_master_products) = $2",
            len(STORES), len(PRODUCTS)), timeout=60)  # fmt: skip

        async def two_share() -> bool:
            owners = await landed_owners(settings)
            return len(owners) == 2 and all(owners)

        await wait_for(two_share, timeout=60, context=silvers[0].log_tail)
        records = traffic(settings)
        sent = sum(1 for topic, _, _ in records if topic == topics.pos)
        sending = asyncio.create_task(publish(settings, records, rate=RATE))

        async def lineage_at_least(n: int) -> bool:
            return bool(await db.fetchval("SELECT count(*) >= $1 FROM scout.silver_lineage", n))

        # 1. A third worker joins under load: partitions move away from the two.
        await wait_for(lambda: lineage_at_least(sent // 6), timeout=90, context=lambda: sent)
        await asyncio.to_thread(late[0].start, 90)

        async def three_share() -> bool:
            owners = await landed_owners(settings)
            return len(owners) == 3 and all(owners)

        await wait_for(three_share, timeout=60, context=late[0].log_tail)
        # 2. One of the first two dies in the middle of its batches (SIGKILL: nothing of its
        # batch in flight is committed, Kafka hands its partitions over after the session
        # timeout and redelivers what it had not committed).
        at_join = await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
        await wait_for(lambda: lineage_at_least(at_join + sent // 10), timeout=90)
        assert _consumed_landed(silvers[0], settings) > 0
        assert not sending.done(), "the kill must come while the traffic flows"
        silvers[0].kill()
        # 3. A replacement starts while the group is still waiting for the dead member (it is
        # ready once it owns partitions: after the session timeout evicts the dead one).
        replacing = asyncio.create_task(asyncio.to_thread(late[1].start, 90))
        await asyncio.sleep(0.5)
        assert not sending.done(), "the replacement must start while the traffic flows"
        await sending
        await replacing
        survivors = [silvers[1], *late]

        async def three_share_again() -> bool:
            owners = await landed_owners(settings)
            return len(owners) == 3 and all(owners)

        await wait_for(three_share_again, timeout=60,
                       context=lambda: [w.log_tail(10) for w in survivors])  # fmt: skip
        await until_settled(db, sent, timeout=180)
        await wait_for(lambda: _no_lag(settings), timeout=60)

        # The scenario happened: versions of one event were carried on different partitions
        # of bronze-landed (so to different workers), and the work moved: at least three
        # workers merged some (the replacement may own partitions only once the traffic is
        # all consumed: the dead member is evicted after the session timeout).
        carried = await landed_partition_of(settings)
        by_event: dict[str, set[int]] = defaultdict(set)
        for r in await db.fetch("SELECT id::text AS id, raw_data->>'event_id' AS event_id "
                                "FROM scout.bronze_transactions_raw"):  # fmt: skip
            by_event[r["event_id"]].add(carried[r["id"]])
        assert len(by_event) == EVENTS
        assert sum(1 for parts in by_event.values() if len(parts) > 1) > EVENTS // 2
        # (the killed one merged some: asserted before the kill)
        assert sum(1 for w in survivors if _consumed_landed(w, settings) > 0) >= 2

        await _assert_silver_exact(db, sent)
        await until_gold_settles(db, timeout=120)
        gold_verified(settings)
    finally:
        for service in (bronze, gold, *silvers, *late):
            service.stop()


async def _no_lag(settings: Settings) -> bool:
    return await landed_lag(settings) == 0


async def _assert_silver_exact(db: asyncpg.Connection, sent: int) -> None:
    # Every transaction exactly once, at its highest version and that version's amount.
    rows = await db.fetch(
        "SELECT event_id, version, amount, store_id FROM scout.silver_transactions_cleaned"
    )
    assert len(rows) == EVENTS
    wrong = [
        (r["event_id"], r["version"], r["amount"])
        for r in rows
        if (r["version"], r["amount"], r["store_id"])
        != (3, amount(int(r["event_id"][1:]), 3), store_of(int(r["event_id"][1:])))
    ]
    assert wrong == [], f"{len(wrong)} transactions not at their highest version: {wrong[:5]}"
    # Exactly the highest version's line items, every one enriched (the late SKU included).
    items: dict[str, set[tuple[int, str, int, Decimal]]] = defaultdict(set)
    count = 0
    for r in await db.fetch(
        "SELECT t.event_id, i.line_no, i.sku, i.qty, i.unit_price, i.known_sku "
        "FROM scout.silver_transaction_items i JOIN scout.silver_transactions_cleaned t "
        "USING (transaction_id)"
    ):
        assert r["known_sku"], r
        items[r["event_id"]].add((r["line_no"], r["sku"], int(r["qty"]), r["unit_price"]))
        count += 1
    expected = {f"E{i:05d}": set(lines(i, 3)) for i in range(EVENTS)}
    assert count == sum(len(v) for v in expected.values())
    assert items == expected
    assert await db.fetchval(
        "SELECT count(*) FROM scout.silver_transaction_items i JOIN "
        "scout.silver_master_products p USING (sku) WHERE i.brand IS DISTINCT FROM p.brand"
    ) == 0  # fmt: skip
    # Lineage: one row per bronze record, pointing at the transaction of its own event.
    lineage = await db.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE l.target = 'silver_transactions_cleaned' "
        "AND t.event_id = b.raw_data->>'event_id') AS own "
        "FROM scout.bronze_transactions_raw b JOIN scout.silver_lineage l ON l.bronze_id = b.id "
        "LEFT JOIN scout.silver_transactions_cleaned t USING (transaction_id)"
    )
    assert (lineage["n"], lineage["own"]) == (sent, sent)
    # The quarantine: only the late store's records that came before it, each once, all
    # resolved into silver; nothing else (no record quarantined twice under two rules).
    quarantine = await db.fetch(
        "SELECT q.rule, q.store_id, q.resolved_at, b.raw_data->>'event_id' AS event_id "
        "FROM scout.silver_quarantine q JOIN scout.bronze_transactions_raw b ON b.id = q.bronze_id"
    )
    assert quarantine, "no record waited for the late store: the test proved nothing"
    assert {(r["rule"], r["store_id"]) for r in quarantine} == {("unknown_store", LATE_STORE)}
    assert all(r["resolved_at"] is not None for r in quarantine)
    late_records = await db.fetchval(
        "SELECT count(*) FROM scout.bronze_transactions_raw WHERE raw_data->>'store_id' = $1",
        LATE_STORE,
    )
    assert len(quarantine) < late_records  # the ones after the store arrived went straight in
