//! Persistence-queue operations (System Manager): the dead letters — jobs
//! that failed every retry — listed, inspected, replayed or discarded.

use memora_core::ports::DeadLetter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::method;
use crate::api::de;
use crate::error::ApiError;

/// Default page size of `list_dead_letters`.
const DEFAULT_PAGE: u64 = 50;

/// One dead letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDto {
    /// Dead-letter id (for `get_dead_letter`, `replay_dead_letters`,
    /// `discard_dead_letter`).
    pub id: String,
    /// The persistence job (null if its payload could not be decoded).
    pub job_id: Option<String>,
    /// The learner whose answers the job holds.
    pub user: Option<String>,
    /// Their season.
    pub season: Option<String>,
    /// Answers in the job.
    pub records: u64,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was dead-lettered (RFC 3339).
    pub failed_at: Option<String>,
}

impl From<&DeadLetter> for DeadLetterDto {
    fn from(d: &DeadLetter) -> Self {
        DeadLetterDto {
            id: d.id.clone(),
            job_id: d.job.as_ref().map(|j| j.as_str().to_owned()),
            user: d.user.as_ref().map(|u| u.as_str().to_owned()),
            season: d.season.as_ref().map(|s| s.as_str().to_owned()),
            records: d.records,
            error: d.error.clone(),
            attempts: d.attempts,
            failed_at: d.failed_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// Arguments of `list_dead_letters`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListDeadLettersArgs {
    /// Only dead letters after this id (the previous page's `next_after`).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub after: Option<String>,
    /// Page size (default 50).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// Result of `list_dead_letters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPageDto {
    /// Dead letters, oldest first.
    pub dead_letters: Vec<DeadLetterDto>,
    /// Pass as `after` for the next page (null: last page).
    pub next_after: Option<String>,
    /// Dead letters in all.
    pub total: u64,
}

method!(
    /// `list_dead_letters`.
    ListDeadLetters = "list_dead_letters" in "srs", Admin, Read,
    "Dead letters of the persistence queue, oldest first (paged)",
    ListDeadLettersArgs => DeadLetterPageDto,
    |app, ctx, req| {
        let limit = usize::try_from(req.limit.unwrap_or(DEFAULT_PAGE)).unwrap_or(usize::MAX);
        let page = app
            .admin()
            .list_dead_letters(ctx.actor()?, req.after.as_deref(), limit)
            .await?;
        Ok(DeadLetterPageDto {
            dead_letters: page.items.iter().map(DeadLetterDto::from).collect(),
            next_after: page.next_after,
            total: page.total,
        })
    }
);

/// Arguments naming a dead letter.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeadLetterArg {
    /// Dead-letter id (also `id`).
    #[serde(alias = "id", deserialize_with = "de::string")]
    pub dead_letter_id: String,
}

method!(
    /// `get_dead_letter`.
    GetDeadLetter = "get_dead_letter" in "srs", Admin, Read,
    "One dead letter: job, learner, season, answers, error, attempts",
    DeadLetterArg => DeadLetterDto,
    |app, ctx, req| {
        let d = app.admin().get_dead_letter(ctx.actor()?, &req.dead_letter_id).await?;
        Ok(DeadLetterDto::from(&d))
    }
);

/// Arguments of `replay_dead_letters`: one dead letter, or all of them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplayArgs {
    /// The dead letter to replay (also `id`); omit with `all=true`.
    #[serde(default, alias = "id", deserialize_with = "de::opt_string")]
    pub dead_letter_id: Option<String>,
    /// Replay every dead letter.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub all: Option<bool>,
}

/// Result of `replay_dead_letters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedDto {
    /// Dead letters put back into the queue.
    pub replayed: u64,
    /// The one replayed (null with `all=true`).
    pub dead_letter: Option<DeadLetterDto>,
}

method!(
    /// `replay_dead_letters`.
    ReplayDeadLetters = "replay_dead_letters" in "srs", Admin, Write,
    "Put one dead letter (dead_letter_id) or all (all=true) back into the queue",
    ReplayArgs => ReplayedDto,
    |app, ctx, req| {
        match (req.dead_letter_id, req.all.unwrap_or(false)) {
            (Some(id), false) => {
                let d = app.admin().replay_dead_letter(ctx.actor()?, &id).await?;
                Ok(ReplayedDto { replayed: 1, dead_letter: Some(DeadLetterDto::from(&d)) })
            }
            (None, true) => {
                let n = app.admin().replay_all_dead_letters(ctx.actor()?).await?;
                Ok(ReplayedDto { replayed: n, dead_letter: None })
            }
            _ => Err(ApiError::bad(
                "pass either dead_letter_id (one dead letter) or all=true (every dead letter)",
            )),
        }
    }
);

/// Arguments of `discard_dead_letter`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DiscardArgs {
    /// Dead-letter id (also `id`).
    #[serde(alias = "id", deserialize_with = "de::string")]
    pub dead_letter_id: String,
    /// Must be true: the job's answers are lost for good.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub confirm: Option<bool>,
}

/// Result of `discard_dead_letter`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscardedDto {
    /// What was discarded.
    pub discarded: DeadLetterDto,
}

method!(
    /// `discard_dead_letter`.
    DiscardDeadLetter = "discard_dead_letter" in "srs", Admin, Write,
    "Delete a dead letter without persisting it (confirm=true)",
    DiscardArgs => DiscardedDto,
    |app, ctx, req| {
        let d = app
            .admin()
            .discard_dead_letter(ctx.actor()?, &req.dead_letter_id, req.confirm.unwrap_or(false))
            .await?;
        Ok(DiscardedDto { discarded: DeadLetterDto::from(&d) })
    }
);
