//! A throwaway PostgreSQL primary and streaming replica for tests
//! ([`LocalReplica`]): `initdb` into a temporary directory, the primary on
//! a free loopback port with `wal_level = replica`, the replica made by
//! `pg_basebackup -R` and started on another free port, both stopped and
//! deleted on drop. Self-contained: the system PostgreSQL is never touched.
//!
//! The server binaries are looked up in `MEMORA_PG_BIN_DIR`, then on
//! `PATH`, then under `/usr/lib/postgresql/<version>/bin` (newest first).
//! Missing binaries skip the test with a notice, or fail it when `CI` is
//! set. PostgreSQL refuses to run as root, so as root every server command
//! runs as the `postgres` user (`runuser`).
//!
//! A watchdog shell process stops both servers and deletes the directory
//! if the test process dies without dropping the harness (a panic while
//! unwinding is still a drop; an abort or a `static` is not).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection;

/// Env var naming the directory of `initdb`, `pg_ctl` and `pg_basebackup`.
pub const PG_BIN_DIR_ENV: &str = "MEMORA_PG_BIN_DIR";

/// How commits on the primary wait for the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Asynchronous replication (the production shape): the replica lags,
    /// and its replay can be paused.
    Async,
    /// `synchronous_commit = remote_apply` with the replica as synchronous
    /// standby: a commit returns once the replica has replayed it, so the
    /// replica is never behind a completed write (used to run the store
    /// conformance suite with reads routed to the replica). Never pause the
    /// replay of such a pair: commits would wait for it.
    RemoteApply,
}

/// A running primary + streaming replica pair (see the module docs).
pub struct LocalReplica {
    root: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    primary_port: u16,
    replica_port: u16,
    watchdog: Mutex<Option<Child>>,
}

impl std::fmt::Debug for LocalReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalReplica")
            .field("root", &self.root)
            .field("primary_port", &self.primary_port)
            .field("replica_port", &self.replica_port)
            .finish()
    }
}

impl LocalReplica {
    /// Starts the pair and waits until the replica has replayed everything
    /// the primary wrote. `None` (after a printed notice) when the server
    /// binaries are missing; panics under `CI`, and on any failure once the
    /// binaries were found.
    pub async fn start(mode: Commit) -> Option<LocalReplica> {
        let bin = match find_bin_dir() {
            Some(b) => b,
            None => {
                return crate::skip_or_fail(&format!(
                    "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found: set {PG_BIN_DIR_ENV}"
                ));
            }
        };
        let as_postgres = is_root();
        if as_postgres && !user_exists("postgres") {
            return crate::skip_or_fail(
                "running as root and there is no `postgres` user to run PostgreSQL as",
            );
        }
        let pair = tokio::task::spawn_blocking(move || start_blocking(bin, as_postgres))
            .await
            .expect("starting PostgreSQL panicked");
        if mode == Commit::RemoteApply {
            let mut c = pair.connect_primary().await;
            for sql in [
                "ALTER SYSTEM SET synchronous_standby_names = '*'",
                "ALTER SYSTEM SET synchronous_commit = 'remote_apply'",
                "SELECT pg_reload_conf()",
            ] {
                sqlx::query(sql).execute(&mut c).await.expect(sql);
            }
            let _ = c.close().await;
            pair.poll("the replica to become the synchronous standby", || async {
                let mut c = pair.connect_primary().await;
                let sync: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync') \
                       AND current_setting('synchronous_commit') = 'remote_apply'",
                )
                .fetch_one(&mut c)
                .await
                .unwrap_or(false);
                let _ = c.close().await;
                sync
            })
            .await;
        }
        pair.wait_replayed().await;
        Some(pair)
    }

    /// URL of the primary's `postgres` database.
    pub fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }

    /// URL of the replica's `postgres` database.
    pub fn replica_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.replica_port
        )
    }

    async fn connect_primary(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.primary_url())
            .await
            .expect("connect to the test primary")
    }

    async fn connect_replica(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.replica_url())
            .await
            .expect("connect to the test replica")
    }

    /// Polls `ready` every 20 ms; panics (naming `what` and the server logs)
    /// if it is still false after 60 s — a wait for a state, never a timed
    /// assertion.
    async fn poll<F, Fut>(&self, what: &str, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..3000 {
            if ready().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gave up waiting for {what}\n{}", self.logs());
    }

    /// Waits until the replica has replayed all WAL the primary had written
    /// when this was called.
    pub async fn wait_replayed(&self) {
        let mut p = self.connect_primary().await;
        let target: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut p)
            .await
            .expect("primary LSN");
        let _ = p.close().await;
        self.poll("the replica to replay the primary's WAL", || async {
            let mut r = self.connect_replica().await;
            let done: bool = sqlx::query_scalar(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
            )
            .bind(&target)
            .fetch_one(&mut r)
            .await
            .unwrap_or(false);
            let _ = r.close().await;
            done
        })
        .await;
    }

    /// Pauses WAL replay on the replica (it keeps receiving, shows nothing
    /// new) and waits until the pause is in effect.
    pub async fn pause_replay(&self) {
        let mut r = self.connect_replica().await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut r)
            .await
            .expect("pause replay");
        let _ = r.close().await;
        self.poll("the replay pause", || async {
            let mut r = self.connect_replica().await;
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut r)
                .await
                .unwrap_or_default();
            let _ = r.close().await;
            state == "paused"
        })
        .await;
    }

    /// Resumes WAL replay on the replica.
    pub async fn resume_replay(&self) {
        let mut r = self.connect_replica().await;
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut r)
            .await
            .expect("resume replay");
        let _ = r.close().await;
    }

    /// Stops the replica (fast shutdown) and waits until it is down.
    pub fn stop_replica(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-D"], "replica")
            .expect("stop the replica");
    }

    /// The tail of both server logs (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["primary.log", "replica.log"] {
            let text = std::fs::read_to_string(self.root.join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            out.push_str(&format!("--- {name} (last lines) ---\n"));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn pg_ctl(&self, args: &[&str], data: &str) -> Result<(), String> {
        let dir = self.root.join(data);
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.push(dir.display().to_string());
        run(&self.bin, self.as_postgres, "pg_ctl", &all)
    }
}

impl Drop for LocalReplica {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-D"], "primary");
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-D"], "replica");
        if let Ok(mut w) = self.watchdog.lock() {
            if let Some(mut child) = w.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn start_blocking(bin: PathBuf, as_postgres: bool) -> LocalReplica {
    static N: AtomicU64 = AtomicU64::new(0);
    let root = std::env::temp_dir().join(format!(
        "memora-pg-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the harness directory");
    if as_postgres {
        run_plain("chown", &["postgres".into(), root.display().to_string()])
            .expect("chown the harness directory");
    }
    let pair = LocalReplica {
        primary_port: free_port(),
        replica_port: free_port(),
        watchdog: Mutex::new(None),
        root,
        bin,
        as_postgres,
    };
    // From here on the pair is dropped (servers stopped, directory removed)
    // if a step panics.
    pair.spawn_watchdog();
    let primary = pair.root.join("primary");
    let replica = pair.root.join("replica");
    let check = |r: Result<(), String>, what: &str| {
        if let Err(e) = r {
            panic!("{what} failed: {e}\n{}", pair.logs());
        }
    };
    check(
        run(
            &pair.bin,
            as_postgres,
            "initdb",
            &[
                "-D".into(),
                primary.display().to_string(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "--no-sync".into(),
                "-E".into(),
                "UTF8".into(),
                "--no-locale".into(),
            ],
        ),
        "initdb",
    );
    // initdb's pg_hba.conf with --auth=trust already admits replication
    // connections from 127.0.0.1.
    append(
        &primary.join("postgresql.conf"),
        &format!(
            "\n# memora test harness\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nwal_level = replica\nmax_wal_senders = 4\n\
             hot_standby = on\nhot_standby_feedback = on\nfsync = off\n\
             shared_buffers = 16MB\nmax_connections = 100\n",
            pair.primary_port,
            pair.root.display()
        ),
    );
    let log = |name: &str| pair.root.join(name).display().to_string();
    check(
        pair.pg_ctl(
            &["start", "-w", "-t", "60", "-l", &log("primary.log"), "-D"],
            "primary",
        ),
        "starting the primary",
    );
    check(
        run(
            &pair.bin,
            as_postgres,
            "pg_basebackup",
            &[
                "-h".into(),
                "127.0.0.1".into(),
                "-p".into(),
                pair.primary_port.to_string(),
                "-U".into(),
                "postgres".into(),
                "-D".into(),
                replica.display().to_string(),
                "-R".into(),
                "-X".into(),
                "stream".into(),
                "-c".into(),
                "fast".into(),
                "--no-sync".into(),
            ],
        ),
        "pg_basebackup",
    );
    // The copied configuration names the primary's port; the later line wins.
    append(
        &replica.join("postgresql.conf"),
        &format!("port = {}\n", pair.replica_port),
    );
    check(
        pair.pg_ctl(
            &["start", "-w", "-t", "60", "-l", &log("replica.log"), "-D"],
            "replica",
        ),
        "starting the replica",
    );
    pair
}

impl LocalReplica {
    /// A shell loop that stops both servers and removes the directory once
    /// this process is gone.
    fn spawn_watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let as_pg = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let stop = |data: &str| {
            format!(
                "{as_pg}'{}' stop -m immediate -D '{}' >/dev/null 2>&1",
                pg_ctl.display(),
                self.root.join(data).display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {}; {}; rm -rf '{}'",
            stop("primary"),
            stop("replica"),
            self.root.display(),
            pid = std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let (Ok(child), Ok(mut w)) = (child, self.watchdog.lock()) {
            *w = Some(child);
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs a PostgreSQL binary of `bin` (as `postgres` when `as_postgres`).
fn run(bin: &Path, as_postgres: bool, program: &str, args: &[String]) -> Result<(), String> {
    let exe = bin.join(program).display().to_string();
    if as_postgres {
        let mut all = vec!["-u".to_owned(), "postgres".to_owned(), "--".to_owned(), exe];
        all.extend(args.iter().cloned());
        run_plain("runuser", &all)
    } else {
        run_plain(&exe, args)
    }
}

fn run_plain(program: &str, args: &[String]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        // Never let a server inherit the test's output pipes: cargo waits
        // for them to close.
        .stdin(Stdio::null())
        // The `postgres` user may not be allowed into the test's directory.
        .current_dir("/")
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn has_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "pg_basebackup", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// `MEMORA_PG_BIN_DIR`, then `PATH`, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(PG_BIN_DIR_ENV) {
        let d = PathBuf::from(d);
        return has_tools(&d).then_some(d);
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has_tools(d)) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}
