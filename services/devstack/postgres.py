"""Local PostgreSQL: a private cluster from the Debian server binaries, on loopback.

The server refuses to run as root; when ``scout`` runs as root the cluster is owned by and
run as the ``postgres`` system user (created by the Debian package). Authentication is
``trust`` on 127.0.0.1 only: a developer's private cluster, never exposed.

The secure stack (``SCOUT_DEV_SECURE``, ``scout dev up --secure``) is another cluster: TLS
only (``ssl=on`` with the stack's server certificate; ``hostnossl`` refused), SCRAM
passwords for every login (the owner's generated at first start), and URLs with
``sslmode=verify-full`` against the stack's CA.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg

from services.common.errors import MissingToolError, ServiceUnavailableError
from services.common.settings import Settings
from services.devstack import tls
from services.devstack.process import is_alive, read_pid

PG_HINT = "install the PostgreSQL server (Debian: apt-get install postgresql)"
RUN_AS = "postgres"


@dataclass(frozen=True)
class PgPaths:
    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"


def binaries() -> Path:
    """The newest installed server's bin folder (Debian layout first, then PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    raise MissingToolError(f"PostgreSQL server binaries (pg_ctl, initdb) not found; {PG_HINT}")


def _as_root() -> bool:
    return os.geteuid() == 0


def _traversable_by(user: str, path: Path) -> bool:
    result = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)], capture_output=True, check=False
    )
    return result.returncode == 0


def paths(settings: Settings) -> PgPaths:
    home = settings.state_dir.resolve() / "postgres"
    if _as_root():
        # The postgres user must reach its data folder; a checkout under a private home
        # folder is not reachable, so the cluster then lives in /var/lib (one per checkout).
        probe = home.parent
        probe.mkdir(parents=True, exist_ok=True)
        if not _traversable_by(RUN_AS, probe):
            key = hashlib.sha256(str(home).encode()).hexdigest()[:12]
            home = Path("/var/lib/scout-dev") / key / "postgres"
    return PgPaths(home)


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError as exc:
            raise MissingToolError(f"user `{RUN_AS}` is missing; {PG_HINT}") from exc
        cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ServiceUnavailableError(
            f"`{' '.join(cmd)}` failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )
    return result


def _prepare_home(p: PgPaths) -> None:
    p.home.mkdir(parents=True, exist_ok=True)
    if _as_root():
        shutil.chown(p.home, RUN_AS, RUN_AS)
        os.chmod(p.home, 0o700)
        for parent in p.home.parents:
            if str(parent) in ("/", "/var", "/var/lib"):
                break
            if parent.name == "scout-dev":
                os.chmod(parent, 0o755)  # noqa: S103 - postgres must traverse it


def running_pid(settings: Settings) -> int | None:
    pid = read_pid(paths(settings).data / "postmaster.pid")
    return pid if is_alive(pid) else None


def url(settings: Settings, database: str = "scout") -> str:
    if not settings.dev_secure:
        return f"postgresql://scout@127.0.0.1:{settings.pg_port}/{database}"
    state = settings.state_dir.resolve()
    password = tls.ensure_credentials(state).postgres_owner
    ca = tls.TlsFiles(state / "tls").ca_cert
    return (
        f"postgresql://scout:{password}@127.0.0.1:{settings.pg_port}/{database}"
        f"?sslmode=verify-full&sslrootcert={ca}"
    )


SECURE_HBA = """# scout secure dev stack: TLS and SCRAM passwords only
local   all   all                  scram-sha-256
hostssl all   all   127.0.0.1/32   scram-sha-256
host    all   all   0.0.0.0/0      reject
host    all   all   ::/0           reject
"""


def _secure_init(settings: Settings, p: PgPaths) -> list[str]:
    """initdb options for the secure cluster, and its TLS files copied into the data dir
    (owned by the server's user: the state dir may not be readable to it)."""
    state = settings.state_dir.resolve()
    pwfile = p.home / "owner.pw"
    pwfile.write_text(tls.ensure_credentials(state).postgres_owner)
    os.chmod(pwfile, 0o600)
    if _as_root():
        shutil.chown(pwfile, RUN_AS, RUN_AS)
    return ["-A", "scram-sha-256", f"--pwfile={pwfile}"]


def _secure_finish(settings: Settings, p: PgPaths) -> None:
    files = tls.ensure_certificates(settings.state_dir.resolve() / "tls")
    for source, name in ((files.server_cert, "server.crt"), (files.server_key, "server.key")):
        target = p.data / name
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        if _as_root():
            shutil.chown(target, RUN_AS, RUN_AS)
    (p.data / "pg_hba.conf").write_text(SECURE_HBA)
    (p.home / "owner.pw").unlink(missing_ok=True)
    with open(p.data / "postgresql.conf", "a") as conf:
        conf.write(
            "ssl = on\n"
            "ssl_cert_file = 'server.crt'\n"
            "ssl_key_file = 'server.key'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
            "password_encryption = 'scram-sha-256'\n"
        )


def up(settings: Settings) -> tuple[int, bool]:
    """Start the private cluster if needed; returns (pid, started_now)."""
    bin_dir = binaries()
    p = paths(settings)
    pid = running_pid(settings)
    if pid is not None:
        asyncio.run(_ensure_database(settings))
        return pid, False
    _prepare_home(p)
    if not (p.data / "PG_VERSION").exists():
        auth = _secure_init(settings, p) if settings.dev_secure else ["-A", "trust"]
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(p.data),
                "-U",
                "scout",
                *auth,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        with open(p.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# scout dev stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{p.data}'\n"
                "max_connections = 300\n"
                "shared_buffers = 256MB\n"
                "max_wal_size = 2GB\n"
                "timezone = 'UTC'\n"
            )
        if settings.dev_secure:
            _secure_finish(settings, p)
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(p.data),
            "-l",
            str(p.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            server_options(settings),
            "start",
        ]
    )
    asyncio.run(_ensure_database(settings))
    started = running_pid(settings)
    if started is None:
        raise ServiceUnavailableError(f"PostgreSQL did not start; see {p.log_file}")
    return started, True


async def _ensure_database(settings: Settings) -> None:
    admin_url = url(settings, "postgres")
    last_error: Exception | None = None
    for _ in range(60):
        try:
            conn = await asyncpg.connect(admin_url, timeout=5)
            break
        except (OSError, asyncpg.PostgresError) as exc:
            last_error = exc
            await asyncio.sleep(0.5)
    else:
        raise ServiceUnavailableError(f"PostgreSQL did not answer: {last_error}")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'scout'"):
            await conn.execute("CREATE DATABASE scout")
    finally:
        await conn.close()


def healthy(database_url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(database_url, timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    return asyncio.run(probe())


def down(settings: Settings, *, mode: Literal["fast", "immediate"] = "fast") -> bool:
    """Stop the private cluster; True when one was running. ``fast`` (``scout dev down``)
    rolls back open transactions and checkpoints; ``immediate`` stops every process at once
    without a checkpoint, like a crash: the next start runs crash recovery."""
    if running_pid(settings) is None:
        return False
    p = paths(settings)
    _run([str(binaries() / "pg_ctl"), "-D", str(p.data), "-m", mode, "-w", "-t", "60", "stop"])
    return True


def discard(settings: Settings) -> None:
    """Stop the cluster and delete its folder (a throwaway cluster's whole life ends here).

    As root its folder may live under /var/lib, keyed by the state folder's path: a later
    cluster at the same path would otherwise start on the data of an earlier one.
    """
    down(settings)
    shutil.rmtree(paths(settings).home, ignore_errors=True)


def server_options(settings: Settings) -> str:
    """Options given to the server at every start (so existing clusters get them too).
    random_page_cost: the data sits on SSD or in memory; at the default (4, for spinning
    disks) the planner prefers a sequential scan of a 300k-row table to ~3k index probes
    that take a tenth of the time (measured on silver's merge)."""
    return f"-p {settings.pg_port} -c random_page_cost=1.1"
