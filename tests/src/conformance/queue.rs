//! Conformance suite of [`PersistenceQueue`]: what the core relies on from
//! any queue (durable Redis streams, the in-memory write-through queue).

use std::sync::Arc;

use memora_core::domain::{MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource};
use memora_core::ids::{JobId, ReviewId, SeasonId, UserId};
use memora_core::ports::{JobStatus, PersistJob, PersistenceQueue};
use memora_core::srs::Grade;

use super::cache::{row, t0};

/// A review record for `question` answered at `t0 + minute` minutes.
pub fn record(
    u: &UserId,
    s: &SeasonId,
    question: &str,
    minute: i64,
    review_id: &str,
) -> ReviewRecord {
    let tracker: MemoryTracker = row(u, s, question, Some("math"), minute + 1440, Some(minute));
    ReviewRecord {
        log: ReviewLogEntry {
            review_id: ReviewId::new(review_id).expect("review id"),
            key: tracker.key.clone(),
            source: ReviewSource::Review,
            grade: Grade::Good,
            is_correct: true,
            duration_ms: 1200,
            attempts: 1,
            reviewed_at: t0() + chrono::Duration::minutes(minute),
            elapsed_days: 2,
            scheduler: tracker.state.kind,
            state_after: tracker.state.clone(),
        },
        tracker,
    }
}

/// A job of `n` records with unique review ids.
pub fn job(id: &str, u: &UserId, s: &SeasonId, n: usize) -> PersistJob {
    PersistJob {
        id: JobId::new(id).expect("job id"),
        records: (0..n)
            .map(|i| record(u, s, &format!("{id}-q{i}"), i as i64, &format!("{id}-r{i}")))
            .collect(),
    }
}

/// `enqueue` answers `Queued` (durable, pending) or `Done` (write-through);
/// `status` agrees; `depth` counts queued jobs only.
pub async fn enqueue_status_depth(qu: Arc<dyn PersistenceQueue>, s: &SeasonId) {
    let u = super::cache::user("alice");
    let before = qu.depth().await.expect("depth");
    let j = job("job-1", &u, s, 3);
    let st = qu.enqueue(&j).await.expect("enqueue");
    assert!(matches!(st, JobStatus::Queued | JobStatus::Done), "{st:?}");
    assert_eq!(qu.status(&j.id).await.expect("status"), Some(st.clone()));
    let after = qu.depth().await.expect("depth");
    match st {
        JobStatus::Queued => assert_eq!(after, before + 1),
        _ => assert_eq!(after, before),
    }
}

/// Unknown jobs have no status; `record_status` is readable back.
pub async fn record_and_read_status(qu: Arc<dyn PersistenceQueue>) {
    let id = JobId::new("job-unknown").expect("id");
    assert_eq!(qu.status(&id).await.expect("status"), None);
    qu.record_status(&id, &JobStatus::Done)
        .await
        .expect("record");
    assert_eq!(qu.status(&id).await.expect("status"), Some(JobStatus::Done));
    qu.record_status(&id, &JobStatus::Failed("boom".into()))
        .await
        .expect("record");
    assert!(matches!(
        qu.status(&id).await.expect("status"),
        Some(JobStatus::Failed(_))
    ));
}

/// What the dead-letter checks need from a queue adapter besides the port.
#[async_trait::async_trait]
pub trait DeadLetterHarness: Send + Sync {
    /// The queue under test.
    fn queue(&self) -> Arc<dyn PersistenceQueue>;
    /// Makes `job` a dead letter, the way this adapter gets there (a worker
    /// failing against a broken store, or fault injection).
    async fn dead_letter(&self, job: &PersistJob);
    /// Lets the queue persist what it holds (runs its worker until idle).
    async fn drain(&self);
    /// Review-log rows in the store the queue persists into.
    fn logged(&self) -> usize;
}

/// Dead letters: listed oldest first with keyset paging and a summary of
/// each job; unknown and malformed ids are "not found", never errors;
/// discard deletes without persisting; replay puts the job back and it is
/// persisted exactly once, even when replayed again; the count and
/// `oldest_unpersisted` follow.
pub async fn dead_letters_list_replay_discard(h: &dyn DeadLetterHarness, s: &SeasonId) {
    let qu = h.queue();
    let u = super::cache::user("dora");
    assert_eq!(qu.dead_letter_count().await.expect("count"), 0);
    assert!(qu.dead_letters(None, 10).await.expect("list").is_empty());
    for bad in [
        "nope",
        "",
        "0-1",
        "99999999999999-0",
        "1-2-3",
        "(0-1",
        "-",
        "+",
    ] {
        assert_eq!(qu.dead_letter(bad).await.expect("get"), None, "{bad:?}");
        assert!(
            !qu.replay_dead_letter(bad).await.expect("replay"),
            "{bad:?}"
        );
        assert!(
            !qu.discard_dead_letter(bad).await.expect("discard"),
            "{bad:?}"
        );
        assert!(
            qu.dead_letters(Some(bad), 10)
                .await
                .expect("list")
                .is_empty(),
            "{bad:?}"
        );
    }

    let a = job("dl-a", &u, s, 3);
    let b = job("dl-b", &u, s, 1);
    let c = job("dl-c", &u, s, 2);
    for j in [&a, &b, &c] {
        h.dead_letter(j).await;
    }
    assert_eq!(qu.dead_letter_count().await.expect("count"), 3);
    assert!(
        qu.oldest_unpersisted().await.expect("oldest").is_some(),
        "dead letters are not persisted"
    );
    let all = qu.dead_letters(None, 10).await.expect("list");
    let jobs: Vec<&str> = all
        .iter()
        .map(|d| d.job.as_ref().map_or("?", |j| j.as_str()))
        .collect();
    assert_eq!(jobs, vec!["dl-a", "dl-b", "dl-c"], "oldest first");
    let first = &all[0];
    assert_eq!(first.user.as_ref(), Some(&u));
    assert_eq!(first.season.as_ref(), Some(s));
    assert_eq!(first.records, 3);
    assert!(first.attempts >= 1, "{first:?}");
    assert!(!first.error.is_empty(), "{first:?}");
    assert!(first.failed_at.is_some());
    let page1 = qu.dead_letters(None, 2).await.expect("list");
    assert_eq!(page1, all[..2].to_vec());
    let page2 = qu.dead_letters(Some(&page1[1].id), 2).await.expect("list");
    assert_eq!(page2, all[2..].to_vec());
    assert!(
        qu.dead_letters(Some(&all[2].id), 2)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        qu.dead_letter(&all[1].id).await.expect("get").as_ref(),
        Some(&all[1])
    );

    // Discard: gone, not persisted, the job stays failed.
    assert!(qu.discard_dead_letter(&all[1].id).await.expect("discard"));
    assert!(!qu.discard_dead_letter(&all[1].id).await.expect("discard"));
    assert_eq!(qu.dead_letter(&all[1].id).await.expect("get"), None);
    assert!(matches!(
        qu.status(&b.id).await.expect("status"),
        Some(JobStatus::Failed(_))
    ));

    // Replay: persisted once; a second replay of the same id is refused.
    let before = h.logged();
    assert!(qu.replay_dead_letter(&all[0].id).await.expect("replay"));
    assert!(!qu.replay_dead_letter(&all[0].id).await.expect("replay"));
    assert!(matches!(
        qu.status(&a.id).await.expect("status"),
        Some(JobStatus::Queued | JobStatus::Done)
    ));
    h.drain().await;
    assert_eq!(h.logged(), before + 3);
    assert_eq!(
        qu.status(&a.id).await.expect("status"),
        Some(JobStatus::Done)
    );

    // The same job dead-lettered and replayed again duplicates nothing.
    h.dead_letter(&a).await;
    let again = qu.dead_letters(None, 10).await.expect("list");
    assert_eq!(again.len(), 2);
    for d in &again {
        assert!(qu.replay_dead_letter(&d.id).await.expect("replay"));
    }
    h.drain().await;
    assert_eq!(h.logged(), before + 3 + 2, "job a once, job c once");
    assert_eq!(qu.dead_letter_count().await.expect("count"), 0);
    assert_eq!(qu.depth().await.expect("depth"), 0);
    assert_eq!(qu.oldest_unpersisted().await.expect("oldest"), None);
}

/// Dead letters made the way production makes them, on Redis or a Redis
/// Cluster: jobs enqueued on a [`memora_cache_redis::RedisQueue`], and a
/// worker (fast retries) whose in-memory store is switched off.
pub struct RedisDeadLetters {
    /// The queue under test.
    pub queue: memora_cache_redis::RedisQueue,
    /// The store the worker persists into.
    pub backend: memora_core::memory::InMemoryBackend,
    worker: memora_cache_redis::PersistenceWorker,
}

impl RedisDeadLetters {
    /// Connects the queue and a worker over a store holding `SEASON-2026`.
    pub async fn connect(cfg: memora_cache_redis::RedisConfig) -> Self {
        use memora_core::ports::SeasonStore;
        use std::time::Duration;
        let queue = memora_cache_redis::RedisQueue::connect(cfg.clone())
            .await
            .expect("connect");
        let backend = memora_core::memory::InMemoryBackend::new();
        let s = memora_core::domain::Season::new(
            super::cache::season(2026),
            "test",
            chrono::NaiveDate::from_ymd_opt(2025, 9, 1).expect("date"),
            chrono::NaiveDate::from_ymd_opt(2026, 8, 31).expect("date"),
        )
        .expect("season");
        backend.create_season(&s).await.expect("create season");
        let mut ports = backend.ports();
        ports.queue = Arc::new(queue.clone());
        let app = Arc::new(memora_core::Memora::new(
            ports,
            memora_core::services::Config::default(),
        ));
        let worker = memora_cache_redis::PersistenceWorker::new(
            cfg,
            app,
            memora_cache_redis::WorkerConfig {
                consumer: "dead-letters".to_owned(),
                batch: 50,
                block: Duration::from_millis(50),
                min_idle: Duration::from_millis(100),
                retry: memora_core::lifecycle::RetryPolicy {
                    base: Duration::from_millis(5),
                    max_delay: Duration::from_millis(20),
                    max_retries: 2,
                },
                error_pause: Duration::from_millis(50),
            },
        )
        .await
        .expect("worker");
        RedisDeadLetters {
            queue,
            backend,
            worker,
        }
    }
}

#[async_trait::async_trait]
impl DeadLetterHarness for RedisDeadLetters {
    fn queue(&self) -> Arc<dyn PersistenceQueue> {
        Arc::new(self.queue.clone())
    }
    async fn dead_letter(&self, job: &PersistJob) {
        self.queue.enqueue(job).await.expect("enqueue");
        self.backend.set_store_available(false);
        let handled = self.worker.run_once().await.expect("step");
        self.backend.set_store_available(true);
        assert_eq!(handled, 1, "the job was read and dead-lettered");
    }
    async fn drain(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.queue.depth().await.expect("depth") > 0 {
            assert!(std::time::Instant::now() < deadline, "the queue drains");
            self.worker.run_once().await.expect("step");
        }
    }
    fn logged(&self) -> usize {
        self.backend.review_log_len()
    }
}
