//! Spaced-repetition scheduling. One [`CardState`] model serves both
//! schedulers and both answer paths (review sessions and lesson plays); a
//! season picks its scheduler ([`SchedulerKind`]). Schedulers are pure
//! functions of (previous state, answer, context) — time and randomness come
//! in through [`ReviewContext`], so they are deterministic and property-testable.

pub mod evaluate;
pub mod fsrs;
pub mod fsrs6;
pub mod grading;
pub mod ladder;
pub mod mastery;
pub mod optimizer;
pub mod revlog;

use chrono::{DateTime, Utc};

use crate::error::CoreError;

pub use fsrs6::Fsrs6;
pub use grading::{AnswerSignals, grade_for};
pub use ladder::Ladder;
pub use mastery::MasteryBucket;

/// The four grades (FSRS numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    /// 1 — forgotten / wrong.
    Again = 1,
    /// 2 — recalled with difficulty.
    Hard = 2,
    /// 3 — recalled.
    Good = 3,
    /// 4 — recalled easily.
    Easy = 4,
}

impl Grade {
    /// Numeric grade 1–4.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
    /// From 1–4.
    pub fn from_u8(g: u8) -> Option<Grade> {
        match g {
            1 => Some(Grade::Again),
            2 => Some(Grade::Hard),
            3 => Some(Grade::Good),
            4 => Some(Grade::Easy),
            _ => None,
        }
    }
}

/// Which scheduler a season uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// Memora's original fixed review ladder (levels 1–4, 1/3/7/14 days).
    Ladder,
    /// FSRS-6 with learning steps and per-learner parameters.
    Fsrs6,
}

impl SchedulerKind {
    /// Stable text form (`ladder`, `fsrs6`).
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::Ladder => "ladder",
            SchedulerKind::Fsrs6 => "fsrs6",
        }
    }
    /// Parses the text form.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ladder" => Ok(SchedulerKind::Ladder),
            "fsrs6" | "fsrs-6" | "fsrs" => Ok(SchedulerKind::Fsrs6),
            other => Err(CoreError::invalid(format!(
                "unknown scheduler '{other}' (expected ladder or fsrs6)"
            ))),
        }
    }
}

/// Learning phase of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Never answered.
    New,
    /// In the learning steps.
    Learning,
    /// Graduated.
    Review,
    /// Lapsed and in the relearning steps.
    Relearning,
}

impl Phase {
    /// Small-integer code used by storage adapters.
    pub fn code(self) -> i16 {
        match self {
            Phase::New => 0,
            Phase::Learning => 1,
            Phase::Review => 2,
            Phase::Relearning => 3,
        }
    }
    /// Inverse of [`Phase::code`].
    pub fn from_code(c: i16) -> Option<Phase> {
        match c {
            0 => Some(Phase::New),
            1 => Some(Phase::Learning),
            2 => Some(Phase::Review),
            3 => Some(Phase::Relearning),
            _ => None,
        }
    }
}

/// The persisted scheduling state of one card (tracker row).
///
/// * Ladder: `stability` is the ladder level 1–4 (0 = never scheduled),
///   `difficulty` is 0.
/// * FSRS-6: `stability` (days) and `difficulty` (1–10) are the memory state.
#[derive(Debug, Clone, PartialEq)]
pub struct CardState {
    /// Scheduler that produced this state.
    pub kind: SchedulerKind,
    /// Phase.
    pub phase: Phase,
    /// Current (re)learning step index.
    pub step: u32,
    /// Ladder level or FSRS stability.
    pub stability: f64,
    /// FSRS difficulty (0 for the ladder).
    pub difficulty: f64,
    /// Number of answers.
    pub reps: u32,
    /// Number of lapses (graduated card answered wrong).
    pub lapses: u32,
    /// Last answer time.
    pub last_review: Option<DateTime<Utc>>,
    /// Next due time.
    pub due: DateTime<Utc>,
    /// Interval chosen at the last answer, in whole days (0 = same day).
    pub scheduled_days: u32,
}

impl CardState {
    /// The ladder level (stability truncated to 0–4).
    pub fn ladder_level(&self) -> u8 {
        if self.stability.is_finite() && self.stability > 0.0 {
            self.stability.min(4.0) as u8
        } else {
            0
        }
    }
    /// Mastery bucket of this state.
    pub fn mastery(&self) -> Option<MasteryBucket> {
        mastery::bucket(self)
    }
}

/// Where an answer came from; the ladder treats the two paths differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerPath {
    /// A review-session answer.
    Review,
    /// A lesson-play interaction.
    Lesson,
}

/// Everything a scheduler needs besides the card: time and determinism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewContext {
    /// Current time.
    pub now: DateTime<Utc>,
    /// Learner-local calendar days since the last review (0 = same day or new).
    pub elapsed_days: u32,
    /// Seed for interval fuzz, stable per (card, rep count).
    pub fuzz_seed: u64,
}

/// The result of scheduling one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// The grade the scheduler used (recorded in the review log).
    pub grade: Grade,
    /// The new state.
    pub state: CardState,
}

/// A scheduler: pure, deterministic, cheap to call.
pub trait Scheduler: Send + Sync {
    /// Which scheduler this is.
    fn kind(&self) -> SchedulerKind;
    /// Computes the state after `answer` given the previous state (`None` =
    /// first time the learner meets this question in the season).
    fn schedule(
        &self,
        prev: Option<&CardState>,
        answer: &AnswerSignals,
        path: AnswerPath,
        ctx: &ReviewContext,
    ) -> Scheduled;
}

/// Deterministic 64-bit FNV-1a hash, used to derive fuzz seeds from card keys.
pub fn stable_hash(parts: &[&str], extra: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    for b in extra.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
