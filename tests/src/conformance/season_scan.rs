//! Conformance suite of [`SeasonScanStore`]: keyset pages over a whole
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
