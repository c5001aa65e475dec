//! The queue conformance suites (Redis Streams and the in-memory
//! write-through queue: jobs, dead letters) and the worker's fault
//! behaviour on a real Redis: reclaim after a crash, retries, dead letter,
//! replay.

use std::sync::Arc;
use std::time::Duration;

use memora_cache_redis::{PersistenceWorker, RedisConfig, RedisQueue, WorkerConfig};
use memora_core::Memora;
use memora_core::domain::Season;
use memora_core::lifecycle::RetryPolicy;
use memora_core::memory::InMemoryBackend;
use memora_core::ports::{JobStatus, PersistenceQueue, SeasonStore};
use memora_tests::conformance::cache::{season, user};
use memora_tests::conformance::queue::{self as suite, job};

async fn config() -> Option<RedisConfig> {
    let url = memora_tests::redis_url_or_skip().await?;
    Some(RedisConfig::single(url).namespace(memora_tests::random_namespace()))
}

/// Deletes the queue keys of a test namespace.
async fn cleanup(cfg: &RedisConfig, q: &RedisQueue) {
    if let memora_cache_redis::Topology::Single(url) = &cfg.topology {
        if let Ok(client) = redis::Client::open(url.as_str()) {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let dead = q.stream_key().replace(":stream", ":dead");
                let _: redis::RedisResult<i64> = redis::cmd("DEL")
                    .arg(q.stream_key())
                    .arg(dead)
                    .query_async(&mut c)
                    .await;
            }
        }
    }
}

/// An in-memory backend with the season of the tests.
async fn backend_with_season() -> InMemoryBackend {
    let backend = InMemoryBackend::new();
    let s = Season::new(
        season(2026),
        "test",
        chrono::NaiveDate::from_ymd_opt(2025, 9, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2026, 8, 31).expect("date"),
    )
    .expect("season");
    backend.create_season(&s).await.expect("create season");
    backend
}

/// A backend with the season, and a core whose queue is `q`.
async fn app_with(q: &RedisQueue) -> (InMemoryBackend, Arc<Memora>) {
    let backend = backend_with_season().await;
    let mut ports = backend.ports();
    ports.queue = Arc::new(q.clone());
    let app = Arc::new(Memora::new(ports, memora_core::services::Config::default()));
    (backend, app)
}

fn fast_worker(name: &str) -> WorkerConfig {
    WorkerConfig {
        consumer: name.to_owned(),
        batch: 50,
        block: Duration::from_millis(50),
        min_idle: Duration::from_millis(100),
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_retries: 3,
        },
        error_pause: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn redis_queue_conforms() {
    let Some(cfg) = config().await else { return };
    let q = RedisQueue::connect(cfg.clone()).await.expect("connect");
    suite::enqueue_status_depth(Arc::new(q.clone()), &season(2026)).await;
    suite::record_and_read_status(Arc::new(q.clone())).await;
    cleanup(&cfg, &q).await;
}

#[tokio::test]
async fn inline_queue_conforms() {
    let backend = InMemoryBackend::new();
    let s = Season::new(
        season(2026),
        "test",
        chrono::NaiveDate::from_ymd_opt(2025, 9, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2026, 8, 31).expect("date"),
    )
    .expect("season");
    backend.create_season(&s).await.expect("season");
    suite::enqueue_status_depth(Arc::new(backend.queue()), &season(2026)).await;
    suite::record_and_read_status(Arc::new(backend.queue())).await;
}

#[tokio::test]
async fn redis_dead_letters_conform() {
    let Some(cfg) = config().await else { return };
    let h = suite::RedisDeadLetters::connect(cfg.clone()).await;
    suite::dead_letters_list_replay_discard(&h, &season(2026)).await;
    memora_tests::redis_delete_namespace(&cfg).await;
}

/// The in-memory write-through queue never dead-letters by itself; its
/// dead letters are injected (the store is the one the queue writes to).
struct MemDead {
    backend: InMemoryBackend,
    q: memora_core::memory::InlineQueue,
}

#[async_trait::async_trait]
impl suite::DeadLetterHarness for MemDead {
    fn queue(&self) -> Arc<dyn PersistenceQueue> {
        Arc::new(self.q.clone())
    }
    async fn dead_letter(&self, job: &memora_core::ports::PersistJob) {
        self.q
            .inject_dead_letter(job, "unavailable: store down", 4, chrono::Utc::now());
    }
    async fn drain(&self) {}
    fn logged(&self) -> usize {
        self.backend.review_log_len()
    }
}

#[tokio::test]
async fn inline_dead_letters_conform() {
    let (backend, _app) = app_with_backend().await;
    let h = MemDead {
        q: backend.queue(),
        backend,
    };
    suite::dead_letters_list_replay_discard(&h, &season(2026)).await;
}

/// A backend with the season.
async fn app_with_backend() -> (InMemoryBackend, Arc<Memora>) {
    let backend = backend_with_season().await;
    let app = Arc::new(Memora::new(
        backend.ports(),
        memora_core::services::Config::default(),
    ));
    (backend, app)
}

#[tokio::test]
async fn worker_persists_acks_and_marks_done() {
    let Some(cfg) = config().await else { return };
    let q = RedisQueue::connect(cfg.clone()).await.expect("connect");
    let (backend, app) = app_with(&q).await;
    let u = user("alice");
    let jobs: Vec<_> = (0..5)
        .map(|i| job(&format!("job-{i}"), &u, &season(2026), 4))
        .collect();
    for j in &jobs {
        assert_eq!(q.enqueue(j).await.expect("enqueue"), JobStatus::Queued);
    }
    assert_eq!(q.depth().await.expect("depth"), 5);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = PersistenceWorker::new(cfg.clone(), app, fast_worker("w1"))
        .await
        .expect("worker");
    let handle = worker.spawn(async move {
        let _ = rx.await;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while q.depth().await.expect("depth") > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tx.send(());
    handle.await.expect("worker stops");
    assert_eq!(q.depth().await.expect("depth"), 0);
    assert_eq!(backend.review_log_len(), 20);
    for j in &jobs {
        assert_eq!(
            q.status(&j.id).await.expect("status"),
            Some(JobStatus::Done)
        );
    }
    cleanup(&cfg, &q).await;
}

/// A batch of jobs is persisted in one store call, but the cache is
/// refreshed job by job under each job's own id: a cache can skip the rows
/// a job's fast-path commit already wrote (`DueCache::refresh`) only if it
/// is asked about that job, never about the first job of a batch.
#[tokio::test]
async fn a_batch_refreshes_the_cache_job_by_job() {
    let Some(cfg) = config().await else { return };
    let q = RedisQueue::connect(cfg.clone()).await.expect("connect");
    let backend = backend_with_season().await;
    let hooked = Arc::new(memora_tests::hooked_cache::HookedCache::counting(Arc::new(
        memora_core::memory::InMemoryCache::new(),
    )));
    let mut ports = backend.ports();
    ports.queue = Arc::new(q.clone());
    ports.cache = hooked.clone();
    let app = Arc::new(Memora::new(ports, memora_core::services::Config::default()));
    let (a, b) = (user("alice"), user("bob"));
    let jobs = [
        job("job-a1", &a, &season(2026), 2),
        job("job-b1", &b, &season(2026), 3),
        job("job-a2", &a, &season(2026), 1),
    ];
    for j in &jobs {
        q.enqueue(j).await.expect("enqueue");
    }
    let worker = PersistenceWorker::new(cfg.clone(), app, fast_worker("batcher"))
        .await
        .expect("worker");
    assert_eq!(worker.run_once().await.expect("step"), 3, "one batch");
    assert_eq!(backend.review_log_len(), 6);
    let mut got: Vec<(String, String, usize)> = hooked
        .refreshes()
        .into_iter()
        .map(|(u, j, n)| (u.as_str().to_owned(), j.as_str().to_owned(), n))
        .collect();
    got.sort();
    let want = |u: &str, j: &str, n| (u.to_owned(), j.to_owned(), n);
    assert_eq!(
        got,
        vec![
            want("alice", "job-a1", 2),
            want("alice", "job-a2", 1),
            want("bob", "job-b1", 3)
        ]
    );
    cleanup(&cfg, &q).await;
}

#[tokio::test]
async fn crashed_consumer_entries_are_reclaimed_and_persisted_once() {
    let Some(cfg) = config().await else { return };
    let q = RedisQueue::connect(cfg.clone()).await.expect("connect");
    let (backend, app) = app_with(&q).await;
    let u = user("alice");
    let j1 = job("job-a", &u, &season(2026), 3);
    let j2 = job("job-b", &u, &season(2026), 2);
    q.enqueue(&j1).await.expect("enqueue");
    q.enqueue(&j2).await.expect("enqueue");
    // A consumer reads both entries and dies before XACK; it had already
    // committed job-a (crash between commit and acknowledgement).
    let url = match &cfg.topology {
        memora_cache_redis::Topology::Single(u) => u.clone(),
        memora_cache_redis::Topology::Cluster(_) => unreachable!(),
    };
    let client = redis::Client::open(url).expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(memora_cache_redis::queue_group())
        .arg("crashed")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(q.stream_key())
        .arg(">")
        .query_async(&mut raw)
        .await
        .expect("read");
    assert!(!matches!(read, redis::Value::Nil));
    app.reviews()
        .process_persist_job(&j1)
        .await
        .expect("crashed worker committed job-a");
    assert_eq!(backend.review_log_len(), 3);

    let worker = PersistenceWorker::new(cfg.clone(), app, fast_worker("rescuer"))
        .await
        .expect("worker");
    // Nothing new to read, and the entries are not idle long enough yet.
    assert_eq!(worker.run_once().await.expect("step"), 0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(worker.run_once().await.expect("step"), 2, "both reclaimed");
    assert_eq!(
        backend.review_log_len(),
        5,
        "each answer logged exactly once"
    );
    assert_eq!(q.depth().await.expect("depth"), 0);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(q.stream_key())
        .arg(memora_cache_redis::queue_group())
        .query_async(&mut raw)
        .await
        .expect("xpending");
    match pending {
        redis::Value::Array(v) => assert_eq!(v.first(), Some(&redis::Value::Int(0))),
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
    assert_eq!(
        q.status(&j2.id).await.expect("status"),
        Some(JobStatus::Done)
    );
    cleanup(&cfg, &q).await;
}

#[tokio::test]
async fn store_failure_retries_then_dead_letters_then_replays() {
    let Some(cfg) = config().await else { return };
    let q = RedisQueue::connect(cfg.clone()).await.expect("connect");
    let (backend, app) = app_with(&q).await;
    let j = job("job-x", &user("bob"), &season(2026), 3);
    q.enqueue(&j).await.expect("enqueue");
    backend.set_store_available(false);
    let worker = PersistenceWorker::new(cfg.clone(), app, fast_worker("w"))
        .await
        .expect("worker");
    let started = std::time::Instant::now();
    assert_eq!(worker.run_once().await.expect("step"), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(70),
        "1+2+4 back-off units were waited"
    );
    assert!(matches!(
        q.status(&j.id).await.expect("status"),
        Some(JobStatus::Failed(_))
    ));
    assert_eq!(q.depth().await.expect("depth"), 0);
    let dead = q.dead_letters(None, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(dead[0].job.as_ref(), Some(&j.id));
    assert_eq!(dead[0].records, 3);
    assert!(dead[0].error.contains("unavailable"), "{}", dead[0].error);
    assert_eq!(backend.review_log_len(), 0);

    backend.set_store_available(true);
    assert!(q.replay_dead_letter(&dead[0].id).await.expect("replay"));
    assert_eq!(
        q.status(&j.id).await.expect("status"),
        Some(JobStatus::Queued)
    );
    assert_eq!(q.dead_letter_count().await.expect("count"), 0);
    assert_eq!(worker.run_once().await.expect("step"), 1);
    assert_eq!(
        q.status(&j.id).await.expect("status"),
        Some(JobStatus::Done)
    );
    assert_eq!(backend.review_log_len(), 3);
    assert!(!q.replay_dead_letter("0-1").await.expect("replay unknown"));
    cleanup(&cfg, &q).await;
}
