"""Which errors are an outage (retried, waited out) and which are the records' (isolated)."""

from __future__ import annotations

import asyncpg
import pytest

from services.common.lifecycle import NEW_SESSION_ERRORS, is_transient


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
