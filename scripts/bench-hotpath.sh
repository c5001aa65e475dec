#!/usr/bin/env bash
# The hot path of this tree against BASE_REF, side by side in one run
# (docs/PERFORMANCE.md, "Hot path"): both servers in turn on the same
# PostgreSQL database, each with a fresh private Redis, driven by this tree's
# open-loop load generator.
#
#   scripts/bench-hotpath.sh                          # 50 K players x 200 questions = 10 M rows
#   PLAYERS=500 scripts/bench-hotpath.sh              # 100 K rows
#   SKIP_LOAD=1 scripts/bench-hotpath.sh              # reuse the loaded database
#   BASE_REF=<commit> scripts/bench-hotpath.sh        # compare with another commit
#   BASE_SQL='…' scripts/bench-hotpath.sh             # SQL run before the base's turn, e.g. to undo
#                                                     # a migration the base does not know (the
#                                                     # branch's server applies it again)
#
# Per server: get_review_session in a closed loop at 4, 16 and 64
# connections (rate and latency), submit_review_session with 50 answers at 200 req/s (each
# submission answers a session of 50 cards the server served just before;
# that read is not counted in the submission's latency), and the PostgreSQL
# and Redis round trips per request read from /metrics. Plus the raw Redis
# ZRANGEBYSCORE ... LIMIT 0 15 rate at the same client concurrency, the
# ceiling the review path is compared with.
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), redis-server,
# redis-benchmark and git.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_REF=${BASE_REF:-7b1b803}
PLAYERS=${PLAYERS:-50000}
QUESTIONS=${QUESTIONS:-200}
LOGIN_USERS=${LOGIN_USERS:-4000}
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_hotpath}
REDIS_PORT=${REDIS_PORT:-6392}
PORT=${PORT:-8092}
SUBMIT_RATE=${SUBMIT_RATE:-200}
SUBMIT_ANSWERS=${SUBMIT_ANSWERS:-50}
# Each submission takes the next of its server's LOGIN_USERS / 2 users, so
# that every one answers a full session: keep SUBMIT_RATE × (SUBMIT_SECS +
# SUBMIT_WARMUP) at most LOGIN_USERS / 2 (the summary shows the answers per
# submission and the submissions skipped for want of a due card).
SUBMIT_SECS=${SUBMIT_SECS:-8}
# The review runs read users 0 … REVIEW_USERS - 1 (reads only: their
# schedules get cached in that server's Redis).
REVIEW_USERS=${REVIEW_USERS:-500}
# Submitting users are FIRST_USER … FIRST_USER + LOGIN_USERS - 1: by
# default after the review runs' users, so that no submitting learner of
# either server was read before (the load gives the first FIRST_USER +
# LOGIN_USERS users a login; with SKIP_LOAD=1 on a database loaded with
# fewer, lower FIRST_USER or LOGIN_USERS).
FIRST_USER=${FIRST_USER:-$REVIEW_USERS}
# SUBMIT_WARM=1: every submitting user reads one session before the run, so
# the submissions find their schedules cached (a learner who reviewed
# within the schedule TTL); by default each submission's read is the
# learner's first, which loads the schedule from PostgreSQL.
SUBMIT_WARM=${SUBMIT_WARM:-0}
SUBMIT_WARMUP=${SUBMIT_WARMUP:-1}
OUT=${OUT:-bench-results/hotpath-$((PLAYERS * QUESTIONS))}
mkdir -p "$OUT"
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}
BASE_DIR=${BASE_DIR:-target/bench-base-src}
BASE_BIN=target/bench-base/memora-$BASE_REF

log() { printf '\n==> %s\n' "$*" >&2; }

# The base is built in a worktree with a target directory of its own (two
# checkouts of one workspace must not share one: cargo would take either's
# artifacts as fresh for the other), and its binary kept.
if [ ! -x "$BASE_BIN" ]; then
  log "release build of $BASE_REF"
  if [ ! -d "$BASE_DIR" ]; then
    git worktree add --detach "$BASE_DIR" "$BASE_REF" >/dev/null
  else
    git -C "$BASE_DIR" checkout --detach -q "$BASE_REF"
  fi
  (cd "$BASE_DIR" && CARGO_TARGET_DIR="$PWD/../bench-base-target" cargo build --release -p memora-http --bin memora)
  mkdir -p "$(dirname "$BASE_BIN")"
  cp target/bench-base-target/release/memora "$BASE_BIN"
fi

log "release build of this tree"
cargo build --release -p memora-http --bin memora
cargo build --release -p memora-bench --bin loadgen --bin datagen

if [ "${SKIP_LOAD:-0}" != 1 ]; then
  log "data generator: $PLAYERS players x $QUESTIONS questions"
  ./target/release/datagen --url "$DB_URL" --fresh --players "$PLAYERS" --questions "$QUESTIONS" \
    --login-users "$((FIRST_USER + LOGIN_USERS))" 2>&1 | tee "$OUT/datagen.txt"
  # Settle the freshly loaded tables first, so the measurement does not
  # compete with autovacuum's pass over them.
  log "VACUUM (ANALYZE) and CHECKPOINT"
  psql "$DB_URL" -qc "VACUUM (ANALYZE)" -c "CHECKPOINT"
fi

RDIR=$(mktemp -d)
SERVER_PID=
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$RDIR" --daemonize yes --logfile "$RDIR/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
stop_redis() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; sleep 0.5; rm -rf "${RDIR:?}"/*; }
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
cleanup() { stop_server; stop_redis; rm -rf "$RDIR"; }
trap cleanup EXIT

log "raw Redis: ZRANGEBYSCORE ... LIMIT 0 15 on a 100-member sorted set, 16 clients"
start_redis
for i in $(seq 1 100); do echo "ZADD bench:z $i m$i"; done | redis-cli -p "$REDIS_PORT" >/dev/null
redis-benchmark -p "$REDIS_PORT" -c 16 -n 300000 -q ZRANGEBYSCORE bench:z -inf 60 LIMIT 0 15 \
  2>&1 | tr '\r' '\n' | grep -E 'requests per second' | tail -1 | tee "$OUT/raw-redis.txt"
stop_redis

# metric value: sum over the lines of `name{...route="R"...}`.
metric() {
  awk -v n="$1" -v r="route=\"$2\"" 'index($0, n"{")==1 && index($0, r) { s += $NF } END { print s+0 }' "$3"
}

# Where PostgreSQL time goes during the submissions, if pg_stat_statements
# is loaded (shared_preload_libraries): reset before, top statements after.
pgss() {
  if [ "$(psql "$DB_URL" -Atc "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'" 2>/dev/null)" != 1 ]; then
    psql "$DB_URL" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
  fi
  case $1 in
    reset) psql "$DB_URL" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null 2>&1 || true ;;
    report) psql "$DB_URL" -c "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,
        round(mean_exec_time::numeric, 3) AS mean_ms, shared_blks_hit AS hit, shared_blks_read AS read,
        left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time DESC LIMIT 12" 2>&1 || echo "pg_stat_statements not loaded" ;;
  esac
}

run_server() { # label binary first_user
  local label=$1 bin=$2 first=$3
  log "$label: $bin"
  # The nightly jobs stay out of the measurement (scripts/bench-park-jobs.sql).
  psql "$DB_URL" -qf scripts/bench-park-jobs.sql >/dev/null || true
  start_redis
  MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
    RUST_LOG=warn "$bin" serve > "$OUT/server-$label.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  local half=$((LOGIN_USERS / 2))
  local LG="./target/release/loadgen --url http://127.0.0.1:$PORT"
  for c in 4 16 64; do
    log "$label: reviews, closed loop, $c connections"
    $LG --only review --users "$((REVIEW_USERS < half ? REVIEW_USERS : half))" --first-user 0 --closed-loop "$c" --duration 10 --warmup 3 \
      --out "$OUT/review-c$c-$label.json" > /dev/null
  done
  curl -fs "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics-review-$label.txt"
  log "$label: submissions of $SUBMIT_ANSWERS answers at $SUBMIT_RATE req/s"
  pgss reset
  $LG --only submit --users "$half" --first-user "$first" --answers-min "$SUBMIT_ANSWERS" --answers-max "$SUBMIT_ANSWERS" \
    --rate "$SUBMIT_RATE" --duration "$SUBMIT_SECS" --warmup "$SUBMIT_WARMUP" $([ "$SUBMIT_WARM" = 1 ] || echo --no-prefetch) \
    --out "$OUT/submit-$label.json" > /dev/null
  curl -fs "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics-$label.txt"
  sleep 3 # let the worker persist the last answers
  pgss report > "$OUT/pg-statements-$label.txt"
  stop_server
  stop_redis
}

if [ -n "${BASE_SQL:-}" ]; then
  log "before the base: $BASE_SQL"
  psql "$DB_URL" -qc "$BASE_SQL"
fi
run_server base "$BASE_BIN" $((FIRST_USER + LOGIN_USERS / 2))
run_server branch ./target/release/memora "$FIRST_USER"
# The branch answered the first half's cards, the base the second half's:
# each answered cards no one had answered before.

log "summary ($((PLAYERS * QUESTIONS)) tracker rows)"
raw=$(grep -oE '[0-9.]+ requests per second' "$OUT/raw-redis.txt" | grep -oE '^[0-9.]+' || echo 0)
printf 'raw Redis ZRANGEBYSCORE, 16 clients: %s req/s\n' "$raw"
for label in base branch; do
  python3 - "$OUT" "$label" "$raw" "$SUBMIT_ANSWERS" <<'PY'
import json, sys
out, label, raw = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)
def per(route, metrics):
    text = open(f"{out}/{metrics}").read()
    def total(name):
        return sum(float(l.rsplit(' ', 1)[1]) for l in text.splitlines()
                   if l.startswith(name + '{') and f'route="{route}"' in l)
    n = total("memora_http_request_duration_seconds_count")
    pg, rd = total("memora_postgres_round_trips_total"), total("memora_redis_round_trips_total")
    if n == 0 or (pg == 0 and rd == 0):
        return "not counted"
    return f"{pg / n:.2f} PG + {rd / n:.2f} Redis"
for c in (4, 16, 64):
    d = json.load(open(f"{out}/review-c{c}-{label}.json"))
    o = d["overall"]
    extra = f"  server/raw Redis {d['achieved_rate'] / raw:.3f}" if c == 16 and raw else ""
    print(f"{label:<7} reviews  {c:>2} conn: {d['achieved_rate']:8.0f} req/s  P50 {o['p50_ms']:6.2f}  P99 {o['p99_ms']:6.2f} ms  errors {o['errors']}{extra}")
s = json.load(open(f"{out}/submit-{label}.json"))
o = s["overall"]
sub = s.get("submissions", {})
print(f"{label:<7} submit {sys.argv[4]} answers at {s['target_rate']:.0f}/s: achieved {s['achieved_rate']}/s  P50 {o['p50_ms']:.2f}  P90 {o['p90_ms']:.2f}  P99 {o['p99_ms']:.2f} ms  errors {o['errors']}  n={o['count']}  answers/submission {sub.get('answers_mean', 0):.1f}  skipped {sub.get('skipped_no_card_served', 0)}")
print(f"{label:<7} round trips per request: review {per('get_review_session', f'metrics-review-{label}.txt')}, submit {per('submit_review_session', f'metrics-{label}.txt')}")
PY
done
