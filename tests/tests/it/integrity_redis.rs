//! The served-ledger and attempt-counter conformance suites on a single
//! Redis and on the test Redis Cluster (random namespace per test, deleted
//! afterwards), plus the Redis-only promises: the ledger key's TTL covers
//! retain_until, and expired fields are swept.

use std::sync::Arc;
use std::time::Duration;

use memora_cache_redis::{RedisAttempts, RedisConfig, RedisServedLedger};
use memora_core::ports::{AttemptCounter, ServedLedger};

/// A ledger and its configuration (for the teardown).
pub(crate) struct Harness {
    ledger: RedisServedLedger,
    cfg: RedisConfig,
}

impl Harness {
    async fn new(cfg: RedisConfig) -> Harness {
        let ledger = RedisServedLedger::connect(cfg.clone())
            .await
            .expect("connect");
        Harness { ledger, cfg }
    }
    fn ledger(&self) -> Arc<dyn ServedLedger> {
        Arc::new(self.ledger.clone())
    }
    async fn teardown(self) {
        memora_tests::redis_delete_namespace(&self.cfg).await;
    }
}

mod single {
    use super::*;

    async fn config() -> Option<RedisConfig> {
        let url = memora_tests::redis_url_or_skip().await?;
        Some(RedisConfig::single(url).namespace(memora_tests::random_namespace()))
    }

    async fn setup() -> Option<Harness> {
        Some(Harness::new(config().await?).await)
    }

    memora_tests::served_ledger_conformance!(setup());

    /// The suite on a ledger naming question items by their numbers.
    mod numbered {
        use super::*;

        async fn setup() -> Option<Harness> {
            let cfg = config().await?;
            let mut h = Harness::new(cfg).await;
            h.ledger = h.ledger.with_numbering(memora_tests::numbering());
            Some(h)
        }

        memora_tests::served_ledger_conformance!(setup());
    }

    async fn counter() -> Option<Arc<dyn AttemptCounter>> {
        let cfg = config().await?;
        Some(Arc::new(
            RedisAttempts::connect(cfg).await.expect("connect"),
        ))
    }

    memora_tests::attempts_conformance!(counter);

    use memora_tests::redis_raw as raw;

    #[tokio::test]
    async fn ledger_ttl_covers_retain_until_and_never_shrinks() {
        use memora_tests::conformance::served::{at, items, season, user};
        let Some(h) = setup().await else { return };
        let (u, s) = (user("alice"), season(2026));
        let key = h.ledger.ledger_key(&u, &s);
        let mut c = raw(&h.cfg).await;
        let pttl = |c: &mut redis::aio::MultiplexedConnection| {
            let key = key.clone();
            let mut c = c.clone();
            async move {
                redis::cmd("PTTL")
                    .arg(&key)
                    .query_async::<i64>(&mut c)
                    .await
                    .expect("pttl")
            }
        };
        // Kept two hours: the key lives at least that long.
        h.ledger
            .record_served(&u, &s, &items(&["q:a"]), at(0), at(600), at(7_200))
            .await
            .expect("record");
        let long = pttl(&mut c).await;
        assert!((7_200_000..=7_260_000).contains(&long), "{long}");
        // A shorter retention later does not shorten the key.
        h.ledger
            .record_served(&u, &s, &items(&["q:b"]), at(10), at(20), at(70))
            .await
            .expect("record");
        let after = pttl(&mut c).await;
        assert!(after > 7_000_000, "{after}");
        h.teardown().await;
    }

    /// A ledger of more than 64 entries loses 16 sampled expired ones per
    /// serving; a smaller one is not swept (its expired entries read as
    /// absent and leave with the key).
    #[tokio::test]
    async fn record_served_sweeps_expired_fields() {
        use memora_tests::conformance::served::{at, items, season, user};
        let Some(h) = setup().await else { return };
        let mut c = raw(&h.cfg).await;
        let s = season(2026);
        for (name, old, left) in [("alice", 70, 70 - 16 + 1), ("bob", 10, 10 + 1)] {
            let u = user(name);
            let olds: Vec<String> = (0..old).map(|i| format!("q:old-{i}")).collect();
            h.ledger
                .record_served(&u, &s, &olds, at(0), at(10), at(100))
                .await
                .expect("record");
            // Served again long after the old entries' retain_until.
            h.ledger
                .record_served(&u, &s, &items(&["q:new"]), at(1_000), at(1_010), at(2_000))
                .await
                .expect("record");
            let n: i64 = redis::cmd("HLEN")
                .arg(h.ledger.ledger_key(&u, &s))
                .query_async(&mut c)
                .await
                .expect("hlen");
            assert_eq!(n, left, "{name}: {old} expired entries, one new");
        }
        h.teardown().await;
    }

    #[tokio::test]
    async fn counter_key_expires_in_redis() {
        let Some(cfg) = config().await else { return };
        let a = RedisAttempts::connect(cfg.clone()).await.expect("connect");
        let now = chrono::Utc::now();
        a.record_failure("login:ttl", now, Duration::from_secs(30))
            .await
            .expect("record");
        let mut c = raw(&cfg).await;
        let ttl: i64 = redis::cmd("PTTL")
            .arg(a.counter_key("login:ttl"))
            .query_async(&mut c)
            .await
            .expect("pttl");
        assert!(ttl > 25_000 && ttl <= 30_000, "{ttl}");
        a.reset("login:ttl").await.expect("reset");
        let exists: i64 = redis::cmd("EXISTS")
            .arg(a.counter_key("login:ttl"))
            .query_async(&mut c)
            .await
            .expect("exists");
        assert_eq!(exists, 0);
        memora_tests::redis_delete_namespace(&cfg).await;
    }
}

mod cluster {
    use super::*;

    fn config() -> Option<RedisConfig> {
        let cluster = memora_tests::redis_cluster::cluster_or_skip()?;
        let mut c =
            RedisConfig::cluster(cluster.nodes.clone()).namespace(memora_tests::random_namespace());
        // Cold cluster connections can be slower than the production budget.
        c.call_timeout = Duration::from_secs(2);
        Some(c)
    }

    async fn setup() -> Option<Harness> {
        Some(Harness::new(config()?).await)
    }

    memora_tests::served_ledger_conformance!(setup());

    async fn counter() -> Option<Arc<dyn AttemptCounter>> {
        let cfg = config()?;
        Some(Arc::new(
            RedisAttempts::connect(cfg).await.expect("connect"),
        ))
    }

    memora_tests::attempts_conformance!(counter);
}
