#!/usr/bin/env bash
# What review_log's former primary key (season, review_id) cost per logged
# answer (docs/PERFORMANCE.md, "The review log without its key"): two copies
# of ~2 M log rows of the bench database, one with the key and the learner
# index, one with the learner index only (the schema since migration
# 20270103000000), then 50 000-row inserts of new rows with random review
# ids (as the learner-scoped ids are) into each, alternating, three rounds.
# Prints the time per row of each insert and the means. Scratch tables are
# dropped at the end.
#
#   scripts/bench-log-key.sh      # on the database scripts/bench-hotpath.sh loads
set -euo pipefail
DB_URL=${MEMORA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/memora_hotpath}
ROWS=${ROWS:-2000000}
q() { psql "$DB_URL" -XqAt "$@"; }
part=$(q -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'review_log'::regclass ORDER BY pg_relation_size(c.oid) DESC LIMIT 1")
trap 'q -c "DROP TABLE IF EXISTS lk_with, lk_without, lk_new" 2>/dev/null || true' EXIT
q 2>/dev/null <<SQL
DROP TABLE IF EXISTS lk_with, lk_without, lk_new;
CREATE TABLE lk_with AS SELECT * FROM $part LIMIT $ROWS;
CREATE TABLE lk_without AS SELECT * FROM lk_with;
ALTER TABLE lk_with ADD PRIMARY KEY (season, review_id);
CREATE INDEX ON lk_with (user_id, reviewed_at, review_id);
CREATE INDEX ON lk_without (user_id, reviewed_at, review_id);
CREATE TABLE lk_new AS SELECT * FROM $part OFFSET $ROWS LIMIT 300000;
UPDATE lk_new SET review_id = md5(review_id) || '~' || review_id;
VACUUM ANALYZE lk_with; VACUUM ANALYZE lk_without; VACUUM ANALYZE lk_new;
CHECKPOINT;
SQL
ins() { # table slice -> µs per row
  psql "$DB_URL" -XAt -c "\\timing on" -c "INSERT INTO $1 SELECT * FROM lk_new WHERE abs(hashtext(review_id)) % 6 = $2" |
    awk '/^INSERT/ { n = $3 } /^Time:/ { printf "%.1f\n", $2 * 1000 / n }'
}
with=() without=()
for k in 0 1 2; do
  a=$(ins lk_with $((2 * k))); b=$(ins lk_without $((2 * k + 1)))
  c=$(ins lk_without $((2 * k))); d=$(ins lk_with $((2 * k + 1)))
  echo "round $((k + 1)): with the key $a, $d µs/row; without $b, $c µs/row"
  with+=("$a" "$d"); without+=("$b" "$c")
done
printf '%s\n' "${with[@]}" | awk '{ s += $1 } END { printf "mean with the key:    %.1f µs per logged answer\n", s / NR }'
printf '%s\n' "${without[@]}" | awk '{ s += $1 } END { printf "mean without the key: %.1f µs per logged answer\n", s / NR }'
