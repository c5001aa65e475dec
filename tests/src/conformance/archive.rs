//! Conformance suite of [`ArchiveStore`]: atomic season archival, retention
//! flagging, deletion of flagged rows and the counts around them.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use memora_core::domain::*;
use memora_core::ports::*;

use super::store::*;

/// Archive moves a whole season, flagging and deletion follow the
/// retention rules, counts report every stage.
pub async fn archive_lifecycle(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for i in 0..6 {
        ts.push(tracker(
            "u1",
            2025,
            &format!("q{i}"),
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        ));
    }
    ts.push(tracker("u1", 2026, "q0", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let n = s
        .archive
        .archive_season(&season(2025), at(0))
        .await
        .expect("archive");
    assert_eq!(n, 6);
    assert_eq!(s.scans.count_season(&season(2025)).await.expect("count"), 0);
    assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 1);
    assert_eq!(
        s.archive
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts {
            active_records: 0,
            archived_records: 6,
            eligible_for_deletion: 0
        }
    );
    assert_eq!(
        s.archive.flag_archived_before(at(0)).await.expect("flag"),
        0
    );
    assert_eq!(s.archive.delete_flagged(None).await.expect("delete"), 0);
    assert_eq!(
        s.archive.flag_archived_before(at(1)).await.expect("flag"),
        6
    );
    assert_eq!(
        s.archive.flag_archived_before(at(1)).await.expect("flag"),
        0
    );
    assert_eq!(
        s.archive
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts {
            active_records: 0,
            archived_records: 6,
            eligible_for_deletion: 6
        }
    );
    assert_eq!(
        s.archive
            .delete_flagged(Some(&season(2026)))
            .await
            .expect("delete"),
        0
    );
    assert_eq!(
        s.archive
            .delete_flagged(Some(&season(2025)))
            .await
            .expect("delete"),
        6
    );
    assert_eq!(
        s.archive
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts::default()
    );
    // The season stays writable after archival.
    persist(
        s,
        &[tracker(
            "u1",
            2025,
            "late",
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        )],
    )
    .await;
    assert_eq!(s.scans.count_season(&season(2025)).await.expect("count"), 1);
    assert!(matches!(
        s.archive.archive_season(&season(2031), at(0)).await,
        Err(PortError::Rejected(_))
    ));
}
