//! Conformance suite of [`TrackerStore`]: idempotent, forward-only
//! `persist_batch`, the due / topic / mastery reads of the request path.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;
use memora_core::srs::{Phase, SchedulerKind};

use super::store::*;

/// Replaying a batch changes nothing; review ids are logged once.
pub async fn persist_is_idempotent(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let ts = [
        tracker(
            "u1",
            2026,
            "st1:0",
            1,
            at(24),
            Some(at(0)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2026,
            "st1:1",
            2,
            at(48),
            Some(at(0)),
            Some("math"),
            Some("t1"),
        ),
        tracker("u2", 2026, "st2", 3, at(72), Some(at(0)), None, None),
    ];
    let recs: Vec<ReviewRecord> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| record(t, &format!("rev-{i}")))
        .collect();
    let first = s.trackers.persist_batch(&recs).await.expect("persist");
    assert_eq!(
        first,
        PersistOutcome {
            logs_inserted: 3,
            trackers_written: 3
        }
    );
    let again = s.trackers.persist_batch(&recs).await.expect("replay");
    assert_eq!(
        again,
        PersistOutcome {
            logs_inserted: 0,
            trackers_written: 0
        }
    );
    assert_eq!(
        s.trackers.persist_batch(&[]).await.expect("empty"),
        PersistOutcome::default()
    );
    assert!(
        s.revlog
            .has_review(&ReviewId::new("rev-1").expect("id"))
            .await
            .expect("has")
    );
    assert!(
        !s.revlog
            .has_review(&ReviewId::new("rev-9").expect("id"))
            .await
            .expect("has")
    );
    assert_eq!(s.revlog.count_reviews(&user("u1")).await.expect("count"), 2);
    assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 3);
    let got = s
        .trackers
        .get_trackers(
            &user("u1"),
            &season(2026),
            &[q("st1:1"), q("nope"), q("st1:0")],
        )
        .await
        .expect("get");
    assert_eq!(got, vec![ts[1].clone(), ts[0].clone()]);
    let log = s
        .revlog
        .review_log(&user("u1"), None, 10)
        .await
        .expect("log");
    assert_eq!(log, vec![recs[0].log.clone(), recs[1].log.clone()]);
}

/// A newer state replaces a row, an older one never does (late replays).
pub async fn persist_newer_wins(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let old = tracker("u1", 2026, "st1", 1, at(24), Some(at(0)), None, None);
    let new = tracker("u1", 2026, "st1", 2, at(96), Some(at(10)), None, None);
    s.trackers
        .persist_batch(&[record(&new, "r-new")])
        .await
        .expect("new");
    let late = s
        .trackers
        .persist_batch(&[record(&old, "r-old")])
        .await
        .expect("old");
    assert_eq!(
        late,
        PersistOutcome {
            logs_inserted: 1,
            trackers_written: 0
        }
    );
    let rows = s
        .trackers
        .all_trackers(&user("u1"), &season(2026))
        .await
        .expect("all");
    assert_eq!(rows, vec![new.clone()]);
    // Same last_review, different state: the later write wins.
    let mut same_time = new.clone();
    same_time.state.due = at(120);
    let o = s
        .trackers
        .persist_batch(&[record(&same_time, "r-same")])
        .await
        .expect("same");
    assert_eq!(o.trackers_written, 1);
    let rows = s
        .trackers
        .all_trackers(&user("u1"), &season(2026))
        .await
        .expect("all");
    assert_eq!(rows, vec![same_time]);
}

/// Duplicates of one key inside a batch collapse to the newest state.
pub async fn persist_collapses_duplicates(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let a = tracker("u1", 2026, "st1", 1, at(24), Some(at(1)), None, None);
    let b = tracker("u1", 2026, "st1", 2, at(48), Some(at(2)), None, None);
    let o = s
        .trackers
        .persist_batch(&[record(&b, "r-b"), record(&a, "r-a"), record(&b, "r-b")])
        .await
        .expect("persist");
    assert_eq!(o.logs_inserted, 2);
    assert_eq!(
        s.trackers
            .all_trackers(&user("u1"), &season(2026))
            .await
            .expect("all"),
        vec![b]
    );
    assert_eq!(s.revlog.count_reviews(&user("u1")).await.expect("count"), 2);
}

/// A batch touching an unknown season is rejected and writes nothing.
pub async fn persist_unknown_season_rejected(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let good = tracker("u1", 2026, "st1", 1, at(24), Some(at(0)), None, None);
    let bad = tracker("u1", 2031, "st1", 1, at(24), Some(at(0)), None, None);
    let r = s
        .trackers
        .persist_batch(&[record(&good, "r-good"), record(&bad, "r-bad")])
        .await;
    assert!(matches!(r, Err(PortError::Rejected(_))), "{r:?}");
    assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 0);
    assert!(
        !s.revlog
            .has_review(&ReviewId::new("r-good").expect("id"))
            .await
            .expect("has")
    );
    assert_eq!(s.revlog.count_reviews(&user("u1")).await.expect("count"), 0);
}

/// Due rows: due ≤ now, ordered by due then question, filters and limit;
/// counts agree; other users and seasons never leak in.
pub async fn due_queries(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let ts = vec![
        tracker(
            "u1",
            2026,
            "b",
            1,
            at(-5),
            Some(at(-30)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2026,
            "a",
            1,
            at(-5),
            Some(at(-30)),
            Some("math"),
            Some("t2"),
        ),
        tracker(
            "u1",
            2026,
            "c",
            2,
            at(-10),
            Some(at(-30)),
            Some("phys"),
            Some("t3"),
        ),
        tracker("u1", 2026, "d", 2, at(0), Some(at(-30)), None, None),
        tracker(
            "u1",
            2026,
            "e",
            3,
            at(5),
            Some(at(-30)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u2",
            2026,
            "a",
            1,
            at(-50),
            Some(at(-60)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2025,
            "z",
            1,
            at(-50),
            Some(at(-60)),
            Some("math"),
            Some("t1"),
        ),
    ];
    persist(s, &ts).await;
    let (u, se) = (user("u1"), season(2026));
    let all = DueFilter::default();
    let due = s
        .trackers
        .due_trackers(&u, &se, &all, t0(), 10)
        .await
        .expect("due");
    assert_eq!(qids(&due), vec!["c", "a", "b", "d"]);
    let due2 = s
        .trackers
        .due_trackers(&u, &se, &all, t0(), 2)
        .await
        .expect("due");
    assert_eq!(qids(&due2), vec!["c", "a"]);
    let math = DueFilter {
        subject: Some(subject("math")),
        topic: None,
    };
    assert_eq!(
        qids(
            &s.trackers
                .due_trackers(&u, &se, &math, t0(), 10)
                .await
                .expect("due")
        ),
        vec!["a", "b"]
    );
    let t1 = DueFilter {
        subject: None,
        topic: Some(topic("t1")),
    };
    assert_eq!(
        qids(
            &s.trackers
                .due_trackers(&u, &se, &t1, t0(), 10)
                .await
                .expect("due")
        ),
        vec!["b"]
    );
    assert_eq!(
        s.trackers
            .count_due(&u, &se, &all, t0())
            .await
            .expect("count"),
        4
    );
    assert_eq!(
        s.trackers
            .count_due(&u, &se, &math, t0())
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        s.trackers
            .count_due(&u, &se, &all, at(10))
            .await
            .expect("count"),
        5
    );
    let by = s
        .trackers
        .due_counts_by_subject(&u, &se, t0())
        .await
        .expect("by subject");
    assert_eq!(
        by,
        vec![
            (None, 1),
            (Some(subject("math")), 2),
            (Some(subject("phys")), 1)
        ]
    );
    assert_eq!(
        s.trackers
            .count_topic(&u, &se, &topic("t1"))
            .await
            .expect("topic"),
        2
    );
    assert_eq!(
        s.trackers.all_trackers(&u, &se).await.expect("all").len(),
        5
    );
    assert!(
        s.trackers
            .due_trackers(&user("nobody"), &se, &all, t0(), 10)
            .await
            .expect("due")
            .is_empty()
    );
}

/// Topic candidates: `new` bucket first, then due, then not reviewed since
/// the day start; by last review (never first), then question id.
pub async fn topic_candidate_order(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let day_start = at(-2);
    let tp = Some("t1");
    let ts = vec![
        // new bucket (ladder level 1), one never reviewed
        tracker("u1", 2026, "n2", 1, at(50), Some(at(-40)), None, tp),
        tracker("u1", 2026, "n1", 1, at(50), Some(at(-1)), None, tp),
        tracker("u1", 2026, "n0", 1, at(50), None, None, tp),
        // due
        tracker("u1", 2026, "d1", 2, at(-1), Some(at(-20)), None, tp),
        tracker("u1", 2026, "d2", 3, at(-3), Some(at(-30)), None, tp),
        // stale (not due, reviewed before day start)
        tracker("u1", 2026, "s1", 3, at(30), Some(at(-10)), None, tp),
        // fresh and not due: excluded
        tracker("u1", 2026, "f1", 3, at(30), Some(at(-1)), None, tp),
        // other topic
        tracker("u1", 2026, "x1", 1, at(-1), None, None, Some("t2")),
    ];
    persist(s, &ts).await;
    let c = s
        .trackers
        .topic_candidates(
            &user("u1"),
            &season(2026),
            &topic("t1"),
            t0(),
            day_start,
            10,
        )
        .await
        .expect("candidates");
    assert_eq!(qids(&c), vec!["n0", "n2", "n1", "d2", "d1", "s1"]);
    let c = s
        .trackers
        .topic_candidates(&user("u1"), &season(2026), &topic("t1"), t0(), day_start, 4)
        .await
        .expect("candidates");
    assert_eq!(qids(&c), vec!["n0", "n2", "n1", "d2"]);
    let r1 = s
        .trackers
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 4, 42)
        .await
        .expect("random");
    let r2 = s
        .trackers
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 4, 42)
        .await
        .expect("random");
    assert_eq!(r1, r2);
    assert_eq!(r1.len(), 4);
    assert!(r1.iter().all(|t| t.topic == Some(topic("t1"))));
    let all = s
        .trackers
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 100, 7)
        .await
        .expect("random");
    assert_eq!(all.len(), 7);
}

/// Mastery counts per bucket, with season and subject filters; FSRS states
/// bucket by phase and stability.
pub async fn mastery_counts(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut fsrs_mature = tracker("u1", 2026, "f1", 0, at(1), Some(at(0)), Some("math"), None);
    fsrs_mature.state.kind = SchedulerKind::Fsrs6;
    fsrs_mature.state.phase = Phase::Review;
    fsrs_mature.state.stability = 30.0;
    let mut fsrs_learning = fsrs_mature.clone();
    fsrs_learning.key.question = q("f2");
    fsrs_learning.state.phase = Phase::Learning;
    let ts = vec![
        tracker("u1", 2026, "a", 1, at(1), Some(at(0)), Some("math"), None),
        tracker("u1", 2026, "b", 2, at(1), Some(at(0)), Some("math"), None),
        tracker("u1", 2026, "c", 3, at(1), Some(at(0)), Some("phys"), None),
        tracker("u1", 2026, "d", 4, at(1), Some(at(0)), None, None),
        tracker("u1", 2026, "e", 0, at(1), None, None, None),
        tracker("u1", 2025, "a", 1, at(1), Some(at(0)), Some("math"), None),
        tracker("u2", 2026, "a", 1, at(1), Some(at(0)), Some("math"), None),
        fsrs_mature,
        fsrs_learning,
    ];
    persist(s, &ts).await;
    let c = s
        .trackers
        .mastery_counts(&user("u1"), Some(&season(2026)), None)
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 2,
            learning: 1,
            mature: 3
        }
    );
    let c = s
        .trackers
        .mastery_counts(&user("u1"), None, None)
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 3,
            learning: 1,
            mature: 3
        }
    );
    let c = s
        .trackers
        .mastery_counts(&user("u1"), Some(&season(2026)), Some(&subject("math")))
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 2,
            learning: 1,
            mature: 1
        }
    );
    assert_eq!(
        s.trackers
            .mastery_counts(&user("nobody"), None, None)
            .await
            .expect("m"),
        MasteryCounts::default()
    );
}
