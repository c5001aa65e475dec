//! The web console: a small single-page app (plain HTML, CSS and vanilla
//! JavaScript modules under `memora-http/assets/console/`) embedded in the
//! binary with `include_bytes!` and served at `/` (to browsers) and
//! `/console/`. It owns no behaviour: every page calls the server's own
//! method API exactly like any other client (login, the `sid` cookie, the
//! CSRF header on writes, roles enforced by the server), so it exercises the
//! typed contract instead of bypassing it.
//!
//! Pages are hash routes (`/#/review`, `/#/admin/seasons`), so the server
//! serves one shell and a fixed list of assets; any other `/console/…` path
//! is a 404 in the JSON error envelope, like every other unknown route.
//! Console responses carry a strict Content-Security-Policy (no inline
//! script or style, nothing from another origin), so an injected string can
//! never run as code in an administrator's browser.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The Content-Security-Policy of every console response: only this
/// origin, no inline script or style, no plugins, no framing, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under `/console/`.
    pub name: &'static str,
    /// `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The file, compiled into the binary.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("../assets/console/", $name)),
        }
    };
}

/// The console's shell page (also served at `/` to browsers).
pub const INDEX_HTML: &[u8] = include_bytes!("../assets/console/index.html");

/// Every asset the console serves under `/console/`.
pub const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("learner.js", JS),
    asset!("admin.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// Whether a `GET /` comes from a browser (it asks for HTML); API clients
/// and scripts keep getting the JSON index.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().starts_with("text/html"))
}

fn secured(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Small files; revalidating keeps a new binary's console consistent.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The shell page.
pub async fn shell() -> Response {
    secured(INDEX_HTML.into_response(), "text/html; charset=utf-8")
}

/// `GET /console/{name}`: an embedded asset, or the JSON 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => secured(a.body.into_response(), a.content_type),
        None => ApiError::NotFound(format!("no such console asset: {name}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_and_clients_json() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(wants_html(&h));
    }

    #[test]
    fn assets_are_not_empty_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(names.insert(a.name), "{} listed twice", a.name);
        }
    }

    #[test]
    fn no_inline_script_or_remote_url_in_the_shell() {
        let html = std::str::from_utf8(INDEX_HTML).expect("utf-8");
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
