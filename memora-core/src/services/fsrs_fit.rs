//! Per-learner FSRS-6 parameter fitting in the product: the admin use case
//! and the scheduled job that re-fit learners with enough new reviews. The
//! review path picks the stored parameters up automatically
//! (`ReviewService::scheduler_for`).

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
        let items = build_items(&entries, offset_minutes, day.rollover_hour);
        let result = fit(&items, &FitConfig::default());
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
    pub async fn run_fsrs_refit_job(&self, min_new_reviews: u64) -> CoreResult<u64> {
        let mut n = 0;
        for u in self.users.list_users().await? {
            let count = self.revlog.count_reviews(&u.id).await?;
            if count < self.shared.config.fsrs_min_reviews_to_fit as u64 {
                continue;
            }
            let fitted_on = self
                .fsrs
                .fsrs_params(&u.id)
                .await?
                .map(|(_, n)| n)
                .unwrap_or(0);
            if count.saturating_sub(fitted_on) < min_new_reviews {
                continue;
            }
            self.refit_fsrs_params(&Actor::system(), &u.id).await?;
            n += 1;
        }
        Ok(n)
    }
}
