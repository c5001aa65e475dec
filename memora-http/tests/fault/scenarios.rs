//! The scenarios. Answers count only for cards `get_review_session` served
//! to that learner (once per serving), so every round serves a session and
//! answers exactly the served cards, with fresh review ids. Volume comes
//! from many learners (`harness::learners`), each starting with a copy of
//! the demo student's due cards. Acknowledged answers are tracked by their
//! stored (learner-scoped) review ids.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

const SERVE: &str = "reviews.get_review_session";
const SUBMIT: &str = "reviews.submit_review_session";

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
    let student = Client::login(&server.base(), DEMO_STUDENT).await;
    let admin = Client::login(&server.base(), DEMO_ADMIN).await;
    Some(Stack {
        db,
        redis,
        server,
        student,
        admin,
    })
}

impl Stack {
    async fn learners(&self, prefix: &str, n: usize) -> Vec<Client> {
        learners(&self.server.base(), &self.admin, &self.db, prefix, n).await
    }
}

fn exc_type(v: &Value) -> &str {
    v["exc_type"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_full_journey_on_postgres_and_redis() {
    let _g = SERIAL.lock().await;
    let Some(mut s) = stack().await else { return };
    let c = &s.student;
    // Play a lesson: opened first, one play per opening.
    let lesson = c
        .ok(
            "sessions.get_lesson_details",
            json!({"lesson_id": "hist-l3"}),
        )
        .await;
    assert_eq!(lesson["stages"].as_array().unwrap().len(), 3);
    let play = json!({"session_meta": {"lesson_id": "hist-l3"}, "gamification_results": {"xp_earned": 40, "score": 95},
                      "interactions": [{"question_id": "hist-l3-rv:0", "duration_ms": 1500, "attempts_count": 1},
                                       {"question_id": "hist-l3-mt:0", "duration_ms": 2500, "attempts_count": 1},
                                       {"question_id": "hist-l3-x", "duration_ms": 3500, "attempts_count": 1}]});
    let played = c.ok("sessions.submit_session", play.clone()).await;
    assert_eq!(played["xp_earned"], 40);
    let (status, v, _) = c.call("sessions.submit_session", play).await.unwrap();
    assert_eq!(status, 409, "a second play of one opening: {v}");
    assert_eq!(exc_type(&v), "AnswerNotServedError");
    let before = c.ok("profile.get_full_profile_stats", json!({})).await;
    // Review served cards.
    let ids = c.serve_ids(10).await;
    assert_eq!(ids.len(), 10, "the demo leaves items due");
    let (body, _) = answers(&ids[..5], "e2e");
    let out = c.ok(SUBMIT, body).await;
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
    let degraded = c.ok(SERVE, json!({"limit": 5})).await;
    assert_eq!(degraded["is_degraded"], true);
    let served = question_ids(&degraded);
    assert!(served.len() >= 2, "safe mode serves due cards: {degraded}");
    let (status, _, retry) = c.call(SERVE, json!({"limit": 5})).await.unwrap();
    assert_eq!(status, 429);
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Answers to the cards served in safe mode are still accepted
    // (synchronously into PostgreSQL); resending them is a replay.
    let (body, rids) = answers(&served[..2], "e2e-down");
    let out = c.ok(SUBMIT, body.clone()).await;
    assert_eq!(out["processed"], 2);
    let stored: Vec<String> = rids.iter().map(|r| c.stored_id(r)).collect();
    assert_eq!(s.db.review_counts(&stored).await.len(), 2);
    let again = c.ok(SUBMIT, body).await;
    assert_eq!(
        (&again["processed"], &again["replayed"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(again["persistence_job_id"], out["persistence_job_id"]);
    assert_logged_once(&s.db, &stored).await;
    // Start it again: normal mode within seconds, no restart.
    s.redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, v, _) = c.call(SERVE, json!({"limit": 5})).await.unwrap();
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
    // One fresh learner per round: safe mode admits one session per learner
    // per 30 s, and each round answers what its session served.
    let learners = s.learners("redis", 30).await;
    let mut acked: Vec<String> = Vec::new();
    let mut degraded_seen = false;
    for (round, c) in learners.iter().enumerate() {
        if round == 10 {
            s.redis.stop();
        }
        if round == 20 {
            s.redis.restart();
        }
        let (status, v, _) = c.call(SERVE, json!({"limit": 10})).await.unwrap();
        assert_eq!(status, 200, "round {round}: a fresh learner's session: {v}");
        degraded_seen |= v["message"]["is_degraded"] == true;
        let ids = question_ids(&v["message"]);
        assert_eq!(ids.len(), 10, "round {round}: served {ids:?}");
        let (body, rids) = answers(&ids, &format!("redis-{round}"));
        let (status, v, _) = c.call(SUBMIT, body).await.unwrap();
        match status {
            200 => {
                assert_eq!(v["message"]["processed"], 10, "{v}");
                acked.extend(rids.iter().map(|r| c.stored_id(r)));
            }
            503 => {}
            other => panic!("round {round}: unexpected {other}: {v}"),
        }
        let (status, v, _) = c.call(SERVE, json!({"limit": 5})).await.unwrap();
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
    eprintln!("redis outage: {} answers acknowledged", acked.len());
    assert!(degraded_seen, "safe mode was never reported");
    assert!(
        acked.len() >= 250,
        "submissions kept succeeding: {}",
        acked.len()
    );
    wait_drained(&s.admin).await;
    assert_logged_once(&s.db, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_server_sigkill_keeps_every_acknowledged_answer() {
    let _g = SERIAL.lock().await;
    let Some(mut s) = stack().await else { return };
    let mut pool = s.learners("kill", 17).await;
    // Before the kill: one answered session (replayed after the restart),
    // and the demo student's session served but not yet answered.
    let witness = pool.pop().unwrap();
    let witness_ids = witness.serve_ids(10).await;
    assert_eq!(witness_ids.len(), 10);
    let (witness_body, witness_rids) = answers(&witness_ids, "witness");
    let witness_out = witness.ok(SUBMIT, witness_body.clone()).await;
    assert_eq!(witness_out["processed"], 10);
    let pending = s.student.serve_ids(10).await;
    assert_eq!(pending.len(), 10);
    // A shared pool of learners; a task answers one learner's due cards
    // session by session, then takes the next learner.
    let pool = Arc::new(std::sync::Mutex::new(pool));
    let acked = Arc::new(tokio::sync::Mutex::new(
        witness_rids
            .iter()
            .map(|r| witness.stored_id(r))
            .collect::<Vec<String>>(),
    ));
    let unexpected = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ran_dry = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (pool, acked, unexpected, stop, ran_dry) = (
            pool.clone(),
            acked.clone(),
            unexpected.clone(),
            stop.clone(),
            ran_dry.clone(),
        );
        tasks.push(tokio::spawn(async move {
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
                // Serve and answer against the same server process.
                let ids = match c.call(SERVE, json!({"limit": 10})).await {
                    Ok((200, v, _)) => question_ids(&v["message"]),
                    _ => continue,
                };
                if ids.is_empty() {
                    learner = None;
                    continue;
                }
                let (body, rids) = answers(&ids, &format!("kill-{t}-{n}"));
                n += 1;
                match c.call(SUBMIT, body).await {
                    Ok((200, _, _)) => acked
                        .lock()
                        .await
                        .extend(rids.iter().map(|r| c.stored_id(r))),
                    Ok((503, _, _)) | Err(_) => {}
                    Ok((other, v, _)) => unexpected.lock().await.push(format!("{other}: {v}")),
                }
            }
        }));
    }
    // SIGKILL while answers are being acknowledged: once 250 are (about
    // half of what the pool's due cards allow).
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().await.len() < 250 {
        assert!(Instant::now() < deadline, "load never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.server.kill9();
    let dry_before_kill = ran_dry.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        !dry_before_kill,
        "the learners ran out of due cards before the kill: it hit no load"
    );
    let unexpected = unexpected.lock().await.clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    {
        let acked = acked.lock().await;
        let in_db = s.db.review_counts(&acked).await.len();
        eprintln!(
            "sigkill: {} of {} acknowledged answers were still queued at the kill",
            acked.len() - in_db,
            acked.len()
        );
    }
    s.server.restart().await;
    let admin = Client::login(&s.server.base(), DEMO_ADMIN).await;
    wait_drained(&admin).await;
    let acked = acked.lock().await.clone();
    eprintln!("sigkill: {} answers acknowledged", acked.len());
    assert!(acked.len() >= 250);
    assert_logged_once(&s.db, &acked).await;
    // The served ledger outlived the process: an answer acknowledged before
    // the kill is a replay with its original outcome, a second answer to
    // the same serving is refused, and cards served before the kill can be
    // answered after it.
    let replay = witness.ok(SUBMIT, witness_body).await;
    assert_eq!(
        (&replay["processed"], &replay["replayed"]),
        (&json!(0), &json!(10)),
        "{replay}"
    );
    assert_eq!(
        replay["persistence_job_id"],
        witness_out["persistence_job_id"]
    );
    assert_eq!(replay["xp_earned"], witness_out["xp_earned"]);
    let (again, _) = answers(&witness_ids, "witness-again");
    let (status, v, _) = witness.call(SUBMIT, again).await.unwrap();
    assert_eq!((status, exc_type(&v)), (409, "AnswerNotServedError"), "{v}");
    let c = &s.student;
    let (body, rids) = answers(&pending, "after-kill");
    assert_eq!(c.ok(SUBMIT, body).await["processed"], 10);
    wait_drained(&admin).await;
    let mut all = acked;
    all.extend(rids.iter().map(|r| c.stored_id(r)));
    assert_logged_once(&s.db, &all).await;
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
    // One learner per round, logged in before the fault.
    let learners = s.learners("pg", 24).await;
    let mut acked = Vec::new();
    for (round, c) in learners.iter().enumerate() {
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
        let ids = match c.call(SERVE, json!({"limit": 10})).await {
            Ok((200, v, _)) => question_ids(&v["message"]),
            Ok((503, _, _)) | Err(_) => continue,
            Ok((other, v, _)) => panic!("round {round}: unexpected {other}: {v}"),
        };
        assert_eq!(ids.len(), 10, "round {round}: served {ids:?}");
        let (body, rids) = answers(&ids, &format!("pg-{round}"));
        match c.call(SUBMIT, body).await {
            Ok((200, _, _)) => acked.extend(rids.iter().map(|r| c.stored_id(r))),
            Ok((503, _, _)) | Err(_) => {}
            Ok((other, v, _)) => panic!("round {round}: unexpected {other}: {v}"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eprintln!("postgres restart: {} answers acknowledged", acked.len());
    assert!(acked.len() >= 100, "acknowledged {}", acked.len());
    wait_drained(&s.admin).await;
    assert_logged_once(&s.db, &acked).await;
}

/// One tracker row for the card, its due date in the future, and the
/// cache no longer serving it: cache and database agree.
async fn assert_answered_once_everywhere(s: &Stack, q: &str) {
    let mut conn = s.db.conn().await;
    let due: Vec<(chrono::DateTime<chrono::Utc>,)> =
        sqlx::query_as("SELECT due FROM memory_tracker WHERE user_id = $1 AND question_id = $2")
            .bind(s.student.user())
            .bind(q)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(due.len(), 1, "one tracker row");
    assert!(
        due[0].0 > chrono::Utc::now(),
        "the answered card is no longer due"
    );
    let still_due: HashSet<String> = s.student.serve_ids(50).await.into_iter().collect();
    assert!(!still_due.contains(q));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_contention_same_user_and_question() {
    let _g = SERIAL.lock().await;
    let Some(s) = stack().await else { return };
    let q = s.student.serve_ids(1).await.remove(0);
    let rows_before = s.db.log_rows(DEMO_STUDENT, &q).await;
    // 50 different answers to one serving of one card, all at once.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (c, q) = (s.student.clone(), q.clone());
        tasks.push(tokio::spawn(async move {
            let rid = format!("contend-{i}");
            let body = json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 3000, "review_id": rid}]});
            let (status, v, _) = c.call(SUBMIT, body).await.unwrap();
            (status, v, c.stored_id(&rid))
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let (won, lost): (Vec<_>, Vec<_>) = results.iter().partition(|(status, _, _)| *status == 200);
    assert_eq!(won.len(), 1, "exactly one answer takes effect");
    assert_eq!(won[0].1["message"]["processed"], 1, "{}", won[0].1);
    for (status, v, _) in &lost {
        assert_eq!(*status, 409, "{v}");
        assert!(
            ["AnswerNotServedError", "DuplicateEntryError"].contains(&exc_type(v)),
            "{v}"
        );
    }
    wait_drained(&s.admin).await;
    let all: Vec<String> = results.iter().map(|(_, _, r)| r.clone()).collect();
    let counts = s.db.review_counts(&all).await;
    assert_eq!(
        counts,
        [(won[0].2.clone(), 1)].into(),
        "one review-log row: the acknowledged answer's"
    );
    assert_eq!(s.db.log_rows(DEMO_STUDENT, &q).await, rows_before + 1);
    assert_answered_once_everywhere(&s, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_contention_same_review_id_is_replayed() {
    let _g = SERIAL.lock().await;
    let Some(s) = stack().await else { return };
    let q = s.student.serve_ids(1).await.remove(0);
    let rows_before = s.db.log_rows(DEMO_STUDENT, &q).await;
    let xp_before = s
        .student
        .ok("profile.get_full_profile_stats", json!({}))
        .await["totalXP"]
        .as_i64()
        .unwrap();
    // One answer sent 20 times at once (a client retrying on timeouts).
    let body = json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 3000, "review_id": "same-rid"}]});
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, body) = (s.student.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (status, v, _) = c.call(SUBMIT, body).await.unwrap();
            assert_eq!(status, 200, "{v}");
            v["message"].clone()
        }));
    }
    let mut outs = Vec::new();
    for t in tasks {
        outs.push(t.await.unwrap());
    }
    let (first, replays): (Vec<_>, Vec<_>) = outs.iter().partition(|m| m["processed"] == 1);
    assert_eq!(first.len(), 1, "exactly one takes effect: {outs:?}");
    let first = first[0];
    assert_eq!(first["replayed"], 0);
    let xp = first["xp_earned"].as_i64().unwrap();
    assert!(xp > 0, "a correct answer earns XP");
    for m in &replays {
        assert_eq!(
            (&m["processed"], &m["replayed"]),
            (&json!(0), &json!(1)),
            "{m}"
        );
        assert_eq!(m["persistence_job_id"], first["persistence_job_id"]);
        assert_eq!(m["xp_earned"], first["xp_earned"], "the original outcome");
    }
    wait_drained(&s.admin).await;
    let xp_after = s
        .student
        .ok("profile.get_full_profile_stats", json!({}))
        .await["totalXP"]
        .as_i64()
        .unwrap();
    assert_eq!(xp_after - xp_before, xp, "XP granted once");
    let stored = s.student.stored_id("same-rid");
    assert_eq!(
        s.db.review_counts(std::slice::from_ref(&stored)).await,
        [(stored, 1)].into()
    );
    assert_eq!(s.db.log_rows(DEMO_STUDENT, &q).await, rows_before + 1);
    assert_answered_once_everywhere(&s, &q).await;
}
