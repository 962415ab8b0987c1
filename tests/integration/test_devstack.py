"""`scout dev up | down | status` on a second, private stack (own ports and state folder).

Starts a real Kafka broker, PostgreSQL cluster and schema registry beside the ones the other
tests use.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
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


def _exports(stdout: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of ``scout dev up``, unquoted."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0] if value else ""
    return found


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
        exports = _exports(first.stdout)
        assert exports["SCOUT_ENV"] == "dev"  # said explicitly: the default is not dev
        assert exports["SCOUT_SCHEMA_REGISTRY_URL"] == "http://127.0.0.1:18381/apis/ccompat/v7"
        logins_file = Path(private_env["SCOUT_STATE_DIR"]) / "logins.json"
        assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
        for service in ("bronze", "silver", "gold", "platinum"):
            url = exports[f"SCOUT_DATABASE_URL_{service.upper()}"]
            assert url.split("//", 1)[1].startswith(f"scout_{service}_login:")
            refused = subprocess.run(
                ["psql", url, "-tAc", "SET ROLE scout"], capture_output=True, text=True
            )
            assert refused.returncode != 0 and "permission denied" in refused.stderr
        second = _scout(private_env, "dev", "up")
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("already running") == 3
        assert _exports(second.stdout) == exports  # the same logins and passwords

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
