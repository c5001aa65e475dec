//! Conformance suite of [`ReviewLogStore`]: the review history written by
//! `TrackerStore::persist_batch`, read back in order, per season, bounded.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use memora_core::domain::*;

use super::store::*;

/// Review log reads: oldest first, season filter, limit.
pub async fn review_log_reads(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let a = tracker("u1", 2026, "a", 1, at(1), Some(at(-3)), None, None);
    let b = tracker("u1", 2025, "b", 1, at(1), Some(at(-5)), None, None);
    let c = tracker("u1", 2026, "c", 1, at(1), Some(at(-1)), None, None);
    let recs = vec![record(&a, "r-a"), record(&b, "r-b"), record(&c, "r-c")];
    s.trackers.persist_batch(&recs).await.expect("persist");
    let ids = |v: Vec<ReviewLogEntry>| {
        v.into_iter()
            .map(|e| e.review_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s
            .revlog
            .review_log(&user("u1"), None, 10)
            .await
            .expect("log")),
        vec!["r-b", "r-a", "r-c"]
    );
    assert_eq!(
        ids(s
            .revlog
            .review_log(&user("u1"), Some(&season(2026)), 10)
            .await
            .expect("log")),
        vec!["r-a", "r-c"]
    );
    assert_eq!(
        ids(s
            .revlog
            .review_log(&user("u1"), None, 1)
            .await
            .expect("log")),
        vec!["r-b"]
    );
    assert_eq!(s.revlog.count_reviews(&user("u1")).await.expect("count"), 3);
}
