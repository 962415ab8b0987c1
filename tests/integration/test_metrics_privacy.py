"""What the web endpoints show, and to whom: loopback only by default, and /metrics carries
no personal data after traffic full of it (customer ids, phones, e-mails in notes)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import asyncpg
import pytest

from services.common.settings import Settings
from tests.integration.test_silver import chain, simulate, until_silver_settles  # noqa: F401
from tests.support import ServiceProcess

pytestmark = pytest.mark.integration


def _other_addresses() -> list[str]:
    """This host's non-loopback IPv4 addresses (where a default bind must not answer)."""
    addresses = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addresses.add(str(info[4][0]))
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # no packet is sent: picks the outgoing address
            addresses.add(probe.getsockname()[0])
        except OSError:
            pass
    return sorted(a for a in addresses if not a.startswith("127."))


async def test_metrics_hold_no_personal_data_and_bind_loopback(
    settings: Settings,
    db: asyncpg.Connection,
    tmp_path: Path,
    chain: list[ServiceProcess],  # noqa: F811
) -> None:
    manifest = simulate(settings, tmp_path, "--rate", "1000", "--duration", "2", "--faults",
                        "0.4", "--seed", "21", "--stores", "5")  # fmt: skip
    await until_silver_settles(db, manifest)
    raws = [json.loads(r["raw"]) for r in await db.fetch(
        "SELECT raw_data::text AS raw FROM scout.bronze_transactions_raw")]  # fmt: skip
    personal = set()
    for raw in raws:
        customer = raw.get("customer") if isinstance(raw, dict) else None
        if isinstance(customer, dict):
            personal |= {str(customer[k]) for k in ("id", "phone", "email", "name")
                         if customer.get(k)}  # fmt: skip
    assert len(personal) > 10, "the traffic must carry personal data for this test to mean it"
    for service in chain:
        text = service.get("/metrics")
        assert "scout_records_consumed_total" in text
        leaked = {p for p in personal if p in text}
        assert not leaked, f"{service.service} /metrics shows {sorted(leaked)[:5]}"
        assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", text)
        for address in _other_addresses():
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, service.port))
