//! The memory store: tracker reads, batch persistence, sampling, review log
//! and the season lifecycle (archive, flag, delete).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use memora_core::domain::*;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::*;
use memora_core::ports::{
    ArchiveStore, DueFilter, PersistOutcome, ReviewLogStore, SeasonScanStore, TrackerStore,
};
use memora_core::util::SplitMix64;
use std::sync::LazyLock;

use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use crate::error::{is_retryable, port};
use crate::partitions::partition_name;
use crate::replica::FENCE_SQL;
use crate::rows::{
    LOG_COLS, LogRow, TRACKER_COLS, TRACKER_STATE_COLS, TrackerDecoder, TrackerRow, trackers,
};
use crate::{PgStore, PgStoreError, Result};

fn lim(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn n64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The safe-mode due query (also used by the EXPLAIN test). `$2` is the
/// season: with a bound value PostgreSQL prunes every other partition.
pub const DUE_QUERY: &str = "SELECT season, user_id, question_id, subject_id, topic_id, \
    scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due, scheduled_days \
    FROM memory_tracker \
    WHERE user_id = $1 AND season = $2 AND due <= $3 \
      AND ($4::text IS NULL OR subject_id = $4) AND ($5::text IS NULL OR topic_id = $5) \
    ORDER BY due, question_id LIMIT $6";

/// [`DUE_QUERY`] with the learner's read fence as seen by the same
/// snapshot (column `fence`, on every row; one row of NULL tracker columns
/// when nothing is due), for reads served by a replica.
static FENCED_DUE_QUERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT f.fence, t.* FROM (SELECT {FENCE_SQL} AS fence) f \
         LEFT JOIN LATERAL ({DUE_QUERY}) t ON true ORDER BY t.due, t.question_id"
    )
});

/// Tracker rows and the fence of a [`FENCED_DUE_QUERY`]-shaped answer (a
/// fence of -1, "behind anything", if the answer has no row at all).
fn fenced_trackers(rows: &[PgRow]) -> sqlx::Result<(Vec<TrackerRow>, i64)> {
    let mut fence = -1;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        fence = row.try_get("fence")?;
        let question: Option<String> = row.try_get("question_id")?;
        if question.is_some() {
            out.push(TrackerRow::from_row(row)?);
        }
    }
    Ok((out, fence))
}

/// Every row of one learner (`$1`) in one season (`$2`), the columns
/// [`TrackerDecoder::learner`] reads.
static LEARNER_ROWS_QUERY: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TRACKER_STATE_COLS} FROM memory_tracker WHERE user_id = $1 AND season = $2")
});

/// A season scan's first page (`$1` season, `$2` limit), in primary-key
/// order.
static SCAN_FIRST_QUERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRACKER_COLS} FROM memory_tracker WHERE season = $1 \
         ORDER BY season, user_id, question_id LIMIT $2"
    )
});

/// A season scan's next page: the rows after (`$2` user, `$3` question) in
/// season `$1`, `$4` of them.
///
/// The row comparison names only the key's columns after the season. With
/// the season in it too, `(season, user_id, question_id) > ($1, $2, $3)`
/// beside `season = $1`, PostgreSQL (15) starts the index scan at the
/// season's first entry, the equality's, and filters its way to the key:
/// every page then read the index from the start, and a rebuild of 10 M
/// rows took 198 ms per page of 5 000 (`docs/PERFORMANCE.md`, "Season
/// rebuild from PostgreSQL"). Here the scan starts at the key.
static SCAN_AFTER_QUERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRACKER_COLS} FROM memory_tracker \
         WHERE season = $1 AND (user_id, question_id) > ($2, $3) \
         ORDER BY season, user_id, question_id LIMIT $4"
    )
});

/// The batch upsert: one statement, one round trip. Review ids are claimed
/// in `review_ids` (global idempotency); only newly claimed ids are logged.
/// Tracker rows are upserted and only overwritten by a state whose
/// `last_review` is not older and that actually differs. The learners'
/// read fences are bumped by the same statement.
const PERSIST_SQL: &str = r#"
WITH t_in AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::int2[], $8::int8[], $9::float8[], $10::float8[], $11::int8[],
                         $12::int8[], $13::timestamptz[], $14::timestamptz[], $15::int8[],
                         $16::int2[])
        AS t(season, user_id, question_id, subject_id, topic_id, scheduler, phase, step,
             stability, difficulty, reps, lapses, last_review, due, scheduled_days, mastery)
), l_in AS (
    SELECT * FROM UNNEST($17::text[], $18::text[], $19::text[], $20::text[], $21::text[],
                         $22::int2[], $23::bool[], $24::int8[], $25::int8[], $26::timestamptz[],
                         $27::int8[], $28::text[], $29::text[], $30::int2[], $31::int8[],
                         $32::float8[], $33::float8[], $34::int8[], $35::int8[],
                         $36::timestamptz[], $37::timestamptz[], $38::int8[])
        AS l(season, review_id, user_id, question_id, source, grade, is_correct, duration_ms,
             attempts, reviewed_at, elapsed_days, scheduler, s_kind, s_phase, s_step,
             s_stability, s_difficulty, s_reps, s_lapses, s_last_review, s_due,
             s_scheduled_days)
), ids AS (
    INSERT INTO review_ids (review_id, season)
    SELECT review_id, season FROM l_in
    ON CONFLICT (review_id) DO NOTHING
    RETURNING review_id
), logs AS (
    INSERT INTO review_log (season, review_id, user_id, question_id, source, grade, is_correct,
        duration_ms, attempts, reviewed_at, elapsed_days, scheduler, s_kind, s_phase, s_step,
        s_stability, s_difficulty, s_reps, s_lapses, s_last_review, s_due, s_scheduled_days)
    SELECT l.season, l.review_id, l.user_id, l.question_id, l.source, l.grade, l.is_correct,
        l.duration_ms, l.attempts, l.reviewed_at, l.elapsed_days, l.scheduler, l.s_kind,
        l.s_phase, l.s_step, l.s_stability, l.s_difficulty, l.s_reps, l.s_lapses,
        l.s_last_review, l.s_due, l.s_scheduled_days
    FROM l_in l JOIN ids ON ids.review_id = l.review_id
    RETURNING 1
), trk AS (
    INSERT INTO memory_tracker AS m (season, user_id, question_id, subject_id, topic_id,
        scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due,
        scheduled_days, mastery)
    SELECT season, user_id, question_id, subject_id, topic_id, scheduler, phase, step,
        stability, difficulty, reps, lapses, last_review, due, scheduled_days, mastery
    FROM t_in
    ON CONFLICT (season, user_id, question_id) DO UPDATE SET
        subject_id = EXCLUDED.subject_id, topic_id = EXCLUDED.topic_id,
        scheduler = EXCLUDED.scheduler, phase = EXCLUDED.phase, step = EXCLUDED.step,
        stability = EXCLUDED.stability, difficulty = EXCLUDED.difficulty,
        reps = EXCLUDED.reps, lapses = EXCLUDED.lapses, last_review = EXCLUDED.last_review,
        due = EXCLUDED.due, scheduled_days = EXCLUDED.scheduled_days, mastery = EXCLUDED.mastery
    WHERE (m.last_review IS NULL OR EXCLUDED.last_review >= m.last_review)
      AND (m.subject_id, m.topic_id, m.scheduler, m.phase, m.step, m.stability, m.difficulty,
           m.reps, m.lapses, m.last_review, m.due, m.scheduled_days)
          IS DISTINCT FROM
          (EXCLUDED.subject_id, EXCLUDED.topic_id, EXCLUDED.scheduler, EXCLUDED.phase,
           EXCLUDED.step, EXCLUDED.stability, EXCLUDED.difficulty, EXCLUDED.reps,
           EXCLUDED.lapses, EXCLUDED.last_review, EXCLUDED.due, EXCLUDED.scheduled_days)
    RETURNING 1
), fence AS (
    -- Read-your-writes fence (migration 20261220000000): bumped in this
    -- statement so it becomes visible together with the rows, on the
    -- primary and on a replica. Users in key order, like the trackers.
    INSERT INTO learner_fence AS f (user_id, seq)
    SELECT user_id, 1 FROM (SELECT user_id FROM t_in UNION SELECT user_id FROM l_in) u
    ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET seq = f.seq + 1
)
SELECT (SELECT count(*) FROM logs) AS logs, (SELECT count(*) FROM trk) AS trk
"#;

/// Column arrays of a batch, ready to bind; the text columns borrow the
/// records' ids (no copy per answer).
#[derive(Default)]
struct Columns<'a> {
    t_season: Vec<&'a str>,
    t_user: Vec<&'a str>,
    t_question: Vec<&'a str>,
    t_subject: Vec<Option<&'a str>>,
    t_topic: Vec<Option<&'a str>>,
    t_sched: Vec<&'a str>,
    t_phase: Vec<i16>,
    t_step: Vec<i64>,
    t_stab: Vec<f64>,
    t_diff: Vec<f64>,
    t_reps: Vec<i64>,
    t_lapses: Vec<i64>,
    t_last: Vec<Option<DateTime<Utc>>>,
    t_due: Vec<DateTime<Utc>>,
    t_days: Vec<i64>,
    t_mastery: Vec<Option<i16>>,
    l_season: Vec<&'a str>,
    l_id: Vec<&'a str>,
    l_user: Vec<&'a str>,
    l_question: Vec<&'a str>,
    l_source: Vec<&'a str>,
    l_grade: Vec<i16>,
    l_correct: Vec<bool>,
    l_duration: Vec<i64>,
    l_attempts: Vec<i64>,
    l_at: Vec<DateTime<Utc>>,
    l_elapsed: Vec<i64>,
    l_sched: Vec<&'a str>,
    s_kind: Vec<&'a str>,
    s_phase: Vec<i16>,
    s_step: Vec<i64>,
    s_stab: Vec<f64>,
    s_diff: Vec<f64>,
    s_reps: Vec<i64>,
    s_lapses: Vec<i64>,
    s_last: Vec<Option<DateTime<Utc>>>,
    s_due: Vec<DateTime<Utc>>,
    s_days: Vec<i64>,
}

/// Collapses duplicates inside one batch (PostgreSQL refuses an ON CONFLICT
/// DO UPDATE that touches the same row twice): per tracker key the newest
/// `last_review` wins, later records winning ties (batch order = answer
/// order); per review id the first entry wins. Rows are sorted by key so
/// concurrent batches lock rows in the same order (no deadlocks).
fn columns(records: &[ReviewRecord]) -> Columns<'_> {
    // foldhash, sized up front: these maps are rebuilt for every batch of
    // the write-behind (SipHash and regrowth were ~2 % of the server's
    // instructions per submission). Seeded per process; a batch holds at
    // most a few thousand of the server's own records.
    type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
    let mut newest: Fast<&TrackerKey, &MemoryTracker> =
        Fast::with_capacity_and_hasher(records.len(), Default::default());
    let mut logs: Fast<&ReviewId, &ReviewLogEntry> =
        Fast::with_capacity_and_hasher(records.len(), Default::default());
    for r in records {
        let t = &r.tracker;
        match newest.get(&t.key) {
            Some(prev) if prev.state.last_review > t.state.last_review => {}
            _ => {
                newest.insert(&t.key, t);
            }
        }
        logs.entry(&r.log.review_id).or_insert(&r.log);
    }
    let mut ts: Vec<&MemoryTracker> = newest.into_values().collect();
    ts.sort_by(|a, b| a.key.cmp(&b.key));
    let mut ls: Vec<&ReviewLogEntry> = logs.into_values().collect();
    ls.sort_by(|a, b| a.review_id.cmp(&b.review_id));

    let mut c = Columns::default();
    for t in ts {
        let s = &t.state;
        c.t_season.push(t.key.season.as_str());
        c.t_user.push(t.key.user.as_str());
        c.t_question.push(t.key.question.as_str());
        c.t_subject.push(t.subject.as_ref().map(|x| x.as_str()));
        c.t_topic.push(t.topic.as_ref().map(|x| x.as_str()));
        c.t_sched.push(s.kind.as_str());
        c.t_phase.push(s.phase.code());
        c.t_step.push(i64::from(s.step));
        c.t_stab.push(s.stability);
        c.t_diff.push(s.difficulty);
        c.t_reps.push(i64::from(s.reps));
        c.t_lapses.push(i64::from(s.lapses));
        c.t_last.push(s.last_review);
        c.t_due.push(s.due);
        c.t_days.push(i64::from(s.scheduled_days));
        c.t_mastery.push(s.mastery().map(|m| m.code()));
    }
    for l in ls {
        let s = &l.state_after;
        c.l_season.push(l.key.season.as_str());
        c.l_id.push(l.review_id.as_str());
        c.l_user.push(l.key.user.as_str());
        c.l_question.push(l.key.question.as_str());
        c.l_source.push(l.source.as_str());
        c.l_grade.push(i16::from(l.grade.as_u8()));
        c.l_correct.push(l.is_correct);
        c.l_duration.push(i64::from(l.duration_ms));
        c.l_attempts.push(i64::from(l.attempts));
        c.l_at.push(l.reviewed_at);
        c.l_elapsed.push(i64::from(l.elapsed_days));
        c.l_sched.push(l.scheduler.as_str());
        c.s_kind.push(s.kind.as_str());
        c.s_phase.push(s.phase.code());
        c.s_step.push(i64::from(s.step));
        c.s_stab.push(s.stability);
        c.s_diff.push(s.difficulty);
        c.s_reps.push(i64::from(s.reps));
        c.s_lapses.push(i64::from(s.lapses));
        c.s_last.push(s.last_review);
        c.s_due.push(s.due);
        c.s_days.push(i64::from(s.scheduled_days));
    }
    c
}

impl PgStore {
    async fn persist_once(
        &self,
        c: &Columns<'_>,
    ) -> std::result::Result<PersistOutcome, sqlx::Error> {
        let row = sqlx::query(PERSIST_SQL)
            .bind(&c.t_season)
            .bind(&c.t_user)
            .bind(&c.t_question)
            .bind(&c.t_subject)
            .bind(&c.t_topic)
            .bind(&c.t_sched)
            .bind(&c.t_phase)
            .bind(&c.t_step)
            .bind(&c.t_stab)
            .bind(&c.t_diff)
            .bind(&c.t_reps)
            .bind(&c.t_lapses)
            .bind(&c.t_last)
            .bind(&c.t_due)
            .bind(&c.t_days)
            .bind(&c.t_mastery)
            .bind(&c.l_season)
            .bind(&c.l_id)
            .bind(&c.l_user)
            .bind(&c.l_question)
            .bind(&c.l_source)
            .bind(&c.l_grade)
            .bind(&c.l_correct)
            .bind(&c.l_duration)
            .bind(&c.l_attempts)
            .bind(&c.l_at)
            .bind(&c.l_elapsed)
            .bind(&c.l_sched)
            .bind(&c.s_kind)
            .bind(&c.s_phase)
            .bind(&c.s_step)
            .bind(&c.s_stab)
            .bind(&c.s_diff)
            .bind(&c.s_reps)
            .bind(&c.s_lapses)
            .bind(&c.s_last)
            .bind(&c.s_due)
            .bind(&c.s_days)
            .fetch_one(crate::trips::one(&self.pool))
            .await?;
        let logs: i64 = row.try_get("logs")?;
        let trk: i64 = row.try_get("trk")?;
        Ok(PersistOutcome {
            logs_inserted: n64(logs),
            trackers_written: n64(trk),
        })
    }

    /// The plan PostgreSQL chooses for the due query of one (user, season)
    /// (`EXPLAIN` text): used to verify partition pruning.
    pub async fn explain_due_query(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let sql = format!("EXPLAIN {DUE_QUERY}");
        let lines: Vec<String> = sqlx::query_scalar(&sql)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(now)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(50_i64)
            .fetch_all(crate::trips::one(&self.pool))
            .await?;
        Ok(lines.join("\n"))
    }

    /// The shared buffers (hit or read) PostgreSQL touches to read the
    /// season-scan page after `after` (`EXPLAIN (ANALYZE, BUFFERS)` of the
    /// scan's own statement): a page's cost must not grow with its position
    /// in the season.
    pub async fn scan_page_buffers(
        &self,
        season: &SeasonId,
        after: &TrackerKey,
        limit: usize,
    ) -> Result<u64> {
        let sql = format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            SCAN_AFTER_QUERY.as_str()
        );
        let plan: serde_json::Value = sqlx::query_scalar(&sql)
            .bind(season.as_str())
            .bind(after.user.as_str())
            .bind(after.question.as_str())
            .bind(lim(limit))
            .fetch_one(crate::trips::one(&self.pool))
            .await?;
        let top = &plan[0]["Plan"];
        let n = |f: &str| top[f].as_u64().unwrap_or(0);
        Ok(n("Shared Hit Blocks") + n("Shared Read Blocks"))
    }

    /// Estimated live rows of a season partition (planner statistics).
    async fn estimated_rows(&self, season: &SeasonId) -> Result<f64> {
        let name = partition_name("memory_tracker", season);
        let name = name.as_str();
        let est: Option<f64> = self
            .read_bulk(|pool| async move {
                sqlx::query_scalar(
                    "SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8 \
                            ELSE (pg_relation_size(c.oid) / 8192)::float8 * 60 END \
                     FROM pg_class c WHERE c.oid = to_regclass($1)",
                )
                .bind(name)
                .fetch_optional(crate::trips::one(&pool))
                .await
            })
            .await?
            .flatten();
        Ok(est.unwrap_or(0.0))
    }
}

/// Below this many (estimated) rows sampling reads the whole partition in a
/// seed-determined order; above it, block sampling avoids the full scan.
const SAMPLE_SCAN_THRESHOLD: f64 = 20_000.0;

#[async_trait]
impl TrackerStore for PgStore {
    async fn get_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<MemoryTracker>> {
        let qs: Vec<&str> = questions.iter().map(|q| q.as_str()).collect();
        let sql = format!(
            "SELECT {TRACKER_COLS} FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND question_id = ANY($3::text[])"
        );
        let rows: Vec<TrackerRow> = sqlx::query_as(&sql)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(&qs)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut by_q: HashMap<String, MemoryTracker> = trackers(rows)?
            .into_iter()
            .map(|t| (t.key.question.as_str().to_owned(), t))
            .collect();
        // Same order as asked (the reference adapter answers in that order).
        Ok(questions
            .iter()
            .filter_map(|q| by_q.remove(q.as_str()))
            .collect())
    }

    async fn due_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        let subject = filter.subject.as_ref().map(|s| s.as_str());
        let topic = filter.topic.as_ref().map(|s| s.as_str());
        let rows = self
            .read_fenced(user, |pool, fenced| async move {
                let sql = if fenced {
                    FENCED_DUE_QUERY.as_str()
                } else {
                    DUE_QUERY
                };
                let rows = sqlx::query(sql)
                    .bind(user.as_str())
                    .bind(season.as_str())
                    .bind(now)
                    .bind(subject)
                    .bind(topic)
                    .bind(lim(limit))
                    .fetch_all(crate::trips::one(&pool))
                    .await?;
                if fenced {
                    fenced_trackers(&rows)
                } else {
                    let rows = rows
                        .iter()
                        .map(TrackerRow::from_row)
                        .collect::<sqlx::Result<Vec<_>>>()?;
                    Ok((rows, 0))
                }
            })
            .await
            .map_err(port)?;
        Ok(trackers(rows)?)
    }

    async fn count_due(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
    ) -> PortResult<u64> {
        const COUNT: &str = "SELECT count(*) FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND due <= $3 \
               AND ($4::text IS NULL OR subject_id = $4) AND ($5::text IS NULL OR topic_id = $5)";
        static FENCED: LazyLock<String> =
            LazyLock::new(|| format!("SELECT ({COUNT}) AS n, {FENCE_SQL} AS fence"));
        let subject = filter.subject.as_ref().map(|s| s.as_str());
        let topic = filter.topic.as_ref().map(|s| s.as_str());
        let n = self
            .read_fenced(user, |pool, fenced| async move {
                let sql = if fenced { FENCED.as_str() } else { COUNT };
                let row = sqlx::query(sql)
                    .bind(user.as_str())
                    .bind(season.as_str())
                    .bind(now)
                    .bind(subject)
                    .bind(topic)
                    .fetch_one(crate::trips::one(&pool))
                    .await?;
                let n: i64 = row.try_get(0)?;
                let fence: i64 = if fenced { row.try_get("fence")? } else { 0 };
                Ok((n, fence))
            })
            .await
            .map_err(port)?;
        Ok(n64(n))
    }

    async fn due_counts_by_subject(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Vec<(Option<SubjectId>, u64)>> {
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT subject_id, count(*) FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND due <= $3 \
             GROUP BY subject_id ORDER BY subject_id NULLS FIRST",
        )
        .bind(user.as_str())
        .bind(season.as_str())
        .bind(now)
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        rows.into_iter()
            .map(|(s, n)| Ok((crate::rows::opt_id(s.as_deref(), SubjectId::new)?, n64(n))))
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn count_topic(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
    ) -> PortResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND topic_id = $3",
        )
        .bind(user.as_str())
        .bind(season.as_str())
        .bind(topic.as_str())
        .fetch_one(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(n64(n))
    }

    async fn topic_candidates(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        // Groups: 0 = `new` mastery bucket (code 0), 1 = due, 2 = not
        // reviewed since day_start; inside a group last review ascending
        // with never-reviewed first, then question id.
        let sql = format!(
            "SELECT {TRACKER_COLS} FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND topic_id = $3 \
               AND (mastery = 0 OR due <= $4 OR last_review IS NULL OR last_review < $5) \
             ORDER BY CASE WHEN mastery = 0 THEN 0 WHEN due <= $4 THEN 1 ELSE 2 END, \
                      last_review ASC NULLS FIRST, question_id \
             LIMIT $6"
        );
        let rows: Vec<TrackerRow> = sqlx::query_as(&sql)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(topic.as_str())
            .bind(now)
            .bind(day_start)
            .bind(lim(limit))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(trackers(rows)?)
    }

    async fn random_topic_items(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        limit: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>> {
        // A topic of one learner is small: read it in question order and
        // shuffle with the core's seeded PRNG (same order as the reference).
        let sql = format!(
            "SELECT {TRACKER_COLS} FROM memory_tracker \
             WHERE user_id = $1 AND season = $2 AND topic_id = $3 ORDER BY question_id"
        );
        let rows: Vec<TrackerRow> = sqlx::query_as(&sql)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(topic.as_str())
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut v = trackers(rows)?;
        SplitMix64::new(seed).shuffle(&mut v);
        v.truncate(limit);
        Ok(v)
    }

    async fn all_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> PortResult<Vec<MemoryTracker>> {
        // In no particular order (the port promises none): an order would
        // cost PostgreSQL a sort of the learner's rows, which for 100 000
        // of them spills to disk (66 ms instead of 22 ms). Rows are decoded
        // as they arrive, while PostgreSQL sends the next.
        let mut rows = sqlx::query(LEARNER_ROWS_QUERY.as_str())
            .bind(user.as_str())
            .bind(season.as_str())
            .fetch(crate::trips::one(&self.pool));
        let mut decoder = TrackerDecoder::learner(user, season);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(port)? {
            out.push(decoder.decode(&row)?);
        }
        Ok(out)
    }

    async fn mastery_counts(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        subject: Option<&SubjectId>,
    ) -> PortResult<MasteryCounts> {
        let rows: Vec<(i16, i64)> = sqlx::query_as(
            "SELECT mastery, count(*) FROM memory_tracker \
             WHERE user_id = $1 AND ($2::text IS NULL OR season = $2) \
               AND ($3::text IS NULL OR subject_id = $3) AND mastery IS NOT NULL \
             GROUP BY mastery",
        )
        .bind(user.as_str())
        .bind(season.map(|s| s.as_str()))
        .bind(subject.map(|s| s.as_str()))
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        let mut c = MasteryCounts::default();
        for (m, n) in rows {
            match m {
                0 => c.new = n64(n),
                1 => c.learning = n64(n),
                2 => c.mature = n64(n),
                _ => {}
            }
        }
        Ok(c)
    }

    async fn persist_batch(&self, records: &[ReviewRecord]) -> PortResult<PersistOutcome> {
        if records.is_empty() {
            return Ok(PersistOutcome::default());
        }
        let cols = columns(records);
        let mut attempt = 0;
        loop {
            match self.persist_once(&cols).await {
                Ok(o) => return Ok(o),
                Err(e) if is_retryable(&e) && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(attempt, "persist_batch retry after deadlock");
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
                }
                Err(e) => {
                    let mapped = port(e);
                    if let PortError::Rejected(msg) = &mapped {
                        let mut seasons: Vec<&str> = cols.t_season.clone();
                        seasons.dedup();
                        return Err(PortError::Rejected(format!(
                            "{msg} (batch seasons: {})",
                            seasons.join(", ")
                        )));
                    }
                    return Err(mapped);
                }
            }
        }
    }
}

#[async_trait]
impl ReviewLogStore for PgStore {
    async fn review_log(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        limit: usize,
    ) -> PortResult<Vec<ReviewLogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLS} FROM review_log \
             WHERE user_id = $1 AND ($2::text IS NULL OR season = $2) \
             ORDER BY reviewed_at, review_id LIMIT $3"
        );
        let rows: Vec<LogRow> = sqlx::query_as(&sql)
            .bind(user.as_str())
            .bind(season.map(|s| s.as_str()))
            .bind(lim(limit))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.into_iter()
            .map(LogRow::into_domain)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn count_reviews(&self, user: &UserId) -> PortResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM review_log WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_one(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(n64(n))
    }

    async fn has_review(&self, review_id: &ReviewId) -> PortResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM review_ids WHERE review_id = $1)")
            .bind(review_id.as_str())
            .fetch_one(crate::trips::one(&self.pool))
            .await
            .map_err(port)
    }

    async fn reviewed_since(
        &self,
        user: &UserId,
        season: &SeasonId,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<QuestionId>> {
        // One partition (season), then the (user_id, reviewed_at) index.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT question_id FROM review_log \
             WHERE season = $1 AND user_id = $2 AND reviewed_at >= $3 AND source = 'review'",
        )
        .bind(season.as_str())
        .bind(user.as_str())
        .bind(since)
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        ids.iter()
            .map(|q| crate::rows::id(q, QuestionId::parse).map_err(PortError::from))
            .collect()
    }
}

#[async_trait]
impl SeasonScanStore for PgStore {
    async fn count_season(&self, season: &SeasonId) -> PortResult<u64> {
        let n: i64 = self
            .read_bulk(|pool| async move {
                sqlx::query_scalar("SELECT count(*) FROM memory_tracker WHERE season = $1")
                    .bind(season.as_str())
                    .fetch_one(crate::trips::one(&pool))
                    .await
            })
            .await
            .map_err(port)?;
        Ok(n64(n))
    }

    async fn scan_season(
        &self,
        season: &SeasonId,
        after: Option<&TrackerKey>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        // On the replica when configured: a rebuild page may then miss
        // writes of the last replay-lag's worth (the cache load keeps live
        // entries that are newer, and the worker's refresh converges).
        let rows: Vec<PgRow> = self
            .read_bulk(|pool| async move {
                match after {
                    Some(k) => {
                        sqlx::query(SCAN_AFTER_QUERY.as_str())
                            .bind(season.as_str())
                            .bind(k.user.as_str())
                            .bind(k.question.as_str())
                            .bind(lim(limit))
                            .fetch_all(crate::trips::one(&pool))
                            .await
                    }
                    None => {
                        sqlx::query(SCAN_FIRST_QUERY.as_str())
                            .bind(season.as_str())
                            .bind(lim(limit))
                            .fetch_all(crate::trips::one(&pool))
                            .await
                    }
                }
            })
            .await
            .map_err(port)?;
        let mut decoder = TrackerDecoder::rows();
        Ok(rows
            .iter()
            .map(|r| decoder.decode(r))
            .collect::<Result<_>>()?)
    }

    async fn sample_trackers(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let est = self.estimated_rows(season).await?;
        let mut v = if est > SAMPLE_SCAN_THRESHOLD {
            // Block sampling: reads about `pct` of the pages, chosen by seed.
            // Oversample 4x to survive clustering, then trim.
            let pct = ((n as f64 * 4.0 / est) * 100.0).clamp(0.0001, 100.0);
            let sql = format!(
                "SELECT {TRACKER_COLS} FROM memory_tracker \
                 TABLESAMPLE SYSTEM ($2) REPEATABLE ($3) WHERE season = $1 LIMIT $4"
            );
            let sql = sql.as_str();
            let rows: Vec<TrackerRow> = self
                .read_bulk(|pool| async move {
                    sqlx::query_as(sql)
                        .bind(season.as_str())
                        .bind(pct)
                        .bind((seed % (1 << 31)) as f64)
                        .bind(lim(n.saturating_mul(4)))
                        .fetch_all(crate::trips::one(&pool))
                        .await
                })
                .await
                .map_err(port)?;
            trackers(rows)?
        } else {
            Vec::new()
        };
        if v.len() < n {
            // Small (or unlucky) partition: a seed-ordered read of all rows
            // is cheap at this size.
            let sql = format!(
                "SELECT {TRACKER_COLS} FROM memory_tracker WHERE season = $1 \
                 ORDER BY md5(user_id || '/' || question_id || '/' || $2::text) LIMIT $3"
            );
            let sql = sql.as_str();
            let seed_text = seed.to_string();
            let seed_text = seed_text.as_str();
            let rows: Vec<TrackerRow> = self
                .read_bulk(|pool| async move {
                    sqlx::query_as(sql)
                        .bind(season.as_str())
                        .bind(seed_text)
                        .bind(lim(n))
                        .fetch_all(crate::trips::one(&pool))
                        .await
                })
                .await
                .map_err(port)?;
            v = trackers(rows)?;
        }
        v.sort_by(|a, b| a.key.cmp(&b.key));
        SplitMix64::new(seed).shuffle(&mut v);
        v.truncate(n);
        Ok(v)
    }

    async fn due_forecast(
        &self,
        season: &SeasonId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, Option<SubjectId>, u64)>> {
        // A season-wide aggregate for the console: on the replica when
        // configured (stale by its replay lag at most).
        let rows: Vec<(NaiveDate, Option<String>, i64)> = self
            .read_bulk(|pool| async move {
                sqlx::query_as(
                    "SELECT (greatest(due, $2) AT TIME ZONE 'UTC')::date AS day, subject_id, count(*) \
                     FROM memory_tracker WHERE season = $1 AND due < $3 \
                     GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST",
                )
                .bind(season.as_str())
                .bind(from)
                .bind(until)
                .fetch_all(crate::trips::one(&pool))
                .await
            })
            .await
            .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for (day, subject, n) in rows {
            out.push((
                day,
                crate::rows::opt_id(subject.as_deref(), SubjectId::new)?,
                n64(n),
            ));
        }
        Ok(out)
    }

    async fn interval_histogram(&self, season: &SeasonId, bounds: &[u32]) -> PortResult<Vec<u64>> {
        // width_bucket(x, thresholds) = how many thresholds are <= x; with
        // thresholds bound + 1 that is the bucket of "x <= bound".
        let thresholds: Vec<i64> = bounds.iter().map(|b| i64::from(*b) + 1).collect();
        let thresholds = &thresholds;
        let rows: Vec<(i32, i64)> = self
            .read_bulk(|pool| async move {
                sqlx::query_as(
                    "SELECT width_bucket(scheduled_days, $2::int8[]), count(*) \
                     FROM memory_tracker WHERE season = $1 GROUP BY 1",
                )
                .bind(season.as_str())
                .bind(thresholds)
                .fetch_all(crate::trips::one(&pool))
                .await
            })
            .await
            .map_err(port)?;
        let mut out = vec![0u64; bounds.len() + 1];
        for (bucket, n) in rows {
            let i = usize::try_from(bucket).unwrap_or(0).min(bounds.len());
            out[i] += n64(n);
        }
        Ok(out)
    }

    async fn reviews_per_day(
        &self,
        season: &SeasonId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, u64, u64)>> {
        let rows: Vec<(NaiveDate, i64, i64)> = self
            .read_bulk(|pool| async move {
                sqlx::query_as(
                    "SELECT (reviewed_at AT TIME ZONE 'UTC')::date, count(*), \
                            count(*) FILTER (WHERE is_correct) \
                     FROM review_log WHERE season = $1 AND reviewed_at >= $2 AND reviewed_at < $3 \
                     GROUP BY 1 ORDER BY 1",
                )
                .bind(season.as_str())
                .bind(since)
                .bind(until)
                .fetch_all(crate::trips::one(&pool))
                .await
            })
            .await
            .map_err(port)?;
        Ok(rows
            .into_iter()
            .map(|(d, n, c)| (d, n64(n), n64(c)))
            .collect())
    }
}

#[async_trait]
impl ArchiveStore for PgStore {
    async fn archive_season(&self, season: &SeasonId, now: DateTime<Utc>) -> PortResult<u64> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM seasons WHERE id = $1)")
                .bind(season.as_str())
                .fetch_one(crate::trips::one(&mut *tx))
                .await
                .map_err(port)?;
        if !exists {
            return Err(PortError::Rejected(format!(
                "season {season} does not exist"
            )));
        }
        // One statement moves the rows: the DELETE and the INSERT see the
        // same snapshot, so a row written concurrently is either moved or
        // stays live — never lost. Any failure rolls the whole move back.
        let moved: i64 = sqlx::query_scalar(
            "WITH moved AS ( \
                 DELETE FROM memory_tracker WHERE season = $1 \
                 RETURNING season, user_id, question_id, subject_id, topic_id, scheduler, phase, \
                     step, stability, difficulty, reps, lapses, last_review, due, \
                     scheduled_days, mastery \
             ), ins AS ( \
                 INSERT INTO archived_tracker (season, user_id, question_id, subject_id, \
                     topic_id, scheduler, phase, step, stability, difficulty, reps, lapses, \
                     last_review, due, scheduled_days, mastery, archived_at) \
                 SELECT season, user_id, question_id, subject_id, topic_id, scheduler, phase, \
                     step, stability, difficulty, reps, lapses, last_review, due, \
                     scheduled_days, mastery, $2 FROM moved \
                 RETURNING 1 \
             ) SELECT count(*) FROM ins",
        )
        .bind(season.as_str())
        .bind(now)
        .fetch_one(crate::trips::one(&mut *tx))
        .await
        .map_err(port)?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(n64(moved))
    }

    async fn flag_archived_before(&self, cutoff: DateTime<Utc>) -> PortResult<u64> {
        let r = sqlx::query(
            "UPDATE archived_tracker SET eligible_for_deletion = true \
             WHERE archived_at < $1 AND NOT eligible_for_deletion",
        )
        .bind(cutoff)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(r.rows_affected())
    }

    async fn delete_flagged(&self, season: Option<&SeasonId>) -> PortResult<u64> {
        let r = sqlx::query(
            "DELETE FROM archived_tracker \
             WHERE eligible_for_deletion AND ($1::text IS NULL OR season = $1)",
        )
        .bind(season.map(|s| s.as_str()))
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(r.rows_affected())
    }

    async fn archive_counts(&self, season: &SeasonId) -> PortResult<ArchiveCounts> {
        // Archive status: on the replica when configured (stale by its lag).
        let row = self
            .read_bulk(|pool| async move {
                sqlx::query(
                    "SELECT (SELECT count(*) FROM memory_tracker WHERE season = $1) AS live, \
                            (SELECT count(*) FROM archived_tracker WHERE season = $1) AS archived, \
                            (SELECT count(*) FROM archived_tracker \
                              WHERE season = $1 AND eligible_for_deletion) AS flagged",
                )
                .bind(season.as_str())
                .fetch_one(crate::trips::one(&pool))
                .await
            })
            .await
            .map_err(port)?;
        let get = |c: &str| -> PortResult<u64> {
            row.try_get::<i64, _>(c)
                .map(n64)
                .map_err(|e| PortError::from(PgStoreError::Database(e)))
        };
        Ok(ArchiveCounts {
            active_records: get("live")?,
            archived_records: get("archived")?,
            eligible_for_deletion: get("flagged")?,
        })
    }
}
