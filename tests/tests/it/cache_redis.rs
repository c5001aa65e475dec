//! The cache conformance suites on a single Redis (random namespace per
//! test), plus Redis-only checks: TTL refresh, horizon mode, stampede.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use memora_cache_redis::{RedisConfig, RedisDueCache, RedisLeaderboard};
use memora_core::ids::{QuestionId, SubjectId};
use memora_core::ports::DueCache;
use memora_tests::conformance::cache::{self as suite, BuildBoard, row, season, user};
use memora_tests::hooked_cache::HookedCache;

pub(crate) async fn config() -> Option<RedisConfig> {
    let url = memora_tests::redis_url_or_skip().await?;
    let mut c = RedisConfig::single(url).namespace(memora_tests::random_namespace());
    c.schedule_ttl = Duration::from_secs(600);
    Some(c)
}

async fn fixture() -> Option<Arc<dyn DueCache>> {
    let cfg = config().await?;
    Some(Arc::new(
        RedisDueCache::connect(cfg).await.expect("connect"),
    ))
}

memora_tests::due_cache_conformance!(fixture);

async fn board() -> Option<Arc<dyn BuildBoard>> {
    let cfg = config().await?;
    Some(Arc::new(
        RedisLeaderboard::connect(cfg).await.expect("connect"),
    ))
}

#[tokio::test]
async fn board_unbuilt_is_none() {
    if let Some(b) = board().await {
        suite::board_unbuilt_is_none(b).await;
    }
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
async fn writes_refresh_the_ttl_of_every_key() {
    let Some(cfg) = config().await else { return };
    let ttl = cfg.schedule_ttl.as_millis() as i64;
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    c.load(&u, &s, &[row(&u, &s, "a", Some("math"), -1, Some(-5))])
        .await
        .expect("load");
    let ttls = c.schedule_ttls(&u, &s).await.expect("ttls");
    assert_eq!(ttls.len(), 4, "{ttls:?}");
    assert!(
        ttls.values().all(|t| *t > ttl - 5_000 && *t <= ttl),
        "{ttls:?}"
    );
    // Shorten every TTL, then a put refreshes them all.
    let base = c.schedule_key(&u, &s);
    let client = redis::Client::open(match &c.config().topology {
        memora_cache_redis::Topology::Single(u) => u.clone(),
        memora_cache_redis::Topology::Cluster(_) => unreachable!(),
    })
    .expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    for k in [
        base.clone(),
        format!("{base}:h"),
        format!("{base}:m"),
        format!("{base}:s:math"),
    ] {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(&k)
            .arg(10_000)
            .query_async(&mut raw)
            .await
            .expect("pexpire");
    }
    c.put(&u, &s, &[row(&u, &s, "b", Some("history"), -1, Some(-5))])
        .await
        .expect("put");
    let ttls = c.schedule_ttls(&u, &s).await.expect("ttls");
    assert_eq!(ttls.len(), 5, "{ttls:?}");
    assert!(ttls.values().all(|t| *t > ttl - 5_000), "{ttls:?}");
}

#[tokio::test]
async fn horizon_mode_caches_less_and_stays_exact() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg.horizon_days(Some(2)))
        .await
        .expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let now = Utc::now();
    let at = |min: i64| now + chrono::Duration::minutes(min);
    let mk = |q: &str, due_min: i64, rev_min: i64| {
        let mut r = row(&u, &s, q, Some("math"), 0, Some(0));
        r.state.due = at(due_min);
        r.state.last_review = Some(at(rev_min));
        r
    };
    c.load_at(
        &u,
        &s,
        &[mk("soon", -10, -100), mk("far", 10 * 1440, -100)],
        now,
    )
    .await
    .expect("load");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 1);
    let st = c
        .states(&u, &s, &[QuestionId::parse("far").expect("q")])
        .await
        .expect("states");
    assert_eq!(st, vec![None], "beyond the horizon: not cached");
    // Past the horizon the schedule counts as absent (the core rehydrates).
    let later = now + chrono::Duration::days(3);
    assert_eq!(c.due(&u, &s, None, later, 10).await.expect("due"), None);
    assert_eq!(c.user_stats(&u, &s, later).await.expect("stats"), None);
    // A newer answer pushing "soon" beyond the horizon removes it.
    c.put(&u, &s, &[mk("soon", 20 * 1440, -1)])
        .await
        .expect("put");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
    let m = SubjectId::new("math").expect("s");
    let d = c
        .due(&u, &s, Some(&m), now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
    // Reload keeps a newer cached entry even if the store row is beyond the horizon.
    c.put(&u, &s, &[mk("far", -5, -2)]).await.expect("put");
    c.load_at(
        &u,
        &s,
        &[mk("soon", -10, -100), mk("far", 10 * 1440, -100)],
        now,
    )
    .await
    .expect("load");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 2, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rehydration_stampede_loads_once() {
    let Some(cfg) = config().await else { return };
    let redis = Arc::new(RedisDueCache::connect(cfg).await.expect("connect"));
    let counting = Arc::new(HookedCache::counting(redis.clone()));
    let backend = memora_core::memory::InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.cache = counting.clone();
    let app = Arc::new(memora_core::Memora::new(
        ports,
        memora_core::services::Config::default(),
    ));
    let demo = memora_core::demo::seed_demo(&app, "pw-123456")
        .await
        .expect("seed");
    redis
        .clear_user(&demo.student, &demo.season)
        .await
        .expect("clear");
    let before = counting.loads();
    let actor = memora_core::domain::Actor::student(demo.student.clone());
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (app, actor) = (app.clone(), actor.clone());
        tasks.push(tokio::spawn(async move {
            app.reviews()
                .get_review_session(
                    &actor,
                    &memora_core::services::reviews::ReviewQuery::default(),
                )
                .await
        }));
    }
    let mut totals = Vec::new();
    for t in tasks {
        let s = t.await.expect("join").expect("session");
        assert!(!s.is_degraded);
        totals.push(s.total_due);
    }
    assert_eq!(counting.loads() - before, 1, "exactly one load");
    assert!(totals.iter().all(|t| *t == totals[0]), "{totals:?}");
    assert!(totals[0] > 0);
}
