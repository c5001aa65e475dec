use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

pub const PASSWORD: &str = "fault-test-password";

/// Skips (or fails under CI) with a visible notice.
pub fn skip(why: &str) -> Option<()> {
    if std::env::var_os("CI").is_some() {
        panic!("required service unavailable under CI: {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "memora-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private redis-server.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            skip("redis-server is not installed")?;
        }
        let mut r = Redis {
            port: free_port(),
            dir: scratch_dir("redis"),
            child: None,
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                self.dir.to_str().unwrap(),
            ])
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
        panic!("redis-server did not start on {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: the AOF already holds every write).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private database in the shared PostgreSQL.
pub struct Db {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl Db {
    pub async fn create() -> Option<Db> {
        let admin_url = std::env::var("MEMORA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                skip(&format!("PostgreSQL unreachable at {admin_url}: {e}"))?;
                unreachable!()
            }
        };
        let name = format!("memora_fault_{}_{}", std::process::id(), free_port());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Some(Db {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    pub async fn conn(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    /// Counts of review-log rows per given review id.
    pub async fn review_counts(&self, ids: &[String]) -> std::collections::HashMap<String, i64> {
        let mut c = self.conn().await;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT review_id, count(*) FROM review_log WHERE review_id = ANY($1) GROUP BY review_id",
        )
        .bind(ids)
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.into_iter().collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The `memora` binary as a child process.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

fn memora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memora"))
}

impl Server {
    pub fn env(db: &Db, redis: &Redis) -> Vec<(String, String)> {
        vec![
            ("MEMORA_DATABASE_URL".into(), db.url.clone()),
            ("MEMORA_REDIS_URL".into(), redis.url()),
            ("MEMORA_DEMO_PASSWORD".into(), PASSWORD.into()),
            ("MEMORA_QUEUE_RECLAIM_IDLE_MS".into(), "1500".into()),
            ("RUST_LOG".into(), "warn".into()),
        ]
    }

    /// Runs `memora seed-demo` against the database.
    pub fn seed(env: &[(String, String)]) {
        let out = memora()
            .arg("seed-demo")
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed-demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn start(env: Vec<(String, String)>) -> Server {
        let mut s = Server {
            port: free_port(),
            child: None,
            env,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let child = memora()
            .arg("serve")
            .envs(self.env.iter().cloned())
            .env("MEMORA_BIND", format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("memora did not become ready");
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no graceful shutdown, no drain.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A logged-in HTTP client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Client {
    pub async fn login(base: &str, user: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/api/method/login"))
            .form(&[("usr", user), ("pwd", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "login {user}: {}",
            resp.status()
        );
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Client {
            http,
            base: base.to_owned(),
            cookie,
        }
    }

    /// POSTs a method; returns status, body and the Retry-After header.
    pub async fn call(
        &self,
        method: &str,
        body: Value,
    ) -> Result<(u16, Value, Option<String>), reqwest::Error> {
        let resp = self
            .http
            .post(format!("{}/api/method/memora.api.{method}", self.base))
            .header("cookie", &self.cookie)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, v, retry))
    }

    pub async fn ok(&self, method: &str, body: Value) -> Value {
        let (s, v, _) = self.call(method, body).await.unwrap();
        assert_eq!(s, 200, "{method}: {v}");
        v["message"].clone()
    }

    /// Due question ids (normal mode, or whatever the server serves).
    pub async fn due_ids(&self, limit: usize) -> Vec<String> {
        let m = self
            .ok("reviews.get_review_session", json!({"limit": limit}))
            .await;
        m["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Polls the admin cache status until the persistence queue is drained.
pub async fn wait_drained(admin: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, v, _)) = admin.call("srs.get_cache_status", json!({})).await {
            if v["message"]["queue_depth"].as_u64() == Some(0) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("persistence queue did not drain");
}
