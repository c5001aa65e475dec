//! Bulk loader for benchmarks: synthetic players × questions of tracker rows
//! (optionally with one review-log row each) streamed with `COPY … FROM
//! STDIN` in chunks. Due dates spread from 30 days in the past to 60 days in
//! the future so due queries see a realistic mix.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use memora_core::domain::Season;
use memora_core::ids::SeasonId;
use memora_core::ports::SeasonStore;
use memora_core::srs::{CardState, Phase, SchedulerKind};
use memora_core::util::SplitMix64;

use crate::partitions::partition_name;
use crate::{PgStore, PgStoreError, Result};

/// What a bulk load wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Tracker rows written.
    pub trackers: u64,
    /// Review-log rows written.
    pub reviews: u64,
    /// Wall time of the load (excluding the final ANALYZE).
    pub elapsed: Duration,
}

/// Rows per COPY chunk (bounded memory, steady progress).
const CHUNK_ROWS: usize = 100_000;

/// Ladder intervals (days) per level, as in the core's ladder.
const LADDER_DAYS: [u32; 4] = [1, 3, 7, 14];

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// Synthetic user id of player `i` (bench data).
pub fn bench_user(i: usize) -> String {
    format!("bench-u{i:08}")
}

/// Synthetic question id `q` (bench data).
pub fn bench_question(q: usize) -> String {
    format!("bench-st{:05}:{}", q / 4, q % 4)
}

/// Subjects of the bench data (`bench-subj0` …).
pub const BENCH_SUBJECTS: usize = 5;

/// The subject number of synthetic question `q`: its lesson's, in the data
/// generator's catalog (4 questions per stage, 5 stages per lesson, lesson
/// `l` in subject `l % BENCH_SUBJECTS`, no topics). A tracker is filed under
/// the subject (and the no topic) the catalog gives its question, so an
/// answer leaves it there, as it does with real content.
pub fn bench_subject(q: usize) -> usize {
    (q / 20) % BENCH_SUBJECTS
}

impl PgStore {
    /// Loads `players × questions_per_player` tracker rows into `season`
    /// (created with defaults if missing), plus one review-log row per
    /// tracker when `with_review_log`. Deterministic for a given `seed`.
    /// Existing rows for the same keys make the load fail (it is meant for
    /// empty benchmark seasons).
    pub async fn bulk_load(
        &self,
        season: &SeasonId,
        players: usize,
        questions_per_player: usize,
        with_review_log: bool,
        seed: u64,
    ) -> Result<LoadReport> {
        self.bulk_load_from(
            season,
            0,
            players,
            questions_per_player,
            with_review_log,
            seed,
        )
        .await
    }

    /// [`PgStore::bulk_load`] of players `first_player..players` only: the
    /// rows an uninterrupted load of `0..players` with the same `seed` would
    /// write for them (the generator is advanced past the skipped players),
    /// so a load cut off by a lost connection can be resumed — see
    /// [`PgStore::bulk_resume_point`].
    pub async fn bulk_load_from(
        &self,
        season: &SeasonId,
        first_player: usize,
        players: usize,
        questions_per_player: usize,
        with_review_log: bool,
        seed: u64,
    ) -> Result<LoadReport> {
        if self
            .get_season(season)
            .await
            .map_err(|e| PgStoreError::Invalid(e.to_string()))?
            .is_none()
        {
            let today = Utc::now().date_naive();
            let s = Season::new(
                season.clone(),
                "benchmark",
                today - chrono::Days::new(180),
                today + chrono::Days::new(180),
            )
            .map_err(|e| PgStoreError::Invalid(e.to_string()))?;
            self.create_season(&s)
                .await
                .map_err(|e| PgStoreError::Invalid(e.to_string()))?;
        }
        let started = Instant::now();
        let now = Utc::now();
        let mut rng = SplitMix64::new(seed);
        let mut conn = self.pool.acquire().await?;
        let (mut trackers, mut reviews) = (0u64, 0u64);
        let mut tbuf = String::new();
        let mut lbuf = String::new();
        let mut ibuf = String::new();
        let first_player = first_player.min(players);
        let total = (players - first_player).saturating_mul(questions_per_player);
        let mut done = 0usize;
        let sname = season.as_str();
        for p in 0..players {
            if p < first_player {
                // The draws of a skipped player's rows, in the same order.
                for _ in 0..questions_per_player {
                    let _ = rng.below(4);
                    let _ = rng.below(90 * 86_400);
                    if with_review_log {
                        let _ = rng.below(9000);
                    }
                }
                continue;
            }
            let user = bench_user(p);
            for q in 0..questions_per_player {
                let question = bench_question(q);
                let subject = bench_subject(q);
                let level = 1 + rng.below(4);
                let days = LADDER_DAYS[level - 1];
                let offset = rng.below(90 * 86_400) as i64 - 30 * 86_400;
                let due = now + chrono::Duration::seconds(offset);
                let last = due - chrono::Duration::days(i64::from(days));
                let state = CardState {
                    kind: SchedulerKind::Ladder,
                    phase: Phase::Review,
                    step: 0,
                    stability: level as f64,
                    difficulty: 0.0,
                    reps: level as u32,
                    lapses: 0,
                    last_review: Some(last),
                    due,
                    scheduled_days: days,
                };
                let mastery = state.mastery().map(|m| m.code().to_string());
                let _ = writeln!(
                    tbuf,
                    "{sname}\t{user}\t{question}\tbench-subj{subject}\t\\N\tladder\t{}\t0\t{}\t0\t{}\t0\t{}\t{}\t{}\t{}",
                    state.phase.code(),
                    state.stability,
                    state.reps,
                    ts(last),
                    ts(due),
                    days,
                    mastery.as_deref().unwrap_or("\\N"),
                );
                trackers += 1;
                if with_review_log {
                    let rid = format!("bench-r-{user}-{question}");
                    let _ = writeln!(
                        lbuf,
                        "{sname}\t{rid}\t{user}\t{question}\treview\t3\tt\t{}\t1\t{}\t{}\tladder\tladder\t{}\t0\t{}\t0\t{}\t0\t{}\t{}\t{}",
                        1000 + rng.below(9000),
                        ts(last),
                        days,
                        state.phase.code(),
                        state.stability,
                        state.reps,
                        ts(last),
                        ts(due),
                        days,
                    );
                    let _ = writeln!(ibuf, "{rid}\t{sname}");
                    reviews += 1;
                }
                done += 1;
                if !tbuf.is_empty() && (done % CHUNK_ROWS == 0 || done == total) {
                    self.flush(&mut conn, &mut tbuf, &mut lbuf, &mut ibuf)
                        .await?;
                }
            }
        }
        self.flush(&mut conn, &mut tbuf, &mut lbuf, &mut ibuf)
            .await?;
        let elapsed = started.elapsed();
        for parent in crate::partitions::PARTITIONED {
            let sql = format!("ANALYZE \"{}\"", partition_name(parent, season));
            sqlx::query(&sql)
                .execute(crate::trips::one(&mut *conn))
                .await?;
        }
        sqlx::query("ANALYZE review_ids")
            .execute(crate::trips::one(&mut *conn))
            .await?;
        Ok(LoadReport {
            trackers,
            reviews,
            elapsed,
        })
    }

    /// Where to resume a bulk load of `season` that was cut off: each chunk
    /// is three COPYs (trackers, review log, review ids) committed one by
    /// one, so the tables may end at different rows. Returns the first
    /// player whose rows may be incomplete in any of the three tables, after
    /// deleting every row of that player and the ones after it (bench ids
    /// sort by player). Loading again from there with
    /// [`PgStore::bulk_load_from`] completes the load. Meant for loads with
    /// the review log (`datagen`'s): without it, the empty log makes the
    /// resume point 0.
    pub async fn bulk_resume_point(&self, season: &SeasonId) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let last: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT max(user_id) FROM memory_tracker WHERE season = $1 \
             UNION ALL SELECT max(user_id) FROM review_log WHERE season = $1 \
             UNION ALL SELECT substring(max(review_id) FROM 9 FOR 15) FROM review_ids \
                 WHERE review_id LIKE 'bench-r-%'",
        )
        .bind(season.as_str())
        .fetch_all(crate::trips::one(&mut *conn))
        .await?;
        let player = |u: &Option<String>| {
            u.as_deref()
                .and_then(|u| u.strip_prefix("bench-u"))
                .and_then(|n| n.parse::<usize>().ok())
        };
        if last.iter().all(Option::is_none) {
            return Ok(0);
        }
        // A table without bench rows means the load stopped in the first
        // chunk: start over.
        let first = last
            .iter()
            .map(|u| player(u).unwrap_or(0))
            .min()
            .unwrap_or(0);
        let from = bench_user(first);
        sqlx::query("DELETE FROM memory_tracker WHERE season = $1 AND user_id >= $2")
            .bind(season.as_str())
            .bind(&from)
            .execute(crate::trips::one(&mut *conn))
            .await?;
        sqlx::query("DELETE FROM review_log WHERE season = $1 AND user_id >= $2")
            .bind(season.as_str())
            .bind(&from)
            .execute(crate::trips::one(&mut *conn))
            .await?;
        sqlx::query("DELETE FROM review_ids WHERE review_id >= $1 AND review_id LIKE 'bench-r-%'")
            .bind(format!("bench-r-{from}"))
            .execute(crate::trips::one(&mut *conn))
            .await?;
        Ok(first)
    }

    async fn flush(
        &self,
        conn: &mut sqlx::PgConnection,
        tbuf: &mut String,
        lbuf: &mut String,
        ibuf: &mut String,
    ) -> Result<()> {
        let streams: [(&str, &mut String); 3] = [
            (
                "COPY memory_tracker (season, user_id, question_id, subject_id, topic_id, \
                 scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due, \
                 scheduled_days, mastery) FROM STDIN",
                tbuf,
            ),
            (
                "COPY review_log (season, review_id, user_id, question_id, source, grade, \
                 is_correct, duration_ms, attempts, reviewed_at, elapsed_days, scheduler, s_kind, \
                 s_phase, s_step, s_stability, s_difficulty, s_reps, s_lapses, s_last_review, \
                 s_due, s_scheduled_days) FROM STDIN",
                lbuf,
            ),
            ("COPY review_ids (review_id, season) FROM STDIN", ibuf),
        ];
        for (sql, buf) in streams {
            if buf.is_empty() {
                continue;
            }
            let mut copy = conn.copy_in_raw(sql).await?;
            copy.send(std::mem::take(buf).into_bytes()).await?;
            copy.finish().await?;
        }
        Ok(())
    }
}
