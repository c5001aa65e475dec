//! Mastery buckets, defined for both schedulers.
//!
//! | bucket     | Ladder            | FSRS-6                                             |
//! |------------|-------------------|----------------------------------------------------|
//! | `new`      | level 1 (just failed / first seen slowly) | New, Learning or Relearning phase |
//! | `learning` | level 2           | Review phase, stability < 21 days                  |
//! | `mature`   | level 3 or 4      | Review phase, stability ≥ 21 days (Anki's "mature") |
//!
//! A ladder level of 0 (never scheduled) belongs to no bucket. As in the
//! original, "new" means "not yet retained", not "never seen".

use super::{CardState, Phase, SchedulerKind};

/// FSRS stability (days) from which a card counts as mature.
pub const MATURE_STABILITY_DAYS: f64 = 21.0;

/// A mastery bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MasteryBucket {
    /// Not yet retained.
    New,
    /// Being consolidated.
    Learning,
    /// Well retained.
    Mature,
}

impl MasteryBucket {
    /// Small-integer code for storage (0/1/2).
    pub fn code(self) -> i16 {
        match self {
            MasteryBucket::New => 0,
            MasteryBucket::Learning => 1,
            MasteryBucket::Mature => 2,
        }
    }
}

/// The bucket of a card state.
pub fn bucket(state: &CardState) -> Option<MasteryBucket> {
    match state.kind {
        SchedulerKind::Ladder => match state.ladder_level() {
            1 => Some(MasteryBucket::New),
            2 => Some(MasteryBucket::Learning),
            3 | 4 => Some(MasteryBucket::Mature),
            _ => None,
        },
        SchedulerKind::Fsrs6 => match state.phase {
            Phase::New | Phase::Learning | Phase::Relearning => Some(MasteryBucket::New),
            Phase::Review if state.stability >= MATURE_STABILITY_DAYS => {
                Some(MasteryBucket::Mature)
            }
            Phase::Review => Some(MasteryBucket::Learning),
        },
    }
}
