"""Silver's schema rules that replace per-row checks with per-statement ones (0041)."""

from __future__ import annotations

import random
import uuid
from datetime import date

import asyncpg
import pytest

from tests.integration.test_gold_incremental import _insert

pytestmark = pytest.mark.integration

ITEM = """
INSERT INTO scout.silver_transaction_items (transaction_id, line_no, sku, qty, unit_price,
    line_amount, brand, category, known_sku, store_id, local_date)
SELECT t, $3, 'P-1', 1, 1.00, 1.00, 'b', 'c', true, 'S1', $2 FROM unnest($1::uuid[]) AS t
"""


async def test_items_must_refer_to_a_transaction_and_go_with_it(db: asyncpg.Connection) -> None:
    await _insert(db, random.Random(5), 2)
    ids = [r["transaction_id"] for r in await db.fetch(
        "SELECT transaction_id FROM scout.silver_transactions_cleaned")]  # fmt: skip
    day = date(2026, 11, 20)
    await db.execute(ITEM, ids, day, 1)
    with pytest.raises(asyncpg.ForeignKeyViolationError):  # one unknown among known ones
        await db.execute(ITEM, [ids[0], uuid.uuid4()], day, 2)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("UPDATE scout.silver_transaction_items SET transaction_id = $1 "
                         "WHERE transaction_id = $2", uuid.uuid4(), ids[1])  # fmt: skip
    await db.execute("DELETE FROM scout.silver_transactions_cleaned WHERE transaction_id = $1",
                     ids[0])  # fmt: skip
    remaining = await db.fetch("SELECT transaction_id FROM scout.silver_transaction_items")
    assert [r["transaction_id"] for r in remaining] == [ids[1]]
