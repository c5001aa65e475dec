//! The evaluator on the real py-fsrs review log (data/ in the repository): FSRS-6
//! fitted per fold must meet the fsrs 6.6.2 anchors of srs-algorithms.md §4.3.

use memora_core::srs::evaluate::evaluate_revlog;
use memora_core::srs::optimizer::FitConfig;
use memora_core::srs::revlog::parse_revlog_csv;

const FILE: &str = "review_logs_josh_1711744352250_to_1728234780857.csv";

#[test]
fn josh_revlog_meets_the_fsrs_anchors() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/py-fsrs-josh-revlog")
        .join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "review log missing at {}",
            path.display()
        );
        eprintln!("SKIPPED: review log not found at {}", path.display());
        return;
    };
    let entries = parse_revlog_csv(&text).unwrap();
    assert_eq!(entries.len(), 12_580);
    let report = evaluate_revlog(&entries, 0, 4, &FitConfig::default());
    let row = |name: &str| {
        report
            .rows
            .iter()
            .find(|r| r.model == name)
            .unwrap_or_else(|| panic!("no row {name} in\n{report}"))
    };
    let fitted = row("FSRS-6 fitted");
    let default = row("FSRS-6 default");
    assert_eq!(fitted.n, 5230);
    assert!(fitted.log_loss <= 0.4416, "{report}");
    assert!(fitted.rmse_bins <= 0.0518, "{report}");
    assert!(default.log_loss <= 0.4422 + 1e-4, "{report}");
    assert!(default.rmse_bins <= 0.0684 + 1e-4, "{report}");
    assert!(fitted.log_loss < row("SM-2").log_loss);
    assert!(fitted.log_loss < row("AVG").log_loss);
}
