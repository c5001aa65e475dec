#!/usr/bin/env bash
# End-to-end rehydration of large learners (docs/PERFORMANCE.md,
# "Rehydration from PostgreSQL, end to end"): `memora serve` on PostgreSQL
# + a private Redis; each of USERS learners of QUESTIONS cards reads a
# review session with their schedule absent from Redis (every row read
# from PostgreSQL, the schedule loaded, 15 cards served), ROUNDS times
# (the schedules flushed between rounds). Prints the requests' latency
# (min / P50 / max) and the CPU time per rehydration of the server,
# PostgreSQL and Redis.
#
#   scripts/bench-rehydrate.sh                      # 10 learners x 100 000 cards
#   SKIP_LOAD=1 scripts/bench-rehydrate.sh          # reuse the loaded database
#   BIN=/path/to/memora scripts/bench-rehydrate.sh  # another build
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), redis-server
# and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-10}
QUESTIONS=${QUESTIONS:-100000}
ROUNDS=${ROUNDS:-3}
# A database of its own (loaded with --fresh): not MEMORA_BENCH_DATABASE_URL,
# which scripts/bench.sh may have pointed at its own population.
DB_URL=${REHYDRATE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_big}
BIN=${BIN:-target/release/memora}
REDIS_PORT=${REDIS_PORT:-6396}
PORT=${PORT:-8096}
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}
[ "$BIN" != target/release/memora ] || cargo build --release -p memora-http --bin memora
if [ "${SKIP_LOAD:-0}" != 1 ]; then
  cargo build --release -p memora-bench --bin datagen
  ./target/release/datagen --url "$DB_URL" --fresh --players "$USERS" --questions "$QUESTIONS" --login-users "$USERS"
  psql "$DB_URL" -qc 'VACUUM (ANALYZE)'
fi
psql "$DB_URL" -qf scripts/bench-park-jobs.sql >/dev/null || true
RDIR=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$RDIR"
}
trap cleanup EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$RDIR" --daemonize yes --logfile "$RDIR/redis.log" --pidfile "$RDIR/redis.pid"
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
  RUST_LOG=warn "$BIN" serve > "$RDIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
URL="http://127.0.0.1:$PORT/api/method/memora.api.reviews.get_review_session?limit=15"
# Logins, and a first read of each learner (it numbers the questions and
# loads the catalog: once per database and process, not measured).
for i in $(seq 0 $((USERS - 1))); do
  u=$(printf 'bench-u%08d' "$i")
  curl -fs -c "$RDIR/c$i" -o /dev/null -d "usr=$u&pwd=$MEMORA_BENCH_PASSWORD" "http://127.0.0.1:$PORT/api/method/login"
  curl -fs -b "$RDIR/c$i" -o /dev/null "$URL"
done
redis-cli -p "$REDIS_PORT" flushall >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pgcpu() {
  local t=0
  for p in $(pgrep -u postgres postgres); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
RPID=$(cat "$RDIR/redis.pid")
s0=$(cpu "$SERVER_PID"); p0=$(pgcpu); r0=$(cpu "$RPID")
times=()
for _ in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((USERS - 1))); do
    times+=("$(curl -fs -b "$RDIR/c$i" -o /dev/null -w '%{time_total}' "$URL")")
  done
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
done
s1=$(cpu "$SERVER_PID"); p1=$(pgcpu); r1=$(cpu "$RPID")
n=${#times[@]}
hz=$(getconf CLK_TCK)
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$n" '{a[NR] = $1 * 1000} END {
  printf "rehydrations of %d-card learners: n=%d  min %.1f  P50 %.1f  max %.1f ms\n", '"$QUESTIONS"', n, a[1], a[int(n / 2) + 1], a[n] }'
awk -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v r=$((r1 - r0)) -v n="$n" -v hz="$hz" 'BEGIN {
  printf "CPU per rehydration: server %.0f ms, PostgreSQL %.0f ms, Redis %.0f ms\n", s * 1000 / hz / n, p * 1000 / hz / n, r * 1000 / hz / n }'
