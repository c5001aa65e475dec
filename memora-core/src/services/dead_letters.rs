//! Dead letters of the persistence queue (System Manager only): jobs that
//! failed every retry, listed, inspected, replayed or discarded. Replaying
//! is safe to repeat: persisting a batch is idempotent per review id and
//! never regresses a card, so a job that was partly persisted before it
//! failed, or is replayed twice, writes each answer once. Every replay and
//! discard is audited.

use crate::domain::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ports::DeadLetter;

use super::admin::AdminService;

/// Largest page of [`AdminService::list_dead_letters`].
pub const DEAD_LETTER_PAGE_MAX: usize = 500;

/// One page of dead letters.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterPage {
    /// Dead letters, oldest first.
    pub items: Vec<DeadLetter>,
    /// Pass as `after` for the next page (`None`: this was the last).
    pub next_after: Option<String>,
    /// Dead letters in all.
    pub total: u64,
}

/// Dead-letter ids are the adapter's; the core only refuses text no
/// adapter issues (empty, too long, control characters) with a 400.
fn check_id(id: &str) -> CoreResult<()> {
    if id.trim().is_empty() {
        return Err(CoreError::invalid("dead_letter_id must not be empty"));
    }
    crate::text::check_text("dead_letter_id", id, 64)
}

impl AdminService {
    /// `list_dead_letters`: a page of dead letters, oldest first, after the
    /// id `after`; `limit` in `1..=DEAD_LETTER_PAGE_MAX`.
    pub async fn list_dead_letters(
        &self,
        actor: &Actor,
        after: Option<&str>,
        limit: usize,
    ) -> CoreResult<DeadLetterPage> {
        actor.require_admin()?;
        if !(1..=DEAD_LETTER_PAGE_MAX).contains(&limit) {
            return Err(CoreError::invalid(format!(
                "limit must be between 1 and {DEAD_LETTER_PAGE_MAX} (got {limit})"
            )));
        }
        if let Some(a) = after {
            check_id(a)?;
        }
        let items = self.queue.dead_letters(after, limit).await?;
        let next_after = if items.len() == limit {
            items.last().map(|d| d.id.clone())
        } else {
            None
        };
        Ok(DeadLetterPage {
            total: self.queue.dead_letter_count().await?,
            items,
            next_after,
        })
    }

    /// `get_dead_letter`: one dead letter (404 if unknown).
    pub async fn get_dead_letter(&self, actor: &Actor, id: &str) -> CoreResult<DeadLetter> {
        actor.require_admin()?;
        check_id(id)?;
        self.queue
            .dead_letter(id)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("dead letter {id} not found")))
    }

    /// `replay_dead_letters` for one id: puts the job back into the queue
    /// (404 if unknown) and audits it.
    pub async fn replay_dead_letter(&self, actor: &Actor, id: &str) -> CoreResult<DeadLetter> {
        let d = self.get_dead_letter(actor, id).await?;
        if !self.queue.replay_dead_letter(id).await? {
            // Replayed or discarded by someone else since it was read.
            return Err(CoreError::not_found(format!("dead letter {id} not found")));
        }
        self.shared.audit(actor, "queue.replay", summary(&d)).await;
        Ok(d)
    }

    /// `replay_dead_letters` with `all`: replays every dead letter present
    /// when it starts (page by page, so it ends even while new ones arrive);
    /// returns how many were replayed. Audited once, with the count.
    pub async fn replay_all_dead_letters(&self, actor: &Actor) -> CoreResult<u64> {
        actor.require_admin()?;
        let mut after: Option<String> = None;
        let mut replayed = 0u64;
        let mut jobs = Vec::new();
        loop {
            let page = self
                .queue
                .dead_letters(after.as_deref(), DEAD_LETTER_PAGE_MAX)
                .await?;
            let last = page.len() < DEAD_LETTER_PAGE_MAX;
            after = page.last().map(|d| d.id.clone());
            for d in page {
                if self.queue.replay_dead_letter(&d.id).await? {
                    replayed += 1;
                    if jobs.len() < 100 {
                        jobs.push(d.job.map(|j| j.to_string()));
                    }
                }
            }
            if last || after.is_none() {
                break;
            }
        }
        self.shared
            .audit(
                actor,
                "queue.replay_all",
                serde_json::json!({"replayed": replayed, "jobs": jobs}),
            )
            .await;
        Ok(replayed)
    }

    /// `discard_dead_letter`: deletes a dead letter without persisting its
    /// answers. Needs `confirm = true` (the answers are lost for good); the
    /// audit record keeps the summary and the error.
    pub async fn discard_dead_letter(
        &self,
        actor: &Actor,
        id: &str,
        confirm: bool,
    ) -> CoreResult<DeadLetter> {
        actor.require_admin()?;
        if !confirm {
            return Err(CoreError::invalid(
                "Confirmation required: pass confirm=true to discard a dead letter (its answers are lost)",
            ));
        }
        let d = self.get_dead_letter(actor, id).await?;
        if !self.queue.discard_dead_letter(id).await? {
            return Err(CoreError::not_found(format!("dead letter {id} not found")));
        }
        self.shared.audit(actor, "queue.discard", summary(&d)).await;
        Ok(d)
    }
}

fn summary(d: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "dead_letter": d.id,
        "job": d.job.as_ref().map(|j| j.as_str()),
        "user": d.user.as_ref().map(|u| u.as_str()),
        "season": d.season.as_ref().map(|s| s.as_str()),
        "records": d.records,
        "attempts": d.attempts,
        "error": d.error,
    })
}
