//! Wiring ports from configuration: the embedded in-memory backend (with the
//! demo dataset) when no database is configured, PostgreSQL (+ Redis when
//! configured) otherwise.

use std::sync::Arc;

use memora_core::memory::{InMemoryBackend, SystemClock};
use memora_core::ports::Ports;

use crate::security::{Argon2Hasher, RandomIds};

/// Where the data lives.
#[derive(Clone, Default)]
pub struct BackendConfig {
    /// PostgreSQL URL (None = embedded in-memory backend).
    pub database_url: Option<String>,
    /// Redis URL (single node).
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (comma-separated URLs).
    pub redis_cluster_nodes: Option<String>,
    /// Redis key namespace (default `memora:`): several deployments or
    /// test runs can share one Redis.
    pub redis_namespace: Option<String>,
    /// Database pool size.
    pub db_pool_size: u32,
    /// Queue entries pending this long on a dead consumer are reclaimed.
    pub queue_reclaim_idle: std::time::Duration,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("BackendConfig")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact(u)),
            )
            .field("redis_url", &self.redis_url.as_ref().map(|u| redact(u)))
            .field(
                "redis_cluster_nodes",
                &self.redis_cluster_nodes.as_ref().map(|_| "<set>"),
            )
            .field("db_pool_size", &self.db_pool_size)
            .field("queue_reclaim_idle", &self.queue_reclaim_idle)
            .finish()
    }
}

/// `scheme://user:secret@host/…` → `scheme://***@host/…`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***{}", &url[..s], &url[a..]),
        _ => url.to_owned(),
    }
}

/// What was built, and what background work it needs.
pub struct Built {
    /// The ports.
    pub ports: Ports,
    /// The in-memory backend, when embedded.
    pub memory: Option<InMemoryBackend>,
    /// Handles the server keeps alive (workers etc.).
    pub extras: crate::jobs::Extras,
}

/// In-memory ports with production ids, clock and hashing.
pub fn in_memory() -> Built {
    let backend = InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.clock = Arc::new(SystemClock);
    ports.ids = Arc::new(RandomIds);
    ports.hasher = Arc::new(Argon2Hasher);
    Built {
        ports,
        memory: Some(backend),
        extras: crate::jobs::Extras::default(),
    }
}

/// Builds the ports for `cfg`: in-memory when no database is configured;
/// PostgreSQL (migrations applied) otherwise, with Redis for the cache,
/// leaderboards, the durable queue, the fast served-set ledger and the shared
/// failed-login counters when a Redis URL or cluster is set. The durable
/// served ledger is always the store's.
pub async fn build(cfg: &BackendConfig) -> Result<Built, BackendError> {
    let Some(url) = &cfg.database_url else {
        if cfg.redis_url.is_some() || cfg.redis_cluster_nodes.is_some() {
            return Err(BackendError::Config(
                "Redis needs a database: set MEMORA_DATABASE_URL too".into(),
            ));
        }
        return Ok(in_memory());
    };
    let pg = memora_store_postgres::PgStore::connect(url, cfg.db_pool_size.max(2))
        .await
        .map_err(|e| BackendError::Connect(format!("PostgreSQL at {}: {e}", redact(url))))?;
    pg.migrate()
        .await
        .map_err(|e| BackendError::Connect(format!("migrations: {e}")))?;
    let store = Arc::new(pg);
    let redis = match (&cfg.redis_url, &cfg.redis_cluster_nodes) {
        (Some(_), Some(_)) => {
            return Err(BackendError::Config(
                "set either MEMORA_REDIS_URL or MEMORA_REDIS_CLUSTER_NODES, not both".into(),
            ));
        }
        (Some(u), None) => Some(memora_cache_redis::RedisConfig::single(u.clone())),
        (None, Some(nodes)) => Some(memora_cache_redis::RedisConfig::cluster(
            nodes
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        )),
        (None, None) => None,
    };
    let redis = match (redis, &cfg.redis_namespace) {
        (Some(rc), Some(ns)) => Some(rc.namespace(ns.clone())),
        (rc, _) => rc,
    };
    let mut extras = crate::jobs::Extras::default();
    let reclaim_idle = cfg.queue_reclaim_idle;
    type CachePorts = (
        Arc<dyn memora_core::ports::DueCache>,
        Option<Arc<dyn memora_core::ports::LeaderboardCache>>,
        Arc<dyn memora_core::ports::PersistenceQueue>,
        Option<Arc<dyn memora_core::ports::ServedLedger>>,
        Option<Arc<dyn memora_core::ports::AttemptCounter>>,
    );
    let (cache, leaderboard, queue, served_cache, attempts): CachePorts = match redis {
        None => {
            // No Redis: in-process cache, and answers are written through
            // to PostgreSQL synchronously (the store is the queue).
            let mem = InMemoryBackend::new();
            (
                Arc::new(mem.cache()),
                None,
                Arc::new(SyncQueue {
                    store: Arc::clone(&store),
                    done: Default::default(),
                }),
                // The served ledger lives in PostgreSQL alone, and login
                // throttling falls back to the core's in-process counter.
                None,
                None,
            )
        }
        Some(rc) => {
            let conn = memora_cache_redis::RedisConn::connect(&rc)
                .await
                .map_err(|e| BackendError::Connect(format!("Redis: {e}")))?;
            let due = memora_cache_redis::RedisDueCache::with_connection(conn.clone(), rc.clone());
            let board =
                memora_cache_redis::RedisLeaderboard::with_connection(conn.clone(), rc.clone());
            let served_cache =
                memora_cache_redis::RedisServedLedger::with_connection(conn.clone(), rc.clone());
            let attempts =
                memora_cache_redis::RedisAttempts::with_connection(conn.clone(), rc.clone());
            let queue = memora_cache_redis::RedisQueue::with_connection(conn, rc.clone())
                .await
                .map_err(|e| BackendError::Connect(format!("Redis queue: {e}")))?;
            extras.spawners.push(Box::new(move |app, mut stop| {
                tokio::spawn(async move {
                    // Keep trying to start the worker: Redis may be down now.
                    loop {
                        match memora_cache_redis::PersistenceWorker::new(
                            rc.clone(),
                            Arc::clone(&app),
                            memora_cache_redis::WorkerConfig {
                                min_idle: reclaim_idle,
                                ..memora_cache_redis::WorkerConfig::default()
                            },
                        )
                        .await
                        {
                            Ok(worker) => {
                                let mut stop2 = stop.clone();
                                worker
                                    .run(async move {
                                        let _ = stop2.changed().await;
                                    })
                                    .await;
                                return;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "persistence worker cannot start yet");
                                tokio::select! {
                                    _ = stop.changed() => return,
                                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                                }
                            }
                        }
                    }
                })
            }));
            let rebuild_board = board.clone();
            extras.spawners.push(Box::new(move |app, stop| {
                tokio::spawn(rebuild_leaderboards(app, rebuild_board, stop))
            }));
            (
                Arc::new(due),
                Some(Arc::new(board)),
                Arc::new(queue),
                Some(Arc::new(served_cache)),
                Some(Arc::new(attempts)),
            )
        }
    };
    let ports = Ports {
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        hasher: Arc::new(Argon2Hasher),
        content: store.clone(),
        seasons: store.clone(),
        trackers: store.clone(),
        revlog: store.clone(),
        scans: store.clone(),
        archive: store.clone(),
        profiles: store.clone(),
        activity: store.clone(),
        fsrs: store.clone(),
        commerce: store.clone(),
        quests: store.clone(),
        auth: store.clone(),
        audit: store.clone(),
        locks: store.clone(),
        cache,
        leaderboard,
        queue,
        served: store.clone(),
        served_cache,
        attempts,
    };
    Ok(Built {
        ports,
        memory: None,
        extras,
    })
}

/// Keeps the Redis leaderboards built: shortly after start-up and then every
/// ten minutes, every board (global and per subject, each period) is filled
/// from the store. Boards hold every player with XP, so the caller's own
/// rank stays exact; between rebuilds the core adds XP incrementally.
async fn rebuild_leaderboards(
    app: Arc<memora_core::Memora>,
    board: memora_cache_redis::RedisLeaderboard,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use memora_core::gamification::LeaderboardPeriod;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let today = chrono::Utc::now().date_naive();
        let subjects: Vec<Option<memora_core::ids::SubjectId>> =
            match app.learning().catalog().await {
                Ok(idx) => std::iter::once(None)
                    .chain(idx.catalog().subjects.iter().map(|s| Some(s.id.clone())))
                    .collect(),
                Err(_) => vec![None],
            };
        let started = std::time::Instant::now();
        let mut filled = 0usize;
        for subject in &subjects {
            for period in [
                LeaderboardPeriod::Daily,
                LeaderboardPeriod::Weekly,
                LeaderboardPeriod::Monthly,
                LeaderboardPeriod::AllTime,
            ] {
                match board
                    .rebuild(
                        app.ports().activity.as_ref(),
                        subject.as_ref(),
                        period,
                        today,
                        usize::MAX,
                    )
                    .await
                {
                    Ok(n) => filled += n,
                    Err(e) => tracing::warn!(error = %e, "leaderboard rebuild failed"),
                }
            }
        }
        tracing::info!(
            entries = filled,
            ms = started.elapsed().as_millis() as u64,
            "leaderboards rebuilt"
        );
    }
}

/// The queue used without Redis: persists synchronously into PostgreSQL, so
/// an acknowledged answer is already committed. Job ids are remembered in
/// process (bounded) for `get_persistence_status`.
struct SyncQueue {
    store: Arc<memora_store_postgres::PgStore>,
    done: std::sync::Mutex<std::collections::VecDeque<memora_core::ids::JobId>>,
}

impl SyncQueue {
    const REMEMBER: usize = 100_000;

    fn remember(&self, job: &memora_core::ids::JobId) {
        if let Ok(mut d) = self.done.lock() {
            if d.len() >= Self::REMEMBER {
                d.pop_front();
            }
            d.push_back(job.clone());
        }
    }
}

#[async_trait::async_trait]
impl memora_core::ports::PersistenceQueue for SyncQueue {
    async fn enqueue(
        &self,
        job: &memora_core::ports::PersistJob,
    ) -> memora_core::PortResult<memora_core::ports::JobStatus> {
        use memora_core::ports::TrackerStore;
        self.store.persist_batch(&job.records).await?;
        self.remember(&job.id);
        Ok(memora_core::ports::JobStatus::Done)
    }
    async fn status(
        &self,
        job: &memora_core::ids::JobId,
    ) -> memora_core::PortResult<Option<memora_core::ports::JobStatus>> {
        let known = self.done.lock().map(|d| d.contains(job)).unwrap_or(false);
        Ok(known.then_some(memora_core::ports::JobStatus::Done))
    }
    async fn record_status(
        &self,
        job: &memora_core::ids::JobId,
        status: &memora_core::ports::JobStatus,
    ) -> memora_core::PortResult<()> {
        if *status == memora_core::ports::JobStatus::Done {
            self.remember(job);
        }
        Ok(())
    }
    async fn depth(&self) -> memora_core::PortResult<u64> {
        Ok(0)
    }
}

/// Why the backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A dependency could not be reached or set up.
    #[error("{0}")]
    Connect(String),
}
