#!/usr/bin/env bash
# Runs the README walkthrough against a running server, as a reader would
# paste it, and checks what it printed. The walkthrough is the shell block
# between the `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->`
# markers of README.md: this script runs that text, not a copy of it, so the
# README cannot drift from what works.
#
# usage: scripts/walkthrough.sh [BASE_URL]      (default http://127.0.0.1:8000)
#
# The server must use the password the block exports, e.g. in embedded mode:
#   MEMORA_DEMO_PASSWORD='Demo-Memora-2026!' cargo run -p memora-http
# Needs bash, curl, grep, cut and tr (no jq). memora-http's `ops` tests run it
# against a server they start (cargo test -p memora-http --test ops walkthrough).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export MEMORA_URL=${1:-${MEMORA_URL:-http://127.0.0.1:8000}}

block=$(awk '/<!-- walkthrough:begin -->/ {on = 1; next} /<!-- walkthrough:end -->/ {on = 0} on' "$root/README.md" |
  sed '/^```/d')
if [ -z "$block" ]; then
  echo "walkthrough.sh: no walkthrough block in $root/README.md" >&2
  exit 2
fi
command -v curl >/dev/null || { echo "walkthrough.sh: curl is not installed" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "==> running the README walkthrough against $MEMORA_URL"
set +e
out=$(cd "$work" && bash -euo pipefail -c "$block" 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
fail() { echo "walkthrough FAILED: $*" >&2; exit 1; }
[ "$rc" -eq 0 ] || fail "the README block exited with status $rc"
expect() { grep -q -- "$1" <<<"$out" || fail "expected $2 (pattern: $1)"; }
expect '"message":"Logged In"' "the login to succeed"
expect '^CSRF token: [0-9a-f]\{40\}$' "the CSRF token from the login header"
expect '"questions":\[{' "a review session with at least one card"
expect '"status":"success"' "the answer to be accepted"
expect '"totalXP":' "the profile"
if grep -q '"exc_type"' <<<"$out"; then fail "a call answered with an error"; fi

# The institutions block (README "Institutions"), run the same way.
block=$(awk '/<!-- institutions:begin -->/ {on = 1; next} /<!-- institutions:end -->/ {on = 0} on' "$root/README.md" |
  sed '/^```/d')
[ -n "$block" ] || fail "no institutions block in README.md"
# It uses the password the walkthrough exported, as a reader's shell would.
export MEMORA_DEMO_PASSWORD=${MEMORA_DEMO_PASSWORD:-Demo-Memora-2026!}
echo "==> running the README institutions block against $MEMORA_URL"
set +e
out=$(cd "$work" && bash -euo pipefail -c "$block" 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || fail "the institutions block exited with status $rc"
expect '"institution":"northside"' "the demo's second institution in the operator's list"
expect '"institution":"eastside","name":"Eastside School","status":"active"' "the new institution"
expect '"full_name":"Head of Eastside"' "its manager to log in"
if grep -q '"exc_type"' <<<"$out"; then fail "a call of the institutions block answered with an error"; fi
echo "walkthrough OK"
