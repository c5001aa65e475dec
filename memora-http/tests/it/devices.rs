//! Devices over HTTP: named at login, listed with the current one marked,
//! revoked (the session opened on it ends and its cookie is cleared), and
//! every rejection path: bad descriptions, unknown devices, no CSRF header,
//! no session.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::endpoints::{PWD, call, setup};

/// Logs the demo student in with `extra` login arguments; the cookie, or
/// the status and body of the refusal.
async fn login_with(app: &Router, extra: Value) -> Result<String, (StatusCode, Value)> {
    crate::hostile_devices::login_as(app, memora_core::demo::DEMO_STUDENT, PWD, extra).await
}

#[tokio::test]
async fn a_device_named_at_login_is_listed_and_revoking_it_signs_its_session_out() {
    let t = setup().await;
    let phone = login_with(
        &t.app,
        json!({"device_id": "phone-1", "device_type": "mobile", "device_name": "My phone"}),
    )
    .await
    .unwrap();
    let laptop = login_with(
        &t.app,
        json!({"device_id": "laptop", "device_type": "desktop"}),
    )
    .await
    .unwrap();
    let (s, v) = call(
        &t.app,
        "memora.api.auth.get_my_devices",
        Some(&phone),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["message"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let mine: Vec<(&str, bool)> = list
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap(),
                d["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        mine.contains(&("phone-1", true)) && mine.contains(&("laptop", false)),
        "{v}"
    );
    let p = list.iter().find(|d| d["device_id"] == "phone-1").unwrap();
    assert_eq!(p["device_type"], "mobile");
    assert_eq!(p["device_name"], "My phone");
    // Revoked from the laptop: the phone's session ends, the laptop's not.
    let (s, v) = call(
        &t.app,
        "memora.api.auth.revoke_device",
        Some(&laptop),
        json!({"device_id": "phone-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"sessions_ended": 1, "signed_out": false})
    );
    let (s, _) = call(
        &t.app,
        "memora.api.auth.get_my_devices",
        Some(&phone),
        json!({}),
    )
    .await;
    assert!(
        matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{s}"
    );
    // Revoking the device of the calling session clears its cookie.
    let req = Request::post("/api/method/memora.api.auth.revoke_device")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &laptop)
        .header(
            memora_http::CSRF_HEADER,
            memora_http::csrf_token(laptop.trim_start_matches("sid=")),
        )
        .body(Body::from(json!({"device_id": "laptop"}).to_string()))
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cleared = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (s, _) = call(
        &t.app,
        "memora.api.auth.get_my_devices",
        Some(&laptop),
        json!({}),
    )
    .await;
    assert!(
        matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{s}"
    );
}

#[tokio::test]
async fn register_device_binds_the_session_and_renames() {
    let t = setup().await;
    let sid = login_with(&t.app, json!({})).await.unwrap();
    let (s, v) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&sid),
        json!({"device_id": "tab-7", "device_type": "tablet"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["is_new"], true);
    assert_eq!(v["message"]["device"]["current"], true);
    let (s, v) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&sid),
        json!({"device_id": "tab-7", "device_type": "tablet", "device_name": "Kitchen"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"]["is_new"], false);
    assert_eq!(v["message"]["device"]["device_name"], "Kitchen");
    let (_, v) = call(
        &t.app,
        "memora.api.auth.get_my_devices",
        Some(&sid),
        json!({}),
    )
    .await;
    assert_eq!(v["message"][0]["current"], true, "{v}");
}

#[tokio::test]
async fn device_rejections_are_clear_and_change_nothing() {
    let t = setup().await;
    for (extra, word) in [
        (json!({"device_id": "phone-1"}), "device_type"),
        (json!({"device_type": "mobile"}), "device_id"),
        (
            json!({"device_id": "phone-1", "device_type": "watch"}),
            "device_type",
        ),
        (
            json!({"device_id": "bad id", "device_type": "mobile"}),
            "device_id",
        ),
    ] {
        let (s, v) = login_with(&t.app, extra.clone()).await.unwrap_err();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {v}");
        assert!(
            v["exception"].as_str().unwrap().contains(word),
            "{extra}: {v}"
        );
    }
    let sid = login_with(&t.app, json!({})).await.unwrap();
    let (s, v) = call(
        &t.app,
        "memora.api.auth.revoke_device",
        Some(&sid),
        json!({"device_id": "never-seen"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = call(
        &t.app,
        "memora.api.auth.register_device",
        Some(&sid),
        json!({"device_id": "x", "device_type": "mobile", "device_name": "n".repeat(81)}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A state change with the cookie but without the CSRF header.
    let req = Request::post("/api/method/memora.api.auth.register_device")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &sid)
        .body(Body::from(
            json!({"device_id": "x", "device_type": "mobile"}).to_string(),
        ))
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        v["exc_type"] == "CSRFTokenError" || v.to_string().contains("CSRF"),
        "{v}"
    );
    // Not signed in.
    let (s, _) = call(&t.app, "memora.api.auth.get_my_devices", None, json!({})).await;
    assert!(
        matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{s}"
    );
    // Nothing was registered by any of it.
    let (_, v) = call(
        &t.app,
        "memora.api.auth.get_my_devices",
        Some(&sid),
        json!({}),
    )
    .await;
    assert_eq!(v["message"], json!([]));
}
