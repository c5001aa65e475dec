//! Crash safety of lesson plays (`submit_session`): the gameplay session
//! (XP, subject score) and the lesson's tracker updates are written by two
//! ports. These tests put a failing wrapper around the in-memory adapters
//! to stop a play between the steps, then check that a retry of the same
//! play (or the recovery job) leaves the learner with the XP exactly once
//! and the trackers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::error::PortResult;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::*;
use memora_core::services::Config;
use memora_core::services::sessions::{Interaction, LessonSubmission};
use memora_core::{CoreError, Memora};

use crate::faults::{FlakyQueue, WritesDown, injected};

/// Faults to inject, each consumed by the first call it hits.
#[derive(Default)]
struct Faults {
    /// The next call recording a gameplay session fails.
    record: AtomicBool,
    /// Every tracker batch write (and enqueue) fails while set.
    persist: Arc<AtomicBool>,
    /// Every served-ledger release fails while set (a crash leaves the
    /// opening consumed).
    release: AtomicBool,
}

/// The in-memory activity store, failing on demand.
struct FlakyActivity {
    inner: InMemoryBackend,
    faults: Arc<Faults>,
}

#[async_trait]
impl ActivityStore for FlakyActivity {
    async fn record_session(&self, session: &GameplaySession) -> PortResult<()> {
        if self.faults.record.swap(false, Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.record_session(session).await
    }
    async fn record_session_with_batch(
        &self,
        session: &GameplaySession,
        batch: &PersistJob,
    ) -> PortResult<()> {
        if self.faults.record.swap(false, Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.record_session_with_batch(session, batch).await
    }
    async fn pending_batch(&self, job: &JobId) -> PortResult<Option<PersistJob>> {
        self.inner.pending_batch(job).await
    }
    async fn pending_batches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<PersistJob>> {
        self.inner.pending_batches(before, limit).await
    }
    async fn clear_pending_batch(&self, job: &JobId) -> PortResult<()> {
        self.inner.clear_pending_batch(job).await
    }
    async fn active_days(&self, user: &UserId, since: NaiveDate) -> PortResult<Vec<NaiveDate>> {
        self.inner.active_days(user, since).await
    }
    async fn xp_by_day(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> PortResult<Vec<(NaiveDate, i64)>> {
        self.inner.xp_by_day(user, from, to).await
    }
    async fn day_summary(&self, user: &UserId, day: NaiveDate) -> PortResult<DaySummary> {
        self.inner.day_summary(user, day).await
    }
    async fn lesson_plays_on(
        &self,
        user: &UserId,
        lesson: &LessonId,
        day: NaiveDate,
    ) -> PortResult<u32> {
        self.inner.lesson_plays_on(user, lesson, day).await
    }
    async fn completed_lessons(
        &self,
        user: &UserId,
    ) -> PortResult<std::collections::HashSet<LessonId>> {
        self.inner.completed_lessons(user).await
    }
    async fn subject_xp(&self, user: &UserId, subject: &SubjectId) -> PortResult<i64> {
        self.inner.subject_xp(user, subject).await
    }
    async fn top_players(&self, query: &BoardQuery, limit: usize) -> PortResult<Vec<BoardEntry>> {
        self.inner.top_players(query, limit).await
    }
    async fn player_rank(
        &self,
        user: &UserId,
        query: &BoardQuery,
    ) -> PortResult<(i64, Option<u64>)> {
        self.inner.player_rank(user, query).await
    }
}

/// The durable served ledger, whose releases fail while `release` is set.
struct FlakyLedger {
    inner: InMemoryBackend,
    faults: Arc<Faults>,
}

#[async_trait]
impl ServedLedger for FlakyLedger {
    async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        served_at: DateTime<Utc>,
        answerable_until: DateTime<Utc>,
        retain_until: DateTime<Utc>,
    ) -> PortResult<()> {
        self.inner
            .record_served(
                user,
                season,
                items,
                served_at,
                answerable_until,
                retain_until,
            )
            .await
    }
    async fn lookup(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> PortResult<Vec<Option<Serving>>> {
        self.inner.lookup(user, season, items, now).await
    }
    async fn commit(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<bool> {
        self.inner.commit(user, season, claims).await
    }
    async fn release(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<()> {
        if self.faults.release.load(Ordering::SeqCst) {
            return Err(injected());
        }
        ServedLedger::release(&self.inner, user, season, claims).await
    }
    async fn purge_expired(&self, now: DateTime<Utc>) -> PortResult<u64> {
        self.inner.purge_expired(now).await
    }
}

struct H {
    app: Memora,
    backend: InMemoryBackend,
    faults: Arc<Faults>,
    info: DemoInfo,
    student: Actor,
}

async fn harness() -> H {
    let backend = InMemoryBackend::new();
    let faults = Arc::new(Faults::default());
    let mut ports = backend.ports();
    ports.clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    ports.activity = Arc::new(FlakyActivity {
        inner: backend.clone(),
        faults: Arc::clone(&faults),
    });
    ports.trackers = Arc::new(WritesDown {
        inner: Arc::new(backend.clone()),
        down: Arc::clone(&faults.persist),
    });
    ports.served = Arc::new(FlakyLedger {
        inner: backend.clone(),
        faults: Arc::clone(&faults),
    });
    ports.queue = Arc::new(FlakyQueue {
        inner: Arc::new(backend.queue()),
        fail: Arc::clone(&faults.persist),
        held: None,
    });
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, "demo-password").await.unwrap();
    H {
        student: Actor::student(info.student.clone()),
        app,
        backend,
        faults,
        info,
    }
}

fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).unwrap()
}

const LESSON: &str = "hist-l3";
const QUESTIONS: [&str; 2] = ["hist-l3-rv:0", "hist-l3-mt:1"];

fn play() -> LessonSubmission {
    LessonSubmission {
        lesson: LessonId::new(LESSON).unwrap(),
        claimed_xp: Some(40),
        score: Some(90),
        interactions: QUESTIONS
            .iter()
            .map(|id| Interaction {
                question_id: q(id),
                duration_ms: Some(1500),
                attempts: Some(1),
                is_correct: Some(true),
            })
            .collect(),
        raw: serde_json::json!({}),
    }
}

/// What the same play earns when nothing goes wrong (the oracle of the
/// crash tests: a recovered play earns exactly this, once).
async fn uninterrupted_xp() -> i64 {
    let h = harness().await;
    h.open().await;
    let xp = h.submit().await.expect("an uninterrupted play");
    assert!(xp > 0, "the play earns XP");
    xp
}

impl H {
    async fn open(&self) {
        self.app
            .learning()
            .get_lesson_details(&self.student, &LessonId::new(LESSON).unwrap())
            .await
            .unwrap();
    }

    async fn submit(&self) -> Result<i64, CoreError> {
        self.app
            .learning()
            .submit_session(&self.student, &play())
            .await
            .map(|o| o.xp_earned)
    }

    async fn total_xp(&self) -> i64 {
        self.app
            .gamification()
            .get_player_profile(&self.student)
            .await
            .unwrap()
            .total_xp
    }

    async fn plays(&self) -> u32 {
        let day = self.app.ports().clock.now().date_naive();
        self.app
            .ports()
            .activity
            .lesson_plays_on(&self.info.student, &LessonId::new(LESSON).unwrap(), day)
            .await
            .unwrap()
    }

    /// The lesson's questions that are trackers of the learner now.
    async fn trackers(&self) -> usize {
        let qs: Vec<QuestionId> = QUESTIONS.iter().map(|s| q(s)).collect();
        self.backend
            .get_trackers(&self.info.student, &self.info.season, &qs)
            .await
            .unwrap()
            .len()
    }
}

#[tokio::test]
async fn a_play_interrupted_after_its_answers_were_queued_is_completed_by_a_retry() {
    let expected = uninterrupted_xp().await;
    let h = harness().await;
    let xp_before = h.total_xp().await;
    assert_eq!(h.trackers().await, 0, "a new lesson has no trackers yet");
    h.open().await;
    // The crash hits the step that records the gameplay session.
    h.faults.record.store(true, Ordering::SeqCst);
    assert!(
        h.submit().await.is_err(),
        "the interrupted play is not acknowledged"
    );
    // The client retries the same play (same opening).
    let xp = h.submit().await.expect("the retry completes the play");
    assert_eq!(xp, expected);
    assert_eq!(h.total_xp().await, xp_before + expected, "XP exactly once");
    assert_eq!(h.plays().await, 1, "one gameplay session");
    assert_eq!(h.trackers().await, 2, "the lesson's questions are trackers");
    // A further retry of a complete play changes nothing.
    assert!(matches!(h.submit().await, Err(CoreError::NotServed(_))));
    assert_eq!(h.total_xp().await, xp_before + expected);
    assert_eq!(h.plays().await, 1);
}

#[tokio::test]
async fn a_crash_after_the_opening_was_consumed_is_recovered_by_a_retry() {
    let expected = uninterrupted_xp().await;
    let h = harness().await;
    let xp_before = h.total_xp().await;
    h.open().await;
    // The session write fails and the opening cannot be handed back
    // either: exactly what a crash right after the ledger commit leaves.
    h.faults.record.store(true, Ordering::SeqCst);
    h.faults.release.store(true, Ordering::SeqCst);
    assert!(h.submit().await.is_err());
    h.faults.release.store(false, Ordering::SeqCst);
    assert_eq!(h.total_xp().await, xp_before, "nothing was credited");
    assert_eq!(h.submit().await.expect("retry"), expected);
    assert_eq!(h.total_xp().await, xp_before + expected);
    assert_eq!(h.plays().await, 1);
    assert_eq!(h.trackers().await, 2);
}

#[tokio::test]
async fn a_play_whose_tracker_hand_over_failed_is_completed_by_a_retry() {
    let expected = uninterrupted_xp().await;
    let h = harness().await;
    let xp_before = h.total_xp().await;
    h.open().await;
    h.faults.persist.store(true, Ordering::SeqCst);
    assert!(
        h.submit().await.is_err(),
        "queue and store down: not acknowledged"
    );
    h.faults.persist.store(false, Ordering::SeqCst);
    assert_eq!(h.submit().await.expect("retry"), expected);
    assert_eq!(h.total_xp().await, xp_before + expected, "XP exactly once");
    assert_eq!(h.plays().await, 1);
    assert_eq!(h.trackers().await, 2);
    assert!(matches!(h.submit().await, Err(CoreError::NotServed(_))));
    assert_eq!(h.total_xp().await, xp_before + expected);
}

#[tokio::test]
async fn the_recovery_job_completes_a_play_nobody_retries() {
    let expected = uninterrupted_xp().await;
    let h = harness().await;
    let xp_before = h.total_xp().await;
    h.open().await;
    h.faults.persist.store(true, Ordering::SeqCst);
    assert!(h.submit().await.is_err());
    h.faults.persist.store(false, Ordering::SeqCst);
    // The play is recorded with its tracker batch: the XP is there, the
    // trackers follow once the batch is handed over.
    assert_eq!(h.total_xp().await, xp_before + expected);
    assert_eq!(h.trackers().await, 0);
    // Too recent for the job: a play may still be completing.
    assert_eq!(
        h.app
            .reviews()
            .resume_pending_batches(chrono::Duration::seconds(60), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.app
            .reviews()
            .resume_pending_batches(chrono::Duration::zero(), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.trackers().await, 2);
    assert_eq!(
        h.app
            .reviews()
            .resume_pending_batches(chrono::Duration::zero(), 100)
            .await
            .unwrap(),
        0,
        "handed over once"
    );
    assert!(matches!(h.submit().await, Err(CoreError::NotServed(_))));
    assert_eq!(h.total_xp().await, xp_before + expected, "XP exactly once");
    assert_eq!(h.plays().await, 1);
}
