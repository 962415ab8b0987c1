"""What a service asks of its PostgreSQL session, directly or behind a pooler."""

from __future__ import annotations

from services.common.db import _server_settings

# PgBouncer passes these startup parameters on (its tracked ones) and refuses any other.
PGBOUNCER_TRACKED = {"application_name", "timezone", "client_encoding", "datestyle",
                     "standard_conforming_strings"}  # fmt: skip


def test_a_direct_session_sets_its_role_and_planning_at_startup() -> None:
    params = _server_settings("scout_silver_enricher", "scout-silver", "none")
    assert params["role"] == "scout_silver_enricher"
    assert params["plan_cache_mode"] == "force_custom_plan"
    assert "role" not in _server_settings(None, "scout-silver", "none")  # SCOUT_DB_ROLE_*=""


def test_behind_a_session_pooler_only_what_pgbouncer_tracks_is_sent() -> None:
    params = _server_settings("scout_silver_enricher", "scout-silver", "session")
    assert set(params) <= PGBOUNCER_TRACKED
    assert params == {"application_name": "scout-silver", "timezone": "UTC"}
