//! Lesson plays (`submit_session`): server-bounded XP, the gameplay session,
//! subject score, leaderboard and the lesson-path SRS update — with the same
//! durability rules as review answers.
//!
//! **What a play is worth** (the server's view of the play; every
//! interaction must be a stage of the lesson):
//! * XP = `⌊xp_reward × stages played / stages of the lesson⌋`, capped by
//!   the client's claim and reduced on same-day replays (100/50/10 %) —
//!   [`gamification::lesson_play_xp`]. A stage counts as played when at
//!   least one interaction names it (`<stage>` or `<stage>:<n>`).
//! * score = `⌊100 × first-try-correct interactions / interactions⌋`; a
//!   score sent by the client can only lower it —
//!   [`gamification::lesson_play_score`].
//! * completed (the map's progression) = every stage played and score ≥
//!   `Config::lesson_pass_score` (50).
//! * A play with no interactions earns nothing, completes nothing, records
//!   no session (it is not activity for streaks or the streak quest) and
//!   leaves the opening usable. The original paid the client's XP for a bare
//!   `lesson_id`; there is no documented minimum, so this is nothing.

use std::collections::HashSet;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::gamification;
use crate::ids::*;
use crate::ports::{JobStatus, PersistJob};
use crate::srs::{AnswerPath, AnswerSignals};

use chrono::{DateTime, Utc};

use super::LearningService;
use super::content::ContentIndex;
use super::integrity;
use super::reviews::AnswerInput;
use super::shared::Shared;
use crate::ports::{AnswerReceipt, ServingClaim};

/// One interaction of a lesson play.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    /// Question (`<stage>` or `<stage>:<n>` of this lesson).
    pub question_id: QuestionId,
    /// Answer time in ms (absent → 3 000).
    pub duration_ms: Option<u32>,
    /// Attempts (absent → 1).
    pub attempts: Option<u32>,
    /// Correctness, when the client reports it.
    pub is_correct: Option<bool>,
}

/// `submit_session` input.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonSubmission {
    /// The lesson played.
    pub lesson: LessonId,
    /// XP the client computed (caps the server's XP for the play).
    pub claimed_xp: Option<i64>,
    /// Score 0–100 the client computed (can only lower the server's).
    pub score: Option<i64>,
    /// Interactions.
    pub interactions: Vec<Interaction>,
    /// Raw client payload kept for audit.
    pub raw: serde_json::Value,
}

/// `submit_session` output.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonOutcome {
    /// XP awarded.
    pub xp_earned: i64,
    /// Whether the play completed the lesson.
    pub completed: bool,
    /// How many times the lesson had been played today before this play.
    pub plays_today_before: u32,
    /// Persistence job of the SRS updates (none without interactions).
    pub job: Option<(JobId, JobStatus)>,
}

impl LearningService {
    /// `submit_session`.
    pub async fn submit_session(
        &self,
        actor: &Actor,
        sub: &LessonSubmission,
    ) -> CoreResult<LessonOutcome> {
        if let Some(s) = sub.score {
            if !(0..=100).contains(&s) {
                return Err(CoreError::invalid("score must be between 0 and 100"));
            }
        }
        if let Some(x) = sub.claimed_xp {
            if x < 0 {
                return Err(CoreError::invalid("xp_earned must not be negative"));
            }
        }
        if sub.interactions.len() > self.shared.config.max_interactions_per_lesson {
            return Err(CoreError::invalid(format!(
                "at most {} interactions per lesson",
                self.shared.config.max_interactions_per_lesson
            )));
        }
        let idx = self.catalog().await?;
        let lesson = self.accessible_lesson(&idx, actor, &sub.lesson).await?;
        let stage_ids: HashSet<&str> = lesson.stages.iter().map(|s| s.id.as_str()).collect();
        for i in &sub.interactions {
            if !stage_ids.contains(i.question_id.stage_str())
                || idx.question_placement(&i.question_id).is_none()
            {
                return Err(CoreError::invalid(format!(
                    "question_id {} is not part of lesson {}",
                    i.question_id, lesson.id
                )));
            }
        }
        // Lesson plays are bound like review answers: the lesson must have
        // been opened (get_lesson_details) by this learner, and each opening
        // pays for one submitted play.
        let season = self.shared.require_active_season().await?;
        let user = &actor.user;
        let item = integrity::lesson_key(&lesson.id);
        let now = self.shared.now();
        let located = self
            .ledger
            .lookup_served(user, &season.id, std::slice::from_ref(&item), now)
            .await?
            .pop()
            .flatten();
        let Some((serving, source)) = located else {
            return Err(CoreError::NotServed(format!(
                "lesson {} was not opened by you; open it with get_lesson_details before submitting a play",
                lesson.id
            )));
        };
        if serving.answered {
            // The opening's play was accepted before. Its receipt names the
            // play's job, and through it the session, tracker batch and
            // review ids: a retry completes what an interruption left undone
            // and can never count the play twice.
            return match serving.last_receipt {
                Some(receipt) if receipt.answered_at >= serving.served_at => {
                    self.resume_play(&idx, user, &season, lesson, sub, receipt)
                        .await
                }
                _ => Err(already_submitted(&lesson.id)),
            };
        }
        if serving.answerable_until < now {
            return Err(CoreError::NotServed(format!(
                "the opening of lesson {} expired; open it again",
                lesson.id
            )));
        }
        let profile = self.profiles.ensure(user).await?;
        let day = self.shared.day_boundary(&profile);
        let today = day.local_day(now);
        let plays = self
            .activity
            .lesson_plays_on(user, &lesson.id, today)
            .await?;
        // A play without interactions played nothing: no XP, no completion,
        // no session (so it is not activity either), and the opening stays
        // available for the real play.
        if sub.interactions.is_empty() {
            return Ok(LessonOutcome {
                xp_earned: 0,
                completed: false,
                plays_today_before: plays,
                job: None,
            });
        }
        let (xp, score, completed) = self.score_play(lesson, sub, plays);
        let job_id = integrity::new_job_id(&self.shared, user)?;
        let play = self
            .prepare_play(
                &idx,
                user,
                &season,
                &profile,
                lesson,
                sub,
                &job_id,
                (xp, score, completed),
                now,
            )
            .await?;
        let claims = [(
            ServingClaim {
                item,
                served_at: serving.served_at,
                receipt: AnswerReceipt {
                    review_id: ReviewId::new(format!("lesson-{job_id}"))?,
                    job_id: job_id.clone(),
                    xp,
                    answered_at: now,
                },
                xp_day: serving.xp_day,
                prev_xp_day: serving.xp_day,
            },
            source,
        )];
        if !self.ledger.commit_claims(user, &season.id, &claims).await? {
            return Err(already_submitted(&lesson.id));
        }
        if let Err(e) = self.record_play(&play).await {
            // Nothing was recorded: the opening can be submitted again. (If
            // this release is lost too, a retry completes the play through
            // the receipt the commit left.)
            self.ledger
                .release_claims(user, &season.id, &claims, &[source])
                .await;
            return Err(e);
        }
        let job = self.hand_over(play.batch).await?;
        Ok(LessonOutcome {
            xp_earned: xp,
            completed,
            plays_today_before: plays,
            job,
        })
    }
}

/// A play ready to be recorded: its gameplay session and, when it has
/// interactions, the tracker batch to persist with it.
struct Play {
    session: GameplaySession,
    subject: SubjectId,
    batch: Option<PersistJob>,
}

fn already_submitted(lesson: &LessonId) -> CoreError {
    CoreError::NotServed(format!(
        "this opening of lesson {lesson} was already submitted; open the lesson again to replay it"
    ))
}

impl LearningService {
    /// Schedules the play's interactions (review ids derived from the job
    /// id, so a retry computes the same batch) and builds its session.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_play(
        &self,
        idx: &ContentIndex,
        user: &UserId,
        season: &Season,
        profile: &PlayerProfile,
        lesson: &Lesson,
        sub: &LessonSubmission,
        job_id: &JobId,
        (xp, score, completed): (i64, i64, bool),
        now: DateTime<Utc>,
    ) -> CoreResult<Play> {
        let unit = idx
            .unit(&lesson.unit)
            .ok_or_else(|| CoreError::Internal(format!("lesson {} has no unit", lesson.id)))?;
        let batch = if sub.interactions.is_empty() {
            None
        } else {
            let answers = sub
                .interactions
                .iter()
                .enumerate()
                .map(|(n, i)| {
                    let attempts = i.attempts.unwrap_or(1);
                    Ok(AnswerInput {
                        question_id: i.question_id.clone(),
                        signals: AnswerSignals {
                            is_correct: i.is_correct.unwrap_or(attempts <= 1),
                            duration_ms: i.duration_ms.unwrap_or(3000),
                            attempts,
                            quality: None,
                        },
                        review_id: Some(ReviewId::new(format!("{job_id}:{n}"))?),
                    })
                })
                .collect::<CoreResult<Vec<_>>>()?;
            let applied = self
                .reviews
                .apply_answers(
                    idx,
                    user,
                    season,
                    &self.shared.day_boundary(profile),
                    &answers,
                    AnswerPath::Lesson,
                    ReviewSource::Lesson,
                    now,
                )
                .await?;
            Some(PersistJob {
                id: job_id.clone(),
                records: applied.records,
            })
        };
        let day = Shared::day_boundary_at(profile, now);
        Ok(Play {
            session: GameplaySession {
                id: SessionId::new(format!("gs-{job_id}"))?,
                user: user.clone(),
                kind: SessionKind::Lesson,
                lesson: Some(lesson.id.clone()),
                subject: Some(unit.subject.clone()),
                topic: lesson.topic.clone(),
                xp_earned: xp,
                score,
                completed,
                created_at: now,
                local_day: day.local_day(now),
                raw_data: sub.raw.clone(),
            },
            subject: unit.subject.clone(),
            batch,
        })
    }

    /// The server's view of a play: XP for the lesson's stages played
    /// (capped, with the same-day replay percentages), the score from how
    /// the interactions went, and completion (every stage played with a
    /// passing score). Used by the first submission and by a retry, so both
    /// agree.
    fn score_play(&self, lesson: &Lesson, sub: &LessonSubmission, plays: u32) -> (i64, i64, bool) {
        let stages_played = sub
            .interactions
            .iter()
            .map(|i| i.question_id.stage_str())
            .collect::<HashSet<&str>>()
            .len();
        let first_try_correct = sub
            .interactions
            .iter()
            .filter(|i| {
                let attempts = i.attempts.unwrap_or(1);
                i.is_correct.unwrap_or(attempts <= 1) && attempts <= 1
            })
            .count();
        let xp = gamification::lesson_play_xp(
            lesson.xp_reward,
            stages_played,
            lesson.stages.len(),
            sub.claimed_xp,
            plays,
        );
        let score =
            gamification::lesson_play_score(first_try_correct, sub.interactions.len(), sub.score);
        let completed =
            stages_played == lesson.stages.len() && score >= self.shared.config.lesson_pass_score;
        (xp, score, completed)
    }

    /// Records the session, its XP and its tracker batch in one store
    /// call, then credits the leaderboard cache (best effort).
    async fn record_play(&self, play: &Play) -> CoreResult<()> {
        match &play.batch {
            Some(batch) => {
                self.activity
                    .record_session_with_batch(&play.session, batch)
                    .await?
            }
            None => self.activity.record_session(&play.session).await?,
        }
        super::leaderboard::add_xp(
            &self.shared,
            self.leaderboard.as_ref(),
            &play.session.user,
            Some(&play.subject),
            play.session.local_day,
            play.session.xp_earned,
        )
        .await;
        Ok(())
    }

    /// Hands a recorded play's tracker batch to the durable write path. A
    /// failure leaves the batch pending in the store: a retry of the play,
    /// or `reviews().resume_pending_batches`, hands it over later.
    async fn hand_over(&self, batch: Option<PersistJob>) -> CoreResult<Option<(JobId, JobStatus)>> {
        match batch {
            None => Ok(None),
            Some(b) => self.reviews.hand_over_batch(b).await.map(Some),
        }
    }

    /// A retry of a play the ledger already accepted (its receipt is
    /// `receipt`): completes what an interruption left undone, with the XP
    /// fixed at acceptance. The session not recorded yet → records it with
    /// its batch now; recorded with its batch still pending → hands the
    /// stored batch over; complete → `NotServed`, changing nothing.
    async fn resume_play(
        &self,
        idx: &ContentIndex,
        user: &UserId,
        season: &Season,
        lesson: &Lesson,
        sub: &LessonSubmission,
        receipt: AnswerReceipt,
    ) -> CoreResult<LessonOutcome> {
        let now = receipt.answered_at;
        let profile = self.profiles.ensure(user).await?;
        let today = Shared::day_boundary_at(&profile, now).local_day(now);
        let plays = self
            .activity
            .lesson_plays_on(user, &lesson.id, today)
            .await?;
        // XP stays what the ledger fixed at acceptance; score and completion
        // are computed exactly as for the first submission.
        let (_, score, completed) = self.score_play(lesson, sub, plays);
        let play = self
            .prepare_play(
                idx,
                user,
                season,
                &profile,
                lesson,
                sub,
                &receipt.job_id,
                (receipt.xp, score, completed),
                now,
            )
            .await?;
        let (job, plays_before) = match self.record_play(&play).await {
            Ok(()) => (self.hand_over(play.batch).await?, plays),
            Err(CoreError::Conflict(_)) => {
                // Recorded before: only the hand-over may be missing.
                match self.activity.pending_batch(&receipt.job_id).await? {
                    Some(batch) => (self.hand_over(Some(batch)).await?, plays.saturating_sub(1)),
                    None => return Err(already_submitted(&lesson.id)),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(LessonOutcome {
            xp_earned: receipt.xp,
            completed,
            plays_today_before: plays_before,
            job,
        })
    }
}
