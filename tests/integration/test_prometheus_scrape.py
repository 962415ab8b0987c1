"""A real Prometheus scrapes the running services: every Grafana panel query returns data.

Starts the four services and the simulator on this test's topics and database, a
Prometheus server (Debian package `prometheus`) on loopback scraping them every second,
then runs each panel's PromQL through Prometheus' HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.common.settings import Settings
from tests.support import ServiceProcess, free_port, settings_env, start_all, stop_all, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
LAYERS = ("bronze", "silver", "gold", "platinum")


def panel_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((path.stem, panel["title"], target["expr"]))
    return queries


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed (Debian: apt-get install prometheus)"
    yield Path(binary), free_port()


def _query(port: int, expr: str) -> list[Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def test_every_panel_query_returns_data(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, prometheus: tuple[Path, int]
) -> None:
    binary, prom_port = prometheus
    fast = {"SCOUT_GOLD_VERIFY_INTERVAL_S": "3", "SCOUT_PLATINUM_TICK_S": "3"}
    services = [ServiceProcess(name, settings, tmp_path, **fast) for name in LAYERS]
    start_all(services[:3])
    config = tmp_path / "prometheus.yml"
    targets = [f"127.0.0.1:{s.port}" for s in services]
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: scout\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    prom = subprocess.Popen(
        [str(binary), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        simulate = subprocess.run(
            [sys.executable, "-m", "services.cli", "simulate", "--rate", "800", "--duration",
             "10", "--faults", "0.1", "--stores", "8", "--manifest",
             str(tmp_path / "manifest.json")],
            env=settings_env(settings), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert simulate.returncode == 0, simulate.stderr[-2000:]
        # Platinum runs its jobs when it starts: start it once gold has data to build from.
        await wait_for(
            lambda: db.fetchval("SELECT count(*) > 0 FROM scout.gold_business_metrics"),
            timeout=60,
        )
        services[3].start()
        missing: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            missing = [
                f"{board} / {title}: {expr}"
                for board, title, expr in panel_queries()
                if not _query(prom_port, expr.replace("$__rate_interval", "1m"))
            ]
            if not missing:
                break
            await asyncio.sleep(3)
        assert not missing, "panels without data:\n" + "\n".join(missing)
        # Lag, freshness and quality for every layer.
        for metric in ("scout_consumer_lag", "scout_freshness_seconds_count",
                       "scout_quality_score"):  # fmt: skip
            layers = {r["metric"].get("layer") or r["metric"].get("group") for r in _query(
                prom_port, f"{metric}")}  # fmt: skip
            assert layers, metric
        freshness = {r["metric"]["layer"] for r in _query(
            prom_port, "scout_freshness_seconds_count")}  # fmt: skip
        quality = {r["metric"]["layer"] for r in _query(prom_port, "scout_quality_score")}
        assert freshness == set(LAYERS) and quality == set(LAYERS)
        groups = {r["metric"]["group"] for r in _query(prom_port, "scout_consumer_lag")}
        assert len(groups) == 3, groups  # bronze, silver and gold consume; platinum schedules
        # `scout quality` prints the numbers the dashboard shows (once the pipeline is idle).
        printed: dict[str, float] = {}
        shown: dict[str, float] = {}
        for _ in range(20):
            quality = subprocess.run(
                [sys.executable, "-m", "services.cli", "quality", "--json"],
                env=settings_env(settings), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert quality.returncode == 0, quality.stderr[-2000:]
            printed = {
                r["layer"]: round(float(r["quality_score"]) / 100, 6)
                for r in json.loads(quality.stdout)
                if r["quality_score"] is not None
            }
            panel = "min by (layer) (scout_quality_score)"
            shown = {
                r["metric"]["layer"]: round(float(r["value"][1]), 6)
                for r in _query(prom_port, panel)
            }
            if printed == shown:
                break
            await asyncio.sleep(3)
        assert printed == shown
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        stop_all(services, check=False)
