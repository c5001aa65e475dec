//! Review sessions: due cards, answers, persistence status.

use memora_core::ids::*;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::srs::AnswerSignals;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{id, method, opt_id};
use crate::api::de;
use crate::api::dto::*;
use crate::error::ApiError;

/// Arguments of `get_review_session`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewSessionArgs {
    /// Only this subject.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
    /// Only this topic (also `topic`).
    #[serde(default, alias = "topic", deserialize_with = "de::opt_string")]
    pub topic_id: Option<String>,
    /// Number of cards (default 15, at most 50).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 50)]
    pub limit: Option<u64>,
}

/// Result of `get_review_session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSessionDto {
    /// Cards to review (each may be answered once within its window).
    pub questions: Vec<CardDto>,
    /// Items due now.
    pub total_due: u64,
    /// Served from the database in safe mode.
    pub is_degraded: bool,
    /// Active season (empty when none).
    pub season: String,
}

method!(
    /// `get_review_session`.
    GetReviewSession = "get_review_session" in "reviews", User, Read,
    "Due review questions (served cards are recorded: only they can be answered)",
    ReviewSessionArgs => ReviewSessionDto,
    |app, ctx, req| {
        let q = ReviewQuery {
            subject: opt_id(req.subject, SubjectId::new)?,
            topic: opt_id(req.topic_id, TopicId::new)?,
            limit: req.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        };
        let s = app.reviews().get_review_session(ctx.actor()?, &q).await?;
        Ok(ReviewSessionDto {
            questions: s.questions.iter().map(CardDto::from).collect(),
            total_due: s.total_due,
            is_degraded: s.is_degraded,
            season: s.season.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
        })
    }
);

/// One answer (`answers[]` form: correctness; `responses[]` form: quality).
#[derive(Debug, Deserialize, ToSchema)]
pub struct AnswerIn {
    /// A question id served by `get_review_session`.
    #[serde(deserialize_with = "de::string")]
    pub question_id: String,
    /// Correct (answers form).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_correct: Option<bool>,
    /// Quality 0–5 (responses form; required there).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(maximum = 5)]
    pub quality: Option<u64>,
    /// Time spent in ms (also `duration_ms`, `response_time_ms`).
    #[serde(
        default,
        alias = "duration_ms",
        alias = "response_time_ms",
        deserialize_with = "de::opt_u64"
    )]
    pub time_spent_ms: Option<u64>,
    /// Client id of this answer, for safe retries.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub review_id: Option<String>,
}

/// Which subject/topic the session was for.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReviewMeta {
    /// Subject id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
    /// Topic id (also `topic_id`).
    #[serde(default, alias = "topic_id", deserialize_with = "de::opt_string")]
    pub topic: Option<String>,
}

/// The original client's `session_data` object.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SessionData {
    /// Answers with correctness.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub answers: Option<Vec<AnswerIn>>,
    /// Answers with quality 0–5.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub responses: Option<Vec<AnswerIn>>,
    /// Subject/topic.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub session_meta: Option<ReviewMeta>,
    /// Ignored (the server computes the combo).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total_combo: Option<u64>,
}

/// Arguments of `submit_review_session`: `session_data.answers[]` or
/// `responses[]` (objects may also be sent as JSON strings). The top-level
/// fields repeat [`SessionData`]'s on purpose: `#[serde(flatten)]` would
/// lose the argument names in error messages.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitReviewArgs {
    /// The original client's envelope.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub session_data: Option<SessionData>,
    /// Answers with correctness.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub answers: Option<Vec<AnswerIn>>,
    /// Answers with quality 0–5.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub responses: Option<Vec<AnswerIn>>,
    /// Subject/topic.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub session_meta: Option<ReviewMeta>,
    /// Ignored (the server computes the combo).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total_combo: Option<u64>,
}

/// Result of `submit_review_session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitReviewDto {
    /// Always `success`.
    pub status: String,
    /// Answers applied now.
    pub processed: usize,
    /// Answers that were replays of already applied ones (no effect).
    pub replayed: usize,
    /// XP awarded by the server.
    pub xp_earned: i64,
    /// Items still due.
    pub remaining_items: u64,
    /// Mastery after the session.
    pub new_stability_counts: MasteryDto,
    /// Persistence job.
    pub persistence_job_id: String,
    /// Its status.
    pub persistence_status: String,
}

fn to_u32(v: Option<u64>) -> u32 {
    u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX)
}

fn answer(a: AnswerIn, what: &str, by_quality: bool) -> Result<AnswerInput, ApiError> {
    let signals = if by_quality {
        let q = a.quality.filter(|q| *q <= 5).ok_or_else(|| {
            ApiError::bad(format!(
                "argument '{what}.quality' must be an integer from 0 to 5"
            ))
        })?;
        AnswerSignals::with_quality(q as u8, to_u32(a.time_spent_ms))
    } else {
        AnswerSignals::review(a.is_correct.unwrap_or(false), to_u32(a.time_spent_ms))
    };
    Ok(AnswerInput {
        question_id: QuestionId::parse(a.question_id)
            .map_err(|e| ApiError::bad(format!("argument '{what}.question_id': {e}")))?,
        signals,
        review_id: a.review_id.map(ReviewId::new).transpose()?,
    })
}

method!(
    /// `submit_review_session`.
    SubmitReviewSession = "submit_review_session" in "reviews", User, Write,
    "Submit answers to served review cards (idempotent per review_id)",
    SubmitReviewArgs => SubmitReviewDto,
    |app, ctx, req| {
        let data = req.session_data.unwrap_or_default();
        let (list, by_quality, name) = if let Some(a) = data.answers.or(req.answers) {
            (a, false, "answers")
        } else if let Some(r) = data.responses.or(req.responses) {
            (r, true, "responses")
        } else {
            return Err(ApiError::bad(
                "missing answers: send session_data.answers[] or responses[]",
            ));
        };
        let answers = list
            .into_iter()
            .enumerate()
            .map(|(i, a)| answer(a, &format!("{name}[{i}]"), by_quality))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = data.session_meta.or(req.session_meta).unwrap_or_default();
        let combo = data.total_combo.or(req.total_combo);
        let sub = ReviewSubmission {
            answers,
            subject: opt_id(meta.subject.filter(|s| !s.is_empty()), SubjectId::new)?,
            topic: opt_id(meta.topic.filter(|s| !s.is_empty()), TopicId::new)?,
            claimed_combo: combo.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
        };
        let out = app.reviews().submit_review_session(ctx.actor()?, &sub).await?;
        Ok(SubmitReviewDto {
            status: "success".into(),
            processed: out.processed,
            replayed: out.replayed,
            xp_earned: out.xp_earned,
            remaining_items: out.remaining_items,
            new_stability_counts: MasteryDto::from(&out.mastery),
            persistence_job_id: out.job_id.as_str().to_owned(),
            persistence_status: out.job_status.as_str().to_owned(),
        })
    }
);

/// Arguments naming a job.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobArg {
    /// Job id.
    #[serde(deserialize_with = "de::string")]
    pub job_id: String,
}

/// Result of `get_persistence_status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersistenceStatusDto {
    /// Job id.
    pub job_id: String,
    /// `queued`, `processing`, `completed`, `failed`, …
    pub status: String,
    /// Failure reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

method!(
    /// `get_persistence_status`.
    GetPersistenceStatus = "get_persistence_status" in "reviews", User, Read,
    "Status of one of the caller's persistence jobs",
    JobArg => PersistenceStatusDto,
    |app, ctx, req| {
        let job = id(JobId::new(req.job_id))?;
        let s = app.reviews().get_persistence_status(ctx.actor()?, &job).await?;
        Ok(PersistenceStatusDto {
            job_id: job.as_str().to_owned(),
            status: s.as_str().to_owned(),
            error: match &s {
                memora_core::ports::JobStatus::Failed(reason) => Some(reason.clone()),
                _ => None,
            },
        })
    }
);
