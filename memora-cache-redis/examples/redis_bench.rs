//! Measures the Redis adapters (see docs/perf/redis.md):
//!
//! `cargo run --release -p memora-cache-redis --example redis_bench -- [redis-url]`
//!
//! With `ONLY_LOAD=1` it stops after the rehydration figures;
//! `ONLY_PUT=1` after the rehydration figures and the put figures;
//! `QUESTION_KEYS=ids` measures layout 3 (cards under their ids, subjects
//! and topics in a dictionary per schedule) instead of the default layout
//! 5 (questions, subjects and topics by number);
//! `MEMORY_LEARNERS=100000` adds the bytes per card of that many learners
//! of 100 ladder cards each (10 M cards: ~1 GB of Redis with `ids`);
//! `TOPICS=40` files the memory shapes' cards under that many topics per
//! learner (of 50 × that many in all), as the bulk loader's learners had
//! them before it took its subjects from the data generator's catalog.
//!
//! Uses a throwaway namespace and deletes its keys at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use memora_cache_redis::{PersistenceWorker, RedisConfig, RedisDueCache, RedisQueue, WorkerConfig};
use memora_core::Memora;
use memora_core::domain::{
    Actor, MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource, Season, TrackerKey,
};
use memora_core::ids::{JobId, QuestionId, ReviewId, SeasonId, SubjectId, UserId};
use memora_core::memory::InMemoryBackend;
use memora_core::ports::{DueCache, PersistJob, PersistenceQueue, SeasonStore, TrackerStore};
use memora_core::srs::{CardState, Grade, Phase, SchedulerKind};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn tracker(u: &UserId, s: &SeasonId, i: usize, due_days: i64) -> Res<MemoryTracker> {
    let now = Utc::now();
    Ok(MemoryTracker {
        key: TrackerKey {
            user: u.clone(),
            season: s.clone(),
            question: QuestionId::parse(format!("stage-{:06}:{}", i / 4, i % 4))?,
        },
        subject: Some(SubjectId::new(
            ["math", "history", "science", "arabic"][i % 4],
        )?),
        topic: None,
        state: CardState {
            kind: SchedulerKind::Fsrs6,
            phase: Phase::Review,
            step: 0,
            stability: 12.5,
            difficulty: 5.25,
            reps: 5,
            lapses: 0,
            last_review: Some(now - chrono::Duration::days(3)),
            due: now + chrono::Duration::minutes(due_days * 1440 + (i as i64 % 1440)),
            scheduled_days: 7,
        },
    })
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn rows_for(u: &UserId, s: &SeasonId, n: usize) -> Res<Vec<MemoryTracker>> {
    // Due spread over -30..+150 days: ~1/6 due now, ~1/20 within a week.
    (0..n)
        .map(|i| tracker(u, s, i, (i as i64 * 7919 % 180) - 30))
        .collect()
}

#[tokio::main]
async fn main() -> Res<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let ns = format!("bench{}:", std::process::id());
    let cfg = RedisConfig::single(url.clone()).namespace(ns.clone());
    // The server's default: numbers from the store (here in memory).
    let numbered = std::env::var("QUESTION_KEYS").map_or(true, |v| v != "ids");
    let numbering = memora_cache_redis::Numbering::new(Arc::new(InMemoryBackend::new()));
    let layout = |c: RedisDueCache| {
        if numbered {
            c.with_numbering(numbering.clone())
        } else {
            c
        }
    };
    println!(
        "layout {}: {}",
        if numbered { 5 } else { 3 },
        if numbered {
            "questions, subjects and topics by number"
        } else {
            "questions by id, subjects and topics in a dictionary per schedule"
        }
    );
    let cache = layout(RedisDueCache::connect(cfg.clone()).await?);
    let s = SeasonId::new("SEASON-2026")?;
    let u = UserId::new("bench-user")?;
    let n = 100_000;
    let rows = rows_for(&u, &s, n).await?;

    // 1. Rehydration (load) of a 100 K-question user.
    let mut loads = Vec::new();
    for _ in 0..7 {
        cache.clear_user(&u, &s).await?;
        let t = Instant::now();
        cache.load(&u, &s, &rows).await?;
        loads.push(t.elapsed());
    }
    let t = Instant::now();
    cache.load(&u, &s, &rows).await?;
    let reload = t.elapsed();
    println!(
        "load 100K (absent): p50 {:?} min {:?} max {:?}; reload over present schedule {:?}",
        pct(&mut loads, 0.5),
        loads[0],
        loads[loads.len() - 1],
        reload
    );

    if std::env::var("ONLY_LOAD").is_ok() {
        return Ok(());
    }
    // 1b. Writes of one submission's 50 answers into a 200-card learner,
    // then the same rows again (the persistence worker's refresh).
    put_bench(&cache, &s, &url).await?;
    if std::env::var("ONLY_PUT").is_ok() {
        return Ok(());
    }
    // 2. Due-items latency at 100 K members (sequential, 2000 calls each):
    // repeated reads (the schedule keeps its last unfiltered answer until a
    // write) and fresh ones (the limit alternates, so none is reused).
    let math = SubjectId::new("math")?;
    for (label, subject, fresh) in [
        ("due (all, repeated)", None, false),
        ("due (all, fresh)", None, true),
        ("due (subject)", Some(&math), true),
    ] {
        let mut lat = Vec::new();
        for k in 0..2000 {
            let limit = if fresh { 15 - k % 2 } else { 15 };
            let t = Instant::now();
            let d = cache.due(&u, &s, subject, Utc::now(), limit).await?;
            lat.push(t.elapsed());
            assert!(d.is_some_and(|d| d.items.len() == limit));
        }
        println!(
            "{label} limit 15 @100K: p50 {:?} p99 {:?}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }

    // 3. Memory per member, with and without horizon (7 days).
    let full = cache.schedule_memory(&u, &s).await?;
    println!(
        "memory: {full} B for {n} members = {:.1} B/member",
        full as f64 / n as f64
    );
    // The same for ladder cards (the default scheduler: a whole-number
    // level as stability, no difficulty) in learners of 100, 1 000 and
    // 100 000 cards, as `used_memory` grows (keys, expiries and all).
    let mut shapes = vec![(1000usize, 100usize), (100, 1000), (1, 100_000)];
    if let Some(many) = std::env::var("MEMORY_LEARNERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        shapes.push((many, 100));
    }
    for (learners, per) in shapes {
        let info = || async {
            let v: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(
                    &mut redis::Client::open(url.as_str())?
                        .get_multiplexed_async_connection()
                        .await?,
                )
                .await?;
            let used = v
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|x| x.trim().parse::<u64>().ok())
                .ok_or("used_memory")?;
            Res::Ok(used)
        };
        let before = info().await?;
        let users: Vec<UserId> = (0..learners)
            .map(|k| UserId::new(format!("ladder-{per}-{k}")))
            .collect::<Result<_, _>>()?;
        let topics = std::env::var("TOPICS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|t| *t > 0);
        // 16 loads at once, as a season rebuild runs them.
        let loaded: Vec<Res<()>> =
            futures::stream::iter(users.iter().enumerate().map(|(k, lu)| {
                let cache = cache.clone();
                let s = s.clone();
                async move {
                    let rows = (0..per)
                        .map(|i| {
                            let mut t = tracker(lu, &s, i, (i as i64 * 7919 % 180) - 30)?;
                            if let Some(n) = topics {
                                t.topic = Some(memora_core::ids::TopicId::new(format!(
                                    "topic-{:05}",
                                    (k % 50) * n + i % n
                                ))?);
                            }
                            t.state.kind = memora_core::srs::SchedulerKind::Ladder;
                            t.state.stability = (1 + i % 7) as f64;
                            t.state.difficulty = 0.0;
                            Ok(t)
                        })
                        .collect::<Res<Vec<_>>>()?;
                    cache.load(lu, &s, &rows).await?;
                    Res::Ok(())
                }
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        loaded.into_iter().collect::<Res<Vec<()>>>()?;
        let after = info().await?;
        let with_topics = topics.map(|t| format!(", {t} topics")).unwrap_or_default();
        println!(
            "memory, ladder cards{with_topics}, {learners} learner(s) x {per}: used_memory +{} B = {:.1} B/card",
            after - before,
            (after - before) as f64 / (learners * per) as f64
        );
        let cleared: Vec<memora_core::PortResult<()>> =
            futures::stream::iter(users.iter().map(|lu| cache.clear_user(lu, &s)))
                .buffer_unordered(16)
                .collect()
                .await;
        cleared.into_iter().collect::<Result<Vec<()>, _>>()?;
    }
    let hz_cache = layout(RedisDueCache::connect(cfg.clone().horizon_days(Some(7))).await?);
    let u2 = UserId::new("bench-user-hz")?;
    hz_cache.load(&u2, &s, &rows).await?;
    let st = hz_cache
        .user_stats(&u2, &s, Utc::now())
        .await?
        .ok_or("horizon schedule absent")?;
    let hz = hz_cache.schedule_memory(&u2, &s).await?;
    println!(
        "horizon 7 d: {} of {n} members cached, {hz} B = {:.1} B per logical member ({:.0}% saved)",
        st.total,
        hz as f64 / n as f64,
        100.0 * (1.0 - hz as f64 / full as f64)
    );
    hz_cache.clear_user(&u2, &s).await?;
    cache.clear_user(&u, &s).await?;

    // 4. Season rebuild rate through the core (InMemoryBackend store).
    let season = Season::new(
        s.clone(),
        "bench",
        chrono::NaiveDate::from_ymd_opt(2025, 9, 1).ok_or("date")?,
        chrono::NaiveDate::from_ymd_opt(2026, 8, 31).ok_or("date")?,
    )?;
    let users: usize = std::env::var("REBUILD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let per_user = 100;
    let mut records = Vec::new();
    for k in 0..users {
        let uk = UserId::new(format!("rb-{k:05}"))?;
        for i in 0..per_user {
            let t = tracker(&uk, &s, i, (i as i64 % 60) - 10)?;
            records.push(record(t, &format!("rb-{k}-{i}"))?);
        }
    }
    // One schedule at a time (the rebuild before it loaded users
    // concurrently) against the default concurrency, same records.
    let admin = Actor::admin(UserId::new("admin")?);
    let mut app = None;
    let concurrencies: Vec<usize> = match std::env::var("REBUILD_CONCURRENCY") {
        Ok(v) => v.split(',').filter_map(|c| c.trim().parse().ok()).collect(),
        Err(_) => vec![
            1,
            memora_core::services::Config::default().rebuild_concurrency,
        ],
    };
    for concurrency in concurrencies {
        cache.clear_season(&s).await?;
        let backend = InMemoryBackend::new();
        backend.create_season(&season).await?;
        for chunk in records.chunks(10_000) {
            backend.persist_batch(chunk).await?;
        }
        let mut ports = backend.ports();
        ports.cache = Arc::new(cache.clone());
        let config = memora_core::services::Config {
            rebuild_batch_size: 5000,
            rebuild_concurrency: concurrency,
            ..memora_core::services::Config::default()
        };
        let a = Arc::new(Memora::new(ports, config));
        let job = a.admin().start_season_rebuild(&admin, &s).await?;
        let t = Instant::now();
        let p = a.admin().run_season_rebuild(&job.id).await?;
        let el = t.elapsed();
        println!(
            "season rebuild, {concurrency} schedule(s) at once: {} records / {} users in {:?} = {:.0} records/s",
            p.processed,
            p.users,
            el,
            p.processed as f64 / el.as_secs_f64()
        );
        app = Some(a);
    }
    let app = app.ok_or("no rebuild ran")?;
    cache.clear_season(&s).await?;

    // 5. Queue throughput: 2000 jobs × 10 answers through one worker.
    let q = RedisQueue::connect(cfg.clone()).await?;
    let jobs = 2000;
    for j in 0..jobs {
        let uk = UserId::new(format!("q-{:04}", j % 500))?;
        let recs = (0..10)
            .map(|i| record(tracker(&uk, &s, j * 10 + i, 1)?, &format!("q-{j}-{i}")))
            .collect::<Res<Vec<_>>>()?;
        q.enqueue(&PersistJob {
            id: JobId::new(format!("job-{j}"))?,
            records: recs,
        })
        .await?;
    }
    let worker = PersistenceWorker::new(
        cfg.clone(),
        app.clone(),
        WorkerConfig {
            consumer: "bench".into(),
            ..WorkerConfig::default()
        },
    )
    .await?;
    let t = Instant::now();
    while q.depth().await? > 0 {
        worker.run_once().await?;
    }
    let el = t.elapsed();
    println!(
        "queue: {jobs} jobs / {} answers persisted in {:?} = {:.0} answers/s",
        jobs * 10,
        el,
        (jobs * 10) as f64 / el.as_secs_f64()
    );
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let _: i64 = redis::cmd("DEL")
        .arg(q.stream_key())
        .arg(q.stream_key().replace(":stream", ":dead"))
        .query_async(&mut c)
        .await?;
    Ok(())
}

/// Redis' CPU time so far, in seconds (`used_cpu_user` + `used_cpu_sys`).
async fn redis_cpu(c: &mut redis::aio::MultiplexedConnection) -> Res<f64> {
    let v: String = redis::cmd("INFO").arg("cpu").query_async(c).await?;
    let f = |k: &str| {
        v.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|x| x.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(f("used_cpu_user:") + f("used_cpu_sys:"))
}

/// `DueCache::put` of 50 answered cards (newer reviews, new dues) into a
/// 200-card ladder learner, each followed by a put of the same rows (what
/// the persistence worker writes back): latency and Redis CPU per put (less
/// the `INFO cpu` read around each, measured alone).
async fn put_bench(cache: &RedisDueCache, s: &SeasonId, url: &str) -> Res<()> {
    let mut c = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let u = UserId::new("bench-put")?;
    let per = 200;
    let mut rows = (0..per)
        .map(|i| {
            let mut t = tracker(&u, s, i, (i as i64 * 7919 % 180) - 30)?;
            t.state.kind = SchedulerKind::Ladder;
            t.state.stability = (1 + i % 7) as f64;
            t.state.difficulty = 0.0;
            Ok(t)
        })
        .collect::<Res<Vec<_>>>()?;
    cache.clear_user(&u, s).await?;
    cache.load(&u, s, &rows).await?;
    let n = 1000;
    let mut info = 0.0;
    for _ in 0..n {
        let a = redis_cpu(&mut c).await?;
        let b = redis_cpu(&mut c).await?;
        info += b - a;
    }
    let info = info / n as f64;
    let (mut lat_new, mut lat_same) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut cpu_new, mut cpu_same) = (0.0, 0.0);
    for k in 0..n {
        let batch: Vec<MemoryTracker> = (0..50)
            .map(|j| {
                let r = &mut rows[(k * 50 + j) % per];
                r.state.last_review = r
                    .state
                    .last_review
                    .map(|t| t + chrono::Duration::minutes(1));
                r.state.due += chrono::Duration::minutes(((k + j) % 7) as i64 * 600 - 1800);
                r.state.reps += 1;
                r.clone()
            })
            .collect();
        let c0 = redis_cpu(&mut c).await?;
        let t = Instant::now();
        cache.put(&u, s, &batch).await?;
        lat_new.push(t.elapsed());
        let c1 = redis_cpu(&mut c).await?;
        let t = Instant::now();
        cache.put(&u, s, &batch).await?;
        lat_same.push(t.elapsed());
        let c2 = redis_cpu(&mut c).await?;
        cpu_new += c1 - c0 - info;
        cpu_same += c2 - c1 - info;
    }
    println!(
        "put 50 answered cards into 200: p50 {:?}, Redis CPU {:.0} us per put; the same rows again: p50 {:?}, {:.0} us",
        pct(&mut lat_new, 0.5),
        1e6 * cpu_new / n as f64,
        pct(&mut lat_same, 0.5),
        1e6 * cpu_same / n as f64
    );
    cache.clear_user(&u, s).await?;
    Ok(())
}

fn record(t: MemoryTracker, rid: &str) -> Res<ReviewRecord> {
    Ok(ReviewRecord {
        log: ReviewLogEntry {
            review_id: ReviewId::new(rid)?,
            key: t.key.clone(),
            source: ReviewSource::Review,
            grade: Grade::Good,
            is_correct: true,
            duration_ms: 900,
            attempts: 1,
            reviewed_at: t.state.last_review.unwrap_or_else(Utc::now),
            elapsed_days: 3,
            scheduler: t.state.kind,
            state_after: t.state.clone(),
        },
        tracker: t,
    })
}
