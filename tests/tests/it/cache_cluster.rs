//! The cache conformance suites and a queue round trip on a real 3-master
//! Redis Cluster started by the test tooling (`memora_tests::redis_cluster`).

use std::sync::Arc;
use std::time::Duration;

use memora_cache_redis::{RedisConfig, RedisDueCache, RedisLeaderboard, RedisQueue};
use memora_core::ports::DueCache;
use memora_tests::conformance::cache::{self as suite, BuildBoard, row, season, user};

fn config() -> Option<RedisConfig> {
    let cluster = memora_tests::redis_cluster::cluster_or_skip()?;
    let mut c =
        RedisConfig::cluster(cluster.nodes.clone()).namespace(memora_tests::random_namespace());
    c.schedule_ttl = Duration::from_secs(600);
    // Cold cluster connections can be slower than the production budget.
    c.call_timeout = Duration::from_secs(2);
    Some(c)
}

async fn fixture() -> Option<Arc<dyn DueCache>> {
    let cfg = config()?;
    Some(Arc::new(
        RedisDueCache::connect(cfg).await.expect("connect"),
    ))
}

memora_tests::due_cache_conformance!(fixture);

/// The suite on layout 5 (cards under their questions' numbers).
mod numbered {
    use super::*;

    async fn fixture() -> Option<Arc<dyn DueCache>> {
        let cfg = config()?;
        Some(Arc::new(
            RedisDueCache::connect(cfg)
                .await
                .expect("connect")
                .with_numbering(memora_tests::numbering()),
        ))
    }

    memora_tests::due_cache_conformance!(fixture);
}

async fn board() -> Option<Arc<dyn BuildBoard>> {
    let cfg = config()?;
    Some(Arc::new(
        RedisLeaderboard::connect(cfg).await.expect("connect"),
    ))
}

#[tokio::test]
async fn board_order_and_rank() {
    if let Some(b) = board().await {
        suite::board_order_and_rank(b).await;
    }
}

#[tokio::test]
async fn board_add_xp_updates_every_bucket() {
    if let Some(b) = board().await {
        suite::board_add_xp_updates_every_bucket(b).await;
    }
}

#[tokio::test]
async fn schedules_spread_over_masters_and_clear_season_reaches_all() {
    let Some(cfg) = config() else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let s = season(2026);
    for i in 0..60 {
        let u = user(&format!("spread-{i}"));
        c.load(&u, &s, &[row(&u, &s, "x", Some("math"), -1, None)])
            .await
            .expect("load");
    }
    let stats = c.stats().await.expect("stats");
    assert_eq!(stats.keys_by_season.get("SEASON-2026"), Some(&60));
    assert!(stats.memory_used_bytes > 0);
    assert_eq!(c.clear_season(&s).await.expect("clear"), 60);
    assert_eq!(c.stats().await.expect("stats").total_keys, 0);
}

#[tokio::test]
async fn queue_conforms_on_cluster() {
    let Some(cfg) = config() else { return };
    let q = Arc::new(RedisQueue::connect(cfg).await.expect("connect"));
    memora_tests::conformance::queue::enqueue_status_depth(q.clone(), &season(2026)).await;
    memora_tests::conformance::queue::record_and_read_status(q).await;
}

#[tokio::test]
async fn dead_letters_conform_on_cluster() {
    let Some(cfg) = config() else { return };
    let h = memora_tests::conformance::queue::RedisDeadLetters::connect(cfg).await;
    memora_tests::conformance::queue::dead_letters_list_replay_discard(&h, &season(2026)).await;
}
