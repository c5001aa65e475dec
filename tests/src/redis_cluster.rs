//! A throwaway 3-master Redis Cluster for integration tests, started once
//! per test process on free loopback ports in a temporary directory.
//!
//! Teardown: a static's `Drop` never runs at process exit, so start-up also
//! spawns a small watchdog shell (`sh -c 'while kill -0 <test pid>; do sleep
//! 0.5; done; redis-cli -p … shutdown nosave; rm -rf <dir>'`). It outlives
//! the test process by design and stops the servers within half a second of
//! its exit — whether the tests passed, panicked, or the process was killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running test cluster.
#[derive(Debug)]
pub struct TestCluster {
    /// `redis://127.0.0.1:<port>` of each master.
    pub nodes: Vec<String>,
    /// Ports of the masters.
    pub ports: Vec<u16>,
    /// Working directory (configs, logs, pid files).
    pub dir: PathBuf,
}

static CLUSTER: OnceLock<Result<TestCluster, String>> = OnceLock::new();

/// Three distinct ports whose cluster-bus ports (+10000) are free too.
fn free_ports() -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let p = crate::free_port_with(&[10_000]).ok_or("no free loopback ports")?;
        if !out.contains(&p) {
            out.push(p);
            if out.len() == 3 {
                return Ok(out);
            }
        }
    }
    Err("no three distinct free loopback ports".into())
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out waiting for {what}"))
}

fn spawn_watchdog(ports: &[u16], dir: &Path) -> Result<(), String> {
    let shutdowns: String = ports
        .iter()
        .map(|p| format!("redis-cli -p {p} shutdown nosave >/dev/null 2>&1; "))
        .collect();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {shutdowns} rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("watchdog: {e}"))
}

fn start() -> Result<TestCluster, String> {
    run(Command::new("redis-server").arg("--version"))
        .map_err(|_| "redis-server not found on PATH".to_owned())?;
    let ports = free_ports()?;
    let dir = std::env::temp_dir().join(format!("memora-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // The watchdog first, so even a failed start-up is cleaned up.
    spawn_watchdog(&ports, &dir)?;
    for p in &ports {
        run(Command::new("redis-server")
            .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{p}.conf")))
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
            .arg("--pidfile")
            .arg(dir.join(format!("{p}.pid")))
            .arg("--logfile")
            .arg(dir.join(format!("{p}.log"))))?;
    }
    for p in &ports {
        wait_for(&format!("redis on {p}"), Duration::from_secs(10), || {
            run(Command::new("redis-cli").args(["-p", &p.to_string(), "ping"]))
                .is_ok_and(|o| o.contains("PONG"))
        })
        .map_err(|e| {
            let log = std::fs::read_to_string(dir.join(format!("{p}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            format!(
                "{e}; its log ends: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        })?;
    }
    let mut create = Command::new("redis-cli");
    create.arg("--cluster").arg("create");
    for p in &ports {
        create.arg(format!("127.0.0.1:{p}"));
    }
    create.args(["--cluster-replicas", "0", "--cluster-yes"]);
    run(&mut create)?;
    for p in &ports {
        wait_for("cluster_state:ok", Duration::from_secs(20), || {
            run(Command::new("redis-cli").args(["-p", &p.to_string(), "cluster", "info"]))
                .is_ok_and(|o| o.contains("cluster_state:ok"))
        })?;
    }
    Ok(TestCluster {
        nodes: ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect(),
        ports,
        dir,
    })
}

/// The shared cluster (started on first use), or skipped with a notice /
/// a panic under `CI` when it cannot be started.
pub fn cluster_or_skip() -> Option<&'static TestCluster> {
    match CLUSTER.get_or_init(start) {
        Ok(c) => Some(c),
        Err(e) => crate::skip_or_fail(&format!("Redis Cluster unavailable: {e}")),
    }
}
