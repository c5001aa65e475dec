#!/usr/bin/env bash
# One point of the growth curve in docs/PERFORMANCE.md ("Growth to a billion
# rows"): loads PLAYERS x QUESTIONS tracker rows (plus as many review-log rows
# and review ids) with datagen into a database of its own and records
#
#   load.txt            datagen's report and the wall time of the load (a load cut
#                       off by a server restart is resumed: datagen --resume)
#   load-progress.tsv   during the load, every SAMPLE_SECS: seconds, tracker
#                       rows committed, database bytes (size vs rows, rate)
#   wal.txt             WAL bytes written during the load and during
#                       memora-pg-load (cluster-wide LSN differences: they
#                       include whatever else the server wrote)
#   sizes.tsv/.txt      heap, TOAST and index bytes per table and partition,
#                       and bytes per index, after VACUUM (ANALYZE)
#   explain-due.txt     EXPLAIN (ANALYZE, BUFFERS) of the safe-mode due query
#                       (the adapter's DUE_QUERY, prepared, limit 50) for
#                       five learners, each twice (first touch, then warm);
#                       explain-due-summary.txt: buffers and time of each
#   btree-levels.tsv    root level and pages of the big indexes (pageinspect)
#   pg-bench.txt        memora-pg-load: due query P50/P99 over DUE_QUERIES
#                       random learners, persist_batch answers/s
#   http-*.json         short loadgen runs on `memora serve` (PostgreSQL + a
#                       private Redis): reviews in a closed loop, submissions
#                       of SUBMIT_ANSWERS answers at SUBMIT_RATE with the
#                       persistence-lag probe, then reviews in safe mode
#                       (Redis stopped, 5 req/s, inside the rate limits)
#   redis-mem.txt       (REDIS_MEM=1) bytes per cached card: the whole season
#                       rebuilt into a private Redis (`memora cache rebuild`),
#                       used_memory before/after, without and with horizon
#                       mode (HORIZON_DAYS); meant for populations <= ~2 M rows
#
#   scripts/bench-growth.sh                                  # 300 000 x 100 = 30 M rows
#   PLAYERS=1000  scripts/bench-growth.sh                    # 100 K rows
#   PLAYERS=10000 REDIS_MEM=1 scripts/bench-growth.sh        # 1 M rows + Redis bytes per card
#   SKIP_LOAD=1 scripts/bench-growth.sh                      # re-measure a loaded database
#   RESUME=1 scripts/bench-growth.sh                         # complete a load that was cut off
#   DROP_DB=1 ...                                            # drop the database at the end
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and redis-server.
# Binaries come from ${CARGO_TARGET_DIR:-target}/release (built first).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYERS=${PLAYERS:-300000}
QUESTIONS=${QUESTIONS:-100}
LOGIN_USERS=${LOGIN_USERS:-2000}
SEASON=${SEASON:-SEASON-2026}
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_growth}
REDIS_PORT=${REDIS_PORT:-6393}
PORT=${PORT:-8093}
SAMPLE_SECS=${SAMPLE_SECS:-20}
DUE_QUERIES=${DUE_QUERIES:-2000}
PERSIST_BATCHES=${PERSIST_BATCHES:-40}
SUBMIT_RATE=${SUBMIT_RATE:-200}
SUBMIT_ANSWERS=${SUBMIT_ANSWERS:-10}
HTTP_SECS=${HTTP_SECS:-10}
HORIZON_DAYS=${HORIZON_DAYS:-7}
ROWS=$((PLAYERS * QUESTIONS))
OUT=${OUT:-bench-results/growth-$ROWS}
BIN=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$OUT"
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}
PSQL=(psql "$DB_URL" -X -q -v ON_ERROR_STOP=1)
ADMIN_URL="${DB_URL%/*}/postgres"

log() { printf '\n==> %s\n' "$*" >&2; }

log "release build"
cargo build --release -p memora-http -p memora-bench --bins
cargo build --release -p memora-store-postgres --bin memora-pg-load

RDIR=$(mktemp -d)
SERVER_PID=
SAMPLER_PID=
start_redis() { # extra redis-server arguments
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --dir "$RDIR" --daemonize yes \
    --logfile "$RDIR/redis.log" "$@"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
stop_redis() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; sleep 0.5; rm -rf "${RDIR:?}"/*; }
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  stop_server; stop_redis; rm -rf "$RDIR"
  if [ "${DROP_DB:-0}" = 1 ]; then
    psql "$ADMIN_URL" -X -qc "DROP DATABASE IF EXISTS \"${DB_URL##*/}\" WITH (FORCE)" || true
  fi
}
trap cleanup EXIT

if [ "${SKIP_LOAD:-0}" != 1 ]; then
  log "datagen: $PLAYERS players x $QUESTIONS questions = $ROWS tracker rows"
  lsn0=$(psql "$ADMIN_URL" -XAtc "SELECT pg_current_wal_lsn()")
  # Progress: tracker rows committed (pgstat, flushed after each COPY chunk)
  # and database size, every SAMPLE_SECS.
  (
    t0=$(date +%s)
    printf 'secs\ttracker_rows\tdb_bytes\n'
    while sleep "$SAMPLE_SECS"; do
      r=$("${PSQL[@]}" -At -c "SELECT coalesce(sum(n_tup_ins), 0) || E'\t' || pg_database_size(current_database())
            FROM pg_stat_user_tables WHERE relname LIKE 'memory_tracker%'" 2>/dev/null) || continue
      printf '%s\t%s\n' "$(($(date +%s) - t0))" "$r"
    done
  ) > "$OUT/load-progress.tsv" &
  SAMPLER_PID=$!
  # A load cut off by a lost connection (the server restarted: it is shared)
  # is resumed where it stopped (`datagen --resume`), up to LOAD_ATTEMPTS
  # times; the load time is the sum of the attempts, without the waits.
  mode=--fresh
  [ "${RESUME:-0}" = 1 ] && mode=--resume
  : > "$OUT/load.txt"
  load_secs=0
  for attempt in $(seq 1 "${LOAD_ATTEMPTS:-5}"); do
    start=$(date +%s.%N)
    ok=1
    "$BIN/datagen" --url "$DB_URL" $mode --players "$PLAYERS" --questions "$QUESTIONS" \
      --login-users "$LOGIN_USERS" --season "$SEASON" 2>&1 | tee -a "$OUT/load.txt" || ok=0
    load_secs=$(echo "$load_secs + $(date +%s.%N) - $start" | bc)
    [ "$ok" = 1 ] && break
    echo "datagen attempt $attempt failed after $(echo "$(date +%s.%N) - $start" | bc) s; resuming" | tee -a "$OUT/load.txt"
    mode=--resume
    for _ in $(seq 1 120); do psql "$ADMIN_URL" -XAtc "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
  done
  [ "$ok" = 1 ] || { echo "datagen failed ${LOAD_ATTEMPTS:-5} times" >&2; exit 1; }
  kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
  echo "datagen wall time: $load_secs s (sum of $attempt attempt(s))" | tee -a "$OUT/load.txt"
  lsn1=$(psql "$ADMIN_URL" -XAtc "SELECT pg_current_wal_lsn()")
  psql "$ADMIN_URL" -XAtc "SELECT 'WAL written during the load (cluster-wide): ' || pg_wal_lsn_diff('$lsn1', '$lsn0') || ' bytes'" \
    | tee "$OUT/wal.txt"
  log "VACUUM (ANALYZE) and CHECKPOINT"
  start=$(date +%s.%N)
  "${PSQL[@]}" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
  echo "VACUUM (ANALYZE) + CHECKPOINT: $(echo "$(date +%s.%N) - $start" | bc) s" | tee -a "$OUT/load.txt"
fi

log "sizes"
"${PSQL[@]}" -At -F $'\t' > "$OUT/sizes.tsv" <<'SQL'
-- kind, relation, partition parent, rows (reltuples), heap bytes, TOAST bytes, index bytes, total bytes
SELECT 'table', c.relname, coalesce(p.relname, ''), c.reltuples::bigint,
       pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND pg_total_relation_size(c.oid) > 1024 * 1024
UNION ALL
SELECT 'index', ic.relname, tc.relname, ic.reltuples::bigint, pg_relation_size(ic.oid), 0, 0, pg_relation_size(ic.oid)
FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_class tc ON tc.oid = x.indrelid
WHERE tc.relnamespace = 'public'::regnamespace AND tc.relkind = 'r'
  AND pg_relation_size(ic.oid) > 1024 * 1024
UNION ALL
SELECT 'database', current_database(), '', 0, 0, 0, 0, pg_database_size(current_database())
ORDER BY 1 DESC, 8 DESC;
SQL
column -t -s $'\t' "$OUT/sizes.tsv" | tee "$OUT/sizes.txt"

log "EXPLAIN (ANALYZE, BUFFERS) of the due query"
{
  echo "PREPARE due(text, text, timestamptz, text, text, bigint) AS
    SELECT season, user_id, question_id, subject_id, topic_id, scheduler, phase, step, stability,
           difficulty, reps, lapses, last_review, due, scheduled_days
    FROM memory_tracker
    WHERE user_id = \$1 AND season = \$2 AND due <= \$3
      AND (\$4::text IS NULL OR subject_id = \$4) AND (\$5::text IS NULL OR topic_id = \$5)
    ORDER BY due, question_id LIMIT \$6;"
  for u in 0 $((PLAYERS / 3)) $((PLAYERS / 2 + 7)) $((PLAYERS * 5 / 6 + 3)) $((PLAYERS - 1)); do
    id=$(printf 'bench-u%08d' "$u")
    for pass in first second; do
      echo "\\echo '--- $id ($pass execution)'"
      echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE due('$id', '$SEASON', now(), NULL, NULL, 50);"
    done
  done
} | "${PSQL[@]}" > "$OUT/explain-due.txt"
# Per execution: the top node's buffers and the execution time.
awk '/^--- /{if(l)print l; l=$0; b=0; next} /Buffers: shared/ && !b {sub(/^ */, ""); l=l" | "$0; b=1}
     /Execution Time/ {sub(/^ */, ""); l=l" | "$0} END{print l}' "$OUT/explain-due.txt" | tee "$OUT/explain-due-summary.txt"

# B-tree depth of the big indexes (pageinspect, if available): one more
# level is one more page per probe.
if "${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS pageinspect" 2>/dev/null; then
  "${PSQL[@]}" -At -F $'\t' -c "SELECT c.relname, (bt_metap(c.relname::text)).level, pg_relation_size(c.oid) / 8192
      FROM pg_class c WHERE c.relkind = 'i' AND c.relnamespace = 'public'::regnamespace
        AND pg_relation_size(c.oid) > 1024 * 1024 ORDER BY 3 DESC" | tee "$OUT/btree-levels.tsv"
fi

# Before the benchmarks below write answers (they move due dates, hence
# what horizon mode caches).
if [ "${REDIS_MEM:-0}" = 1 ]; then
  log "Redis bytes per cached card (whole season rebuilt into a private Redis)"
  : > "$OUT/redis-mem.txt"
  for horizon in none "$HORIZON_DAYS"; do
    start_redis --appendonly no
    before=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/{print $2+0}')
    hargs=()
    [ "$horizon" != none ] && hargs=(--cache-horizon-days "$horizon")
    start=$(date +%s.%N)
    "$BIN/memora" cache rebuild "$SEASON" --database-url "$DB_URL" \
      --redis-url "redis://127.0.0.1:$REDIS_PORT" "${hargs[@]}" > "$OUT/rebuild-$horizon.txt" 2>&1
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    after=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/{print $2+0}')
    keys=$(redis-cli -p "$REDIS_PORT" dbsize)
    if [ "$horizon" = none ]; then
      cached=$ROWS
    else
      cached=$("${PSQL[@]}" -At -c "SELECT count(*) FROM memory_tracker WHERE season = '$SEASON' AND due <= now() + interval '$horizon days'")
    fi
    # One learner's keys: type, encoding, MEMORY USAGE.
    sample=$(redis-cli -p "$REDIS_PORT" --scan --pattern '*bench-u00000001*' | sort | while read -r k; do
      printf '%s %s %s %s; ' "$k" "$(redis-cli -p "$REDIS_PORT" type "$k")" \
        "$(redis-cli -p "$REDIS_PORT" object encoding "$k")" "$(redis-cli -p "$REDIS_PORT" memory usage "$k" samples 0)"
    done)
    python3 - "$horizon" "$ROWS" "$cached" "$before" "$after" "$keys" "$secs" "$sample" <<'PY' | tee -a "$OUT/redis-mem.txt"
import sys
h, rows, cached, before, after, keys, secs, sample = sys.argv[1:]
rows, cached, d = int(rows), int(cached), int(after) - int(before)
print(f"horizon {h}: {rows} cards in the season, {cached} cached, {keys} keys, used_memory +{d} B, "
      f"{d / max(cached, 1):.1f} B per cached card, {d / rows:.1f} B per card of the season; "
      f"rebuild {float(secs):.1f} s ({rows / float(secs):.0f} cards/s)")
print(f"  one learner: {sample}")
PY
    stop_redis
  done
fi

if [ "${SKIP_PGBENCH:-0}" != 1 ]; then
  log "memora-pg-load: due query over $DUE_QUERIES learners, persist_batch"
  lsn0=$(psql "$ADMIN_URL" -XAtc "SELECT pg_current_wal_lsn()")
  "$BIN/memora-pg-load" --url "$DB_URL" --season "$SEASON" --players "$PLAYERS" --questions "$QUESTIONS" \
    --skip-load --bench --due-queries "$DUE_QUERIES" --batches "$PERSIST_BATCHES" --batch-size 500 \
    --scan-rows 200000 --seed 7 2>&1 | tee "$OUT/pg-bench.txt"
  lsn1=$(psql "$ADMIN_URL" -XAtc "SELECT pg_current_wal_lsn()")
  psql "$ADMIN_URL" -XAtc "SELECT 'WAL written during memora-pg-load (cluster-wide, $((PERSIST_BATCHES * 500)) answers persisted): ' || pg_wal_lsn_diff('$lsn1', '$lsn0') || ' bytes'" \
    | tee -a "$OUT/wal.txt"
fi

if [ "${SKIP_HTTP:-0}" != 1 ]; then
  log "HTTP: memora serve on PostgreSQL + private Redis"
  start_redis --appendonly yes --appendfsync everysec
  MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
    RUST_LOG=warn "$BIN/memora" serve > "$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  users=$((LOGIN_USERS < PLAYERS ? LOGIN_USERS : PLAYERS))
  half=$((users / 2))
  LG="$BIN/loadgen --url http://127.0.0.1:$PORT"
  log "reviews, closed loop, 16 connections ($half learners, first read of each rehydrates)"
  $LG --only review --users "$half" --first-user 0 --closed-loop 16 --duration "$HTTP_SECS" --warmup 3 \
    --out "$OUT/http-review-c16.json" > /dev/null
  log "submissions of $SUBMIT_ANSWERS answers at $SUBMIT_RATE req/s, persistence-lag probe"
  $LG --only submit --users "$half" --first-user "$half" --answers-min "$SUBMIT_ANSWERS" --answers-max "$SUBMIT_ANSWERS" \
    --rate "$SUBMIT_RATE" --duration "$HTTP_SECS" --warmup 2 --lag-probe-db "$DB_URL" \
    --out "$OUT/http-submit.json" > /dev/null
  sleep 5
  curl -fs "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics.txt" || true
  log "safe mode: Redis stopped, reviews at 5 req/s"
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  sleep 1.5
  $LG --only review --users "$users" --no-prefetch --rate 5 --duration 30 --warmup 0 \
    --out "$OUT/http-safe-mode.json" > /dev/null
  stop_server
  stop_redis
  : > "$OUT/http-summary.txt"
  for f in http-review-c16 http-submit http-safe-mode; do
    python3 - "$OUT/$f.json" "$f" <<'PY' | tee -a "$OUT/http-summary.txt"
import json, sys
d = json.load(open(sys.argv[1])); o = d["overall"]
lag = d.get("persistence_lag")
extra = f"  persistence lag P50 {lag['p50_ms']:.1f} P99 {lag['p99_ms']:.1f} ms (n={lag['count']})" if lag else ""
print(f"{sys.argv[2]:<16} achieved {d['achieved_rate']:.0f}/s  P50 {o['p50_ms']:.2f}  P99 {o['p99_ms']:.2f}  "
      f"P99.9 {o['p999_ms']:.2f} ms  n={o['count']}  errors {o['errors']}  429s {o['rate_limited']}{extra}")
PY
  done
fi

log "done: $OUT"
