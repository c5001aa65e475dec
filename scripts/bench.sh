#!/usr/bin/env bash
# Reproduces docs/PERFORMANCE.md from an empty database: builds in release
# mode, runs the core micro-benchmarks, the PostgreSQL and Redis adapter
# benchmarks, loads the benchmark population, starts the server on
# PostgreSQL + a private Redis, and drives it with the open-loop load
# generator. Results land in bench-results/.
#
#   scripts/bench.sh                 # 100 K players × 100 questions (10 M rows)
#   PLAYERS=1000 scripts/bench.sh    # 100 K rows (quick)
#   SKIP_MICRO=1 SKIP_LOAD=1 scripts/bench.sh   # reuse a loaded database
#   SKIP_HOTPATH=1 scripts/bench.sh              # without the side-by-side hot-path run
#   SKIP_REHYDRATE=1 scripts/bench.sh            # without the end-to-end rehydration run
#
# Last, scripts/bench-hotpath.sh runs the review and submission paths of
# this tree and of BASE_REF (default 7b1b803) side by side on its own
# database (10 M rows); then scripts/bench-rehydrate.sh times the first
# session of learners of 100 000 cards, read from PostgreSQL (its own
# database, memora_big).
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYERS=${PLAYERS:-100000}
QUESTIONS=${QUESTIONS:-100}
LOGIN_USERS=${LOGIN_USERS:-2000}
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_bench}
REDIS_PORT=${REDIS_PORT:-6391}
PORT=${PORT:-8091}
OUT=bench-results
mkdir -p "$OUT"
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}

log() { printf '\n==> %s\n' "$*" >&2; }

log "release build"
cargo build --release -p memora-http -p memora-bench --bins
cargo build --release -p memora-store-postgres --bin memora-pg-load
cargo build --release -p memora-cache-redis --example redis_bench

if [ "${SKIP_MICRO:-0}" != 1 ]; then
  log "core micro-benchmarks (criterion)"
  cargo bench -p memora-bench --bench core -- --noplot 2>&1 | tee "$OUT/core-bench.txt" | grep -E '^[a-z_0-9/]+ +time:' || true
  log "FSRS evaluation on the real review log"
  ./target/release/memora eval-revlog data/py-fsrs-josh-revlog/review_logs_josh_1711744352250_to_1728234780857.csv | tee "$OUT/eval-revlog.txt"
  log "Redis adapter benchmarks"
  ./target/release/examples/redis_bench redis://127.0.0.1:6379 | tee "$OUT/redis-bench.txt"
fi

if [ "${SKIP_LOAD:-0}" != 1 ]; then
  log "data generator: $PLAYERS players x $QUESTIONS questions"
  ./target/release/datagen --url "$DB_URL" --fresh --players "$PLAYERS" --questions "$QUESTIONS" --login-users "$LOGIN_USERS" 2>&1 | tee "$OUT/datagen.txt"
fi

log "private redis on $REDIS_PORT"
RDIR=$(mktemp -d)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$RDIR" --daemonize yes --logfile "$RDIR/redis.log"
cleanup() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$RDIR"
}
trap cleanup EXIT
sleep 0.5

log "server on 127.0.0.1:$PORT (PostgreSQL + Redis)"
MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
  RUST_LOG=warn ./target/release/memora serve > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

LG="./target/release/loadgen --url http://127.0.0.1:$PORT --users $LOGIN_USERS"
log "get_review_session at 2000 req/s"
$LG --only review --rate 2000 --duration 20 --warmup 5 --out "$OUT/review-2000.json" > /dev/null
log "mixed load at 500 req/s with 10,000 extra open connections"
$LG --rate 500 --duration 20 --warmup 5 --hold-connections 10000 --out "$OUT/mixed-10k-conns.json" > /dev/null
log "maximum sustainable rate (P99 < 10 ms), mixed"
$LG --find-max --rate 100 --duration 10 --warmup 3 --out "$OUT/find-max.json" > /dev/null
log "submit_review_session (50 answers) at 50 req/s, with persistence-lag probe"
$LG --only submit --answers-min 50 --answers-max 50 --rate 50 --duration 20 --warmup 5 \
  --lag-probe-db "$DB_URL" --out "$OUT/submit-50.json" > /dev/null
sleep 15
log "submit_review_session (50 answers) at 200 req/s, with persistence-lag probe"
$LG --only submit --answers-min 50 --answers-max 50 --rate 200 --duration 20 --warmup 5 \
  --lag-probe-db "$DB_URL" --out "$OUT/submit-200.json" > /dev/null
sleep 30

log "safe mode: Redis stopped"
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
sleep 1.5
# Below the global limit (500/min) and at most one request per user per 30 s,
# so what is measured is the latency of safe mode, not its 429s.
$LG --only review --no-prefetch --rate 5 --duration 30 --warmup 0 --out "$OUT/safe-mode.json" > /dev/null

log "PostgreSQL adapter benchmarks"
./target/release/memora-pg-load --url "$DB_URL" --skip-load --bench 2>&1 | tee "$OUT/pg-bench.txt" || true

log "summary"
for f in review-2000 mixed-10k-conns submit-50 submit-200 safe-mode; do
  printf '%-18s ' "$f"
  python3 -c "import json,sys; d=json.load(open('$OUT/$f.json')); o=d['overall']; print('achieved %.0f/s  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f ms  errors %d  429s %d' % (d['achieved_rate'], o['p50_ms'], o['p90_ms'], o['p99_ms'], o['p999_ms'], o['errors'], o['rate_limited']))"
done
for f in submit-50 submit-200; do
  python3 -c "import json; d=json.load(open('$OUT/$f.json')); l=d.get('persistence_lag'); print('$f persistence lag p50 %.1f p99 %.1f ms (n=%d)' % (l['p50_ms'], l['p99_ms'], l['count']) if l else 'no lag data')"
done
python3 -c "import json; d=json.load(open('$OUT/find-max.json')); m=d['max_sustainable']; print('max sustainable (P99<10ms):', m and m['achieved_rate'])"

if [ "${SKIP_HOTPATH:-0}" != 1 ]; then
  log "hot path: this tree against ${BASE_REF:-7b1b803}, side by side (scripts/bench-hotpath.sh)"
  scripts/bench-hotpath.sh
fi

if [ "${SKIP_REHYDRATE:-0}" != 1 ]; then
  log "rehydration of 100 000-card learners from PostgreSQL, end to end (scripts/bench-rehydrate.sh)"
  scripts/bench-rehydrate.sh
fi
