use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use memora_core::Memora;
use memora_core::memory::InMemoryBackend;
use memora_core::services::Config;
use memora_http::api::{Access, METHODS};
use memora_http::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) const PWD: &str = "test-password-1";

pub(crate) struct T {
    pub(crate) app: Router,
    pub(crate) student: String,
    pub(crate) admin: String,
}

pub(crate) async fn setup() -> T {
    let backend = InMemoryBackend::new();
    let memora = Arc::new(Memora::new(backend.ports(), Config::default()));
    memora_core::demo::seed_demo(&memora, PWD).await.unwrap();
    let app = router(Arc::new(AppState {
        memora,
        platform: None,
        metrics: None,
        secure_cookies: false,
        metrics_token: None,
    }));
    let student = login(&app, "student@demo.memora").await;
    let admin = login(&app, "admin@demo.memora").await;
    T {
        app,
        student,
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
    let cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"));
    cookie.split(';').next().unwrap().to_owned()
}

pub(crate) async fn call(
    app: &Router,
    method: &str,
    cookie: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::post(format!("/api/method/{method}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
        let sid = c.trim_start_matches("sid=");
        req = req.header(memora_http::CSRF_HEADER, memora_http::csrf_token(sid));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

pub(crate) async fn get(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

fn path(name: &str) -> String {
    format!("memora.api.{name}")
}

#[tokio::test]
async fn every_user_method_needs_login_and_admin_methods_need_the_role() {
    let t = setup().await;
    for m in METHODS {
        let (status, body) = call(&t.app, &m.path(), None, json!({})).await;
        match m.access {
            Access::Guest => assert_ne!(status, StatusCode::UNAUTHORIZED, "{}", m.name),
            _ => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{} without login", m.name);
                assert_eq!(body["exc_type"], "AuthenticationError");
                assert!(body["_server_messages"].is_string());
            }
        }
        if m.access == Access::Admin {
            let (status, body) = call(&t.app, &m.path(), Some(&t.student), json!({})).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{} as student", m.name);
            assert_eq!(body["exc_type"], "PermissionError");
        }
    }
}

#[tokio::test]
async fn no_input_ever_causes_a_500() {
    let t = setup().await;
    let junk = [
        json!({}),
        json!({"subject": 5, "limit": "x", "topic_id": {"a": 1}, "confirm": "maybe"}),
        json!({"session_data": "{not json", "responses": "nope", "interactions": 7}),
        json!({"session_data": {"answers": [{"question_id": null}, 5, {"question_id": "x", "is_correct": "perhaps"}]}}),
        json!({"responses": [{"question_id": "hist-l1-rv:0", "quality": 9}]}),
        json!({"season_name": "bad", "season": "SEASON-9999", "start_date": "2026-13-40", "user": "", "item_id": "?"}),
        json!({"lesson_id": "../../etc", "grade": "G12", "stream": "XYZ", "period": "yearly", "sample_size": -1}),
        json!({"bundle": {"subjects": [{"id": "", "title": ""}]}, "roles": [1, 2], "email": "a{b}c"}),
        json!({"limit": 1e30, "job_id": "x".repeat(500), "quest_id": "quest_xp", "request_id": "PUR-none"}),
    ];
    for m in METHODS {
        for (i, body) in junk.iter().enumerate() {
            for cookie in [Some(t.student.as_str()), Some(t.admin.as_str())] {
                let (status, resp) = call(&t.app, &m.path(), cookie, body.clone()).await;
                assert!(
                    !status.is_server_error(),
                    "{} with junk #{i} gave {status}: {resp}",
                    m.name
                );
                if status != StatusCode::OK {
                    assert!(
                        resp["exception"].is_string(),
                        "{} error body: {resp}",
                        m.name
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn review_flow_over_http() {
    let t = setup().await;
    let (status, v, _) = get(
        &t.app,
        "/api/method/memora.api.reviews.get_review_session?limit=5",
        Some(&t.student),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let m = &v["message"];
    assert_eq!(m["questions"].as_array().unwrap().len(), 5);
    assert_eq!(m["is_degraded"], false);
    assert!(m["season"].as_str().unwrap().starts_with("SEASON-"));
    assert!(m["total_due"].as_u64().unwrap() >= 20);
    let ids: Vec<String> = m["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    // Original form: session_data as a JSON string with answers.
    let session = json!({"answers": [
        {"question_id": ids[0], "is_correct": true, "time_spent_ms": 1500},
        {"question_id": ids[1], "is_correct": "false", "duration_ms": 4200}
    ], "session_meta": {"subject": "history"}, "total_combo": 1});
    let (status, v) = call(
        &t.app,
        &path("reviews.submit_review_session"),
        Some(&t.student),
        json!({"session_data": session.to_string()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let m = &v["message"];
    assert_eq!(m["status"], "success");
    assert_eq!(m["processed"], 2);
    assert_eq!(m["xp_earned"], 12);
    assert!(m["new_stability_counts"]["mature"].is_u64());
    let job = m["persistence_job_id"].as_str().unwrap().to_owned();
    // 003 form: responses with quality.
    let (status, v) = call(
        &t.app,
        &path("submit_review_session"),
        Some(&t.student),
        json!({"responses": [
            {"question_id": ids[2], "quality": 5, "response_time_ms": 900}
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["xp_earned"], 12);
    let (status, v) = call(
        &t.app,
        &path("get_persistence_status"),
        Some(&t.student),
        json!({"job_id": job}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["message"]["status"], "done");
    // Bad inputs are 400 and change nothing.
    let (status, v) = call(
        &t.app,
        &path("submit_review_session"),
        Some(&t.student),
        json!({"responses": [{"question_id": "nope:1", "quality": 3}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["exception"].as_str().unwrap().contains("nope:1"));
    let many: Vec<Value> = (0..51)
        .map(|_| json!({"question_id": ids[0], "quality": 4}))
        .collect();
    let (status, _) = call(
        &t.app,
        &path("submit_review_session"),
        Some(&t.student),
        json!({"responses": many}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get(
        &t.app,
        "/api/method/memora.api.get_review_session?limit=500",
        Some(&t.student),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn profile_quests_leaderboard_shapes() {
    let t = setup().await;
    let (s, v) = call(
        &t.app,
        &path("profile.get_full_profile_stats"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let m = &v["message"];
    for k in [
        "fullName",
        "level",
        "levelTitle",
        "nextLevelProgress",
        "xpInLevel",
        "xpToNextLevel",
        "streak",
        "totalXP",
        "totalLearned",
    ] {
        assert!(!m[k].is_null(), "missing {k}: {m}");
    }
    assert_eq!(m["weeklyActivity"].as_array().unwrap().len(), 7);
    let (s, v) = call(
        &t.app,
        &path("get_daily_quests"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["message"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["id"] == "quest_xp")
    );
    let (s, v) = call(
        &t.app,
        &path("leaderboard.get_leaderboard"),
        Some(&t.student),
        json!({"period": "all_time"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // The demo student played on the three days before today: alone on
    // the all-time board, whatever today's weekday.
    assert_eq!(v["message"]["userRank"]["rank"], 1);
    let all_time_xp = v["message"]["userRank"]["xp"].as_i64().unwrap();
    assert!(all_time_xp > 0);
    let (s, v) = call(
        &t.app,
        &path("leaderboard.get_leaderboard"),
        Some(&t.student),
        json!({"period": "weekly"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["period"], "weekly");
    // Early in the week the demo days fall in last week: no rank then.
    let weekly_xp = v["message"]["userRank"]["xp"].as_i64().unwrap();
    assert!((0..=all_time_xp).contains(&weekly_xp));
    let weekly_rank = &v["message"]["userRank"]["rank"];
    assert_eq!(weekly_rank.is_null(), weekly_xp == 0, "{weekly_rank}");
    let (s, v) = call(
        &t.app,
        &path("get_leaderboard"),
        Some(&t.student),
        json!({"period": "yearly"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["exception"].as_str().unwrap().contains("period"));
    let (s, v) = call(
        &t.app,
        "frappe.auth.get_logged_user",
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"], "student@demo.memora");
}

#[tokio::test]
async fn store_purchase_and_admin_approval() {
    let t = setup().await;
    let (s, v) = call(
        &t.app,
        &path("get_lesson_details"),
        Some(&t.student),
        json!({"lesson_id": "sci-l5"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(
        &t.app,
        &path("store.request_purchase"),
        Some(&t.student),
        json!({"item_id": "item-science", "payment_method": "cash"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["status"], "success");
    let id = v["message"]["purchase_id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &t.app,
        &path("approve_purchase_request"),
        Some(&t.student),
        json!({"request_id": id}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &t.app,
        &path("approve_purchase_request"),
        Some(&t.admin),
        json!({"request_id": id}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &t.app,
        &path("approve_purchase_request"),
        Some(&t.admin),
        json!({"request_id": id}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        v["exc_type"], "DuplicateEntryError",
        "a second decision is a duplicate"
    );
    let (s, v) = call(
        &t.app,
        &path("sessions.get_lesson_details"),
        Some(&t.student),
        json!({"lesson_id": "sci-l5"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["stages"].as_array().unwrap().len(), 3);
    let (s, v) = call(
        &t.app,
        &path("get_user_access_keys"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["subjects"], json!(["science"]));
    let (s, _) = call(
        &t.app,
        &path("get_student_plan_version"),
        Some(&t.student),
        json!({"user": "admin@demo.memora"}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "students may only ask about themselves"
    );
}

#[tokio::test]
async fn admin_confirm_flags_are_parsed_strictly() {
    let t = setup().await;
    for confirm in ["false", "0", "no"] {
        let req = Request::post("/api/method/memora.api.srs.delete_eligible_archived_records")
            .header(header::COOKIE, &t.admin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("confirm={confirm}")))
            .unwrap();
        let resp = t.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "confirm={confirm}");
    }
    let (s, v) = call(&t.app, &path("get_cache_status"), Some(&t.admin), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    // The embedded backend has no Redis, and says so.
    assert_eq!(v["message"]["redis_connected"], false);
    assert_eq!(v["message"]["is_safe_mode"], false);
}

#[tokio::test]
async fn api_tokens_health_and_openapi() {
    let t = setup().await;
    let (s, v) = call(
        &t.app,
        &path("create_api_key"),
        Some(&t.admin),
        json!({"user": "student@demo.memora"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let token = format!(
        "token {}:{}",
        v["message"]["api_key"].as_str().unwrap(),
        v["message"]["api_secret"].as_str().unwrap()
    );
    let req = Request::get("/api/method/memora.api.profile.get_player_profile")
        .header(header::AUTHORIZATION, &token)
        .body(Body::empty())
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let req = Request::get("/api/method/memora.api.profile.get_player_profile")
        .header(header::AUTHORIZATION, "token abc:wrong")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        t.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (s, _, _) = get(&t.app, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = get(&t.app, "/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["database"], "ok");
    let (s, v, _) = get(&t.app, "/api/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["paths"]["/api/method/memora.api.reviews.get_review_session"].is_object());
    let limit =
        v["paths"]["/api/method/memora.api.reviews.get_review_session"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .cloned()
            .unwrap();
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["required"], false);
    let (s, v, _) = get(&t.app, "/api/method/memora.api.nope", Some(&t.student)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["exc_type"], "DoesNotExistError");
    let (s, _) = call(&t.app, "logout", Some(&t.student), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &t.app,
        &path("get_player_profile"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn lesson_session_and_onboarding() {
    let t = setup().await;
    let (s, _) = call(
        &t.app,
        &path("sessions.get_lesson_details"),
        Some(&t.student),
        json!({"lesson_id": "hist-l3"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the play is of an opening of the lesson");
    let (s, v) = call(&t.app, &path("sessions.submit_session"), Some(&t.student), json!({
        "session_meta": {"lesson_id": "hist-l3"},
        "gamification_results": {"xp_earned": 999, "score": 90},
        "interactions": [{"question_id": "hist-l3-rv:0", "duration_ms": 1800, "attempts_count": 1}],
    })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["message"], "Session Saved ✅");
    // One stage of three: a third of the lesson's 40 XP, not completed.
    assert_eq!(v["message"]["xp_earned"], 13);
    assert_eq!(v["message"]["completed"], false);
    let (s, _) = call(
        &t.app,
        &path("submit_session"),
        Some(&t.student),
        json!({"session_meta": {}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &t.app,
        &path("onboarding.get_academic_masters"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["grades"].as_array().unwrap().len(), 2);
    let (s, _) = call(
        &t.app,
        &path("set_academic_profile"),
        Some(&t.student),
        json!({"grade": "G12", "stream": "XYZ"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &t.app,
        &path("set_academic_profile"),
        Some(&t.student),
        json!({"grade": "G10"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &t.app,
        &path("subjects.get_subjects"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"].as_array().unwrap().len(), 1);
    let (s, v) = call(
        &t.app,
        &path("map_engine.get_map_data"),
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"][0]["subject_id"], "history");
}

#[tokio::test]
async fn unmet_state_preconditions_are_invalid_state_errors() {
    let t = setup().await;
    // Nothing done today: the streak quest is not completed yet.
    let (s, v) = call(
        &t.app,
        &path("quests.claim_quest_reward"),
        Some(&t.student),
        json!({"quest_id": "quest_streak"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["exc_type"], "InvalidStateError", "{v}");
    // The active season (the demo's, named after this year) cannot be archived.
    let season = format!("SEASON-{}", chrono::Datelike::year(&chrono::Utc::now()));
    let (s, v) = call(
        &t.app,
        &path("archive_season"),
        Some(&t.admin),
        json!({"season_name": season, "confirm": true}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["exc_type"], "InvalidStateError", "{v}");
}

/// The progression lock is `locked_progression` on the track and unit
/// endpoints and `locked` on the map and topic endpoints. The demo student
/// has not completed hist-u1 (hist-l1 is open), so hist-u2 is locked, and so
/// is everything inside it that is not completed.
#[tokio::test]
async fn progression_locks_use_each_endpoints_word() {
    let t = setup().await;
    let get = |method: &'static str, body: Value| {
        let app = t.app.clone();
        let cookie = t.student.clone();
        async move {
            let (s, v) = call(&app, &path(method), Some(&cookie), body).await;
            assert_eq!(s, StatusCode::OK, "{method}: {v}");
            v["message"].clone()
        }
    };
    let track = get(
        "map_engine.get_track_details",
        json!({"subject": "history", "track": "hist-main"}),
    )
    .await;
    let units: Vec<(&str, &str)> = track["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        units,
        vec![("hist-u1", "available"), ("hist-u2", "locked_progression")]
    );
    let topics = get("map_engine.get_unit_topics", json!({"unit_id": "hist-u2"})).await;
    for topic in topics["topics"].as_array().unwrap() {
        // hist-t1 holds the completed hist-l4 but not hist-l5.
        assert_eq!(topic["status"], "locked_progression", "{topic}");
    }
    let map = get("map_engine.get_map_data", json!({"subject": "history"})).await;
    let u2 = &map[0]["units"][1];
    assert_eq!(u2["id"], "hist-u2");
    assert_eq!(u2["status"], "locked");
    assert_eq!(u2["topics"][1]["status"], "locked");
    let details = get(
        "map_engine.get_topic_details",
        json!({"topic_id": "hist-t1"}),
    )
    .await;
    let lessons: Vec<(&str, &str)> = details["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lessons,
        vec![("hist-l4", "completed"), ("hist-l5", "locked")]
    );
}
