//! The review fast path against the general path: the same learner doing
//! the same things at the same times on two backends — one with the
//! composed fast path, one without — sees the same sessions, outcomes, XP
//! and stored memory; and the core calls the fast path the expected number
//! of times per request (one call per warm review read, two per
//! submission, nothing else on the cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use memora_core::PortResult;
use memora_core::ids::*;
use memora_core::ports::{
    DueSlice, FastCommit, FastCommitOutcome, Ports, ReviewFastPath, ServeTerms, SubmitView,
};
use memora_core::services::reviews::{ReviewMode, ReviewSubmission};

use crate::support::*;

/// Counts the calls of each fast-path method, and can make commits fail.
#[derive(Default)]
struct Calls {
    due: AtomicUsize,
    prepare: AtomicUsize,
    commit: AtomicUsize,
    /// Commits still to fail, and whether a failing one commits first (its
    /// reply was lost) or does nothing.
    failing_commits: AtomicUsize,
    fail_after_commit: std::sync::atomic::AtomicBool,
}

impl Calls {
    fn fail_commits(&self, n: usize, after_commit: bool) {
        self.fail_after_commit.store(after_commit, Ordering::SeqCst);
        self.failing_commits.store(n, Ordering::SeqCst);
    }

    fn take(&self) -> (usize, usize, usize) {
        (
            self.due.swap(0, Ordering::SeqCst),
            self.prepare.swap(0, Ordering::SeqCst),
            self.commit.swap(0, Ordering::SeqCst),
        )
    }
}

struct Counting {
    inner: Arc<dyn ReviewFastPath>,
    calls: Arc<Calls>,
}

#[async_trait]
impl ReviewFastPath for Counting {
    async fn due_and_serve(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> PortResult<Option<DueSlice>> {
        self.calls.due.fetch_add(1, Ordering::SeqCst);
        self.inner
            .due_and_serve(user, season, subject, now, limit, terms)
            .await
    }

    async fn prepare_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> PortResult<SubmitView> {
        self.calls.prepare.fetch_add(1, Ordering::SeqCst);
        self.inner
            .prepare_submit(user, season, items, questions, now)
            .await
    }

    async fn commit_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> PortResult<FastCommitOutcome> {
        self.calls.commit.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .calls
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !fail {
            return self.inner.commit_submit(user, season, commit).await;
        }
        if self.calls.fail_after_commit.load(Ordering::SeqCst) {
            self.inner.commit_submit(user, season, commit).await?;
        }
        Err(memora_core::PortError::Unavailable("reply lost".into()))
    }
}

fn start() -> DateTime<Utc> {
    utc("2026-11-22T10:00:00Z")
}

async fn fast_harness() -> (H, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let c = Arc::clone(&calls);
    let h = harness_with(start(), move |p: Ports| {
        let mut p = p.with_composed_fast_path();
        let inner = p.fast_path.take().expect("composed fast path");
        p.fast_path = Some(Arc::new(Counting { inner, calls: c }));
        p
    })
    .await;
    (h, calls)
}

fn ids(s: &memora_core::services::reviews::ReviewSession) -> Vec<QuestionId> {
    s.questions.iter().map(|c| c.id.clone()).collect()
}

/// Alternating answers with client review ids `<tag>-<n>`.
fn mixed(ids: &[QuestionId], tag: &str) -> ReviewSubmission {
    let mut sub = answers(ids, true, 2500);
    for (n, a) in sub.answers.iter_mut().enumerate() {
        a.signals.is_correct = n % 3 != 1;
        a.review_id = Some(ReviewId::new(format!("{tag}-{n}")).unwrap());
    }
    sub
}

#[tokio::test]
async fn the_fast_path_answers_exactly_as_the_general_path() {
    let general = harness_at(start()).await;
    let (fast, calls) = fast_harness().await;
    for day in 0..3 {
        for h in [&general, &fast] {
            h.clock
                .set(start() + Duration::days(day) + Duration::minutes(5));
        }
        let mut sessions = Vec::new();
        let mut outcomes = Vec::new();
        for h in [&general, &fast] {
            // Twice: the first read may rehydrate, the second is warm.
            h.app
                .reviews()
                .get_review_session(&h.student, &query(15))
                .await
                .unwrap();
            let s = h
                .app
                .reviews()
                .get_review_session(&h.student, &query(15))
                .await
                .unwrap();
            assert_eq!(s.mode, ReviewMode::Normal);
            let sub = mixed(&ids(&s), &format!("d{day}"));
            let first = h
                .app
                .reviews()
                .submit_review_session(&h.student, &sub)
                .await
                .unwrap();
            let replay = h
                .app
                .reviews()
                .submit_review_session(&h.student, &sub)
                .await
                .unwrap();
            assert_eq!(replay.replayed, sub.answers.len());
            assert_eq!(replay.xp_earned, first.xp_earned);
            sessions.push(s);
            outcomes.push((first, replay));
        }
        assert!(
            !sessions[0].questions.is_empty(),
            "day {day}: the demo learner has due cards"
        );
        assert_eq!(sessions[0], sessions[1], "day {day}: same session");
        assert_eq!(outcomes[0], outcomes[1], "day {day}: same outcomes");
    }
    assert_eq!(profile(&general).await, profile(&fast).await);
    assert_eq!(stored(&general).await, stored(&fast).await);
    let (due, prepare, commit) = calls.take();
    assert!(
        due >= 3 && prepare >= 6 && commit >= 3,
        "the fast path was used: {due}/{prepare}/{commit}"
    );
}

async fn profile(h: &H) -> memora_core::domain::PlayerProfile {
    h.app
        .gamification()
        .get_player_profile(&h.student)
        .await
        .unwrap()
}

async fn stored(h: &H) -> Vec<memora_core::domain::MemoryTracker> {
    let mut rows = h
        .app
        .ports()
        .trackers
        .all_trackers(&h.student.user, &h.info.season)
        .await
        .unwrap();
    rows.sort_by(|a, b| a.key.question.cmp(&b.key.question));
    rows
}

#[tokio::test]
async fn a_warm_read_is_one_call_and_a_submission_two() {
    let (h, calls) = fast_harness().await;
    h.app
        .reviews()
        .get_review_session(&h.student, &query(15))
        .await
        .unwrap();
    calls.take();
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(15))
        .await
        .unwrap();
    assert!(!s.questions.is_empty());
    assert_eq!(calls.take(), (1, 0, 0), "warm read: one due_and_serve");
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &mixed(&ids(&s), "w"))
        .await
        .unwrap();
    assert_eq!(out.processed, s.questions.len());
    assert_eq!(calls.take(), (0, 1, 1), "submission: prepare + commit");
}

#[tokio::test]
async fn answers_to_cards_never_served_are_refused_on_the_fast_path_too() {
    let (h, calls) = fast_harness().await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(3))
        .await
        .unwrap();
    let served = ids(&s);
    let more = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(30))
        .await
        .unwrap();
    // A card that was due but never handed out in a session of 3: serve
    // nothing more, then answer a card outside the first session only.
    let h2 = fast_harness().await.0;
    let first = h2
        .app
        .reviews()
        .get_review_session(&h2.student, &query(3))
        .await
        .unwrap();
    let unserved: Vec<QuestionId> = ids(&more)
        .into_iter()
        .filter(|q| !ids(&first).contains(q))
        .take(1)
        .collect();
    assert_eq!(unserved.len(), 1, "a due card outside the first session");
    let err = h2
        .app
        .reviews()
        .submit_review_session(&h2.student, &answers(&unserved, true, 2000))
        .await
        .unwrap_err();
    assert!(matches!(err, memora_core::CoreError::NotServed(_)), "{err}");
    // Answering a served card twice (new review ids) is refused the second
    // time, and the first answer's XP is not earned again.
    let ok = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&served, true, 2000))
        .await
        .unwrap();
    assert!(ok.xp_earned > 0);
    let again = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&served, true, 2000))
        .await
        .unwrap_err();
    assert!(
        matches!(again, memora_core::CoreError::NotServed(_)),
        "{again}"
    );
    assert!(calls.take().2 >= 1, "the fast path committed");
}

#[tokio::test]
async fn a_cache_outage_falls_back_to_the_general_path() {
    let (h, _calls) = fast_harness().await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    h.backend.cache().set_available(false);
    // Cards served through the cache ledger cannot be bound while it is
    // down: the submission is refused with a clear error, nothing changes.
    let before = h.backend.review_log_len();
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids(&s), true, 2000))
        .await;
    assert!(err.is_err() || h.backend.review_log_len() > before);
    // Safe mode serves from the store; answering those cards works.
    let safe = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    assert_eq!(safe.mode, ReviewMode::SafeMode);
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids(&safe), true, 2000))
        .await
        .unwrap();
    assert_eq!(out.processed, safe.questions.len());
    assert!(h.backend.review_log_len() >= before + safe.questions.len());
}

async fn failing_harness(after_commit: bool) -> H {
    let (h, calls) = fast_harness().await;
    calls.fail_commits(1, after_commit);
    h
}

#[tokio::test]
async fn a_commit_whose_reply_was_lost_is_accepted_once_not_released() {
    let h = failing_harness(true).await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    assert!(!s.questions.is_empty());
    let xp_before = profile(&h).await.total_xp;
    let sub = mixed(&ids(&s), "lost");
    // The commit happened; only its reply was lost: the job is in the
    // queue, so the submission is accepted, not refused and released.
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    assert_eq!(out.processed, s.questions.len());
    assert!(out.xp_earned > 0);
    // The client's retry is a replay: same outcome, nothing earned twice.
    let again = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    assert_eq!((again.processed, again.replayed), (0, s.questions.len()));
    assert_eq!(again.xp_earned, out.xp_earned);
    assert_eq!(profile(&h).await.total_xp, xp_before + out.xp_earned);
    // And new review ids for the same servings are refused.
    let other = mixed(&ids(&s), "other");
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &other)
        .await
        .unwrap_err();
    assert!(matches!(err, memora_core::CoreError::NotServed(_)), "{err}");
}

#[tokio::test]
async fn a_commit_that_failed_releases_the_cards_for_a_retry() {
    let h = failing_harness(false).await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    let sub = mixed(&ids(&s), "retry");
    let before = h.backend.review_log_len();
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap_err();
    assert!(
        matches!(err, memora_core::CoreError::Unavailable(_)),
        "{err}"
    );
    assert_eq!(h.backend.review_log_len(), before, "nothing was persisted");
    // Once the cache answers again (the breaker's retry interval), the
    // same submission goes through: the cards were given back.
    h.clock.advance(chrono::Duration::seconds(60));
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    assert_eq!(out.processed, s.questions.len());
    assert_eq!(h.backend.review_log_len(), before + s.questions.len());
}
