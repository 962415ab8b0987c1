"""Registry-framed input on the real stack, with a real Schema Registry (Apicurio).

The registry is the one of ``SCOUT_SCHEMA_REGISTRY_URL`` (default: the local stack's, which
``scout dev up`` starts); the outage test starts its own with :mod:`services.devstack.registry`
on spare ports, so it can stop it without touching anyone else's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from confluent_kafka.schema_registry import Schema
from pydantic import SecretStr

from services.common import registered_schemas, registry
from services.common.kafka import create_topics, delete_topics_with_prefix, topics_for
from services.common.settings import SERVICE_ROLES, Settings
from services.devstack import registry as devstack_registry
from tests.conftest import Stack
from tests.integration.test_gold import until_gold_settles
from tests.integration.test_silver import simulate, until_silver_settles
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

SIM = ("--days", "3", "--duration", "0", "--stores", "8", "--faults", "0.05", "--seed", "15",
       "--start", "2026-11-25T10:00:00+08:00")  # fmt: skip
PROCESS_COLUMNS = {"created_at", "updated_at", "processed_at", "quarantined_at", "resolved_at",
                   "bronze_id", "kafka_timestamp"}  # fmt: skip
COMPARED = ("silver_transactions_cleaned", "silver_transaction_items", "silver_campaign_spend",
            "silver_device_readings", "silver_quarantine", "gold_business_metrics",
            "gold_product_performance")  # fmt: skip


@pytest.fixture
def registry_url(settings: Settings) -> str:
    url = settings.registry_url()
    assert devstack_registry.healthy(url), (
        f"no schema registry at {url}: run `scout dev up` (it starts one) or set "
        "SCOUT_SCHEMA_REGISTRY_URL"
    )
    return url


async def _other_settings(
    stack: Stack, template_db: str, tmp_path: Path, base: Settings
) -> tuple[Settings, str]:
    name = f"scout_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(stack.url_for("postgres"))
    try:
        for attempt in range(20):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
                break
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.1 * (attempt + 1))
    finally:
        await admin.close()
    # Every login of the base settings, pointed at the other database.
    logins = {
        f"database_url_{service}": SecretStr(
            urlunsplit(urlsplit(base.database_url_for(service))._replace(path=f"/{name}"))
        )
        for service in SERVICE_ROLES
    }
    other = base.model_copy(
        update={
            **logins,
            "database_url": SecretStr(stack.url_for(name)),
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "state_dir": tmp_path / "state-plain",
        }
    )
    await create_topics(other)
    return other, name


async def _drop(stack: Stack, name: str) -> None:
    admin = await asyncpg.connect(stack.url_for("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _snapshot(db: asyncpg.Connection) -> dict[str, Counter[tuple[Any, ...]]]:
    """Silver and gold as multisets of rows, without per-run ids and processing times."""
    out = {}
    for table in COMPARED:
        columns = [
            r["column_name"] for r in await db.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'scout' "
                "AND table_name = $1 ORDER BY ordinal_position", table)
            if r["column_name"] not in PROCESS_COLUMNS
        ]  # fmt: skip
        rows = await db.fetch(f"SELECT {', '.join(columns)} FROM scout.{table}")
        out[table] = Counter(tuple(r) for r in rows)
    return out


async def _run_chain(settings: Settings, tmp_path: Path, fmt: str) -> dict[str, Any]:
    services = start_all(
        ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold")
    )
    try:
        manifest = simulate(settings, tmp_path, *SIM, "--format", fmt)
        db = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            await until_silver_settles(db, manifest, timeout=180)
            await until_gold_settles(db, timeout=120)
            await asyncio.sleep(1)
            snapshot = await _snapshot(db)
            frames = await db.fetchval(
                "SELECT count(*) FROM scout.bronze_transactions_raw "
                "WHERE registry_schema_id IS NOT NULL"
            )
            errors = await db.fetch("SELECT reason FROM scout.bronze_error_log")
        finally:
            await db.close()
    finally:
        stop_all(services)
    return {"manifest": manifest, "snapshot": snapshot, "frames": frames,
            "errors": Counter(r["reason"] for r in errors)}  # fmt: skip


async def test_framed_json_schema_and_avro_reach_silver_and_gold_like_plain_json(
    settings: Settings, registry_url: str, stack: Stack, template_db: str, tmp_path: Path
) -> None:
    plain_settings, plain_db = await _other_settings(stack, template_db, tmp_path, settings)
    try:
        plain = await _run_chain(plain_settings, tmp_path, "json")
    finally:
        await delete_topics_with_prefix(plain_settings, plain_settings.topic_prefix)
        await _drop(stack, plain_db)
    mixed = await _run_chain(settings, tmp_path, "json,json-sr,avro")

    formats = mixed["manifest"]["formats"]
    assert formats["json-sr"] > 50 and formats["avro"] > 50, formats
    assert mixed["frames"] > 100, "framed records kept their schema id in bronze"
    assert mixed["errors"] == plain["errors"], "only the simulated faults in the error log"
    for table, rows in plain["snapshot"].items():
        assert rows, table
        only_plain = list((rows - mixed["snapshot"][table]).elements())[:3]
        only_mixed = list((mixed["snapshot"][table] - rows).elements())[:3]
        assert mixed["snapshot"][table] == rows, (table, only_plain, only_mixed)


async def test_frames_are_kept_exactly_and_bad_ones_go_to_the_error_log(
    settings: Settings, registry_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    topics = topics_for(settings)
    client = registry.client(registry_url)
    items = [p for p in registered_schemas.published(topics) if p.kind == "iot.reading/1"]
    outcomes = await registered_schemas.register_all(client, items)
    await client.aclose()
    ids = {o.subject: o.schema_id for o in outcomes}
    json_id = ids[registry.subject(topics.iot, "iot.reading/1", registry.JSON_SCHEMA)]
    avro_id = ids[registry.subject(topics.iot, "iot.reading/1", registry.AVRO)]
    assert json_id is not None and avro_id is not None
    # A JSON Schema frame without a `schema` field: the writer schema's title names the kind.
    reading = {"device_id": "D-1", "store_id": "S0001", "kind": "footfall", "value": 3,
               "occurred_at": "2026-11-25T10:15:00+08:00"}  # fmt: skip
    good = registry.frame(json_id, json.dumps(reading).encode())
    unknown = registry.frame(2_000_000_000, b'{"a": 1}')
    corrupt_avro = registry.frame(avro_id, b"\xff\xff\xff")
    truncated = b"\x00\x00\x01"
    records = [(topics.iot, b"k", v) for v in (good, unknown, corrupt_avro, truncated)]
    bronze = ServiceProcess("bronze", settings, tmp_path).start()
    try:
        await publish(settings, records)

        async def landed() -> bool:
            rows = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
            errors = await db.fetchval("SELECT count(*) FROM scout.bronze_error_log")
            return bool(rows == 1 and errors == 3)

        await wait_for(landed, timeout=60, context=bronze.log_tail)
    finally:
        assert bronze.stop() == 0, bronze.log_tail()
    row = await db.fetchrow(
        "SELECT raw_data::text AS raw, schema_name, registry_schema_id, registry_payload "
        "FROM scout.bronze_transactions_raw"
    )
    assert json.loads(row["raw"]) == reading
    assert row["schema_name"] == "iot.reading/1"
    assert registry.frame(row["registry_schema_id"], row["registry_payload"]) == good
    reasons = {r["reason"]: r for r in await db.fetch(
        "SELECT reason, raw_bytes, detail FROM scout.bronze_error_log")}  # fmt: skip
    assert set(reasons) == {"unknown_schema_id", "undecodable_frame"}
    assert reasons["unknown_schema_id"]["raw_bytes"] == unknown
    assert "2000000000" in reasons["unknown_schema_id"]["detail"]
    raw_errors = {bytes(r["raw_bytes"]) for r in await db.fetch(
        "SELECT raw_bytes FROM scout.bronze_error_log")}  # fmt: skip
    assert raw_errors == {unknown, corrupt_avro, truncated}


def _scout(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=settings_env(settings),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_incompatible_schema_change_is_refused_at_registration(
    settings: Settings, registry_url: str, tmp_path: Path
) -> None:
    first = _scout(settings, "schemas", "register")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "12/12 subjects ok" in first.stdout
    assert _scout(settings, "schemas", "check").returncode == 0
    pos = f"{settings.topic_prefix}pos.transactions-pos.transaction.v1"
    current = json.loads(registered_schemas.schema_text("pos.transaction/1", registry.JSON_SCHEMA))
    # BACKWARD: a new reader may not require a field old records lack.
    breaking = json.loads(json.dumps(current))
    breaking["properties"]["loyalty_tier"] = {"type": "string"}
    breaking["required"].append("loyalty_tier")
    breaking_file = tmp_path / "breaking.json"
    breaking_file.write_text(json.dumps(breaking))
    check = _scout(settings, "schemas", "check", "--schema", f"pos.transaction/1={breaking_file}")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"INCOMPATIBLE {pos} " in check.stderr and f"{pos}.avro" in check.stderr
    refused = _scout(settings, "schemas", "register", "--schema",
                     f"pos.transaction/1={breaking_file}")  # fmt: skip
    assert refused.returncode == 1
    assert f"REFUSED      {pos} " in refused.stderr and "409" in refused.stderr, refused.stderr
    # Widening is compatible (every old record is still valid): a new version.
    optional = json.loads(json.dumps(current))
    del optional["properties"]["store_id"]["maxLength"]
    optional_file = tmp_path / "widened.json"
    optional_file.write_text(json.dumps(optional))
    ok = _scout(settings, "schemas", "register", "--schema", f"pos.transaction/1={optional_file}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    client = registry.client(registry_url)
    try:
        assert len(await client.get_versions(pos)) == 2
        assert await client.get_compatibility(pos) == "BACKWARD"
        assert not await client.test_compatibility(pos, Schema(json.dumps(breaking), "JSON"))
    finally:
        await client.aclose()


@pytest.fixture
async def own_registry(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """A registry of this test only (devstack module, own state dir and ports)."""
    port = free_ports(2)  # the management interface listens on port + 1
    reg = settings.model_copy(
        update={"registry_port": port, "state_dir": tmp_path / "registry-state"}
    )
    devstack_registry.up(reg)
    yield reg.model_copy(update={"schema_registry_url": devstack_registry.local_url(reg)})
    devstack_registry.down(reg)


async def test_registry_outage_delays_bronze_but_loses_nothing(
    own_registry: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = own_registry
    url = settings.registry_url()
    topics = topics_for(settings)
    items = registered_schemas.published(topics)
    before = await _register(url, items)
    pos_avro = before[registry.subject(topics.pos, "pos.transaction/2", registry.AVRO)]
    assert pos_avro is not None
    services = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver"))
    try:
        await _master(settings)
        # The registry goes away before bronze has looked any schema up.
        assert devstack_registry.down(settings)
        framed = [_avro_pos(pos_avro, f"E-{i}") for i in range(20)]
        plain = [_plain_pos(f"P-{i}") for i in range(20)]
        await publish(settings, [(topics.pos, b"S0001", v) for v in framed + plain])
        await asyncio.sleep(8)
        assert await db.fetchval("SELECT count(*) FROM scout.bronze_error_log") == 0
        assert await db.fetchval(
            "SELECT count(*) FROM scout.bronze_transactions_raw WHERE registry_schema_id "
            "IS NOT NULL") == 0, "nothing framed can land while the registry is away"  # fmt: skip
        log = services[0].log_tail(200)
        assert "schema registry lookup failed" in log, log
        # Back, with its storage: the ids the frames carry resolve again.
        devstack_registry.up(settings)

        seen: dict[str, Any] = {}

        async def all_in_silver() -> bool:
            seen["bronze"] = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
            seen["quarantine"] = await db.fetch("SELECT rule, detail FROM scout.silver_quarantine")
            seen["framed"] = await db.fetchval(
                "SELECT count(*) FROM scout.bronze_transactions_raw WHERE registry_schema_id "
                "IS NOT NULL"
            )
            seen["silver"] = await db.fetch(
                "SELECT left(event_id, 2) AS p, count(*) FROM scout.silver_transactions_cleaned "
                "GROUP BY 1"
            )
            n = await db.fetchval(
                "SELECT count(*) FROM scout.silver_transactions_cleaned WHERE event_id LIKE 'E-%'"
                " OR event_id LIKE 'P-%'"
            )
            return bool(n == 40)

        def context() -> str:
            return f"{seen}\n{services[0].log_tail(40)}\n{services[1].log_tail(40)}"

        await wait_for(all_in_silver, timeout=120, context=context)
    finally:
        stop_all(services)
    assert await db.fetchval("SELECT count(*) FROM scout.bronze_error_log") == 0
    assert await db.fetchval("SELECT count(*) FROM scout.silver_quarantine") == 0
    framed_rows = await db.fetchval(
        "SELECT count(*) FROM scout.bronze_transactions_raw WHERE registry_schema_id = $1",
        pos_avro,
    )
    assert framed_rows == 20
    assert await _register(url, items) == before, "registering again changes nothing"


async def _register(url: str, items: list[registered_schemas.Published]) -> dict[str, int | None]:
    client = registry.client(url)
    try:
        return {
            o.subject: o.schema_id for o in await registered_schemas.register_all(client, items)
        }
    finally:
        await client.aclose()


def _pos_body(event_id: str) -> dict[str, Any]:
    return {"schema": "pos.transaction/2", "event_id": event_id, "store_id": "S0001",
            "occurred_at": "2026-11-20T10:15:00+08:00", "currency": "PHP",
            "gross_amount": "45.00", "discount_amount": "5.00",
            "items": [{"sku": "P-1", "qty": 2, "unit_price": "22.50"}]}  # fmt: skip


def _plain_pos(event_id: str) -> bytes:
    return json.dumps(_pos_body(event_id)).encode()


def _avro_pos(schema_id: int, event_id: str) -> bytes:
    import io

    import fastavro

    schema = fastavro.parse_schema(
        json.loads(registered_schemas.schema_text("pos.transaction/2", registry.AVRO))
    )
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, _pos_body(event_id))
    return registry.frame(schema_id, out.getvalue())


async def _master(settings: Settings) -> None:
    topics = topics_for(settings)
    store = {"schema": "master.store/1", "store_id": "S0001", "name": "Store", "region": "NCR",
             "city": "Quezon City", "timezone": "Asia/Manila"}  # fmt: skip
    product = {"schema": "master.product/1", "sku": "P-1", "name": "Chips", "brand": "Oishi",
               "category": "snacks", "unit_price": "22.50"}  # fmt: skip
    await publish(
        settings,
        [
            (topics.master_stores, b"S0001", json.dumps(store).encode()),
            (topics.master_products, b"P-1", json.dumps(product).encode()),
        ],
    )
