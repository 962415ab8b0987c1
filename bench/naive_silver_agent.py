"""Baseline of ``bench/silver.py``: a naive Faust silver agent, one upsert per record.

What a first implementation would write: iterate the bronze-landed stream, decode each
message with ``decode_landed``, and for every record run the real refinement (the same
``Refiner``, expectations, enrichment, pseudonymisation) and write its rows with
``INSERT … ON CONFLICT`` in a transaction of its own (transaction row with the same
newest-wins rule, its line items, spend / reading / quarantine row, lineage). Master data is
loaded once at start. No batching, no staging tables, no handoff to gold.

Run as a process: ``python -m bench.naive_silver_agent`` with the usual SCOUT_* environment.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import faust

from services.common.handoff import decode_landed
from services.common.kafka import make_app, topics_for
from services.common.settings import Settings, load_settings
from services.silver_enricher import repo
from services.silver_enricher.app import pii_key
from services.silver_enricher.expectations import DEFAULT_EXPECTATIONS, Context
from services.silver_enricher.transform import Refined, Refiner

_COLS = ", ".join(repo.TX_COLUMNS)
_PARAMS = ", ".join(f"${i}" for i in range(1, len(repo.TX_COLUMNS) + 1))
_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in repo.TX_COLUMNS[1:])
UPSERT_TRANSACTION = f"""
INSERT INTO scout.silver_transactions_cleaned AS t ({_COLS}) VALUES ({_PARAMS})
ON CONFLICT (transaction_id) DO UPDATE SET {_UPDATE}, updated_at = now()
WHERE (t.version, t.kafka_timestamp, t.bronze_id::text)
    < (EXCLUDED.version, EXCLUDED.kafka_timestamp, EXCLUDED.bronze_id::text)
RETURNING transaction_id
"""
DELETE_ITEMS = "DELETE FROM scout.silver_transaction_items WHERE transaction_id = $1"
INSERT_ITEM = f"""
INSERT INTO scout.silver_transaction_items ({", ".join(repo.ITEM_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(repo.ITEM_COLUMNS) + 1))})
"""


async def write_one(conn: asyncpg.Connection, refined: Refined) -> None:
    """The rows of one record, each with a single-row upsert (same SQL rules as silver)."""
    for tx in refined.transactions.values():
        if await conn.fetchval(UPSERT_TRANSACTION, *tx.row) is not None:
            await conn.execute(DELETE_ITEMS, tx.transaction_id)
            for item in tx.items:
                await conn.execute(INSERT_ITEM, *item)
    for spend in refined.spends.values():
        await conn.execute(repo.MERGE_SPEND, *repo.columns([spend], 9))
    for reading in refined.readings.values():
        await conn.execute(repo.MERGE_READINGS, *repo.columns([reading], 7))
    for row in refined.quarantine:
        await conn.execute(repo.MERGE_QUARANTINE, *repo.columns([row], 9))
    for lineage in refined.lineage:
        await conn.execute(repo.MERGE_LINEAGE, *repo.columns([lineage], 3))


def build_app(settings: Settings) -> faust.App:
    app = make_app(settings, "naive-silver", web_enabled=False)
    landed = app.topic(topics_for(settings).bronze_landed, value_type=bytes, key_type=bytes)
    refiner = Refiner(pii_key(settings), DEFAULT_EXPECTATIONS)
    skew = timedelta(seconds=settings.allowed_clock_skew_s)
    state: dict[str, Any] = {}

    async def connection() -> asyncpg.Connection:
        if "conn" not in state:
            conn = await asyncpg.connect(
                settings.database_url.get_secret_value(),
                server_settings={"role": settings.db_role_silver, "timezone": "UTC"},
            )
            state["conn"] = conn
            state["stores"] = await repo.load_stores(conn)
            state["products"] = await repo.load_products(conn)
        return state["conn"]

    @app.agent(landed, name="naive-silver-landed")
    async def naive(stream: Any) -> None:
        async for event in stream.events():
            conn = await connection()
            stores, products = state["stores"], state["products"]
            for record in decode_landed(event.message.value):
                ctx = Context(datetime.now(UTC), skew, stores, products)
                refined = refiner.refine([record], stores, products, ctx)
                async with conn.transaction():
                    await write_one(conn, refined)

    return app


def main() -> None:
    settings = load_settings()
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = build_app(settings)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
