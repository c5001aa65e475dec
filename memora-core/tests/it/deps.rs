//! The core must stay pure: no database, cache, HTTP or runtime crates in its
//! normal dependency tree.

use std::process::Command;

#[test]
fn core_has_no_io_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "memora-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"memora-core"), "unexpected output: {tree}");
    for forbidden in [
        "sqlx",
        "sqlx-core",
        "redis",
        "axum",
        "axum-core",
        "hyper",
        "tower",
        "tower-http",
        "tokio",
        "mio",
        "reqwest",
    ] {
        assert!(
            !crates.contains(&forbidden),
            "memora-core depends on {forbidden}:\n{tree}"
        );
    }
}
