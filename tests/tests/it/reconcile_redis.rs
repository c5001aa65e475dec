//! Reconciliation's cache side on Redis (the part that is adapter-
//! specific): the core's `trigger_reconciliation` over the in-memory store
//! and a Redis due cache and queue. Lag is kept and not counted, stale
//! entries are corrected and counted, entries only Redis holds are found —
//! removed when no write can be pending for them, kept otherwise.

use std::sync::Arc;

use chrono::Duration;
use memora_cache_redis::{RedisConfig, RedisDueCache, RedisQueue};
use memora_core::Memora;
use memora_core::domain::{Actor, MemoryTracker};
use memora_core::ids::QuestionId;
use memora_core::ports::{DueCache, PersistenceQueue};
use memora_tests::conformance::queue::record;

async fn config() -> Option<RedisConfig> {
    let url = memora_tests::redis_url_or_skip().await?;
    Some(RedisConfig::single(url).namespace(memora_tests::random_namespace()))
}

#[tokio::test]
async fn reconciliation_on_redis_keeps_lag_fixes_stale_and_finds_cache_only_members() {
    let Some(cfg) = config().await else { return };
    let cache = Arc::new(RedisDueCache::connect(cfg.clone()).await.expect("cache"));
    let queue = RedisQueue::connect(cfg.clone()).await.expect("queue");
    let backend = memora_core::memory::InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.cache = cache.clone();
    ports.queue = Arc::new(queue.clone());
    let app = Memora::new(ports, memora_core::services::Config::default());
    let demo = memora_core::demo::seed_demo(&app, "pw-123456")
        .await
        .expect("seed");
    let (u, s) = (demo.student.clone(), demo.season.clone());
    let rows = app
        .ports()
        .trackers
        .all_trackers(&u, &s)
        .await
        .expect("rows");
    cache.load(&u, &s, &rows).await.expect("load");
    // Whole seconds: Redis keeps microseconds.
    let now =
        chrono::DateTime::from_timestamp(app.ports().clock.now().timestamp(), 0).expect("now");
    let answered = |r: &MemoryTracker, at| {
        let mut r = r.clone();
        r.state.last_review = Some(at);
        r.state.due = at + Duration::days(3);
        r
    };
    // Lag: the cache already has an answer the store has not.
    let lag = answered(&rows[0], now);
    cache
        .put(&u, &s, std::slice::from_ref(&lag))
        .await
        .expect("put");
    // Stale: the store moved on without the cache.
    let fresh = answered(&rows[1], now);
    let mut rec = record(&u, &s, "unused", 0, "reconcile-stale-1");
    rec.log.key = fresh.key.clone();
    rec.log.reviewed_at = now;
    rec.tracker = fresh.clone();
    app.ports()
        .trackers
        .persist_batch(&[rec])
        .await
        .expect("persist");
    // Only in Redis: one answered days ago (stale), one just now (pending).
    let mut ghost = answered(&rows[2], now - Duration::days(4));
    ghost.key.question = QuestionId::parse("ghost-stage:3").expect("q");
    let mut pending = answered(&rows[2], now);
    pending.key.question = QuestionId::parse("pending-stage:3").expect("q");
    cache
        .put(&u, &s, &[ghost.clone(), pending.clone()])
        .await
        .expect("put");
    assert_eq!(queue.oldest_unpersisted().await.expect("oldest"), None);

    let admin = Actor::admin(demo.admin.clone());
    let r = app
        .admin()
        .trigger_reconciliation(&admin, Some(1000), None)
        .await
        .expect("reconcile");
    assert_eq!(r.kept_newer_in_cache, 2, "lag + pending: {r:?}");
    assert_eq!(r.auto_corrected, 1, "{r:?}");
    assert_eq!((r.cache_only_found, r.cache_only_removed), (2, 1), "{r:?}");
    assert_eq!(r.discrepancies_found, 2, "stale + ghost: {r:?}");
    assert!(r.alert_triggered, "{r:?}");
    let states = cache
        .states(
            &u,
            &s,
            &[
                lag.key.question.clone(),
                fresh.key.question.clone(),
                ghost.key.question.clone(),
                pending.key.question.clone(),
            ],
        )
        .await
        .expect("states");
    assert_eq!(states, vec![Some(lag), Some(fresh), None, Some(pending)]);
    memora_tests::redis_delete_namespace(&cfg).await;
}
