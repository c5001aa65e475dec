//! Conformance suite of [`SeasonScanStore`](memora_core::ports::SeasonScanStore): keyset pages over a whole
//! season and the deterministic, bounded sample.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use std::collections::HashSet;

use memora_core::domain::*;

use super::store::*;

/// Keyset scan: pages ordered by (user, question), strictly after the
/// cursor, covering the season exactly once.
pub async fn scan_season_keyset(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for u in ["u3", "u1", "u2"] {
        for qq in ["e", "a", "c", "b", "d"] {
            ts.push(tracker(u, 2026, qq, 2, at(1), Some(at(0)), None, None));
        }
    }
    ts.push(tracker("u0", 2025, "a", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut after: Option<TrackerKey> = None;
    loop {
        let page = s
            .scans
            .scan_season(&season(2026), after.as_ref(), 4)
            .await
            .expect("scan");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|t| t.key.clone());
        seen.extend(
            page.iter()
                .map(|t| (t.key.user.to_string(), t.key.question.to_string())),
        );
    }
    let mut expected: Vec<(String, String)> = ts
        .iter()
        .filter(|t| t.key.season == season(2026))
        .map(|t| (t.key.user.to_string(), t.key.question.to_string()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(
        s.scans
            .scan_season(&season(2031), None, 10)
            .await
            .expect("scan")
            .is_empty()
    );
}

/// Sampling: distinct rows of the season, deterministic per seed, never
/// more than asked.
pub async fn sample_is_deterministic(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for i in 0..30 {
        ts.push(tracker(
            &format!("u{}", i % 3),
            2026,
            &format!("q{i:02}"),
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        ));
    }
    ts.push(tracker("u0", 2025, "zz", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let a = s
        .scans
        .sample_trackers(&season(2026), 5, 11)
        .await
        .expect("sample");
    let b = s
        .scans
        .sample_trackers(&season(2026), 5, 11)
        .await
        .expect("sample");
    assert_eq!(a.len(), 5);
    assert_eq!(a, b);
    let keys: HashSet<_> = a.iter().map(|t| t.key.clone()).collect();
    assert_eq!(keys.len(), 5);
    assert!(a.iter().all(|t| t.key.season == season(2026)));
    let all = s
        .scans
        .sample_trackers(&season(2026), 100, 3)
        .await
        .expect("sample");
    assert_eq!(all.len(), 30);
    assert!(
        s.scans
            .sample_trackers(&season(2031), 5, 3)
            .await
            .expect("sample")
            .is_empty()
    );
}

/// The console's season-wide aggregates: due counts per day and subject
/// (overdue on the first day, nothing at or after `until`), intervals by
/// bucket, answers per day with the correct ones.
pub async fn season_aggregates(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    // due -30 h (overdue), +2 h, +26 h, +200 h (outside the window); levels
    // give scheduled_days 0, 2, 4, 20 (level × 2).
    for (i, (due_h, level, subj)) in [
        (-30, 0u8, Some("math")),
        (2, 1, Some("math")),
        (2, 2, None),
        (26, 1, Some("bio")),
        (200, 10, Some("math")),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = tracker(
            "u1",
            2026,
            &format!("q{i}"),
            level,
            at(due_h),
            Some(at(-40)),
            subj,
            None,
        );
        t.state.last_review = Some(at(-40 + i as i64));
        ts.push(t);
    }
    ts.push(tracker(
        "u9",
        2025,
        "q0",
        1,
        at(2),
        Some(at(-1)),
        Some("math"),
        None,
    ));
    let mut records: Vec<ReviewRecord> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| record(t, &format!("agg-{i}")))
        .collect();
    records[1].log.is_correct = false;
    s.trackers.persist_batch(&records).await.expect("persist");
    let from = at(0);
    let day0 = from.date_naive();
    let forecast = s
        .scans
        .due_forecast(&season(2026), from, at(48))
        .await
        .expect("forecast");
    let subj = |x: &str| Some(memora_core::ids::SubjectId::new(x).expect("subject"));
    let d = |n: i64| (from + chrono::Duration::hours(n)).date_naive();
    // Overdue counts on `from`'s day; +2 h may share it (counts add up).
    let mut want_map = std::collections::BTreeMap::new();
    for (day, sb, n) in [
        (day0, subj("math"), 1u64),
        (d(2), None, 1),
        (d(2), subj("math"), 1),
        (d(26), subj("bio"), 1),
    ] {
        *want_map.entry((day, sb)).or_insert(0u64) += n;
    }
    let got: std::collections::BTreeMap<_, _> = forecast
        .iter()
        .map(|(day, sb, n)| ((*day, sb.clone()), *n))
        .collect();
    assert_eq!(got, want_map, "{forecast:?}");
    let days: Vec<_> = forecast
        .iter()
        .map(|(day, sb, _)| (*day, sb.is_some()))
        .collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(days, sorted, "ordered by day, subject-less first");
    // Intervals: 0, 2, 4, 2, 20 days for the season.
    let hist = s
        .scans
        .interval_histogram(&season(2026), &[1, 3, 7])
        .await
        .expect("intervals");
    assert_eq!(hist, vec![1, 2, 1, 1]);
    // Answers per day (the log's reviewed_at is each tracker's last_review).
    let per_day = s
        .scans
        .reviews_per_day(&season(2026), at(-100), at(0))
        .await
        .expect("per day");
    let total: u64 = per_day.iter().map(|(_, n, _)| n).sum();
    let correct: u64 = per_day.iter().map(|(_, _, c)| c).sum();
    assert_eq!((total, correct), (5, 4), "{per_day:?}");
    assert!(per_day.windows(2).all(|w| w[0].0 < w[1].0));
    let none = s
        .scans
        .reviews_per_day(&season(2026), at(0), at(10))
        .await
        .expect("per day");
    assert!(none.is_empty());
    assert!(
        s.scans
            .due_forecast(&season(2031), from, at(48))
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        s.scans
            .interval_histogram(&season(2031), &[1])
            .await
            .expect("none"),
        vec![0, 0]
    );
}
