//! # memora-http
//!
//! The thin HTTP layer of Memora: Frappe-compatible method endpoints over
//! the use cases of `memora-core`, authentication (session cookie or API
//! token), health/readiness, Prometheus metrics, an OpenAPI document and the
//! web console ([`console`]).
//! Start-up is a library function ([`router`], [`serve`]) so tests can drive
//! the router without sockets.

pub mod api;
pub mod args;
pub mod backend;
pub mod console;
pub mod error;
pub mod jobs;
pub mod openapi;
pub mod security;
pub mod tenancy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use memora_core::domain::{Actor, InstitutionId};
use memora_core::{CoreError, Memora};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::Verbs;
use crate::args::Args;
use crate::error::ApiError;

/// Shared state of the server.
pub struct AppState {
    /// The application (of the home institution, when there are several).
    pub memora: Arc<Memora>,
    /// Every institution of the platform (`None`: a single-institution
    /// server; credentials of other institutions are refused). See
    /// [`tenancy`].
    pub platform: Option<Arc<memora_core::services::Platform>>,
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

/// Builds the router with its middleware stack (outermost first): request
/// id → request log → id propagation → metrics → timeout.
///
/// The request log is one INFO line per answered request with method, path
/// (never the query string: Frappe clients may put secrets there), status,
/// latency and request id — no headers, so no cookie or token.
pub fn router(state: Arc<AppState>) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/", get(index))
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .route("/console/", get(console::shell))
        .route("/console/{*asset}", get(console::asset))
        .route("/api/method/{*method}", any(method_call))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route(
            "/api/docs",
            get(|| async { axum::response::Redirect::permanent("/api/docs/") }),
        )
        .route(
            "/api/docs/",
            get(|| async { axum::response::Html(openapi::DOCS_HTML) }),
        )
        .route("/api/docs/{asset}", get(docs_asset))
        .fallback(|uri: Uri| async move {
            ApiError::NotFound(format!("no route for {}", uri.path())).into_response()
        })
        .method_not_allowed_fallback(|m: Method, uri: Uri| async move {
            ApiError::MethodNotAllowed {
                allow: "GET",
                message: format!("{} accepts GET only (got {m})", uri.path()),
            }
            .into_response()
        })
        .with_state(state)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(axum::middleware::from_fn(limit_uri))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id
                    )
                })
                .on_request(())
                .on_response(
                    |resp: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            target: ACCESS_LOG_TARGET,
                            status = resp.status().as_u16(),
                            latency_ms = latency.as_micros() as f64 / 1000.0,
                            "request"
                        );
                    },
                ),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Longest accepted request target (path and query); longer ones get a
/// JSON 414. (hyper itself refuses request heads over ~400 KiB with a bare
/// 431 before any handler runs.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

async fn limit_uri(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if len > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request URI is {len} bytes; at most {MAX_URI_BYTES} are accepted (send arguments in a POST body)"
        ))
        .into_response();
    }
    next.run(req).await
}

async fn docs_asset(Path(asset): Path<String>) -> Response {
    let (body, ct): (&'static [u8], &str) = match asset.as_str() {
        "swagger-ui-bundle.js" => (openapi::SWAGGER_UI_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (openapi::SWAGGER_UI_CSS, "text/css; charset=utf-8"),
        "init.js" => (
            openapi::DOCS_INIT_JS.as_bytes(),
            "text/javascript; charset=utf-8",
        ),
        "LICENSE" => (openapi::SWAGGER_UI_LICENSE, "text/plain; charset=utf-8"),
        other => {
            return ApiError::NotFound(format!("no such asset: {other}")).into_response();
        }
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// `tracing` target of the request log lines (filter them with
/// `RUST_LOG=memora::access=warn` to turn them off).
pub const ACCESS_LOG_TARGET: &str = "memora::access";

/// `GET /`: the web console for browsers (they ask for `text/html`); for
/// every other client, what this server is and where to go next.
async fn index(headers: HeaderMap) -> Response {
    if console::wants_html(&headers) {
        return console::shell().await;
    }
    axum::Json(json!({
        "name": "Memora",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Spaced repetition and gamification for schools (Frappe-compatible API)",
        "links": {
            "openapi": "/api/openapi.json",
            "docs": "/api/docs/",
            "console": "/console/",
            "health": "/healthz",
            "ready": "/readyz",
            "methods": "/api/method/{method}",
        },
    }))
    .into_response()
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
    let ((resp, pg), redis) = memora_cache_redis::count_round_trips(
        memora_store_postgres::trips::count_queries(next.run(req)),
    )
    .await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("memora_http_request_duration_seconds", "route" => route.clone(), "status" => status)
        .record(start.elapsed().as_secs_f64());
    // Round trips per request kind (the hot path's budget; see
    // docs/PERFORMANCE.md): divide by the request count of the route.
    metrics::counter!("memora_postgres_round_trips_total", "route" => route.clone()).increment(pg);
    metrics::counter!("memora_redis_round_trips_total", "route" => route.clone()).increment(redis);
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
    for (dependency, open) in breakers(&st.memora) {
        metrics::gauge!("memora_breaker_open", "dependency" => dependency).set(if open {
            1.0
        } else {
            0.0
        });
    }
    // The core counts; these mirror its totals into Prometheus counters
    // (`absolute` never goes backwards, as a counter must not).
    metrics::counter!("memora_cache_failures_total").absolute(c.failures);
    metrics::counter!("memora_cache_hits_total").absolute(c.hits);
    metrics::counter!("memora_cache_misses_total").absolute(c.misses);
    metrics::counter!("memora_rehydrations_total").absolute(c.misses);
    metrics::counter!("memora_safe_mode_requests_total").absolute(c.safe_mode_requests);
    if let Ok(depth) = st.memora.ports().queue.depth().await {
        metrics::gauge!("memora_persistence_queue_depth").set(depth as f64);
    }
    if let Ok(dead) = st.memora.ports().queue.dead_letter_count().await {
        metrics::gauge!("memora_persistence_dead_letters").set(dead as f64);
    }
    // Every institution's own health (the unlabeled gauges above are the
    // home institution's): safe mode, write-behind depth, dead letters. Read
    // concurrently, each bounded, so a scrape stays short whatever the
    // number of institutions or the state of Redis.
    if let Some(platform) = &st.platform {
        let reads = platform
            .open_tenants()
            .into_iter()
            .map(|(inst, app)| async move {
                let bound = Duration::from_millis(250);
                let ports = app.ports();
                let depth = tokio::time::timeout(bound, ports.queue.depth()).await;
                let dead = tokio::time::timeout(bound, ports.queue.dead_letter_count()).await;
                (inst, app.cache_health().is_degraded(), depth, dead)
            });
        for (inst, degraded, depth, dead) in futures::future::join_all(reads).await {
            let label = inst.as_str().to_owned();
            metrics::gauge!("memora_institution_safe_mode", "institution" => label.clone())
                .set(if degraded { 1.0 } else { 0.0 });
            // A read that failed or timed out is reported as -1 (unknown),
            // never as the last value.
            let value = |r: Result<Result<u64, memora_core::PortError>, _>| match r {
                Ok(Ok(n)) => n as f64,
                _ => -1.0,
            };
            metrics::gauge!("memora_institution_queue_depth", "institution" => label.clone())
                .set(value(depth));
            metrics::gauge!("memora_institution_dead_letters", "institution" => label)
                .set(value(dead));
        }
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

/// Each dependency's breaker and whether it is open. Only `due_cache`
/// drives safe mode (`memora_safe_mode`, `is_degraded`).
fn breakers(app: &Memora) -> [(&'static str, bool); 3] {
    [
        ("due_cache", app.cache_health().is_degraded()),
        ("leaderboards", app.leaderboard_health().is_degraded()),
        ("queue", app.queue_health().is_degraded()),
    ]
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let ports = st.memora.ports();
    let db = ports.seasons.list_seasons().await.is_ok();
    // Reports only: leaving safe mode is the probe's job (`jobs`), which
    // first drops the cached schedules that missed writes.
    let cache = ports.cache.ping().await.is_ok();
    let degraded: Vec<String> = st
        .platform
        .as_ref()
        .map(|p| {
            p.open_tenants()
                .into_iter()
                .filter(|(_, app)| app.cache_health().is_degraded())
                .map(|(id, _)| id.to_string())
                .collect()
        })
        .unwrap_or_default();
    let body = json!({
        "institutions_in_safe_mode": degraded,
        "database": if db { "ok" } else { "unavailable" },
        "cache": if cache { "ok" } else { "unavailable" },
        "safe_mode": st.memora.cache_health().is_degraded(),
        "breakers": breakers(&st.memora)
            .into_iter()
            .map(|(dependency, open)| {
                (dependency.to_string(), json!(if open { "open" } else { "closed" }))
            })
            .collect::<serde_json::Map<String, serde_json::Value>>(),
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
    hex::encode(&d[..20])
}

/// How the caller authenticated.
enum Credential {
    /// `Authorization: token key:secret` (exempt from CSRF: a browser never
    /// adds it by itself).
    Token,
    /// The `sid` cookie.
    Cookie(String),
}

/// The `key:secret` of an `Authorization: token key:secret` header: `None`
/// without the header, a 401 when it is malformed.
fn api_token(headers: &HeaderMap) -> Result<Option<(&str, &str)>, ApiError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = auth
        .to_str()
        .map_err(|_| ApiError::Core(CoreError::Unauthenticated))?;
    let token = raw
        .strip_prefix("token ")
        .or_else(|| raw.strip_prefix("Token "))
        .ok_or(ApiError::Core(CoreError::Unauthenticated))?;
    token
        .trim()
        .split_once(':')
        .map(Some)
        .ok_or(ApiError::Core(CoreError::Unauthenticated))
}

/// The application of `institution` and whether it is suspended: the
/// platform's tenant, or the single application of a server without a
/// platform (which knows no other institution: `None`).
fn tenant(st: &AppState, institution: &InstitutionId) -> Option<(Arc<Memora>, bool)> {
    match &st.platform {
        Some(p) => p.tenant_with_status(institution),
        None if institution.is_home() => Some((Arc::clone(&st.memora), false)),
        None => None,
    }
}

/// The refusal of a verified credential of a suspended institution.
fn suspended_error(institution: &InstitutionId) -> ApiError {
    CoreError::forbidden(format!("institution {institution} is suspended")).into()
}

/// Routes a call to its institution and resolves the caller there:
/// `Authorization: token key:secret` first, then the `sid` cookie. The
/// institution is read from the credential's prefix (never from an
/// argument) and the credential is then verified by that institution's own
/// store, so a forged prefix only finds nothing. A present but invalid
/// token is a 401 (never silently treated as a guest); an invalid cookie
/// makes a guest, as before. A suspended institution's credentials get a
/// 403 — once verified, so a suspension tells nothing to whoever merely
/// guesses a prefix.
async fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(InstitutionId, Arc<Memora>, Option<(Actor, Credential)>), ApiError> {
    if let Some((key, secret)) = api_token(headers)? {
        let inst =
            InstitutionId::of_credential(key).ok_or(ApiError::Core(CoreError::Unauthenticated))?;
        let (app, is_suspended) =
            tenant(st, &inst).ok_or(ApiError::Core(CoreError::Unauthenticated))?;
        let actor = app.auth().authenticate_api_key(key, secret).await?;
        if is_suspended {
            return Err(suspended_error(&inst));
        }
        return Ok((inst, app, Some((actor, Credential::Token))));
    }
    let home = || (InstitutionId::home(), Arc::clone(&st.memora), None);
    let Some(sid) = cookie(headers, "sid") else {
        return Ok(home());
    };
    let Some(inst) = InstitutionId::of_credential(&sid) else {
        return Ok(home());
    };
    let Some((app, is_suspended)) = tenant(st, &inst) else {
        return Ok(home());
    };
    match app.auth().authenticate_session(&sid).await {
        Ok(_) if is_suspended => Err(suspended_error(&inst)),
        Ok(a) => Ok((inst, app, Some((a, Credential::Cookie(sid))))),
        Err(CoreError::Unauthenticated) => Ok(home()),
        Err(e) => Err(e.into()),
    }
}

/// The institution and application a `login` or `logout` goes to: the
/// account's institution for a login (from the platform directory), the
/// cookie's for a logout. A suspended institution still gets the call, so
/// that a login is refused only after its password was checked.
async fn session_tenant(
    st: &AppState,
    spec: &api::MethodSpec,
    args: &Args,
    sid: Option<&str>,
) -> Result<(InstitutionId, Arc<Memora>, bool), ApiError> {
    let home = (InstitutionId::home(), Arc::clone(&st.memora), false);
    let Some(platform) = &st.platform else {
        return Ok(home);
    };
    let inst = if spec.name == "login" {
        let usr = ["usr", "username", "email"]
            .iter()
            .find_map(|k| args.get(k))
            .and_then(serde_json::Value::as_str);
        match usr {
            Some(usr) => platform.institution_of_account(usr).await?,
            None => return Ok(home),
        }
    } else {
        match sid.and_then(InstitutionId::of_credential) {
            Some(i) => i,
            None => return Ok(home),
        }
    };
    match platform.tenant_with_status(&inst) {
        Some((app, is_suspended)) => Ok((inst, app, is_suspended)),
        // The directory names an institution this process has not opened
        // (created a moment ago, or failing to open): a retry will do,
        // whereas the home institution would only count a failed login
        // against the account.
        // The message names no institution: it is answered before any
        // password check.
        None if spec.name == "login" => Err(CoreError::Unavailable(
            "this account's institution is not available on this server yet; retry in a moment"
                .into(),
        )
        .into()),
        None => Ok(home),
    }
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

async fn handle(st: &Arc<AppState>, req: Incoming<'_>) -> Result<Response, ApiError> {
    let Incoming {
        method,
        http_method,
        headers,
        uri,
        body,
        client,
    } = req;
    let spec = api::resolve(method)
        .ok_or_else(|| ApiError::UnknownMethod(format!("no such method: {method}")))?;
    if !spec.verbs.accepts(http_method) {
        return Err(ApiError::MethodNotAllowed {
            allow: spec.allow(),
            message: format!(
                "{} accepts {} only (got {http_method}){}",
                spec.name,
                spec.allow(),
                if spec.mutates() {
                    ": it changes state"
                } else {
                    ""
                }
            ),
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let args = Args::parse(uri.query(), content_type, body)?;
    let (institution, app, actor, sid, suspended) = if spec.verbs == Verbs::Session {
        // login and logout act on the cookie as sent; a stale cookie must
        // never stop a login or a logout.
        let sid = cookie(headers, "sid");
        let (inst, app, suspended) = session_tenant(st, spec, &args, sid.as_deref()).await?;
        (inst, app, None, sid, suspended)
    } else {
        match authenticate(st, headers).await? {
            (inst, app, Some((actor, Credential::Cookie(sid)))) => {
                (inst, app, Some(actor), Some(sid), false)
            }
            (inst, app, Some((actor, Credential::Token))) => (inst, app, Some(actor), None, false),
            (inst, app, None) => (inst, app, None, None, false),
        }
    };
    let app = &app;
    if spec.mutates() {
        if let Some(sid) = &sid {
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
    api::authorize(spec, actor.as_ref(), &institution)?;
    let ctx = api::Ctx::new(
        actor,
        sid,
        client.map(str::to_owned),
        uri.query().map(str::to_owned),
    )
    .in_institution(institution.clone(), st.platform.clone());
    let mut args = args.into_map();
    if suspended && spec.name == "login" {
        // Only the password is checked: a refused login must not register
        // (or sign out) a device.
        for k in ["device_id", "device_type", "device_name"] {
            args.remove(k);
        }
    }
    let body = (spec.invoke)(app, &ctx, args).await?;
    if suspended && spec.name == "login" {
        // The password was right: end the session the login opened and
        // refuse (checking the password first keeps a suspension from
        // telling strangers which accounts exist).
        for effect in ctx.take_effects() {
            if let api::SessionEffect::Start { sid, .. } = effect {
                let _ = app.auth().logout(&sid).await;
            }
        }
        return Err(suspended_error(&institution));
    }
    let mut resp = (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    for effect in ctx.take_effects() {
        match effect {
            api::SessionEffect::Start { sid, max_age } => set_cookie(
                &mut resp,
                &format!(
                    "sid={sid}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
                    if st.secure_cookies { "; Secure" } else { "" }
                ),
            ),
            api::SessionEffect::End => set_cookie(
                &mut resp,
                "sid=Guest; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ),
            api::SessionEffect::Csrf(token) => {
                if let Ok(v) = HeaderValue::from_str(&token) {
                    resp.headers_mut().insert(CSRF_HEADER, v);
                }
            }
        }
    }
    Ok(resp)
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
