//! Conformance suite of [`FsrsParamStore`]: per-learner parameters
//! round-trip, the latest write wins.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use super::store::*;

/// FSRS parameters: absent until set, the latest set wins (vector length
/// and fitted-on count included), independent of any profile row.
pub async fn fsrs_params_round_trip(s: &Stores) {
    assert_eq!(s.fsrs.fsrs_params(&user("a")).await.expect("params"), None);
    s.fsrs
        .set_fsrs_params(&user("a"), &[0.1, 1.5, 3.25], 400)
        .await
        .expect("set");
    assert_eq!(
        s.fsrs.fsrs_params(&user("a")).await.expect("params"),
        Some((vec![0.1, 1.5, 3.25], 400))
    );
    s.fsrs
        .set_fsrs_params(&user("a"), &[0.2, 1.5], 500)
        .await
        .expect("set");
    assert_eq!(
        s.fsrs.fsrs_params(&user("a")).await.expect("params"),
        Some((vec![0.2, 1.5], 500))
    );
    assert_eq!(s.fsrs.fsrs_params(&user("b")).await.expect("params"), None);
}
