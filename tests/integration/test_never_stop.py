"""Never stop on a record (CONTRACTS §1), on the real stack with bronze, silver and gold as
separate processes: whatever a producer sends is kept in exactly one place with its reason,
the records behind it on the same partition land, and no worker exits or restarts.

- a property-based fuzz of the contract (``tests/fuzz.py``: payloads derived from
  ``schemas/events/`` and mutated), interleaved with valid sales;
- each known poison record by name, with the place and reason it must end in;
- a consumer group reset to the beginning after a batch with a refused row (redelivery);
- two silver workers and a ``scout replay`` at once over corrections of the same events;
- the broker killed and restarted under the running chain.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidTimestampError

from services.common.events import ProductRecord, StoreRecord, parse_master
from services.common.kafka import create_topics, make_producer, topics_for
from services.common.settings import Settings
from services.devstack import kafka
from services.silver_enricher.app import message_id
from tests.fuzz import SKUS, STORES, payloads
from tests.support import (
    ServiceProcess,
    free_ports,
    publish,
    settings_env,
    start_all,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.integration

FUZZ_SEED = int(os.environ.get("SCOUT_FUZZ_SEED", "20261201"))
FUZZ_EXAMPLES = int(os.environ.get("SCOUT_FUZZ_EXAMPLES", "2000"))


def _masters(settings: Settings) -> list[tuple[str, bytes, bytes]]:
    topics = topics_for(settings)
    out = []
    for n, store in enumerate(STORES):
        body = {"schema": "master.store/1", "store_id": store, "name": f"Fuzz {n}",
                "region": "NCR", "city": f"City {n}", "timezone": "Asia/Manila"}  # fmt: skip
        out.append((topics.master_stores, store.encode(), json.dumps(body).encode()))
    for sku in SKUS:
        body = {"schema": "master.product/1", "sku": sku, "name": sku, "brand": "B",
                "category": "snacks", "unit_price": "10.00"}  # fmt: skip
        out.append((topics.master_products, sku.encode(), json.dumps(body).encode()))
    return out


def _sale(event_id: str, store: str, *, version: int = 1, amount: str = "30.00",
          qty: int = 3, price: str = "10.00", **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"schema": "pos.transaction/1", "event_id": event_id, "store_id": store,
            "occurred_at": "2026-11-25T10:15:00+08:00", "total_amount": amount,
            "items": [{"sku": "P-F1", "qty": qty, "unit_price": price}], "version": version,
            "customer": {"id": f"C-{event_id}", "type": "regular"}, **extra}  # fmt: skip


def _valid(settings: Settings, n: int, tag: str) -> list[tuple[str, bytes, bytes]]:
    pos = topics_for(settings).pos
    return [(pos, STORES[i % 3].encode(), json.dumps(_sale(f"{tag}-{i}", STORES[i % 3])).encode())
            for i in range(n)]  # fmt: skip


@pytest.fixture
async def chain(settings: Settings, tmp_path: Path) -> AsyncIterator[list[ServiceProcess]]:
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    yield services
    stop_all(services)


def assert_never_stopped(services: Sequence[ServiceProcess]) -> None:
    """Every worker is the process it was started as, and no batch failed on an error."""
    for service in services:
        assert service.proc is not None and service.proc.poll() is None, service.log_tail()
        assert service.metric("scout_batch_retries_total", kind="error") == 0, service.log_tail()


async def until_settled(
    db: asyncpg.Connection, published: int, timeout: float = 180, *, gold: bool = True
) -> None:
    """Every published source record is in bronze (rows, empty batch) or the error log, every
    bronze row has its silver lineage, and gold (if it runs) has taken every change."""
    deltas = "(SELECT count(*) FROM scout.gold_silver_changes)" if gold else "0"
    seen: dict[str, Any] = {}

    async def settled() -> bool:
        landed = await db.fetchval("""
            SELECT count(*) FROM (
                SELECT kafka_topic, kafka_partition, kafka_offset FROM scout.bronze_transactions_raw
                UNION SELECT kafka_topic, kafka_partition, kafka_offset FROM scout.bronze_error_log
                UNION SELECT kafka_topic, kafka_partition, kafka_offset
                        FROM scout.bronze_ingestion_batches) k""")  # fmt: skip
        waiting = await db.fetchval("""
            SELECT (SELECT count(*) FROM scout.bronze_transactions_raw b
                     WHERE NOT EXISTS (SELECT 1 FROM scout.silver_lineage l
                                        WHERE l.bronze_id = b.id))
                 + """ + deltas)  # fmt: skip
        seen.update(landed=landed, published=published, waiting=waiting)
        return bool(landed == published and waiting == 0)

    await wait_for(settled, timeout=timeout, interval=1.0, context=lambda: seen)


def gold_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "gold", "verify", "--from", "1970-01-01"],
        env=settings_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


async def test_fuzzed_contract_never_stops_a_worker_and_keeps_every_record(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topics = topics_for(settings)
    # Generated in another process (another core) while the services start.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    generated = asyncio.get_running_loop().run_in_executor(
        pool, payloads, topics, FUZZ_EXAMPLES, FUZZ_SEED
    )
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    try:
        masters = _masters(settings)
        await publish(settings, masters)
        fuzzed = await generated
        pool.shutdown()
        valid = _valid(settings, 300, "VALID")
        mixed = list(fuzzed)
        for i, record in enumerate(valid):  # interleaved, on the fuzzed records' partitions
            mixed.insert((i * len(fuzzed)) // len(valid) + i, record)
        await publish(settings, mixed)
        sources = {topics.pos, topics.api, topics.iot}
        await until_settled(db, sum(1 for t, _, _ in mixed if t in sources))
        assert_never_stopped(services)

        # Every valid sale is in silver, and gold equals a recomputation from silver.
        landed = await db.fetchval(
            "SELECT count(*) FROM scout.silver_transactions_cleaned WHERE event_id LIKE 'VALID-%'"
        )
        assert landed == len(valid)
        verify = gold_verify(settings)
        assert verify.returncode == 0, verify.stdout + verify.stderr

        # Exactly one place per record: a bronze row (with one lineage row) or an error-log
        # row, never both, for each record of each Kafka record; each master record is
        # current master data or quarantined.
        both = await db.fetchval("""
            SELECT count(*) FROM scout.bronze_transactions_raw b JOIN scout.bronze_error_log e
             USING (kafka_topic, kafka_partition, kafka_offset, record_index, kafka_timestamp)""")
        assert both == 0
        assert await db.fetchval("""
            SELECT count(*) FROM scout.bronze_transactions_raw b
             WHERE (SELECT count(*) FROM scout.silver_lineage l WHERE l.bronze_id = b.id) <> 1
        """) == 0  # fmt: skip
        await assert_master_records_accounted(db, settings, fuzzed + masters)

        # Replay equals streaming: `scout replay` gives every record the outcome streaming
        # gave it (it reads bronze's jsonb, which spells numbers differently).
        before = await _outcomes(db)
        replay = subprocess.run(
            [sys.executable, "-m", "services.cli", "replay", "--from", "1970-01-01"],
            env=settings_env(settings), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert await _outcomes(db) == before

        reasons = {r["reason"] for r in await db.fetch(
            "SELECT DISTINCT 'bronze:' || reason AS reason FROM scout.bronze_error_log"
            " UNION SELECT DISTINCT 'silver:' || rule FROM scout.silver_quarantine"
        )}  # fmt: skip
        with capsys.disabled():
            print(
                f"\nfuzz: seed {FUZZ_SEED}, {len(fuzzed)} payloads + {len(valid)} valid sales, "
                f"{len(reasons)} distinct rejection reasons: {', '.join(sorted(reasons))}"
            )
        assert len(fuzzed) >= FUZZ_EXAMPLES
        assert len(reasons) >= 12, reasons
    finally:
        stop_all(services, check=False)


async def _outcomes(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Where each bronze record ended, and the values silver took from it."""
    lineage = await db.fetch("SELECT bronze_id, target, transaction_id FROM scout.silver_lineage")
    quarantine = await db.fetch("SELECT bronze_id, rule, field FROM scout.silver_quarantine"
                                " WHERE resolved_at IS NULL")  # fmt: skip
    silver = await db.fetch("""
        SELECT transaction_id, bronze_id, version, amount, gross_amount, discount_amount,
               item_count, unit_count, customer_key, notes
          FROM scout.silver_transactions_cleaned""")  # fmt: skip
    return tuple(sorted(tuple(r) for r in rows) for rows in (lineage, quarantine, silver))


async def assert_master_records_accounted(
    db: asyncpg.Connection, settings: Settings, records: Sequence[tuple[str, bytes, bytes]]
) -> None:
    """Each master record read back from its topic is current master data or quarantined."""
    quarantine = "SELECT bronze_id FROM scout.silver_quarantine WHERE source_system = 'master'"
    quarantined = {r[0] for r in await db.fetch(quarantine)}
    stores = {r[0] for r in await db.fetch("SELECT store_id FROM scout.silver_master_stores")}
    skus = {r[0] for r in await db.fetch("SELECT sku FROM scout.silver_master_products")}
    topics = topics_for(settings)
    for topic in (topics.master_stores, topics.master_products):
        expected = sum(1 for t, _, _ in records if t == topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
            seen = 0
            for _ in range(60):
                for batch in (await consumer.getmany(timeout_ms=1000)).values():
                    for message in batch:
                        seen += 1
                        if message_id(message) in quarantined:
                            continue
                        parsed = parse_master(message.value or b"")
                        assert isinstance(parsed, StoreRecord | ProductRecord), message
                        if isinstance(parsed, StoreRecord):
                            assert parsed.store_id in stores, message
                        else:
                            assert parsed.sku in skus, message
                if seen >= expected:
                    break
            assert seen == expected
        finally:
            await consumer.stop()


def _with_deep(sale: dict[str, Any], depth: int) -> bytes:
    """The sale with an extra field nested ``depth`` objects deep (as text: the encoder
    itself would hit the recursion limit)."""
    nested = '{"d":' * depth + '"bottom"' + "}" * depth
    return (json.dumps(sale)[:-1] + f', "x": {nested}}}').encode()


def _envelope(records: list[Any], schema: str | None = "api.batch/1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "batch_id": str(uuid.uuid4()),
        "partner": "grabmart",
        "sent_at": "2026-11-25T10:20:00+08:00",
        "records": records,
    }
    if schema is not None:
        body["schema"] = schema
    return body


def _api_sale(event_id: str, **fields: Any) -> dict[str, Any]:
    sale = _sale(event_id, "S-F1", **fields)
    sale.pop("schema")
    return {"type": "transaction", **sale}


# name → (topic kind, payload bytes, where it must end: ("error_log", reason) or
# ("quarantine", rule, field) or ("silver", None)).
def _poison_cases() -> dict[str, tuple[str, bytes, tuple[Any, ...]]]:
    def pos(event_id: str, **fields: Any) -> bytes:
        return json.dumps(_sale(event_id, "S-F2", **fields)).encode()

    return {
        "amount beyond numeric(12,2)": (
            "pos", pos("P-big", amount="100000000000.00"),
            ("quarantine", "invalid_value", "total_amount")),
        "amount that rounds to 0.00": (
            "pos", pos("P-zero", amount="0.004", price="0.004", qty=1),
            ("quarantine", "non_positive_amount", "total_amount")),
        "version beyond int4": (
            "pos", pos("P-ver", version=2**31), ("quarantine", "invalid_value", "version")),
        "quantity beyond int4": (
            "pos", pos("P-qty", qty=2**40), ("quarantine", "invalid_value", "items.0.qty")),
        "line amount beyond the domain": (
            "pos", pos("P-line", qty=1_000_000, price="99999.00"),
            ("quarantine", "invalid_value", "items.0")),
        "timestamp in year 1": (
            "pos", pos("P-y1", occurred_at="0001-01-01T00:00:00+08:00"),
            ("quarantine", "invalid_value", "occurred_at")),
        "timestamp in year 9999": (
            "pos", pos("P-y9999", occurred_at="9999-12-31T23:59:59-08:00"),
            ("quarantine", "invalid_value", "occurred_at")),
        "integral float as quantity": (
            "pos", pos("P-2.0", qty=3.0), ("silver", None)),  # type: ignore[arg-type]
        "free line item": (
            "pos", json.dumps({**_sale("P-free", "S-F2"), "items": [
                {"sku": "P-F1", "qty": 3, "unit_price": "10.00"},
                {"sku": "P-F2", "qty": 1, "unit_price": 0}]}).encode(), ("silver", None)),
        "bulk sale of a million units": (
            "pos", json.dumps({**_sale("P-bulk", "S-F2", amount="20000000.00"), "items": [
                {"sku": "P-F1", "qty": 1_000_000, "unit_price": "10.00"},
                {"sku": "P-F2", "qty": 1_000_000, "unit_price": "10.00"}]}).encode(),
            ("silver", None)),
        "nesting past orjson's limit": (
            "pos", _with_deep(_sale("P-deep", "S-F2"), 1100),
            ("error_log", "too_deep")),
        "nesting both decoders accept": (
            "pos", _with_deep(_sale("P-deep6", "S-F2"), 600),
            ("error_log", "too_deep")),
        "number jsonb refuses": (
            "pos", pos("P-num").replace(b'"version": 1', b'"version": 1, "x": 1e200000'),
            ("error_log", "rejected_by_database")),
        "NUL in a string": (
            "iot", b'{"schema": "iot.reading/1", "device_id": "D\\u0000", "store_id": "S-F2"}',
            ("error_log", "unsupported_json")),
        "escaped backslash before u0000 (no NUL)": (
            "pos", pos("P-path", customer={"id": "C-P-path", "note": "C:\\u0000dir"}),
            ("silver", None)),
        "unpaired surrogate": (
            "iot", b'{"schema": "iot.reading/1", "device_id": "D\\ud800", "store_id": "S-F2"}',
            ("error_log", "unsupported_json")),
        "api envelope of an unknown schema": (
            "api", json.dumps(_envelope([_api_sale("A-v2")], "api.batch/2")).encode(),
            ("quarantine", "unknown_schema", "schema")),
        "api envelope without a schema": (
            "api", json.dumps(_envelope([_api_sale("A-none")], None)).encode(),
            ("quarantine", "missing_field", "schema")),
        "api batch with two records jsonb refuses": (
            "api", json.dumps(_envelope(
                [_api_sale("A-ok"), {"type": "transaction", "x": "N1"},
                 {"type": "transaction", "x": "N2"}]
            )).encode().replace(b'"N1"', b"1e200000").replace(b'"N2"', b"2e200000"),
            ("error_log_rows", 2)),
        "not UTF-8": ("pos", b"\xff\xfe{}", ("error_log", "not_utf8")),
    }  # fmt: skip


async def test_each_known_poison_record_is_kept_and_its_partition_goes_on(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    topics = topics_for(settings)
    topic_of = {"pos": topics.pos, "api": topics.api, "iot": topics.iot}
    await publish(settings, _masters(settings))
    await wait_for(lambda: db.fetchval(
        "SELECT count(*) = 3 FROM scout.silver_master_stores"), timeout=60)  # fmt: skip
    cases = _poison_cases()
    records = []
    for n, (kind, payload, _) in enumerate(cases.values()):
        # Every poison record is followed by a valid sale on the same partition (same key).
        records.append((topic_of[kind], b"S-F2", payload))
        records.append((topics.pos, b"S-F2", json.dumps(_sale(f"BEHIND-{n}", "S-F2")).encode()))
    await publish(settings, records)
    await until_settled(db, len(records), timeout=120)
    assert_never_stopped(chain)
    behind = await db.fetchval(
        "SELECT count(*) FROM scout.silver_transactions_cleaned WHERE event_id LIKE 'BEHIND-%'"
    )
    assert behind == len(cases)

    for name, (kind, _, outcome) in cases.items():
        offset = list(cases).index(name)
        where = await _where(db, topic_of[kind], records[2 * offset][2], offset)
        assert where == outcome, f"{name}: ended as {where}"
    verify = gold_verify(settings)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    bulk = await db.fetchrow("SELECT unit_count FROM scout.silver_transactions_cleaned"
                             " WHERE event_id = 'P-bulk'")  # fmt: skip
    assert bulk is not None and bulk["unit_count"] == 2_000_000


async def _where(db: asyncpg.Connection, topic: str, payload: bytes, n: int) -> tuple[Any, ...]:
    """Where the poison record published as the n-th case ended up."""
    errors = await db.fetch(
        "SELECT reason FROM scout.bronze_error_log WHERE kafka_topic = $1 AND raw_bytes = $2",
        topic,
        payload,
    )
    if b"1e200000" in payload and topic.endswith("api.batches"):
        refused = await db.fetchval(
            "SELECT count(*) FROM scout.bronze_error_log WHERE kafka_topic = $1"
            " AND reason = 'rejected_by_database'", topic)  # fmt: skip
        return ("error_log_rows", refused)
    if errors:
        return ("error_log", errors[0]["reason"])
    event = json.loads(payload)
    event_id = event.get("event_id")
    in_silver = "SELECT 1 FROM scout.silver_transactions_cleaned WHERE event_id = $1"
    if event_id is not None and await db.fetchval(in_silver, event_id):
        return ("silver", None)
    row = await db.fetchrow("""
        SELECT q.rule, q.field FROM scout.silver_quarantine q
          JOIN scout.bronze_transactions_raw b ON b.id = q.bronze_id
         WHERE b.kafka_topic = $1 AND (b.raw_data->>'event_id' = $2 OR b.raw_data->>'batch_id' = $3)
    """, topic, event_id, event.get("batch_id"))  # fmt: skip
    if row is None:
        return ("missing", n)
    return ("quarantine", row["rule"], row["field"])


async def test_database_refusals_are_isolated_in_bronze_and_silver(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    """The mechanism, not a list of cases: a record the database refuses for a reason no
    check foresaw (here: constraints an operator added) is isolated, kept with the database's
    reason, and the rest of its batch is written."""
    await db.execute("""
        ALTER TABLE scout.bronze_transactions_raw ADD CONSTRAINT refuse_b
            CHECK (raw_data->>'event_id' IS DISTINCT FROM 'REFUSE-B');
        ALTER TABLE scout.silver_transactions_cleaned ADD CONSTRAINT refuse_s
            CHECK (event_id <> 'REFUSE-S')""")  # fmt: skip
    await publish(settings, _masters(settings))
    await wait_for(lambda: db.fetchval(
        "SELECT count(*) = 3 FROM scout.silver_master_stores"), timeout=60)  # fmt: skip
    pos = topics_for(settings).pos
    batch = _valid(settings, 200, "OK")
    batch.insert(50, (pos, b"S-F1", json.dumps(_sale("REFUSE-B", "S-F1")).encode()))
    batch.insert(120, (pos, b"S-F1", json.dumps(_sale("REFUSE-S", "S-F1")).encode()))
    await publish(settings, batch)
    await until_settled(db, len(batch))
    assert_never_stopped(chain)
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 200
    bronze = await db.fetchrow("SELECT reason, detail FROM scout.bronze_error_log")
    assert bronze["reason"] == "rejected_by_database"
    assert bronze["detail"].startswith("check_violation")
    silver = await db.fetchrow("SELECT rule, detail FROM scout.silver_quarantine")
    assert silver["rule"] == "unprocessable"
    assert silver["detail"].startswith("check_violation")
    assert chain[0].metric("scout_records_isolated_total", layer="bronze") == 1
    assert chain[1].metric("scout_records_isolated_total", layer="silver") == 1


YEAR_10000_MS = 253_402_300_800_000


async def _allow_ahead(settings: Settings, topic: str, ms: int) -> None:
    """Let ``topic`` take record timestamps up to ``ms`` ahead of the broker's clock."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        config = {"message.timestamp.after.max.ms": str(ms)}
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)
        [response] = await admin.alter_configs([resource])
        assert all(error_code == 0 for error_code, *_ in response.resources), response
    finally:
        await admin.close()


async def test_a_kafka_timestamp_past_year_9999_is_read_as_none_and_the_partition_goes_on(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    """A Kafka timestamp is any int64 of milliseconds. Kafka 4's default refuses one more
    than an hour ahead; a topic that allows it hands bronze (and silver, on the master
    topics) a time no datetime holds."""
    topics = topics_for(settings)
    pos, stores = topics.pos, topics.master_stores
    await publish(settings, _masters(settings))
    producer = make_producer(settings)
    await producer.start()
    try:
        far = json.dumps(_sale("P-y10000", "S-F2")).encode()
        await _allow_ahead(settings, pos, 3_600_000)
        with pytest.raises(InvalidTimestampError):
            await (await producer.send(pos, far, key=b"S-F2", timestamp_ms=YEAR_10000_MS))
        for topic in (pos, stores):
            await _allow_ahead(settings, topic, 2**62)
        store = {"schema": "master.store/1", "store_id": "S-F9", "name": "Far", "region": "NCR",
                 "city": "Far", "timezone": "Asia/Manila"}  # fmt: skip
        for timestamp_ms in (YEAR_10000_MS, 2**62):
            await (await producer.send(pos, far, key=b"S-F2", timestamp_ms=timestamp_ms))
            for value in (store, {"schema": "master.store/1"}):  # the second is quarantined
                body = json.dumps(value).encode()
                await (await producer.send(stores, body, key=b"S-F9", timestamp_ms=timestamp_ms))
        behind = json.dumps(_sale("P-behind", "S-F2")).encode()
        await (await producer.send(pos, behind, key=b"S-F2"))
    finally:
        await producer.stop()
    await until_settled(db, 3)
    await wait_for(lambda: db.fetchval("SELECT count(*) = 2 FROM scout.silver_quarantine"
                                       " WHERE source_system = 'master'"), timeout=60)  # fmt: skip
    assert_never_stopped(chain)
    assert await db.fetchval("SELECT count(*) FROM scout.silver_master_stores") == 4
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    quarantined = await db.fetch("SELECT DISTINCT kafka_timestamp FROM scout.silver_quarantine")
    assert [q["kafka_timestamp"] for q in quarantined] == [epoch]
    times = await db.fetch("SELECT raw_data->>'event_id' AS event_id, kafka_timestamp"
                           " FROM scout.bronze_transactions_raw WHERE kafka_topic = $1"
                           " ORDER BY kafka_offset", pos)  # fmt: skip
    assert [(t["event_id"], t["kafka_timestamp"] == epoch) for t in times] == [
        ("P-y10000", True), ("P-y10000", True), ("P-behind", False)]  # fmt: skip
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 2
    verify = gold_verify(settings)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_message_on_the_handoff_topic_that_is_not_bronzes_is_kept_and_skipped(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    """The hand-off topic is bronze's alone, but a Kafka user that may write to it (a
    producer pointed at the wrong topic, a mirror) must not stop silver behind it."""
    topics = topics_for(settings)
    await publish(settings, _masters(settings))
    foreign = [b"not json", b'{"v": "1"}', b'{"v": 1, "records": [{"id": "x"}]}']
    # The same key as the sale behind: on one partition, in one of silver's batches.
    await publish(settings, [(topics.bronze_landed, b"S-F2", value) for value in foreign])
    await publish(settings, [(topics.pos, b"S-F2", json.dumps(_sale("P-after", "S-F2")).encode())])
    await until_settled(db, 1)
    assert_never_stopped(chain)
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 1
    kept = await db.fetch("SELECT rule, detail FROM scout.silver_quarantine"
                          " WHERE source_system = 'handoff' ORDER BY detail")  # fmt: skip
    assert [k["rule"] for k in kept] == ["unprocessable"] * 3
    assert all(k["detail"].startswith(topics.bronze_landed) for k in kept), kept
    assert chain[1].metric("scout_records_rejected_total", layer="silver",
                           reason="unprocessable") == 3  # fmt: skip


async def test_foreign_records_in_a_well_shaped_handoff_message_are_kept_and_skipped(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    """A hand-off message of the right shape whose records bronze did not write (an id that
    is no UUID, fields of the wrong type, text PostgreSQL cannot store): each is kept by the
    last resort, which trusts none of its fields, and silver goes on behind them."""
    topics = topics_for(settings)
    await publish(settings, _masters(settings))
    now_ms = int(datetime.now(UTC).timestamp() * 1000)

    def record(n: int, **head: Any) -> dict[str, Any]:
        raw = head.pop("raw", None) or _sale(f"P-foreign-{n}", "S-F2")
        return {"id": str(uuid.uuid4()), "src": "pos", "kts": now_ms, "bid": None,
                "partner": None, **head, "raw": raw}  # fmt: skip

    # A head of the wrong type is no bronze message: each of these is kept as one message.
    heads = [record(1, id=42), record(2, src=5), record(3, src="csv"), record(4, bid=7),
             record(5, partner=["p"]), record(6, kts="0")]  # fmt: skip
    # Heads of the right type: each record is kept on its own.
    records = [record(7, id="not-a-uuid"), record(8, raw=_sale("P-foreign-8", "S-F2\u0000")),
               record(9, raw=_sale("P-foreign-9", "\ud800S-F2"))]  # fmt: skip
    messages = [*([r] for r in heads), records]
    await publish(
        settings,
        [
            (topics.bronze_landed, b"S-F2", json.dumps({"v": 1, "records": m}).encode())
            for m in messages
        ],
    )
    await publish(settings, [(topics.pos, b"S-F2", json.dumps(_sale("P-after", "S-F2")).encode())])
    await until_settled(db, 1)
    assert_never_stopped(chain)
    landed = await db.fetch("SELECT b.raw_data->>'event_id' AS e FROM scout.silver_lineage"
                            " JOIN scout.bronze_transactions_raw b ON id = bronze_id")  # fmt: skip
    assert [r["e"] for r in landed] == ["P-after"]
    kept = await db.fetch("SELECT source_system, store_id FROM scout.silver_quarantine"
                          " WHERE rule = 'unprocessable'")  # fmt: skip
    # Not bronze's by its head (id, source, batch, partner): kept as the hand-off's; bronze's
    # by its head, its text unstorable: kept under its source, without the text.
    assert sorted(k["source_system"] for k in kept) == ["handoff"] * 7 + ["pos"] * 2, kept
    assert all(k["store_id"] in (None, "S-F2") for k in kept), kept
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned"
                             " WHERE event_id LIKE 'P-foreign-%'") == 0  # fmt: skip


async def _reset_group(settings: Settings, group: str, topics: Sequence[str]) -> None:
    """Commit offset 0 on every partition of ``topics`` for the (stopped) consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in range(settings.topic_partitions)]  # fmt: skip
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()


async def test_reset_to_the_beginning_after_a_refused_row_catches_up_without_doubles(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Redelivery of batches whose landed rows and refused rows are mixed: nothing doubles,
    nothing stops (the redelivered COPY meets both a primary key and the refusal)."""
    await db.execute("""ALTER TABLE scout.bronze_transactions_raw ADD CONSTRAINT refuse_b
                        CHECK (raw_data->>'event_id' IS DISTINCT FROM 'REFUSE-B')""")
    topics = topics_for(settings)
    batch = _valid(settings, 300, "RE")
    batch.insert(150, (topics.pos, b"S-F1", json.dumps(_sale("REFUSE-B", "S-F1")).encode()))
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    await publish(settings, _masters(settings) + batch)
    await until_settled(db, len(batch), gold=False)
    counts = await _counts(db)
    stop_all(services)
    group = settings.topic_prefix.replace(".", "-").strip("-")
    await _reset_group(settings, f"{group}-bronze", topics.sources)
    await _reset_group(settings, f"{group}-silver", (topics.bronze_landed, *topics.compacted))
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    try:
        # Caught up: bronze re-read every record (its consumed count), silver again merged.
        consumed = "scout_records_consumed_total"
        await wait_for(lambda: asyncio.sleep(0, services[0].metric(consumed, layer="bronze")
                                             >= len(batch)), timeout=120)  # fmt: skip
        await asyncio.sleep(3)
        assert await _counts(db) == counts
        assert_never_stopped(services)
    finally:
        stop_all(services, check=False)


async def _counts(db: asyncpg.Connection) -> tuple[int, ...]:
    return tuple(await db.fetchrow("""
        SELECT (SELECT count(*) FROM scout.bronze_transactions_raw),
               (SELECT count(*) FROM scout.bronze_error_log),
               (SELECT count(*) FROM scout.silver_transactions_cleaned),
               (SELECT count(*) FROM scout.silver_lineage),
               (SELECT count(*) FROM scout.silver_quarantine)"""))  # fmt: skip


async def test_two_silver_workers_and_a_replay_merge_corrections_without_a_crash(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    topics = topics_for(settings)
    services = start_all(ServiceProcess(n, settings, tmp_path)
                for n in ("bronze", "silver", "silver", "gold"))  # fmt: skip
    try:
        await publish(settings, _masters(settings))
        rng = random.Random(5)
        records = []
        for n in range(400):
            for version in rng.sample([1, 2, 3], 3):
                sale = _sale(f"C-{n}", STORES[n % 3], version=version,
                             amount=f"{10 * version}.00", qty=version)  # fmt: skip
                # A random key: the versions of one sale land on different partitions, so on
                # different silver workers.
                records.append((topics.pos, str(rng.random()).encode(), json.dumps(sale).encode()))
        first, second = records[: len(records) // 2], records[len(records) // 2 :]
        await publish(settings, first)
        replay = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "replay", "--from", "2000-01-01"],
            env=settings_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        await publish(settings, second, rate=2000)
        out, _ = await asyncio.to_thread(replay.communicate, timeout=300)
        assert replay.returncode == 0, out.decode()[-3000:]
        await until_settled(db, len(records))
        assert_never_stopped(services)
        rows = await db.fetch(
            "SELECT event_id, version, amount FROM scout.silver_transactions_cleaned"
        )
        assert len(rows) == 400
        assert {(r["version"], str(r["amount"])) for r in rows} == {(3, "30.00")}
        verify = gold_verify(settings)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        stop_all(services, check=False)


@pytest.fixture
def private_kafka(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Settings]]:
    """A broker of this test's own (the shared one must not restart): (its stack settings,
    the services' settings pointing at it)."""
    port = free_ports(2)  # the controller listens on port + 1
    stack = settings.model_copy(update={"state_dir": tmp_path / "kstate", "kafka_port": port})
    _dev(stack, "up")
    try:
        yield stack, settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    finally:
        _dev(stack, "down")


def _dev(stack: Settings, command: str) -> None:
    """``scout dev up|down`` for the private broker only (the database URL is set, so the
    shared PostgreSQL is left alone)."""
    env = settings_env(stack, SCOUT_KAFKA_PORT=str(stack.kafka_port))
    env.pop("SCOUT_KAFKA_BOOTSTRAP")
    result = subprocess.run([sys.executable, "-m", "services.cli", "dev", command], env=env,
                            capture_output=True, text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_broker_killed_and_restarted_is_ridden_out_by_every_worker(
    private_kafka: tuple[Settings, Settings], db: asyncpg.Connection, tmp_path: Path
) -> None:
    stack, settings = private_kafka
    await create_topics(settings)
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    pids = [s.proc.pid for s in services if s.proc is not None]
    try:
        await publish(settings, _masters(settings) + _valid(settings, 500, "BEFORE"))
        await until_settled(db, 500)
        broker = kafka.running_pid(stack)
        assert broker is not None
        os.kill(broker, signal.SIGKILL)  # no clean shutdown: the worst case
        await asyncio.sleep(15)  # longer than a session timeout: the workers see it gone
        assert [s.proc.poll() for s in services if s.proc is not None] == [None] * 3
        await asyncio.to_thread(_dev, stack, "up")
        await publish(settings, _valid(settings, 500, "AFTER"))
        await until_settled(db, 1000)
        assert [s.proc.pid for s in services if s.proc is not None] == pids
        assert_never_stopped(services)
        assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 1000
        verify = gold_verify(settings)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        stop_all(services, check=False)
