//! One breaker per dependency: a failing leaderboard cache or persistence
//! queue must not put reviews into safe mode (only the due cache drives
//! safe mode), and a failing due cache still does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use memora_core::Memora;
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::error::PortResult;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::*;
use memora_core::services::Config;
use memora_core::services::reviews::{AnswerInput, ReviewMode, ReviewQuery, ReviewSubmission};
use memora_core::srs::AnswerSignals;

/// A leaderboard cache whose every call fails while `down` is set; counts
/// the calls that reached it.
#[derive(Default)]
struct FlakyBoard {
    down: AtomicBool,
    calls: AtomicUsize,
}

impl FlakyBoard {
    fn hit(&self) -> PortResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(PortError::Unavailable("injected leaderboard outage".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl LeaderboardCache for FlakyBoard {
    async fn add_xp(
        &self,
        _user: &UserId,
        _subject: Option<&SubjectId>,
        _day: NaiveDate,
        _xp: i64,
    ) -> PortResult<()> {
        self.hit()
    }
    async fn top(
        &self,
        _subject: Option<&SubjectId>,
        _bucket: &str,
        _limit: usize,
    ) -> PortResult<Option<Vec<BoardEntry>>> {
        // Not built: the board is served from the store.
        self.hit().map(|()| None)
    }
    async fn rank(
        &self,
        _user: &UserId,
        _subject: Option<&SubjectId>,
        _bucket: &str,
    ) -> PortResult<Option<(i64, Option<u64>)>> {
        self.hit().map(|()| None)
    }
}

struct H {
    app: Memora,
    backend: InMemoryBackend,
    board: Arc<FlakyBoard>,
    clock: Arc<ManualClock>,
    info: DemoInfo,
    student: Actor,
}

async fn harness() -> H {
    let backend = InMemoryBackend::new();
    let board = Arc::new(FlakyBoard::default());
    let mut ports = backend.ports();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    ports.clock = clock.clone();
    ports.leaderboard = Some(board.clone());
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, "demo-password").await.unwrap();
    H {
        student: Actor::student(info.student.clone()),
        app,
        backend,
        board,
        clock,
        info,
    }
}

fn query(limit: usize) -> ReviewQuery {
    ReviewQuery {
        limit: Some(limit),
        ..Default::default()
    }
}

fn answers(ids: &[QuestionId]) -> ReviewSubmission {
    ReviewSubmission {
        answers: ids
            .iter()
            .map(|id| AnswerInput {
                question_id: id.clone(),
                signals: AnswerSignals::review(true, 2500),
                review_id: None,
            })
            .collect(),
        ..Default::default()
    }
}

impl H {
    async fn session(&self, limit: usize) -> memora_core::services::reviews::ReviewSession {
        self.app
            .reviews()
            .get_review_session(&self.student, &query(limit))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_leaderboard_outage_opens_only_the_leaderboard_breaker() {
    let h = harness().await;
    let warm = h.session(2).await;
    assert_eq!(warm.mode, ReviewMode::Rehydrated);
    h.board.down.store(true, Ordering::SeqCst);

    // A failing board read: the board is served from the store.
    let board = h
        .app
        .gamification()
        .get_leaderboard(&h.student, None, LeaderboardPeriod::Weekly)
        .await
        .unwrap();
    assert_eq!(board.me.rank, Some(1), "served from the store");
    assert!(
        h.board.calls.load(Ordering::SeqCst) > 0,
        "the board was tried"
    );

    // Reviews are not in safe mode and keep using the due cache.
    assert!(!h.app.cache_health().is_degraded());
    let s = h.session(2).await;
    assert!(!s.is_degraded);
    assert_eq!(s.mode, ReviewMode::Normal, "served from the due cache");
    // The leaderboard breaker is the one that opened: within its retry
    // interval the board is not called again.
    assert!(h.app.leaderboard_health().is_degraded());
    let calls = h.board.calls.load(Ordering::SeqCst);
    h.app
        .gamification()
        .get_leaderboard(&h.student, None, LeaderboardPeriod::Weekly)
        .await
        .unwrap();
    assert_eq!(h.board.calls.load(Ordering::SeqCst), calls, "breaker open");
    // A second session right away is not rate limited (no safe mode).
    let again = h.session(2).await;
    assert!(!again.is_degraded);

    // A submit whose leaderboard write fails is acknowledged, durable, and
    // does not put reviews into safe mode either.
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    assert!(!ids.is_empty());
    let logs = h.backend.review_log_len();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids))
        .await
        .unwrap();
    assert_eq!(h.backend.review_log_len(), logs + ids.len());
    assert!(!h.app.cache_health().is_degraded());
    let after = h.session(2).await;
    assert!(!after.is_degraded);
    assert_eq!(after.mode, ReviewMode::Normal);
}

#[tokio::test]
async fn a_leaderboard_write_failure_alone_does_not_enter_safe_mode() {
    let h = harness().await;
    let s = h.session(2).await;
    h.board.down.store(true, Ordering::SeqCst);
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids))
        .await
        .unwrap();
    assert!(h.board.calls.load(Ordering::SeqCst) > 0, "add_xp was tried");
    assert!(!h.app.cache_health().is_degraded());
    let next = h.session(2).await;
    assert!(!next.is_degraded);
    assert_ne!(next.mode, ReviewMode::SafeMode);
    assert!(h.app.leaderboard_health().is_degraded());
}

#[tokio::test]
async fn a_due_cache_outage_still_enters_safe_mode_and_leaves_the_other_breakers_closed() {
    let h = harness().await;
    h.session(2).await;
    h.backend.cache().set_available(false);
    let s = h.session(5).await;
    assert!(s.is_degraded);
    assert_eq!(s.mode, ReviewMode::SafeMode);
    assert!(h.app.cache_health().is_degraded());
    assert!(!h.app.leaderboard_health().is_degraded());
    assert!(!h.app.queue_health().is_degraded());
}

#[tokio::test]
async fn a_queue_outage_opens_only_the_queue_breaker_and_loses_no_answer() {
    let h = harness().await;
    let s = h.session(2).await;
    h.backend.set_queue_available(false);
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    let logs = h.backend.review_log_len();
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids))
        .await
        .unwrap();
    assert_eq!(out.job_status, JobStatus::Done, "written synchronously");
    assert_eq!(h.backend.review_log_len(), logs + ids.len());
    assert!(!h.app.cache_health().is_degraded());
    let next = h.session(2).await;
    assert!(!next.is_degraded);
    assert!(h.app.queue_health().is_degraded());
    // Queue back: the next submit that tries it closes the breaker.
    h.backend.set_queue_available(true);
    let ids: Vec<QuestionId> = next.questions.iter().map(|c| c.id.clone()).collect();
    let logs = h.backend.review_log_len();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids))
        .await
        .unwrap();
    assert_eq!(h.backend.review_log_len(), logs + ids.len());
    assert!(
        h.app.queue_health().is_degraded(),
        "within the retry interval the store path is used"
    );
    // After the retry interval one submit tries the queue again and closes
    // the breaker.
    h.clock.advance(chrono::Duration::seconds(5));
    let ids: Vec<QuestionId> = h
        .session(2)
        .await
        .questions
        .iter()
        .map(|c| c.id.clone())
        .collect();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids))
        .await
        .unwrap();
    assert!(!h.app.queue_health().is_degraded(), "queue answered again");
    let _ = &h.info;
}
