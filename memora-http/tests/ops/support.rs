//! Shared plumbing: the binary as a child process (with captured output and
//! a hard timeout), private databases, a private redis-server, a logged-in
//! HTTP client.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

/// Tests that start servers run one at a time (two shared cores).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Password of the demo accounts in these tests (passes the policy).
pub const DEMO_PASSWORD: &str = "Demo-Memora-2026!";

/// Skips (or fails under CI) with a visible notice.
pub fn skip(why: &str) -> Option<()> {
    if std::env::var_os("CI").is_some() {
        panic!("required service unavailable under CI: {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// A free loopback port below the ephemeral range (see
/// [`memora_tests::free_port_with`]).
pub use memora_tests::free_port;

/// Environment variables the binary reads; removed so a developer's shell
/// cannot change what a test sees.
const MEMORA_VARS: &[&str] = &[
    "MEMORA_BIND",
    "MEMORA_DATABASE_URL",
    "MEMORA_REDIS_URL",
    "MEMORA_REDIS_CLUSTER_NODES",
    "MEMORA_REDIS_NAMESPACE",
    "MEMORA_DB_POOL_SIZE",
    "MEMORA_DEMO_PASSWORD",
    "MEMORA_NEW_USER_PASSWORD",
    "MEMORA_LOG_FORMAT",
    "MEMORA_METRICS_TOKEN",
    "MEMORA_METRICS_BIND",
    "MEMORA_SECURE_COOKIES",
    "MEMORA_QUEUE_RECLAIM_IDLE_MS",
    "RUST_LOG",
];

/// The `memora` binary with a clean environment (for MEMORA_* variables).
pub fn memora() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memora"));
    for v in MEMORA_VARS {
        c.env_remove(v);
    }
    c
}

/// What a finished command did.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `memora args…` with `env`, feeding `stdin`, killed after 60 s.
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = memora();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn memora");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let deadline = start + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("memora {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// The admin URL of the test PostgreSQL.
pub fn admin_url() -> String {
    std::env::var("MEMORA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url` with another database name.
pub fn url_for(db: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{db}")
}

/// A private, empty database in the test PostgreSQL, dropped at the end.
pub struct Db {
    pub name: String,
    pub url: String,
}

impl Db {
    pub async fn create() -> Option<Db> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                skip(&format!("PostgreSQL unreachable at {admin}: {e}"))?;
                return None;
            }
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "memora_ops_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await
            .expect("drop");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        Some(Db {
            url: url_for(&name),
            name,
        })
    }

    /// One value of a query returning a count.
    pub async fn count(&self, sql: &str, arg: &str) -> i64 {
        let mut c = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect");
        sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&mut c)
            .await
            .expect("count")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A private redis-server on a loopback port, started on demand.
pub struct Redis {
    pub port: u16,
    pub password: &'static str,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Picks a port without starting anything (Redis is "down").
    pub fn reserve() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            skip("redis-server is not installed")?;
        }
        let dir = std::env::temp_dir().join(format!("memora-ops-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        Some(Redis {
            port: free_port(),
            password: "ops-redis-secret",
            dir,
            child: None,
        })
    }

    /// The URL the server is given (with the password).
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// Starts redis-server (AOF on, as the README asks) and waits for it.
    pub fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--requirepass", self.password, "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `memora serve` as a child process; stdout and stderr are collected.
pub struct Server {
    pub port: u16,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `env` (plus MEMORA_BIND) and waits until
    /// `/healthz` answers.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut child = memora()
            .arg("serve")
            .envs(env.iter().copied())
            .env("MEMORA_BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn memora serve");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let mut server = Server {
            port,
            child,
            output,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", server.base())).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("memora serve exited ({status}):\n{}", server.output());
            }
            assert!(
                Instant::now() < deadline,
                "memora serve did not answer within 60 s:\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until the output contains `needle`.
    pub async fn wait_for_output(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let out = self.output();
            if out.contains(needle) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the server output within {within:?}:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cookie session with its CSRF token.
pub struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Session {
    pub async fn login(base: &str, user: &str, password: &str) -> Session {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let resp = http
            .post(format!("{base}/api/method/login"))
            .form(&[("usr", user), ("pwd", password)])
            .send()
            .await
            .expect("login");
        assert!(
            resp.status().is_success(),
            "login {user}: {}",
            resp.status()
        );
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let csrf = resp
            .headers()
            .get("x-frappe-csrf-token")
            .and_then(|v| v.to_str().ok())
            .expect("CSRF header")
            .to_owned();
        Session {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        }
    }

    /// POSTs `memora.api.<method>`; returns status and body.
    pub async fn call(&self, method: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/method/memora.api.{method}", self.base))
            .header("cookie", &self.cookie)
            .header("x-frappe-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// [`Session::call`] that must succeed; returns `message`.
    pub async fn ok(&self, method: &str, body: Value) -> Value {
        let (s, v) = self.call(method, body).await;
        assert_eq!(s, 200, "{method}: {v}");
        v["message"].clone()
    }
}
