//! Memora's original review ladder, reproduced exactly
//! (`original-behavior.md` §1.2–§1.4), with one state model for both paths.
//!
//! **Review path** (review sessions). From the current level `s` (0 = new):
//! correct and faster than 2 000 ms → `min(s+2, 4)`; correct and slower than
//! 6 000 ms → `max(s, 1)`; other correct answers → `min(s+1, 4)`; a wrong
//! answer → 1. Level 1/2/3/4 is due in 1/3/7/14 days (added to the answer time).
//!
//! **Lesson path** (interactions during a lesson play). The original rated an
//! interaction by attempts and time only (more than one attempt → 1, faster
//! than 2 000 ms → 4, faster than 5 000 ms → 3, otherwise 2; due in 0/2/4/7
//! days) and *overwrote* the level with that rating, so replaying a lesson
//! slowly demoted a mature card (bug §7 #3). Here the lesson rating is
//! computed the same way, and so is the review-ladder result for the same
//! answer; the card takes whichever is higher, comparing (level, due date).
//! **Rule: a lesson play never leaves a card below what the review ladder
//! would give for the same answer.** A first exposure can still jump
//! straight to level 4 (+7 days) as in the original. An explicit
//! `is_correct = false` in a lesson interaction counts as a failed first try.

use chrono::Duration;

use super::grading::{self, AnswerSignals};
use super::{
    AnswerPath, CardState, Grade, Phase, ReviewContext, Scheduled, Scheduler, SchedulerKind,
};

/// The highest ladder level.
pub const MAX_LEVEL: u8 = 4;

/// Interval in days of a review-ladder level (1→1, 2→3, 3→7, 4→14, other→1).
pub fn review_interval_days(level: u8) -> i64 {
    match level {
        1 => 1,
        2 => 3,
        3 => 7,
        4 => 14,
        _ => 1,
    }
}

/// Interval in days of a lesson rating (1→0, 2→2, 3→4, 4→7, other→1).
pub fn lesson_interval_days(rating: u8) -> i64 {
    match rating {
        1 => 0,
        2 => 2,
        3 => 4,
        4 => 7,
        _ => 1,
    }
}

/// Next review-ladder level from level `s` (§1.3).
pub fn next_review_level(s: u8, answer: &AnswerSignals) -> u8 {
    if !answer.is_correct {
        return 1;
    }
    let t = answer.effective_duration();
    let next = if t < grading::FAST_MS {
        (s + 2).min(MAX_LEVEL)
    } else if t > grading::SLOW_MS {
        s.max(1)
    } else {
        (s + 1).min(MAX_LEVEL)
    };
    next.max(1)
}

/// Lesson-path rating (§1.2): attempts first, then time (2 000 / 5 000 ms).
pub fn lesson_rating(answer: &AnswerSignals) -> u8 {
    if answer.attempts > 1 || !answer.is_correct {
        1
    } else if answer.duration_ms < 2000 {
        4
    } else if answer.duration_ms < 5000 {
        3
    } else {
        2
    }
}

/// The ladder scheduler.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ladder;

impl Scheduler for Ladder {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ladder
    }

    fn schedule(
        &self,
        prev: Option<&CardState>,
        answer: &AnswerSignals,
        path: AnswerPath,
        ctx: &ReviewContext,
    ) -> Scheduled {
        let s = prev.map(CardState::ladder_level).unwrap_or(0);
        // On the lesson path a correct answer after several attempts is a
        // failed first try, for the ladder comparison as well.
        let answer = &match path {
            AnswerPath::Review => *answer,
            AnswerPath::Lesson => AnswerSignals {
                is_correct: answer.first_try_correct(),
                ..*answer
            },
        };
        let review_level = next_review_level(s, answer);
        let review_due = ctx.now + Duration::days(review_interval_days(review_level));
        let (level, due, days, grade) = match path {
            AnswerPath::Review => (
                review_level,
                review_due,
                review_interval_days(review_level),
                grading::grade_for(answer),
            ),
            AnswerPath::Lesson => {
                let r = lesson_rating(answer);
                let lesson_due = ctx.now + Duration::days(lesson_interval_days(r));
                let grade = Grade::from_u8(r).unwrap_or(Grade::Again);
                if (r, lesson_due) > (review_level, review_due) {
                    (r, lesson_due, lesson_interval_days(r), grade)
                } else {
                    (
                        review_level,
                        review_due,
                        review_interval_days(review_level),
                        grade,
                    )
                }
            }
        };
        let lapsed = !answer.is_correct && s >= 2;
        Scheduled {
            grade,
            state: CardState {
                kind: SchedulerKind::Ladder,
                phase: Phase::Review,
                step: 0,
                stability: f64::from(level),
                difficulty: 0.0,
                reps: prev.map(|p| p.reps).unwrap_or(0).saturating_add(1),
                lapses: prev.map(|p| p.lapses).unwrap_or(0) + u32::from(lapsed),
                last_review: Some(ctx.now),
                due,
                scheduled_days: u32::try_from(days).unwrap_or(0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ctx() -> ReviewContext {
        ReviewContext {
            now: Utc.with_ymd_and_hms(2026, 1, 20, 10, 30, 0).unwrap(),
            elapsed_days: 0,
            fuzz_seed: 7,
        }
    }

    fn at_level(level: u8) -> Option<CardState> {
        if level == 0 {
            return None;
        }
        let c = ctx();
        Some(CardState {
            kind: SchedulerKind::Ladder,
            phase: Phase::Review,
            step: 0,
            stability: f64::from(level),
            difficulty: 0.0,
            reps: 3,
            lapses: 0,
            last_review: Some(c.now - Duration::days(5)),
            due: c.now,
            scheduled_days: 3,
        })
    }

    fn review(level: u8, correct: bool, t: u32) -> (u8, i64) {
        let c = ctx();
        let out = Ladder.schedule(
            at_level(level).as_ref(),
            &AnswerSignals::review(correct, t),
            AnswerPath::Review,
            &c,
        );
        (out.state.ladder_level(), (out.state.due - c.now).num_days())
    }

    /// Every row of original-behavior.md §1.4.
    #[test]
    fn review_path_vector_table() {
        let rows: &[(u8, bool, u32, u8, i64)] = &[
            (0, true, 1500, 2, 3),
            (0, true, 3000, 1, 1),
            (0, true, 7000, 1, 1),
            (1, true, 1999, 3, 7),
            (1, true, 2000, 2, 3),
            (2, true, 6000, 3, 7),
            (2, true, 6001, 2, 3),
            (3, true, 500, 4, 14),
            (4, true, 500, 4, 14),
            (4, false, 500, 1, 1),
            (4, false, 9999, 1, 1),
            (2, false, 0, 1, 1),
        ];
        for &(s, correct, t, want_level, want_days) in rows {
            assert_eq!(
                review(s, correct, t),
                (want_level, want_days),
                "s={s} correct={correct} t={t}"
            );
        }
    }

    /// Last row of §1.4: t = 0 counts as 3 000 ms → min(s+1, 4), floored at 1.
    #[test]
    fn zero_duration_counts_as_three_seconds() {
        for s in 0..=4u8 {
            let want = (s + 1).clamp(1, 4);
            assert_eq!(review(s, true, 0).0, want, "s={s}");
        }
    }

    /// §1.2 vectors on a new card: (1,1500)→4,+7d; (1,3000)→3,+4d; (1,5000)→2,+2d.
    /// (2 attempts, 500 ms) gives rating 1; the ladder floor makes it due in 1 day.
    #[test]
    fn lesson_path_vectors_on_new_cards() {
        let c = ctx();
        let lesson = |attempts: u32, t: u32| {
            let mut a = AnswerSignals::review(true, t);
            a.attempts = attempts;
            let out = Ladder.schedule(None, &a, AnswerPath::Lesson, &c);
            (
                out.grade.as_u8(),
                out.state.ladder_level(),
                (out.state.due - c.now).num_days(),
            )
        };
        assert_eq!(lesson(1, 1500), (4, 4, 7));
        assert_eq!(lesson(1, 3000), (3, 3, 4));
        assert_eq!(lesson(1, 5000), (2, 2, 2));
        assert_eq!(lesson(1, 4999), (3, 3, 4));
        assert_eq!(lesson(1, 1999), (4, 4, 7));
        assert_eq!(lesson(1, 2000), (3, 3, 4));
        assert_eq!(lesson(0, 1500), (4, 4, 7), "0 attempts = first try");
        assert_eq!(lesson(2, 500), (1, 1, 1));
    }

    /// The fix of bug §7 #3: a slow lesson replay never demotes a mature card.
    #[test]
    fn lesson_replay_never_demotes() {
        let c = ctx();
        let mut slow = AnswerSignals::review(true, 8000);
        slow.attempts = 1;
        let out = Ladder.schedule(at_level(4).as_ref(), &slow, AnswerPath::Lesson, &c);
        assert_eq!(out.state.ladder_level(), 4);
        assert_eq!((out.state.due - c.now).num_days(), 14);
        // …but a failed attempt still resets, exactly like a failed review.
        let mut failed = AnswerSignals::review(true, 500);
        failed.attempts = 3;
        let out = Ladder.schedule(at_level(4).as_ref(), &failed, AnswerPath::Lesson, &c);
        assert_eq!(out.state.ladder_level(), 1);
        assert_eq!(out.state.lapses, 1);
    }

    #[test]
    fn reps_count_and_review_time_recorded() {
        let c = ctx();
        let out = Ladder.schedule(
            at_level(2).as_ref(),
            &AnswerSignals::review(true, 2500),
            AnswerPath::Review,
            &c,
        );
        assert_eq!(out.state.reps, 4);
        assert_eq!(out.state.last_review, Some(c.now));
        assert_eq!(out.grade, Grade::Good);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn state(level: u8) -> CardState {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        CardState {
            kind: SchedulerKind::Ladder,
            phase: Phase::Review,
            step: 0,
            stability: f64::from(level),
            difficulty: 0.0,
            reps: 1,
            lapses: 0,
            last_review: Some(now),
            due: now,
            scheduled_days: 1,
        }
    }

    proptest! {
        /// A correct answer never schedules sooner than a wrong one from the
        /// same state, on either path.
        #[test]
        fn correct_never_shorter_than_wrong(level in 0u8..=4, t in 0u32..20_000, attempts in 0u32..4, lesson in any::<bool>()) {
            let ctx = ReviewContext { now: Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0).unwrap(), elapsed_days: 3, fuzz_seed: 1 };
            let prev = (level > 0).then(|| state(level));
            let path = if lesson { AnswerPath::Lesson } else { AnswerPath::Review };
            let mut right = AnswerSignals::review(true, t);
            right.attempts = attempts;
            let mut wrong = AnswerSignals::review(false, t);
            wrong.attempts = attempts;
            let a = Ladder.schedule(prev.as_ref(), &right, path, &ctx);
            let b = Ladder.schedule(prev.as_ref(), &wrong, path, &ctx);
            prop_assert!(a.state.due >= b.state.due);
            prop_assert!(a.state.ladder_level() >= b.state.ladder_level());
        }

        /// Levels stay in 1..=4 and intervals in 0..=14 days.
        #[test]
        fn levels_and_intervals_bounded(level in 0u8..=4, t in 0u32..100_000, correct in any::<bool>(), lesson in any::<bool>()) {
            let ctx = ReviewContext { now: Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0).unwrap(), elapsed_days: 0, fuzz_seed: 1 };
            let prev = (level > 0).then(|| state(level));
            let path = if lesson { AnswerPath::Lesson } else { AnswerPath::Review };
            let out = Ladder.schedule(prev.as_ref(), &AnswerSignals::review(correct, t), path, &ctx);
            prop_assert!((1..=4).contains(&out.state.ladder_level()));
            let days = (out.state.due - ctx.now).num_days();
            prop_assert!((0..=14).contains(&days));
            prop_assert!(out.state.mastery().is_some());
        }
    }
}
