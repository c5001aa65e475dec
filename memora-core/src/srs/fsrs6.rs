//! FSRS-6 behind the [`Scheduler`] trait: converts between the shared
//! [`CardState`] and the FSRS card model of [`super::fsrs`], and applies the
//! grade table of [`super::grading`] to both answer paths (lesson plays and
//! reviews are the same event for FSRS; same-day answers go through the
//! short-term formula, so a lesson replay cannot collapse a mature card).
//!
//! A card last scheduled by the ladder (the season's scheduler was switched)
//! enters FSRS in the Review phase with stability = its last ladder interval
//! in days and a neutral difficulty of 5.

use super::fsrs::{self, FsrsCard, FsrsConfig, FsrsParams, FsrsScheduler, MemoryState, Rating};
use super::grading::{self, AnswerSignals};
use super::{AnswerPath, CardState, Phase, ReviewContext, Scheduled, Scheduler, SchedulerKind};

/// The FSRS-6 scheduler.
#[derive(Debug, Clone)]
pub struct Fsrs6 {
    inner: FsrsScheduler,
}

impl Fsrs6 {
    /// Builds a scheduler from a config (parameters, retention, steps, fuzz).
    pub fn new(config: FsrsConfig) -> Self {
        Fsrs6 {
            inner: FsrsScheduler::new(config),
        }
    }

    /// Builds from optional learner parameters (any accepted length; invalid
    /// vectors fall back to defaults) and a desired retention.
    pub fn for_learner(base: &FsrsConfig, params: Option<&[f64]>, desired_retention: f64) -> Self {
        let mut config = base.clone();
        if let Some(p) = params {
            if let Ok(parsed) = FsrsParams::from_slice(p) {
                config.params = parsed;
            }
        }
        if desired_retention.is_finite() && desired_retention > 0.0 && desired_retention < 1.0 {
            config.desired_retention = desired_retention;
        }
        Fsrs6::new(config)
    }

    /// The underlying FSRS scheduler.
    pub fn inner(&self) -> &FsrsScheduler {
        &self.inner
    }
}

fn to_fsrs_phase(p: Phase) -> fsrs::Phase {
    match p {
        Phase::New => fsrs::Phase::New,
        Phase::Learning => fsrs::Phase::Learning,
        Phase::Review => fsrs::Phase::Review,
        Phase::Relearning => fsrs::Phase::Relearning,
    }
}

fn from_fsrs_phase(p: fsrs::Phase) -> Phase {
    match p {
        fsrs::Phase::New => Phase::New,
        fsrs::Phase::Learning => Phase::Learning,
        fsrs::Phase::Review => Phase::Review,
        fsrs::Phase::Relearning => Phase::Relearning,
    }
}

fn to_card(prev: Option<&CardState>, ctx: &ReviewContext) -> FsrsCard {
    match prev {
        None => FsrsCard::new(ctx.now),
        Some(s) if s.kind == SchedulerKind::Ladder => {
            let mut c = FsrsCard::new(ctx.now);
            if s.ladder_level() > 0 {
                c.phase = fsrs::Phase::Review;
                c.memory = Some(MemoryState {
                    stability: f64::from(s.scheduled_days.max(1)),
                    difficulty: 5.0,
                });
                c.last_review = s.last_review;
                c.due = s.due;
                c.scheduled_days = s.scheduled_days;
            }
            c.reps = s.reps;
            c.lapses = s.lapses;
            c
        }
        Some(s) => FsrsCard {
            phase: to_fsrs_phase(s.phase),
            step: s.step,
            memory: if s.phase == Phase::New || s.stability <= 0.0 {
                None
            } else {
                Some(MemoryState {
                    stability: s.stability,
                    difficulty: s.difficulty,
                })
            },
            last_review: s.last_review,
            due: s.due,
            scheduled_days: s.scheduled_days,
            reps: s.reps,
            lapses: s.lapses,
        },
    }
}

impl Scheduler for Fsrs6 {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Fsrs6
    }

    fn schedule(
        &self,
        prev: Option<&CardState>,
        answer: &AnswerSignals,
        _path: AnswerPath,
        ctx: &ReviewContext,
    ) -> Scheduled {
        let grade = grading::grade_for(answer);
        let rating = Rating::from_u8(grade.as_u8()).unwrap_or(Rating::Again);
        let card = to_card(prev, ctx);
        let next = self
            .inner
            .review(&card, rating, ctx.now, ctx.elapsed_days, ctx.fuzz_seed);
        let memory = next.memory.unwrap_or(MemoryState {
            stability: 0.0,
            difficulty: 0.0,
        });
        Scheduled {
            grade,
            state: CardState {
                kind: SchedulerKind::Fsrs6,
                phase: from_fsrs_phase(next.phase),
                step: next.step,
                stability: memory.stability,
                difficulty: memory.difficulty,
                reps: next.reps,
                lapses: next.lapses,
                last_review: next.last_review,
                due: next.due,
                scheduled_days: next.scheduled_days,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srs::{Grade, mastery::MasteryBucket};
    use chrono::{Duration, TimeZone, Utc};

    fn ctx(days: i64, elapsed: u32) -> ReviewContext {
        ReviewContext {
            now: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::days(days),
            elapsed_days: elapsed,
            fuzz_seed: 42,
        }
    }

    #[test]
    fn new_card_goes_through_learning_steps_then_review() {
        let s = Fsrs6::new(FsrsConfig {
            enable_fuzz: false,
            ..FsrsConfig::default()
        });
        let good = AnswerSignals::review(true, 3000);
        let first = s.schedule(None, &good, AnswerPath::Review, &ctx(0, 0));
        assert_eq!(first.grade, Grade::Good);
        assert_eq!(first.state.phase, Phase::Learning);
        assert_eq!(first.state.mastery(), Some(MasteryBucket::New));
        assert!(first.state.due > ctx(0, 0).now);
        let second = s.schedule(Some(&first.state), &good, AnswerPath::Review, &ctx(0, 0));
        assert_eq!(second.state.phase, Phase::Review);
        assert!(second.state.scheduled_days >= 1);
        assert_eq!(second.state.reps, 2);
        assert_eq!(second.state.kind, SchedulerKind::Fsrs6);
    }

    #[test]
    fn wrong_answer_on_review_card_lapses() {
        let s = Fsrs6::new(FsrsConfig::default());
        let prev = CardState {
            kind: SchedulerKind::Fsrs6,
            phase: Phase::Review,
            step: 0,
            stability: 30.0,
            difficulty: 5.0,
            reps: 5,
            lapses: 0,
            last_review: Some(ctx(-30, 0).now),
            due: ctx(0, 0).now,
            scheduled_days: 30,
        };
        let out = s.schedule(
            Some(&prev),
            &AnswerSignals::review(false, 4000),
            AnswerPath::Review,
            &ctx(0, 30),
        );
        assert_eq!(out.grade, Grade::Again);
        assert_eq!(out.state.phase, Phase::Relearning);
        assert_eq!(out.state.lapses, 1);
        assert!(out.state.stability < 30.0);
    }

    #[test]
    fn ladder_state_is_migrated_not_reset() {
        let s = Fsrs6::new(FsrsConfig::default());
        let prev = CardState {
            kind: SchedulerKind::Ladder,
            phase: Phase::Review,
            step: 0,
            stability: 4.0,
            difficulty: 0.0,
            reps: 6,
            lapses: 1,
            last_review: Some(ctx(-14, 0).now),
            due: ctx(0, 0).now,
            scheduled_days: 14,
        };
        let out = s.schedule(
            Some(&prev),
            &AnswerSignals::review(true, 3000),
            AnswerPath::Review,
            &ctx(0, 14),
        );
        assert_eq!(out.state.phase, Phase::Review);
        assert!(out.state.stability > 14.0);
        assert_eq!(out.state.reps, 7);
        assert_eq!(out.state.lapses, 1);
    }

    #[test]
    fn learner_params_and_retention_are_used() {
        let base = FsrsConfig {
            enable_fuzz: false,
            ..FsrsConfig::default()
        };
        let lo = Fsrs6::for_learner(&base, None, 0.8);
        let hi = Fsrs6::for_learner(&base, None, 0.95);
        assert!(lo.inner().next_interval_days(10.0) > hi.inner().next_interval_days(10.0));
        let bad = Fsrs6::for_learner(&base, Some(&[1.0, 2.0]), 0.9);
        assert_eq!(bad.inner().config().params, FsrsParams::defaults());
    }
}
