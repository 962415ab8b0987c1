"""Pure parts of gold's scale-out: shard ownership, periods, rolling windows."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.common.settings import Settings
from services.gold_aggregator.app import CHANGES_PER_FLUSH, next_shards_per_flush, pause_after
from services.gold_aggregator.changes import COLUMNS, TRANSACTION, Change
from services.gold_aggregator.periods import DAY, MONTH, WEEK, end_of, start_of
from services.gold_aggregator.rolling import RollingWindows
from services.gold_aggregator.shards import SHARDS, owned_shards


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 64])
def test_every_shard_has_exactly_one_owning_partition(partitions: int) -> None:
    owners = [owned_shards([p], partitions) for p in range(partitions)]
    assert sorted(s for shards in owners for s in shards) == list(range(SHARDS))
    assert all(owners)  # up to SHARDS partitions, every partition owns a shard
    assert owned_shards(range(partitions), partitions) == frozenset(range(SHARDS))


def test_no_partitions_own_nothing() -> None:
    assert owned_shards([], 4) == frozenset()
    assert owned_shards([0], 0) == frozenset()


def test_periods() -> None:
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    assert start_of(WEEK, sunday) == date(2026, 11, 23)
    assert start_of(WEEK, monday) == monday
    assert start_of(MONTH, date(2026, 12, 31)) == date(2026, 12, 1)
    assert start_of(DAY, sunday) == sunday
    assert end_of(WEEK, monday) == date(2026, 12, 7)
    assert end_of(MONTH, date(2026, 12, 1)) == date(2027, 1, 1)
    assert end_of(MONTH, date(2027, 2, 1)) == date(2027, 3, 1)
    assert end_of(DAY, sunday) == monday


def test_the_change_record_is_described_once() -> None:
    assert Change._fields == COLUMNS


def _sale(sign: int, amount: str, when: datetime, shard: int = 3) -> Change:
    return Change(TRANSACTION, sign, Decimal(amount), shard=shard, store_id="S1",
                  occurred_at=when)  # fmt: skip


def test_rolling_windows_count_a_corrected_transaction_once() -> None:
    now = datetime.fromtimestamp(time.time() - 60, UTC)
    windows = RollingWindows()
    windows.apply([_sale(1, "100.00", now)])
    windows.apply([_sale(-1, "100.00", now), _sale(1, "40.00", now)])  # v2 replaces v1
    assert windows.now() == {"S1": (1, Decimal("40.00"))}
    windows.apply([_sale(1, "5.00", now, shard=9)], skip=[9])  # in a load already
    assert windows.now() == {"S1": (1, Decimal("40.00"))}
    windows.keep_only([4])  # shard 3 moved to another replica
    assert windows.now() == {}


def test_rolling_windows_forget_what_left_the_window() -> None:
    windows = RollingWindows()
    old = datetime.fromtimestamp(time.time() - 3600, UTC)
    windows.apply([_sale(1, "9.00", old)])
    assert windows.now() == {}


def test_shards_per_flush_follow_the_changes_taken() -> None:
    """One transaction for every shard at a paced rate; halves while a backlog's
    transactions take more than CHANGES_PER_FLUSH changes; never below 1 or above SHARDS."""
    step = 8
    for _ in range(10):
        step = next_shards_per_flush(step, 100)
    assert step == SHARDS
    assert next_shards_per_flush(SHARDS, CHANGES_PER_FLUSH) == SHARDS  # within the band
    for _ in range(10):
        step = next_shards_per_flush(step, 10 * CHANGES_PER_FLUSH)
    assert step == 1
    assert next_shards_per_flush(1, CHANGES_PER_FLUSH // 2) == 1


def test_the_pause_after_a_flush_keeps_flushing_to_its_share_of_the_time() -> None:
    """0.5 (the default): as long as the flush took; 1: none; a setting out of (0, 1] is
    refused when the settings load."""
    assert pause_after(0.8, 0.5) == pytest.approx(0.8)
    assert pause_after(0.8, 0.25) == pytest.approx(2.4)
    assert pause_after(0.8, 1.0) == 0
    assert Settings().gold_flush_duty_cycle == 0.5
    for refused in (0.0, 1.5):
        with pytest.raises(ValidationError):
            Settings(gold_flush_duty_cycle=refused)
