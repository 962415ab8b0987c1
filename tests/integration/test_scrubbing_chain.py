"""The scrubber corpus through the real chain: every free-text field of every record kind
carries personal data; afterwards no silver, gold or platinum text column holds any of it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.common.kafka import topics_for
from services.common.settings import Settings
from tests.support import ServiceProcess, publish, settings_env, start_all, stop_all, wait_for
from tests.unit.test_pii import CORPUS

pytestmark = pytest.mark.integration


@pytest.fixture
async def services(settings: Settings, tmp_path: Path) -> AsyncIterator[list[ServiceProcess]]:
    started = start_all(ServiceProcess(n, settings, tmp_path) for n in ("bronze", "silver", "gold"))
    yield started
    stop_all(started)


def _secret(i: int) -> str:
    return CORPUS[i % len(CORPUS)][1]


def _records(settings: Settings) -> list[tuple[str, bytes | None, bytes]]:
    topics = topics_for(settings)
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=3, microsecond=0)
    store = {"schema": "master.store/1", "store_id": "S0001", "region": "NCR",
             "name": f"Tindahan ni Aling Nena {_secret(1)}", "city": "Quezon City",
             "timezone": "Asia/Manila"}  # fmt: skip
    product = {"schema": "master.product/1", "sku": "P-1", "name": f"Chips {_secret(34)}",
               "brand": "Oishi", "category": "snacks", "unit_price": "10.00"}  # fmt: skip
    out: list[tuple[str, bytes | None, bytes]] = [
        (topics.master_stores, b"S0001", json.dumps(store).encode()),
        (topics.master_products, b"P-1", json.dumps(product).encode()),
    ]
    for i, (text, _) in enumerate(CORPUS):
        tx = {
            "schema": "pos.transaction/1", "event_id": f"E-{i}", "store_id": "S0001",
            "terminal_id": f"T1 {_secret(i + 3)}",
            "occurred_at": (day + timedelta(minutes=i)).isoformat(),
            "total_amount": "20.00", "payment_method": f"cash {_secret(i + 7)}",
            "customer": {"id": f"C-{i % 5}", "type": "regular", "phone": _secret(i + 1),
                         "email": "juan.dc@example.com"},
            "items": [{"sku": "P-1", "qty": 2, "unit_price": "10.00"}],
            "campaign_id": None, "notes": text,
        }  # fmt: skip
        out.append((topics.pos, b"S0001", json.dumps(tx).encode()))
    batch = {
        "schema": "api.batch/1", "batch_id": f"B {_secret(11)}", "partner": f"grab {_secret(12)}",
        "sent_at": day.isoformat(),
        "records": [
            {"type": "campaign_spend", "campaign_id": "CMP-7", "store_id": "S0001",
             "date": day.date().isoformat(), "spend": 100, "channel": f"sms {_secret(13)}"},
            # quarantined (negative amount): its detail, batch and partner must be clean too
            {"type": "transaction", "event_id": "BAD-1", "store_id": "S0001",
             "occurred_at": day.isoformat(), "total_amount": -5, "notes": _secret(14),
             "items": [{"sku": "P-1", "qty": 1, "unit_price": -5}]},
        ],
    }  # fmt: skip
    out.append((topics.api, b"B1", json.dumps(batch).encode()))
    return out


async def _text_values(db: asyncpg.Connection) -> list[tuple[str, str, str]]:
    columns = await db.fetch(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'scout' AND t.table_type IN ('BASE TABLE', 'VIEW') "
        "AND (c.table_name LIKE 'silver%' OR c.table_name LIKE 'gold%' "
        "OR c.table_name LIKE 'platinum%') AND c.data_type IN ('text', 'character varying')"
    )
    values = []
    for c in columns:
        for r in await db.fetch(
            f'SELECT DISTINCT "{c["column_name"]}" AS v FROM scout."{c["table_name"]}" '
            f'WHERE "{c["column_name"]}" IS NOT NULL'
        ):
            values.append((c["table_name"], c["column_name"], str(r["v"])))
    return values


async def test_corpus_leaves_nothing_in_any_text_column(
    settings: Settings, db: asyncpg.Connection, services: list[ServiceProcess]
) -> None:
    records = _records(settings)
    await publish(settings, records[:2])
    await wait_for(lambda: db.fetchval("SELECT count(*) = 1 FROM scout.silver_master_products"),
                   timeout=60)  # fmt: skip
    await publish(settings, records[2:])
    await wait_for(
        lambda: db.fetchval("SELECT count(*) = $1 FROM scout.silver_lineage", len(CORPUS) + 2),
        timeout=90,
    )
    await wait_for(
        lambda: db.fetchval(
            "SELECT coalesce(sum(transaction_count), 0) = $1 FROM scout.gold_business_metrics",
            len(CORPUS),
        ),
        timeout=90,
    )
    platinum = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.cli", "platinum", "run", "--now"],
        env=settings_env(settings), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert platinum.returncode == 0, platinum.stderr[-2000:]
    assert await db.fetchval("SELECT count(*) FROM scout.silver_quarantine") == 1
    assert await db.fetchval("SELECT count(*) FROM scout.silver_campaign_spend") == 1

    values = await _text_values(db)
    tables = {t for t, _, _ in values}
    assert {"silver_transactions_cleaned", "silver_master_stores", "silver_quarantine",
            "silver_campaign_spend", "gold_product_performance"} <= tables  # fmt: skip
    secrets = {s for _, s in CORPUS} | {"juan.dc@example.com"}
    leaks = [(t, c, v) for t, c, v in values if any(s in v for s in secrets)]
    assert not leaks, leaks[:5]
    pattern = re.compile(r"@|\(at\)|\[at\]|\d(?:\D{0,3}\d){6,}", re.I)
    legitimate = re.compile(  # dates, times, UUIDs: what the scrubber keeps on purpose
        r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"
        r"|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
    )
    suspicious = [(t, c, v) for t, c, v in values
                  if c != "customer_key" and pattern.search(legitimate.sub(" ", v))]  # fmt: skip
    assert not suspicious, suspicious[:5]
    notes = {
        r["notes"] for r in await db.fetch("SELECT notes FROM scout.silver_transactions_cleaned")
    }
    assert len(notes) > 1 and all("[removed]" in n for n in notes)
