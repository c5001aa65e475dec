//! What the institution scope costs on the hot path.
//!
//! Builds, in process, a platform of `--institutions` institutions with
//! `--learners` accounts each (every institution seeded with the demo
//! dataset, so its demo student has cards due), and drives the real router
//! (`memora_http::router`, no sockets) with `get_review_session` calls:
//!
//! * `standalone` — one `Memora`, no platform (how a single school ran
//!   before institutions), calls spread over `--institutions` learners
//!   with the demo student's schedule;
//! * `home` — the platform, the same over as many learners of the home
//!   institution (no credential prefix);
//! * `spread` — the platform, calls spread round-robin over every
//!   institution's demo student (prefix routing, a different institution's
//!   caches on each call).
//!
//! So every scenario serves the same cards to the same number of learners;
//! only the scope differs.
//!
//! Each scenario runs `--requests` calls on `--concurrency` tasks (2 worker
//! threads) after a warm-up, and prints calls/s and latency percentiles;
//! then the resident memory each opened institution costs. The backend is
//! the in-memory one, so the numbers isolate the scope's own cost (routing,
//! one map lookup, per-institution caches), which is the same in front of
//! PostgreSQL and Redis.
//!
//!   cargo run --release -p memora-bench --bin tenants -- --institutions 100 --learners 1000

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use memora_bench::{LatencyStats, Recorder};
use memora_core::Memora;
use memora_core::domain::{Actor, Institution, InstitutionId, Role};
use memora_core::ids::UserId;
use memora_core::memory::{InMemoryBackend, InMemoryDirectory, Sha256Hasher, SystemClock};
use memora_core::services::platform::NewManager;
use memora_core::services::{Config, Platform, TenantFactory, TenantScope};
use memora_http::{AppState, router};
use serde_json::json;
use tower::ServiceExt;

#[derive(Parser, Debug)]
#[command(about = "The cost of the institution scope on the review hot path")]
struct Args {
    /// Institutions besides the home one.
    #[arg(long, default_value_t = 100)]
    institutions: usize,
    /// Learner accounts per institution.
    #[arg(long, default_value_t = 1000)]
    learners: usize,
    /// Measured calls per scenario.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

const PWD: &str = "Tenant-Bench-Pass-1";

struct MemTenants;

fn ports() -> memora_core::ports::Ports {
    let mut p = InMemoryBackend::new().ports();
    p.clock = Arc::new(SystemClock);
    p.ids = Arc::new(memora_http::security::RandomIds);
    p.hasher = Arc::new(Sha256Hasher);
    p
}

#[async_trait::async_trait]
impl TenantFactory for MemTenants {
    async fn open(
        &self,
        _inst: &Institution,
        scope: TenantScope,
    ) -> memora_core::CoreResult<Arc<Memora>> {
        Ok(Arc::new(Memora::in_institution(
            ports(),
            Config::default(),
            scope,
        )))
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn login(app: &axum::Router, usr: &str) -> anyhow::Result<String> {
    let req = Request::post("/api/method/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"usr": usr, "pwd": PWD}).to_string()))?;
    let resp = app.clone().oneshot(req).await?;
    anyhow::ensure!(
        resp.status() == StatusCode::OK,
        "login {usr}: {}",
        resp.status()
    );
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .context("no cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(cookie)
}

/// `learners - 1` more students in `app` (the demo seeded one).
async fn more_learners(app: &Memora, tag: &str, learners: usize) -> anyhow::Result<()> {
    for n in 1..learners {
        app.auth()
            .create_user(
                &Actor::system(),
                &UserId::new(format!("l{n}@{tag}.bench"))?,
                "Learner",
                vec![Role::Student],
                None,
            )
            .await?;
    }
    Ok(())
}

/// Gives `learner` (created here, with the bench password) the demo
/// student's schedule and review log, so it has the same cards due.
async fn clone_student(app: &Memora, learner: &str) -> anyhow::Result<()> {
    let id = UserId::new(learner)?;
    app.auth()
        .create_user(
            &Actor::system(),
            &id,
            "Hot learner",
            vec![Role::Student],
            Some(PWD),
        )
        .await?;
    let student = UserId::new(memora_core::demo::DEMO_STUDENT)?;
    let season = app.active_season().await?.context("an active season")?.id;
    let ports = app.ports();
    let log = ports
        .revlog
        .review_log(&student, Some(&season), 100_000)
        .await?;
    let trackers = ports.trackers.all_trackers(&student, &season).await?;
    let mut records = Vec::new();
    for (n, t) in trackers.into_iter().enumerate() {
        let Some(entry) = log.iter().find(|e| e.key.question == t.key.question) else {
            continue;
        };
        let mut tracker = t;
        tracker.key.user = id.clone();
        let mut entry = entry.clone();
        entry.key = tracker.key.clone();
        entry.review_id = memora_core::ids::ReviewId::new(format!("{learner}-{n}"))?;
        records.push(memora_core::domain::ReviewRecord {
            tracker,
            log: entry,
        });
    }
    ports.trackers.persist_batch(&records).await?;
    Ok(())
}

/// One `get_review_session` call; an error unless it returned cards.
async fn call(app: axum::Router, cookie: String) -> anyhow::Result<()> {
    let req = Request::post("/api/method/memora.api.reviews.get_review_session")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, cookie)
        .body(Body::from("{}"))?;
    let resp = app.oneshot(req).await?;
    let ok = resp.status() == StatusCode::OK;
    let body = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(ok, "get_review_session: {}", String::from_utf8_lossy(&body));
    anyhow::ensure!(
        body.len() > 200,
        "no cards: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

async fn run(
    name: &str,
    app: &axum::Router,
    cookies: &[String],
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, LatencyStats)> {
    // Warm-up: every learner's schedule and credentials are cached.
    for c in cookies {
        call(app.clone(), c.clone()).await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cookies = Arc::new(cookies.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        let cookies = Arc::clone(&cookies);
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let t = Instant::now();
                match call(app.clone(), cookies[i % cookies.len()].clone()).await {
                    Ok(()) => rec.record_us(t.elapsed().as_micros() as u64),
                    Err(_) => rec.error(),
                }
            }
            rec
        }));
    }
    let mut all = Recorder::default();
    for t in tasks {
        all.merge(&t.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = all.stats();
    println!(
        "{name:<11} {:>9.0} calls/s   P50 {:>6.3} ms   P99 {:>6.3} ms   errors {}",
        requests as f64 / secs,
        stats.p50_ms,
        stats.p99_ms,
        stats.errors
    );
    Ok((requests as f64 / secs, stats))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let learners = args.learners.max(1);

    // Standalone: one Memora, no platform.
    let solo = Arc::new(Memora::new(ports(), Config::default()));
    memora_core::demo::seed_demo(&solo, PWD).await?;
    more_learners(&solo, "solo", learners).await?;
    let solo_app = router(Arc::new(AppState {
        memora: Arc::clone(&solo),
        platform: None,
        metrics: None,
        secure_cookies: false,
        metrics_token: None,
    }));
    // As many hot learners as the spread scenario has institutions, so
    // every scenario spreads its calls over the same number of learners.
    let hot = args.institutions.max(1);
    let mut solo_cookies = Vec::new();
    for n in 0..hot {
        let who = format!("hot{n}@solo.bench");
        clone_student(&solo, &who).await?;
        solo_cookies.push(login(&solo_app, &who).await?);
    }

    // The platform.
    let directory = Arc::new(InMemoryDirectory::new());
    let home = Arc::new(Memora::in_institution(
        ports(),
        Config::default(),
        TenantScope {
            institution: InstitutionId::home(),
            directory: Some(directory.clone()),
        },
    ));
    memora_core::demo::seed_demo(&home, PWD).await?;
    more_learners(&home, "home", learners).await?;
    let platform = Arc::new(Platform::new(
        Arc::clone(&home),
        directory,
        Arc::new(MemTenants),
    ));
    let rss_before = rss_kib();
    let t0 = Instant::now();
    for i in 0..args.institutions {
        let id = InstitutionId::new(&format!("school-{i}"))?;
        let tag = id.to_string();
        platform
            .create_institution(
                &Actor::system(),
                &InstitutionId::home(),
                id.clone(),
                &format!("School {i}"),
                NewManager {
                    user: UserId::new(format!("admin@{tag}.bench"))?,
                    full_name: "Manager".into(),
                    password: PWD.into(),
                },
            )
            .await?;
        let app = platform.tenant(&id)?;
        memora_core::demo::seed_demo_as(
            &app,
            PWD,
            memora_core::demo::DemoAccounts {
                admin: (&format!("admin@{tag}.bench"), "Manager"),
                student: (&format!("student@{tag}.bench"), "Student"),
            },
        )
        .await?;
        more_learners(&app, &tag, learners).await?;
    }
    let built_in = t0.elapsed();
    let rss_after = rss_kib();
    let app = router(Arc::new(AppState {
        memora: Arc::clone(&home),
        platform: Some(Arc::clone(&platform)),
        metrics: None,
        secure_cookies: false,
        metrics_token: None,
    }));
    let mut home_cookies = Vec::new();
    for n in 0..hot {
        let who = format!("hot{n}@home.bench");
        clone_student(&home, &who).await?;
        home_cookies.push(login(&app, &who).await?);
    }
    let mut spread = Vec::new();
    for i in 0..args.institutions {
        spread.push(login(&app, &format!("student@school-{i}.bench")).await?);
    }
    if spread.is_empty() {
        spread = home_cookies.clone();
    }
    println!(
        "{} institutions × {learners} learners (+ home): built in {:.1} s; {} calls per scenario, {} callers, 2 worker threads",
        args.institutions,
        built_in.as_secs_f64(),
        args.requests,
        args.concurrency
    );
    let (solo_rate, solo) = run(
        "standalone",
        &solo_app,
        &solo_cookies,
        args.requests,
        args.concurrency,
    )
    .await?;
    let (home_rate, home_stats) =
        run("home", &app, &home_cookies, args.requests, args.concurrency).await?;
    let (spread_rate, spread_stats) =
        run("spread", &app, &spread, args.requests, args.concurrency).await?;
    println!(
        "spread ÷ standalone: rate {:.3}, P99 {:.3}; home ÷ standalone: rate {:.3}, P99 {:.3}",
        spread_rate / solo_rate,
        spread_stats.p99_ms / solo.p99_ms,
        home_rate / solo_rate,
        home_stats.p99_ms / solo.p99_ms
    );
    if args.institutions > 0 {
        println!(
            "resident memory per institution (demo catalog, {learners} accounts, caches): {:.0} KiB",
            (rss_after.saturating_sub(rss_before)) as f64 / args.institutions as f64
        );
    }
    Ok(())
}
