//! Several server processes on one PostgreSQL and one Redis (or one Redis
//! Cluster): three `memora serve` processes, a client spreading requests
//! round-robin over them. What one process changes, the others must observe
//! (issue 14: "anything several processes share — catalog, credentials,
//! limits, job leases — carries a version or lease that other processes
//! observe within a second"), and losing one process must lose nothing it
//! acknowledged.
//!
//! What the servers are expected to provide:
//! - a content import by another process (the `import-content` CLI) is
//!   served by every process within 1 s, from its in-process catalog;
//! - a logout on one process is refused by every process within 1 s;
//! - env `MEMORA_SAFE_MODE_GLOBAL_PER_MINUTE` (admitted safe-mode review
//!   sessions per minute across all processes) and
//!   `MEMORA_SAFE_MODE_LEARNER_INTERVAL_SECS` (seconds between one learner's
//!   safe-mode sessions);
//! - env `MEMORA_JOB_PERIODS` (`job=seconds,…`) and the table `job_runs (job
//!   text, token bigint, holder text, started_at timestamptz, finished_at
//!   timestamptz, outcome text)`, one row per run of a scheduled job, whoever
//!   ran it.
//!
//! The 1 s bounds are requirements, not performance figures: each check
//! polls until a deadline of 1.5 s (the bound plus a margin for the polling
//! itself on a shared machine) and reports the delay it observed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::harness::*;

const SERVE: &str = "reviews.get_review_session";
const SUBMIT: &str = "reviews.submit_review_session";
/// The server processes of every scenario.
const INSTANCES: usize = 3;
/// What "within 1 s" is polled against.
const COHERENCE_BOUND: Duration = Duration::from_secs(1);
const COHERENCE_DEADLINE: Duration = Duration::from_millis(1500);
const POLL: Duration = Duration::from_millis(25);

#[derive(Clone, Copy, Debug)]
enum Backend {
    /// One private `redis-server` (AOF, can be stopped).
    Redis,
    /// The test process's shared 3-master Redis Cluster, under a key
    /// namespace of this test's own.
    Cluster,
}

/// Three servers on one database and one cache. Fields drop in order: the
/// servers are killed before their Redis stops and their database goes.
struct Fleet {
    servers: Vec<Server>,
    /// The demo admin, logged in once (its session works on every server).
    admin: Client,
    /// The private Redis (`Backend::Redis` only).
    redis: Option<Redis>,
    db: Db,
    /// Just before the first server was spawned.
    started: Instant,
}

impl Fleet {
    async fn start(backend: Backend, extra_env: &[(&str, &str)]) -> Option<Fleet> {
        let db = Db::create().await?;
        let (redis, mut env) = match backend {
            Backend::Redis => {
                let redis = Redis::start()?;
                let env = Server::env(&db, &redis);
                (Some(redis), env)
            }
            Backend::Cluster => {
                let cluster =
                    tokio::task::spawn_blocking(memora_tests::redis_cluster::cluster_or_skip)
                        .await
                        .unwrap()?;
                let mut env = Server::base_env(&db);
                env.push(("MEMORA_REDIS_CLUSTER_NODES".into(), cluster.nodes.join(",")));
                env.push(("MEMORA_REDIS_NAMESPACE".into(), format!("{}:", db.name)));
                (None, env)
            }
        };
        // Three pools on a PostgreSQL other engineers share.
        env.push(("MEMORA_DB_POOL_SIZE".into(), "8".into()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Server::seed(&env);
        let started = Instant::now();
        let (a, b, c) = tokio::join!(
            Server::start(env.clone()),
            Server::start(env.clone()),
            Server::start(env.clone())
        );
        let servers = vec![a, b, c];
        let admin = Client::login(&servers[0].base(), DEMO_ADMIN).await;
        Some(Fleet {
            db,
            redis,
            servers,
            admin,
            started,
        })
    }

    fn base(&self, i: usize) -> String {
        self.servers[i].base()
    }

    /// `server 2 (port 41234)`, for messages.
    fn name(&self, i: usize) -> String {
        format!("server {} (port {})", i + 1, self.servers[i].port)
    }
}

/// Polls `check(server)` on every server until each has returned `true`
/// once or [`COHERENCE_DEADLINE`] has passed since `since`; returns when
/// each server first did (None: not before the deadline).
async fn first_seen<F, Fut>(since: Instant, mut check: F) -> Vec<Option<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut seen = vec![None; INSTANCES];
    loop {
        for (i, slot) in seen.iter_mut().enumerate() {
            if slot.is_none() && check(i).await {
                *slot = Some(since.elapsed());
            }
        }
        if seen.iter().all(Option::is_some) || since.elapsed() > COHERENCE_DEADLINE {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Reports the delays and fails unless every server got there in time;
/// `diagnosis` is appended to the failure message.
fn assert_coherent(f: &Fleet, what: &str, seen: &[Option<Duration>], diagnosis: &str) {
    let report: Vec<String> = seen
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Some(d) => format!("{}: {} ms", f.name(i), d.as_millis()),
            None => format!(
                "{}: NOT within {} ms",
                f.name(i),
                COHERENCE_DEADLINE.as_millis()
            ),
        })
        .collect();
    eprintln!("{what}: {}", report.join(", "));
    if seen.iter().flatten().any(|d| *d > COHERENCE_BOUND) {
        eprintln!(
            "note: {what}: a delay above {} ms was accepted as polling margin",
            COHERENCE_BOUND.as_millis()
        );
    }
    assert!(
        seen.iter().all(Option::is_some),
        "{what} must hold on every process within {} ms; observed: {}{diagnosis}",
        COHERENCE_BOUND.as_millis(),
        report.join(", ")
    );
}

/// The topic ids `get_unit_topics` lists (answered from the process's
/// in-process catalog, not from PostgreSQL).
async fn unit_topics(c: &Client, unit: &str) -> Vec<String> {
    let m = c
        .ok("map_engine.get_unit_topics", json!({"unit_id": unit}))
        .await;
    m["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("get_unit_topics on {}: {m}", c.base()))
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

async fn content_import_is_served_everywhere_within_1s(backend: Backend) {
    let _g = SERIAL.lock().await;
    let Some(mut f) = Fleet::start(backend, &[]).await else {
        return;
    };
    const UNIT: &str = "hist-u2";
    const TOPIC: &str = "inst-added-while-serving";
    let student = Client::login(&f.base(0), DEMO_STUDENT).await;
    // Every process loads its catalog before the import.
    for i in 0..INSTANCES {
        let topics = unit_topics(&student.on(&f.base(i)), UNIT).await;
        assert!(
            !topics.is_empty(),
            "{}: the demo unit has topics",
            f.name(i)
        );
        assert!(!topics.contains(&TOPIC.to_owned()), "{}", f.name(i));
    }
    let dir = std::env::temp_dir().join(format!("memora-inst-{}", f.db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.json");
    let bundle = json!({"topics": [{"id": TOPIC, "unit": UNIT, "title": "Added while serving", "order": 99}]});
    std::fs::write(&file, bundle.to_string()).unwrap();
    // Another process (the CLI) writes the catalog, as an operator would.
    let out = memora()
        .arg("import-content")
        .arg(&file)
        .arg("--json")
        .env("MEMORA_DATABASE_URL", &f.db.url)
        .output()
        .unwrap();
    let imported = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "import-content failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["applied"], true, "{report}");
    let seen = first_seen(imported, |i| {
        let c = student.on(&f.base(i));
        async move { unit_topics(&c, UNIT).await.contains(&TOPIC.to_owned()) }
    })
    .await;
    let mut diagnosis = String::new();
    if seen.iter().any(Option::is_none) {
        // Tell a stale catalog from an import that did not land.
        f.servers[0].restart().await;
        let fresh = unit_topics(&student.on(&f.base(0)), UNIT).await;
        diagnosis = if fresh.contains(&TOPIC.to_owned()) {
            " — server 1, restarted, lists it: the import landed and the running \
             processes kept serving their old catalog"
                .into()
        } else {
            format!(" — even server 1, restarted, does not list it: {fresh:?}")
        };
    }
    assert_coherent(
        &f,
        &format!("{backend:?}: topic imported by the CLI listed by get_unit_topics after"),
        &seen,
        &diagnosis,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_content_import_served_everywhere_within_1s() {
    content_import_is_served_everywhere_within_1s(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_content_import_served_everywhere_within_1s_on_redis_cluster() {
    content_import_is_served_everywhere_within_1s(Backend::Cluster).await;
}

/// The session's user as `get_logged_user` on `c`'s server sees it:
/// `Some(true)` accepted, `Some(false)` refused (401/403), panics otherwise.
async fn session_accepted(c: &Client) -> bool {
    let (status, v) = c
        .post_path("frappe.auth.get_logged_user")
        .await
        .unwrap_or_else(|e| panic!("get_logged_user on {}: {e}", c.base()));
    match status {
        200 => {
            assert_eq!(v["message"], c.user(), "{}: {v}", c.base());
            true
        }
        401 | 403 => false,
        other => panic!("get_logged_user on {}: unexpected {other}: {v}", c.base()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_logout_refused_everywhere_within_1s() {
    let _g = SERIAL.lock().await;
    let Some(f) = Fleet::start(Backend::Redis, &[]).await else {
        return;
    };
    let session = Client::login(&f.base(0), DEMO_STUDENT).await;
    // The sid is used (and so cached) on every process.
    for i in 0..INSTANCES {
        for _ in 0..2 {
            assert!(
                session_accepted(&session.on(&f.base(i))).await,
                "{}: a fresh session is accepted",
                f.name(i)
            );
        }
    }
    let (status, v) = session.post_path("logout").await.unwrap();
    assert_eq!(status, 200, "logout on {}: {v}", f.name(0));
    let logged_out = Instant::now();
    let seen = first_seen(logged_out, |i| {
        let c = session.on(&f.base(i));
        async move { !session_accepted(&c).await }
    })
    .await;
    assert_coherent(
        &f,
        "sid logged out on server 1 refused by get_logged_user after",
        &seen,
        " (a process that still accepts the sid trusts its credential cache)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_safe_mode_global_limit_holds_across_processes() {
    const GLOBAL: usize = 12;
    // More learners than the limit, spread evenly: a limit kept per process
    // would admit all of them (up to 3 × 12).
    const LEARNERS: usize = 30;
    let _g = SERIAL.lock().await;
    let Some(mut f) = Fleet::start(
        Backend::Redis,
        &[
            ("MEMORA_SAFE_MODE_GLOBAL_PER_MINUTE", "12"),
            ("MEMORA_SAFE_MODE_LEARNER_INTERVAL_SECS", "30"),
        ],
    )
    .await
    else {
        return;
    };
    let learners = learners(&f.base(0), &f.admin, &f.db, "limit", LEARNERS).await;
    f.redis.as_mut().unwrap().stop();
    // Every process notices (its probe runs every second) before the burst.
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..INSTANCES {
        let admin = f.admin.on(&f.base(i));
        loop {
            if let Ok((200, v, _)) = admin.call("srs.get_cache_status", json!({})).await {
                if v["message"]["is_safe_mode"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not enter safe mode within 10 s of Redis stopping",
                f.name(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // One session request per learner, all at once, round-robin.
    let mut tasks = Vec::new();
    for (n, c) in learners.iter().enumerate() {
        let c = c.on(&f.base(n % INSTANCES));
        tasks.push(tokio::spawn(async move {
            let r = c.call(SERVE, json!({"limit": 5})).await;
            (n % INSTANCES, c.user().to_owned(), r)
        }));
    }
    let mut admitted = [0usize; INSTANCES];
    let mut refused = [0usize; INSTANCES];
    let mut wrong = Vec::new();
    for t in tasks {
        let (server, user, r) = t.await.unwrap();
        match r {
            Ok((200, v, _)) if v["message"]["is_degraded"] == true => admitted[server] += 1,
            Ok((429, _, Some(retry))) if retry.parse::<u64>().is_ok_and(|s| s >= 1) => {
                refused[server] += 1
            }
            Ok((status, v, retry)) => wrong.push(format!(
                "{user} on {}: {status} retry-after={retry:?} {v}",
                f.name(server)
            )),
            Err(e) => wrong.push(format!("{user} on {}: {e}", f.name(server))),
        }
    }
    let per_server: Vec<String> = (0..INSTANCES)
        .map(|i| {
            format!(
                "{}: {} admitted, {} refused",
                f.name(i),
                admitted[i],
                refused[i]
            )
        })
        .collect();
    let total: usize = admitted.iter().sum();
    eprintln!(
        "safe mode, global limit {GLOBAL}/min, {LEARNERS} learners: {total} admitted ({})",
        per_server.join("; ")
    );
    assert!(
        wrong.is_empty(),
        "every answer is a degraded 200 or a 429 with Retry-After ≥ 1: {wrong:?}"
    );
    assert!(total > 0, "safe mode admitted nobody: {per_server:?}");
    assert!(
        total <= GLOBAL,
        "the safe-mode global limit is {GLOBAL} per minute across all processes, \
         but {total} sessions were admitted: {}",
        per_server.join("; ")
    );
}

/// One row of `job_runs`.
#[derive(Debug, sqlx::FromRow)]
struct JobRun {
    job: String,
    token: i64,
    holder: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
}

impl std::fmt::Display for JobRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} token {} by {} {} → {} ({})",
            self.job,
            self.token,
            self.holder.as_deref().unwrap_or("?"),
            self.started_at.format("%H:%M:%S%.3f"),
            self.finished_at
                .map(|t| t.format("%H:%M:%S%.3f").to_string())
                .unwrap_or_else(|| "running".into()),
            self.outcome.as_deref().unwrap_or("-"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_scheduled_job_runs_once_per_interval() {
    const PERIOD_SECS: u64 = 2;
    const JOBS: [&str; 2] = ["served_purge", "pending_batches"];
    let _g = SERIAL.lock().await;
    let Some(f) = Fleet::start(
        Backend::Redis,
        &[("MEMORA_JOB_PERIODS", "served_purge=2,pending_batches=2")],
    )
    .await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(7)).await;
    // Since the first process could have started a job.
    let elapsed = f.started.elapsed();
    let mut conn = f.db.conn().await;
    let runs: Vec<JobRun> = sqlx::query_as(
        "SELECT job, token, holder, started_at, finished_at, outcome FROM job_runs \
         WHERE job = ANY($1) ORDER BY job, started_at, token",
    )
    .bind(&JOBS[..])
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| {
        panic!(
            "cannot read job_runs ({e}): every run of a scheduled job must be recorded in \
             job_runs (job text, token bigint, holder text, started_at timestamptz, \
             finished_at timestamptz, outcome text); servers started with \
             MEMORA_JOB_PERIODS=served_purge=2,pending_batches=2"
        )
    });
    let max_runs = usize::try_from(elapsed.as_secs() / PERIOD_SECS).unwrap() + 1;
    for job in JOBS {
        let mine: Vec<&JobRun> = runs.iter().filter(|r| r.job == job).collect();
        let listing: Vec<String> = mine.iter().map(|r| r.to_string()).collect();
        eprintln!(
            "{job}: {} runs in {:.1} s by {INSTANCES} processes:\n  {}",
            mine.len(),
            elapsed.as_secs_f64(),
            listing.join("\n  ")
        );
        assert!(
            !mine.is_empty(),
            "{job} (period {PERIOD_SECS} s) never ran in {:.1} s",
            elapsed.as_secs_f64()
        );
        assert!(
            mine.len() <= max_runs,
            "{job} ran {} times in {:.1} s with a {PERIOD_SECS} s period (at most {max_runs} \
             once per interval across processes):\n  {}",
            mine.len(),
            elapsed.as_secs_f64(),
            listing.join("\n  ")
        );
        for w in mine.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert!(
                a.finished_at.is_some_and(|end| end <= b.started_at),
                "runs of {job} overlap: [{a}] and [{b}]; all runs:\n  {}",
                listing.join("\n  ")
            );
            assert!(
                a.token < b.token,
                "fencing tokens of {job} must increase with time: [{a}] then [{b}]"
            );
        }
    }
}

/// Load over the three servers, SIGKILL of one of them mid-load.
async fn sigkill_one_instance_loses_nothing(backend: Backend) {
    /// The server that is killed.
    const VICTIM: usize = 1;
    /// Acknowledged answers before the kill, and at least after it.
    const BEFORE_KILL: usize = 120;
    const AFTER_KILL: usize = 120;
    let _g = SERIAL.lock().await;
    let Some(mut f) = Fleet::start(backend, &[]).await else {
        return;
    };
    // 15 learners × ≥ 30 due cards: room for both phases.
    let pool = learners(&f.base(0), &f.admin, &f.db, "kill", 15).await;
    let bases: Arc<Vec<String>> = Arc::new((0..INSTANCES).map(|i| f.base(i)).collect());
    let pool = Arc::new(std::sync::Mutex::new(pool));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // Successful requests per server after the kill.
    let after_kill_ok: Arc<Vec<AtomicUsize>> =
        Arc::new((0..INSTANCES).map(|_| AtomicUsize::new(0)).collect());
    let unexpected = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ran_dry = Arc::new(AtomicBool::new(false));
    // The next server round-robin, skipping the killed one (as a balancer
    // would once its health check fails).
    let pick = {
        let (next, killed) = (next.clone(), killed.clone());
        move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst) % INSTANCES;
            if !(i == VICTIM && killed.load(Ordering::SeqCst)) {
                return i;
            }
        }
    };
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (pool, acked, after_kill_ok, unexpected, killed, stop, ran_dry, bases, pick) = (
            pool.clone(),
            acked.clone(),
            after_kill_ok.clone(),
            unexpected.clone(),
            killed.clone(),
            stop.clone(),
            ran_dry.clone(),
            bases.clone(),
            pick.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // A failed request is expected only from the victim, once it
            // is being killed.
            let judge = |server: usize, what: String| {
                if !(server == VICTIM && killed.load(Ordering::SeqCst)) {
                    unexpected
                        .lock()
                        .unwrap()
                        .push(format!("server {}: {what}", server + 1));
                }
            };
            let ok = |server: usize| {
                if killed.load(Ordering::SeqCst) {
                    after_kill_ok[server].fetch_add(1, Ordering::SeqCst);
                }
            };
            let mut learner: Option<Client> = None;
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let c = match &learner {
                    Some(c) => c.clone(),
                    None => {
                        let Some(c) = pool.lock().unwrap().pop() else {
                            ran_dry.store(true, Ordering::SeqCst);
                            return;
                        };
                        learner = Some(c.clone());
                        c
                    }
                };
                let server = pick();
                let ids = match c.on(&bases[server]).call(SERVE, json!({"limit": 10})).await {
                    Ok((200, v, _)) => {
                        ok(server);
                        question_ids(&v["message"])
                    }
                    Ok((status, v, _)) => {
                        judge(server, format!("serve {status}: {v}"));
                        continue;
                    }
                    Err(e) => {
                        judge(server, format!("serve: {e}"));
                        continue;
                    }
                };
                if ids.is_empty() {
                    learner = None;
                    continue;
                }
                // The answers go to the next server, not the one that served.
                let server = pick();
                let (body, rids) = answers(&ids, &format!("inst-{t}-{n}"));
                n += 1;
                match c.on(&bases[server]).call(SUBMIT, body).await {
                    Ok((200, v, _)) => {
                        ok(server);
                        assert_eq!(v["message"]["processed"], ids.len(), "{v}");
                        acked
                            .lock()
                            .unwrap()
                            .extend(rids.iter().map(|r| c.stored_id(r)));
                    }
                    Ok((status, v, _)) => judge(server, format!("submit {status}: {v}")),
                    Err(e) => judge(server, format!("submit: {e}")),
                }
            }
        }));
    }
    let acked_len = || acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_len() < BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "load never got going: {} answers acknowledged in 60 s; unexpected: {:?}",
            acked_len(),
            unexpected.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killed.store(true, Ordering::SeqCst);
    f.servers[VICTIM].kill9();
    let at_kill = acked_len();
    let dry_before_kill = ran_dry.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_len() < at_kill + AFTER_KILL
        && !ran_dry.load(Ordering::SeqCst)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let after: Vec<usize> = after_kill_ok
        .iter()
        .map(|n| n.load(Ordering::SeqCst))
        .collect();
    eprintln!(
        "{backend:?}: {} answers acknowledged ({at_kill} before the kill of {}); \
         successful requests after the kill per server: {after:?}",
        acked.len(),
        f.name(VICTIM)
    );
    assert!(
        !dry_before_kill,
        "the learners ran out of due cards before the kill: it hit no load"
    );
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "requests to live servers failed: {unexpected:?}"
    );
    for i in (0..INSTANCES).filter(|i| *i != VICTIM) {
        assert!(
            after[i] > 0,
            "{} served nothing after {} was killed",
            f.name(i),
            f.name(VICTIM)
        );
    }
    assert!(
        acked.len() >= at_kill + 20,
        "the survivors acknowledged only {} answers after the kill",
        acked.len() - at_kill
    );
    // The survivors' workers persist the rest, including what the victim
    // had claimed from the queue (reclaimed after 1.5 s idle).
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let in_log = f.db.review_counts(&acked).await.len();
        if in_log == acked.len() {
            break;
        }
        if Instant::now() > deadline {
            break; // assert_logged_once names what is missing.
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_logged_once(&f.db, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_sigkill_one_keeps_serving_and_loses_no_answer() {
    sigkill_one_instance_loses_nothing(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_sigkill_one_keeps_serving_and_loses_no_answer_on_redis_cluster() {
    sigkill_one_instance_loses_nothing(Backend::Cluster).await;
}

/// Whether `user` can log in on `base` (200), without panicking otherwise.
async fn can_log_in(base: &str, user: &str, password: &str) -> bool {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/method/login"))
        .form(&[("usr", user), ("pwd", password)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("login on {base}: {e}"));
    resp.status().as_u16() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_instances_institution_created_and_suspended_everywhere_within_1s() {
    let _g = SERIAL.lock().await;
    let Some(f) = Fleet::start(Backend::Redis, &[]).await else {
        return;
    };
    const MANAGER: &str = "head@north.fault";
    const MANAGER_PWD: &str = "North-Head-Fault-2026!";
    // The demo admin is the platform operator; the institution is created
    // through server 1.
    let created = f
        .admin
        .ok(
            "platform.create_institution",
            json!({"institution": "north", "name": "North", "manager": MANAGER,
                   "manager_full_name": "Head", "manager_password": MANAGER_PWD}),
        )
        .await;
    assert_eq!(created["institution"], "north", "{created}");
    let at = Instant::now();
    let seen = first_seen(at, |i| {
        let base = f.base(i);
        async move { can_log_in(&base, MANAGER, MANAGER_PWD).await }
    })
    .await;
    assert_coherent(
        &f,
        "an institution created on server 1 served (its manager logs in) after",
        &seen,
        " (a process that does not know it routes the login to the home institution)",
    );
    // Suspended through server 2: refused everywhere, resumed through
    // server 3: accepted everywhere.
    let head = Client::login_with(&f.base(0), MANAGER, MANAGER_PWD).await;
    for i in 0..INSTANCES {
        assert!(
            session_accepted(&head.on(&f.base(i))).await,
            "{}",
            f.name(i)
        );
    }
    f.admin
        .on(&f.base(1))
        .ok(
            "platform.suspend_institution",
            json!({"institution": "north"}),
        )
        .await;
    let at = Instant::now();
    let seen = first_seen(at, |i| {
        let c = head.on(&f.base(i));
        async move { !session_accepted(&c).await }
    })
    .await;
    assert_coherent(
        &f,
        "an institution suspended on server 2 refused after",
        &seen,
        " (a process still serves a suspended institution)",
    );
    f.admin
        .on(&f.base(2))
        .ok(
            "platform.resume_institution",
            json!({"institution": "north"}),
        )
        .await;
    let at = Instant::now();
    let seen = first_seen(at, |i| {
        let c = head.on(&f.base(i));
        async move { session_accepted(&c).await }
    })
    .await;
    assert_coherent(
        &f,
        "an institution resumed on server 3 served again after",
        &seen,
        "",
    );
}
