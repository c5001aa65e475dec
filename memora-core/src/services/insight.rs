//! Learning insight for administrators: what the console plots — the due
//! load of the coming days per subject, answers per day, the distribution
//! of scheduled intervals, and how well FSRS predicted recall (calibration
//! from the review log). Season-wide aggregates; on PostgreSQL they read
//! the replica when one is configured.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::domain::{Actor, ReviewLogEntry};
use crate::error::{CoreError, CoreResult};
use crate::ids::{QuestionId, SeasonId, SubjectId, UserId};
use crate::srs::SchedulerKind;
use crate::srs::fsrs::FsrsParams;

use super::admin::AdminService;

/// Upper bounds (days, inclusive) of the interval buckets; the last bucket
/// holds everything longer.
pub const INTERVAL_BOUNDS: [u32; 8] = [1, 3, 7, 14, 30, 90, 180, 365];

/// Learners whose review logs are read for the calibration (a sample).
const CALIBRATION_LEARNERS: usize = 50;
/// Review-log entries read per sampled learner.
const CALIBRATION_LOG: usize = 5_000;

/// One day of the due forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDay {
    /// UTC day (the first day also holds everything overdue).
    pub day: NaiveDate,
    /// Cards due that day per subject (`None`: no subject).
    pub by_subject: Vec<(Option<SubjectId>, u64)>,
    /// All cards due that day.
    pub total: u64,
}

/// Answers of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayReviews {
    /// Day.
    pub day: NaiveDate,
    /// Answers.
    pub answers: u64,
    /// Correct answers.
    pub correct: u64,
}

/// Cards whose scheduled interval is in a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalBucket {
    /// Longest interval in the bucket (days); `None` for the last, open one.
    pub up_to_days: Option<u32>,
    /// Cards.
    pub cards: u64,
}

/// Answers whose predicted recall fell in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationBin {
    /// Lower bound of the predicted recall.
    pub from: f64,
    /// Upper bound.
    pub to: f64,
    /// Answers in the bin.
    pub answers: u64,
    /// Mean predicted recall.
    pub predicted: f64,
    /// Share answered correctly.
    pub observed: f64,
}

/// `get_learning_insight` output.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningInsight {
    /// Season.
    pub season: SeasonId,
    /// When computed.
    pub at: DateTime<Utc>,
    /// Due load of the next `days` UTC days (today includes the overdue).
    pub due_forecast: Vec<DueDay>,
    /// Answers per day over the last `days` days (days without any left out).
    pub reviews_per_day: Vec<DayReviews>,
    /// Live cards by scheduled interval.
    pub intervals: Vec<IntervalBucket>,
    /// Predicted against observed recall of FSRS-scheduled reviews, in ten
    /// bins of predicted recall (empty bins left out).
    pub calibration: Vec<CalibrationBin>,
    /// Answers the calibration is computed from.
    pub calibration_answers: u64,
    /// Learners sampled for it.
    pub calibration_learners: usize,
    /// Mean absolute gap between predicted and observed recall over the
    /// bins, weighted by answers (`None` without answers).
    pub calibration_error: Option<f64>,
    /// How well the per-learner FSRS fits did (every learner with a
    /// recorded fit, all seasons: parameters belong to the learner).
    pub fits: crate::ports::FitQualitySummary,
}

/// Ten bins of predicted recall from the `(predicted, correct)` pairs.
pub fn calibrate(pairs: &[(f64, bool)]) -> (Vec<CalibrationBin>, Option<f64>) {
    let mut sums = [(0u64, 0.0f64, 0u64); 10];
    for &(p, correct) in pairs {
        if !p.is_finite() {
            continue;
        }
        let i = ((p.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        sums[i].0 += 1;
        sums[i].1 += p;
        sums[i].2 += u64::from(correct);
    }
    let bins: Vec<CalibrationBin> = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, &(n, p, c))| CalibrationBin {
            from: i as f64 / 10.0,
            to: (i + 1) as f64 / 10.0,
            answers: n,
            predicted: p / n as f64,
            observed: c as f64 / n as f64,
        })
        .collect();
    let total: u64 = bins.iter().map(|b| b.answers).sum();
    let error = (total > 0).then(|| {
        bins.iter()
            .map(|b| (b.predicted - b.observed).abs() * b.answers as f64)
            .sum::<f64>()
            / total as f64
    });
    (bins, error)
}

/// `(predicted recall, correct)` of every FSRS review of `log` that follows
/// another review of the same card: the recall the previous state predicted
/// after the time that passed.
pub fn recall_pairs(log: &[ReviewLogEntry], params: &FsrsParams) -> Vec<(f64, bool)> {
    let mut last: HashMap<&QuestionId, &ReviewLogEntry> = HashMap::new();
    let mut out = Vec::new();
    for e in log {
        if let Some(prev) = last.get(&e.key.question) {
            let s = prev.state_after.stability;
            if prev.state_after.kind == SchedulerKind::Fsrs6 && s > 0.0 {
                let days = (e.reviewed_at - prev.reviewed_at).num_seconds() as f64 / 86_400.0;
                out.push((params.retrievability(days, s), e.is_correct));
            }
        }
        last.insert(&e.key.question, e);
    }
    out
}

impl AdminService {
    /// `get_learning_insight`: the due load of the next `days` days (1–90),
    /// answers per day over the last `days` days, intervals and calibration
    /// of `season` (the active one by default).
    pub async fn learning_insight(
        &self,
        actor: &Actor,
        season: Option<&SeasonId>,
        days: u32,
    ) -> CoreResult<LearningInsight> {
        actor.require_admin()?;
        if !(1..=90).contains(&days) {
            return Err(CoreError::invalid(format!("days: {days} is outside 1–90")));
        }
        let season = match season {
            Some(id) => self.shared.season(id).await?.id,
            None => self.shared.require_active_season().await?.id,
        };
        let now = self.shared.now();
        let today = now.date_naive();
        let start = today
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let span = Duration::days(i64::from(days));
        let forecast = self.scans.due_forecast(&season, now, start + span).await?;
        let mut by_day: BTreeMap<NaiveDate, Vec<(Option<SubjectId>, u64)>> = BTreeMap::new();
        for (day, subject, n) in forecast {
            by_day.entry(day).or_default().push((subject, n));
        }
        let due_forecast = (0..i64::from(days))
            .map(|i| {
                let day = today + Duration::days(i);
                let by_subject = by_day.remove(&day).unwrap_or_default();
                let total = by_subject.iter().map(|(_, n)| n).sum();
                DueDay {
                    day,
                    by_subject,
                    total,
                }
            })
            .collect();
        let reviews_per_day = self
            .scans
            .reviews_per_day(
                &season,
                start + Duration::days(1) - span,
                start + Duration::days(1),
            )
            .await?
            .into_iter()
            .map(|(day, answers, correct)| DayReviews {
                day,
                answers,
                correct,
            })
            .collect();
        let counts = self
            .scans
            .interval_histogram(&season, &INTERVAL_BOUNDS)
            .await?;
        let intervals = counts
            .iter()
            .enumerate()
            .map(|(i, n)| IntervalBucket {
                up_to_days: INTERVAL_BOUNDS.get(i).copied(),
                cards: *n,
            })
            .collect();
        // Calibration over the logs of a sample of the season's learners,
        // each with their own fitted parameters when they have some.
        let sample = self
            .scans
            .sample_trackers(
                &season,
                CALIBRATION_LEARNERS * 20,
                today.num_days_from_ce() as u64,
            )
            .await?;
        let mut learners: Vec<UserId> = Vec::new();
        let mut seen = HashSet::new();
        for t in sample {
            if learners.len() < CALIBRATION_LEARNERS && seen.insert(t.key.user.clone()) {
                learners.push(t.key.user);
            }
        }
        let mut pairs = Vec::new();
        for user in &learners {
            let log = self
                .revlog
                .review_log(user, Some(&season), CALIBRATION_LOG)
                .await?;
            let params = match self.fsrs.fsrs_params(user).await? {
                Some((w, _)) => FsrsParams::try_from(w).unwrap_or_default(),
                None => FsrsParams::default(),
            };
            pairs.extend(recall_pairs(&log, &params));
        }
        let (calibration, calibration_error) = calibrate(&pairs);
        let fits = self.fsrs.fit_quality_summary().await?;
        Ok(LearningInsight {
            season,
            at: now,
            due_forecast,
            reviews_per_day,
            intervals,
            calibration,
            calibration_answers: pairs.len() as u64,
            calibration_learners: learners.len(),
            calibration_error,
            fits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_bins_hold_what_fell_in_them() {
        let pairs = [
            (0.95, true),
            (0.91, false),
            (0.92, true),
            (0.15, false),
            (1.0, true),
        ];
        let (bins, error) = calibrate(&pairs);
        assert_eq!(bins.len(), 2);
        assert_eq!(
            (bins[0].from, bins[0].answers, bins[0].observed),
            (0.1, 1, 0.0)
        );
        assert_eq!(bins[1].answers, 4);
        assert!((bins[1].observed - 0.75).abs() < 1e-9);
        assert!((bins[1].predicted - 0.945).abs() < 1e-9);
        let want = (0.15 * 1.0 + (0.945f64 - 0.75).abs() * 4.0) / 5.0;
        assert!((error.unwrap() - want).abs() < 1e-9);
        assert_eq!(calibrate(&[]), (Vec::new(), None));
    }

    fn entry(
        q: &str,
        days: i64,
        kind: SchedulerKind,
        stability: f64,
        correct: bool,
    ) -> ReviewLogEntry {
        use crate::domain::{ReviewSource, TrackerKey};
        use crate::srs::{CardState, Grade, Phase};
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 8, 0, 0).unwrap();
        let at = t0 + Duration::days(days);
        ReviewLogEntry {
            review_id: crate::ids::ReviewId::new(format!("{q}-{days}")).unwrap(),
            key: TrackerKey {
                user: UserId::new("ann@x.test").unwrap(),
                season: SeasonId::new("SEASON-2026").unwrap(),
                question: QuestionId::parse(q).unwrap(),
            },
            source: ReviewSource::Review,
            grade: Grade::Good,
            is_correct: correct,
            duration_ms: 1000,
            attempts: 1,
            reviewed_at: at,
            elapsed_days: 0,
            scheduler: kind,
            state_after: CardState {
                kind,
                phase: Phase::Review,
                step: 0,
                stability,
                difficulty: 5.0,
                reps: 1,
                lapses: 0,
                last_review: Some(at),
                due: at + Duration::days(1),
                scheduled_days: 1,
            },
        }
    }

    #[test]
    fn recall_is_predicted_from_the_previous_fsrs_state_of_the_same_card() {
        let p = FsrsParams::default();
        let log = [
            entry("s1:0", 0, SchedulerKind::Fsrs6, 10.0, true),
            entry("s2:0", 1, SchedulerKind::Ladder, 2.0, true),
            entry("s1:0", 10, SchedulerKind::Fsrs6, 20.0, false),
            entry("s2:0", 3, SchedulerKind::Ladder, 2.0, true),
            entry("s1:0", 30, SchedulerKind::Fsrs6, 30.0, true),
        ];
        let pairs = recall_pairs(&log, &p);
        // The first review of a card predicts nothing; ladder states neither.
        assert_eq!(pairs.len(), 2);
        // R(S, S) = 0.9 by construction of the forgetting curve.
        assert!((pairs[0].0 - 0.9).abs() < 1e-9, "{pairs:?}");
        assert!(!pairs[0].1);
        assert!((pairs[1].0 - p.retrievability(20.0, 20.0)).abs() < 1e-9);
        assert!(pairs[1].1);
    }
}
