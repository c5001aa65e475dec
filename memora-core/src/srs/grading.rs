//! Mapping Memora answer signals to grades 1–4.
//!
//! | signal                                              | grade      |
//! |-----------------------------------------------------|------------|
//! | `quality` 0–5 given (003 API form)                  | 0–2 → Again, 3 → Hard, 4 → Good, 5 → Easy |
//! | wrong answer (`is_correct = false`)                 | 1 Again    |
//! | correct, but only after several attempts (> 1)      | 1 Again    |
//! | correct, first try, duration < 2 000 ms             | 4 Easy     |
//! | correct, first try, 2 000 ≤ duration ≤ 6 000 ms     | 3 Good     |
//! | correct, first try, duration > 6 000 ms             | 2 Hard     |
//!
//! A duration of 0 (missing) counts as 3 000 ms, exactly like the original
//! review path. The thresholds are the review ladder's (2 s / 6 s), so both
//! schedulers read the same signal the same way.

use super::Grade;

/// What the client reported about one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerSignals {
    /// Whether the answer was correct.
    pub is_correct: bool,
    /// Time to answer in ms (0 = unknown → 3 000).
    pub duration_ms: u32,
    /// Attempts needed (lesson interactions); 0 or 1 = first try.
    pub attempts: u32,
    /// Explicit quality 0–5 (003 contract), overriding the other signals.
    pub quality: Option<u8>,
}

/// Duration used when the client sent none.
pub const DEFAULT_DURATION_MS: u32 = 3000;
/// Answers faster than this are "fast".
pub const FAST_MS: u32 = 2000;
/// Answers slower than this are "slow".
pub const SLOW_MS: u32 = 6000;

impl AnswerSignals {
    /// A review answer.
    pub fn review(is_correct: bool, duration_ms: u32) -> Self {
        AnswerSignals {
            is_correct,
            duration_ms,
            attempts: 1,
            quality: None,
        }
    }
    /// A 003-style answer with quality 0–5.
    pub fn with_quality(quality: u8, duration_ms: u32) -> Self {
        AnswerSignals {
            is_correct: quality >= 3,
            duration_ms,
            attempts: 1,
            quality: Some(quality.min(5)),
        }
    }
    /// Effective duration (0 → 3 000 ms).
    pub fn effective_duration(&self) -> u32 {
        if self.duration_ms == 0 {
            DEFAULT_DURATION_MS
        } else {
            self.duration_ms
        }
    }
    /// Correct on the first try.
    pub fn first_try_correct(&self) -> bool {
        self.is_correct && self.attempts <= 1
    }
}

/// The grade table of the module docs.
pub fn grade_for(a: &AnswerSignals) -> Grade {
    if let Some(q) = a.quality {
        return match q {
            0..=2 => Grade::Again,
            3 => Grade::Hard,
            4 => Grade::Good,
            _ => Grade::Easy,
        };
    }
    if !a.first_try_correct() {
        return Grade::Again;
    }
    let t = a.effective_duration();
    if t < FAST_MS {
        Grade::Easy
    } else if t <= SLOW_MS {
        Grade::Good
    } else {
        Grade::Hard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_table_boundaries() {
        let g = |c, t| grade_for(&AnswerSignals::review(c, t));
        assert_eq!(g(false, 500), Grade::Again);
        assert_eq!(g(true, 1999), Grade::Easy);
        assert_eq!(g(true, 2000), Grade::Good);
        assert_eq!(g(true, 6000), Grade::Good);
        assert_eq!(g(true, 6001), Grade::Hard);
        assert_eq!(g(true, 0), Grade::Good, "missing duration counts as 3 s");
        let mut retry = AnswerSignals::review(true, 500);
        retry.attempts = 2;
        assert_eq!(grade_for(&retry), Grade::Again);
    }

    #[test]
    fn quality_overrides() {
        let q = |q| grade_for(&AnswerSignals::with_quality(q, 9000));
        assert_eq!(q(0), Grade::Again);
        assert_eq!(q(2), Grade::Again);
        assert_eq!(q(3), Grade::Hard);
        assert_eq!(q(4), Grade::Good);
        assert_eq!(q(5), Grade::Easy);
        assert!(!AnswerSignals::with_quality(2, 0).is_correct);
        assert!(AnswerSignals::with_quality(3, 0).is_correct);
    }
}
