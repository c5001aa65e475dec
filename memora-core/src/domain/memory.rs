//! Learner memory: the tracker row per (player, season, question), the
//! append-only review log and archived trackers.

use chrono::{DateTime, Utc};

use crate::ids::{QuestionId, ReviewId, SeasonId, SubjectId, TopicId, UserId};
use crate::srs::{CardState, Grade, SchedulerKind};

/// Key of a tracker row. Unique: one row per (player, season, question).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerKey {
    /// Player.
    pub user: UserId,
    /// Season (partition).
    pub season: SeasonId,
    /// Question.
    pub question: QuestionId,
}

/// The scheduling state of one question for one player in one season.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryTracker {
    /// Key.
    pub key: TrackerKey,
    /// Subject of the question (for filters and quests).
    pub subject: Option<SubjectId>,
    /// Topic of the question.
    pub topic: Option<TopicId>,
    /// Scheduler state.
    pub state: CardState,
}

/// What produced a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewSource {
    /// An answer in a review session.
    Review,
    /// An interaction during a lesson play.
    Lesson,
}

impl ReviewSource {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewSource::Review => "review",
            ReviewSource::Lesson => "lesson",
        }
    }
}

/// One answer, as recorded forever in the review log (the optimizer's input,
/// the audit trail and what makes persistence idempotent).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewLogEntry {
    /// Idempotency key: replaying an entry with the same id changes nothing.
    pub review_id: ReviewId,
    /// Tracker key.
    pub key: TrackerKey,
    /// Source.
    pub source: ReviewSource,
    /// Grade the scheduler used (1–4).
    pub grade: Grade,
    /// Whether the answer was correct (as reported).
    pub is_correct: bool,
    /// Answer time.
    pub duration_ms: u32,
    /// Attempts (lesson interactions).
    pub attempts: u32,
    /// When answered (server time).
    pub reviewed_at: DateTime<Utc>,
    /// Learner-local elapsed days since the previous review (0 = same day / first).
    pub elapsed_days: u32,
    /// Scheduler that computed the new state.
    pub scheduler: SchedulerKind,
    /// State after the answer.
    pub state_after: CardState,
}

/// A tracker row plus the log entry that produced it: the unit of persistence.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    /// New tracker row (upserted if newer than the stored one).
    pub tracker: MemoryTracker,
    /// The review-log entry (inserted once per review id).
    pub log: ReviewLogEntry,
}

/// An archived tracker row.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedTracker {
    /// The row as it was.
    pub tracker: MemoryTracker,
    /// When archived.
    pub archived_at: DateTime<Utc>,
    /// Flagged by the retention job; only flagged rows may be deleted.
    pub eligible_for_deletion: bool,
}

/// Mastery bucket counts (see `srs::mastery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MasteryCounts {
    /// Recently failed / in (re)learning.
    pub new: u64,
    /// Being consolidated.
    pub learning: u64,
    /// Well retained.
    pub mature: u64,
}

impl MasteryCounts {
    /// Sum of all buckets.
    pub fn total(&self) -> u64 {
        self.new + self.learning + self.mature
    }
}

/// Counts reported by archive status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveCounts {
    /// Live tracker rows.
    pub active_records: u64,
    /// Archived rows.
    pub archived_records: u64,
    /// Archived rows flagged for deletion.
    pub eligible_for_deletion: u64,
}
