use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

/// The tests spawn servers and restart services: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Stack {
    db: Db,
    redis: Redis,
    server: Server,
    student: Client,
    admin: Client,
}

async fn stack() -> Option<Stack> {
    let db = Db::create().await?;
    let redis = Redis::start()?;
    let env = Server::env(&db, &redis);
    Server::seed(&env);
    let server = Server::start(env).await;
    let student = Client::login(&server.base(), "student@demo.memora").await;
    let admin = Client::login(&server.base(), "admin@demo.memora").await;
    Some(Stack {
        db,
        redis,
        server,
        student,
        admin,
    })
}

fn responses(ids: &[String], tag: &str, n: usize) -> (Value, Vec<String>) {
    let mut review_ids = Vec::new();
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let rid = format!("{tag}-{i}");
            review_ids.push(rid.clone());
            json!({"question_id": ids[i % ids.len()], "quality": 3 + (i % 3), "response_time_ms": 2500, "review_id": rid})
        })
        .collect();
    (json!({"responses": list}), review_ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_full_journey_on_postgres_and_redis() {
    let _g = SERIAL.lock().await;
    let Some(mut s) = stack().await else { return };
    let c = &s.student;
    // Play a lesson.
    let lesson = c
        .ok(
            "sessions.get_lesson_details",
            json!({"lesson_id": "hist-l3"}),
        )
        .await;
    assert_eq!(lesson["stages"].as_array().unwrap().len(), 3);
    let played = c
        .ok(
            "sessions.submit_session",
            json!({"session_meta": {"lesson_id": "hist-l3"}, "gamification_results": {"xp_earned": 40, "score": 95},
                   "interactions": [{"question_id": "hist-l3-rv:0", "duration_ms": 1500, "attempts_count": 1}]}),
        )
        .await;
    assert_eq!(played["xp_earned"], 40);
    let before = c.ok("profile.get_full_profile_stats", json!({})).await;
    // Review due items.
    let ids = c.due_ids(10).await;
    assert_eq!(ids.len(), 10, "the demo leaves items due");
    let (body, _) = responses(&ids[..5], "e2e", 5);
    let out = c.ok("reviews.submit_review_session", body).await;
    assert_eq!(out["processed"], 5);
    assert!(out["xp_earned"].as_i64().unwrap() > 0);
    wait_drained(&s.admin).await;
    let after = c.ok("profile.get_full_profile_stats", json!({})).await;
    assert!(after["totalXP"].as_i64().unwrap() > before["totalXP"].as_i64().unwrap());
    assert!(after["streak"].as_u64().unwrap() >= 1);
    assert_ne!(after["mastery"], before["mastery"]);
    let quests = c.ok("quests.get_daily_quests", json!({})).await;
    assert!(
        quests
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["id"] == "quest_streak" && q["status"] == "completed")
    );
    let claim = c
        .ok(
            "quests.claim_quest_reward",
            json!({"quest_id": "quest_streak"}),
        )
        .await;
    assert_eq!(claim["xp_awarded"], 100);
    let (status, _, _) = c
        .call(
            "quests.claim_quest_reward",
            json!({"quest_id": "quest_streak"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 409);
    let board = c
        .ok("leaderboard.get_leaderboard", json!({"period": "weekly"}))
        .await;
    assert_eq!(board["userRank"]["rank"], 1);
    // Stop the cache: safe mode with limits.
    s.redis.stop();
    let degraded = c
        .ok("reviews.get_review_session", json!({"limit": 5}))
        .await;
    assert_eq!(degraded["is_degraded"], true);
    assert!(!degraded["questions"].as_array().unwrap().is_empty());
    let (status, _, retry) = c
        .call("reviews.get_review_session", json!({"limit": 5}))
        .await
        .unwrap();
    assert_eq!(status, 429);
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Answers are still accepted (synchronously into PostgreSQL).
    let (body, rids) = responses(&ids[5..7], "e2e-down", 2);
    c.ok("reviews.submit_review_session", body).await;
    assert_eq!(s.db.review_counts(&rids).await.len(), 2);
    // Start it again: normal mode within seconds, no restart.
    s.redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, v, _) = c
            .call("reviews.get_review_session", json!({"limit": 5}))
            .await
            .unwrap();
        if status == 200 && v["message"]["is_degraded"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still degraded 5 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = &s.server;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_redis_stopped_mid_load_loses_nothing() {
    let _g = SERIAL.lock().await;
    let Some(mut s) = stack().await else { return };
    let ids = s.student.due_ids(20).await;
    let mut acked: Vec<String> = Vec::new();
    let mut degraded_seen = false;
    for round in 0..30 {
        if round == 10 {
            s.redis.stop();
        }
        if round == 20 {
            s.redis.restart();
        }
        let (body, rids) = responses(&ids, &format!("redis-{round}"), 10);
        let (status, v, _) = s
            .student
            .call("reviews.submit_review_session", body)
            .await
            .unwrap();
        match status {
            200 => acked.extend(rids),
            503 => {}
            other => panic!("unexpected {other}: {v}"),
        }
        let (status, v, _) = s
            .student
            .call("reviews.get_review_session", json!({"limit": 5}))
            .await
            .unwrap();
        match status {
            200 => degraded_seen |= v["message"]["is_degraded"] == true,
            429 => assert!(
                (10..30).contains(&round),
                "429 only while degraded (round {round})"
            ),
            other => panic!("unexpected {other}: {v}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(degraded_seen, "safe mode was never reported");
    assert!(
        acked.len() >= 250,
        "submissions kept succeeding: {}",
        acked.len()
    );
    wait_drained(&s.admin).await;
    let counts = s.db.review_counts(&acked).await;
    let missing: Vec<_> = acked.iter().filter(|r| !counts.contains_key(*r)).collect();
    assert!(missing.is_empty(), "lost acknowledged answers: {missing:?}");
    assert!(counts.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_server_sigkill_keeps_every_acknowledged_answer() {
    let _g = SERIAL.lock().await;
    let Some(mut s) = stack().await else { return };
    let ids = Arc::new(s.student.due_ids(20).await);
    let acked = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (c, ids, acked, stop) = (s.student.clone(), ids.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (body, rids) = responses(&ids, &format!("kill-{t}-{n}"), 10);
                n += 1;
                if let Ok((200, _, _)) = c.call("reviews.submit_review_session", body).await {
                    acked.lock().await.extend(rids);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.server.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    s.server.restart().await;
    let admin = Client::login(&s.server.base(), "admin@demo.memora").await;
    wait_drained(&admin).await;
    let acked = acked.lock().await.clone();
    assert!(!acked.is_empty());
    let counts = s.db.review_counts(&acked).await;
    let missing: Vec<_> = acked.iter().filter(|r| !counts.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged answers lost",
        missing.len(),
        acked.len()
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "duplicates in the review log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_postgres_restart_retries_without_loss_or_duplicates() {
    let _g = SERIAL.lock().await;
    if std::process::Command::new("pg_ctlcluster")
        .arg("--help")
        .output()
        .is_err()
    {
        skip("pg_ctlcluster not available");
        return;
    }
    let Some(s) = stack().await else { return };
    let ids = s.student.due_ids(20).await;
    let mut acked = Vec::new();
    for round in 0..24 {
        if round == 8 {
            let version = std::fs::read_dir("/etc/postgresql")
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_else(|| "15".into());
            let st = std::process::Command::new("pg_ctlcluster")
                .args(["--skip-systemctl-redirect", &version, "main", "restart"])
                .status()
                .unwrap();
            assert!(st.success(), "pg restart failed");
        }
        let (body, rids) = responses(&ids, &format!("pg-{round}"), 10);
        match s.student.call("reviews.submit_review_session", body).await {
            Ok((200, _, _)) => acked.extend(rids),
            Ok((503, _, _)) | Err(_) => {}
            Ok((other, v, _)) => panic!("unexpected {other}: {v}"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(acked.len() >= 100);
    wait_drained(&s.admin).await;
    let counts = s.db.review_counts(&acked).await;
    let missing: Vec<_> = acked.iter().filter(|r| !counts.contains_key(*r)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(counts.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_contention_same_user_and_question() {
    let _g = SERIAL.lock().await;
    let Some(s) = stack().await else { return };
    let q = s.student.due_ids(1).await.remove(0);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = s.student.clone();
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let rid = format!("contend-{i}");
            let body = json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 3000, "review_id": rid}]});
            let (status, v, _) = c.call("reviews.submit_review_session", body).await.unwrap();
            assert_eq!(status, 200, "{v}");
            rid
        }));
    }
    let mut rids = Vec::new();
    for t in tasks {
        rids.push(t.await.unwrap());
    }
    wait_drained(&s.admin).await;
    let counts = s.db.review_counts(&rids).await;
    assert_eq!(counts.len(), 50, "one review-log row per answer");
    assert!(counts.values().all(|n| *n == 1));
    let mut conn = s.db.conn().await;
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT count(*) FROM memory_tracker WHERE user_id = $1 AND question_id = $2",
    )
    .bind("student@demo.memora")
    .bind(&q)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows[0].0, 1, "one tracker row");
    // Cache and database agree on the final state.
    let due_db: Vec<(chrono::DateTime<chrono::Utc>,)> =
        sqlx::query_as("SELECT due FROM memory_tracker WHERE user_id = $1 AND question_id = $2")
            .bind("student@demo.memora")
            .bind(&q)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(
        due_db[0].0 > chrono::Utc::now(),
        "the answered card is no longer due"
    );
    let still_due: HashSet<String> = s.student.due_ids(50).await.into_iter().collect();
    assert!(!still_due.contains(&q));
}
