"""Scout behind PgBouncer in session mode, the pooler a retail shop's DBAs often put in front
of PostgreSQL. PgBouncer refuses the startup parameters Scout sets when it speaks to the
server itself (its role, plan_cache_mode), so with ``SCOUT_DATABASE_POOLER=session`` each
login carries them as its own defaults and every new session is checked for them.

A real PgBouncer (the Debian package ``scripts/bootstrap.sh`` installs) runs in front of
the test's database; the services' logins authenticate to it with SCRAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
from pydantic import SecretStr

from services.common.logins import url_with_login
from services.common.settings import Settings
from tests.integration.test_never_stop import _masters, assert_never_stopped, until_settled
from tests.integration.test_postgres_outage import _recent_sales, assert_each_sale_once
from tests.support import (
    ServiceProcess,
    free_port,
    publish,
    settings_env,
    start_all,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.integration

LAYERS = ("bronze", "silver", "gold")
ROUTED = (*LAYERS, "platinum")  # the logins that reach PostgreSQL through the pooler
RUN_AS = "postgres"  # PgBouncer will not run as root


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    assert found, "pgbouncer is not installed (scripts/bootstrap.sh installs it)"
    return found


@pytest.fixture
def pgbouncer(settings: Settings) -> Iterator[Settings]:
    """A PgBouncer in session mode in front of this test's database; the settings route
    every service (and the commands run as one) through it."""
    server = urlsplit(settings.database_url.get_secret_value())
    database = server.path.lstrip("/")
    logins = {
        layer: urlsplit(getattr(settings, f"database_url_{layer}").get_secret_value())
        for layer in ROUTED
    }
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="scout-pgbouncer-"))  # readable by RUN_AS
    userlist = folder / "userlist.txt"
    userlist.write_text("".join(f'"{unquote(u.username or "")}" "{unquote(u.password or "")}"\n'
                                for u in logins.values()))  # fmt: skip
    ini = folder / "pgbouncer.ini"
    ini.write_text(f"""[databases]
{database} = host={server.hostname} port={server.port} dbname={database}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {userlist}
pool_mode = session
logfile = {folder / "pgbouncer.log"}
""")
    command = [_pgbouncer(), str(ini)]
    if os.geteuid() == 0:
        for path in (folder, userlist, ini):
            shutil.chown(path, RUN_AS)
        command = ["runuser", "-u", RUN_AS, "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert proc.poll() is None and time.monotonic() < deadline, _log(folder)
            time.sleep(0.1)
        pooled = f"postgresql://{server.hostname}:{port}/{database}"
        yield settings.model_copy(update={
            "database_pooler": "session",
            **{f"database_url_{layer}": SecretStr(url_with_login(
                pooled, unquote(u.username or ""), unquote(u.password or "")))
               for layer, u in logins.items()},
        })  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _log(folder: Path) -> str:
    log = folder / "pgbouncer.log"
    return log.read_text()[-2000:] if log.exists() else "(no log)"


async def test_the_chain_behind_pgbouncer_in_session_mode_loses_and_doubles_nothing(
    pgbouncer: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Bronze, silver and gold reach PostgreSQL only through PgBouncer, each login acting as
    its service's role (a NOINHERIT login holds no privilege of its own, so every write
    proves it), and every sale lands once, gold verified, the live windows counting each
    sale once; then platinum's jobs run through it too."""
    services = start_all(ServiceProcess(n, pgbouncer, tmp_path) for n in LAYERS)
    sales = _recent_sales(pgbouncer, 1_000, "POOLED")
    try:
        await publish(pgbouncer, _masters(pgbouncer) + sales)
        await until_settled(db, len(sales))
        await assert_each_sale_once(db, len(sales), services[-1], pgbouncer)
        # Platinum's jobs, each under a session advisory lock: fine in session mode.
        platinum = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.cli", "platinum", "run", "--now"],
            env=settings_env(pgbouncer), capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert platinum.returncode == 0, platinum.stdout[-2000:] + platinum.stderr[-2000:]
        assert await db.fetchval("SELECT count(*) FROM scout.platinum_executive_summary") > 0
        assert_never_stopped(services)
        for service in services:
            assert service.metric("scout_db_retries_total", layer=service.service) == 0
    finally:
        stop_all(services, check=False)


async def test_a_login_without_scouts_defaults_is_waited_out_and_named(
    pgbouncer: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A login whose defaults differ from what Scout sets itself (here: plan_cache_mode, for
    this database) would plan otherwise, or without its role act with no privilege: bronze
    writes nothing, says which ALTER ROLE to run, and lands every record once it is run and
    the pooler's server connections are renewed."""
    database = await db.fetchval("SELECT current_database()")
    own = pgbouncer.database_url_bronze
    assert own is not None
    login = unquote(urlsplit(own.get_secret_value()).username or "")
    await db.execute(
        f'ALTER ROLE "{login}" IN DATABASE "{database}" SET plan_cache_mode = \'auto\''
    )
    bronze = ServiceProcess("bronze", pgbouncer, tmp_path)
    sales = _recent_sales(pgbouncer, 100, "WAITING")
    try:
        bronze.spawn()  # not ready: its pool waits for a session it may use
        await publish(pgbouncer, sales)

        async def named() -> bool:
            return "SET plan_cache_mode = 'force_custom_plan'" in bronze.log_path.read_text()

        await wait_for(named, timeout=60, context=bronze.log_tail)
        assert await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw") == 0
        await db.execute(f'ALTER ROLE "{login}" IN DATABASE "{database}" RESET plan_cache_mode')
        # PgBouncer's open server connections keep the defaults they started with.
        await db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = $1", login)  # fmt: skip

        async def landed() -> bool:
            count = await db.fetchval("SELECT count(*) FROM scout.bronze_transactions_raw")
            return bool(count == len(sales))

        await wait_for(landed, timeout=120, context=bronze.log_tail)
        assert_never_stopped([bronze])
    finally:
        await db.execute(f'ALTER ROLE "{login}" IN DATABASE "{database}" RESET plan_cache_mode')
        bronze.stop()
