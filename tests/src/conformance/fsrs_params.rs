//! Conformance suite of [`FsrsParamStore`](memora_core::ports::FsrsParamStore): per-learner parameters
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

/// Fit quality: recorded only for learners with stored parameters, the
/// latest fit wins, and the summary counts and averages what is recorded.
pub async fn fit_quality_is_recorded_and_summarised(s: &Stores) {
    use memora_core::ports::{FitQuality, FitQualitySummary};
    assert_eq!(
        s.fsrs.fit_quality_summary().await.expect("summary"),
        FitQualitySummary::default()
    );
    let q = |before: f64, after: f64, fell_back: bool| FitQuality {
        loss_before: Some(before),
        loss_after: Some(after),
        fell_back,
    };
    // No parameters stored: nothing recorded.
    s.fsrs
        .record_fit_quality(&user("ghost"), &q(1.0, 0.5, false))
        .await
        .expect("record");
    for u in ["a", "b", "c"] {
        s.fsrs
            .set_fsrs_params(&user(u), &[0.5; 21], 100)
            .await
            .expect("set");
    }
    s.fsrs
        .record_fit_quality(&user("a"), &q(0.5, 0.75, false))
        .await
        .expect("record");
    // The latest fit of a learner wins.
    s.fsrs
        .record_fit_quality(&user("a"), &q(0.5, 0.25, false))
        .await
        .expect("record");
    s.fsrs
        .record_fit_quality(&user("b"), &q(0.75, 0.75, true))
        .await
        .expect("record");
    // A fit with nothing to evaluate counts, without losses.
    s.fsrs
        .record_fit_quality(
            &user("c"),
            &FitQuality {
                loss_before: None,
                loss_after: None,
                fell_back: true,
            },
        )
        .await
        .expect("record");
    let got = s.fsrs.fit_quality_summary().await.expect("summary");
    assert_eq!((got.fitted, got.fell_back, got.improved), (3, 2, 1));
    assert_eq!(got.mean_loss_before, Some(0.625));
    assert_eq!(got.mean_loss_after, Some(0.5));
}
