#!/usr/bin/env bash
# Schema-driven fuzzing of the API with schemathesis: starts `memora serve`
# (embedded backend, demo data) on a free port, creates an API token for the
# demo System Manager, and lets schemathesis call every operation of
# /api/openapi.json with generated valid and invalid arguments, checking that
# no call is a server error and every response matches its documented
# status, content type and schema.
#
#   pip install schemathesis        # once
#   scripts/fuzz-openapi.sh [extra schemathesis options, e.g. --max-examples 50]
#
# The last result is recorded in docs/API.md.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=target}"
command -v schemathesis >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 2; }
cargo build -q -p memora-http --bin memora
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
BASE="http://127.0.0.1:$PORT"
export MEMORA_DEMO_PASSWORD=${MEMORA_DEMO_PASSWORD:-fuzz-demo-password-1}
export MEMORA_BIND="127.0.0.1:$PORT"
unset MEMORA_DATABASE_URL MEMORA_REDIS_URL MEMORA_REDIS_CLUSTER_NODES
LOG=$(mktemp)
"$CARGO_TARGET_DIR/debug/memora" serve >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$LOG" "${JAR:-}"' EXIT
for _ in $(seq 1 100); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
JAR=$(mktemp)
CSRF=$(curl -fs -c "$JAR" -X POST "$BASE/api/method/login" \
  -H 'Content-Type: application/json' \
  -d "{\"usr\":\"admin@demo.memora\",\"pwd\":\"$MEMORA_DEMO_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
TOKEN=$(curl -fs -b "$JAR" -X POST "$BASE/api/method/memora.api.admin.create_api_key" \
  -H 'Content-Type: application/json' -H "X-Frappe-CSRF-Token: $CSRF" \
  -d '{"user":"admin@demo.memora"}' |
  python3 -c 'import json,sys; m=json.load(sys.stdin)["message"]; print(m["api_key"]+":"+m["api_secret"])')
# login and logout are left out: generated logins only exercise the login
# throttle, and logout has nothing to end for a token caller.
schemathesis run "$BASE/api/openapi.json" \
  --url "$BASE" \
  -H "Authorization: token $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /api/method/login \
  --exclude-path /api/method/logout \
  --max-examples "${MAX_EXAMPLES:-25}" \
  --seed 1 \
  "$@"
