#!/usr/bin/env bash
# The end-to-end suite: installs PostgreSQL and Chromium from the system's packages, starts
# PostgreSQL on loopback, then runs the PostgreSQL-marked tests (migrations, constraints,
# concurrency) and the browser / live-server tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARTIFACTS=${ARTIFACTS:-artifacts}
mkdir -p "$ARTIFACTS"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_packages=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_packages+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]} from the system's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

# Start the first PostgreSQL cluster on loopback and give drsorch a superuser (the test
# runner creates and drops its own test databases).
PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
as_root pg_ctlcluster "$PG_VERSION" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  as_root su postgres -c "pg_isready -q" && break
  sleep 1
done
as_root su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='drsorch'\" | grep -q 1 || psql -q -c \"CREATE ROLE drsorch LOGIN SUPERUSER PASSWORD 'drsorch'\""
as_root su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='drsorch'\" | grep -q 1 || createdb -O drsorch drsorch"

export DATABASE_URL=${E2E_DATABASE_URL:-postgres://drsorch:drsorch@127.0.0.1:5432/drsorch}
export ARTIFACTS

echo "== PostgreSQL and browser tests"
"$PY" -m pytest -q -m "postgres or e2e" -p no:xdist

echo "== API fuzzing with schemathesis against a live server"
bash .ci/schemathesis.sh
