//! Bulk loader and benchmark driver for the PostgreSQL store.
//!
//! ```text
//! memora-pg-load [--url URL] [--create-db] [--season SEASON-2026]
//!                [--players N] [--questions M] [--reviews] [--seed S]
//!                [--skip-load] [--bench] [--due-queries N] [--batches N]
//!                [--batch-size N] [--scan-rows N] [--archive-rows N]
//! ```
//!
//! The URL defaults to `$MEMORA_BENCH_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/memora_bench`. With `--create-db` the
//! database is created first (through the `postgres` maintenance database).

use std::error::Error;
use std::time::{Duration, Instant};

use chrono::Utc;
use memora_core::domain::{ReviewLogEntry, ReviewRecord, ReviewSource, TrackerKey};
use memora_core::ids::{QuestionId, ReviewId, SeasonId, UserId};
use memora_core::ports::{ArchiveStore, DueFilter, SeasonScanStore, TrackerStore};
use memora_core::srs::{Grade, SchedulerKind};
use memora_core::util::SplitMix64;
use memora_store_postgres::{PgStore, bench_question, bench_user};
use sqlx::Connection;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    url: String,
    create_db: bool,
    season: String,
    players: usize,
    questions: usize,
    reviews: bool,
    seed: u64,
    skip_load: bool,
    bench: bool,
    due_queries: usize,
    batches: usize,
    batch_size: usize,
    scan_rows: usize,
    archive_rows: usize,
}

fn parse() -> Res<Args> {
    let mut a = Args {
        url: std::env::var("MEMORA_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/memora_bench".into()),
        create_db: false,
        season: "SEASON-2026".into(),
        players: 1000,
        questions: 1000,
        reviews: false,
        seed: 1,
        skip_load: false,
        bench: false,
        due_queries: 2000,
        batches: 200,
        batch_size: 500,
        scan_rows: 2_000_000,
        archive_rows: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--create-db" => a.create_db = true,
            "--season" => a.season = val()?,
            "--players" => a.players = val()?.parse()?,
            "--questions" => a.questions = val()?.parse()?,
            "--reviews" => a.reviews = true,
            "--seed" => a.seed = val()?.parse()?,
            "--skip-load" => a.skip_load = true,
            "--bench" => a.bench = true,
            "--due-queries" => a.due_queries = val()?.parse()?,
            "--batches" => a.batches = val()?.parse()?,
            "--batch-size" => a.batch_size = val()?.parse()?,
            "--scan-rows" => a.scan_rows = val()?.parse()?,
            "--archive-rows" => a.archive_rows = val()?.parse()?,
            "-h" | "--help" => {
                println!("see the module documentation of memora-pg-load");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

async fn create_db(url: &str) -> Res<()> {
    let (base, db) = url.rsplit_once('/').ok_or("url has no database")?;
    let db = db.split('?').next().unwrap_or(db);
    let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut c)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE \"{}\"", db.replace('"', "")))
            .execute(&mut c)
            .await?;
        println!("created database {db}");
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn bench(store: &PgStore, a: &Args, season: &SeasonId) -> Res<()> {
    let mut rng = SplitMix64::new(a.seed ^ 0xBEEF);
    let players = a.players.max(1);

    // 1. Safe-mode due query latency (sequential, one connection busy).
    let mut lat = Vec::with_capacity(a.due_queries);
    for _ in 0..a.due_queries {
        let u = UserId::new(bench_user(rng.below(players)))?;
        let t = Instant::now();
        let rows = store
            .due_trackers(&u, season, &DueFilter::default(), Utc::now(), 50)
            .await?;
        lat.push(t.elapsed());
        std::hint::black_box(rows);
    }
    lat.sort();
    println!(
        "due query (limit 50): n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );

    // 2. Batch persistence: cross-user batches of existing keys (upserts of
    //    newer states + new review-log rows), 4 concurrent writers.
    let now = Utc::now();
    let mut batches = Vec::with_capacity(a.batches);
    for b in 0..a.batches {
        let mut recs = Vec::with_capacity(a.batch_size);
        for i in 0..a.batch_size {
            let key = TrackerKey {
                user: UserId::new(bench_user(rng.below(players)))?,
                season: season.clone(),
                question: QuestionId::parse(bench_question(rng.below(a.questions.max(1))))?,
            };
            let mut state = memora_core::srs::CardState {
                kind: SchedulerKind::Ladder,
                phase: memora_core::srs::Phase::Review,
                step: 0,
                stability: 2.0,
                difficulty: 0.0,
                reps: 3,
                lapses: 0,
                last_review: Some(now),
                due: now + chrono::Duration::days(3),
                scheduled_days: 3,
            };
            state.reps += (i % 3) as u32;
            recs.push(ReviewRecord {
                tracker: memora_core::domain::MemoryTracker {
                    key: key.clone(),
                    subject: None,
                    topic: None,
                    state: state.clone(),
                },
                log: ReviewLogEntry {
                    review_id: ReviewId::new(format!("bench-run{}-{b}-{i}", a.seed))?,
                    key,
                    source: ReviewSource::Review,
                    grade: Grade::Good,
                    is_correct: true,
                    duration_ms: 1200,
                    attempts: 1,
                    reviewed_at: now,
                    elapsed_days: 2,
                    scheduler: SchedulerKind::Ladder,
                    state_after: state,
                },
            });
        }
        batches.push(recs);
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let t = Instant::now();
    let chunks: Vec<Vec<Vec<ReviewRecord>>> = {
        let mut c: Vec<Vec<Vec<ReviewRecord>>> = (0..4).map(|_| Vec::new()).collect();
        for (i, b) in batches.into_iter().enumerate() {
            c[i % 4].push(b);
        }
        c
    };
    let mut tasks = Vec::new();
    for chunk in chunks {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in chunk {
                s.persist_batch(&b).await?;
            }
            Ok::<_, memora_core::PortError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let el = t.elapsed();
    println!(
        "persist_batch: {} answers in {} batches of {} (4 writers): {:.2} s = {:.0} answers/s",
        total,
        a.batches,
        a.batch_size,
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64()
    );

    // 3. Season scan (keyset pages of 5 000).
    let t = Instant::now();
    let mut after: Option<TrackerKey> = None;
    let mut rows = 0usize;
    while rows < a.scan_rows {
        let page = store.scan_season(season, after.as_ref(), 5000).await?;
        if page.is_empty() {
            break;
        }
        rows += page.len();
        after = page.last().map(|r| r.key.clone());
    }
    let el = t.elapsed();
    println!(
        "scan_season: {rows} rows in {:.2} s = {:.0} rows/s",
        el.as_secs_f64(),
        rows as f64 / el.as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let a = parse()?;
    if a.create_db {
        create_db(&a.url).await?;
    }
    let store = PgStore::connect(&a.url, 8).await?;
    store.migrate().await?;
    let season = SeasonId::new(&a.season)?;
    if !a.skip_load {
        let r = store
            .bulk_load(&season, a.players, a.questions, a.reviews, a.seed)
            .await?;
        println!(
            "bulk_load: {} trackers, {} review-log rows in {:.1} s ({:.0} rows/s)",
            r.trackers,
            r.reviews,
            r.elapsed.as_secs_f64(),
            (r.trackers + r.reviews) as f64 / r.elapsed.as_secs_f64()
        );
    }
    if a.bench {
        bench(&store, &a, &season).await?;
    }
    if a.archive_rows > 0 {
        let arch = SeasonId::new("SEASON-2099-ARCHIVE_BENCH")?;
        let players = (a.archive_rows / 500).max(1);
        let r = store.bulk_load(&arch, players, 500, false, a.seed).await?;
        println!("archive bench: loaded {} rows", r.trackers);
        let t = Instant::now();
        let moved = store.archive_season(&arch, Utc::now()).await?;
        println!(
            "archive_season: {moved} rows in {:.2} s = {:.0} rows/s",
            t.elapsed().as_secs_f64(),
            moved as f64 / t.elapsed().as_secs_f64()
        );
        let flagged = store
            .flag_archived_before(Utc::now() + chrono::Duration::seconds(1))
            .await?;
        let t = Instant::now();
        let deleted = store.delete_flagged(Some(&arch)).await?;
        println!(
            "delete_flagged: {deleted} of {flagged} flagged rows in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
