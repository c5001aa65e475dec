//! Hostile tests of the devices and admin-insight endpoints: one learner
//! reaching another's devices or sessions through a shared `device_id`,
//! a foreign cookie next to an API token, the device limit, state changes
//! over GET or without (or with a wrong) CSRF header, odd argument shapes,
//! and students calling the admin reports. Every attack checks the state
//! afterwards (both learners' devices and sessions), not only the status.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::endpoints::{PWD, call, get, setup};

const ANN: &str = memora_core::demo::DEMO_STUDENT;
const BOB: &str = "bob@hostile.test";
const BOB_PWD: &str = "Bob-quite-long-Passw0rd!";

/// Logs `usr` in with `extra` login arguments: the cookie, or the status and
/// body of the refusal (a refusal must not set a cookie).
pub(crate) async fn login_as(
    app: &Router,
    usr: &str,
    pwd: &str,
    extra: Value,
) -> Result<String, (StatusCode, Value)> {
    let mut body = json!({"usr": usr, "pwd": pwd});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let req = Request::post("/api/method/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match (status, cookie) {
        (StatusCode::OK, Some(c)) => Ok(c),
        (StatusCode::OK, None) => panic!("login succeeded without a cookie: {v}"),
        (s, c) => {
            assert!(c.is_none(), "a refused login set a cookie: {c:?}");
            Err((s, v))
        }
    }
}

/// Creates Bob (a second student) through the admin API.
async fn create_bob(app: &Router, admin: &str) {
    let (s, v) = call(
        app,
        "memora.api.admin.create_user",
        Some(admin),
        json!({"email": BOB, "full_name": "Bob Hostile", "password": BOB_PWD}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The devices of the session `cookie` (which must be alive).
async fn devices(app: &Router, cookie: &str) -> Vec<Value> {
    let (s, v) = call(
        app,
        "memora.api.auth.get_my_devices",
        Some(cookie),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "get_my_devices: {v}");
    v["message"].as_array().unwrap().clone()
}

/// `(device_id, device_type, device_name, current)` of each device.
async fn summary(app: &Router, cookie: &str) -> Vec<(String, String, Value, bool)> {
    let mut out: Vec<_> = devices(app, cookie)
        .await
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_owned(),
                d["device_type"].as_str().unwrap().to_owned(),
                d["device_name"].clone(),
                d["current"].as_bool().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The session behind `cookie` still works.
async fn alive(app: &Router, cookie: &str) -> bool {
    let (s, _) = call(app, "frappe.auth.get_logged_user", Some(cookie), json!({})).await;
    s == StatusCode::OK
}

/// A raw POST with a chosen cookie, CSRF header and Authorization.
pub(crate) async fn raw_post(
    app: &Router,
    method: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::post(format!("/api/method/{method}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        req = req.header(memora_http::CSRF_HEADER, t);
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, t);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn csrf_of(cookie: &str) -> String {
    memora_http::csrf_token(cookie.trim_start_matches("sid="))
}

/// An API token of `user`, created by the admin.
async fn token_of(app: &Router, admin: &str, user: &str) -> String {
    let (s, v) = call(
        app,
        "memora.api.admin.create_api_key",
        Some(admin),
        json!({"user": user}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    format!(
        "token {}:{}",
        v["message"]["api_key"].as_str().unwrap(),
        v["message"]["api_secret"].as_str().unwrap()
    )
}

#[tokio::test]
async fn a_device_id_shared_by_two_learners_never_crosses_between_them() {
    let t = setup().await;
    create_bob(&t.app, &t.admin).await;
    let ann = login_as(
        &t.app,
        ANN,
        PWD,
        json!({"device_id": "shared-1", "device_type": "mobile", "device_name": "Ann phone"}),
    )
    .await
    .unwrap();
    let bob = login_as(
        &t.app,
        BOB,
        BOB_PWD,
        json!({"device_id": "shared-1", "device_type": "desktop", "device_name": "Bob PC"}),
    )
    .await
    .unwrap();
    // Ann "renames" shared-1 and changes its kind: only hers changes.
    let (s, v) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&ann),
        json!({"device_id": "shared-1", "device_type": "tablet", "device_name": "Owned"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["is_new"], false, "{v}");
    assert_eq!(v["message"]["signed_out"], json!([]), "{v}");
    assert_eq!(
        summary(&t.app, &ann).await,
        vec![("shared-1".into(), "tablet".into(), json!("Owned"), true)]
    );
    assert_eq!(
        summary(&t.app, &bob).await,
        vec![("shared-1".into(), "desktop".into(), json!("Bob PC"), true)]
    );
    // Ann revokes shared-1: her session ends, Bob's session and device stay.
    let (s, v) = call(
        &t.app,
        "memora.api.auth.revoke_device",
        Some(&ann),
        json!({"device_id": "shared-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"sessions_ended": 1, "signed_out": true})
    );
    assert!(!alive(&t.app, &ann).await);
    assert!(alive(&t.app, &bob).await);
    assert_eq!(
        summary(&t.app, &bob).await,
        vec![("shared-1".into(), "desktop".into(), json!("Bob PC"), true)]
    );
    // A second revoke by Ann (new session) finds nothing of hers: 404, and
    // Bob's device is still not touched.
    let ann2 = login_as(&t.app, ANN, PWD, json!({})).await.unwrap();
    let (s, v) = call(
        &t.app,
        "memora.api.auth.revoke_device",
        Some(&ann2),
        json!({"device_id": "shared-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(devices(&t.app, &ann2).await.is_empty());
    assert!(alive(&t.app, &bob).await);
    assert_eq!(summary(&t.app, &bob).await.len(), 1);
}

#[tokio::test]
async fn the_device_limit_only_ever_signs_out_the_callers_own_devices() {
    let t = setup().await;
    create_bob(&t.app, &t.admin).await;
    // Bob's five devices carry the ids Ann is about to use.
    let mut bobs = Vec::new();
    for i in 0..5 {
        bobs.push(
            login_as(
                &t.app,
                BOB,
                BOB_PWD,
                json!({"device_id": format!("d{i}"), "device_type": "mobile"}),
            )
            .await
            .unwrap(),
        );
    }
    // Ann registers six: the sixth signs her own oldest (d0) out.
    let mut anns = Vec::new();
    for i in 0..6 {
        anns.push(
            login_as(
                &t.app,
                ANN,
                PWD,
                json!({"device_id": format!("d{i}"), "device_type": "desktop"}),
            )
            .await
            .unwrap(),
        );
    }
    assert!(!alive(&t.app, &anns[0]).await, "Ann's d0 was signed out");
    for s in &anns[1..] {
        assert!(alive(&t.app, s).await);
    }
    let ids: Vec<String> = summary(&t.app, &anns[5])
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(ids, ["d1", "d2", "d3", "d4", "d5"]);
    // Every one of Bob's sessions and devices survived.
    for s in &bobs {
        assert!(alive(&t.app, s).await);
    }
    let bob_ids: Vec<(String, String)> = summary(&t.app, &bobs[0])
        .await
        .into_iter()
        .map(|d| (d.0, d.1))
        .collect();
    assert_eq!(
        bob_ids,
        (0..5)
            .map(|i| (format!("d{i}"), "mobile".to_owned()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_api_token_next_to_a_foreign_cookie_cannot_bind_or_end_that_session() {
    let t = setup().await;
    create_bob(&t.app, &t.admin).await;
    let ann = login_as(&t.app, ANN, PWD, json!({})).await.unwrap();
    let bob_token = token_of(&t.app, &t.admin, BOB).await;
    let bob = login_as(&t.app, BOB, BOB_PWD, json!({})).await.unwrap();
    // Bob's token with Ann's cookie (and her CSRF token): the token is the
    // caller, Ann's session must not be bound to Bob's device.
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.register_device",
        Some(&ann),
        Some(&csrf_of(&ann)),
        Some(&bob_token),
        json!({"device_id": "trap", "device_type": "mobile"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["is_new"], true);
    // Not bound to any session (a token call has none).
    assert_eq!(v["message"]["device"]["current"], false, "{v}");
    // Bob's token revokes "trap": Ann's session is not among those ended.
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.revoke_device",
        Some(&ann),
        None,
        Some(&bob_token),
        json!({"device_id": "trap"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"sessions_ended": 0, "signed_out": false})
    );
    assert!(alive(&t.app, &ann).await);
    assert!(alive(&t.app, &bob).await);
    assert!(devices(&t.app, &ann).await.is_empty());
    assert!(devices(&t.app, &bob).await.is_empty());
}

#[tokio::test]
async fn an_api_token_registers_and_lists_devices_without_a_current_one() {
    let t = setup().await;
    let token = token_of(&t.app, &t.admin, ANN).await;
    let cookie = login_as(
        &t.app,
        ANN,
        PWD,
        json!({"device_id": "web", "device_type": "desktop"}),
    )
    .await
    .unwrap();
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.register_device",
        None,
        None,
        Some(&token),
        json!({"device_id": "script", "device_type": "desktop", "device_name": "cron"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["device"]["current"], false, "{v}");
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.get_my_devices",
        None,
        None,
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["message"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert!(list.iter().all(|d| d["current"] == false), "{v}");
    // The cookie session still sees its own device as the current one.
    assert_eq!(
        summary(&t.app, &cookie).await,
        vec![
            ("script".into(), "desktop".into(), json!("cron"), false),
            ("web".into(), "desktop".into(), Value::Null, true),
        ]
    );
    // The token revokes the cookie's device: that session ends, the token
    // itself is not signed out.
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.revoke_device",
        None,
        None,
        Some(&token),
        json!({"device_id": "web"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"sessions_ended": 1, "signed_out": false})
    );
    assert!(!alive(&t.app, &cookie).await);
    let (s, v) = raw_post(
        &t.app,
        "memora.api.auth.get_my_devices",
        None,
        None,
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn device_changes_need_post_and_the_right_csrf_token() {
    let t = setup().await;
    create_bob(&t.app, &t.admin).await;
    let ann = login_as(
        &t.app,
        ANN,
        PWD,
        json!({"device_id": "keep", "device_type": "mobile"}),
    )
    .await
    .unwrap();
    let bob = login_as(&t.app, BOB, BOB_PWD, json!({})).await.unwrap();
    let before = summary(&t.app, &ann).await;
    // Over GET (a link or an <img>): refused, nothing registered or revoked.
    for uri in [
        "/api/method/memora.api.auth.register_device?device_id=evil&device_type=mobile",
        "/api/method/memora.api.auth.revoke_device?device_id=keep",
    ] {
        let (s, v, _) = get(&t.app, uri, Some(&ann)).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{uri}: {v}");
    }
    // POST without, with an empty, with a wrong, and with another session's
    // CSRF token.
    let bobs_token = csrf_of(&bob);
    for csrf in [None, Some(""), Some("deadbeef"), Some(bobs_token.as_str())] {
        for (method, body) in [
            (
                "memora.api.auth.register_device",
                json!({"device_id": "evil", "device_type": "mobile"}),
            ),
            (
                "memora.api.auth.revoke_device",
                json!({"device_id": "keep"}),
            ),
        ] {
            let (s, v) = raw_post(&t.app, method, Some(&ann), csrf, None, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {csrf:?}: {v}");
            assert_eq!(v["exc_type"], "CSRFTokenError", "{method} {csrf:?}: {v}");
        }
    }
    assert!(alive(&t.app, &ann).await);
    assert_eq!(summary(&t.app, &ann).await, before);
    assert!(devices(&t.app, &bob).await.is_empty());
}

#[tokio::test]
async fn odd_device_arguments_are_400_and_change_nothing() {
    let t = setup().await;
    let ann = login_as(
        &t.app,
        ANN,
        PWD,
        json!({"device_id": "base", "device_type": "mobile", "device_name": "Base"}),
    )
    .await
    .unwrap();
    let before = summary(&t.app, &ann).await;
    let long_id = "a".repeat(129);
    let bad = [
        json!({"device_id": long_id, "device_type": "mobile"}),
        json!({"device_id": "téléphone", "device_type": "mobile"}),
        json!({"device_id": "📱", "device_type": "mobile"}),
        json!({"device_id": "a\u{0}b", "device_type": "mobile"}),
        json!({"device_id": "a\nb", "device_type": "mobile"}),
        json!({"device_id": "a/b", "device_type": "mobile"}),
        json!({"device_id": "a b", "device_type": "mobile"}),
        json!({"device_id": "../../x", "device_type": "mobile"}),
        json!({"device_id": ["base"], "device_type": "mobile"}),
        json!({"device_id": {"id": "base"}, "device_type": "mobile"}),
        json!({"device_id": true, "device_type": "mobile"}),
        json!({"device_id": null, "device_type": "mobile"}),
        json!({"device_id": "", "device_type": "mobile"}),
        json!({"device_id": "   ", "device_type": "mobile"}),
        json!({"device_type": "mobile"}),
        json!({"device_id": "base"}),
        json!({"device_id": "base", "device_type": "MOBILE_X"}),
        json!({"device_id": "base", "device_type": 7}),
        json!({"device_id": "base", "device_type": ["mobile"]}),
        json!({"device_id": "base", "device_type": null}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": "n".repeat(81)}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": "é".repeat(81)}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": "a\u{7}b"}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": "a\nb"}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": "a\u{1b}[31m"}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": ["x"]}),
        json!({"device_id": "base", "device_type": "mobile", "device_name": {"x": 1}}),
    ];
    for body in &bad {
        let (s, v) = call(
            &t.app,
            "memora.api.auth.register_device",
            Some(&ann),
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "register {body}: {v}");
        assert!(v["exception"].is_string(), "envelope for {body}: {v}");
        // The same description at login: refused, no session, nothing stored.
        let (s, v) = login_as(&t.app, ANN, PWD, body.clone()).await.unwrap_err();
        assert_eq!(s, StatusCode::BAD_REQUEST, "login {body}: {v}");
    }
    for body in [
        json!({"device_id": ["base"]}),
        json!({"device_id": {"a": 1}}),
        json!({"device_id": null}),
        json!({}),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.auth.revoke_device",
            Some(&ann),
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "revoke {body}: {v}");
    }
    for id in [
        "x".repeat(10_000),
        "BASE".into(),
        "base ".repeat(2),
        "ba%73e".into(),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.auth.revoke_device",
            Some(&ann),
            json!({"device_id": id}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "revoke {id:.20}: {v}");
    }
    assert!(alive(&t.app, &ann).await);
    assert_eq!(summary(&t.app, &ann).await, before);
    // The limits themselves are accepted: 128 characters of id, 80
    // characters (not bytes) of name.
    let (s, v) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&ann),
        json!({"device_id": "a".repeat(128), "device_type": "tablet", "device_name": "é".repeat(80)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(devices(&t.app, &ann).await.len(), 2);
}

#[tokio::test]
async fn a_wrong_password_with_a_device_registers_nothing() {
    let t = setup().await;
    let (s, v) = login_as(
        &t.app,
        ANN,
        "not-the-password",
        json!({"device_id": "thief", "device_type": "mobile"}),
    )
    .await
    .unwrap_err();
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = login_as(
        &t.app,
        "nobody@nowhere.test",
        PWD,
        json!({"device_id": "thief", "device_type": "mobile"}),
    )
    .await
    .unwrap_err();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let ann = login_as(&t.app, ANN, PWD, json!({})).await.unwrap();
    assert!(devices(&t.app, &ann).await.is_empty());
}

#[tokio::test]
async fn registering_a_new_device_never_signs_out_the_calling_session() {
    let t = setup().await;
    // Ann's phone session is in use (a request touched it) before she signs
    // in on four more devices, so its last_active is the oldest (activity
    // is written at most once per touch interval).
    let phone = login_as(
        &t.app,
        ANN,
        PWD,
        json!({"device_id": "phone", "device_type": "mobile"}),
    )
    .await
    .unwrap();
    assert_eq!(devices(&t.app, &phone).await.len(), 1);
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(
            login_as(
                &t.app,
                ANN,
                PWD,
                json!({"device_id": format!("other-{i}"), "device_type": "desktop"}),
            )
            .await
            .unwrap(),
        );
    }
    // From the phone, she re-registers it under a new id (an app reinstall):
    // the limit must make room without ending the session making the call.
    let (s, v) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&phone),
        json!({"device_id": "phone-v2", "device_type": "mobile"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["device"]["current"], true, "{v}");
    let gone: Vec<String> = v["message"]["signed_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    // The phone it replaces is the least recently active one: it goes, but
    // the session has moved to phone-v2 and lives on.
    assert_eq!(gone, ["phone"], "{v}");
    assert!(
        alive(&t.app, &phone).await,
        "the session that registered phone-v2 (reported current) was signed out: {v}"
    );
    let list = summary(&t.app, &phone).await;
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(
        list.contains(&("phone-v2".into(), "mobile".into(), Value::Null, true)),
        "{list:?}"
    );
    assert!(!list.iter().any(|d| d.0 == gone[0]), "{list:?}");
}

#[tokio::test]
async fn students_cannot_read_job_runs_or_learning_insight() {
    let t = setup().await;
    let student_token = token_of(&t.app, &t.admin, ANN).await;
    for (method, body) in [
        ("memora.api.admin.get_job_runs", json!({})),
        (
            "memora.api.admin.get_job_runs",
            json!({"job": "reconcile", "limit": 100}),
        ),
        ("memora.api.admin.get_learning_insight", json!({})),
        (
            "memora.api.admin.get_learning_insight",
            json!({"days": 90, "season": "SEASON-2026"}),
        ),
    ] {
        let (s, v) = call(&t.app, method, Some(&t.student), body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {body}: {v}");
        assert_eq!(v["exc_type"], "PermissionError", "{v}");
        assert!(v.get("message").is_none(), "{method} leaked data: {v}");
        let (s, v) = raw_post(&t.app, method, None, None, Some(&student_token), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} by token: {v}");
        let (s, v, _) = get(&t.app, &format!("/api/method/{method}"), Some(&t.student)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "GET {method}: {v}");
        let (s, _) = call(&t.app, method, None, json!({})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn odd_job_runs_and_insight_arguments_are_4xx_never_500() {
    let t = setup().await;
    // Controls: the bounds themselves work.
    for body in [
        json!({}),
        json!({"limit": 1}),
        json!({"limit": "100"}),
        json!({"job": "reconcile"}),
        json!({"job": ""}),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_job_runs",
            Some(&t.admin),
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}: {v}");
    }
    for body in [json!({}), json!({"days": 1}), json!({"days": "90"})] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_learning_insight",
            Some(&t.admin),
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}: {v}");
        let days = body["days"]
            .as_u64()
            .or_else(|| body["days"].as_str().map(|d| d.parse().unwrap()))
            .unwrap_or(30);
        assert_eq!(
            v["message"]["due_forecast"].as_array().unwrap().len() as u64,
            days,
            "{v}"
        );
    }
    for body in [
        json!({"limit": 0}),
        json!({"limit": 101}),
        json!({"limit": -1}),
        json!({"limit": "ten"}),
        json!({"limit": 1.5}),
        json!({"limit": "1e3"}),
        json!({"limit": 1e300}),
        json!({"limit": "99999999999999999999999999999"}),
        json!({"limit": [5]}),
        json!({"limit": {"n": 5}}),
        json!({"job": "nope"}),
        json!({"job": "reconcile;drop"}),
        json!({"job": "RECONCILE"}),
        json!({"job": "x".repeat(10_000)}),
        json!({"job": "\u{0}"}),
        json!({"job": ["reconcile"]}),
        json!({"job": {"name": "reconcile"}}),
        json!({"job": true}),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_job_runs",
            Some(&t.admin),
            body.clone(),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "get_job_runs {body:.80}: {v:.200}"
        );
        assert!(v["exception"].is_string(), "{v:.200}");
    }
    for (body, want) in [
        (json!({"days": 0}), StatusCode::BAD_REQUEST),
        (json!({"days": 91}), StatusCode::BAD_REQUEST),
        (json!({"days": -1}), StatusCode::BAD_REQUEST),
        (json!({"days": "abc"}), StatusCode::BAD_REQUEST),
        (json!({"days": 2.5}), StatusCode::BAD_REQUEST),
        (json!({"days": 1e300}), StatusCode::BAD_REQUEST),
        (
            json!({"days": "184467440737095516160"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"days": [30]}), StatusCode::BAD_REQUEST),
        (json!({"days": true}), StatusCode::BAD_REQUEST),
        (json!({"season": ["SEASON-2026"]}), StatusCode::BAD_REQUEST),
        (json!({"season": {"id": 1}}), StatusCode::BAD_REQUEST),
        (json!({"season": "../../etc"}), StatusCode::BAD_REQUEST),
        (json!({"season": "a\u{0}b"}), StatusCode::BAD_REQUEST),
        (
            json!({"season": "x".repeat(10_000)}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"season": "SEASON-9999"}), StatusCode::NOT_FOUND),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.get_learning_insight",
            Some(&t.admin),
            body.clone(),
        )
        .await;
        assert_eq!(s, want, "get_learning_insight {body:.80}: {v:.200}");
        assert!(v["exception"].is_string(), "{v:.200}");
    }
}
