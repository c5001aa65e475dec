//! Use-case tests with mocked ports (mockall): the cache and the queue are
//! replaced by mocks so their failure modes can be forced precisely.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mockall::predicate::always;

use crate::demo::seed_demo;
use crate::domain::Actor;
use crate::error::{CoreError, PortError};
use crate::ids::UserId;
use crate::memory::{InMemoryBackend, ManualClock};
use crate::ports::{DueSlice, MockDueCache, MockPersistenceQueue, Ports};
use crate::services::reviews::{AnswerInput, ReviewMode, ReviewQuery, ReviewSubmission};
use crate::services::{Config, Memora};
use crate::srs::AnswerSignals;

async fn seeded(backend: &InMemoryBackend) -> (Ports, UserId) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap());
    let mut ports = backend.ports();
    ports.clock = clock;
    let app = Memora::new(ports.clone(), Config::default());
    let info = seed_demo(&app, "password-123").await.unwrap();
    (ports, info.student)
}

fn q10() -> ReviewQuery {
    ReviewQuery {
        limit: Some(10),
        ..Default::default()
    }
}

#[tokio::test]
async fn unavailable_cache_uses_the_database_and_rate_limits() {
    let backend = InMemoryBackend::new();
    let (mut ports, student) = seeded(&backend).await;
    let mut cache = MockDueCache::new();
    cache
        .expect_due()
        .times(1)
        .returning(|_, _, _, _, _| Err(PortError::Unavailable("down".into())));
    ports.cache = Arc::new(cache);
    let app = Memora::new(ports, Config::default());
    let actor = Actor::student(student);
    let s = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    assert!(s.is_degraded);
    assert_eq!(s.mode, ReviewMode::SafeMode);
    assert_eq!(s.questions.len(), 10);
    // Second request: the cache is not called again (times(1)) and the
    // per-user limit answers 429.
    let second = app.reviews().get_review_session(&actor, &q10()).await;
    assert!(
        matches!(second, Err(CoreError::RateLimited { .. })),
        "{second:?}"
    );
}

/// A cache whose schedule is absent for the first `misses` reads, is then
/// loaded once (with the learner's rows), and answers every later read.
fn absent_until_loaded(misses: usize) -> MockDueCache {
    let mut cache = MockDueCache::new();
    let mut seq = mockall::Sequence::new();
    cache
        .expect_due()
        .times(misses)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _, _| Ok(None));
    cache
        .expect_load()
        .with(always(), always(), always())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, rows| {
            assert!(rows.len() >= 20);
            Ok(())
        });
    cache.expect_due().returning(|_, _, _, _, _| {
        Ok(Some(DueSlice {
            items: vec![],
            total_due: 0,
        }))
    });
    cache
}

#[tokio::test]
async fn cache_miss_rehydrates_exactly_once() {
    let backend = InMemoryBackend::new();
    let (mut ports, student) = seeded(&backend).await;
    // The general path: the first lookup and the double-check inside the
    // single flight miss, then the loaded schedule answers (the fast path
    // reads once: the next test).
    ports.cache = Arc::new(absent_until_loaded(2));
    let app = Memora::new(ports, Config::default());
    let actor = Actor::student(student);
    let first = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    assert_eq!(first.mode, ReviewMode::Rehydrated);
    assert_eq!(first.questions.len(), 10);
    let second = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    assert_eq!(second.mode, ReviewMode::Normal);
}

/// On the fast path a cold read asks the cache once: the fast path's read
/// finds the schedule absent and the single flight loads it without
/// reading again (no other flight ran in between).
#[tokio::test]
async fn a_cold_read_on_the_fast_path_reads_the_cache_once_before_loading() {
    let backend = InMemoryBackend::new();
    let (mut ports, student) = seeded(&backend).await;
    ports.cache = Arc::new(absent_until_loaded(1));
    let app = Memora::new(ports.with_composed_fast_path(), Config::default());
    let actor = Actor::student(student);
    let first = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    assert_eq!(first.mode, ReviewMode::Rehydrated);
    assert_eq!(first.questions.len(), 10);
}

#[tokio::test]
async fn queue_failure_surfaces_as_an_error_not_silent_loss() {
    let backend = InMemoryBackend::new();
    let (mut ports, student) = seeded(&backend).await;
    let mut queue = MockPersistenceQueue::new();
    queue
        .expect_enqueue()
        .times(1)
        .returning(|_| Err(PortError::Unavailable("stream down".into())));
    queue.expect_record_status().returning(|_, _| Ok(()));
    ports.queue = Arc::new(queue);
    backend.set_store_available(true);
    let app = Memora::new(ports, Config::default());
    let actor = Actor::student(student);
    let s = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    let sub = ReviewSubmission {
        answers: vec![AnswerInput {
            question_id: s.questions[0].id.clone(),
            signals: AnswerSignals::review(true, 2500),
            review_id: None,
        }],
        ..Default::default()
    };
    // The store is up: the synchronous fallback persists the answer.
    let logs = backend.review_log_len();
    let out = app
        .reviews()
        .submit_review_session(&actor, &sub)
        .await
        .unwrap();
    assert_eq!(out.job_status, crate::ports::JobStatus::Done);
    assert_eq!(backend.review_log_len(), logs + 1);
}

#[tokio::test]
async fn queue_and_store_failure_is_a_503() {
    let backend = InMemoryBackend::new();
    let (mut ports, student) = seeded(&backend).await;
    let mut queue = MockPersistenceQueue::new();
    queue
        .expect_enqueue()
        .returning(|_| Err(PortError::Unavailable("stream down".into())));
    ports.queue = Arc::new(queue);
    let app = Memora::new(ports, Config::default());
    let actor = Actor::student(student);
    let s = app
        .reviews()
        .get_review_session(&actor, &q10())
        .await
        .unwrap();
    let sub = ReviewSubmission {
        answers: vec![AnswerInput {
            question_id: s.questions[0].id.clone(),
            signals: AnswerSignals::review(true, 2500),
            review_id: None,
        }],
        ..Default::default()
    };
    let logs = backend.review_log_len();
    let xp = app
        .gamification()
        .get_player_profile(&actor)
        .await
        .unwrap()
        .total_xp;
    backend.set_store_available(false);
    let result = app.reviews().submit_review_session(&actor, &sub).await;
    assert!(
        matches!(result, Err(CoreError::Unavailable(_))),
        "{result:?}"
    );
    backend.set_store_available(true);
    assert_eq!(
        backend.review_log_len(),
        logs,
        "nothing acknowledged, nothing written"
    );
    assert_eq!(
        app.gamification()
            .get_player_profile(&actor)
            .await
            .unwrap()
            .total_xp,
        xp
    );
}
