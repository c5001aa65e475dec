//! The README walkthrough runs as written: `scripts/walkthrough.sh` extracts
//! the block from README.md and runs it with bash and curl against an
//! embedded server started with the password the block exports.

use std::process::Command;

use crate::support::{DEMO_PASSWORD, SERIAL, Server, skip};

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let _g = SERIAL.lock().await;
    for tool in ["bash", "curl"] {
        if Command::new(tool).arg("--version").output().is_err() {
            let _ = skip(&format!("{tool} is not installed"));
            return;
        }
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README");
    assert!(
        readme.contains(&format!("export MEMORA_DEMO_PASSWORD='{DEMO_PASSWORD}'")),
        "the README exports the password this test starts the server with"
    );
    let server = Server::start(&[("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD)]).await;
    let base = server.base();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(format!("{root}/scripts/walkthrough.sh"))
            .arg(base)
            .env_remove("MEMORA_DEMO_PASSWORD")
            .output()
            .expect("run walkthrough.sh")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walkthrough failed:\n{stdout}\n{stderr}\nserver:\n{}",
        server.output()
    );
    assert!(stdout.contains("walkthrough OK"), "{stdout}");
}
