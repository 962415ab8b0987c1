"""PII keys as deployed: silver refuses to start without a real one outside dev, and a
rotation re-keys old rows (``scout rekey``) so a customer's old and new rows join again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from services.common.settings import Settings
from services.silver_enricher.pii import parse_key, pseudonymise
from tests.integration.test_silver import chain, simulate, until_silver_settles  # noqa: F401
from tests.support import ServiceProcess, settings_env

pytestmark = pytest.mark.integration

NEW_KEY = "k2027b:0f4c1e9a7b3d5f8e2a6c4b1d9e7f3a5c"


def _scout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"SCOUT_ENV": None, "SCOUT_PII_KEY": None}, "SCOUT_PII_KEY is not set and SCOUT_ENV"),
        ({"SCOUT_ENV": "prod", "SCOUT_PII_KEY": None}, "set SCOUT_PII_KEY=<key id>:<secret>"),
        ({"SCOUT_ENV": "prod", "SCOUT_PII_KEY": "k1:changeme"}, "placeholder"),
        ({"SCOUT_ENV": "test", "SCOUT_PII_KEY": "k1:test-pii-key"}, "placeholder"),
        ({"SCOUT_ENV": "prod", "SCOUT_PII_KEY": "a" * 40}, "has no key id"),
    ],
)
def test_silver_refuses_to_start_without_a_real_key(
    settings: Settings, changes: dict[str, str | None], expected: str
) -> None:
    env = settings_env(settings)
    for name, value in changes.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    result = _scout(env, "run", "silver")
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-2000:]


def test_dev_runs_with_the_dev_key_only_when_said(settings: Settings, tmp_path: Path) -> None:
    env = settings_env(settings)
    env.pop("SCOUT_PII_KEY")
    service = ServiceProcess("silver", settings, tmp_path)
    service.env = env | {"SCOUT_ENV": "dev", "SCOUT_WEB_PORT": str(service.port)}
    service.start()
    assert service.stop() == 0
    assert "dev-only key" in service.log_path.read_text()


async def test_rotation_then_rekey_keeps_customers_joinable(
    settings: Settings,
    db: asyncpg.Connection,
    tmp_path: Path,
    chain: list[ServiceProcess],  # noqa: F811
) -> None:
    manifest = simulate(settings, tmp_path, "--rate", "800", "--duration", "2", "--faults",
                        "0", "--seed", "3", "--stores", "5")  # fmt: skip
    await until_silver_settles(db, manifest)
    old = parse_key(settings.pii_key.get_secret_value())  # type: ignore[union-attr]
    new = parse_key(NEW_KEY)
    before = await db.fetch(
        "SELECT transaction_id, customer_key FROM scout.silver_transactions_cleaned "
        "WHERE customer_key IS NOT NULL"
    )
    assert before and all(r["customer_key"].startswith(f"{old.id}:") for r in before)
    customers_before = await db.fetchval(
        "SELECT count(DISTINCT customer_key) FROM scout.silver_transactions_cleaned"
    )

    env = settings_env(settings, SCOUT_PII_KEY=NEW_KEY)
    result = _scout(env, "rekey", "--chunk", "97")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"re-keyed {len(before)} silver transaction(s) to key 'k2027b'" in result.stdout

    rows = await db.fetch(
        "SELECT t.customer_key, b.raw_data::text AS raw FROM scout.silver_transactions_cleaned t "
        "JOIN scout.bronze_transactions_raw b ON b.id = t.bronze_id "
        "WHERE t.customer_key IS NOT NULL"
    )
    assert len(rows) == len(before)
    for row in rows:  # exactly what silver streaming with the new key writes
        customer_id = json.loads(row["raw"])["customer"]["id"]
        assert row["customer_key"] == pseudonymise(customer_id, new)
    assert customers_before == await db.fetchval(
        "SELECT count(DISTINCT customer_key) FROM scout.silver_transactions_cleaned"
    )
    again = _scout(env, "rekey")
    assert again.returncode == 0 and "re-keyed 0 silver" in again.stdout
