#!/usr/bin/env bash
# The end-to-end suite: installs PostgreSQL, Redis and Chromium from the system's packages,
# starts PostgreSQL and a private Redis on loopback, then runs the PostgreSQL-marked tests
# (migrations, constraints, concurrency, two django-q2 workers on the Redis broker) and the
# browser / live-server tests against them. What the script started it stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARTIFACTS=${ARTIFACTS:-artifacts}
mkdir -p "$ARTIFACTS"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_packages=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_packages+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]} from the system's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

# Start the first PostgreSQL cluster on loopback and give drsorch a superuser (the test
# runner creates and drops its own test databases).
PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
# A cluster that was already running (a developer's, or another suite's) is left running.
PG_STARTED=
if ! as_root su postgres -c "pg_isready -q" 2>/dev/null; then
  as_root pg_ctlcluster "$PG_VERSION" main start 2>/dev/null && PG_STARTED=1 || true
fi

# A private Redis for the two-worker test (tests/e2e/test_workers.py): its own port and
# directory, no persistence, so the test may empty its django-q2 keys without touching
# anyone else's Redis.
REDIS_PORT=${E2E_REDIS_PORT:-6391}
REDIS_DIR=$(mktemp -d -t drsorch-e2e-redis.XXXXXX)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --save "" --appendonly no \
  --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"

stop_started() {
  if [ -f "$REDIS_DIR/redis.pid" ]; then
    local pid
    pid=$(cat "$REDIS_DIR/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Gone before the script ends, not a moment later.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$REDIS_DIR"
  if [ -n "$PG_STARTED" ]; then as_root pg_ctlcluster "$PG_VERSION" main stop 2>/dev/null || true; fi
}
trap stop_started EXIT

for _ in $(seq 1 30); do
  [ -f "$REDIS_DIR/redis.pid" ] && redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.2
done
# A port already taken would leave the test talking to someone else's Redis.
if ! { [ -f "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; }; then
  echo "Redis did not start on port $REDIS_PORT (set E2E_REDIS_PORT to a free port):" >&2
  tail -n 5 "$REDIS_DIR/redis.log" >&2 || true
  exit 1
fi
for _ in $(seq 1 30); do
  as_root su postgres -c "pg_isready -q" && break
  sleep 1
done
as_root su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='drsorch'\" | grep -q 1 || psql -q -c \"CREATE ROLE drsorch LOGIN SUPERUSER PASSWORD 'drsorch'\""
as_root su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='drsorch'\" | grep -q 1 || createdb -O drsorch drsorch"

export DATABASE_URL=${E2E_DATABASE_URL:-postgres://drsorch:drsorch@127.0.0.1:5432/drsorch}
export ARTIFACTS
# Only the two-worker test uses Redis: the rest of the suite keeps the ORM broker.
export E2E_REDIS_URL=${E2E_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}

echo "== PostgreSQL and browser tests"
"$PY" -m pytest -q -m "postgres or e2e" -p no:xdist

echo "== API fuzzing with schemathesis against a live server"
bash .ci/schemathesis.sh
