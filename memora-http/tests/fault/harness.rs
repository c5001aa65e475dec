use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

/// Password of the demo accounts (`seed-demo`).
pub const PASSWORD: &str = "fault-test-password";
/// Password of the learners the tests create (passes the strength policy).
pub const LEARNER_PASSWORD: &str = "fault-Test-pass-42!";
pub use memora_core::demo::{DEMO_ADMIN, DEMO_STUDENT};

/// The tests spawn servers and stop services: one at a time, across every
/// module of this binary (two shared cores; a stopped Redis must affect only
/// the test that stopped it).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

    /// Counts of review-log rows per given stored review id (see
    /// [`stored_review_id`]).
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

    /// Review-log rows of one learner's card.
    pub async fn log_rows(&self, user: &str, question: &str) -> i64 {
        let mut c = self.conn().await;
        sqlx::query_scalar(
            "SELECT count(*) FROM review_log WHERE user_id = $1 AND question_id = $2",
        )
        .bind(user)
        .bind(question)
        .fetch_one(&mut c)
        .await
        .unwrap()
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

/// The `memora` binary as a child process. Its stdout and stderr go to a
/// log file; when the test fails (the server is dropped while panicking) the
/// tail of that log is printed, so a failure shows what each process said.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

/// The `memora` binary, without the `MEMORA_*` variables of the developer's
/// shell (a test sets exactly the ones it means).
pub fn memora() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memora"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MEMORA_") {
            c.env_remove(k);
        }
    }
    c
}

/// Lines of a server's log printed when its test fails.
const LOG_TAIL_LINES: usize = 80;

impl Server {
    /// Database settings and the demo password, without any Redis.
    pub fn base_env(db: &Db) -> Vec<(String, String)> {
        vec![
            ("MEMORA_DATABASE_URL".into(), db.url.clone()),
            ("MEMORA_DEMO_PASSWORD".into(), PASSWORD.into()),
            ("MEMORA_QUEUE_RECLAIM_IDLE_MS".into(), "1500".into()),
            // Logs go to a file that is printed: no terminal colours.
            ("NO_COLOR".into(), "1".into()),
            (
                "RUST_LOG".into(),
                std::env::var("MEMORA_FAULT_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
    }

    pub fn env(db: &Db, redis: &Redis) -> Vec<(String, String)> {
        let mut env = Server::base_env(db);
        env.push(("MEMORA_REDIS_URL".into(), redis.url()));
        env
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
            dir: scratch_dir("server"),
        };
        s.spawn().await;
        s
    }

    /// Where the process's stdout and stderr go (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("memora.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = memora()
            .arg("serve")
            .envs(self.env.iter().cloned())
            .env("MEMORA_BIND", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "memora serve on port {} exited during start-up: {status}",
                    self.port
                );
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("memora serve on port {} did not become ready", self.port);
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
        if std::thread::panicking() {
            eprintln!(
                "----- memora serve on port {} (last {LOG_TAIL_LINES} lines of {}) -----\n{}\n----- end of log -----",
                self.port,
                self.log_path().display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A logged-in HTTP client (cookie session + its CSRF token).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
    /// The token login returned; cookie sessions must send it on every
    /// state-changing call (sent on every call: harmless on reads).
    csrf: String,
    user: String,
}

impl Client {
    /// Logs in a demo account (password from `seed-demo`).
    pub async fn login(base: &str, user: &str) -> Client {
        Client::login_with(base, user, PASSWORD).await
    }

    pub async fn login_with(base: &str, user: &str, password: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/api/method/login"))
            .form(&[("usr", user), ("pwd", password)])
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
        let header = resp
            .headers()
            .get(memora_http::CSRF_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap();
        let csrf = body["csrf_token"]
            .as_str()
            .expect("login returns csrf_token")
            .to_owned();
        assert_eq!(header.as_deref(), Some(csrf.as_str()), "CSRF header = body");
        let sid = cookie.strip_prefix("sid=").unwrap();
        assert_eq!(csrf, memora_http::csrf_token(sid));
        Client {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
            user: user.to_owned(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The same session (cookie and CSRF token) sent to another server.
    pub fn on(&self, base: &str) -> Client {
        Client {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    /// The server this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs `/api/method/<path>` (any method path, e.g. `logout`);
    /// returns status and body.
    pub async fn post_path(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        let resp = self
            .http
            .post(format!("{}/api/method/{path}", self.base))
            .header("cookie", &self.cookie)
            .header("X-Frappe-CSRF-Token", &self.csrf)
            .json(&json!({}))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, v))
    }

    /// The review id the server stores for this learner's client id.
    pub fn stored_id(&self, client_id: &str) -> String {
        stored_review_id(&self.user, client_id)
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
            .header("X-Frappe-CSRF-Token", &self.csrf)
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

    /// Fetches a review session (which records its cards as served to this
    /// learner) and returns the served question ids.
    pub async fn serve_ids(&self, limit: usize) -> Vec<String> {
        let m = self
            .ok("reviews.get_review_session", json!({"limit": limit}))
            .await;
        question_ids(&m)
    }
}

/// The question ids of a `get_review_session` message.
pub fn question_ids(session: &Value) -> Vec<String> {
    session["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A submission answering each of `ids` (served cards) exactly once, with
/// fresh client review ids `<tag>-<i>`; returns it and those ids.
pub fn answers(ids: &[String], tag: &str) -> (Value, Vec<String>) {
    let mut review_ids = Vec::new();
    let list: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let rid = format!("{tag}-{i}");
            review_ids.push(rid.clone());
            json!({"question_id": q, "quality": 3 + (i % 3), "response_time_ms": 2500, "review_id": rid})
        })
        .collect();
    (json!({"responses": list}), review_ids)
}

/// The stored (learner-scoped) form of a client review id.
pub fn stored_review_id(user: &str, client_id: &str) -> String {
    let user = memora_core::ids::UserId::new(user).unwrap();
    let rid = memora_core::ids::ReviewId::new(client_id).unwrap();
    memora_core::services::integrity::scoped_review_id(&user, &rid)
        .unwrap()
        .as_str()
        .to_owned()
}

/// Creates `n` students (`<prefix>-<i>@fault.memora`) as the admin, each
/// given a copy of the demo student's due cards of the active season, and
/// logs each in. Every learner starts with the same due set, so rounds of
/// different learners are alike.
pub async fn learners(base: &str, admin: &Client, db: &Db, prefix: &str, n: usize) -> Vec<Client> {
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let user = format!("{prefix}-{i}@fault.memora");
        admin
            .ok(
                "admin.create_user",
                json!({"email": user, "full_name": format!("Fault learner {prefix} {i}"),
                       "password": LEARNER_PASSWORD}),
            )
            .await;
        users.push(user);
    }
    let mut c = db.conn().await;
    let copied = sqlx::query(
        "INSERT INTO memory_tracker (season, user_id, question_id, subject_id, topic_id, \
             scheduler, phase, step, stability, difficulty, reps, lapses, last_review, due, \
             scheduled_days, mastery) \
         SELECT t.season, u.id, t.question_id, t.subject_id, t.topic_id, t.scheduler, t.phase, \
             t.step, t.stability, t.difficulty, t.reps, t.lapses, t.last_review, t.due, \
             t.scheduled_days, t.mastery \
         FROM memory_tracker t \
         JOIN seasons s ON s.id = t.season AND s.is_active \
         CROSS JOIN unnest($2::text[]) AS u(id) \
         WHERE t.user_id = $1 AND t.due <= now()",
    )
    .bind(DEMO_STUDENT)
    .bind(&users)
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected();
    assert!(
        copied >= 30 * n as u64,
        "the demo student has at least 30 due cards to copy ({copied} for {n} learners)"
    );
    let mut clients = Vec::with_capacity(n);
    for user in &users {
        clients.push(Client::login_with(base, user, LEARNER_PASSWORD).await);
    }
    clients
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

/// Every acknowledged answer (stored review ids) is in the review log
/// exactly once: nothing lost, nothing doubled.
pub async fn assert_logged_once(db: &Db, acked: &[String]) {
    let distinct: std::collections::HashSet<&String> = acked.iter().collect();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "review ids are unique per answer"
    );
    let counts = db.review_counts(acked).await;
    let missing: Vec<_> = acked.iter().filter(|r| !counts.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged answers lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        doubled.is_empty(),
        "duplicates in the review log: {doubled:?}"
    );
}
