//! The web console as plain HTTP sees it: `/` is the console for browsers
//! (and the JSON index for other clients), with a strict
//! Content-Security-Policy; every embedded asset has its content type; an
//! unknown `/console/…` path is a 404 in the JSON error envelope. (The
//! console's behaviour in a real browser is `tests/browser`.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use memora_http::console::{ASSETS, CSP};
use serde_json::Value;
use tower::ServiceExt;

use crate::endpoints::setup;

async fn get(app: &axum::Router, path: &str, accept: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(path);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body(resp: axum::response::Response) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn assert_console_headers(resp: &axum::response::Response, content_type: &str) {
    let h = resp.headers();
    assert_eq!(h[header::CONTENT_TYPE], content_type);
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert_eq!(csp, CSP);
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn browsers_get_the_console_at_root_with_a_strict_csp() {
    let t = setup().await;
    let browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for path in ["/", "/console/"] {
        let resp = get(&t.app, path, Some(browser_accept)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_console_headers(&resp, "text/html; charset=utf-8");
        let html = String::from_utf8(body(resp).await).unwrap();
        assert!(
            html.contains(r#"<script type="module" src="/console/app.js">"#),
            "{html}"
        );
        assert!(html.contains(r#"href="/console/console.css""#), "{html}");
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("https://"), "no external asset");
    }
    // /console redirects to the shell; the shell does not depend on Accept.
    let resp = get(&t.app, "/console", None).await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(resp.headers()[header::LOCATION], "/console/");
    let resp = get(&t.app, "/console/", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_clients_still_get_the_json_index_at_root() {
    let t = setup().await;
    for accept in [None, Some("*/*"), Some("application/json")] {
        let resp = get(&t.app, "/", accept).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{accept:?}"
        );
        let v: Value = serde_json::from_slice(&body(resp).await).unwrap();
        assert_eq!(v["name"], "Memora");
        assert_eq!(v["links"]["console"], "/console/");
    }
}

#[tokio::test]
async fn every_console_asset_is_served_with_its_content_type() {
    let t = setup().await;
    let expected = [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("ui.js", "text/javascript; charset=utf-8"),
        ("learner.js", "text/javascript; charset=utf-8"),
        ("admin.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ];
    assert_eq!(ASSETS.len(), expected.len(), "every asset is checked here");
    for (name, ct) in expected {
        let resp = get(&t.app, &format!("/console/{name}"), None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        assert_console_headers(&resp, ct);
        let bytes = body(resp).await;
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        assert_eq!(bytes, asset.body, "{name} is the embedded file");
    }
    // Every module the shell and the modules import is an embedded asset.
    for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let src = std::str::from_utf8(a.body).unwrap();
        for line in src.lines().filter(|l| l.starts_with("import ")) {
            let target = line
                .split('\'')
                .nth(1)
                .and_then(|p| p.strip_prefix("./"))
                .unwrap_or_else(|| panic!("{}: relative import expected: {line}", a.name));
            assert!(
                ASSETS.iter().any(|x| x.name == target),
                "{} imports {target}, which is not served",
                a.name
            );
        }
        assert!(!src.contains("innerHTML"), "{}: no innerHTML", a.name);
        assert!(!src.contains("eval("), "{}: no eval", a.name);
    }
}

#[tokio::test]
async fn unknown_console_paths_are_a_json_404() {
    let t = setup().await;
    for path in [
        "/console/x",
        "/console/nope.js",
        "/console/admin/app.js",
        "/console/../Cargo.toml",
    ] {
        let resp = get(&t.app, path, Some("text/html")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = serde_json::from_slice(&body(resp).await).unwrap();
        assert_eq!(v["exc_type"], "DoesNotExistError", "{path}: {v}");
    }
}
