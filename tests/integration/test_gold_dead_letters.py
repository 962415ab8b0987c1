"""Gold never stops on a group (issue 12): a (store, day) whose gold row the database refuses
is set aside as a dead letter with its reason and its changes kept, every other group is
written and exact, and after the cause is fixed the documented recovery makes it exact too.
Bronze, silver and gold run as separate processes, on the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.common.kafka import topics_for
from services.common.settings import Settings
from tests.integration.test_never_stop import (
    _masters,
    _sale,
    assert_never_stopped,
    chain,  # noqa: F401  (the fixture)
    gold_verify,
)
from tests.support import ServiceProcess, publish, settings_env, wait_for

pytestmark = pytest.mark.integration

DAYS = {date(2026, 11, 25): "2026-11-25T10:15:00+08:00",
        date(2026, 11, 26): "2026-11-26T10:15:00+08:00"}  # fmt: skip
# Sales of 30.00 per (store, day): S-F3 on the 25th sums to 1,500.00, beyond the operator's
# constraint below; every other group stays under it.
SALES = {("S-F1", date(2026, 11, 25)): 20, ("S-F2", date(2026, 11, 25)): 20,
         ("S-F3", date(2026, 11, 25)): 50, ("S-F1", date(2026, 11, 26)): 10,
         ("S-F2", date(2026, 11, 26)): 10, ("S-F3", date(2026, 11, 26)): 10}  # fmt: skip
REFUSED = ("S-F3", date(2026, 11, 25))

SETTLED = """
SELECT (SELECT count(*) FROM scout.bronze_transactions_raw b
         WHERE NOT EXISTS (SELECT 1 FROM scout.silver_lineage l WHERE l.bronze_id = b.id)),
       (SELECT count(*) FROM scout.silver_transactions_cleaned),
       (SELECT count(*) FROM scout.gold_silver_changes c WHERE NOT EXISTS (
            SELECT 1 FROM scout.gold_dead_letters d
             WHERE d.store_id = c.store_id AND d.date_key = c.date_key)),
       (SELECT count(*) FROM scout.gold_dead_letters)
"""


def _records(settings: Settings) -> list[tuple[str, bytes, bytes]]:
    pos = topics_for(settings).pos
    out = []
    for (store, day), n in SALES.items():
        for i in range(n):
            sale = _sale(f"DL-{store}-{day}-{i}", store, occurred_at=DAYS[day])
            out.append((pos, store.encode(), json.dumps(sale).encode()))
    return out


def _gold(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", "gold", *args],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


async def _gold_counts(db: asyncpg.Connection) -> dict[tuple[str, date], tuple[Any, ...]]:
    rows = await db.fetch("SELECT store_id, date_key, transaction_count, daily_revenue"
                          " FROM scout.gold_business_metrics")  # fmt: skip
    return {(r["store_id"], r["date_key"]): (r["transaction_count"], str(r["daily_revenue"]))
            for r in rows}  # fmt: skip


@pytest.mark.parametrize("recovery", ["scout gold retry", "gold restarted"])
async def test_a_group_gold_cannot_write_is_dead_lettered_and_recovers(
    settings: Settings,
    db: asyncpg.Connection,
    chain: list[ServiceProcess],  # noqa: F811
    recovery: str,
    tmp_path: Path,
) -> None:
    # An operator's constraint that one valid store's day violates (the database refuses a
    # derived value, as an overflow would).
    await db.execute("""ALTER TABLE scout.gold_business_metrics ADD CONSTRAINT refuse_g
                        CHECK (daily_revenue < 1000)""")
    await publish(settings, _masters(settings))
    await wait_for(lambda: db.fetchval(
        "SELECT count(*) = 3 FROM scout.silver_master_stores"), timeout=60)  # fmt: skip
    await publish(settings, _records(settings))
    total = sum(SALES.values())
    seen: dict[str, Any] = {}

    async def settled() -> bool:
        unmerged, silver, waiting, dead = await db.fetchrow(SETTLED)
        seen.update(unmerged=unmerged, silver=silver, waiting=waiting, dead=dead)
        return bool(unmerged == 0 and silver == total and waiting == 0 and dead == 1)

    await wait_for(settled, timeout=180, interval=1.0, context=lambda: seen)
    gold = chain[2]
    assert_never_stopped(chain)

    # The dead letter names the group, the table and the reason; its changes are kept.
    dead = await db.fetchrow("SELECT * FROM scout.gold_dead_letters")
    assert (dead["store_id"], dead["date_key"]) == REFUSED
    assert (dead["layer"], dead["table_name"], dead["reason"]) == (
        "gold", "gold_business_metrics", "check_violation")  # fmt: skip
    assert dead["detail"].startswith("SQLSTATE 23514"), dead["detail"]
    held = await db.fetchval("SELECT count(*) FROM scout.gold_silver_changes"
                             " WHERE store_id = $1 AND date_key = $2", *REFUSED)  # fmt: skip
    assert held > 0
    assert gold.metric("scout_records_isolated_total", layer="gold",
                       reason="check_violation") == 1  # fmt: skip

    # Every other group is exact; verify compares the rest and names the dead letter.
    counts = await _gold_counts(db)
    for group, n in SALES.items():
        if group != REFUSED:
            assert counts[group] == (n, f"{30 * n}.00"), group
    verify = gold_verify(settings)
    assert verify.returncode == 2, verify.stdout + verify.stderr
    assert "OK, equals silver (except 1 dead-lettered group(s))" in verify.stdout, verify.stdout
    assert "dead letter: store S-F3 day 2026-11-25: check_violation" in verify.stdout
    listed = _gold(settings, "dead-letters")
    assert listed.returncode == 2 and "1 dead-lettered gold group(s)" in listed.stdout

    # Gold goes on: new sales of every other group are applied while the group waits.
    pos = topics_for(settings).pos
    more = [(pos, b"S-F1", json.dumps(_sale(f"DL-more-{i}", "S-F1",
                                            occurred_at=DAYS[date(2026, 11, 25)])).encode())
            for i in range(5)]  # fmt: skip
    await publish(settings, more)
    total += len(more)
    await wait_for(settled, timeout=120, interval=1.0, context=lambda: seen)
    assert (await _gold_counts(db))[("S-F1", date(2026, 11, 25))] == (25, "750.00")

    # The documented recovery: fix the cause, then `scout gold retry` (or restart gold: a
    # worker retries its shards' dead letters when it starts).
    await db.execute("ALTER TABLE scout.gold_business_metrics DROP CONSTRAINT refuse_g")
    if recovery == "scout gold retry":
        again = _gold(settings, "retry")
        assert again.returncode == 0 and "1 dead-lettered gold group(s) due now" in again.stdout
    else:
        assert gold.stop() == 0, gold.log_tail()
        gold = chain[2] = ServiceProcess("gold", settings, tmp_path).start()
    try:
        await _recovered(settings, db, chain, isolated=1 if recovery == "scout gold retry" else 0)
    finally:
        if recovery != "scout gold retry":
            assert gold.stop() == 0, gold.log_tail()


async def _recovered(
    settings: Settings, db: asyncpg.Connection, services: list[ServiceProcess], *, isolated: int
) -> None:
    """The group becomes exact, nothing waits, no worker stopped; ``isolated``: the gold
    process's count (the same process as before, or a new one)."""
    bronze, silver, gold = services
    seen: dict[str, Any] = {}

    async def recovered() -> bool:
        left = await db.fetchval("SELECT (SELECT count(*) FROM scout.gold_dead_letters)"
                                 " + (SELECT count(*) FROM scout.gold_silver_changes)")  # fmt: skip
        seen.update(left=left)
        return bool(left == 0)

    await wait_for(recovered, timeout=60, interval=0.5, context=lambda: seen)
    assert (await _gold_counts(db))[REFUSED] == (50, "1500.00")
    verify = gold_verify(settings)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "dead letter" not in verify.stdout
    assert_never_stopped(services)
    assert gold.metric("scout_records_isolated_total", layer="gold") == isolated
    assert bronze.metric("scout_records_isolated_total") == 0
    assert silver.metric("scout_records_isolated_total") == 0
