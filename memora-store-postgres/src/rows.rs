//! Row types owned by this adapter and their conversion to and from the
//! core's domain types. Stored values are re-validated on the way out: a row
//! that does not parse is reported as corrupt, never silently repaired.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::srs::{CardState, Grade, Phase, SchedulerKind};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{PgStoreError, Result};

/// Parses a stored id with the core's validating constructor.
pub(crate) fn id<'a, T>(
    raw: &'a str,
    f: impl FnOnce(&'a str) -> Result<T, memora_core::CoreError>,
) -> Result<T> {
    f(raw).map_err(|e| PgStoreError::Corrupt(format!("stored id '{raw}': {e}")))
}

pub(crate) fn opt_id<'a, T>(
    raw: Option<&'a str>,
    f: impl FnOnce(&'a str) -> Result<T, memora_core::CoreError>,
) -> Result<Option<T>> {
    raw.map(|r| id(r, f)).transpose()
}

pub(crate) fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| PgStoreError::Corrupt(format!("{what} out of range: {v}")))
}

pub(crate) fn scheduler_of(s: &str) -> Result<SchedulerKind> {
    SchedulerKind::parse(s).map_err(|e| PgStoreError::Corrupt(e.to_string()))
}

pub(crate) fn phase_of(c: i16) -> Result<Phase> {
    Phase::from_code(c).ok_or_else(|| PgStoreError::Corrupt(format!("phase code {c}")))
}

/// Column list of a tracker row, in [`TrackerRow`] order.
pub(crate) const TRACKER_COLS: &str = "season, user_id, question_id, subject_id, topic_id, \
    scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due, scheduled_days";

/// One `memory_tracker` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TrackerRow {
    pub season: String,
    pub user_id: String,
    pub question_id: String,
    pub subject_id: Option<String>,
    pub topic_id: Option<String>,
    pub scheduler: String,
    pub phase: i16,
    pub step: i64,
    pub stability: f64,
    pub difficulty: f64,
    pub reps: i64,
    pub lapses: i64,
    pub last_review: Option<DateTime<Utc>>,
    pub due: DateTime<Utc>,
    pub scheduled_days: i64,
}

impl TrackerRow {
    pub(crate) fn into_domain(self) -> Result<MemoryTracker> {
        Ok(MemoryTracker {
            key: TrackerKey {
                user: id(&self.user_id, UserId::new)?,
                season: id(&self.season, SeasonId::new)?,
                question: id(&self.question_id, QuestionId::parse)?,
            },
            subject: opt_id(self.subject_id.as_deref(), SubjectId::new)?,
            topic: opt_id(self.topic_id.as_deref(), TopicId::new)?,
            state: CardState {
                kind: scheduler_of(&self.scheduler)?,
                phase: phase_of(self.phase)?,
                step: u32_of(self.step, "step")?,
                stability: self.stability,
                difficulty: self.difficulty,
                reps: u32_of(self.reps, "reps")?,
                lapses: u32_of(self.lapses, "lapses")?,
                last_review: self.last_review,
                due: self.due,
                scheduled_days: u32_of(self.scheduled_days, "scheduled_days")?,
            },
        })
    }
}

pub(crate) fn trackers(rows: Vec<TrackerRow>) -> Result<Vec<MemoryTracker>> {
    rows.into_iter().map(TrackerRow::into_domain).collect()
}

/// The columns of a tracker row after its learner and season: what a read
/// of one learner's season selects ([`TrackerDecoder::learner`]).
pub(crate) const TRACKER_STATE_COLS: &str = "question_id, subject_id, topic_id, \
    scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due, scheduled_days";

/// Decodes tracker rows by column position, for reads of many rows (a
/// learner's whole season, a season scan's page).
///
/// [`TrackerRow`] reads each column by name and copies every text into a
/// `String` before the ids are built from it: per row, fifteen lookups of a
/// column name and eleven allocations. Here each text is borrowed from the
/// row, and an id that repeats from row to row (learner, season, subject,
/// topic) is built once and shared (ids are `Arc<str>`): a row allocates its
/// question id and nothing else. Every value is validated as
/// [`TrackerRow::into_domain`] validates it.
pub(crate) struct TrackerDecoder {
    user: Option<UserId>,
    season: Option<SeasonId>,
    subjects: HashMap<Box<str>, SubjectId>,
    topics: HashMap<Box<str>, TopicId>,
    /// Position of the first column read (`question_id` for
    /// [`TrackerDecoder::learner`], `season` otherwise).
    first: usize,
}

impl TrackerDecoder {
    /// Rows of [`TRACKER_COLS`] (their learner and season read from each
    /// row).
    pub(crate) fn rows() -> Self {
        TrackerDecoder {
            user: None,
            season: None,
            subjects: HashMap::new(),
            topics: HashMap::new(),
            first: 0,
        }
    }

    /// Rows of [`TRACKER_STATE_COLS`], all of `user` in `season` (the
    /// statement's condition says so).
    pub(crate) fn learner(user: &UserId, season: &SeasonId) -> Self {
        TrackerDecoder {
            user: Some(user.clone()),
            season: Some(season.clone()),
            first: 2,
            ..Self::rows()
        }
    }

    /// Column `i` of the row's [`TRACKER_COLS`] (0: `season`).
    fn col<'r, T>(&self, row: &'r PgRow, i: usize) -> Result<T>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        Ok(row.try_get(i - self.first)?)
    }

    /// One row.
    pub(crate) fn decode(&mut self, row: &PgRow) -> Result<MemoryTracker> {
        if self.first == 0 {
            let season: &str = self.col(row, 0)?;
            if self.season.as_ref().is_none_or(|s| s.as_str() != season) {
                self.season = Some(id(season, SeasonId::new)?);
            }
            let user: &str = self.col(row, 1)?;
            if self.user.as_ref().is_none_or(|u| u.as_str() != user) {
                self.user = Some(id(user, UserId::new)?);
            }
        }
        let (Some(user), Some(season)) = (&self.user, &self.season) else {
            return Err(PgStoreError::Corrupt("tracker row without its key".into()));
        };
        let key = TrackerKey {
            user: user.clone(),
            season: season.clone(),
            question: id(self.col::<&str>(row, 2)?, QuestionId::parse)?,
        };
        let subject = match self.col::<Option<&str>>(row, 3)? {
            Some(s) => Some(shared(&mut self.subjects, s, SubjectId::new)?),
            None => None,
        };
        let topic = match self.col::<Option<&str>>(row, 4)? {
            Some(t) => Some(shared(&mut self.topics, t, TopicId::new)?),
            None => None,
        };
        Ok(MemoryTracker {
            key,
            subject,
            topic,
            state: CardState {
                kind: scheduler_of(self.col(row, 5)?)?,
                phase: phase_of(self.col(row, 6)?)?,
                step: u32_of(self.col(row, 7)?, "step")?,
                stability: self.col(row, 8)?,
                difficulty: self.col(row, 9)?,
                reps: u32_of(self.col(row, 10)?, "reps")?,
                lapses: u32_of(self.col(row, 11)?, "lapses")?,
                last_review: self.col(row, 12)?,
                due: self.col(row, 13)?,
                scheduled_days: u32_of(self.col(row, 14)?, "scheduled_days")?,
            },
        })
    }
}

/// The id of `raw` kept in `seen`, or built by `make` (validated) and kept.
fn shared<'a, T: Clone>(
    seen: &mut HashMap<Box<str>, T>,
    raw: &'a str,
    make: impl FnOnce(&'a str) -> Result<T, memora_core::CoreError>,
) -> Result<T> {
    if let Some(v) = seen.get(raw) {
        return Ok(v.clone());
    }
    let v = id(raw, make)?;
    seen.insert(raw.into(), v.clone());
    Ok(v)
}

/// Column list of a review-log row, in [`LogRow`] order.
pub(crate) const LOG_COLS: &str = "season, review_id, user_id, question_id, source, grade, \
    is_correct, duration_ms, attempts, reviewed_at, elapsed_days, scheduler, s_kind, s_phase, \
    s_step, s_stability, s_difficulty, s_reps, s_lapses, s_last_review, s_due, s_scheduled_days";

/// One `review_log` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LogRow {
    pub season: String,
    pub review_id: String,
    pub user_id: String,
    pub question_id: String,
    pub source: String,
    pub grade: i16,
    pub is_correct: bool,
    pub duration_ms: i64,
    pub attempts: i64,
    pub reviewed_at: DateTime<Utc>,
    pub elapsed_days: i64,
    pub scheduler: String,
    pub s_kind: String,
    pub s_phase: i16,
    pub s_step: i64,
    pub s_stability: f64,
    pub s_difficulty: f64,
    pub s_reps: i64,
    pub s_lapses: i64,
    pub s_last_review: Option<DateTime<Utc>>,
    pub s_due: DateTime<Utc>,
    pub s_scheduled_days: i64,
}

impl LogRow {
    pub(crate) fn into_domain(self) -> Result<ReviewLogEntry> {
        Ok(ReviewLogEntry {
            review_id: id(&self.review_id, ReviewId::new)?,
            key: TrackerKey {
                user: id(&self.user_id, UserId::new)?,
                season: id(&self.season, SeasonId::new)?,
                question: id(&self.question_id, QuestionId::parse)?,
            },
            source: match self.source.as_str() {
                "review" => ReviewSource::Review,
                "lesson" => ReviewSource::Lesson,
                o => return Err(PgStoreError::Corrupt(format!("review source {o}"))),
            },
            grade: u8::try_from(self.grade)
                .ok()
                .and_then(Grade::from_u8)
                .ok_or_else(|| PgStoreError::Corrupt(format!("grade {}", self.grade)))?,
            is_correct: self.is_correct,
            duration_ms: u32_of(self.duration_ms, "duration_ms")?,
            attempts: u32_of(self.attempts, "attempts")?,
            reviewed_at: self.reviewed_at,
            elapsed_days: u32_of(self.elapsed_days, "elapsed_days")?,
            scheduler: scheduler_of(&self.scheduler)?,
            state_after: CardState {
                kind: scheduler_of(&self.s_kind)?,
                phase: phase_of(self.s_phase)?,
                step: u32_of(self.s_step, "step")?,
                stability: self.s_stability,
                difficulty: self.s_difficulty,
                reps: u32_of(self.s_reps, "reps")?,
                lapses: u32_of(self.s_lapses, "lapses")?,
                last_review: self.s_last_review,
                due: self.s_due,
                scheduled_days: u32_of(self.s_scheduled_days, "scheduled_days")?,
            },
        })
    }
}

/// One `gameplay_sessions` row is only written, never read back whole, so
/// it has no row type; session kinds map here.
pub(crate) fn grant_kind(g: &AccessGrant) -> (&'static str, &str) {
    match g {
        AccessGrant::Subject(s) => ("subject", s.as_str()),
        AccessGrant::Track(t) => ("track", t.as_str()),
    }
}

pub(crate) fn grant_of(kind: &str, target: &str) -> Result<AccessGrant> {
    match kind {
        "subject" => Ok(AccessGrant::Subject(id(target, SubjectId::new)?)),
        "track" => Ok(AccessGrant::Track(id(target, TrackId::new)?)),
        o => Err(PgStoreError::Corrupt(format!("grant kind {o}"))),
    }
}

// ─────────────── pending tracker batches (JSON owned by this adapter) ───────────────

/// A card state as stored inside a pending batch.
#[derive(serde::Serialize, serde::Deserialize)]
struct StateJson {
    kind: String,
    phase: i16,
    step: u32,
    stability: f64,
    difficulty: f64,
    reps: u32,
    lapses: u32,
    last_review: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
    scheduled_days: u32,
}

impl StateJson {
    fn of(s: &CardState) -> Self {
        StateJson {
            kind: s.kind.as_str().to_owned(),
            phase: s.phase.code(),
            step: s.step,
            stability: s.stability,
            difficulty: s.difficulty,
            reps: s.reps,
            lapses: s.lapses,
            last_review: s.last_review,
            due: s.due,
            scheduled_days: s.scheduled_days,
        }
    }
    fn into_domain(self) -> Result<CardState> {
        Ok(CardState {
            kind: scheduler_of(&self.kind)?,
            phase: phase_of(self.phase)?,
            step: self.step,
            stability: self.stability,
            difficulty: self.difficulty,
            reps: self.reps,
            lapses: self.lapses,
            last_review: self.last_review,
            due: self.due,
            scheduled_days: self.scheduled_days,
        })
    }
}

/// One `ReviewRecord` of a pending batch: the tracker row and its log
/// entry, each with its own key and state (they agree in practice, but the
/// batch is stored exactly as given).
#[derive(serde::Serialize, serde::Deserialize)]
struct RecordJson {
    user: String,
    season: String,
    question: String,
    subject: Option<String>,
    topic: Option<String>,
    state: StateJson,
    review_id: String,
    log_user: String,
    log_season: String,
    log_question: String,
    source: String,
    grade: u8,
    is_correct: bool,
    duration_ms: u32,
    attempts: u32,
    reviewed_at: DateTime<Utc>,
    elapsed_days: u32,
    scheduler: String,
    state_after: StateJson,
}

fn key_of(user: &str, season: &str, question: &str) -> Result<TrackerKey> {
    Ok(TrackerKey {
        user: id(user, UserId::new)?,
        season: id(season, SeasonId::new)?,
        question: id(question, QuestionId::parse)?,
    })
}

/// Encodes a batch's records for the `pending_tracker_batches.records`
/// column.
pub(crate) fn encode_records(records: &[ReviewRecord]) -> Result<serde_json::Value> {
    let rows: Vec<RecordJson> = records
        .iter()
        .map(|r| RecordJson {
            user: r.tracker.key.user.as_str().to_owned(),
            season: r.tracker.key.season.as_str().to_owned(),
            question: r.tracker.key.question.as_str().to_owned(),
            subject: r.tracker.subject.as_ref().map(|s| s.as_str().to_owned()),
            topic: r.tracker.topic.as_ref().map(|t| t.as_str().to_owned()),
            state: StateJson::of(&r.tracker.state),
            review_id: r.log.review_id.as_str().to_owned(),
            log_user: r.log.key.user.as_str().to_owned(),
            log_season: r.log.key.season.as_str().to_owned(),
            log_question: r.log.key.question.as_str().to_owned(),
            source: r.log.source.as_str().to_owned(),
            grade: r.log.grade.as_u8(),
            is_correct: r.log.is_correct,
            duration_ms: r.log.duration_ms,
            attempts: r.log.attempts,
            reviewed_at: r.log.reviewed_at,
            elapsed_days: r.log.elapsed_days,
            scheduler: r.log.scheduler.as_str().to_owned(),
            state_after: StateJson::of(&r.log.state_after),
        })
        .collect();
    serde_json::to_value(rows).map_err(|e| PgStoreError::Invalid(format!("cannot encode: {e}")))
}

/// Decodes what [`encode_records`] stored, re-validating every id.
pub(crate) fn decode_records(v: serde_json::Value) -> Result<Vec<ReviewRecord>> {
    let rows: Vec<RecordJson> = serde_json::from_value(v)
        .map_err(|e| PgStoreError::Corrupt(format!("pending batch JSON: {e}")))?;
    rows.into_iter()
        .map(|r| {
            Ok(ReviewRecord {
                tracker: MemoryTracker {
                    key: key_of(&r.user, &r.season, &r.question)?,
                    subject: opt_id(r.subject.as_deref(), SubjectId::new)?,
                    topic: opt_id(r.topic.as_deref(), TopicId::new)?,
                    state: r.state.into_domain()?,
                },
                log: ReviewLogEntry {
                    review_id: id(&r.review_id, ReviewId::new)?,
                    key: key_of(&r.log_user, &r.log_season, &r.log_question)?,
                    source: match r.source.as_str() {
                        "review" => ReviewSource::Review,
                        "lesson" => ReviewSource::Lesson,
                        o => return Err(PgStoreError::Corrupt(format!("review source {o}"))),
                    },
                    grade: Grade::from_u8(r.grade)
                        .ok_or_else(|| PgStoreError::Corrupt(format!("grade {}", r.grade)))?,
                    is_correct: r.is_correct,
                    duration_ms: r.duration_ms,
                    attempts: r.attempts,
                    reviewed_at: r.reviewed_at,
                    elapsed_days: r.elapsed_days,
                    scheduler: scheduler_of(&r.scheduler)?,
                    state_after: r.state_after.into_domain()?,
                },
            })
        })
        .collect()
}
