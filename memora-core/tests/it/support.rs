//! Shared helpers of the learning-area tests: the demo on the in-memory
//! backend with a manual clock that starts where a test needs it, fresh
//! learners, and complete plays of a lesson.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use memora_core::Memora;
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::services::Config;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::services::sessions::{Interaction, LessonOutcome, LessonSubmission};
use memora_core::srs::AnswerSignals;

pub const PASSWORD: &str = "demo-password";

pub struct H {
    pub app: Memora,
    pub backend: InMemoryBackend,
    pub clock: Arc<ManualClock>,
    pub info: DemoInfo,
    pub student: Actor,
    pub admin: Actor,
}

/// The demo seeded at 2026-11-22 10:00 UTC (as the use-case tests).
pub async fn harness() -> H {
    harness_at(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()).await
}

/// The demo seeded at `start`.
pub async fn harness_at(start: DateTime<Utc>) -> H {
    harness_with(start, |p| p).await
}

/// The demo seeded at `start`, over the in-memory ports as `wire` leaves
/// them (e.g. with the composed review fast path).
pub async fn harness_with(
    start: DateTime<Utc>,
    wire: impl FnOnce(memora_core::ports::Ports) -> memora_core::ports::Ports,
) -> H {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(start);
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    let ports = wire(ports);
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, PASSWORD).await.unwrap();
    H {
        student: Actor::student(info.student.clone()),
        admin: Actor::admin(info.admin.clone()),
        app,
        backend,
        clock,
        info,
    }
}

pub fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).unwrap()
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn query(limit: usize) -> ReviewQuery {
    ReviewQuery {
        limit: Some(limit),
        ..Default::default()
    }
}

pub fn answers(ids: &[QuestionId], correct: bool, ms: u32) -> ReviewSubmission {
    ReviewSubmission {
        answers: ids
            .iter()
            .map(|id| AnswerInput {
                question_id: id.clone(),
                signals: AnswerSignals::review(correct, ms),
                review_id: None,
            })
            .collect(),
        ..Default::default()
    }
}

impl H {
    /// A new student on the demo plan (grade 12, scientific stream).
    pub async fn fresh_student(&self, name: &str) -> Actor {
        let id = UserId::new(format!("{name}@x.test")).unwrap();
        self.app
            .auth()
            .create_user(&Actor::system(), &id, name, vec![Role::Student], None)
            .await
            .unwrap();
        let actor = Actor::student(id);
        self.app
            .gamification()
            .set_academic_profile(
                &actor,
                &GradeId::new("G12").unwrap(),
                Some(&StreamId::new("SCI").unwrap()),
                Some(&self.info.season),
            )
            .await
            .unwrap();
        actor
    }

    /// One interaction for every stage of `lesson` (element 0 of stages
    /// with elements), answered correctly at the first try.
    pub async fn every_stage(&self, lesson: &str) -> Vec<Interaction> {
        let idx = self.app.learning().catalog().await.unwrap();
        let lesson = idx.lesson(&LessonId::new(lesson).unwrap()).unwrap();
        lesson
            .stages
            .iter()
            .map(|s| Interaction {
                question_id: QuestionId::of(&s.id, s.config.element_count().map(|_| 0)),
                duration_ms: Some(3000),
                attempts: Some(1),
                is_correct: Some(true),
            })
            .collect()
    }

    /// Opens `lesson` and submits `interactions` with `score`.
    pub async fn play(
        &self,
        actor: &Actor,
        lesson: &str,
        interactions: Vec<Interaction>,
        score: Option<i64>,
    ) -> LessonOutcome {
        let id = LessonId::new(lesson).unwrap();
        self.app
            .learning()
            .get_lesson_details(actor, &id)
            .await
            .unwrap();
        self.app
            .learning()
            .submit_session(
                actor,
                &LessonSubmission {
                    lesson: id,
                    claimed_xp: None,
                    score,
                    interactions,
                    raw: serde_json::json!({}),
                },
            )
            .await
            .unwrap()
    }

    /// A complete, passing play of `lesson` (every stage answered).
    pub async fn complete(&self, actor: &Actor, lesson: &str) -> LessonOutcome {
        let all = self.every_stage(lesson).await;
        let out = self.play(actor, lesson, all, Some(100)).await;
        assert!(out.completed, "a full play of {lesson} completes it");
        out
    }

    pub async fn total_xp(&self, actor: &Actor) -> i64 {
        self.app
            .gamification()
            .get_player_profile(actor)
            .await
            .unwrap()
            .total_xp
    }
}
