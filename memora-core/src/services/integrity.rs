//! The trust boundary of answers: the server decides what an answer is
//! worth from its own state, never from the client's word.
//!
//! * **Served-set binding.** Every card `get_review_session` hands out and
//!   every lesson `get_lesson_details` hands out is recorded in the
//!   [`ServedLedger`] for a short time. An answer
//!   counts only for an item served to this learner, in the active season,
//!   not yet answered, and still accessible to the learner now (published,
//!   free or covered by a current subscription). Anything else is rejected
//!   whole, changing nothing.
//! * **XP once per item per learner day**: the ledger remembers the learner
//!   day on which each item last earned XP.
//! * **Idempotent answers.** Client review ids are scoped to the learner
//!   (`<learner tag>~<client id>`), so no learner can touch another's log;
//!   the ledger keeps the receipt of each item's latest answer, so a replayed
//!   review id returns the original outcome and changes nothing. The ledger
//!   commit is an all-or-nothing compare-and-set: of concurrent identical
//!   submissions exactly one takes effect.
//!
//! The ledger lives in the cache (fast path) with the store as the fallback
//! when the cache is down, so binding holds in safe mode and across server
//! processes. Entries written to one are looked up in the other only when
//! missing from the first.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::{JobId, LessonId, QuestionId, ReviewId, SeasonId, UserId};
use crate::ports::{ServedLedger, Serving, ServingClaim};
use crate::srs::stable_hash;

use super::content::{ContentIndex, has_financial_access};
use super::shared::Shared;
use crate::domain::AccessKeys;
use crate::ports::Ports;

/// Prefix of a review card's ledger key.
pub const QUESTION_KEY_PREFIX: &str = "q:";

/// Ledger key of a review card.
pub fn question_key(q: &QuestionId) -> String {
    format!("{QUESTION_KEY_PREFIX}{q}")
}

/// Ledger key of a lesson play.
pub fn lesson_key(l: &LessonId) -> String {
    format!("l:{l}")
}

/// A short, stable tag of a learner (16 hex digits) that scopes the ids the
/// server derives for them (review ids, persistence job ids).
pub fn learner_tag(user: &UserId) -> String {
    format!("{:016x}", stable_hash(&[user.as_str()], 0x6d65_6d6f_7261))
}

/// Separator between the learner tag and a client review id.
const SCOPE_SEP: char = '~';

/// The stored review id of a client-supplied review id: scoped to the
/// learner, so equal client ids of two learners never collide.
pub fn scoped_review_id(user: &UserId, client: &ReviewId) -> CoreResult<ReviewId> {
    ReviewId::new(format!("{}{SCOPE_SEP}{client}", learner_tag(user))).map_err(|_| {
        CoreError::invalid(format!(
            "review_id '{client}' is too long (at most {} characters)",
            crate::ids::MAX_ID_LEN - 17
        ))
    })
}

/// Which ledger an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerSource {
    Cache,
    Store,
}

/// One looked-up entry and where it lives.
pub(crate) type Located = Option<(Serving, LedgerSource)>;

/// The served-set ledger as the services use it: the cache ledger (fast
/// path) composed with the store ledger (durable fallback). Shared by the
/// review and learning services.
pub(crate) struct ServedSet {
    shared: Arc<Shared>,
    served: Arc<dyn ServedLedger>,
    served_cache: Option<Arc<dyn ServedLedger>>,
}

impl ServedSet {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>) -> Self {
        ServedSet {
            shared: Arc::clone(shared),
            served: Arc::clone(&ports.served),
            served_cache: ports.served_cache.clone(),
        }
    }

    fn ledger(&self, source: LedgerSource) -> &Arc<dyn ServedLedger> {
        match (source, &self.served_cache) {
            (LedgerSource::Cache, Some(c)) => c,
            _ => &self.served,
        }
    }

    fn cache_ledger_usable(&self, now: DateTime<Utc>) -> bool {
        self.served_cache.is_some() && self.shared.health.should_try(now)
    }

    /// The terms of a serving at `now` answerable for `answerable`: the
    /// entry is kept for `Config::served_retention`, and at least as long
    /// as it is answerable.
    pub(crate) fn serve_terms(
        &self,
        now: DateTime<Utc>,
        answerable: std::time::Duration,
    ) -> crate::ports::ServeTerms {
        let until = now + chrono::Duration::from_std(answerable).unwrap_or_default();
        let retain = until.max(
            now + chrono::Duration::from_std(self.shared.config.served_retention)
                .unwrap_or_default(),
        );
        crate::ports::ServeTerms {
            item_prefix: QUESTION_KEY_PREFIX.to_owned(),
            served_at: now,
            answerable_until: until,
            retain_until: retain,
        }
    }

    /// Records that `items` were served to `user` in `season` now.
    pub(crate) async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        answerable: std::time::Duration,
    ) -> CoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let now = self.shared.now();
        let until = now + chrono::Duration::from_std(answerable).unwrap_or_default();
        let retain = until.max(
            now + chrono::Duration::from_std(self.shared.config.served_retention)
                .unwrap_or_default(),
        );
        if self.cache_ledger_usable(now) {
            match self
                .ledger(LedgerSource::Cache)
                .record_served(user, season, items, now, until, retain)
                .await
            {
                Ok(()) => return Ok(()),
                Err(_) => self.shared.health.mark_failed(now),
            }
        }
        self.served
            .record_served(user, season, items, now, until, retain)
            .await?;
        Ok(())
    }

    /// The ledger entries of `items`: from the cache, and from the store for
    /// anything the cache does not have (served while the cache was down).
    pub(crate) async fn lookup_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> CoreResult<Vec<Located>> {
        let mut out: Vec<Located> = vec![None; items.len()];
        if self.cache_ledger_usable(now) {
            match self
                .ledger(LedgerSource::Cache)
                .lookup(user, season, items, now)
                .await
            {
                Ok(found) => {
                    for (slot, f) in out.iter_mut().zip(found) {
                        *slot = f.map(|s| (s, LedgerSource::Cache));
                    }
                }
                Err(_) => self.shared.health.mark_failed(now),
            }
        }
        let missing: Vec<usize> = (0..items.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|i| items[*i].clone()).collect();
            let found = self.served.lookup(user, season, &keys, now).await?;
            for (i, f) in missing.into_iter().zip(found) {
                out[i] = f.map(|s| (s, LedgerSource::Store));
            }
        }
        Ok(out)
    }

    /// Commits claims to the ledgers they came from. `false` if a
    /// concurrent submission won (nothing of this call remains committed).
    pub(crate) async fn commit_claims(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[(ServingClaim, LedgerSource)],
    ) -> CoreResult<bool> {
        let mut committed: Vec<LedgerSource> = Vec::new();
        for source in [LedgerSource::Cache, LedgerSource::Store] {
            let part: Vec<ServingClaim> = claims
                .iter()
                .filter(|(_, s)| *s == source)
                .map(|(c, _)| c.clone())
                .collect();
            if part.is_empty() {
                continue;
            }
            let ok = match self.ledger(source).commit(user, season, &part).await {
                Ok(ok) => ok,
                Err(e) => {
                    self.release_claims(user, season, claims, &committed).await;
                    return Err(e.into());
                }
            };
            if !ok {
                self.release_claims(user, season, claims, &committed).await;
                return Ok(false);
            }
            committed.push(source);
        }
        Ok(true)
    }

    /// Best-effort undo of committed claims (the answers were not made
    /// durable). A failure leaves the items answered: the learner gets them
    /// again in a later session; nothing acknowledged is lost.
    pub(crate) async fn release_claims(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[(ServingClaim, LedgerSource)],
        sources: &[LedgerSource],
    ) {
        for source in sources {
            let part: Vec<ServingClaim> = claims
                .iter()
                .filter(|(_, s)| s == source)
                .map(|(c, _)| c.clone())
                .collect();
            if let Err(e) = self.ledger(*source).release(user, season, &part).await {
                self.shared
                    .audit(
                        &Actor::system(),
                        "integrity.release_failed",
                        serde_json::json!({"user": user.as_str(), "error": e.to_string()}),
                    )
                    .await;
            }
        }
    }
}

/// A new persistence job id owned by `user` (its owner can be checked
/// from the id alone).
pub(crate) fn new_job_id(shared: &Shared, user: &UserId) -> CoreResult<JobId> {
    JobId::new(shared.ids.next_id(&format!("job-{}", learner_tag(user))))
}

/// Whether `job` belongs to `user`.
pub(crate) fn owns_job(user: &UserId, job: &JobId) -> bool {
    job.as_str()
        .strip_prefix("job-")
        .and_then(|rest| rest.strip_prefix(learner_tag(user).as_str()))
        .is_some_and(|rest| rest.starts_with('-'))
}

/// Whether the actor may answer (or be shown) `q` now.
pub(crate) fn may_access(
    idx: &ContentIndex,
    actor: &Actor,
    keys: Option<&AccessKeys>,
    q: &QuestionId,
) -> bool {
    let empty = AccessKeys::default();
    match question_open(idx, keys.unwrap_or(&empty), q) {
        None => false,
        Some(open) => open || actor.is_admin(),
    }
}

/// `None` if the question does not exist or its lesson is unpublished;
/// otherwise whether the access keys open it (free preview, free subject,
/// or covered by a subscription).
pub(crate) fn question_open(idx: &ContentIndex, keys: &AccessKeys, q: &QuestionId) -> Option<bool> {
    let (_, _, lesson, _) = idx.question_placement(q)?;
    if !lesson.is_published {
        return None;
    }
    let unit = idx.unit(&lesson.unit)?;
    let topic = lesson.topic.as_ref().and_then(|t| idx.topic(t));
    if topic.is_some_and(|t| !t.is_published) {
        return None;
    }
    Some(has_financial_access(idx, keys, unit, topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_ids_differ_per_learner_and_job_ownership_is_checked() {
        let a = UserId::new("a@x").unwrap();
        let b = UserId::new("b@x").unwrap();
        let r = ReviewId::new("r1").unwrap();
        assert_ne!(
            scoped_review_id(&a, &r).unwrap(),
            scoped_review_id(&b, &r).unwrap()
        );
        let job = JobId::new(format!("job-{}-0001", learner_tag(&a))).unwrap();
        assert!(owns_job(&a, &job));
        assert!(!owns_job(&b, &job));
        assert!(!owns_job(&a, &JobId::new("job-0001").unwrap()));
        let long = ReviewId::new("x".repeat(crate::ids::MAX_ID_LEN)).unwrap();
        assert!(matches!(
            scoped_review_id(&a, &long),
            Err(CoreError::Invalid(_))
        ));
    }
}
