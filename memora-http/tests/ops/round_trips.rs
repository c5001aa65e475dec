//! The hot path's round-trip budget (docs/PERFORMANCE.md), pinned from the
//! server's own Prometheus counters on PostgreSQL + Redis: a warm
//! `get_review_session` costs no PostgreSQL round trip and one Redis round
//! trip; a `submit_review_session` at most one PostgreSQL round trip and two
//! Redis round trips, whatever the number of answers.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{DEMO_PASSWORD, Db, Redis, SERIAL, Server, Session, run};

const STUDENT: &str = memora_core::demo::DEMO_STUDENT;

/// `metric{route="…"}` → value, for the two round-trip counters.
async fn counters(base: &str) -> HashMap<(String, String), f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let mut out = HashMap::new();
    for line in text.lines() {
        for metric in [
            "memora_postgres_round_trips_total",
            "memora_redis_round_trips_total",
        ] {
            let Some(rest) = line.strip_prefix(metric) else {
                continue;
            };
            let Some(route) = rest
                .strip_prefix("{route=\"")
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            let value: f64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("a value in {line}"));
            out.insert((metric.to_owned(), route.to_owned()), value);
        }
    }
    out
}

/// Round trips of one request: (PostgreSQL, Redis).
async fn trips_of<F, Fut>(base: &str, route: &str, request: F) -> ((u64, u64), Value)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let before = counters(base).await;
    let reply = request().await;
    let after = counters(base).await;
    let delta = |metric: &str| {
        let key = (metric.to_owned(), route.to_owned());
        let d = after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0);
        d as u64
    };
    (
        (
            delta("memora_postgres_round_trips_total"),
            delta("memora_redis_round_trips_total"),
        ),
        reply,
    )
}

fn question_ids(session: &Value) -> Vec<String> {
    session["questions"]
        .as_array()
        .unwrap_or_else(|| panic!("questions: {session}"))
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

fn responses(ids: &[String], tag: &str) -> Value {
    let list: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, q)| {
            json!({"question_id": q, "quality": if n % 3 == 1 { 1 } else { 4 },
                   "response_time_ms": 2000, "review_id": format!("{tag}-{n}")})
        })
        .collect();
    json!({ "responses": list })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_review_and_submit_stay_within_their_round_trip_budget() {
    let _g = SERIAL.lock().await;
    let Some(db) = Db::create().await else { return };
    let Some(mut redis) = Redis::reserve() else {
        return;
    };
    redis.start();
    let seeded = run(
        &["seed-demo"],
        &[
            ("MEMORA_DATABASE_URL", db.url.as_str()),
            ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
        ],
        None,
    );
    assert!(seeded.success, "seed-demo: {}", seeded.stderr);
    let redis_url = redis.url();
    let server = Server::start(&[
        ("MEMORA_DATABASE_URL", db.url.as_str()),
        ("MEMORA_REDIS_URL", redis_url.as_str()),
        ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
    ])
    .await;
    let base = server.base();
    let student = Session::login(&base, STUDENT, DEMO_PASSWORD).await;

    // The demo's own history is in the log already: count from here.
    let logged_before = db
        .count(
            "SELECT count(*) FROM review_log WHERE user_id = $1",
            STUDENT,
        )
        .await;
    // Warm-up: the first read rehydrates the schedule and fills the
    // process's caches (credentials, learner clock); one answer loads the
    // submission scripts.
    let first = student
        .ok("reviews.get_review_session", json!({"limit": 1}))
        .await;
    let one = question_ids(&first);
    assert_eq!(one.len(), 1, "the demo student has due cards: {first}");
    student
        .ok("reviews.submit_review_session", responses(&one, "warm"))
        .await;

    // A warm read: no PostgreSQL, one Redis round trip.
    let ((pg, rd), session) = trips_of(&base, "get_review_session", || {
        student.ok("reviews.get_review_session", json!({"limit": 3}))
    })
    .await;
    let small = question_ids(&session);
    assert!(!small.is_empty(), "due cards left: {session}");
    assert_eq!(
        (pg, rd),
        (0, 1),
        "warm get_review_session (PostgreSQL, Redis)"
    );

    // Submissions of different sizes cost the same: ≤ 1 + ≤ 2.
    let ((pg_small, rd_small), out) = trips_of(&base, "submit_review_session", || {
        student.ok("reviews.submit_review_session", responses(&small, "s"))
    })
    .await;
    assert_eq!(out["processed"], small.len(), "{out}");
    assert!(
        pg_small <= 1 && rd_small <= 2,
        "submit of {}: {pg_small} PostgreSQL + {rd_small} Redis round trips",
        small.len()
    );

    let session = student
        .ok("reviews.get_review_session", json!({"limit": 50}))
        .await;
    let big = question_ids(&session);
    assert!(big.len() > small.len(), "a larger session: {session}");
    let ((pg_big, rd_big), out) = trips_of(&base, "submit_review_session", || {
        student.ok("reviews.submit_review_session", responses(&big, "b"))
    })
    .await;
    assert_eq!(out["processed"], big.len(), "{out}");
    assert_eq!(
        (pg_big, rd_big),
        (pg_small, rd_small),
        "the cost does not grow with the answers ({} vs {})",
        big.len(),
        small.len()
    );
    assert!(out["xp_earned"].as_i64().unwrap_or(0) > 0, "{out}");

    // The answers are durable: the worker persists them to PostgreSQL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let want = logged_before + (1 + small.len() + big.len()) as i64;
    loop {
        let n = db
            .count(
                "SELECT count(*) FROM review_log WHERE user_id = $1",
                STUDENT,
            )
            .await;
        if n >= want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} of {want} answers persisted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The mastery counts the cache kept (no store read) are the store's.
    let mut stored = [0i64; 3];
    for (bucket, slot) in stored.iter_mut().enumerate() {
        *slot = db
            .count(
                &format!(
                    "SELECT count(*) FROM memory_tracker WHERE user_id = $1 AND mastery = {bucket}"
                ),
                STUDENT,
            )
            .await;
    }
    let kept = &out["new_stability_counts"];
    assert_eq!(
        [
            kept["new"].as_i64(),
            kept["learning"].as_i64(),
            kept["mature"].as_i64()
        ],
        stored.map(Some),
        "{out}"
    );
}
