//! [`ComposedFastPath`]: the review fast path built from the general ports,
//! call by call — the reference behaviour of
//! [`ReviewFastPath`](crate::ports::ReviewFastPath) that the conformance
//! suite compares the Redis adapter against, and the fast path of the
//! in-memory backend ([`Ports::with_composed_fast_path`]).
//!
//! It saves no round trip (each step is one call on the port it composes)
//! and is not atomic across those ports: a crash between the ledger commit
//! and the enqueue is the general path's case, healed the same way. The
//! Redis adapter does each method in one script.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::PortResult;
use crate::ids::{QuestionId, SeasonId, SubjectId, UserId};
use crate::ports::{
    DueCache, DueSlice, FastCommit, FastCommitOutcome, LeaderboardCache, PersistenceQueue, Ports,
    ReviewFastPath, ServeTerms, ServedLedger, SubmitView,
};

/// The fast path composed of a due cache, a served ledger, a queue and an
/// optional leaderboard cache.
#[derive(Clone)]
pub struct ComposedFastPath {
    cache: Arc<dyn DueCache>,
    ledger: Arc<dyn ServedLedger>,
    queue: Arc<dyn PersistenceQueue>,
    board: Option<Arc<dyn LeaderboardCache>>,
}

impl ComposedFastPath {
    /// Composes the given ports.
    pub fn new(
        cache: Arc<dyn DueCache>,
        ledger: Arc<dyn ServedLedger>,
        queue: Arc<dyn PersistenceQueue>,
        board: Option<Arc<dyn LeaderboardCache>>,
    ) -> Self {
        ComposedFastPath {
            cache,
            ledger,
            queue,
            board,
        }
    }
}

impl Ports {
    /// These ports with a [`ComposedFastPath`] over their own cache, cache
    /// ledger (or store ledger when there is none), queue and leaderboard.
    /// Call it after replacing any of those.
    pub fn with_composed_fast_path(mut self) -> Self {
        let ledger = self
            .served_cache
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.served));
        self.fast_path = Some(Arc::new(ComposedFastPath::new(
            Arc::clone(&self.cache),
            ledger,
            Arc::clone(&self.queue),
            self.leaderboard.clone(),
        )));
        self
    }
}

#[async_trait]
impl ReviewFastPath for ComposedFastPath {
    async fn due_and_serve(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> PortResult<Option<DueSlice>> {
        let Some(slice) = self.cache.due(user, season, subject, now, limit).await? else {
            return Ok(None);
        };
        let items: Vec<String> = slice
            .items
            .iter()
            .map(|q| format!("{}{q}", terms.item_prefix))
            .collect();
        if !items.is_empty() {
            self.ledger
                .record_served(
                    user,
                    season,
                    &items,
                    terms.served_at,
                    terms.answerable_until,
                    terms.retain_until,
                )
                .await?;
        }
        Ok(Some(slice))
    }

    async fn prepare_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> PortResult<SubmitView> {
        let servings = self.ledger.lookup(user, season, items, now).await?;
        // Presence: the due read answers `None` for an absent schedule.
        let present = self.cache.due(user, season, None, now, 0).await?.is_some();
        let states = if present {
            Some(self.cache.states(user, season, questions).await?)
        } else {
            None
        };
        Ok(SubmitView {
            servings,
            states,
            horizon: None,
        })
    }

    async fn commit_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> PortResult<FastCommitOutcome> {
        if !self.ledger.commit(user, season, &commit.claims).await? {
            return Ok(FastCommitOutcome::Lost);
        }
        let status = match self.queue.enqueue(&commit.job).await {
            Ok(s) => s,
            Err(e) => {
                // Undo the claims: the answers are not durable.
                let _ = self.ledger.release(user, season, &commit.claims).await;
                return Err(e);
            }
        };
        // From here on the answers are durable: the rest is the cache's
        // refresh and the board's acceleration, both best effort.
        let _ = self.cache.put(user, season, &commit.rows).await;
        let board_credited = match (&self.board, &commit.board) {
            (Some(board), Some(credit)) => board
                .add_xp(user, credit.subject.as_ref(), credit.day, credit.xp)
                .await
                .is_ok(),
            _ => false,
        };
        let total_due = match &commit.count_due {
            Some(subject) => self
                .cache
                .due(user, season, subject.as_ref(), commit.now, 0)
                .await
                .ok()
                .flatten()
                .map(|s| s.total_due),
            None => None,
        };
        Ok(FastCommitOutcome::Committed {
            status,
            total_due,
            mastery: None,
            board_credited,
        })
    }
}
