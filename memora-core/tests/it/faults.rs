//! Port wrappers that fail on demand, shared by the fault tests: a tracker
//! store whose batch writes fail, and a queue whose enqueues fail — or take
//! the job and lose the reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::PortResult;
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;

/// The error every injected fault returns.
pub fn injected() -> PortError {
    PortError::Unavailable("injected fault".into())
}

/// A queue whose enqueue fails while `fail` is set. With `held`, a failing
/// enqueue takes the job first (only its reply was lost) and `status`
/// reports it queued.
pub struct FlakyQueue {
    pub inner: Arc<dyn PersistenceQueue>,
    pub fail: Arc<AtomicBool>,
    pub held: Option<Arc<Mutex<Vec<PersistJob>>>>,
}

#[async_trait]
impl PersistenceQueue for FlakyQueue {
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus> {
        if self.fail.load(Ordering::SeqCst) {
            if let Some(held) = &self.held {
                held.lock().unwrap().push(job.clone());
            }
            return Err(injected());
        }
        self.inner.enqueue(job).await
    }
    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>> {
        if let Some(held) = &self.held {
            if held.lock().unwrap().iter().any(|j| &j.id == job) {
                return Ok(Some(JobStatus::Queued));
            }
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

/// A tracker store whose `persist_batch` fails while `down` is set.
pub struct WritesDown {
    pub inner: Arc<dyn TrackerStore>,
    pub down: Arc<AtomicBool>,
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
            return Err(injected());
        }
        self.inner.persist_batch(records).await
    }
}
