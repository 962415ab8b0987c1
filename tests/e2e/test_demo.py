"""`scout demo --duration`: the whole chain runs, drains, and accounts for every record."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.support import free_ports, settings_env

pytestmark = pytest.mark.e2e


def test_demo_runs_the_chain_and_accounts_for_every_record(
    settings: Settings, tmp_path: Path
) -> None:
    base = free_ports(4)  # the demo's four workers listen on base, base + 1, ...
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--duration", "8", "--rate", "600",
         "--faults", "0.1", "--stores", "12", "--port-base", str(base)],
        env=settings_env(settings), capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # The live view showed every layer.
    for layer in ("bronze", "silver", "gold"):
        assert re.search(rf"^{layer}\s+[\d,]+", out, re.MULTILINE), layer
    summary = out[out.index("Where every record of this run ended up") :]
    bronze = re.search(r"bronze rows\s+([\d,]+)\s+\(expected (\d+)\)", summary)
    errors = re.search(r"bronze error log\s+([\d,]+)\s+\(expected (\d+)\)", summary)
    assert bronze and errors, summary
    assert int(bronze[1].replace(",", "")) == int(bronze[2]) > 0
    assert int(errors[1].replace(",", "")) == int(errors[2]) > 0
    silver = re.search(r"new silver transactions\s+([\d,]+)\s+\(expected (\d+)", summary)
    assert silver and int(silver[1].replace(",", "")) == int(silver[2]) > 0
    assert "(equal)" in summary
