//! The abuse suite: one test per attack a hostile student (or a hostile web
//! page) tried against the server, each written to fail on the code before
//! the trust-boundary work and to pass now. Every test runs twice: on the
//! embedded in-memory backend, and on PostgreSQL + Redis (skipped with a
//! notice when the services are unreachable, failing under `CI`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use memora_core::Memora;
use memora_core::ids::{SeasonId, UserId};
use memora_core::ports::PasswordHasher;
use memora_core::services::Config;
use memora_http::{AppState, CSRF_HEADER, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const PWD: &str = "test-password-1";
const STUDENT: &str = "student@demo.memora";
const ADMIN: &str = "admin@demo.memora";

/// Counts password verifications (deterministic stand-in for timing).
struct CountingHasher {
    inner: Arc<dyn PasswordHasher>,
    verifies: AtomicUsize,
}

#[async_trait]
impl PasswordHasher for CountingHasher {
    async fn hash(&self, secret: &str) -> memora_core::error::PortResult<String> {
        self.inner.hash(secret).await
    }
    async fn verify(&self, secret: &str, hash: &str) -> memora_core::error::PortResult<bool> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(secret, hash).await
    }
    fn strength(&self, password: &str, user_inputs: &[&str]) -> (u8, Option<String>) {
        self.inner.strength(password, user_inputs)
    }
}

pub struct Stack {
    app: Router,
    memora: Arc<Memora>,
    hasher: Arc<CountingHasher>,
    season: SeasonId,
    _stop: Option<tokio::sync::watch::Sender<bool>>,
}

async fn finish(
    mut ports: memora_core::ports::Ports,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    spawners: Vec<memora_http::jobs::Spawner>,
) -> Stack {
    let hasher = Arc::new(CountingHasher {
        inner: Arc::clone(&ports.hasher),
        verifies: AtomicUsize::new(0),
    });
    ports.hasher = hasher.clone();
    let memora = Arc::new(Memora::new(ports, Config::default()));
    let info = memora_core::demo::seed_demo(&memora, PWD).await.unwrap();
    if let Some(stop) = &stop {
        for s in spawners {
            s(Arc::clone(&memora), stop.subscribe());
        }
    }
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let app = router(Arc::new(AppState {
        memora: Arc::clone(&memora),
        platform: None,
        metrics: Some(metrics),
        secure_cookies: false,
        metrics_token: Some("metrics-secret-token".into()),
    }));
    Stack {
        app,
        memora,
        hasher,
        season: info.season,
        _stop: stop,
    }
}

pub async fn memory_stack() -> Option<Stack> {
    let backend = memora_core::memory::InMemoryBackend::new();
    Some(finish(backend.ports(), None, Vec::new()).await)
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn skip(why: &str) -> Option<Stack> {
    assert!(!ci(), "CI is set, so this must not be skipped: {why}");
    eprintln!("SKIPPED (PostgreSQL + Redis abuse suite): {why}");
    None
}

/// The server's real wiring (`backend::build`) on a fresh PostgreSQL schema
/// and a fresh Redis namespace, with the persistence worker running.
pub async fn pg_redis_stack() -> Option<Stack> {
    use sqlx::Connection;
    let pg = std::env::var("MEMORA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis =
        std::env::var("MEMORA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = match sqlx::PgConnection::connect(&pg).await {
        Ok(c) => c,
        Err(e) => return skip(&format!("PostgreSQL unreachable: {e}")),
    };
    let tag = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let schema = format!("memora_abuse_{tag}");
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let url = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    let cfg = memora_http::backend::BackendConfig {
        database_url: Some(url),
        redis_url: Some(redis),
        redis_namespace: Some(format!("abuse-{tag}:")),
        db_pool_size: 4,
        queue_reclaim_idle: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let built = match memora_http::backend::build(&cfg).await {
        Ok(b) => b,
        Err(e) => return skip(&format!("backend: {e}")),
    };
    let (tx, _rx) = tokio::sync::watch::channel(false);
    Some(finish(built.ports, Some(tx), built.extras.spawners).await)
}

pub struct Session {
    cookie: String,
    csrf: String,
}

impl Stack {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        )
    }

    async fn try_login(&self, user: &str, pwd: &str) -> (StatusCode, Value, axum::http::HeaderMap) {
        let body = serde_json::to_vec(&json!({"usr": user, "pwd": pwd})).unwrap();
        self.send(
            Request::post("/api/method/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    async fn login(&self, user: &str, pwd: &str) -> Session {
        let (status, body, headers) = self.try_login(user, pwd).await;
        assert_eq!(status, StatusCode::OK, "login {user}: {body}");
        let cookie = headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        assert_eq!(headers[CSRF_HEADER].to_str().unwrap(), csrf);
        Session { cookie, csrf }
    }

    /// POST with the cookie and the CSRF header.
    async fn call(&self, s: &Session, method: &str, body: Value) -> (StatusCode, Value) {
        let (st, v, _) = self
            .send(
                Request::post(format!("/api/method/memora.api.{method}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::COOKIE, &s.cookie)
                    .header(CSRF_HEADER, &s.csrf)
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (st, v)
    }

    async fn ok(&self, s: &Session, method: &str, body: Value) -> Value {
        let (st, v) = self.call(s, method, body).await;
        assert_eq!(st, StatusCode::OK, "{method}: {v}");
        v["message"].clone()
    }

    async fn xp(&self, s: &Session) -> i64 {
        self.ok(s, "profile.get_player_profile", json!({})).await["xp"]
            .as_i64()
            .unwrap()
    }

    async fn served(&self, s: &Session, limit: usize) -> Vec<String> {
        self.ok(s, "reviews.get_review_session", json!({"limit": limit}))
            .await["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn log_rows(&self, user: &str) -> usize {
        self.drain().await;
        self.memora
            .ports()
            .revlog
            .review_log(&UserId::new(user).unwrap(), None, 100_000)
            .await
            .unwrap()
            .len()
    }

    async fn tracker_count(&self, user: &str) -> usize {
        self.memora
            .ports()
            .trackers
            .all_trackers(&UserId::new(user).unwrap(), &self.season)
            .await
            .unwrap()
            .len()
    }

    /// Waits until the write-behind queue is empty.
    async fn drain(&self) {
        for _ in 0..300 {
            if self.memora.ports().queue.depth().await.unwrap_or(0) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("persistence queue did not drain");
    }
}

fn responses(ids: &[String], quality: u8, rid_prefix: Option<&str>) -> Value {
    json!({"responses": ids.iter().enumerate().map(|(i, q)| {
        let mut r = json!({"question_id": q, "quality": quality, "response_time_ms": 2500});
        if let Some(p) = rid_prefix { r["review_id"] = json!(format!("{p}-{i}")); }
        r
    }).collect::<Vec<_>>()})
}

// ---------------------------------------------------------------------------
// The attacks
// ---------------------------------------------------------------------------

/// A premium question the student never bought, answered without being
/// served: refused, no tracker, no XP, and review sessions never serve it.
pub async fn premium_question_never_served_is_refused(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let xp = s.xp(&st).await;
    let trackers = s.tracker_count(STUDENT).await;
    let (status, v) = s
        .call(
            &st,
            "reviews.submit_review_session",
            responses(&["sci-l5-rv:0".into()], 5, None),
        )
        .await;
    assert!(status.is_client_error(), "{status} {v}");
    assert_eq!(v["exc_type"], "PermissionError", "{v}");
    assert_eq!(s.xp(&st).await, xp);
    assert_eq!(
        s.tracker_count(STUDENT).await,
        trackers,
        "no premium tracker"
    );
    let served = s.served(&st, 50).await;
    assert!(served.iter().all(|q| !q.starts_with("sci-l5")));
}

/// A free question that was never served (not due): 409, nothing changes.
pub async fn unserved_answer_is_refused_and_changes_nothing(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let served = s.served(&st, 50).await;
    let xp = s.xp(&st).await;
    let logs = s.log_rows(STUDENT).await;
    let not_served = "hist-l3-rv:0".to_owned();
    assert!(!served.contains(&not_served));
    let mut body = responses(&served[..2], 5, Some("mix"));
    body["responses"]
        .as_array_mut()
        .unwrap()
        .push(json!({"question_id": not_served, "quality": 5}));
    let (status, v) = s.call(&st, "reviews.submit_review_session", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["exc_type"], "AnswerNotServedError");
    assert_eq!(s.xp(&st).await, xp, "whole submission refused");
    assert_eq!(s.log_rows(STUDENT).await, logs);
    // The two served cards are still answerable: nothing was consumed.
    let out = s
        .ok(
            &st,
            "reviews.submit_review_session",
            responses(&served[..2], 5, Some("ok")),
        )
        .await;
    assert_eq!(out["processed"], 2);
}

/// Ten replays of one submission (same review ids), then the same answers
/// without ids: XP once, no reschedule, no extra log rows.
pub async fn replayed_submissions_earn_nothing(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let ids = s.served(&st, 5).await;
    let xp0 = s.xp(&st).await;
    let first = s
        .ok(
            &st,
            "reviews.submit_review_session",
            responses(&ids, 5, Some("farm")),
        )
        .await;
    let earned = first["xp_earned"].as_i64().unwrap();
    assert!(
        earned > 0 && earned <= 12 * ids.len() as i64,
        "bounded: {earned}"
    );
    assert_eq!(s.xp(&st).await, xp0 + earned);
    let logs = s.log_rows(STUDENT).await;
    let before = s
        .memora
        .ports()
        .trackers
        .get_trackers(
            &UserId::new(STUDENT).unwrap(),
            &s.season,
            &ids.iter()
                .map(|q| memora_core::ids::QuestionId::parse(q.clone()).unwrap())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    for _ in 0..10 {
        let again = s
            .ok(
                &st,
                "reviews.submit_review_session",
                responses(&ids, 5, Some("farm")),
            )
            .await;
        assert_eq!(again["processed"], 0);
        assert_eq!(again["replayed"], ids.len());
        assert_eq!(again["xp_earned"], earned, "the original outcome");
        assert_eq!(again["persistence_job_id"], first["persistence_job_id"]);
    }
    let (status, v) = s
        .call(
            &st,
            "reviews.submit_review_session",
            responses(&ids, 5, None),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(s.xp(&st).await, xp0 + earned, "XP granted once");
    assert_eq!(s.log_rows(STUDENT).await, logs, "no new log rows");
    let after = s
        .memora
        .ports()
        .trackers
        .get_trackers(
            &UserId::new(STUDENT).unwrap(),
            &s.season,
            &ids.iter()
                .map(|q| memora_core::ids::QuestionId::parse(q.clone()).unwrap())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(before, after, "replays never reschedule");
}

/// Twenty concurrent identical submissions: exactly one takes effect.
pub async fn concurrent_identical_submissions_take_effect_once(s: &Stack) {
    let st = Arc::new(s.login(STUDENT, PWD).await);
    let ids = s.served(&st, 3).await;
    let xp0 = s.xp(&st).await;
    let body = responses(&ids, 5, Some("race"));
    let mut outs = Vec::new();
    let calls = (0..20).map(|_| s.call(&st, "reviews.submit_review_session", body.clone()));
    for (status, v) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{v}");
        outs.push(v["message"].clone());
    }
    let fresh: Vec<&Value> = outs.iter().filter(|o| o["processed"] != 0).collect();
    assert_eq!(fresh.len(), 1, "exactly one submission took effect");
    let earned = fresh[0]["xp_earned"].as_i64().unwrap();
    assert_eq!(s.xp(&st).await, xp0 + earned);
    let without_ids = (0..10).map(|_| {
        s.call(
            &st,
            "reviews.submit_review_session",
            responses(&ids, 5, None),
        )
    });
    for (status, _) in futures::future::join_all(without_ids).await {
        assert_eq!(status, StatusCode::CONFLICT);
    }
    assert_eq!(s.xp(&st).await, xp0 + earned);
}

/// Learner B reuses learner A's review id: A's answer stays in the log.
pub async fn review_ids_are_scoped_per_learner(s: &Stack) {
    let admin = s.login(ADMIN, PWD).await;
    s.ok(
        &admin,
        "admin.create_user",
        json!({"email": "b@demo.memora", "full_name": "Bee", "password": "another-Strong-pass-7"}),
    )
    .await;
    let a = s.login(STUDENT, PWD).await;
    let ids = s.served(&a, 1).await;
    s.ok(
        &a,
        "reviews.submit_review_session",
        responses(&ids, 4, Some("shared")),
    )
    .await;
    let a_logs = s.log_rows(STUDENT).await;
    // B cannot answer A's card (never served to B), whatever the id.
    let b = s.login("b@demo.memora", "another-Strong-pass-7").await;
    let (status, _) = s
        .call(
            &b,
            "reviews.submit_review_session",
            responses(&ids, 4, Some("shared")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(s.log_rows(STUDENT).await, a_logs);
    let rows = s
        .memora
        .ports()
        .revlog
        .review_log(&UserId::new(STUDENT).unwrap(), None, 1000)
        .await
        .unwrap();
    let scoped = memora_core::services::integrity::scoped_review_id(
        &UserId::new(STUDENT).unwrap(),
        &memora_core::ids::ReviewId::new("shared-0").unwrap(),
    )
    .unwrap();
    assert!(
        rows.iter().any(|r| r.review_id == scoped),
        "A's row is there"
    );
}

/// Topic focus serves the same cards again the same day: the second answer
/// reschedules but earns no XP.
pub async fn xp_once_per_item_per_learner_day(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let first: Vec<String> = s
        .ok(
            &st,
            "reviews.get_review_session",
            json!({"topic_id": "hist-t1"}),
        )
        .await["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!first.is_empty());
    let out = s
        .ok(
            &st,
            "reviews.submit_review_session",
            responses(&first, 5, Some("day1")),
        )
        .await;
    assert!(out["xp_earned"].as_i64().unwrap() > 0);
    s.drain().await;
    let again: Vec<String> = s
        .ok(
            &st,
            "reviews.get_review_session",
            json!({"topic_id": "hist-t1"}),
        )
        .await["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .filter(|q| first.contains(q))
        .collect();
    assert!(!again.is_empty(), "topic focus serves reviewed cards again");
    let xp = s.xp(&st).await;
    let out = s
        .ok(
            &st,
            "reviews.submit_review_session",
            responses(&again, 5, Some("day1-again")),
        )
        .await;
    assert_eq!(out["processed"], again.len());
    assert_eq!(out["xp_earned"], 0, "no second XP the same learner day");
    assert_eq!(s.xp(&st).await, xp);
}

/// A lesson play needs an opening; one play per opening.
pub async fn lesson_plays_are_bound_to_openings(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let play = json!({"session_meta": {"lesson_id": "hist-l2"}, "gamification_results": {"xp_earned": 40, "score": 90},
                      "interactions": [{"question_id": "hist-l2-rv:0"}, {"question_id": "hist-l2-mt:0"}, {"question_id": "hist-l2-x"}]});
    let (status, v) = s.call(&st, "sessions.submit_session", play.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["exc_type"], "AnswerNotServedError");
    s.ok(
        &st,
        "sessions.get_lesson_details",
        json!({"lesson_id": "hist-l2"}),
    )
    .await;
    let xp = s.xp(&st).await;
    // A bare lesson id (no interactions) earns nothing and completes
    // nothing, and leaves the opening for the real play.
    let bare = json!({"session_meta": {"lesson_id": "hist-l2"}, "gamification_results": {"xp_earned": 40, "score": 100}});
    let out = s.ok(&st, "sessions.submit_session", bare).await;
    assert_eq!(out["xp_earned"], 0);
    assert_eq!(out["completed"], false);
    assert_eq!(s.xp(&st).await, xp);
    let out = s.ok(&st, "sessions.submit_session", play.clone()).await;
    assert!(out["xp_earned"].as_i64().unwrap() > 0);
    let (status, _) = s.call(&st, "sessions.submit_session", play).await;
    assert_eq!(status, StatusCode::CONFLICT, "second play of one opening");
    assert_eq!(s.xp(&st).await, xp + out["xp_earned"].as_i64().unwrap());
    // Premium lesson: cannot even be opened.
    let (status, v) = s
        .call(
            &st,
            "sessions.get_lesson_details",
            json!({"lesson_id": "sci-l5"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
}

/// State changes over GET (a link on any page), PUT/DELETE/TRACE: 405 with
/// Allow, nothing created.
pub async fn state_changes_need_post(s: &Stack) {
    let admin = s.login(ADMIN, PWD).await;
    let uri = "/api/method/memora.api.admin.create_user?email=evil@x.y&full_name=Evil&roles=System%20Manager&password=Evil-Strong-pass-1";
    let (status, v, headers) = s
        .send(
            Request::get(uri)
                .header(header::COOKIE, &admin.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(headers[header::ALLOW], "POST");
    assert_eq!(v["exc_type"], "MethodNotAllowedError");
    assert!(
        s.memora
            .auth()
            .get_user(&UserId::new("evil@x.y").unwrap())
            .await
            .unwrap()
            .is_none(),
        "no account created"
    );
    for m in [Method::PUT, Method::DELETE, Method::TRACE, Method::PATCH] {
        let (status, _, headers) = s
            .send(
                Request::builder()
                    .method(m.clone())
                    .uri("/api/method/memora.api.reviews.get_review_session")
                    .header(header::COOKIE, &admin.cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_eq!(headers[header::ALLOW], "GET, POST");
    }
    // Reads keep GET.
    let (status, _, _) = s
        .send(
            Request::get("/api/method/memora.api.reviews.get_review_session?limit=2")
                .header(header::COOKIE, &admin.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Login is POST only (no password in a URL).
    let (status, _, _) = s
        .send(
            Request::get(format!("/api/method/login?usr={STUDENT}&pwd={PWD}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Cookie sessions need the CSRF header for mutations; text/plain bodies
/// are refused; API tokens are exempt.
pub async fn csrf_is_required_for_cookie_mutations(s: &Stack) {
    let admin = s.login(ADMIN, PWD).await;
    let create = |csrf: Option<&str>, ct: &str, email: &str| {
        let mut r = Request::post("/api/method/memora.api.admin.create_user")
            .header(header::CONTENT_TYPE, ct)
            .header(header::COOKIE, &admin.cookie);
        if let Some(c) = csrf {
            r = r.header(CSRF_HEADER, c);
        }
        r.body(Body::from(
            json!({"email": email, "full_name": "X", "password": "Csrf-Strong-pass-9"}).to_string(),
        ))
        .unwrap()
    };
    let (status, v, _) = s.send(create(None, "application/json", "c1@x.y")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["exc_type"], "CSRFTokenError");
    let (status, v, _) = s
        .send(create(Some("0000"), "application/json", "c2@x.y"))
        .await;
    assert_eq!(v["exc_type"], "CSRFTokenError", "{status}");
    let (status, v, _) = s
        .send(create(Some(&admin.csrf), "text/plain", "c3@x.y"))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    for e in ["c1@x.y", "c2@x.y", "c3@x.y"] {
        assert!(
            s.memora
                .auth()
                .get_user(&UserId::new(e).unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
    let (status, v, _) = s
        .send(create(Some(&admin.csrf), "application/json", "c4@x.y"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // get_logged_user hands the token out again.
    let (_, _, headers) = s
        .send(
            Request::get("/api/method/frappe.auth.get_logged_user")
                .header(header::COOKIE, &admin.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers[CSRF_HEADER].to_str().unwrap(), admin.csrf);
    // Token auth: no CSRF header needed.
    let key = s
        .ok(&admin, "admin.create_api_key", json!({"user": ADMIN}))
        .await;
    let token = format!(
        "token {}:{}",
        key["api_key"].as_str().unwrap(),
        key["api_secret"].as_str().unwrap()
    );
    let (status, v, _) = s
        .send(
            Request::post("/api/method/memora.api.admin.create_user")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, token)
                .body(Body::from(
                    json!({"email": "c5@x.y", "full_name": "X", "password": "Token-Strong-pass-3"})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Login: backoff after 5 failures (429 + Retry-After, even for the right
/// password), and unknown accounts cost one password verification like
/// known ones.
pub async fn login_is_throttled_and_does_not_enumerate(s: &Stack) {
    let before = s.hasher.verifies.load(Ordering::SeqCst);
    let (status, _, _) = s.try_login("nobody@nowhere.x", "whatever-pass-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown_cost = s.hasher.verifies.load(Ordering::SeqCst) - before;
    let before = s.hasher.verifies.load(Ordering::SeqCst);
    let (status, _, _) = s.try_login(ADMIN, "wrong-password-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let known_cost = s.hasher.verifies.load(Ordering::SeqCst) - before;
    assert_eq!(unknown_cost, known_cost, "same work for unknown accounts");
    assert_eq!(known_cost, 1);
    for _ in 0..4 {
        let (status, _, _) = s.try_login(STUDENT, "wrong-password-1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = s.try_login(STUDENT, "wrong-password-1").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "5th failure still checked"
    );
    let before = s.hasher.verifies.load(Ordering::SeqCst);
    let (status, v, headers) = s.try_login(STUDENT, PWD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(v["exc_type"], "TooManyRequestsError");
    assert_eq!(
        s.hasher.verifies.load(Ordering::SeqCst),
        before,
        "throttled before any password work"
    );
    // Other accounts are unaffected.
    s.login(ADMIN, PWD).await;
}

/// Password policy: whitespace-only and weak passwords refused; passwords
/// are never trimmed.
pub async fn password_policy_and_no_trimming(s: &Stack) {
    let admin = s.login(ADMIN, PWD).await;
    for (email, pwd) in [
        ("w1@x.y", "          "),
        ("w2@x.y", "password"),
        ("w3@x.y", "aaaaaaaaaaaa"),
    ] {
        let (status, v) = s
            .call(
                &admin,
                "admin.create_user",
                json!({"email": email, "full_name": "W", "password": pwd}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{pwd:?}: {v}");
        assert!(v["exception"].as_str().unwrap().contains("password"), "{v}");
        assert!(
            s.memora
                .auth()
                .get_user(&UserId::new(email).unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
    let pwd = " Spaced-Out-Strong-pass-5 ";
    s.ok(
        &admin,
        "admin.create_user",
        json!({"email": "sp@x.y", "full_name": "Sp", "password": pwd}),
    )
    .await;
    let (status, _, _) = s.try_login("sp@x.y", pwd.trim()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "trimmed password is a different password"
    );
    s.login("sp@x.y", pwd).await;
}

/// Switching time zone cannot open a second "today" for quest rewards.
pub async fn quest_rewards_once_per_day_whatever_the_zone(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let ids = s.served(&st, 1).await;
    s.ok(
        &st,
        "reviews.submit_review_session",
        responses(&ids, 4, Some("q")),
    )
    .await;
    let out = s
        .ok(
            &st,
            "quests.claim_quest_reward",
            json!({"quest_id": "quest_streak"}),
        )
        .await;
    assert!(out["xp_awarded"].as_i64().unwrap() > 0);
    let xp = s.xp(&st).await;
    for tz in ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Tokyo"] {
        let r = s
            .ok(
                &st,
                "profile.set_time_zone",
                json!({"time_zone": tz, "rollover_hour": 0}),
            )
            .await;
        assert_eq!(r["pending_time_zone"], tz, "takes effect the next day");
        let (status, v) = s
            .call(
                &st,
                "quests.claim_quest_reward",
                json!({"quest_id": "quest_streak"}),
            )
            .await;
        assert!(status.is_client_error(), "{tz}: {status} {v}");
    }
    assert_eq!(s.xp(&st).await, xp, "one claim per quest day");
}

/// NUL and control characters: a 400 on every backend, never a 500.
pub async fn control_characters_are_a_400(s: &Stack) {
    let admin = s.login(ADMIN, PWD).await;
    let st = s.login(STUDENT, PWD).await;
    let cases = [
        (
            &admin,
            "admin.create_user",
            json!({"email": "n@x.y", "full_name": "A\u{0}B", "password": "Nul-Strong-pass-8"}),
        ),
        (
            &st,
            "quests.claim_quest_reward",
            json!({"quest_id": "quest\u{0}x"}),
        ),
        (
            &st,
            "map_engine.get_topic_details",
            json!({"topic_id": "hist\u{0}t1"}),
        ),
        (
            &st,
            "profile.set_time_zone",
            json!({"time_zone": "Europe/\u{0}Paris"}),
        ),
        (
            &st,
            "store.request_purchase",
            json!({"item_id": "item-science", "transaction_id": "tx\u{0}1"}),
        ),
        (
            &st,
            "reviews.submit_review_session",
            json!({"responses": [{"question_id": "hist\u{0}-l1-rv:0", "quality": 4}]}),
        ),
    ];
    for (who, method, body) in cases {
        let (status, v) = s.call(who, method, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {v}");
        assert_eq!(v["exc_type"], "ValidationError", "{method}");
    }
}

/// Boards show names, never e-mail addresses; job status is private.
pub async fn privacy_of_boards_and_jobs(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let ids = s.served(&st, 2).await;
    let out = s
        .ok(
            &st,
            "reviews.submit_review_session",
            responses(&ids, 4, Some("priv")),
        )
        .await;
    let job = out["persistence_job_id"].as_str().unwrap().to_owned();
    let board = s
        .ok(
            &st,
            "leaderboard.get_leaderboard",
            json!({"period": "all_time"}),
        )
        .await;
    assert!(
        !board.to_string().contains('@'),
        "no e-mail on boards: {board}"
    );
    assert!(!board["leaderboard"].as_array().unwrap().is_empty());
    let admin = s.login(ADMIN, PWD).await;
    s.ok(
        &admin,
        "admin.create_user",
        json!({"email": "p@x.y", "full_name": "P", "password": "Priv-Strong-pass-4"}),
    )
    .await;
    let other = s.login("p@x.y", "Priv-Strong-pass-4").await;
    let (status, _) = s
        .call(
            &other,
            "reviews.get_persistence_status",
            json!({"job_id": job}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another learner's job");
    s.ok(
        &st,
        "reviews.get_persistence_status",
        json!({"job_id": job}),
    )
    .await;
    s.ok(
        &admin,
        "reviews.get_persistence_status",
        json!({"job_id": job}),
    )
    .await;
}

/// One body limit with a JSON 413; unknown routes are JSON 404s; /metrics
/// needs its token.
pub async fn limits_and_operator_endpoints(s: &Stack) {
    let st = s.login(STUDENT, PWD).await;
    let pad = "x".repeat(3 * 1024 * 1024);
    let (status, v) = s
        .call(
            &st,
            "reviews.get_review_session",
            json!({"limit": 2, "pad": pad}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "3 MB is under the 8 MB limit: {v}");
    let big = "x".repeat(memora_http::MAX_BODY_BYTES + 1);
    let (status, v) = s
        .call(&st, "reviews.get_review_session", json!({"pad": big}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["exc_type"], "RequestEntityTooLargeError");
    let (status, v, _) = s
        .send(Request::get("/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["exc_type"], "DoesNotExistError");
    let (status, _, _) = s
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = s
        .send(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, "Bearer metrics-secret-token")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

macro_rules! abuse_suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            abuse_suite!(@tests $make;
                premium_question_never_served_is_refused,
                unserved_answer_is_refused_and_changes_nothing,
                replayed_submissions_earn_nothing,
                concurrent_identical_submissions_take_effect_once,
                review_ids_are_scoped_per_learner,
                xp_once_per_item_per_learner_day,
                lesson_plays_are_bound_to_openings,
                state_changes_need_post,
                csrf_is_required_for_cookie_mutations,
                login_is_throttled_and_does_not_enumerate,
                password_policy_and_no_trimming,
                quest_rewards_once_per_day_whatever_the_zone,
                control_characters_are_a_400,
                privacy_of_boards_and_jobs,
                limits_and_operator_endpoints,
            );
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(stack) = $make().await else { return };
                super::$name(&stack).await;
            }
        )*
    };
}

abuse_suite!(memory, super::memory_stack);
abuse_suite!(postgres_redis, super::pg_redis_stack);
