"""Silver on the real stack: accounting against the simulator's manifest, corrections in
any order, unknown stores resolved, no personal data, replay equal to streaming."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.common.kafka import topics_for
from services.common.settings import Settings
from services.silver_enricher import repo as silver_repo
from tests.support import ServiceProcess, publish, settings_env, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def chain(settings: Settings, tmp_path: Path) -> AsyncIterator[list[ServiceProcess]]:
    """Bronze and silver running against this test's topics and database."""
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    yield services
    stop_all(services)


def simulate(settings: Settings, tmp_path: Path, *args: str) -> dict[str, Any]:
    manifest = tmp_path / "manifest.json"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "simulate", "--manifest", str(manifest), *args],
        env=settings_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(manifest.read_text()))


async def until_silver_settles(
    db: asyncpg.Connection, manifest: dict[str, Any], timeout: float = 120
) -> None:
    """All of the run is in bronze, every bronze row has a lineage row, and nothing waits
    for master data that has arrived (quarantined unknown stores, items of unknown SKUs)."""

    seen: dict[str, int] = {}

    async def settled() -> bool:
        bronze = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
        seen.update(bronze=bronze, expected=manifest["expected"]["bronze_transactions_raw"])
        if bronze != manifest["expected"]["bronze_transactions_raw"]:
            return False
        lineage = await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
        waiting = await db.fetchval(
            "SELECT count(*) FROM scout.silver_quarantine q JOIN scout.silver_master_stores s "
            "USING (store_id) WHERE q.rule = 'unknown_store' AND q.resolved_at IS NULL"
        )
        unenriched = await db.fetchval(
            "SELECT count(*) FROM scout.silver_transaction_items i "
            "JOIN scout.silver_master_products p USING (sku) WHERE NOT i.known_sku"
        )
        seen.update(lineage=lineage, waiting=waiting, unenriched=unenriched)
        return bool(bronze > 0 and bronze == lineage and waiting == 0 and unenriched == 0)

    await wait_for(settled, timeout=timeout, context=lambda: seen)


async def test_simulated_traffic_is_accounted_for_by_rule(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, chain: list[ServiceProcess]
) -> None:
    manifest = simulate(settings, tmp_path, "--rate", "2000", "--duration", "4", "--faults",
                        "0.08", "--seed", "11", "--stores", "25")  # fmt: skip
    expected = manifest["expected"]
    await until_silver_settles(db, manifest)
    await asyncio.sleep(2)
    assert (
        await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
        == (expected["bronze_transactions_raw"])
    )
    # Every bronze record went to exactly one place.
    assert (
        await db.fetchval("SELECT count(*) FROM scout.silver_lineage")
        == (expected["bronze_transactions_raw"])
    )
    quarantine = {
        r["rule"]: r["n"]
        for r in await db.fetch(
            "SELECT rule, count(*) AS n FROM scout.silver_quarantine GROUP BY rule"
        )
    }
    # A record whose store is not known yet when silver sees it is quarantined and resolved
    # when the store arrives. Which records wait depends on timing: the late stores' records
    # may be overtaken by their master record (it goes straight to silver, they go through
    # bronze), and early records may overtake the master data of ordinary stores. Either way
    # each one ends in silver, exactly once (the transaction count below is exact).
    waited = quarantine.pop("unknown_store", 0)
    expected_quarantine = dict(expected["silver_quarantine"])
    expected_quarantine.pop("unknown_store")
    assert quarantine == expected_quarantine
    resolved = await db.fetchval(
        "SELECT count(*) FROM scout.silver_quarantine WHERE resolved_at IS NOT NULL"
    )
    assert resolved == waited
    assert (
        await db.fetchval(
            "SELECT count(*) FROM scout.silver_quarantine q JOIN scout.silver_lineage l "
            "USING (bronze_id) WHERE q.rule = 'unknown_store' AND l.target <> "
            "'silver_transactions_cleaned' AND l.target <> 'silver_device_readings'"
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned")
        == (expected["silver_transactions_cleaned"])
    )
    for table in ("silver_campaign_spend", "silver_device_readings", "silver_master_stores",
                  "silver_master_products"):  # fmt: skip
        assert await db.fetchval(f"SELECT count(*) FROM scout.{table}") == expected[table], table
    # silver rows + quarantined = bronze transaction records, duplicates and versions folded.
    tx_records = await db.fetchval(
        "SELECT count(*) FROM scout.silver_lineage WHERE target = 'silver_transactions_cleaned'"
    )
    distinct_tx = await db.fetchval(
        "SELECT count(DISTINCT transaction_id) FROM scout.silver_lineage "
        "WHERE target = 'silver_transactions_cleaned'"
    )
    assert distinct_tx == expected["silver_transactions_cleaned"]
    assert tx_records - distinct_tx == (
        expected["silver_duplicates_ignored"] + expected["silver_corrections"]
    )
    silver = chain[1]
    assert silver.metric("scout_records_rejected_total", layer="silver") >= (
        sum(quarantine.values()) + waited
    )


def _pos(event_id: str, version: int, amount: str, store: str = "S0001") -> bytes:
    return json.dumps({
        "schema": "pos.transaction/1", "event_id": event_id, "store_id": store,
        "occurred_at": "2026-11-20T10:15:00+08:00", "total_amount": amount,
        "items": [{"sku": "P-1", "qty": 1, "unit_price": amount}], "version": version,
        "customer": {"id": "C-1", "type": "regular"},
    }).encode()  # fmt: skip


async def _master(settings: Settings, store: str = "S0001") -> None:
    topics = topics_for(settings)
    body = {"schema": "master.store/1", "store_id": store, "name": "Store", "region": "NCR",
            "city": "Quezon City", "timezone": "Asia/Manila"}  # fmt: skip
    product = {"schema": "master.product/1", "sku": "P-1", "name": "Chips", "brand": "Oishi",
               "category": "snacks", "unit_price": "10.00"}  # fmt: skip
    await publish(
        settings,
        [
            (topics.master_stores, store.encode(), json.dumps(body).encode()),
            (topics.master_products, b"P-1", json.dumps(product).encode()),
        ],
    )


async def _master_in_silver(settings: Settings, db: asyncpg.Connection) -> None:
    await _master(settings)
    await wait_for(lambda: db.fetchval("SELECT count(*) = 1 FROM scout.silver_master_stores"),
                   timeout=60)  # fmt: skip


async def test_any_arrival_order_of_versions_keeps_the_newest_once(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    await _master_in_silver(settings, db)
    topic = topics_for(settings).pos
    records = []
    orders = list(itertools.permutations((1, 2, 3)))
    for n, order in enumerate(orders):
        for version in order:
            value = _pos(f"ORD-{n}", version, f"{version}0.00")
            records.append((topic, b"S0001", value))
            if version == 2:
                records.append((topic, b"S0001", value))  # an exact duplicate too
    await publish(settings, records)
    await wait_for(
        lambda: db.fetchval("SELECT count(*) = $1 FROM scout.silver_lineage", len(records)),
        timeout=60,
    )
    rows = await db.fetch(
        "SELECT event_id, version, amount, count(*) OVER (PARTITION BY event_id) AS copies "
        "FROM scout.silver_transactions_cleaned ORDER BY event_id"
    )
    assert [(r["event_id"], r["version"], str(r["amount"]), r["copies"]) for r in rows] == [
        (f"ORD-{n}", 3, "30.00", 1) for n in range(len(orders))
    ]
    items = await db.fetch("SELECT unit_price FROM scout.silver_transaction_items")
    assert [str(i["unit_price"]) for i in items] == ["30.00"] * len(orders)


async def test_unknown_store_is_resolved_when_its_master_record_arrives(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    topic = topics_for(settings).pos
    await publish(settings, [(topic, b"S0777", _pos("LATE-STORE-1", 1, "99.50", "S0777"))])
    await wait_for(
        lambda: db.fetchval(
            "SELECT count(*) = 1 FROM scout.silver_quarantine WHERE rule = 'unknown_store' "
            "AND store_id = 'S0777' AND resolved_at IS NULL"
        ),
        timeout=60,
    )
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 0
    await _master(settings, "S0777")
    await wait_for(
        lambda: db.fetchval(
            "SELECT count(*) = 1 FROM scout.silver_transactions_cleaned WHERE store_id = 'S0777'"
        ),
        timeout=15,
    )
    row = await db.fetchrow("SELECT * FROM scout.silver_quarantine")
    assert row["resolved_at"] is not None and row["rule"] == "unknown_store"
    tx = await db.fetchrow("SELECT * FROM scout.silver_transactions_cleaned")
    assert (tx["region"], tx["city"], str(tx["local_date"]), tx["local_hour"]) == (
        "NCR",
        "Quezon City",
        "2026-11-20",
        10,
    )
    assert (tx["day_of_week"], tx["is_weekend"]) == (5, False)  # a Friday
    assert tx["customer_key"] and tx["customer_key"] != "C-1"


# Texts RFC 3339 allows (and the published JSON Schema admits) that Python's fromisoformat
# alone refuses or reads otherwise: a lowercase z or t, a space for the T, leap seconds.
EDGE_TIMES = (
    "2026-11-20T10:15:00z", "2026-11-20t10:15:00+08:00", "2026-11-20 10:15:00.5-03:30",
    "2016-12-31T23:59:60Z", "2026-11-20T10:15:60.250+08:00", "2026-11-30T23:59:60z",
)  # fmt: skip


async def test_every_rfc3339_time_lands_in_silver_as_postgresql_reads_it_in_bronze(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    await _master_in_silver(settings, db)
    topic = topics_for(settings).pos
    records = []
    for n, when in enumerate(EDGE_TIMES):
        body = json.loads(_pos(f"TIME-{n}", 1, "10.00"))
        records.append((topic, b"S0001", json.dumps({**body, "occurred_at": when}).encode()))
    await publish(settings, records)
    await wait_for(
        lambda: db.fetchval("SELECT count(*) = $1 FROM scout.silver_lineage", len(records)),
        timeout=60,
    )
    assert await db.fetch("SELECT rule, detail FROM scout.silver_quarantine") == []
    rows = await db.fetch(
        "SELECT b.raw_data->>'occurred_at' AS text, t.transaction_date, "
        "(b.raw_data->>'occurred_at')::timestamptz AS postgres "
        "FROM scout.silver_transactions_cleaned t "
        "JOIN scout.bronze_transactions_raw b ON b.id = t.bronze_id ORDER BY t.event_id"
    )
    assert [r["text"] for r in rows] == list(EDGE_TIMES)
    assert [r["transaction_date"] for r in rows] == [r["postgres"] for r in rows]


async def test_master_names_that_scrubbing_lengthens_are_read_back_and_used(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    # Within the domain (10,000 characters) as sent; longer once every address in it is
    # "[removed]". Read back as silver wrote it, the store serves its transactions.
    name = ("a@b.cd " * 1428)[:9996]
    topics = topics_for(settings)
    store = {"schema": "master.store/1", "store_id": "S-LONG", "name": name, "region": "NCR",
             "city": "Quezon City", "timezone": "Asia/Manila"}  # fmt: skip
    product = {"schema": "master.product/1", "sku": "P-LONG", "name": name, "brand": "b",
               "category": "c", "unit_price": "1.00"}  # fmt: skip
    await publish(settings, [
        (topics.master_stores, b"S-LONG", json.dumps(store).encode()),
        (topics.master_products, b"P-LONG", json.dumps(product).encode()),
    ])  # fmt: skip
    await wait_for(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM scout.silver_master_products WHERE length(name) > 10000"),
        timeout=60)  # fmt: skip
    assert len(await db.fetchval("SELECT name FROM scout.silver_master_stores")) > 10_000
    stores = await silver_repo.load_stores(db)
    products = await silver_repo.load_products(db)
    assert "@" not in stores["S-LONG"].name and "@" not in products["P-LONG"].name
    body = json.loads(_pos("LONG-1", 1, "10.00", "S-LONG"))
    body["items"][0]["sku"] = "P-LONG"
    await publish(settings, [(topics.pos, b"S-LONG", json.dumps(body).encode())])
    await wait_for(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM scout.silver_transaction_items WHERE known_sku"),
        timeout=60)  # fmt: skip
    assert await db.fetch("SELECT rule, detail FROM scout.silver_quarantine") == []


PHONE = re.compile(r"(?<!\w)(?:\+?63|0)9\d{9}(?!\w)")  # Philippine mobile numbers
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


async def _silver_text(db: asyncpg.Connection) -> list[tuple[str, str, str]]:
    columns = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'scout' AND table_name LIKE 'silver%' "
        "AND data_type IN ('text', 'character varying')"
    )
    values = []
    for c in columns:
        for r in await db.fetch(
            f'SELECT DISTINCT "{c["column_name"]}" AS v FROM scout."{c["table_name"]}" '
            f'WHERE "{c["column_name"]}" IS NOT NULL'
        ):
            values.append((c["table_name"], c["column_name"], r["v"]))
    return values


async def test_no_personal_data_reaches_silver(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, chain: list[ServiceProcess]
) -> None:
    manifest = simulate(settings, tmp_path, "--rate", "1500", "--duration", "3", "--faults",
                        "0.3", "--seed", "5", "--stores", "10")  # fmt: skip
    await until_silver_settles(db, manifest)
    customer_ids = {
        r["id"] for r in await db.fetch(
            "SELECT DISTINCT raw_data->'customer'->>'id' AS id FROM scout.bronze_transactions_raw "
            "WHERE raw_data->'customer'->>'id' IS NOT NULL"
        )
    }  # fmt: skip
    pii_notes = await db.fetchval(
        "SELECT count(*) FROM scout.bronze_transactions_raw WHERE raw_data ? 'notes'"
    )
    assert customer_ids and pii_notes, "the simulator sent no personal data to test with"
    leaks = []
    for table, column, value in await _silver_text(db):
        if value in customer_ids or PHONE.search(value) or EMAIL.search(value):
            leaks.append((table, column, value))
        leaks.extend(
            (table, column, value) for cid in customer_ids if len(cid) > 4 and cid in value
        )
    assert not leaks, leaks[:5]
    notes = await db.fetchval(
        "SELECT count(*) FROM scout.silver_transactions_cleaned WHERE notes LIKE '%[removed]%'"
    )
    assert notes > 0


TIMESTAMP_COLUMNS = {"created_at", "updated_at", "processed_at", "quarantined_at", "resolved_at"}


async def _snapshot(db: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    snapshot = {}
    for table in ("silver_transactions_cleaned", "silver_transaction_items",
                  "silver_campaign_spend", "silver_device_readings", "silver_quarantine",
                  "silver_lineage"):  # fmt: skip
        columns = [
            r["column_name"] for r in await db.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'scout' "
                "AND table_name = $1 ORDER BY ordinal_position", table)
            if r["column_name"] not in TIMESTAMP_COLUMNS
        ]  # fmt: skip
        rows = await db.fetch(f"SELECT {', '.join(columns)} FROM scout.{table} ORDER BY 1, 2")
        snapshot[table] = [tuple(r) for r in rows]
    return snapshot


async def test_replay_from_bronze_equals_streaming(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, chain: list[ServiceProcess]
) -> None:
    manifest = simulate(settings, tmp_path, "--rate", "1500", "--duration", "3", "--faults",
                        "0.1", "--seed", "9", "--stores", "10")  # fmt: skip
    await until_silver_settles(db, manifest)
    await asyncio.sleep(1)
    streamed = await _snapshot(db)
    assert streamed["silver_transactions_cleaned"]
    # Lose part of silver, then rebuild it from bronze while the services keep running.
    await db.execute("DELETE FROM scout.silver_transactions_cleaned WHERE random() < 0.3")
    await db.execute("DELETE FROM scout.silver_lineage WHERE random() < 0.3")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "replay"],
        env=settings_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replayed" in result.stdout
    replayed = await _snapshot(db)
    for table, rows in streamed.items():
        only_streamed = sorted(set(rows) - set(replayed[table]), key=str)[:3]
        only_replayed = sorted(set(replayed[table]) - set(rows), key=str)[:3]
        assert replayed[table] == rows, (table, only_streamed, only_replayed)


async def test_a_late_product_enriches_the_transactions_that_lacked_it(
    settings: Settings, db: asyncpg.Connection, chain: list[ServiceProcess]
) -> None:
    topics = topics_for(settings)
    store = {"schema": "master.store/1", "store_id": "S0001", "name": "Store", "region": "NCR",
             "city": "Quezon City", "timezone": "Asia/Manila"}  # fmt: skip
    await publish(settings, [(topics.master_stores, b"S0001", json.dumps(store).encode())])
    await wait_for(lambda: db.fetchval("SELECT count(*) = 1 FROM scout.silver_master_stores"),
                   timeout=60)  # fmt: skip
    await publish(settings, [(topics.pos, b"S0001", _pos("SKU-LATE-1", 1, "10.00"))])
    await wait_for(
        lambda: db.fetchval(
            "SELECT count(*) = 1 FROM scout.silver_transaction_items WHERE NOT known_sku"
        ),
        timeout=60,
    )
    tx = await db.fetchrow(
        "SELECT product_category, brand_name FROM scout.silver_transactions_cleaned"
    )
    assert (tx["product_category"], tx["brand_name"]) == ("unknown", None)
    product = {"schema": "master.product/1", "sku": "P-1", "name": "Chips", "brand": "Oishi",
               "category": "snacks", "unit_price": "10.00"}  # fmt: skip
    await publish(settings, [(topics.master_products, b"P-1", json.dumps(product).encode())])
    await wait_for(
        lambda: db.fetchval(
            "SELECT known_sku AND category = 'snacks' AND brand = 'Oishi' "
            "FROM scout.silver_transaction_items"
        ),
        timeout=20,
    )
    tx = await db.fetchrow(
        "SELECT product_category, brand_name, version FROM scout.silver_transactions_cleaned"
    )
    assert (tx["product_category"], tx["brand_name"], tx["version"]) == ("snacks", "Oishi", 1)
    assert await db.fetchval("SELECT count(*) FROM scout.silver_transactions_cleaned") == 1
