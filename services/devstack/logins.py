"""The local stack's service logins: generated once, kept in the state dir, ensured at ``up``.

``scout dev up`` makes one login per service (``services/common/logins.py``) with a password
generated at first start and stored in ``$SCOUT_STATE_DIR/logins.json`` (mode 0600), then
prints the ``SCOUT_DATABASE_URL_<SERVICE>`` each service needs. Re-running keeps the
passwords. Only for a cluster this command manages (it is the owner there).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg

from services.common.logins import Login, ensure_logins, new_logins, service_url_env
from services.common.settings import SERVICE_ROLES

LOGINS_FILE = "logins.json"


def logins_path(state_dir: Path) -> Path:
    return state_dir / LOGINS_FILE


def load_or_create(state_dir: Path) -> dict[str, Login]:
    path = logins_path(state_dir)
    if path.exists():
        data = json.loads(path.read_text())
        stored = {s: Login(s, d["user"], d["password"]) for s, d in data.items()}
        if set(stored) == set(SERVICE_ROLES):
            return stored
    logins = new_logins()
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({s: {"user": lg.user, "password": lg.password} for s, lg in logins.items()},
                  out, indent=2)  # fmt: skip
    return logins


def ensure(state_dir: Path, owner_url: str) -> dict[str, str]:
    """Create or refresh the logins; returns the per-service URL settings."""
    logins = load_or_create(state_dir)

    async def run() -> None:
        conn = await asyncpg.connect(owner_url, timeout=10)
        try:
            await ensure_logins(conn, logins)
        finally:
            await conn.close()

    asyncio.run(run())
    return service_url_env(logins, owner_url)
