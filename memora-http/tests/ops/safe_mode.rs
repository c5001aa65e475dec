//! Redis down when the server starts: the server starts anyway, in safe
//! mode, says so naming the (redacted) URL, keeps answers durable by writing
//! them to PostgreSQL, and leaves safe mode when Redis appears.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DEMO_PASSWORD, Db, Redis, SERIAL, Server, Session, run};

const STUDENT: &str = memora_core::demo::DEMO_STUDENT;
const LOG_ROWS: &str = "SELECT count(*) FROM review_log WHERE user_id = $1";

async fn readyz(base: &str) -> Value {
    reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz JSON")
}

/// Serves one card to the student and answers it; returns the reply.
async fn answer_one(student: &Session, review_id: &str) -> Value {
    let session = student
        .ok("reviews.get_review_session", json!({"limit": 1}))
        .await;
    let q = session["questions"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a due card: {session}"))
        .to_owned();
    student
        .ok(
            "reviews.submit_review_session",
            json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 2000, "review_id": review_id}]}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_up_means_safe_mode_until_it_appears() {
    let _g = SERIAL.lock().await;
    let Some(db) = Db::create().await else { return };
    let Some(mut redis) = Redis::reserve() else {
        return;
    };
    let seeded = run(
        &["seed-demo"],
        &[
            ("MEMORA_DATABASE_URL", db.url.as_str()),
            ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
        ],
        None,
    );
    assert!(seeded.success, "seed-demo: {}", seeded.stderr);

    // Redis is not running yet.
    let redis_url = redis.url();
    let server = Server::start(&[
        ("MEMORA_DATABASE_URL", db.url.as_str()),
        ("MEMORA_REDIS_URL", redis_url.as_str()),
        ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
        ("MEMORA_QUEUE_RECLAIM_IDLE_MS", "1500"),
    ])
    .await;
    let base = server.base();
    let log = server.output();
    assert!(log.contains("SAFE MODE"), "a clear warning:\n{log}");
    let shown = format!("redis://:***@127.0.0.1:{}", redis.port);
    assert!(log.contains(&shown), "names {shown}:\n{log}");
    assert!(log.contains("Connection refused"), "says why:\n{log}");
    assert!(!log.contains(redis.password), "leaks the password:\n{log}");
    let ready = readyz(&base).await;
    assert_eq!(ready["safe_mode"], true, "{ready}");
    assert_eq!(ready["cache"], "unavailable", "{ready}");
    assert_eq!(ready["breakers"]["due_cache"], "open", "{ready}");

    // An answer acknowledged in safe mode is already in PostgreSQL.
    let student = Session::login(&base, STUDENT, DEMO_PASSWORD).await;
    let before = db.count(LOG_ROWS, STUDENT).await;
    let reply = answer_one(&student, "ops-safe-1").await;
    assert_eq!(reply["processed"], 1, "{reply}");
    assert_eq!(
        reply["persistence_status"], "done",
        "written through: {reply}"
    );
    assert_eq!(db.count(LOG_ROWS, STUDENT).await, before + 1);

    // Redis appears: the server leaves safe mode by itself.
    redis.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = readyz(&base).await;
        // Every breaker closes once Redis answers (the probe pings the
        // cache and asks the queue its depth).
        if ready["safe_mode"] == false
            && ready["cache"] == "ok"
            && ready["breakers"]
                == json!({"due_cache": "closed", "leaderboards": "closed", "queue": "closed"})
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still in safe mode 20 s after Redis started: {ready}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server
        .wait_for_output("leaving safe mode", Duration::from_secs(5))
        .await;
    let admin = Session::login(&base, memora_core::demo::DEMO_ADMIN, DEMO_PASSWORD).await;
    let status = admin.ok("srs.get_cache_status", json!({})).await;
    assert_eq!(status["redis_connected"], true, "{status}");
    assert_eq!(status["is_safe_mode"], false, "{status}");

    // Answers now go through the Redis queue and reach PostgreSQL.
    let reply = answer_one(&student, "ops-normal-1").await;
    assert_eq!(reply["processed"], 1, "{reply}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.count(LOG_ROWS, STUDENT).await < before + 2 {
        assert!(
            Instant::now() < deadline,
            "the queued answer never reached PostgreSQL: {reply}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
