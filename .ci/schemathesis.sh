#!/usr/bin/env bash
# API fuzzing: schemathesis drives every operation of /api/schema/ against a live server
# (a superuser's token, the sandbox demo seeded) and fails on any 5xx or any response that
# breaks the schema. Called by .ci/e2e.sh with DATABASE_URL (PostgreSQL) and ARTIFACTS set.
#
# The fuzzer creates, changes and deletes whatever it can, so it never runs on the database
# it is given: with a PostgreSQL DATABASE_URL it (re)creates the sibling database
# <name>_schemathesis on the same server (the role needs CREATEDB, as the test runner does);
# otherwise it uses a throw-away SQLite file.
#
# Tunables: SCHEMATHESIS_MAX_EXAMPLES (default 20 per operation), SCHEMATHESIS_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARTIFACTS=${ARTIFACTS:-artifacts}
mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)

WORKDIR=$(mktemp -d)
export DEBUG=true
case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*|pgsql://*)
    DATABASE_URL=$("$PY" - "$DATABASE_URL" <<'PYTHON'
import sys
from urllib.parse import urlsplit, urlunsplit

import environ
import psycopg

config = environ.Env.db_url_config(sys.argv[1])
name = f"{config['NAME']}_schemathesis"
server = {"host": config["HOST"] or None, "port": config["PORT"] or None, "user": config["USER"] or None,
          "password": config["PASSWORD"] or None}
with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.execute(f'CREATE DATABASE "{name}"')
print(urlunsplit(urlsplit(sys.argv[1])._replace(path=f"/{name}")))
PYTHON
)
    ;;
  *)
    DATABASE_URL=sqlite:///$WORKDIR/schemathesis.sqlite3
    ;;
esac
export DATABASE_URL
# The simulated DRS keeps its state beside that database, whatever the caller's setting.
unset DRSORCH_SANDBOX_DATABASE_URL
# Short launches keep the drill run below (to its end) to a few seconds.
export DRSORCH_SANDBOX_LAUNCH_SECONDS=${DRSORCH_SANDBOX_LAUNCH_SECONDS:-3}

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORKDIR"
}
trap stop_server EXIT

echo "== schemathesis: preparing the database"
"$PY" manage.py migrate --noinput >/dev/null
"$PY" manage.py migrate --database sandbox --noinput >/dev/null
"$PY" manage.py sandbox seed
TOKEN=$("$PY" manage.py shell -c '
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user = User.objects.filter(username="schemathesis").first() or User.objects.create_superuser(
    "schemathesis", "schemathesis@example.com", None)
print(Token.objects.get_or_create(user=user)[0].key)
' | tail -n 1)

# A drill run to its end gives the execution operations a real execution to read and act
# on; random UUIDs would only ever meet 404. Plan operations get its plan for the same reason.
"$PY" manage.py drill "Demo 3-tier application" --wait --json --auto-approve \
  >"$WORKDIR/drill.json" 2>"$ARTIFACTS/schemathesis-drill.log"
read -r EXECUTION_ID PLAN_ID < <("$PY" -c '
import json, sys
execution = json.load(open(sys.argv[1]))
print(execution["id"], execution["plan"]["id"])
' "$WORKDIR/drill.json")
cat >"$WORKDIR/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = '^/api/v1/executions/\{id\}/'
parameters = { "path.id" = "$EXECUTION_ID" }

[[operations]]
include-path-regex = '^/api/v1/plans/\{id\}/'
parameters = { "path.id" = $PLAN_ID }
TOML

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
echo "== schemathesis: starting the server at $BASE"
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload >"$ARTIFACTS/schemathesis-server.log" 2>&1 &
SERVER_PID=$!

seed_args=()
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then seed_args=(--seed "$SCHEMATHESIS_SEED"); fi

echo "== schemathesis: fuzzing $BASE/api/schema/"
status=0
"$(dirname "$PY")/schemathesis" --config-file "$WORKDIR/schemathesis.toml" run "$BASE/api/schema/" \
  --wait-for-schema 60 \
  --header "Authorization: Token $TOKEN" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-20}" \
  --request-timeout 60 \
  --workers 1 \
  --generation-database none \
  --report junit --report-junit-path "$ARTIFACTS/schemathesis-junit.xml" \
  --no-color \
  "${seed_args[@]}" || status=$?

if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); server log: $ARTIFACTS/schemathesis-server.log"
fi
exit "$status"
