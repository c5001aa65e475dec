#!/usr/bin/env bash
# One server, submissions of 50 answers at 200 req/s, and what each process
# spent on them: CPU time per submission of the server, Redis and
# PostgreSQL (all its processes), read from /proc over the load and the
# write-behind's drain after it — unlike latency, CPU time does not
# count the time a process waited for a core, so it compares builds on a
# noisy machine (docs/PERFORMANCE.md, "CPU per submission").
#
#   scripts/bench-submit.sh                                 # this tree's release build
#   BIN=/path/to/memora LABEL=base scripts/bench-submit.sh  # another build
#   FIRST_USER=4000 scripts/bench-submit.sh                 # learners no run has read yet
#   WARM=1 scripts/bench-submit.sh                          # each learner reads a session first
#   REFIT=1 scripts/bench-submit.sh                         # the load runs beside the nightly FSRS re-fit
#                                                           # (forgets the bench database's fitted parameters)
#   PERF=1 scripts/bench-submit.sh                          # + `perf record -a` of 4 s of the load
#   REDIS_ARGS='--auto-aof-rewrite-min-size 1gb' scripts/bench-submit.sh  # more redis-server options
#   CALLGRIND=1 RATE=4 USERS=100 SECS=20 scripts/bench-submit.sh      # server instructions per submission
#   CALLGRIND=redis RATE=4 USERS=100 SECS=20 scripts/bench-submit.sh  # Redis instructions per submission
#   RVG_ARGS=--dump-after=evalShaCommand CALLGRIND=redis RATE=4 USERS=30 SECS=6 WARM=1 scripts/bench-submit.sh
#     # + one dump per script call: python3 scripts/callgrind-scripts.py <OUT>
#
# Needs a database loaded by scripts/bench-hotpath.sh (datagen, with logins
# for FIRST_USER + USERS learners), PostgreSQL with pg_stat_statements
# preloaded (optional), redis-server and curl. Each learner answers one
# session: rerun with a new FIRST_USER for fresh learners.
set -euo pipefail
cd "$(dirname "$0")/.."
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_hotpath}
BIN=${BIN:-target/release/memora}
LABEL=${LABEL:-branch}
FIRST_USER=${FIRST_USER:-500}
USERS=${USERS:-1600}
RATE=${RATE:-200}
ANSWERS=${ANSWERS:-50}
SECS=${SECS:-7}
WARM=${WARM:-0}
PERF=${PERF:-0}
REDIS_PORT=${REDIS_PORT:-6392}
PORT=${PORT:-8092}
OUT=${OUT:-bench-results/submit-$LABEL-$FIRST_USER}
mkdir -p "$OUT"
CALLGRIND=${CALLGRIND:-0}
VG=
RVG=
if [ "$CALLGRIND" = redis ]; then
  # The same count for redis-server (its scripts, AOF and all), which
  # then runs under valgrind in the foreground of a background job.
  # RVG_ARGS='--dump-after=evalShaCommand': one dump per script call, kept
  # (scripts/callgrind-scripts.py splits them by script).
  RVG="valgrind --tool=callgrind --instr-atstart=no ${RVG_ARGS:-} --callgrind-out-file=$PWD/$OUT/callgrind-redis.out"
elif [ "$CALLGRIND" = 1 ]; then
  # Instructions the server executes per submission, counted by callgrind
  # over the load and the drain only (logins and start-up excluded): about
  # the same for the same binary and load whatever else the machine is
  # doing, so two builds compare where CPU time cannot. Valgrind makes the
  # server ~50x slower, so the load is slow: RATE=4 USERS=40 SECS=10.
  VG="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$PWD/$OUT/callgrind.out"
fi
export MEMORA_BENCH_PASSWORD=${MEMORA_BENCH_PASSWORD:-bench-password}
[ -x target/release/loadgen ] || cargo build --release -p memora-bench --bin loadgen
[ "$BIN" != target/release/memora ] || cargo build --release -p memora-http --bin memora

RDIR=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$RDIR"
}
trap cleanup EXIT
if [ -n "$RVG" ]; then
  $RVG redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$RDIR" --logfile "$RDIR/redis.log" ${REDIS_ARGS:-} >/dev/null 2>"$OUT/valgrind-redis.log" &
  echo $! > "$RDIR/redis.pid"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$RDIR" --daemonize yes --logfile "$RDIR/redis.log" --pidfile "$RDIR/redis.pid" ${REDIS_ARGS:-}
fi
for _ in $(seq 1 300); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
# Redis' own record of anything that took 10 ms or more (commands,
# scripts, AOF writes and fsyncs, expiry cycles): `LATENCY LATEST` at the end.
redis-cli -p "$REDIS_PORT" config set latency-monitor-threshold 10 >/dev/null
# SLOWLOG=1: log every command (scripts and the commands they call) for
# the summary of script time by script (nested commands are left out).
if [ "${SLOWLOG:-0}" = 1 ]; then
  redis-cli -p "$REDIS_PORT" config set slowlog-log-slower-than 0 >/dev/null
  redis-cli -p "$REDIS_PORT" config set slowlog-max-len 2000000 >/dev/null
fi
# The nightly jobs stay out of the measurement (scripts/bench-park-jobs.sql),
# unless REFIT=1: then the FSRS re-fit of every learner starts 2 s after the
# server, from scratch, and runs through the load (a 50 000-learner database
# takes minutes); the summary counts the learners it fitted.
psql "$DB_URL" -qf scripts/bench-park-jobs.sql >/dev/null
if [ "${REFIT:-0}" = 1 ]; then
  psql "$DB_URL" -qc "DELETE FROM fsrs_params; DELETE FROM job_leases WHERE job = 'fsrs_refit'; DELETE FROM job_runs WHERE job = 'fsrs_refit'"
  export MEMORA_JOB_PERIODS=fsrs_refit=8
fi
MEMORA_DATABASE_URL="$DB_URL" MEMORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MEMORA_BIND="127.0.0.1:$PORT" \
  RUST_LOG=warn $VG "$BIN" serve > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 1500); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
psql "$DB_URL" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null 2>&1 || true

# CPU seconds (user + system) of a process, and of every postgres process.
ticks=$(getconf CLK_TCK)
cpu_of() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Under callgrind, start-up work outlives /readyz (the leaderboards are
# built in the background at start): wait until the counted process is idle
# (less than 0.05 s of CPU in a second), so that the count covers the load only.
VG_PID=
[ "$CALLGRIND" = 1 ] && VG_PID=$SERVER_PID
[ "$CALLGRIND" = redis ] && VG_PID=$(cat "$RDIR/redis.pid")
if [ -n "$VG_PID" ]; then
  prev=$(cpu_of "$VG_PID")
  for _ in $(seq 1 600); do
    sleep 1
    cur=$(cpu_of "$VG_PID")
    awk -v a="$prev" -v b="$cur" 'BEGIN { exit !(b - a < 0.05) }' && break
    prev=$cur
  done
fi
cpu_pg() {
  local p
  for p in $(pgrep -x postgres); do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk -v t="$ticks" '{ s += $14 + $15 } END { print s / t }'
}
submits() {
  curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^memora_http_request_duration_seconds_count\{/ && /route="submit_review_session"/ { s += $NF } END { print s + 0 }'
}
snapshot() { echo "$(cpu_of "$SERVER_PID") $(cpu_of "$(cat "$RDIR/redis.pid")") $(cpu_pg) $(submits)"; }

./target/release/loadgen --url "http://127.0.0.1:$PORT" --only submit --users "$USERS" --first-user "$FIRST_USER" \
  --answers-min "$ANSWERS" --answers-max "$ANSWERS" --rate "$RATE" --duration "$SECS" --warmup 1 \
  $([ "$WARM" = 1 ] || echo --no-prefetch) --out "$OUT/submit.json" > /dev/null 2> "$OUT/loadgen.err" &
LG=$!
while ! grep -q "load starts" "$OUT/loadgen.err" 2>/dev/null; do
  kill -0 "$LG" 2>/dev/null || { cat "$OUT/loadgen.err"; exit 1; }
  sleep 0.05
done
before=$(snapshot)
[ -n "$VG_PID" ] && callgrind_control -i on "$VG_PID" >/dev/null
if [ "$PERF" = 1 ]; then sleep 2; perf record -a -o "$OUT/perf.data" -- sleep 4 >/dev/null 2>&1 || true; fi
# PERF=server: the server alone, with call graphs (slows it: latency is then off).
if [ "$PERF" = server ]; then
  sleep 2
  perf record -F 499 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$OUT/perf-server.data" -- sleep 3 >/dev/null 2>&1 || true
fi
wait "$LG"
curl -fs "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics.txt" || true
sleep 3 # the write-behind persists the last answers
[ -n "$VG_PID" ] && sleep 5 && callgrind_control -i off "$VG_PID" >/dev/null
after=$(snapshot)
if [ -n "$VG_PID" ]; then [ -n "${RVG_ARGS:-}" ] || rm -f "$OUT"/callgrind.out* "$OUT"/callgrind-redis.out*; callgrind_control -d "$VG_PID" >/dev/null; sleep 1; fi
psql "$DB_URL" -c "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
    left(regexp_replace(query, '\s+', ' ', 'g'), 80) AS query FROM pg_stat_statements
  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 8" \
  > "$OUT/pg-statements.txt" 2>&1 || true
redis-cli -p "$REDIS_PORT" info commandstats > "$OUT/redis-commandstats.txt"
redis-cli -p "$REDIS_PORT" latency latest > "$OUT/redis-latency.txt"
{ redis-cli -p "$REDIS_PORT" info persistence; redis-cli -p "$REDIS_PORT" info stats | grep -E 'fork'; } > "$OUT/redis-persistence.txt"
if [ "${SLOWLOG:-0}" = 1 ]; then
  # Script time by script (first 8 hex digits of its SHA1) and first key.
  redis-cli -p "$REDIS_PORT" slowlog get 2000000 | python3 -c '
import sys, collections, re
lines = [l.rstrip("\n") for l in sys.stdin]
agg = collections.defaultdict(lambda: [0, 0])
i = 0
while i < len(lines):
    # Entries are: id, timestamp, duration (µs), then the arguments.
    if lines[i].isdigit() and i + 3 < len(lines) and lines[i + 1].isdigit() and lines[i + 2].isdigit():
        dur = int(lines[i + 2])
        if lines[i + 3].lower() == "evalsha" and i + 6 < len(lines):
            key = re.sub(r"\{.*", "{…}", lines[i + 6])
            k = (lines[i + 4][:8], key)
            agg[k][0] += 1
            agg[k][1] += dur
        i += 4
    else:
        i += 1
for (sha, key), (n, us) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{sha} {key:<28} calls {n:>7}  total {us / 1000:9.1f} ms  per call {us / n:8.1f} us")
' > "$OUT/redis-scripts.txt"
fi

[ "${REFIT:-0}" = 1 ] && echo "$LABEL: learners re-fitted during the run: $(psql "$DB_URL" -qAtc 'SELECT count(*) FROM fsrs_params')"
python3 - "$OUT" "$LABEL" "$before" "$after" <<'PY'
import json, sys
out, label = sys.argv[1], sys.argv[2]
b = [float(x) for x in sys.argv[3].split()]
a = [float(x) for x in sys.argv[4].split()]
n = a[3] - b[3]
s = json.load(open(f"{out}/submit.json"))
o = s["overall"]
sub = s.get("submissions", {})
print(f"{label}: {s['achieved_rate']}/s, P50 {o['p50_ms']:.2f}  P90 {o['p90_ms']:.2f}  P99 {o['p99_ms']:.2f} ms, "
      f"errors {o['errors']}, answers/submission {sub.get('answers_mean', 0):.1f}, skipped {sub.get('skipped_no_card_served', 0)}")
import glob
for who, pattern in (("server", "callgrind.out*"), ("Redis", "callgrind-redis.out*")):
    dumps = glob.glob(f"{out}/{pattern}")
    if n > 0 and dumps:
        ir = 0
        for d in dumps:
            for line in open(d, errors="replace"):
                if line.startswith("totals:"):
                    ir += int(line.split()[1])
        print(f"{label}: {who} instructions per submission over {n:.0f} (callgrind, load + drain): {ir / n / 1e6:.2f} M")
if n > 0:
    per = [1000 * (a[i] - b[i]) / n for i in range(3)]
    print(f"{label}: CPU per submission over {n:.0f} (load + drain): server {per[0]:.2f} ms, "
          f"Redis {per[1]:.2f} ms, PostgreSQL {per[2]:.2f} ms, total {sum(per):.2f} ms")
PY
