//! Open-loop load generator for the Memora HTTP API.
//!
//! Requests are issued at a fixed arrival rate regardless of how fast the
//! server answers, and each latency is measured from the request's
//! *scheduled* send time, so queueing delay is never hidden (no coordinated
//! omission). Each virtual user logs in with its own credentials. The mix is
//! 80 % get_review_session, 15 % submit_review_session (10–50 answers taken
//! from the user's last session), 5 % profile/quests/leaderboard. Output:
//! JSON with the achieved rate, errors and P50/P90/P99/P99.9 per endpoint.
//! `--find-max` steps the rate up and reports the highest whose overall P99
//! stays under `--p99-target-ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use memora_bench::{LatencyStats, Recorder};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Parser, Debug, Clone)]
#[command(about = "Open-loop load generator for Memora")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Target request rate (requests/s).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Measurement duration (s).
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Warm-up duration (s), not measured.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Number of virtual users (logins).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// User id pattern; `{}` (or zero-padded `{:08}`) is replaced by the user number.
    #[arg(long, default_value = "bench-u{:08}")]
    user_pattern: String,
    /// First user number.
    #[arg(long, default_value_t = 0)]
    first_user: usize,
    /// Password of every bench user.
    #[arg(long, env = "MEMORA_BENCH_PASSWORD", default_value = "bench-password")]
    password: String,
    /// Percent of requests that are submissions (0–100).
    #[arg(long, default_value_t = 15)]
    submit_percent: u32,
    /// Percent of other reads (profile/quests/leaderboard).
    #[arg(long, default_value_t = 5)]
    other_percent: u32,
    /// Answers per submission: min.
    #[arg(long, default_value_t = 10)]
    answers_min: usize,
    /// Answers per submission: max.
    #[arg(long, default_value_t = 50)]
    answers_max: usize,
    /// Only this endpoint (`review`, `submit`, `profile`); default = the mix.
    #[arg(long)]
    only: Option<String>,
    /// Step the rate up to find the highest with P99 under the target.
    #[arg(long)]
    find_max: bool,
    /// Closed loop instead of the open loop: this many connections, each
    /// sending its next request as soon as the previous one is answered, for
    /// the duration; reports the rate reached and the latencies (from send).
    #[arg(long)]
    closed_loop: Option<usize>,
    /// P99 target for --find-max (ms).
    #[arg(long, default_value_t = 10.0)]
    p99_target_ms: f64,
    /// Keep this many extra idle keep-alive connections open during the run
    /// (concurrent-connection test).
    #[arg(long, default_value_t = 0)]
    hold_connections: usize,
    /// Measure acknowledged → persisted lag: PostgreSQL URL of the server's
    /// database (polls the review-id index for probe answers).
    #[arg(long)]
    lag_probe_db: Option<String>,
    /// Skip the initial one-session-per-user prefetch (safe-mode runs: the
    /// prefetch would use up every user's safe-mode allowance).
    #[arg(long)]
    no_prefetch: bool,
    /// Write the JSON report here as well as to stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct User {
    cookie: String,
    /// The session's CSRF token (POSTs with a cookie need it).
    csrf: String,
    last_questions: Mutex<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Review,
    Submit,
    Profile,
    Quests,
    Leaderboard,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Review => "get_review_session",
            Kind::Submit => "submit_review_session",
            Kind::Profile => "get_full_profile_stats",
            Kind::Quests => "get_daily_quests",
            Kind::Leaderboard => "get_leaderboard",
        }
    }
}

struct Shared {
    client: reqwest::Client,
    base: String,
    users: Vec<User>,
    args: Args,
    /// `--only submit`: the next user to submit (each user answers one
    /// full session while the pool lasts, instead of a random user whose
    /// due cards an earlier submission may have used up).
    next_user: std::sync::atomic::AtomicUsize,
    /// Submissions sent, answers they carried, and submissions skipped
    /// because the server served no card (of the measured phase).
    submits: std::sync::atomic::AtomicU64,
    answers: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    let resp = client
        .post(format!("{base}/api/method/login"))
        .form(&[("usr", user), ("pwd", password)])
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("login of {user} failed: {}", resp.status());
    }
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sid="))
        .and_then(|v| v.split(';').next())
        .context("no sid cookie")?
        .to_owned();
    let csrf = resp
        .headers()
        .get("x-frappe-csrf-token")
        .and_then(|v| v.to_str().ok())
        .context("no CSRF token")?
        .to_owned();
    Ok((cookie, csrf))
}

/// Serves `user` a review session of up to `n` cards (the server only
/// accepts answers to cards it served); their ids.
async fn serve(sh: &Shared, user: &User, n: usize) -> Vec<String> {
    let Ok(resp) = sh
        .client
        .get(format!(
            "{}/api/method/memora.api.reviews.get_review_session?limit={}",
            sh.base,
            n.clamp(1, 50)
        ))
        .header("cookie", &user.cookie)
        .send()
        .await
    else {
        return Vec::new();
    };
    let Ok(v) = resp.json::<Value>().await else {
        return Vec::new();
    };
    v["message"]["questions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|q| q["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One request of `kind`: its status (`0`: skipped) and the time spent
/// preparing it (a submission first fetches the session it answers; that
/// read is not part of the submission's latency).
async fn one_request(
    sh: &Shared,
    kind: Kind,
    user: &User,
    seed: u64,
) -> Result<(u16, Duration), ()> {
    let base = &sh.base;
    let mut prep = Duration::ZERO;
    let req = match kind {
        Kind::Review => sh.client.get(format!(
            "{base}/api/method/memora.api.reviews.get_review_session?limit=15"
        )),
        Kind::Submit => {
            let span = sh.args.answers_max.saturating_sub(sh.args.answers_min) + 1;
            let n = sh.args.answers_min + (seed as usize % span.max(1));
            let started = Instant::now();
            let qs = serve(sh, user, n).await;
            prep = started.elapsed();
            use std::sync::atomic::Ordering::Relaxed;
            if qs.is_empty() {
                sh.skipped.fetch_add(1, Relaxed);
                return Ok((0, prep));
            }
            sh.submits.fetch_add(1, Relaxed);
            sh.answers.fetch_add(qs.len() as u64, Relaxed);
            let mut s = seed;
            let responses: Vec<Value> = qs
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let r = splitmix(&mut s);
                    json!({
                        "question_id": q,
                        "quality": 2 + (r % 4),
                        "response_time_ms": 800 + (r % 7000),
                        "review_id": format!("lg-{seed:x}-{i}"),
                    })
                })
                .collect();
            sh.client
                .post(format!(
                    "{base}/api/method/memora.api.reviews.submit_review_session"
                ))
                .header("x-frappe-csrf-token", &user.csrf)
                .json(&json!({ "responses": responses }))
        }
        Kind::Profile => sh.client.get(format!(
            "{base}/api/method/memora.api.profile.get_full_profile_stats"
        )),
        Kind::Quests => sh.client.get(format!(
            "{base}/api/method/memora.api.quests.get_daily_quests"
        )),
        Kind::Leaderboard => sh.client.get(format!(
            "{base}/api/method/memora.api.leaderboard.get_leaderboard?period=weekly"
        )),
    };
    let resp = req
        .header("cookie", &user.cookie)
        .send()
        .await
        .map_err(|_| ())?;
    let status = resp.status().as_u16();
    // Parsing a session body costs the load generator CPU it shares with the
    // server: refresh a user's question ids only now and then.
    let want_ids =
        kind == Kind::Review && (seed % 8 == 0 || user.last_questions.lock().await.is_empty());
    if want_ids && status == 200 {
        if let Ok(v) = resp.json::<Value>().await {
            let ids: Vec<String> = v["message"]["questions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|q| q["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                *user.last_questions.lock().await = ids;
            }
        }
    } else {
        let _ = resp.bytes().await;
    }
    Ok((status, prep))
}

fn pick(sh: &Shared, r: u64) -> Kind {
    if let Some(only) = &sh.args.only {
        return match only.as_str() {
            "submit" => Kind::Submit,
            "profile" => Kind::Profile,
            _ => Kind::Review,
        };
    }
    let p = (r % 100) as u32;
    if p < sh.args.submit_percent {
        Kind::Submit
    } else if p < sh.args.submit_percent + sh.args.other_percent {
        match r / 100 % 3 {
            0 => Kind::Profile,
            1 => Kind::Quests,
            _ => Kind::Leaderboard,
        }
    } else {
        Kind::Review
    }
}

type Results = Arc<std::sync::Mutex<BTreeMap<Kind, Recorder>>>;

/// Records one request's outcome; its latency runs from `since` (the send
/// time, or the scheduled time in the open loop), minus its preparation.
fn record(res: &Results, kind: Kind, out: Result<(u16, Duration), ()>, since: Instant) {
    let prep = out.map(|(_, p)| p).unwrap_or_default();
    let us = since.elapsed().saturating_sub(prep).as_micros() as u64;
    if us >= SLOW_US {
        if let (Ok(mut slow), Ok(start)) = (SLOW.lock(), PHASE_START.lock()) {
            if let Some(start) = *start {
                let at = since.saturating_duration_since(start).as_secs_f64();
                slow.push((at, us as f64 / 1000.0));
            }
        }
    }
    if let Ok(mut map) = res.lock() {
        let rec = map.entry(kind).or_default();
        match out.map(|(status, _)| status) {
            Ok(0) => {}
            Ok(429) => rec.limited(),
            Ok(s) if (200..300).contains(&s) => rec.record_us(us),
            _ => {
                rec.error();
                rec.record_us(us);
            }
        }
    }
}

/// Runs `conns` closed loops for `secs`, recording only when `measure`.
async fn run_closed(
    sh: Arc<Shared>,
    conns: usize,
    secs: u64,
    measure: bool,
    seed: u64,
) -> (BTreeMap<Kind, Recorder>, f64) {
    let results: Results = Arc::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut handles = Vec::with_capacity(conns);
    for c in 0..conns {
        let sh2 = Arc::clone(&sh);
        let res = Arc::clone(&results);
        handles.push(tokio::spawn(async move {
            let mut s = seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            while Instant::now() < end {
                let r = splitmix(&mut s);
                let user = &sh2.users[(r >> 8) as usize % sh2.users.len()];
                let kind = pick(&sh2, r);
                let sent = Instant::now();
                let out = one_request(&sh2, kind, user, r).await;
                if measure {
                    record(&res, kind, out, sent);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let map = results.lock().map(|m| m.clone()).unwrap_or_default();
    let done: u64 = map.values().map(|r| r.stats().count).sum();
    (map, done as f64 / elapsed)
}

/// Runs the open loop at `rate` for `secs`, recording only when `measure`.
async fn run_phase(
    sh: Arc<Shared>,
    rate: f64,
    secs: u64,
    measure: bool,
    seed: u64,
) -> (BTreeMap<Kind, Recorder>, f64) {
    let results: Results = Arc::default();
    if measure {
        use std::sync::atomic::Ordering::Relaxed;
        sh.submits.store(0, Relaxed);
        sh.answers.store(0, Relaxed);
        sh.skipped.store(0, Relaxed);
    }
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let total = (rate * secs as f64) as u64;
    let start = Instant::now();
    if measure {
        if let (Ok(mut p), Ok(mut slow)) = (PHASE_START.lock(), SLOW.lock()) {
            *p = Some(start);
            slow.clear();
            if let (Ok(mut u), Ok(now)) = (
                PHASE_START_UNIX.lock(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
            ) {
                *u = now.as_secs_f64();
            }
        }
    }
    let mut handles = Vec::with_capacity(total as usize);
    let mut s = seed;
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let r = splitmix(&mut s);
        let sh2 = Arc::clone(&sh);
        let res = Arc::clone(&results);
        handles.push(tokio::spawn(async move {
            let kind = pick(&sh2, r);
            let u = if sh2.args.only.as_deref() == Some("submit") {
                sh2.next_user
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            } else {
                (r >> 8) as usize
            };
            let user = &sh2.users[u % sh2.users.len()];
            let out = one_request(&sh2, kind, user, r).await;
            if measure {
                record(&res, kind, out, scheduled);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let map = results.lock().map(|m| m.clone()).unwrap_or_default();
    let done: u64 = map.values().map(|r| r.stats().count).sum();
    (map, done as f64 / elapsed)
}

fn report(rate: f64, achieved: f64, map: &BTreeMap<Kind, Recorder>) -> (Value, LatencyStats) {
    let mut all = Recorder::default();
    let mut per = serde_json::Map::new();
    for (k, r) in map {
        all.merge(r);
        per.insert(
            k.name().to_owned(),
            serde_json::to_value(r.stats()).unwrap_or(Value::Null),
        );
    }
    let overall = all.stats();
    (
        json!({
            "target_rate": rate,
            "achieved_rate": (achieved * 10.0).round() / 10.0,
            "errors": overall.errors,
            "rate_limited": overall.rate_limited,
            "overall": overall,
            "endpoints": per,
        }),
        overall,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.url.trim_end_matches('/').to_owned();
    let mut users = Vec::with_capacity(args.users);
    let mut logins = Vec::new();
    for i in 0..args.users {
        let (client, base, pw) = (client.clone(), base.clone(), args.password.clone());
        let name = args
            .user_pattern
            .replace("{:08}", &format!("{:08}", args.first_user + i))
            .replace("{}", &(args.first_user + i).to_string());
        logins.push(tokio::spawn(async move {
            login(&client, &base, &name, &pw).await
        }));
        if logins.len() >= 32 {
            for h in logins.drain(..) {
                users.push(h.await??);
            }
        }
    }
    for h in logins {
        users.push(h.await??);
    }
    let sh = Arc::new(Shared {
        client,
        base,
        users: users
            .into_iter()
            .map(|(cookie, csrf)| User {
                cookie,
                csrf,
                last_questions: Mutex::new(Vec::new()),
            })
            .collect(),
        args: args.clone(),
        next_user: Default::default(),
        submits: Default::default(),
        answers: Default::default(),
        skipped: Default::default(),
    });
    eprintln!("{} users logged in", sh.users.len());
    // Every user fetches one session first, so submissions have questions.
    let mut pre = Vec::new();
    let prefetch = if args.no_prefetch { 0 } else { sh.users.len() };
    for i in 0..prefetch {
        let sh2 = Arc::clone(&sh);
        pre.push(tokio::spawn(async move {
            let _ = one_request(&sh2, Kind::Review, &sh2.users[i], 0).await;
        }));
        if pre.len() >= 64 {
            for h in pre.drain(..) {
                let _ = h.await;
            }
        }
    }
    for h in pre {
        let _ = h.await;
    }
    let held = hold_connections(&sh.base, args.hold_connections).await;
    if !held.is_empty() {
        eprintln!("holding {} extra open connections", held.len());
    }
    // Scripts time the load from here (scripts/bench-submit.sh).
    eprintln!("load starts");
    let lag = args.lag_probe_db.clone().map(|db| {
        let sh2 = Arc::clone(&sh);
        tokio::spawn(async move { lag_probe(sh2, db).await })
    });
    let out = if let Some(conns) = args.closed_loop {
        run_closed(Arc::clone(&sh), conns, args.warmup, false, 7).await;
        let (map, achieved) = run_closed(Arc::clone(&sh), conns, args.duration, true, 11).await;
        let mut rep = report(0.0, achieved, &map).0;
        rep["connections"] = json!(conns);
        rep
    } else if args.find_max {
        let mut rate = args.rate;
        let mut best: Option<Value> = None;
        let mut steps = Vec::new();
        loop {
            run_phase(Arc::clone(&sh), rate, args.warmup, false, 7).await;
            let (map, achieved) = run_phase(Arc::clone(&sh), rate, args.duration, true, 11).await;
            let (rep, overall) = report(rate, achieved, &map);
            eprintln!(
                "rate {rate:.0}/s: achieved {achieved:.0}/s, P99 {:.2} ms, errors {}",
                overall.p99_ms, overall.errors
            );
            let ok = overall.p99_ms <= args.p99_target_ms
                && overall.errors == 0
                && achieved >= rate * 0.95;
            steps.push(rep.clone());
            if !ok || rate > 200_000.0 {
                break;
            }
            best = Some(rep);
            rate *= 1.5;
        }
        json!({"p99_target_ms": args.p99_target_ms, "max_sustainable": best, "steps": steps})
    } else {
        run_phase(Arc::clone(&sh), args.rate, args.warmup, false, 7).await;
        let (map, achieved) = run_phase(Arc::clone(&sh), args.rate, args.duration, true, 11).await;
        report(args.rate, achieved, &map).0
    };
    let mut out = out;
    {
        use std::sync::atomic::Ordering::Relaxed;
        let (n, a) = (sh.submits.load(Relaxed), sh.answers.load(Relaxed));
        if n > 0 || sh.skipped.load(Relaxed) > 0 {
            // Of the last measured phase.
            out["submissions"] = json!({
                "sent": n,
                "answers_mean": if n > 0 { a as f64 / n as f64 } else { 0.0 },
                "skipped_no_card_served": sh.skipped.load(Relaxed),
            });
        }
    }
    if let Ok(slow) = SLOW.lock() {
        // When the slow requests of the last measured open-loop phase were
        // scheduled (seconds from its start) and how long they took: a
        // tail that clusters in time points at a periodic cause.
        let mut slow = slow.clone();
        slow.sort_by(|a, b| a.0.total_cmp(&b.0));
        out["slow_requests"] = json!({
            "threshold_ms": SLOW_US as f64 / 1000.0,
            "phase_start_unix": PHASE_START_UNIX.lock().map(|u| *u).unwrap_or(0.0),
            "at_s_and_ms": slow
                .iter()
                .map(|(at, ms)| json!([(at * 1000.0).round() / 1000.0, (ms * 100.0).round() / 100.0]))
                .collect::<Vec<_>>(),
        });
    }
    if let Some(h) = lag {
        h.abort();
        if let Ok(stats) = LAG.lock() {
            out["persistence_lag"] = serde_json::to_value(stats.stats())?;
        }
    }
    drop(held);
    let text = serde_json::to_string_pretty(&out)?;
    println!("{text}");
    if let Some(p) = &args.out {
        std::fs::write(p, &text)?;
    }
    Ok(())
}

/// Requests at least this slow are listed with their time in the phase.
const SLOW_US: u64 = 20_000;
static SLOW: std::sync::Mutex<Vec<(f64, f64)>> = std::sync::Mutex::new(Vec::new());
static PHASE_START: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
/// The wall-clock time (Unix seconds) of the last measured phase's start,
/// to line the slow requests up with other recordings.
static PHASE_START_UNIX: std::sync::Mutex<f64> = std::sync::Mutex::new(0.0);

static LAG: std::sync::LazyLock<std::sync::Mutex<Recorder>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(Recorder::default()));

/// Every 100 ms: submit one answer with a fresh review id as the first user,
/// then poll PostgreSQL until the id is persisted; records the lag.
async fn lag_probe(sh: Arc<Shared>, db: String) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(&db).await else {
        eprintln!("lag probe: cannot connect to {db}");
        return;
    };
    let user = &sh.users[0];
    for n in 0u64.. {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let qs = serve(&sh, user, 1).await;
        let Some(q) = qs.first() else { continue };
        let rid = format!("lag-{}-{n}", std::process::id());
        let body = json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 2000, "review_id": rid}]});
        let start = Instant::now();
        let ok = sh
            .client
            .post(format!(
                "{}/api/method/memora.api.reviews.submit_review_session",
                sh.base
            ))
            .header("cookie", &user.cookie)
            .header("x-frappe-csrf-token", &user.csrf)
            .json(&body)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if !ok {
            continue;
        }
        let acked = Instant::now();
        let _ = start;
        loop {
            let found: Option<(i32,)> =
                sqlx::query_as("SELECT 1 FROM review_ids WHERE review_id = $1")
                    .bind(&rid)
                    .fetch_optional(&mut conn)
                    .await
                    .unwrap_or(None);
            if found.is_some() {
                if let Ok(mut l) = LAG.lock() {
                    l.record_us(acked.elapsed().as_micros() as u64);
                }
                break;
            }
            if acked.elapsed() > Duration::from_secs(30) {
                if let Ok(mut l) = LAG.lock() {
                    l.error();
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Opens `n` raw keep-alive connections (one request each, then idle).
async fn hold_connections(base: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_owned();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
            break;
        };
        let req =
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await;
        held.push(s);
    }
    held
}
