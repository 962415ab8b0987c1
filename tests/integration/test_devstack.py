"""`scout dev up | down | status` on a second, private stack (own ports and state folder).

Starts a real Kafka broker, PostgreSQL cluster and schema registry beside the ones the other
tests use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.devstack.process import is_alive

pytestmark = pytest.mark.integration


def _scout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


@pytest.fixture
def private_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SCOUT_KAFKA_BOOTSTRAP", "SCOUT_DATABASE_URL", "SCOUT_SCHEMA_REGISTRY_URL")
    }
    env |= {
        "SCOUT_STATE_DIR": str(tmp_path / "state"),
        "SCOUT_KAFKA_PORT": "19192",
        "SCOUT_PG_PORT": "55499",
        "SCOUT_REGISTRY_PORT": "18381",
    }
    return env


def test_up_is_idempotent_down_leaves_nothing_and_data_is_kept(private_env: dict[str, str]) -> None:
    try:
        first = _scout(private_env, "dev", "up")
        assert first.returncode == 0, first.stderr
        assert "kafka     started" in first.stdout and "postgres  started" in first.stdout
        assert "registry  started" in first.stdout
        assert "SCOUT_SCHEMA_REGISTRY_URL=http://127.0.0.1:18381/apis/ccompat/v7" in first.stdout
        second = _scout(private_env, "dev", "up")
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("already running") == 3

        status = _scout(private_env, "dev", "status", "--json")
        assert status.returncode == 0, status.stderr
        components = {c["name"]: c for c in json.loads(status.stdout)}
        assert components["kafka"]["healthy"] and components["postgres"]["healthy"]
        assert components["kafka"]["address"] == "127.0.0.1:19192"
        assert components["postgres"]["address"].endswith(":55499/scout")
        assert components["registry"]["healthy"] and components["registry"]["managed"]
        assert components["registry"]["address"] == "http://127.0.0.1:18381/apis/ccompat/v7"
        pids = [components[name]["pid"] for name in ("kafka", "postgres", "registry")]
        assert all(is_alive(pid) for pid in pids)

        db_url = components["postgres"]["address"]
        marker = subprocess.run(
            ["psql", db_url, "-c", "CREATE TABLE kept_across_restart (id int)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert marker.returncode == 0, marker.stderr

        down = _scout(private_env, "dev", "down")
        assert down.returncode == 0, down.stderr
        assert not any(is_alive(pid) for pid in pids)
        stopped = _scout(private_env, "dev", "status")
        assert stopped.returncode == 1 and "down" in stopped.stdout

        again = _scout(private_env, "dev", "up")
        assert again.returncode == 0, again.stderr
        kept = subprocess.run(
            ["psql", db_url, "-tAc", "SELECT to_regclass('kept_across_restart') IS NOT NULL"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert kept.stdout.strip() == "t"
    finally:
        _scout(private_env, "dev", "down")
