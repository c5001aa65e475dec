//! Conformance suite of [`ReviewLogStore`](memora_core::ports::ReviewLogStore): the review history written by
//! `TrackerStore::persist_batch`, read back in order, per season, bounded;
//! the questions reviewed since an instant (daily review quests).
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use memora_core::domain::*;
use memora_core::ids::QuestionId;

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

/// `reviewed_since`: distinct questions answered in review sessions of one
/// season and learner from an instant on; lesson answers do not count.
pub async fn reviewed_since_lists_review_answers(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let early = tracker("u1", 2026, "early", 1, at(1), Some(at(-30)), None, None);
    let a1 = tracker("u1", 2026, "a", 1, at(1), Some(at(-3)), None, None);
    let a2 = tracker("u1", 2026, "a", 2, at(2), Some(at(-2)), None, None);
    let mut lesson = record(
        &tracker("u1", 2026, "lesson", 1, at(1), Some(at(-2)), None, None),
        "r-lesson",
    );
    lesson.log.source = ReviewSource::Lesson;
    let other_season = tracker("u1", 2025, "old", 1, at(1), Some(at(-1)), None, None);
    let other_user = tracker("u2", 2026, "b", 1, at(1), Some(at(-1)), None, None);
    let recs = vec![
        record(&early, "r-early"),
        record(&a1, "r-a1"),
        record(&a2, "r-a2"),
        lesson,
        record(&other_season, "r-old"),
        record(&other_user, "r-b"),
    ];
    s.trackers.persist_batch(&recs).await.expect("persist");
    let mut got = s
        .revlog
        .reviewed_since(&user("u1"), &season(2026), at(-24))
        .await
        .expect("reviewed");
    got.sort();
    assert_eq!(got, vec![QuestionId::parse("a").expect("id")]);
    let mut got = s
        .revlog
        .reviewed_since(&user("u1"), &season(2026), at(-30))
        .await
        .expect("reviewed");
    got.sort();
    assert_eq!(
        got,
        vec![
            QuestionId::parse("a").expect("id"),
            QuestionId::parse("early").expect("id")
        ],
        "from the instant on, inclusive"
    );
    assert!(
        s.revlog
            .reviewed_since(&user("u3"), &season(2026), at(-30))
            .await
            .expect("reviewed")
            .is_empty()
    );
}
