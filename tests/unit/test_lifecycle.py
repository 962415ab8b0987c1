"""Which errors are an outage (retried, waited out), which are the records' (isolated), and
which make a write split in halves."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from services.common.isolation import isolate
from services.common.lifecycle import NEW_SESSION_ERRORS, is_transient, retry, splits


def error(sqlstate: str) -> asyncpg.PostgresError:
    """The error asyncpg raises for a server message with this SQLSTATE."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": "message", "S": "ERROR"})


@pytest.mark.parametrize("sqlstate", [
    "08006",  # connection failure
    "57P01",  # admin shutdown
    "57P03",  # cannot connect now (starting up, in recovery)
    "40001",  # serialization failure
    "40P01",  # deadlock
    "53100",  # disk full
    "58030",  # I/O error
    "25006",  # read-only transaction: a standby, or a primary demoted by a failover
    "42501",  # insufficient privilege: a grant missing
    "42P01",  # undefined table: a migration missing
    "42703",  # undefined column
    "42883",  # undefined function
    "42704",  # undefined object
    "3F000",  # invalid schema name
    "55P03",  # lock not available
    "55006",  # object in use
])  # fmt: skip
def test_the_servers_state_is_waited_out(sqlstate: str) -> None:
    assert is_transient(error(sqlstate))


@pytest.mark.parametrize("sqlstate", [
    "22003",  # numeric value out of range
    "22P02",  # invalid text representation
    "22021",  # character not in repertoire
    "22P05",  # untranslatable character
    "22008",  # datetime field overflow
    "23514",  # check violation: a constraint an operator added
    "23502",  # not-null violation
    "23505",  # unique violation
    "21000",  # cardinality violation: one row affected twice
    "54000",  # program limit exceeded: an index row too large
    "XX000",  # internal error: not known to be the server's state
])  # fmt: skip
def test_a_records_refusal_is_not_retried_as_it_is(sqlstate: str) -> None:
    assert not is_transient(error(sqlstate))


def test_only_a_read_only_session_is_replaced() -> None:
    assert isinstance(error("25006"), NEW_SESSION_ERRORS)
    assert not isinstance(error("42501"), NEW_SESSION_ERRORS)
    assert not isinstance(error("08006"), NEW_SESSION_ERRORS)


def test_a_cancelled_statement_splits_a_write_of_more_than_one_record() -> None:
    cancelled = error("57014")  # statement_timeout, or pg_cancel_backend
    assert is_transient(cancelled)  # the records are not at fault
    assert splits(cancelled, 2)
    assert not splits(cancelled, 1)  # nothing left to split: retried as an outage
    assert not splits(error("57P01"), 2)  # a shutdown: the whole is retried
    assert not splits(error("22003"), 2)  # a refusal: isolated, not split


async def test_a_write_the_server_cancels_is_written_in_parts_and_none_is_kept() -> None:
    """The attempt is cancelled whenever it holds more than 3 records (a statement_timeout
    that a whole batch outlasts): every record is written, in parts, none is kept aside."""
    written: list[int] = []
    kept: list[int] = []

    async def attempt(part: Sequence[int]) -> None:
        if len(part) > 3:
            raise error("57014")
        written.extend(part)

    async def keep(record: int, reason: str, detail: str) -> None:
        kept.append(record)

    assert await isolate(list(range(20)), attempt, keep, layer="test") == 0
    assert written == list(range(20)) and kept == []


async def test_a_single_record_cancelled_alone_goes_to_the_callers_retry() -> None:
    async def attempt(part: Sequence[int]) -> None:
        raise error("57014")

    async def keep(record: int, reason: str, detail: str) -> None:
        raise AssertionError("a cancelled record is not the record's fault")

    with pytest.raises(asyncpg.QueryCanceledError):
        await isolate([1, 2], attempt, keep, layer="test")


async def test_retry_raises_what_the_caller_answers_otherwise() -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise error("57014")

    with pytest.raises(asyncpg.QueryCanceledError):
        await retry(cancelled, what="test", raise_on=(asyncpg.QueryCanceledError,))
    assert calls == 1
