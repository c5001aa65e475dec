//! The general path when an enqueue's reply is lost: the job reached the
//! queue, the client was told nothing, and the store cannot take the
//! synchronous fallback write. The submission must be accepted (the job is
//! durable), not refused with its cards given back for a second answer
//! while the worker persists the first.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;
use memora_core::{CoreError, PortResult};

use crate::support::*;

/// A queue whose enqueue, while `lose` is set, takes the job but reports
/// a failure (the reply was lost); its status knows the job.
struct LostReplies {
    inner: Arc<dyn PersistenceQueue>,
    lose: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<PersistJob>>>,
}

#[async_trait]
impl PersistenceQueue for LostReplies {
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus> {
        if self.lose.load(Ordering::SeqCst) {
            self.held.lock().unwrap().push(job.clone());
            return Err(PortError::Unavailable("reply lost".into()));
        }
        self.inner.enqueue(job).await
    }
    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>> {
        if self.held.lock().unwrap().iter().any(|j| &j.id == job) {
            return Ok(Some(JobStatus::Queued));
        }
        self.inner.status(job).await
    }
    async fn record_status(&self, job: &JobId, status: &JobStatus) -> PortResult<()> {
        self.inner.record_status(job, status).await
    }
    async fn depth(&self) -> PortResult<u64> {
        self.inner.depth().await
    }
    async fn oldest_unpersisted(&self) -> PortResult<Option<DateTime<Utc>>> {
        self.inner.oldest_unpersisted().await
    }
    async fn dead_letters<'a>(
        &self,
        after: Option<&'a str>,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        self.inner.dead_letters(after, limit).await
    }
    async fn dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        self.inner.dead_letter(id).await
    }
    async fn dead_letter_count(&self) -> PortResult<u64> {
        self.inner.dead_letter_count().await
    }
    async fn replay_dead_letter(&self, id: &str) -> PortResult<bool> {
        self.inner.replay_dead_letter(id).await
    }
    async fn discard_dead_letter(&self, id: &str) -> PortResult<bool> {
        self.inner.discard_dead_letter(id).await
    }
}

/// Tracker store whose `persist_batch` fails while `down` is set.
struct WritesDown {
    inner: Arc<dyn TrackerStore>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl TrackerStore for WritesDown {
    async fn get_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner.get_trackers(user, season, questions).await
    }
    async fn due_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner
            .due_trackers(user, season, filter, now, limit)
            .await
    }
    async fn count_due(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
    ) -> PortResult<u64> {
        self.inner.count_due(user, season, filter, now).await
    }
    async fn due_counts_by_subject(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Vec<(Option<SubjectId>, u64)>> {
        self.inner.due_counts_by_subject(user, season, now).await
    }
    async fn count_topic(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
    ) -> PortResult<u64> {
        self.inner.count_topic(user, season, topic).await
    }
    async fn topic_candidates(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner
            .topic_candidates(user, season, topic, now, day_start, limit)
            .await
    }
    async fn random_topic_items(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        limit: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner
            .random_topic_items(user, season, topic, limit, seed)
            .await
    }
    async fn all_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner.all_trackers(user, season).await
    }
    async fn mastery_counts(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        subject: Option<&SubjectId>,
    ) -> PortResult<MasteryCounts> {
        self.inner.mastery_counts(user, season, subject).await
    }
    async fn persist_batch(&self, records: &[ReviewRecord]) -> PortResult<PersistOutcome> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("store writes down".into()));
        }
        self.inner.persist_batch(records).await
    }
}

fn tagged(ids: &[QuestionId], tag: &str) -> memora_core::services::reviews::ReviewSubmission {
    let mut sub = answers(ids, true, 2500);
    for (n, a) in sub.answers.iter_mut().enumerate() {
        a.review_id = Some(ReviewId::new(format!("{tag}-{n}")).unwrap());
    }
    sub
}

#[tokio::test]
async fn answers_whose_enqueue_reply_was_lost_are_accepted_once_when_the_store_is_down() {
    let lose = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Mutex::new(Vec::new()));
    let (l, d, k) = (lose.clone(), down.clone(), held.clone());
    let h = harness_with(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        move |mut p| {
            p.queue = Arc::new(LostReplies {
                inner: p.queue.clone(),
                lose: l,
                held: k,
            });
            p.trackers = Arc::new(WritesDown {
                inner: p.trackers.clone(),
                down: d,
            });
            p
        },
    )
    .await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    assert!(!ids.is_empty());
    let logged = h.backend.review_log_len();
    lose.store(true, Ordering::SeqCst);
    down.store(true, Ordering::SeqCst);
    let sub = tagged(&ids, "lost");
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .expect("the job is in the queue: accepted");
    assert_eq!(out.processed, ids.len());
    // The cards were not given back: other review ids are refused, the
    // same ones are a replay.
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "second"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::NotServed(_)), "{err}");
    let again = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    assert_eq!((again.processed, again.replayed), (0, ids.len()));
    // The worker persists the held job once the store is back: one log
    // entry per answer, no more.
    down.store(false, Ordering::SeqCst);
    let jobs = held.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    h.app.reviews().process_persist_job(&jobs[0]).await.unwrap();
    assert_eq!(h.backend.review_log_len(), logged + ids.len());
}

#[tokio::test]
async fn answers_that_reached_neither_queue_nor_store_are_refused_and_given_back() {
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let h = harness_with(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        move |mut p| {
            p.trackers = Arc::new(WritesDown {
                inner: p.trackers.clone(),
                down: d,
            });
            p
        },
    )
    .await;
    h.backend.set_queue_available(false);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    down.store(true, Ordering::SeqCst);
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "first"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Unavailable(_)), "{err}");
    // Nothing is durable anywhere, so the cards are answerable again.
    down.store(false, Ordering::SeqCst);
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "retry"))
        .await
        .unwrap();
    assert_eq!(out.processed, ids.len());
}
