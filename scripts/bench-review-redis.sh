#!/usr/bin/env bash
# Redis' work per warm review: redis-server under valgrind's callgrind,
# counting only while warm learners read sessions (get_review_session in a
# closed loop at 4 connections for 10 s, after a pass that loads every
# learner's schedule); prints instructions per review script, in all and
# inside EVALSHA (the latter leaves out Redis' timers, which run more often
# the slower valgrind makes the server). docs/PERFORMANCE.md, "Redis
# commands per submission".
#
#   scripts/bench-review-redis.sh                                 # this tree's release build
#   BIN=/path/to/memora LABEL=base scripts/bench-review-redis.sh  # another build
#
# Needs the database of scripts/bench-hotpath.sh (learners 0-99 with
# logins), redis-server, valgrind and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_hotpath}
BIN=${BIN:-target/release/memora}
LABEL=${LABEL:-branch}
USERS=${USERS:-100}
REDIS_PORT=${REDIS_PORT:-6394}
PORT=${PORT:-8094}
OUT=${OUT:-bench-results/review-redis-$LABEL}
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}
[ -x target/release/loadgen ] || cargo build --release -p memora-bench --bin loadgen
[ "$BIN" != target/release/memora ] || cargo build --release -p memora-http --bin memora
rm -rf "$OUT"
mkdir -p "$OUT"
RDIR=$(mktemp -d)
SERVER_PID=
RPID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -n "$RPID" ] && wait "$RPID" 2>/dev/null || true
  rm -rf "$RDIR"
}
trap cleanup EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$PWD/$OUT/callgrind-redis.out" \
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$RDIR" --logfile "$RDIR/redis.log" >/dev/null 2>"$OUT/valgrind.log" &
RPID=$!
for _ in $(seq 1 300); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
  RUST_LOG=warn "$BIN" serve > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
LG="./target/release/loadgen --url http://127.0.0.1:$PORT --only review --users $USERS --first-user 0 --closed-loop 4"
# Every learner's schedule loaded (and the scripts too) before counting.
$LG --duration 6 --warmup 1 > /dev/null 2>"$OUT/loadgen-warm.err"
evalsha() { redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '/^cmdstat_evalsha:/ {print $3}'; }
before=$(evalsha)
callgrind_control -i on "$RPID" >/dev/null
$LG --duration 10 --warmup 0 > "$OUT/reviews.json" 2>"$OUT/loadgen.err"
callgrind_control -i off "$RPID" >/dev/null
after=$(evalsha)
rm -f "$OUT"/callgrind-redis.out*
callgrind_control -d "$RPID" >/dev/null
sleep 1
redis-cli -p "$REDIS_PORT" info commandstats > "$OUT/redis-commandstats.txt"
python3 - "$OUT" "$LABEL" "$before" "$after" <<'PY'
import glob, re, subprocess, sys
out, label, before, after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n = after - before
total, evalsha = 0, 0
for d in glob.glob(f"{out}/callgrind-redis.out*"):
    for line in open(d, errors="replace"):
        if line.startswith("totals:"):
            total += int(line.split()[1])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", d], capture_output=True, text=True).stdout
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+) .*:evalShaCommand ", line)
        if m:
            evalsha += int(m.group(1).replace(",", ""))
if n > 0:
    print(f"{label}: {n} review scripts; Redis instructions per script {total / n / 1e3:.0f} K in all, "
          f"{evalsha / n / 1e3:.0f} K inside EVALSHA")
PY
