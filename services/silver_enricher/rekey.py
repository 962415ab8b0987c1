"""``scout rekey``: after a PII key rotation, move silver's old pseudonyms to the new key.

Pseudonyms carry their key id (``<id>:<hmac>``). With the new key in ``SCOUT_PII_KEY``,
silver writes new pseudonyms at once; this job rewrites the rows made with any other key
(or before ids existed), recomputing each from the customer id in the row's bronze record,
so a customer's old and new rows join again. It runs as silver's login (the only one that
holds the key and may update silver), in chunks, while the services stream; the update goes
through silver's triggers, so gold's customer counts follow. Rows whose bronze record is gone
(erased, or archived by retention) keep their old pseudonym and are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from services.common.db import create_pool
from services.common.events import Transaction, parse_record
from services.common.settings import Settings
from services.silver_enricher.app import pii_key
from services.silver_enricher.pii import PiiKey, pseudonymise

CHUNK = 2000
STALE_ROWS = """
SELECT t.transaction_id, t.bronze_id, b.raw_data::text AS raw, b.source_system, b.batch_id
FROM scout.silver_transactions_cleaned t
LEFT JOIN scout.bronze_transactions_raw b ON b.id = t.bronze_id
WHERE t.customer_key IS NOT NULL AND left(t.customer_key, length($1) + 1) <> $1 || ':'
  AND t.transaction_id > $2
ORDER BY t.transaction_id
LIMIT $3
"""
SET_KEYS = """
UPDATE scout.silver_transactions_cleaned t SET customer_key = v.customer_key
FROM unnest($1::uuid[], $2::text[]) AS v(transaction_id, customer_key)
WHERE t.transaction_id = v.transaction_id
"""


@dataclass(frozen=True)
class Rekeyed:
    rewritten: int
    without_bronze: int

    def describe(self, key_id: str) -> str:
        return (
            f"re-keyed {self.rewritten} silver transaction(s) to key {key_id!r}; "
            f"{self.without_bronze} kept their old pseudonym (bronze record gone)"
        )


def new_pseudonym(row: Any, key: PiiKey) -> str | None:
    """The row's pseudonym under ``key``, from its bronze record (None when unreadable)."""
    if row["raw"] is None:
        return None
    raw = json.loads(row["raw"], parse_float=Decimal)
    event = parse_record(raw, row["source_system"], batch_id=row["batch_id"])
    if not isinstance(event, Transaction) or event.customer is None or not event.customer.id:
        return None
    return pseudonymise(event.customer.id, key)


async def rekey(pool: asyncpg.Pool, key: PiiKey, chunk: int = CHUNK) -> Rekeyed:
    rewritten = without = 0
    after = uuid.UUID(int=0)
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(STALE_ROWS, key.id, after, chunk)
            if not rows:
                return Rekeyed(rewritten, without)
            after = rows[-1]["transaction_id"]
            ids, keys = [], []
            for row in rows:
                pseudonym = new_pseudonym(row, key)
                if pseudonym is None:
                    without += 1
                else:
                    ids.append(row["transaction_id"])
                    keys.append(pseudonym)
            async with conn.transaction():
                await conn.execute(SET_KEYS, ids, keys)
            rewritten += len(ids)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rekey",
        help="after a PII key rotation, rewrite silver's old pseudonyms with the new key",
        description=(
            "Rewrite every silver customer_key made with another key than SCOUT_PII_KEY's "
            "(its id is the pseudonym's prefix), from the customer id in bronze, so old and "
            "new rows join again. Idempotent; safe while the services run. Needs silver's "
            "settings (SCOUT_PII_KEY, SCOUT_DATABASE_URL_SILVER)."
        ),
    )
    parser.add_argument("--chunk", type=int, default=CHUNK, help="rows per transaction")
    parser.set_defaults(func=_rekey)


def _rekey(args: argparse.Namespace, settings: Settings) -> int:
    key = pii_key(settings)

    async def run() -> Rekeyed:
        pool = await create_pool(settings, "silver")
        try:
            return await rekey(pool, key, args.chunk)
        finally:
            await pool.close()

    print(asyncio.run(run()).describe(key.id))
    return 0
