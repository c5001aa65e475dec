//! Conformance suite of [`ProfileStore`](memora_core::ports::ProfileStore): profiles round-trip, bulk reads
//! keep the asked order, upserts never write the XP total.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use chrono::Duration;
use memora_core::domain::*;
use memora_core::ids::*;

use super::store::*;

/// Profiles in bulk keep the asked order; a pending time-zone change
/// round-trips; upserts never touch total XP.
pub async fn profiles_round_trip(s: &Stores) {
    for n in ["b", "a"] {
        let mut prof = PlayerProfile::new(user(n), format!("User {n}"));
        prof.grade = Some(GradeId::new("g12").expect("grade"));
        prof.season = Some(season(2026));
        s.profiles.upsert_profile(&prof).await.expect("upsert");
    }
    let got = s
        .profiles
        .get_profiles(&[user("a"), user("zz"), user("b")])
        .await
        .expect("profiles");
    assert_eq!(
        got.iter().map(|x| x.user.to_string()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(got[0].total_xp, 0);
    assert_eq!(got[0].grade, Some(GradeId::new("g12").expect("grade")));
    assert_eq!(s.profiles.get_profile(&user("zz")).await.expect("p"), None);
    // A pending time-zone change round-trips (microseconds included) and
    // can be cleared; an upsert never changes total_xp.
    let mut prof = s
        .profiles
        .get_profile(&user("a"))
        .await
        .expect("profile")
        .expect("exists");
    prof.time_zone = "Europe/Berlin".to_owned();
    prof.pending_zone = Some(PendingZone {
        time_zone: "Asia/Amman".to_owned(),
        rollover_hour: 23,
        effective_at: at(5) + Duration::microseconds(123_456),
    });
    prof.total_xp = 999;
    s.profiles.upsert_profile(&prof).await.expect("upsert");
    let got = s
        .profiles
        .get_profile(&user("a"))
        .await
        .expect("profile")
        .expect("exists");
    assert_eq!(got.pending_zone, prof.pending_zone);
    assert_eq!(got.time_zone, "Europe/Berlin");
    assert_eq!(got.total_xp, 0, "upsert_profile never writes total_xp");
    assert_eq!(
        s.profiles
            .get_profiles(&[user("a")])
            .await
            .expect("profiles")[0]
            .pending_zone,
        prof.pending_zone
    );
    prof.pending_zone = None;
    s.profiles.upsert_profile(&prof).await.expect("upsert");
    assert_eq!(
        s.profiles
            .get_profile(&user("a"))
            .await
            .expect("profile")
            .expect("exists")
            .pending_zone,
        None
    );
}
