//! Operations over HTTP on the in-memory backend: what reconciliation
//! reports to Prometheus and the log, the dead letters of the persistence
//! queue, and rebuild progress.
//!
//! Metrics are recorded into a recorder installed for the test's thread
//! only (`metrics::set_default_local_recorder`; the tests run on a
//! current-thread runtime), so parallel tests cannot disturb the counts.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use memora_core::Memora;
use memora_core::domain::{MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource};
use memora_core::ids::ReviewId;
use memora_core::memory::InMemoryBackend;
use memora_core::ports::DueCache;
use memora_core::services::Config;
use memora_http::{AppState, router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde_json::{Value, json};
use tower::ServiceExt;

const PWD: &str = "test-password-1";

struct Ops {
    app: Router,
    memora: Arc<Memora>,
    backend: InMemoryBackend,
    admin: String,
}

async fn setup(recorder: &PrometheusRecorder) -> Ops {
    setup_with(recorder, Config::default()).await
}

async fn setup_with(recorder: &PrometheusRecorder, config: Config) -> Ops {
    let backend = InMemoryBackend::new();
    let memora = Arc::new(Memora::new(backend.ports(), config));
    memora_core::demo::seed_demo(&memora, PWD).await.unwrap();
    let app = router(Arc::new(AppState {
        memora: Arc::clone(&memora),
        platform: None,
        metrics: Some(recorder.handle()),
        secure_cookies: false,
        metrics_token: None,
    }));
    let admin = login(&app, memora_core::demo::DEMO_ADMIN).await;
    Ops {
        app,
        memora,
        backend,
        admin,
    }
}

async fn login(app: &Router, user: &str) -> String {
    let req = Request::post("/api/method/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("usr={user}&pwd={PWD}")))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn call(app: &Router, method: &str, cookie: &str, body: Value) -> (StatusCode, Value) {
    let sid = cookie.trim_start_matches("sid=");
    let req = Request::post(format!("/api/method/{method}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, cookie)
        .header(memora_http::CSRF_HEADER, memora_http::csrf_token(sid))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn scrape(app: &Router) -> String {
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Loads the demo student's schedule into the cache, then moves `n` rows
/// on in the store only: the cache holds `n` stale entries.
async fn stale_cache(o: &Ops, n: usize) {
    let season = o.memora.active_season().await.unwrap().unwrap().id;
    let student = memora_core::ids::UserId::new(memora_core::demo::DEMO_STUDENT).unwrap();
    let rows = o
        .memora
        .ports()
        .trackers
        .all_trackers(&student, &season)
        .await
        .unwrap();
    let cache = o.backend.cache();
    cache.load(&student, &season, &rows).await.unwrap();
    let now = o.memora.ports().clock.now();
    let records: Vec<ReviewRecord> = rows
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, r)| {
            let mut t: MemoryTracker = r.clone();
            t.state.last_review = Some(now);
            t.state.due = now + Duration::days(4);
            ReviewRecord {
                log: ReviewLogEntry {
                    review_id: ReviewId::new(format!("stale-{i}-{}", now.timestamp_micros()))
                        .unwrap(),
                    key: t.key.clone(),
                    source: ReviewSource::Review,
                    grade: memora_core::srs::Grade::Good,
                    is_correct: true,
                    duration_ms: 900,
                    attempts: 1,
                    reviewed_at: now,
                    elapsed_days: 1,
                    scheduler: t.state.kind,
                    state_after: t.state.clone(),
                },
                tracker: t,
            }
        })
        .collect();
    o.memora
        .ports()
        .trackers
        .persist_batch(&records)
        .await
        .unwrap();
}

#[tokio::test]
async fn reconciliation_alert_reaches_prometheus() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let o = setup(&recorder).await;
    stale_cache(&o, 2).await;
    let (s, v) = call(
        &o.app,
        "memora.api.srs.trigger_reconciliation",
        &o.admin,
        json!({"sample_size": 1000}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = &v["message"];
    assert_eq!(r["alert_triggered"], true, "{v}");
    assert_eq!(r["discrepancies_found"], 2, "{v}");
    let page = scrape(&o.app).await;
    assert_eq!(
        sample(&page, "memora_reconciliation_alerts_total"),
        Some(1.0),
        "{page}"
    );
    let rate = sample(&page, "memora_reconciliation_discrepancy_rate").expect("rate gauge");
    let want = r["discrepancy_rate"].as_f64().unwrap();
    assert!((rate - want).abs() < 1e-9, "{rate} vs {want}");
    assert!(page.contains("# TYPE memora_reconciliation_alerts_total counter"));
    assert!(page.contains("# TYPE memora_reconciliation_discrepancy_rate gauge"));

    // The corrected cache no longer alerts: the counter stays, the rate
    // gauge drops to 0.
    let (s, v) = call(
        &o.app,
        "memora.api.srs.trigger_reconciliation",
        &o.admin,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["alert_triggered"], false, "{v}");
    let page = scrape(&o.app).await;
    assert_eq!(
        sample(&page, "memora_reconciliation_alerts_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "memora_reconciliation_discrepancy_rate"),
        Some(0.0)
    );
}

/// A job of `n` answers of the demo student (copies of one of their rows
/// under new question ids).
async fn student_job(o: &Ops, id: &str, n: usize) -> memora_core::ports::PersistJob {
    let season = o.memora.active_season().await.unwrap().unwrap().id;
    let student = memora_core::ids::UserId::new(memora_core::demo::DEMO_STUDENT).unwrap();
    let row = o
        .memora
        .ports()
        .trackers
        .all_trackers(&student, &season)
        .await
        .unwrap()
        .remove(0);
    let now = o.memora.ports().clock.now();
    memora_core::ports::PersistJob {
        id: memora_core::ids::JobId::new(id).unwrap(),
        records: (0..n)
            .map(|i| {
                let mut t = row.clone();
                t.key.question =
                    memora_core::ids::QuestionId::parse(format!("{id}-stage:{i}")).unwrap();
                t.state.last_review = Some(now);
                ReviewRecord {
                    log: ReviewLogEntry {
                        review_id: ReviewId::new(format!("{id}-{i}")).unwrap(),
                        key: t.key.clone(),
                        source: ReviewSource::Review,
                        grade: memora_core::srs::Grade::Good,
                        is_correct: true,
                        duration_ms: 900,
                        attempts: 1,
                        reviewed_at: now,
                        elapsed_days: 1,
                        scheduler: t.state.kind,
                        state_after: t.state.clone(),
                    },
                    tracker: t,
                }
            })
            .collect(),
    }
}

#[tokio::test]
async fn dead_letters_over_http_list_get_replay_discard() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let o = setup(&recorder).await;
    let q = o.backend.queue();
    let at = o.memora.ports().clock.now() - Duration::seconds(90);
    let a = q.inject_dead_letter(&student_job(&o, "job-a", 2).await, "unavailable: db", 4, at);
    let b = q.inject_dead_letter(&student_job(&o, "job-b", 1).await, "unavailable: db", 4, at);
    // Dead-lettered answers wait: the lag is their age.
    let (_, v) = call(
        &o.app,
        "memora.api.srs.get_cache_status",
        &o.admin,
        json!({}),
    )
    .await;
    let lag = v["message"]["persistence_lag_seconds"].as_f64().unwrap();
    assert!((90.0..120.0).contains(&lag), "{v}");

    let (s, v) = call(
        &o.app,
        "memora.api.srs.list_dead_letters",
        &o.admin,
        json!({"limit": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m = &v["message"];
    assert_eq!(m["total"], 2, "{v}");
    assert_eq!(m["dead_letters"][0]["id"], a.as_str(), "{v}");
    assert_eq!(m["dead_letters"][0]["job_id"], "job-a");
    assert_eq!(
        m["dead_letters"][0]["user"],
        memora_core::demo::DEMO_STUDENT
    );
    assert_eq!(m["dead_letters"][0]["records"], 2);
    assert_eq!(m["dead_letters"][0]["attempts"], 4);
    assert_eq!(m["next_after"], a.as_str());
    let (_, v) = call(
        &o.app,
        "memora.api.srs.list_dead_letters",
        &o.admin,
        json!({"after": a, "limit": "10"}),
    )
    .await;
    assert_eq!(v["message"]["dead_letters"][0]["id"], b.as_str(), "{v}");
    assert_eq!(v["message"]["next_after"], Value::Null);

    let (s, v) = call(
        &o.app,
        "memora.api.srs.get_dead_letter",
        &o.admin,
        json!({"id": b}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["error"], "unavailable: db");

    // Bad input is a 4xx in the envelope.
    for (method, body, status) in [
        (
            "list_dead_letters",
            json!({"limit": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list_dead_letters",
            json!({"limit": 501}),
            StatusCode::BAD_REQUEST,
        ),
        ("get_dead_letter", json!({}), StatusCode::BAD_REQUEST),
        (
            "get_dead_letter",
            json!({"dead_letter_id": "nope"}),
            StatusCode::NOT_FOUND,
        ),
        ("replay_dead_letters", json!({}), StatusCode::BAD_REQUEST),
        (
            "replay_dead_letters",
            json!({"dead_letter_id": a, "all": true}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "replay_dead_letters",
            json!({"dead_letter_id": "12345"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "discard_dead_letter",
            json!({"dead_letter_id": b}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "discard_dead_letter",
            json!({"dead_letter_id": b, "confirm": "false"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "discard_dead_letter",
            json!({"dead_letter_id": "12345", "confirm": true}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, v) = call(
            &o.app,
            &format!("memora.api.srs.{method}"),
            &o.admin,
            body.clone(),
        )
        .await;
        assert_eq!(s, status, "{method} {body}: {v}");
        assert!(v["exc_type"].is_string(), "{v}");
    }
    // State changes are POST only.
    let resp = o
        .app
        .clone()
        .oneshot(
            Request::get("/api/method/memora.api.srs.replay_dead_letters?all=1")
                .header(header::COOKIE, &o.admin)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let page = scrape(&o.app).await;
    assert_eq!(
        sample(&page, "memora_persistence_dead_letters"),
        Some(2.0),
        "{page}"
    );

    let logged = o.backend.review_log_len();
    let (s, v) = call(
        &o.app,
        "memora.api.srs.replay_dead_letters",
        &o.admin,
        json!({"dead_letter_id": a}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["replayed"], 1);
    assert_eq!(o.backend.review_log_len(), logged + 2);
    let (s, v) = call(
        &o.app,
        "memora.api.srs.discard_dead_letter",
        &o.admin,
        json!({"dead_letter_id": b, "confirm": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["discarded"]["job_id"], "job-b");
    assert_eq!(
        o.backend.review_log_len(),
        logged + 2,
        "discarded, not stored"
    );
    let (_, v) = call(
        &o.app,
        "memora.api.srs.get_cache_status",
        &o.admin,
        json!({}),
    )
    .await;
    assert_eq!(v["message"]["dead_letters"], 0, "{v}");
    // Nothing acknowledged waits any more: no persistence lag.
    assert_eq!(v["message"]["persistence_lag_seconds"], 0.0, "{v}");
    let audit = o.memora.ports().audit.recent(10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"queue.replay") && actions.contains(&"queue.discard"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn rebuild_status_over_http_reports_progress_and_resumes() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let stale_after = std::time::Duration::from_millis(300);
    let o = setup_with(
        &recorder,
        Config {
            rebuild_stale_after: stale_after,
            ..Config::default()
        },
    )
    .await;
    let season = o.memora.active_season().await.unwrap().unwrap().id;
    // A rebuild registered by another process that then died (never ran it).
    let other = Memora::new(o.backend.ports(), Config::default());
    let job = other
        .admin()
        .start_season_rebuild(&memora_core::domain::Actor::system(), &season)
        .await
        .unwrap();
    let status = |o: &Ops| {
        let app = o.app.clone();
        let admin = o.admin.clone();
        let id = job.id.as_str().to_owned();
        async move {
            let (s, v) = call(
                &app,
                "memora.api.srs.get_rebuild_status",
                &admin,
                json!({"job_id": id}),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["message"].clone()
        }
    };
    let resume = json!({"season_name": season.as_str(), "resume_job_id": job.id.as_str()});
    let v = status(&o).await;
    assert_eq!(
        (v["status"].as_str(), v["resumable"].as_bool()),
        (Some("running"), Some(false)),
        "{v}"
    );
    let (s, v) = call(
        &o.app,
        "memora.api.srs.rebuild_season_cache",
        &o.admin,
        resume.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "still fresh: {v}");

    tokio::time::sleep(stale_after + std::time::Duration::from_millis(50)).await;
    let v = status(&o).await;
    assert_eq!(
        (v["status"].as_str(), v["resumable"].as_bool()),
        (Some("stale"), Some(true)),
        "{v}"
    );
    let (s, v) = call(
        &o.app,
        "memora.api.srs.rebuild_season_cache",
        &o.admin,
        json!({"season_name": "SEASON-2099", "resume_job_id": job.id.as_str()}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "another season's job: {v}");
    let (s, v) = call(
        &o.app,
        "memora.api.srs.rebuild_season_cache",
        &o.admin,
        resume,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["status"], "resumed", "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v = status(&o).await;
        if v["status"] == "completed" {
            assert_eq!(v["processed"], v["estimated_records"], "{v}");
            assert_eq!(v["error"], Value::Null);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (s, v) = call(
        &o.app,
        "memora.api.srs.get_rebuild_status",
        &o.admin,
        json!({"job_id": "no-such-job"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn dead_letters_are_listed_over_http() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let o = setup(&recorder).await;
    let (s, v) = call(
        &o.app,
        "memora.api.srs.list_dead_letters",
        &o.admin,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["total"], 0, "{v}");
    let (s, v) = call(
        &o.app,
        "memora.api.srs.get_cache_status",
        &o.admin,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["dead_letters"], 0, "{v}");
    let page = scrape(&o.app).await;
    assert_eq!(
        sample(&page, "memora_persistence_dead_letters"),
        Some(0.0),
        "{page}"
    );
}

#[tokio::test]
async fn job_runs_are_listed_for_admins_only_with_checked_arguments() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let t = setup(&recorder).await;
    let ran =
        memora_http::jobs::run_job(&t.memora, "served_purge", std::time::Duration::ZERO).await;
    assert!(
        matches!(ran, memora_http::jobs::JobRunOutcome::Ran(Ok(_))),
        "{ran:?}"
    );
    let (s, v) = call(
        &t.app,
        "memora.api.admin.get_job_runs",
        &t.admin,
        json!({"job": "served_purge"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m = &v["message"];
    assert_eq!(m["jobs"].as_array().unwrap().len(), 1);
    let run = &m["jobs"][0]["runs"][0];
    assert_eq!(run["holder"], m["this_process"]);
    assert!(run["token"].as_u64().unwrap() >= 1);
    assert!(run["outcome"].as_str().unwrap().starts_with("purged"));
    assert!(run["finished_at"].is_string());
    // Every job, most of them never run.
    let (s, v) = call(&t.app, "memora.api.admin.get_job_runs", &t.admin, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let jobs = v["message"]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), memora_http::jobs::JOB_NAMES.len());
    assert_eq!(
        jobs.iter()
            .filter(|j| !j["runs"].as_array().unwrap().is_empty())
            .count(),
        1
    );
    for (args, word) in [
        (json!({"job": "nightly"}), "job"),
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 101}), "limit"),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_job_runs",
            &t.admin,
            args.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{args}: {v}");
        assert!(v["exception"].as_str().unwrap().contains(word), "{v}");
    }
    let student = login(&t.app, memora_core::demo::DEMO_STUDENT).await;
    let (s, _) = call(&t.app, "memora.api.admin.get_job_runs", &student, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn learning_insight_is_computed_for_admins_only_with_checked_arguments() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let t = setup(&recorder).await;
    let (s, v) = call(
        &t.app,
        "memora.api.admin.get_learning_insight",
        &t.admin,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m = &v["message"];
    let forecast = m["due_forecast"].as_array().unwrap();
    assert_eq!(forecast.len(), 30);
    // The demo student's history makes cards due now: today's bar.
    assert!(forecast[0]["total"].as_u64().unwrap() > 0, "{m}");
    let by_subject: u64 = forecast[0]["by_subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["cards"].as_u64().unwrap())
        .sum();
    assert_eq!(by_subject, forecast[0]["total"].as_u64().unwrap());
    // Every live card is in one interval bucket.
    let cards: u64 = m["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["cards"].as_u64().unwrap())
        .sum();
    let student = memora_core::ids::UserId::new(memora_core::demo::DEMO_STUDENT).unwrap();
    let season = t.memora.active_season().await.unwrap().unwrap().id;
    let live = t
        .memora
        .ports()
        .trackers
        .all_trackers(&student, &season)
        .await
        .unwrap()
        .len() as u64;
    assert_eq!(cards, live);
    assert_eq!(m["intervals"].as_array().unwrap().len(), 9);
    // The demo's logged answers of the last days are counted.
    let answers: u64 = m["reviews_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["answers"].as_u64().unwrap())
        .sum();
    assert_eq!(answers, t.backend.review_log_len() as u64);
    // Ladder-scheduled demo: nothing to calibrate, said as such.
    assert_eq!(m["calibration_answers"], 0);
    assert!(m["calibration_error"].is_null());
    assert_eq!(m["fits"]["fitted"], 0);
    assert!(m["fits"]["mean_loss_before"].is_null());
    // A fit is recorded and summarised.
    let (s, v) = call(
        &t.app,
        "memora.api.srs.refit_fsrs_params",
        &t.admin,
        json!({"user": memora_core::demo::DEMO_STUDENT}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fell_back = v["message"]["fell_back"].as_bool().unwrap();
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_learning_insight",
        &t.admin,
        json!({}),
    )
    .await;
    let fits = &v["message"]["fits"];
    assert_eq!(fits["fitted"], 1, "{v}");
    assert_eq!(fits["fell_back"], u64::from(fell_back));
    // The demo's few reviews leave nothing to evaluate: no mean loss.
    assert_eq!(fits["mean_loss_before"].is_null(), fell_back, "{v}");
    for (args, status, word) in [
        (json!({"days": 0}), StatusCode::BAD_REQUEST, "days"),
        (json!({"days": 91}), StatusCode::BAD_REQUEST, "days"),
        (
            json!({"season": "SEASON-1999"}),
            StatusCode::NOT_FOUND,
            "SEASON-1999",
        ),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_learning_insight",
            &t.admin,
            args.clone(),
        )
        .await;
        assert_eq!(s, status, "{args}: {v}");
        assert!(v["exception"].as_str().unwrap().contains(word), "{v}");
    }
    let learner = login(&t.app, memora_core::demo::DEMO_STUDENT).await;
    let (s, _) = call(
        &t.app,
        "memora.api.admin.get_learning_insight",
        &learner,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
