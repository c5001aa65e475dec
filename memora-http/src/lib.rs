//! # memora-http
//!
//! The thin HTTP layer of Memora: Frappe-compatible method endpoints over
//! the use cases of `memora-core`, authentication (session cookie or API
//! token), health/readiness, Prometheus metrics and an OpenAPI document.
//! Start-up is a library function ([`router`], [`serve`]) so tests can drive
//! the router without sockets.

pub mod api;
pub mod args;
pub mod backend;
pub mod error;
pub mod jobs;
pub mod openapi;
pub mod security;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use memora_core::domain::Actor;
use memora_core::{CoreError, Memora};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::args::Args;
use crate::error::ApiError;

/// Shared state of the server.
pub struct AppState {
    /// The application.
    pub memora: Arc<Memora>,
    /// Prometheus exporter handle (None: /metrics answers 404).
    pub metrics: Option<PrometheusHandle>,
    /// Mark the `sid` cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// If set, `/metrics` answers only requests carrying
    /// `Authorization: Bearer <token>` (otherwise 401). Operators can also
    /// keep metrics off the public listener with `MEMORA_METRICS_BIND`.
    pub metrics_token: Option<String>,
}

/// Largest accepted request body (content imports included). Larger bodies
/// get a JSON 413 (`exc_type` `RequestEntityTooLargeError`).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The header carrying the CSRF token of a cookie session (Frappe's name).
pub const CSRF_HEADER: &str = "x-frappe-csrf-token";
/// Per-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the router with its middleware stack.
pub fn router(state: Arc<AppState>) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/api/method/{*method}", any(method_call))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .fallback(|uri: Uri| async move {
            ApiError::NotFound(format!("no route for {}", uri.path())).into_response()
        })
        .with_state(state)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains
/// in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connect info gives the login throttle the client address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn record_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_owned();
    let route = if let Some(m) = path.strip_prefix("/api/method/") {
        m.rsplit('.').next().unwrap_or(m).to_owned()
    } else {
        path
    };
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("memora_http_request_duration_seconds", "route" => route.clone(), "status" => status)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// The router for a separate metrics listener (`MEMORA_METRICS_BIND`).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = &st.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return ApiError::Core(CoreError::Unauthenticated).into_response();
        }
    }
    let health = st.memora.cache_health();
    let c = health.counters();
    metrics::gauge!("memora_safe_mode").set(if health.is_degraded() { 1.0 } else { 0.0 });
    metrics::gauge!("memora_cache_failures_total").set(c.failures as f64);
    metrics::gauge!("memora_cache_hits_total").set(c.hits as f64);
    metrics::gauge!("memora_cache_misses_total").set(c.misses as f64);
    metrics::gauge!("memora_rehydrations_total").set(c.misses as f64);
    metrics::gauge!("memora_safe_mode_requests_total").set(c.safe_mode_requests as f64);
    if let Ok(depth) = st.memora.ports().queue.depth().await {
        metrics::gauge!("memora_persistence_queue_depth").set(depth as f64);
    }
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics disabled").into_response(),
    }
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let ports = st.memora.ports();
    let db = ports.seasons.list_seasons().await.is_ok();
    let cache = ports.cache.ping().await.is_ok();
    if cache {
        st.memora.cache_health().mark_ok();
    }
    let body = json!({
        "database": if db { "ok" } else { "unavailable" },
        "cache": if cache { "ok" } else { "unavailable" },
        "safe_mode": st.memora.cache_health().is_degraded(),
    });
    let status = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "Guest")
}

/// Byte-wise comparison whose time does not depend on where the inputs
/// differ (tokens, CSRF values).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token of a cookie session: derived from the session id with
/// SHA-256 (domain-separated), so it needs no storage, differs per session,
/// and cannot be computed by a page that cannot read the `HttpOnly` cookie.
pub fn csrf_token(sid: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("memora-csrf\u{1f}{sid}").as_bytes());
    d.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// How the caller authenticated.
enum Credential {
    /// `Authorization: token key:secret` (exempt from CSRF: a browser never
    /// adds it by itself).
    Token,
    /// The `sid` cookie.
    Cookie(String),
}

/// Resolves the caller: `Authorization: token key:secret` first, then the
/// `sid` cookie. A present but invalid credential is a 401 (never silently
/// treated as a guest).
async fn authenticate(
    app: &Memora,
    headers: &HeaderMap,
) -> Result<Option<(Actor, Credential)>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let raw = auth
            .to_str()
            .map_err(|_| ApiError::Core(CoreError::Unauthenticated))?;
        let token = raw
            .strip_prefix("token ")
            .or_else(|| raw.strip_prefix("Token "))
            .ok_or(ApiError::Core(CoreError::Unauthenticated))?;
        let (key, secret) = token
            .trim()
            .split_once(':')
            .ok_or(ApiError::Core(CoreError::Unauthenticated))?;
        let actor = app.auth().authenticate_api_key(key, secret).await?;
        return Ok(Some((actor, Credential::Token)));
    }
    match cookie(headers, "sid") {
        Some(sid) => match app.auth().authenticate_session(&sid).await {
            Ok(a) => Ok(Some((a, Credential::Cookie(sid)))),
            Err(CoreError::Unauthenticated) => Ok(None),
            Err(e) => Err(e.into()),
        },
        None => Ok(None),
    }
}

fn ok(message: serde_json::Value) -> Response {
    axum::Json(json!({ "message": message })).into_response()
}

async fn method_call(
    State(st): State<Arc<AppState>>,
    Path(method): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let client = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                ApiError::PayloadTooLarge(format!(
                    "request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ApiError::bad("the request body could not be read")
            }
            .into_response();
        }
    };
    let req = Incoming {
        method: &method,
        http_method: &parts.method,
        headers: &parts.headers,
        uri: &parts.uri,
        body: &body,
        client: client.as_deref(),
    };
    match handle(&st, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

struct Incoming<'a> {
    method: &'a str,
    http_method: &'a Method,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    body: &'a Bytes,
    client: Option<&'a str>,
}

fn only_post(http_method: &Method, what: &str) -> Result<(), ApiError> {
    if http_method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: "POST",
            message: format!("{what} accepts POST only (got {http_method})"),
        })
    }
}

async fn handle(st: &Arc<AppState>, req: Incoming<'_>) -> Result<Response, ApiError> {
    let Incoming {
        method,
        http_method,
        headers,
        uri,
        body,
        client,
    } = req;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let app = &st.memora;
    match method {
        "login" => {
            only_post(http_method, "login")?;
            let args = Args::parse(uri.query(), content_type, body)?;
            if uri
                .query()
                .is_some_and(|q| q.contains("pwd=") || q.contains("password="))
            {
                return Err(ApiError::bad(
                    "send the password in the request body, never in the URL",
                ));
            }
            return login(st, &args, client).await;
        }
        "logout" => {
            // POST only; no CSRF check, so a client that lost its token can
            // always end its session (a forged logout harms nobody).
            only_post(http_method, "logout")?;
            if let Some(sid) = cookie(headers, "sid") {
                app.auth().logout(&sid).await?;
            }
            let mut resp = ok(json!(null));
            set_cookie(
                &mut resp,
                "sid=Guest; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            );
            return Ok(resp);
        }
        "frappe.auth.get_logged_user" => {
            if http_method != Method::GET && http_method != Method::POST {
                return Err(ApiError::MethodNotAllowed {
                    allow: "GET, POST",
                    message: format!("get_logged_user accepts GET and POST (got {http_method})"),
                });
            }
            let (actor, cred) = authenticate(app, headers)
                .await?
                .ok_or(ApiError::Core(CoreError::Unauthenticated))?;
            let mut resp = ok(json!(actor.user.as_str()));
            if let Credential::Cookie(sid) = cred {
                if let Ok(v) = HeaderValue::from_str(&csrf_token(&sid)) {
                    resp.headers_mut().insert(CSRF_HEADER, v);
                }
            }
            return Ok(resp);
        }
        _ => {}
    }
    let spec = api::resolve(method)
        .ok_or_else(|| ApiError::UnknownMethod(format!("no such method: {method}")))?;
    let allowed = if spec.mutates {
        http_method == Method::POST
    } else {
        http_method == Method::GET || http_method == Method::POST
    };
    if !allowed {
        return Err(ApiError::MethodNotAllowed {
            allow: spec.allow(),
            message: format!(
                "{} accepts {} only (got {http_method}){}",
                spec.name,
                spec.allow(),
                if spec.mutates {
                    ": it changes state"
                } else {
                    ""
                }
            ),
        });
    }
    let args = Args::parse(uri.query(), content_type, body)?;
    let authenticated = authenticate(app, headers).await?;
    if spec.mutates {
        if let Some((_, Credential::Cookie(sid))) = &authenticated {
            let given = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if given.is_empty() {
                return Err(ApiError::Csrf(format!(
                    "{} changes state: a cookie session must send the X-Frappe-CSRF-Token header (returned by login and get_logged_user)",
                    spec.name
                )));
            }
            if !constant_time_eq(given.as_bytes(), csrf_token(sid).as_bytes()) {
                return Err(ApiError::Csrf("invalid X-Frappe-CSRF-Token".into()));
            }
        }
    }
    let actor = authenticated.map(|(a, _)| a);
    api::authorize(spec, actor.as_ref())?;
    let value = api::handlers::dispatch(
        app,
        spec,
        api::Call {
            args: &args,
            actor: actor.as_ref(),
        },
    )
    .await?;
    Ok(ok(value))
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn login(st: &AppState, args: &Args, client: Option<&str>) -> Result<Response, ApiError> {
    let usr = args.req_str(&["usr", "username", "email"])?;
    let pwd = args.req_secret(&["pwd", "password"])?;
    let out = st.memora.auth().login(&usr, &pwd, client).await?;
    let max_age = (out.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let csrf = csrf_token(&out.sid);
    let body = json!({
        "message": "Logged In",
        "home_page": "/app",
        "full_name": out.user.full_name,
        "user": out.user.id.as_str(),
        "csrf_token": csrf,
    });
    let mut resp = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&csrf) {
        resp.headers_mut().insert(CSRF_HEADER, v);
    }
    set_cookie(
        &mut resp,
        &format!(
            "sid={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            out.sid,
            if st.secure_cookies { "; Secure" } else { "" }
        ),
    );
    Ok(resp)
}
