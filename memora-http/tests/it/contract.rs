//! The typed contract: one registry drives dispatch, roles, CSRF and the
//! OpenAPI document; errors name the argument and the allowed range.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use memora_http::api::{Access, METHODS, Verbs};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::endpoints::{call, get, setup};

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_owned());
                    }
                }
                refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_valid_openapi_3_and_covers_every_method() {
    let doc = serde_json::to_value(memora_http::openapi::document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // A typed OpenAPI 3.1 parser accepts it.
    let text = serde_json::to_string(&doc).unwrap();
    let parsed = oas3::from_json(&text).expect("valid OpenAPI 3.1");
    assert_eq!(parsed.info.title, "Memora API");
    // Every reference resolves.
    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), METHODS.len(), "one path per registered method");
    for m in METHODS {
        let item = &paths[&format!("/api/method/{}", m.path())];
        assert!(item.is_object(), "{} is documented", m.name);
        let post = &item["post"];
        assert!(post.is_object(), "{} has POST", m.name);
        assert_eq!(
            item["get"].is_object(),
            m.verbs == Verbs::Read,
            "{}: GET documented exactly for read methods",
            m.name
        );
        for op in [post, &item["get"]].into_iter().filter(|o| o.is_object()) {
            let ok = &op["responses"]["200"]["content"]["application/json"]["schema"];
            assert!(ok.is_object(), "{} has a 200 schema", m.name);
            if m.envelope {
                assert_eq!(ok["required"], json!(["message"]), "{}", m.name);
                assert!(ok["properties"]["message"].is_object(), "{}", m.name);
            }
            for status in [
                "400", "401", "403", "404", "405", "409", "413", "415", "429", "503",
            ] {
                assert_eq!(
                    op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{} documents {status}",
                    m.name
                );
            }
            let security = op["security"].as_array().unwrap();
            match (m.access, m.verbs) {
                (Access::Guest, _) => assert_eq!(security, &vec![json!({})]),
                (_, Verbs::Write) => {
                    assert!(
                        security.contains(&json!({"sid": [], "csrf": []})),
                        "{}",
                        m.name
                    )
                }
                _ => assert!(security.contains(&json!({"sid": []})), "{}", m.name),
            }
        }
        let body = &post["requestBody"]["content"]["application/json"]["schema"];
        assert!(body.is_object(), "{} has a request body schema", m.name);
    }
    // Typed, required-marked arguments.
    let review = &paths["/api/method/memora.api.reviews.get_review_session"]["get"]["parameters"];
    let limit = review
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["required"], false);
    assert_eq!(limit["schema"]["maximum"], 50);
    let lesson = &paths["/api/method/memora.api.sessions.get_lesson_details"]["get"]["parameters"];
    let lesson_id = lesson
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lesson_id")
        .unwrap();
    assert_eq!(lesson_id["required"], true);
    let login = &paths["/api/method/login"]["post"]["requestBody"];
    assert_eq!(login["required"], true);
    assert_eq!(
        login["content"]["application/json"]["schema"]["required"],
        json!(["usr", "pwd"])
    );
    assert!(doc["components"]["securitySchemes"]["csrf"].is_object());
    // `oneOf` alternatives must not overlap: the `{}` of get_track_details
    // admits no properties, so a track matches only the track schema
    // (schemathesis found the overlap).
    assert_eq!(
        doc["components"]["schemas"]["EmptyObject"]["maxProperties"],
        0
    );
}

#[tokio::test]
async fn every_registered_method_is_reachable_by_its_documented_path() {
    let t = setup().await;
    for m in METHODS {
        let (status, body) = call(&t.app, &m.path(), Some(&t.admin), json!({})).await;
        let msg = body["exception"].as_str().unwrap_or("");
        assert!(
            !msg.starts_with("no such method"),
            "{} is registered but not dispatched: {status} {body}",
            m.name
        );
        assert!(!status.is_server_error(), "{}: {status} {body}", m.name);
        if m.path.is_none() {
            // The short path reaches the same method.
            let (s2, b2) = call(
                &t.app,
                &format!("memora.api.{}", m.name),
                Some(&t.admin),
                json!({}),
            )
            .await;
            assert!(
                !b2["exception"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("no such method"),
                "{} short path: {s2} {b2}",
                m.name
            );
        }
    }
}

async fn raw(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

fn assert_envelope(v: &Value, exc: &str) {
    assert_eq!(v["exc_type"], exc, "{v}");
    assert!(v["exception"].is_string(), "{v}");
    assert!(v["_server_messages"].is_string(), "{v}");
}

#[tokio::test]
async fn errors_name_the_argument_and_the_range() {
    let t = setup().await;
    let (s, v, _) = get(
        &t.app,
        "/api/method/memora.api.reviews.get_review_session?limit=99999999999999999999",
        Some(&t.student),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&v, "ValidationError");
    assert!(
        v["exception"]
            .as_str()
            .unwrap()
            .contains("between 1 and 50"),
        "{v}"
    );
    let (s, v, _) = get(
        &t.app,
        "/api/method/memora.api.reviews.get_review_session?limit=many",
        Some(&t.student),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["exception"]
            .as_str()
            .unwrap()
            .contains("argument 'limit'"),
        "{v}"
    );
    let (s, v) = call(
        &t.app,
        "memora.api.reviews.submit_review_session",
        Some(&t.student),
        json!({"responses": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = v["exception"].as_str().unwrap();
    assert!(msg.contains("argument 'responses'"), "{v}");
    assert!(!msg.contains("missing answers"), "{v}");
    let (s, v) = call(
        &t.app,
        "memora.api.sessions.get_lesson_details",
        Some(&t.student),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["exception"].as_str().unwrap().contains("lesson_id"),
        "{v}"
    );
    let (s, v) = call(
        &t.app,
        "memora.api.profile.set_time_zone",
        Some(&t.student),
        json!({"time_zone": "UTC", "rollover_hour": 24}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["exception"].as_str().unwrap().contains("0 to 23"), "{v}");
    let (s, v) = call(
        &t.app,
        "memora.api.leaderboard.get_leaderboard",
        Some(&t.student),
        json!({"period": "yearly"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = v["exception"].as_str().unwrap();
    assert!(
        msg.contains("argument 'period'") && msg.contains("all_time"),
        "{v}"
    );
}

#[tokio::test]
async fn every_rejection_is_in_the_json_envelope() {
    let t = setup().await;
    // 405 with Allow, on a method and on a plain route.
    let (s, v, h) = raw(
        &t.app,
        Request::delete("/api/method/memora.api.reviews.get_review_session")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h[header::ALLOW], "GET, POST");
    assert_envelope(&v, "MethodNotAllowedError");
    let (s, v, _) = raw(
        &t.app,
        Request::post("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&v, "MethodNotAllowedError");
    // 404 route.
    let (s, v, _) = raw(&t.app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_envelope(&v, "DoesNotExistError");
    // 414.
    let long = format!(
        "/api/method/memora.api.reviews.get_review_session?subject={}",
        "a".repeat(memora_http::MAX_URI_BYTES)
    );
    let (s, v, _) = raw(&t.app, Request::get(long).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    assert_envelope(&v, "URITooLongError");
    // 413.
    let big = vec![b' '; memora_http::MAX_BODY_BYTES + 10];
    let (s, v, _) = raw(
        &t.app,
        Request::post("/api/method/memora.api.admin.import_content")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&v, "RequestEntityTooLargeError");
    // 415.
    let (s, v, _) = raw(
        &t.app,
        Request::post("/api/method/memora.api.reviews.get_review_session")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("limit=5"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_envelope(&v, "UnsupportedMediaTypeError");
}

#[tokio::test]
async fn the_reference_page_is_served_without_a_cdn() {
    let t = setup().await;
    let resp = t
        .app
        .clone()
        .oneshot(Request::get("/api/docs/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(html.contains("/api/docs/swagger-ui-bundle.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "init.js",
        "LICENSE",
    ] {
        let resp = t
            .app
            .clone()
            .oneshot(
                Request::get(format!("/api/docs/{asset}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        let len = resp.into_body().collect().await.unwrap().to_bytes().len();
        assert!(len > 100, "{asset} has content");
    }
}
