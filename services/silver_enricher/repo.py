"""Silver SQL: one transaction per batch; COPY into staging tables, then set-based merges.

Transactions merge with "newest wins" on (version, kafka_timestamp, bronze_id), so any
arrival order of versions — and any redelivery — converges to the same row. (Gold learns
what changed from the triggers on these tables, schemas/sql/0040_gold_incremental.sql.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.events import ProductRecord, StoreRecord
from services.silver_enricher.transform import Refined

TX_COLUMNS = (
    "transaction_id", "source_system", "event_id", "version", "bronze_id", "kafka_timestamp",
    "store_id", "transaction_date", "amount", "gross_amount", "discount_amount", "currency",
    "product_category", "brand_name", "customer_type", "customer_key", "payment_method",
    "terminal_id", "campaign_id", "partner", "batch_id", "notes", "item_count", "unit_count",
    "region", "city", "timezone", "local_date", "day_of_week", "is_weekend", "local_hour",
)  # fmt: skip
ITEM_COLUMNS = (
    "transaction_id", "line_no", "sku", "qty", "unit_price", "line_amount", "brand", "category",
    "known_sku", "store_id", "local_date",
)  # fmt: skip
# Money travels to the stages as integer cents (transform.cents) and becomes numeric(…, 2)
# again in the merge: asyncpg encodes an integer in a tenth of the time of a decimal, which
# was most of the stages' COPY (bench/results/chain.md, 2026-12-01 fifth session).
TX_CENTS = ("amount", "gross_amount", "discount_amount")
ITEM_CENTS = ("unit_price", "line_amount")
TX_STAGE = "silver_tx_stage"
ITEM_STAGE = "silver_item_stage"


def _stage(name: str, table: str, columns: Sequence[str], in_cents: Sequence[str]) -> str:
    """A temporary stage with the table's columns, money as ``bigint`` cents."""
    select = ", ".join(f"NULL::bigint AS {c}" if c in in_cents else c for c in columns)
    return (f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "
            f"SELECT {select} FROM scout.{table} WITH NO DATA;")  # fmt: skip


def _from_stage(columns: Sequence[str], in_cents: Sequence[str], alias: str = "") -> str:
    """The stage's columns as the table's: cents times 0.01 is numeric with two places."""
    return ", ".join(f"{alias}{c} * 0.01" if c in in_cents else f"{alias}{c}" for c in columns)


_TX_COLS = ", ".join(TX_COLUMNS)
_TX_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in TX_COLUMNS[1:])
CREATE_STAGES = "\n".join((
    _stage(TX_STAGE, "silver_transactions_cleaned", TX_COLUMNS, TX_CENTS),
    _stage(ITEM_STAGE, "silver_transaction_items", ITEM_COLUMNS, ITEM_CENTS),
))  # fmt: skip


def _merge_transactions(newer: str) -> str:
    return f"""
INSERT INTO scout.silver_transactions_cleaned AS t ({_TX_COLS})
SELECT {_from_stage(TX_COLUMNS, TX_CENTS)} FROM {TX_STAGE}
ON CONFLICT (transaction_id) DO UPDATE SET {_TX_UPDATE}, updated_at = now()
WHERE (t.version, t.kafka_timestamp, t.bronze_id::text)
    {newer} (EXCLUDED.version, EXCLUDED.kafka_timestamp, EXCLUDED.bronze_id::text)
RETURNING transaction_id, xmax::text <> '0' AS replaced
"""


# Streaming and replay: only a newer version (or a later copy of it) replaces a row.
MERGE_TRANSACTIONS = _merge_transactions("<")
# Re-enrichment after late master data: the same record again may replace its own row.
REENRICH_TRANSACTIONS = _merge_transactions("<=")
# Two statements: a DELETE and an INSERT in one statement's CTEs would see the same snapshot
# and collide on the primary key.
DELETE_ITEMS = "DELETE FROM scout.silver_transaction_items WHERE transaction_id = ANY($1::uuid[])"
INSERT_ITEMS = f"""
INSERT INTO scout.silver_transaction_items ({", ".join(ITEM_COLUMNS)})
SELECT {_from_stage(ITEM_COLUMNS, ITEM_CENTS, "s.")}
FROM {ITEM_STAGE} s JOIN unnest($1::uuid[]) AS m(transaction_id) USING (transaction_id)
"""
MERGE_SPEND = """
INSERT INTO scout.silver_campaign_spend AS s
    (campaign_id, store_id, spend_date, channel, spend, partner, batch_id, bronze_id,
     kafka_timestamp)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::numeric[], $6::text[],
                     $7::text[], $8::uuid[], $9::timestamptz[])
ON CONFLICT (campaign_id, store_id, spend_date, channel) DO UPDATE
SET spend = EXCLUDED.spend, partner = EXCLUDED.partner, batch_id = EXCLUDED.batch_id,
    bronze_id = EXCLUDED.bronze_id, kafka_timestamp = EXCLUDED.kafka_timestamp,
    updated_at = now()
WHERE (s.kafka_timestamp, s.bronze_id::text) < (EXCLUDED.kafka_timestamp, EXCLUDED.bronze_id::text)
"""
MERGE_READINGS = """
INSERT INTO scout.silver_device_readings AS r
    (device_id, kind, occurred_at, store_id, value, local_date, bronze_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::numeric[],
                     $6::date[], $7::uuid[])
ON CONFLICT (device_id, kind, occurred_at) DO UPDATE
SET store_id = EXCLUDED.store_id, value = EXCLUDED.value, local_date = EXCLUDED.local_date,
    bronze_id = EXCLUDED.bronze_id, updated_at = now()
WHERE r.bronze_id::text < EXCLUDED.bronze_id::text
"""
MERGE_QUARANTINE = """
INSERT INTO scout.silver_quarantine AS q
    (bronze_id, source_system, rule, field, detail, store_id, batch_id, partner, kafka_timestamp)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::timestamptz[])
ON CONFLICT (bronze_id) DO UPDATE
SET rule = EXCLUDED.rule, field = EXCLUDED.field, detail = EXCLUDED.detail,
    store_id = EXCLUDED.store_id, resolved_at = NULL
WHERE q.rule IS DISTINCT FROM EXCLUDED.rule OR q.resolved_at IS NOT NULL
"""
RESOLVE_QUARANTINE = """
UPDATE scout.silver_quarantine SET resolved_at = now()
WHERE bronze_id = ANY($1::uuid[]) AND resolved_at IS NULL
"""
MERGE_LINEAGE = """
INSERT INTO scout.silver_lineage AS l (bronze_id, target, transaction_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[])
ON CONFLICT (bronze_id) DO UPDATE
SET target = EXCLUDED.target, transaction_id = EXCLUDED.transaction_id, processed_at = now()
WHERE (l.target, l.transaction_id) IS DISTINCT FROM (EXCLUDED.target, EXCLUDED.transaction_id)
"""
UPSERT_STORES = """
INSERT INTO scout.silver_master_stores AS s (store_id, name, region, city, timezone, opened_on)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[])
ON CONFLICT (store_id) DO UPDATE
SET name = EXCLUDED.name, region = EXCLUDED.region, city = EXCLUDED.city,
    timezone = EXCLUDED.timezone, opened_on = EXCLUDED.opened_on, updated_at = now()
"""
UPSERT_PRODUCTS = """
INSERT INTO scout.silver_master_products AS p (sku, name, brand, category, unit_price)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[])
ON CONFLICT (sku) DO UPDATE
SET name = EXCLUDED.name, brand = EXCLUDED.brand, category = EXCLUDED.category,
    unit_price = EXCLUDED.unit_price, updated_at = now()
"""
SELECT_STORES = (
    "SELECT store_id, name, region, city, timezone, opened_on FROM scout.silver_master_stores"
)
SELECT_STORES_BY_ID = SELECT_STORES + " WHERE store_id = ANY($1::text[])"
SELECT_PRODUCTS = "SELECT sku, name, brand, category, unit_price FROM scout.silver_master_products"
SELECT_PRODUCTS_BY_SKU = SELECT_PRODUCTS + " WHERE sku = ANY($1::text[])"
# Bronze rows to (re)process, with what silver needs to rebuild their DecodedRecord.
BRONZE_RECORD = """
SELECT b.id::text AS bronze_id, b.source_system, b.raw_data::text AS raw, b.kafka_timestamp,
       b.batch_id, ib.partner, b.schema_name AS kind
FROM scout.bronze_transactions_raw b
LEFT JOIN scout.bronze_ingestion_batches ib
       ON b.source_system = 'api' AND ib.kafka_topic = b.kafka_topic
      AND ib.kafka_partition = b.kafka_partition AND ib.kafka_offset = b.kafka_offset
"""
OPEN_QUARANTINE = (
    BRONZE_RECORD
    + """JOIN scout.silver_quarantine q ON q.bronze_id = b.id
WHERE q.resolved_at IS NULL AND ($1::text IS NULL OR q.rule = $1)
  AND ($2::text[] IS NULL OR q.store_id = ANY($2::text[]))
ORDER BY b.kafka_timestamp, b.kafka_topic, b.kafka_partition, b.kafka_offset, b.record_index
"""
)
# Current silver transactions with a line item whose SKU was unknown: the products in $1 have
# arrived since, so their records are enriched again.
UNENRICHED_BY_SKU = (
    BRONZE_RECORD
    + """JOIN scout.silver_transactions_cleaned t ON t.bronze_id = b.id
WHERE t.transaction_id IN (SELECT transaction_id FROM scout.silver_transaction_items
                           WHERE NOT known_sku AND sku = ANY($1::text[]))
"""
)
REPLAY_BRONZE = (
    BRONZE_RECORD
    + """WHERE b.kafka_timestamp >= $1 AND b.source_system = ANY($2::text[])
ORDER BY b.kafka_timestamp, b.kafka_topic, b.kafka_partition, b.kafka_offset, b.record_index
"""
)


@dataclass(frozen=True)
class MergeResult:
    changed_transactions: int
    merged_ids: list[uuid.UUID]  # transactions inserted or replaced by a newer version


async def write(
    conn: asyncpg.Connection, refined: Refined, *, reenrich: bool = False
) -> MergeResult:
    """Merge one batch in the caller's transaction (gold learns what changed from the
    capture triggers).
    ``reenrich``: the records were merged before and are processed again because master
    data they lacked has arrived, so a row may be replaced by the same record."""
    changed = 0
    merged_ids: list[uuid.UUID] = []
    if refined.transactions:
        await conn.execute(CREATE_STAGES)
        # In one order (by id) for every worker: two batches that merge the same transactions
        # at once (two workers after a rebalance, a replay beside the service) lock their rows
        # in the same order and wait for each other instead of deadlocking.
        txs = sorted(refined.transactions.values(), key=lambda t: t.transaction_id)
        await conn.copy_records_to_table(TX_STAGE, records=[t.row for t in txs], columns=TX_COLUMNS)
        await conn.copy_records_to_table(
            ITEM_STAGE, records=[i for t in txs for i in t.items], columns=ITEM_COLUMNS
        )
        merged = await conn.fetch(REENRICH_TRANSACTIONS if reenrich else MERGE_TRANSACTIONS)
        changed = len(merged)
        merged_ids = [row["transaction_id"] for row in merged]
        # Replaced rows are told by the merge itself (xmax is set on an updated row), not by a
        # read before it: another worker may have inserted the row in between, and its items
        # must go too.
        replaced = [row["transaction_id"] for row in merged if row["replaced"]]
        if replaced:  # new transactions have no items yet
            await conn.execute(DELETE_ITEMS, replaced)
        if merged_ids:
            await conn.execute(INSERT_ITEMS, merged_ids)
    if refined.spends:
        await conn.execute(MERGE_SPEND, *columns(refined.spends.values(), 9))
    if refined.readings:
        await conn.execute(MERGE_READINGS, *columns(refined.readings.values(), 7))
    if refined.quarantine:
        await conn.execute(MERGE_QUARANTINE, *columns(refined.quarantine, 9))
    accepted = [bronze_id for bronze_id, target, _ in refined.lineage
                if target != "silver_quarantine"]  # fmt: skip
    if accepted:
        await conn.execute(RESOLVE_QUARANTINE, accepted)
    if refined.lineage:
        await conn.execute(MERGE_LINEAGE, *columns(refined.lineage, 3))
    return MergeResult(changed, merged_ids)


def columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Row tuples → one list per column, for ``unnest($1, $2, …)``."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for i, value in enumerate(row):
            columns[i].append(value)
    return columns


async def upsert_stores(conn: asyncpg.Connection, stores: Sequence[StoreRecord]) -> None:
    await conn.execute(
        UPSERT_STORES,
        *columns(((s.store_id, s.name, s.region, s.city, s.timezone, s.opened_on)
                   for s in stores), 6),
    )  # fmt: skip


async def upsert_products(conn: asyncpg.Connection, products: Sequence[ProductRecord]) -> None:
    await conn.execute(
        UPSERT_PRODUCTS,
        *columns(((p.sku, p.name, p.brand, p.category, p.unit_price) for p in products), 5),
    )


# Master rows are silver's own, validated on the way in (parse_master) and then scrubbed: they
# are read back as they are, not judged again. A scrubbed name may be longer than the input
# domain allows (an e-mail address of 6 characters becomes "[removed]"): judged again, it
# failed every reload of master data, and silver stopped.


async def load_stores(
    conn: asyncpg.Connection, store_ids: Sequence[str] | None = None
) -> dict[str, StoreRecord]:
    rows = await (
        conn.fetch(SELECT_STORES_BY_ID, list(store_ids)) if store_ids is not None
        else conn.fetch(SELECT_STORES)
    )  # fmt: skip
    return {r["store_id"]: StoreRecord.model_construct(**dict(r)) for r in rows}


async def load_products(
    conn: asyncpg.Connection, skus: Sequence[str] | None = None
) -> dict[str, ProductRecord]:
    rows = await (
        conn.fetch(SELECT_PRODUCTS_BY_SKU, list(skus)) if skus is not None
        else conn.fetch(SELECT_PRODUCTS)
    )  # fmt: skip
    return {r["sku"]: ProductRecord.model_construct(**dict(r)) for r in rows}


@dataclass(frozen=True)
class BronzeRecordRow:
    bronze_id: str
    source_system: str
    raw: str
    kafka_timestamp: datetime
    batch_id: str | None
    partner: str | None
    kind: str | None = None  # bronze's schema_name: the kind a framed record's schema names


def bronze_record(row: asyncpg.Record) -> BronzeRecordRow:
    return BronzeRecordRow(row["bronze_id"], row["source_system"], row["raw"],
                           row["kafka_timestamp"], row["batch_id"], row["partner"],
                           row["kind"])  # fmt: skip
