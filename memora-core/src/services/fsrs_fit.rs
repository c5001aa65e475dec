//! Per-learner FSRS-6 parameter fitting in the product: the admin use case
//! and the scheduled job that re-fit learners with enough new reviews. The
//! review path picks the stored parameters up automatically
//! (`ReviewService::scheduler_for`).

use std::time::Duration;

use chrono::Offset;

use crate::domain::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::UserId;
use crate::srs::optimizer::{FitConfig, fit};
use crate::srs::revlog::{RevlogEntry, build_items};
use crate::srs::stable_hash;

use super::AdminService;

/// Most review-log entries read for one fit (bounded memory).
pub const MAX_REVIEWS_PER_FIT: usize = 200_000;

/// Result of fitting one learner.
#[derive(Debug, Clone, PartialEq)]
pub struct RefitOutcome {
    /// Learner.
    pub user: UserId,
    /// Review-log entries used.
    pub reviews: u64,
    /// FSRS items built from them.
    pub items: usize,
    /// Parameters stored (defaults when `fell_back`).
    pub params: Vec<f64>,
    /// Too little data or no improvement: defaults kept.
    pub fell_back: bool,
    /// Weighted log loss with default parameters.
    pub loss_before: f64,
    /// Weighted log loss with the stored parameters.
    pub loss_after: f64,
}

impl AdminService {
    /// Fits and stores a learner's FSRS-6 parameters from their review log.
    pub async fn refit_fsrs_params(
        &self,
        actor: &Actor,
        user: &UserId,
    ) -> CoreResult<RefitOutcome> {
        actor.require_admin()?;
        if self.users.get_user(user).await?.is_none()
            && self.profiles.store.get_profile(user).await?.is_none()
        {
            return Err(CoreError::not_found(format!("user {user} not found")));
        }
        let log = self
            .revlog
            .review_log(user, None, MAX_REVIEWS_PER_FIT)
            .await?;
        let entries: Vec<RevlogEntry> = log
            .iter()
            .map(|e| RevlogEntry {
                card_id: stable_hash(&[e.key.season.as_str(), e.key.question.as_str()], 0) as i64,
                rating: e.grade.as_u8(),
                time: e.reviewed_at,
                duration_ms: e.duration_ms,
            })
            .collect();
        let profile = self.profiles.or_default(user).await?;
        let day = self.shared.day_boundary(&profile);
        let offset_minutes = self
            .shared
            .now()
            .with_timezone(&day.tz)
            .offset()
            .fix()
            .local_minus_utc()
            / 60;
        // Building the items and the fit are pure CPU (milliseconds for a
        // learner of thousands of reviews): run where they hold no request.
        let rollover = day.rollover_hour;
        let (tx, rx) = futures::channel::oneshot::channel();
        self.job_runtime
            .run_cpu(Box::new(move || {
                let items = build_items(&entries, offset_minutes, rollover);
                // The receiver waits for this send (a dropped receiver means
                // the caller is gone; nothing to deliver then).
                let _ = tx.send(fit(&items, &FitConfig::default()));
            }))
            .await?;
        let result = rx
            .await
            .map_err(|_| CoreError::Internal("the FSRS fit did not complete".into()))?;
        let params: Vec<f64> = result.params.as_array().to_vec();
        self.fsrs
            .set_fsrs_params(user, &params, log.len() as u64)
            .await?;
        self.fsrs
            .record_fit_quality(
                user,
                &crate::ports::FitQuality {
                    loss_before: Some(result.loss_before).filter(|l| l.is_finite()),
                    loss_after: Some(result.loss_after).filter(|l| l.is_finite()),
                    fell_back: result.fell_back,
                },
            )
            .await?;
        self.shared.fsrs_params.invalidate(user);
        self.shared.audit(
            actor,
            "fsrs.refit",
            serde_json::json!({"user": user.as_str(), "reviews": log.len(), "fell_back": result.fell_back}),
        )
        .await;
        Ok(RefitOutcome {
            user: user.clone(),
            reviews: log.len() as u64,
            items: result.used_items,
            params,
            fell_back: result.fell_back,
            loss_before: result.loss_before,
            loss_after: result.loss_after,
        })
    }

    /// Scheduled job (as the system caller): re-fits every learner with at least
    /// `fsrs_min_reviews_to_fit` reviews and at least `min_new_reviews`
    /// reviews since the last fit. Returns how many were re-fitted.
    ///
    /// Paced by [`Config::fsrs_refit_share`](super::Config::fsrs_refit_share):
    /// the time each learner took is owed back as pauses (in pauses of at
    /// least [`MIN_PAUSE`], so that learners who only need a count do not
    /// each pay a timer's granularity). Users are read [`REFIT_PAGE`] at a
    /// time, in id order, never the whole table at once.
    pub async fn run_fsrs_refit_job(&self, min_new_reviews: u64) -> CoreResult<u64> {
        let mut pacer = Pacer::new(self.shared.config.fsrs_refit_share);
        let page = REFIT_PAGE;
        let mut n = 0;
        let mut after: Option<UserId> = None;
        loop {
            let ids = self.users.user_ids_after(after.as_ref(), page).await?;
            for u in &ids {
                let started = std::time::Instant::now();
                if self.refit_if_due(u, min_new_reviews).await? {
                    n += 1;
                }
                if let Some(pause) = pacer.owe(started.elapsed()) {
                    self.job_runtime.pause(pause).await;
                }
            }
            if ids.len() < page {
                return Ok(n);
            }
            after = ids.last().cloned();
        }
    }

    /// Re-fits one learner if they have enough reviews, and enough new ones
    /// since their last fit. Returns whether they were re-fitted.
    async fn refit_if_due(&self, user: &UserId, min_new_reviews: u64) -> CoreResult<bool> {
        let count = self.revlog.count_reviews(user).await?;
        if count < self.shared.config.fsrs_min_reviews_to_fit as u64 {
            return Ok(false);
        }
        let fitted_on = self
            .fsrs
            .fsrs_params(user)
            .await?
            .map(|(_, n)| n)
            .unwrap_or(0);
        if count.saturating_sub(fitted_on) < min_new_reviews {
            return Ok(false);
        }
        self.refit_fsrs_params(&Actor::system(), user).await?;
        Ok(true)
    }
}

/// Users the re-fit job reads at a time.
pub const REFIT_PAGE: usize = 1000;

/// Shortest pause a paced job takes: shorter debts add up until they reach it.
pub const MIN_PAUSE: Duration = Duration::from_millis(5);

/// The pauses that hold a job to a share of one core's time: after a step
/// that took `t`, it owes `t × (1 / share − 1)`, paid in pauses of at least
/// [`MIN_PAUSE`].
#[derive(Debug)]
struct Pacer {
    /// Pause owed per unit of work (`1 / share − 1`).
    ratio: f64,
    owed: Duration,
}

impl Pacer {
    fn new(share: f64) -> Self {
        // NaN fails `>` and counts as 1.0 (no pauses), like any share ≥ 1.
        let share = if share > 0.0 {
            share.clamp(0.01, 1.0)
        } else if share.is_nan() {
            1.0
        } else {
            0.01
        };
        Pacer {
            ratio: 1.0 / share - 1.0,
            owed: Duration::ZERO,
        }
    }

    /// Records a step that took `spent`; returns the pause to take now, if
    /// the debt has reached [`MIN_PAUSE`].
    fn owe(&mut self, spent: Duration) -> Option<Duration> {
        if self.ratio <= 0.0 {
            return None;
        }
        self.owed += spent.mul_f64(self.ratio);
        (self.owed >= MIN_PAUSE).then(|| std::mem::take(&mut self.owed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_share_owes_three_times_the_work() {
        let mut p = Pacer::new(0.25);
        assert_eq!(
            p.owe(Duration::from_millis(1)),
            None,
            "3 ms owed: below the shortest pause"
        );
        assert_eq!(
            p.owe(Duration::from_millis(1)),
            Some(Duration::from_millis(6))
        );
        assert_eq!(
            p.owe(Duration::from_millis(4)),
            Some(Duration::from_millis(12))
        );
    }

    #[test]
    fn a_full_share_never_pauses_and_odd_shares_are_clamped() {
        let mut full = Pacer::new(1.0);
        assert_eq!(full.owe(Duration::from_secs(10)), None);
        let mut nan = Pacer::new(f64::NAN);
        assert_eq!(nan.owe(Duration::from_secs(10)), None);
        let mut above = Pacer::new(7.0);
        assert_eq!(above.owe(Duration::from_secs(10)), None);
        // 0 and negative shares become 1 %: 99 times the work.
        let mut zero = Pacer::new(0.0);
        assert_eq!(
            zero.owe(Duration::from_millis(1)),
            Some(Duration::from_millis(99))
        );
        let mut negative = Pacer::new(-3.0);
        assert_eq!(
            negative.owe(Duration::from_millis(1)),
            Some(Duration::from_millis(99))
        );
    }
}
