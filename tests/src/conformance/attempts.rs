//! Conformance suite of [`AttemptCounter`]: the failed-login counters
//! (in-process `LocalAttempts`, Redis, Redis Cluster).
//!
//! Each check takes a fresh, empty counter and panics on a violation. Run
//! them with [`attempts_conformance!`](crate::attempts_conformance). Times
//! carry microseconds; expiry is judged at the `now` the caller passes, so a
//! counter is gone exactly `ttl` after its latest failure.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use memora_core::ports::AttemptCounter;

/// Reference time: a whole second plus 654 321 µs.
pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
        + Duration::microseconds(654_321)
}

/// `base + s` seconds.
pub fn at(s: i64) -> DateTime<Utc> {
    base() + Duration::seconds(s)
}

const TTL: StdDuration = StdDuration::from_secs(60);

/// Failures count up from 1 and are reported with the latest failure time;
/// an unknown key has none.
pub async fn counts_failures(c: Arc<dyn AttemptCounter>) {
    assert_eq!(
        c.failures("login:alice", at(0)).await.expect("failures"),
        None
    );
    for (i, t) in [0, 5, 9].into_iter().enumerate() {
        let n = c
            .record_failure("login:alice", at(t), TTL)
            .await
            .expect("record");
        assert_eq!(n as usize, i + 1);
    }
    assert_eq!(
        c.failures("login:alice", at(10)).await.expect("failures"),
        Some((3, at(9)))
    );
}

/// `reset` forgets a key (and is harmless on an unknown one); counting then
/// starts again at 1.
pub async fn reset_forgets(c: Arc<dyn AttemptCounter>) {
    c.reset("never-seen").await.expect("reset unknown");
    for t in 0..4 {
        c.record_failure("ip:10.0.0.1", at(t), TTL)
            .await
            .expect("record");
    }
    c.reset("ip:10.0.0.1").await.expect("reset");
    assert_eq!(c.failures("ip:10.0.0.1", at(5)).await.expect("f"), None);
    assert_eq!(
        c.record_failure("ip:10.0.0.1", at(6), TTL)
            .await
            .expect("record"),
        1
    );
}

/// A counter lives `ttl` after its latest failure: each failure extends it;
/// once expired it reads as none and the next failure counts 1 again.
pub async fn expires_ttl_after_latest_failure(c: Arc<dyn AttemptCounter>) {
    let k = "login:bob";
    c.record_failure(k, at(0), TTL).await.expect("record");
    assert_eq!(c.failures(k, at(59)).await.expect("f"), Some((1, at(0))));
    assert_eq!(
        c.failures(k, at(60)).await.expect("f"),
        None,
        "expired at ttl"
    );
    // A failure within the ttl extends it.
    c.record_failure(k, at(100), TTL).await.expect("record");
    assert_eq!(
        c.record_failure(k, at(150), TTL).await.expect("record"),
        2,
        "still counting: 50 s after the previous failure"
    );
    assert_eq!(c.failures(k, at(200)).await.expect("f"), Some((2, at(150))));
    assert_eq!(c.failures(k, at(210)).await.expect("f"), None);
    // After expiry the count restarts.
    assert_eq!(c.record_failure(k, at(300), TTL).await.expect("record"), 1);
    assert_eq!(c.failures(k, at(301)).await.expect("f"), Some((1, at(300))));
}

/// Keys count independently, including keys that share prefixes or hold
/// separators and braces.
pub async fn keys_are_isolated(c: Arc<dyn AttemptCounter>) {
    let keys = ["a", "a:b", "ab", "{a}", "user:{x}:y", "ü ø"];
    for (i, k) in keys.iter().enumerate() {
        for _ in 0..=i {
            c.record_failure(k, at(0), TTL).await.expect("record");
        }
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.failures(k, at(1)).await.expect("f"),
            Some((i as u32 + 1, at(0))),
            "{k}"
        );
    }
    c.reset("a").await.expect("reset");
    assert_eq!(c.failures("a", at(1)).await.expect("f"), None);
    assert_eq!(c.failures("a:b", at(1)).await.expect("f"), Some((2, at(0))));
}

/// Concurrent failures on one key are each counted exactly once.
pub async fn concurrent_failures_count_exactly(c: Arc<dyn AttemptCounter>) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.record_failure("login:race", at(0), TTL)
                .await
                .expect("record")
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("join"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u32>>());
    assert_eq!(
        c.failures("login:race", at(1)).await.expect("f"),
        Some((20, at(0)))
    );
}

/// Generates one `#[tokio::test]` per [`AttemptCounter`] check. `$fixture`
/// is an async fn returning `Option<Arc<dyn AttemptCounter>>` (`None` =
/// skipped).
#[macro_export]
macro_rules! attempts_conformance {
    ($fixture:path) => {
        $crate::attempts_conformance!(@ $fixture;
            counts_failures, reset_forgets, expires_ttl_after_latest_failure,
            keys_are_isolated, concurrent_failures_count_exactly);
    };
    (@ $fixture:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                if let Some(counter) = $fixture().await {
                    $crate::conformance::attempts::$check(counter).await;
                }
            }
        )*
    };
}
