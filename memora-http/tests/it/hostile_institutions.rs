//! Hostile tests of institutions (multi-tenancy), on the in-memory
//! platform: a learner or manager of institution A (`alpha`), or a
//! stranger, forging credential prefixes, calling the platform operator's
//! methods, abusing `create_institution`, squatting account names, working
//! around a suspension, steering the login to another institution, and
//! replaying CSRF tokens across institutions. Every attack asserts the
//! status and the error envelope, and checks the state afterwards (who can
//! still log in where, which institutions exist).
//!
//! Bugs this file's author found are demonstrated in
//! `hostile_institutions_failing.rs` (kept out of `main.rs` until fixed).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use memora_core::domain::InstitutionId;
use memora_http::api::{Access, METHODS};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::endpoints::call;
use crate::hostile_devices::{login_as, raw_post};
use crate::isolation::{OPERATOR, PWD, Stack, memory_stack};

/// Carried by B's display texts: it must never reach A or a stranger.
pub(crate) const MARKER: &str = "BETA-SECRET";
pub(crate) const A_MANAGER: &str = "boss@alpha.test";
pub(crate) const A_LEARNER: &str = "kid@alpha.test";
pub(crate) const B_MANAGER: &str = "boss@beta.test";
pub(crate) const B_LEARNER: &str = "kid@beta.test";
/// A learner of the home institution (not a System Manager).
pub(crate) const HOME_LEARNER: &str = "kid@platform.test";
/// A strong password nobody uses.
pub(crate) const OTHER_PWD: &str = "Quite-Different-Pass-77";

pub(crate) fn m(name: &str) -> String {
    METHODS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no method {name}"))
        .path()
}

/// Two institutions with a manager and a learner each, a home learner, and
/// a signed-in cookie for every account.
pub(crate) struct World {
    pub(crate) t: Stack,
    pub(crate) op: String,
    pub(crate) am: String,
    pub(crate) al: String,
    pub(crate) bm: String,
    pub(crate) bl: String,
    pub(crate) hl: String,
}

pub(crate) async fn session(app: &Router, usr: &str) -> String {
    login_as(app, usr, PWD, json!({}))
        .await
        .unwrap_or_else(|e| panic!("login {usr}: {e:?}"))
}

/// `message` of a call that must succeed.
pub(crate) async fn ok(app: &Router, method: &str, cookie: &str, body: Value) -> Value {
    let (s, v) = call(app, &m(method), Some(cookie), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{method} {body}: {v}");
    v["message"].clone()
}

/// Asserts the status and `exc_type` of a refused response.
#[track_caller]
pub(crate) fn refused(got: (StatusCode, &Value), status: StatusCode, exc: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["exc_type"], exc, "{what}: {}", got.1);
    assert!(got.1["exception"].is_string(), "{what}: {}", got.1);
    assert!(
        !got.1.to_string().contains(MARKER),
        "{what} leaked B: {}",
        got.1
    );
}

pub(crate) async fn create_user(app: &Router, admin: &str, user: &str, name: &str) {
    ok(
        app,
        "create_user",
        admin,
        json!({"email": user, "full_name": name, "password": PWD}),
    )
    .await;
}

pub(crate) async fn world() -> World {
    let t = memory_stack().await;
    let op = session(&t.app, OPERATOR).await;
    for (inst, name, manager, manager_name) in [
        ("alpha", "Alpha School", A_MANAGER, "Alpha Boss"),
        (
            "beta",
            "Beta School BETA-SECRET",
            B_MANAGER,
            "Beta Boss BETA-SECRET",
        ),
    ] {
        let created = ok(
            &t.app,
            "create_institution",
            &op,
            json!({"institution": inst, "name": name, "manager": manager,
                   "manager_full_name": manager_name, "manager_password": PWD}),
        )
        .await;
        assert_eq!(created["institution"], inst, "{created}");
        assert_eq!(created["status"], "active", "{created}");
    }
    let am = session(&t.app, A_MANAGER).await;
    let bm = session(&t.app, B_MANAGER).await;
    create_user(&t.app, &am, A_LEARNER, "Alpha Kid").await;
    create_user(&t.app, &bm, B_LEARNER, "Beta Kid BETA-SECRET").await;
    create_user(&t.app, &op, HOME_LEARNER, "Home Kid").await;
    let al = session(&t.app, A_LEARNER).await;
    let bl = session(&t.app, B_LEARNER).await;
    let hl = session(&t.app, HOME_LEARNER).await;
    assert!(am.starts_with("sid=alpha~") && al.starts_with("sid=alpha~"));
    assert!(bm.starts_with("sid=beta~") && bl.starts_with("sid=beta~"));
    assert!(!op.contains('~') && !hl.contains('~'), "{op} {hl}");
    World {
        t,
        op,
        am,
        al,
        bm,
        bl,
        hl,
    }
}

/// The institution the caller behind `cookie` belongs to (`None`: 401).
pub(crate) async fn whose(app: &Router, cookie: &str) -> Option<String> {
    let (s, v) = call(app, &m("get_my_institution"), Some(cookie), json!({})).await;
    match s {
        StatusCode::OK => Some(v["message"]["institution"].as_str().unwrap().to_owned()),
        StatusCode::UNAUTHORIZED => {
            assert_eq!(v["exc_type"], "AuthenticationError", "{v}");
            None
        }
        other => panic!("get_my_institution → {other} {v}"),
    }
}

/// The same with an `Authorization` header.
pub(crate) async fn whose_token(app: &Router, token: &str) -> (StatusCode, Value) {
    raw_post(
        app,
        &m("get_my_institution"),
        None,
        None,
        Some(token),
        json!({}),
    )
    .await
}

/// An API token (`token key:secret`) of `user`, made by `admin`.
pub(crate) async fn token_of(app: &Router, admin: &str, user: &str) -> (String, String) {
    let v = ok(app, "create_api_key", admin, json!({"user": user})).await;
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["api_secret"].as_str().unwrap().to_owned(),
    )
}

/// `(id, status)` of every institution, as the operator sees them.
pub(crate) async fn institutions(app: &Router, op: &str) -> Vec<(String, String)> {
    let v = ok(app, "get_institutions", op, json!({})).await;
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["institution"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn listing(ids: &[(&str, &str)]) -> Vec<(String, String)> {
    ids.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

pub(crate) fn csrf_of(cookie: &str) -> String {
    memora_http::csrf_token(cookie.trim_start_matches("sid="))
}

/// Sends `req`: status, JSON body, headers.
pub(crate) async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value, HeaderMap) {
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

/// A login with a raw JSON body: status, body, and the `sid=…` of any
/// `Set-Cookie` (whatever the status).
pub(crate) async fn raw_login(
    app: &Router,
    body: Value,
    client: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::post("/api/method/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    if let Some(ip) = client {
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
    }
    let (s, v, h) = send(app, req).await;
    let sid = h
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .map(|c| c.split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("sid=") && c != "sid=Guest");
    (s, v, sid)
}

// ─────────────────────────── 1. forged prefixes ───────────────────────────

/// Every forgery of a session id: re-prefixed, unprefixed, malformed.
fn forged_sids(raw: &str) -> Vec<String> {
    vec![
        format!("beta~{raw}"),
        format!("zzz~{raw}"),
        format!("default~{raw}"),
        format!("Beta~{raw}"),
        format!("BETA~{raw}"),
        format!("~{raw}"),
        format!("a~{raw}"),
        format!("beta-~{raw}"),
        raw.to_owned(),
        format!("beta~alpha~{raw}"),
        format!("alpha~beta~{raw}"),
        format!("alpha~{raw}x"),
        format!("alpha~{}", &raw[1..]),
        format!("{}~{raw}", "x".repeat(33)),
        format!("{}~{raw}", "y".repeat(5000)),
        "beta~".into(),
        "alpha~".into(),
        "~".into(),
        "~~~".into(),
        "beta~~".into(),
        format!("beta ~{raw}"),
        format!(" beta~{raw}"),
        format!("bëta~{raw}"),
    ]
}

#[tokio::test]
async fn forged_session_prefixes_are_guests_never_another_institution() {
    let w = world().await;
    let app = &w.t.app;
    let raw = w.al.trim_start_matches("sid=alpha~").to_owned();
    assert!(!raw.is_empty() && !raw.contains('~'), "{raw}");
    for sid in forged_sids(&raw) {
        let cookie = format!("sid={sid}");
        let what = format!("cookie {:.80}", cookie);
        // A user method: 401 (a guest), never B's (or anyone's) answer.
        for method in [
            "get_my_institution",
            "get_logged_user",
            "get_player_profile",
        ] {
            let (s, v) = call(app, &m(method), Some(&cookie), json!({})).await;
            refused(
                (s, &v),
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                &format!("{method} {what}"),
            );
        }
        // A write with the CSRF token the forged id implies: still a guest.
        let (s, v) = call(
            app,
            &m("set_time_zone"),
            Some(&cookie),
            json!({"time_zone": "Europe/Paris"}),
        )
        .await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            &format!("set_time_zone {what}"),
        );
        // An operator method: 401, not 403 (nobody is recognised).
        let (s, v) = call(app, &m("get_institutions"), Some(&cookie), json!({})).await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            &format!("get_institutions {what}"),
        );
        // A guest method answers as for a guest.
        let (s, v) = call(
            app,
            &m("get_plan_version"),
            Some(&cookie),
            json!({"grade": "G12", "season": "SEASON-2031"}),
        )
        .await;
        assert!(
            !s.is_server_error() && s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
            "guest method with {what}: {s} {v}"
        );
        assert!(!v.to_string().contains(MARKER), "{what}: {v}");
    }
    // Two sid cookies: the first one counts, and a forged first one makes a
    // guest even when a real one follows.
    let both = format!("sid=beta~{raw}; {}", w.al);
    assert_eq!(whose(app, &both).await, None);
    // The real cookies still work, each in its own institution.
    assert_eq!(whose(app, &w.al).await.as_deref(), Some("alpha"));
    assert_eq!(whose(app, &w.bl).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.op).await.as_deref(), Some("default"));
}

#[tokio::test]
async fn forged_api_token_prefixes_are_401() {
    let w = world().await;
    let app = &w.t.app;
    let (ak, asec) = token_of(app, &w.am, A_MANAGER).await;
    let (bk, bsec) = token_of(app, &w.bm, B_LEARNER).await;
    assert!(
        ak.starts_with("alpha~") && bk.starts_with("beta~"),
        "{ak} {bk}"
    );
    let a_raw = ak.trim_start_matches("alpha~");
    let b_raw = bk.trim_start_matches("beta~");
    let forged = [
        format!("token beta~{a_raw}:{asec}"),
        format!("token zzz~{a_raw}:{asec}"),
        format!("token default~{a_raw}:{asec}"),
        format!("token {a_raw}:{asec}"),
        format!("token Beta~{a_raw}:{asec}"),
        format!("token ALPHA~{a_raw}:{asec}"),
        format!("token ~{a_raw}:{asec}"),
        format!("token a~{a_raw}:{asec}"),
        format!("token beta~alpha~{a_raw}:{asec}"),
        format!("token {}~{a_raw}:{asec}", "q".repeat(40)),
        // A's key with B's secret, B's key with A's secret, B's key
        // re-prefixed into A.
        format!("token {ak}:{bsec}"),
        format!("token {bk}:{asec}"),
        format!("token alpha~{b_raw}:{bsec}"),
        format!("token {ak}:"),
        format!("token {ak}:{asec}x"),
        format!("token {ak}:{asec}:{asec}"),
        format!("token {ak}"),
        "token :".into(),
        "token ~:~".into(),
        "token beta~:".into(),
        format!("Bearer {ak}:{asec}"),
        format!("Basic {ak}:{asec}"),
        format!("token  beta~{a_raw}:{asec}"),
    ];
    for tok in &forged {
        for method in ["get_my_institution", "get_plan_version", "get_institutions"] {
            let (s, v) = raw_post(
                app,
                &m(method),
                None,
                None,
                Some(tok),
                json!({"grade": "G12", "season": "SEASON-2031"}),
            )
            .await;
            refused(
                (s, &v),
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                &format!("{method} with {tok:.90}"),
            );
        }
        // Next to a valid cookie of A, a bad token is still a 401 (never
        // falls back to the cookie, never to B).
        let (s, v) = raw_post(
            app,
            &m("get_my_institution"),
            Some(&w.al),
            None,
            Some(tok),
            json!({}),
        )
        .await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            &format!("token {tok:.90} next to A's cookie"),
        );
    }
    // The real tokens work, each in its own institution.
    let (s, v) = whose_token(app, &format!("token {ak}:{asec}")).await;
    assert_eq!(
        (s, v["message"]["institution"].as_str()),
        (StatusCode::OK, Some("alpha")),
        "{v}"
    );
    let (s, v) = whose_token(app, &format!("token {bk}:{bsec}")).await;
    assert_eq!(
        (s, v["message"]["institution"].as_str()),
        (StatusCode::OK, Some("beta")),
        "{v}"
    );
}

// ───────────────────────── 2. operator-only methods ─────────────────────────

#[tokio::test]
async fn operator_methods_refuse_everyone_but_the_home_system_manager() {
    let w = world().await;
    let app = &w.t.app;
    let (ak, asec) = token_of(app, &w.am, A_MANAGER).await;
    let (bk, bsec) = token_of(app, &w.bm, B_MANAGER).await;
    let (lk, lsec) = token_of(app, &w.am, A_LEARNER).await;
    let (hk, hsec) = token_of(app, &w.op, HOME_LEARNER).await;
    let operator_methods: Vec<_> = METHODS
        .iter()
        .filter(|s| s.access == Access::Operator)
        .collect();
    assert_eq!(operator_methods.len(), 4, "create, list, suspend, resume");
    let args = |name: &str| match name {
        "create_institution" => json!({"institution": "gamma", "name": "Gamma",
            "manager": "boss@gamma.test", "manager_full_name": "Gamma Boss",
            "manager_password": PWD}),
        "suspend_institution" | "resume_institution" => json!({"institution": "beta"}),
        _ => json!({}),
    };
    let cookies = [
        ("A's manager", &w.am),
        ("A's learner", &w.al),
        ("B's manager", &w.bm),
        ("B's learner", &w.bl),
        ("a home learner", &w.hl),
    ];
    for spec in &operator_methods {
        for (who, cookie) in cookies {
            let (s, v) = call(app, &spec.path(), Some(cookie), args(spec.name)).await;
            refused(
                (s, &v),
                StatusCode::FORBIDDEN,
                "PermissionError",
                &format!("{} by {who}", spec.name),
            );
        }
        for (who, tok) in [
            ("A's manager", format!("token {ak}:{asec}")),
            ("B's manager", format!("token {bk}:{bsec}")),
            ("A's learner", format!("token {lk}:{lsec}")),
            ("a home learner", format!("token {hk}:{hsec}")),
        ] {
            let (s, v) = raw_post(app, &spec.path(), None, None, Some(&tok), args(spec.name)).await;
            refused(
                (s, &v),
                StatusCode::FORBIDDEN,
                "PermissionError",
                &format!("{} by {who}'s token", spec.name),
            );
        }
        let (s, v) = call(app, &spec.path(), None, args(spec.name)).await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            &format!("{} by a guest", spec.name),
        );
    }
    // Nothing happened: no gamma, beta still active and usable, and the
    // name boss@gamma.test is still free.
    assert_eq!(
        institutions(app, &w.op).await,
        listing(&[
            ("alpha", "active"),
            ("beta", "active"),
            ("default", "active")
        ])
    );
    assert_eq!(whose(app, &w.bl).await.as_deref(), Some("beta"));
    // The operator's cookie and API token both work.
    let (ok_k, ok_s) = token_of(app, &w.op, OPERATOR).await;
    let op_tok = format!("token {ok_k}:{ok_s}");
    let (s, v) = raw_post(
        app,
        &m("get_institutions"),
        None,
        None,
        Some(&op_tok),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"].as_array().unwrap().len(), 3, "{v}");
    let (s, v) = raw_post(
        app,
        &m("create_institution"),
        None,
        None,
        Some(&op_tok),
        args("create_institution"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["institution"], "gamma");
    let gm = session(app, "boss@gamma.test").await;
    assert!(gm.starts_with("sid=gamma~"), "{gm}");
    assert_eq!(whose(app, &gm).await.as_deref(), Some("gamma"));
    // The new institution's manager manages gamma only: no operator method.
    for spec in &operator_methods {
        let (s, v) = call(app, &spec.path(), Some(&gm), args(spec.name)).await;
        refused(
            (s, &v),
            StatusCode::FORBIDDEN,
            "PermissionError",
            &format!("{} by gamma's manager", spec.name),
        );
    }
    let (gk, _) = token_of(app, &gm, "boss@gamma.test").await;
    assert!(gk.starts_with("gamma~"), "{gk}");
}

#[tokio::test]
async fn the_home_institution_cannot_be_suspended_and_unknown_ones_are_404() {
    let w = world().await;
    let app = &w.t.app;
    for method in ["suspend_institution", "resume_institution"] {
        let (s, v) = call(
            app,
            &m(method),
            Some(&w.op),
            json!({"institution": "default"}),
        )
        .await;
        refused((s, &v), StatusCode::CONFLICT, "InvalidStateError", method);
        let (s, v) = call(
            app,
            &m(method),
            Some(&w.op),
            json!({"institution": " default "}),
        )
        .await;
        refused((s, &v), StatusCode::CONFLICT, "InvalidStateError", method);
        for unknown in ["zzz", "gamma", "alpha-2", "alph", "alphaa"] {
            let (s, v) = call(
                app,
                &m(method),
                Some(&w.op),
                json!({"institution": unknown}),
            )
            .await;
            refused(
                (s, &v),
                StatusCode::NOT_FOUND,
                "DoesNotExistError",
                &format!("{method} {unknown}"),
            );
        }
    }
    // The operator still works, every institution is active, none was
    // created by the attempts.
    assert_eq!(
        institutions(app, &w.op).await,
        listing(&[
            ("alpha", "active"),
            ("beta", "active"),
            ("default", "active")
        ])
    );
    assert_eq!(whose(app, &w.op).await.as_deref(), Some("default"));
    assert_eq!(whose(app, &w.hl).await.as_deref(), Some("default"));
}

// ───────────────────────── 3. create_institution ─────────────────────────

#[tokio::test]
async fn create_institution_refuses_bad_input_and_creates_nothing() {
    let w = world().await;
    let app = &w.t.app;
    let before = institutions(app, &w.op).await;
    let good = || {
        json!({"institution": "gamma", "name": "Gamma School", "manager": "boss@gamma.test",
               "manager_full_name": "Gamma Boss", "manager_password": PWD})
    };
    let with = |k: &str, v: Value| {
        let mut g = good();
        g[k] = v;
        g
    };
    let without = |k: &str| {
        let mut g = good();
        g.as_object_mut().unwrap().remove(k);
        g
    };
    let long_id = "x".repeat(33);
    let mut cases: Vec<(String, Value, StatusCode, &str)> = Vec::new();
    for bad in [
        "Default",
        "a",
        "-x",
        "x-",
        long_id.as_str(),
        "a~b",
        "",
        "  ",
        "gam ma",
        "gamma_1",
        "gämma",
        "1gamma",
        "GAMMA",
        "gamma~",
        "../gamma",
        "gamma;drop",
        "gamma\u{0}",
    ] {
        cases.push((
            format!("id {bad:?}"),
            with("institution", json!(bad)),
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ));
    }
    cases.push((
        "id default".into(),
        with("institution", json!("default")),
        StatusCode::CONFLICT,
        "DuplicateEntryError",
    ));
    for (what, args) in [
        ("empty name", with("name", json!(""))),
        ("blank name", with("name", json!("   "))),
        ("long name", with("name", json!("n".repeat(141)))),
        ("name with a newline", with("name", json!("Gamma\nSchool"))),
        ("weak password", with("manager_password", json!("password"))),
        ("short password", with("manager_password", json!("Ab1!"))),
        (
            "blank password",
            with("manager_password", json!("          ")),
        ),
        (
            "password of the manager's name",
            with("manager_password", json!("boss@gamma.test")),
        ),
        ("empty manager", with("manager", json!(""))),
        ("blank manager name", with("manager_full_name", json!("  "))),
        (
            "manager with braces",
            with("manager", json!("{boss}@gamma.test")),
        ),
        ("id as an object", with("institution", json!({"a": 1}))),
        ("id as a list", with("institution", json!(["gamma"]))),
        ("id as null", with("institution", Value::Null)),
        (
            "password as a number",
            with("manager_password", json!(12345678)),
        ),
        ("no id", without("institution")),
        ("no name", without("name")),
        ("no manager", without("manager")),
        ("no manager name", without("manager_full_name")),
        ("no password", without("manager_password")),
    ] {
        cases.push((
            what.into(),
            args,
            StatusCode::BAD_REQUEST,
            "ValidationError",
        ));
    }
    for taken in [
        A_MANAGER,
        A_LEARNER,
        B_MANAGER,
        B_LEARNER,
        OPERATOR,
        HOME_LEARNER,
    ] {
        cases.push((
            format!("manager {taken} (taken)"),
            with("manager", json!(taken)),
            StatusCode::CONFLICT,
            "DuplicateEntryError",
        ));
        cases.push((
            format!("manager {taken} with spaces (taken)"),
            with("manager", json!(format!("  {taken} "))),
            StatusCode::CONFLICT,
            "DuplicateEntryError",
        ));
    }
    // An existing id (with a fresh manager): 409, and the manager's name
    // stays free.
    for dup in ["alpha", "beta", " beta "] {
        cases.push((
            format!("duplicate id {dup:?}"),
            with("institution", json!(dup)),
            StatusCode::CONFLICT,
            "DuplicateEntryError",
        ));
    }
    for (what, args, status, exc) in &cases {
        let (s, v) = call(app, &m("create_institution"), Some(&w.op), args.clone()).await;
        refused((s, &v), *status, exc, what);
        assert_eq!(
            institutions(app, &w.op).await,
            before,
            "{what} created something"
        );
    }
    // Neither gamma nor boss@gamma.test was taken: the good request works.
    let created = ok(app, "create_institution", &w.op, good()).await;
    assert_eq!(created["institution"], "gamma");
    assert_eq!(created["name"], "Gamma School");
    let gm = session(app, "boss@gamma.test").await;
    assert_eq!(whose(app, &gm).await.as_deref(), Some("gamma"));
    // Now it exists: 409, with the old or a new manager.
    let (s, v) = call(app, &m("create_institution"), Some(&w.op), good()).await;
    refused(
        (s, &v),
        StatusCode::CONFLICT,
        "DuplicateEntryError",
        "gamma again",
    );
    let (s, v) = call(
        app,
        &m("create_institution"),
        Some(&w.op),
        with("manager", json!("boss2@gamma.test")),
    )
    .await;
    refused(
        (s, &v),
        StatusCode::CONFLICT,
        "DuplicateEntryError",
        "gamma again",
    );
    // …and boss2@gamma.test was not reserved by the refused call.
    let mut delta = with("institution", json!("delta"));
    delta["manager"] = json!("boss2@gamma.test");
    ok(app, "create_institution", &w.op, delta).await;
    let dm = session(app, "boss2@gamma.test").await;
    assert_eq!(whose(app, &dm).await.as_deref(), Some("delta"));
}

#[tokio::test]
async fn create_institution_refuses_the_manager_password_in_the_url() {
    let w = world().await;
    let app = &w.t.app;
    let before = institutions(app, &w.op).await;
    let body = json!({"institution": "gamma", "name": "Gamma", "manager": "boss@gamma.test",
                      "manager_full_name": "Gamma Boss"});
    for query in [
        format!("manager_password={PWD}"),
        format!("x=1&manager_password={PWD}"),
        "manager_password".to_owned(),
        "manager_password=".to_owned(),
    ] {
        for with_body_password in [false, true] {
            let mut b = body.clone();
            if with_body_password {
                b["manager_password"] = json!(PWD);
            }
            let req = Request::post(format!("/api/method/{}?{query}", m("create_institution")))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &w.op)
                .header(memora_http::CSRF_HEADER, csrf_of(&w.op))
                .body(Body::from(b.to_string()))
                .unwrap();
            let (s, v, _) = send(app, req).await;
            refused(
                (s, &v),
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &format!("?{query} (password in the body too: {with_body_password})"),
            );
            // (An empty value reads as a missing argument, refused first.)
            if query.contains(&format!("={PWD}")) || with_body_password {
                assert!(v["exception"].as_str().unwrap().contains("URL"), "{v}");
            }
            assert_eq!(institutions(app, &w.op).await, before);
        }
    }
    // Over GET it is not even accepted (a write).
    let (s, v, _) = crate::endpoints::get(
        app,
        &format!(
            "/api/method/{}?institution=gamma&name=G&manager=boss@gamma.test&manager_full_name=B&manager_password={PWD}",
            m("create_institution")
        ),
        Some(&w.op),
    )
    .await;
    refused(
        (s, &v),
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowedError",
        "GET",
    );
    assert_eq!(institutions(app, &w.op).await, before);
}

// ───────────────────────── 4. platform-unique names ─────────────────────────

#[tokio::test]
async fn account_names_are_unique_across_the_platform() {
    let w = world().await;
    let app = &w.t.app;
    let squat = |user: &str| json!({"email": user, "full_name": "Squatter", "password": OTHER_PWD});
    // A's manager takes B's names, the operator's, a home learner's.
    for (who, admin, victim) in [
        ("A's manager", &w.am, B_LEARNER),
        ("A's manager", &w.am, B_MANAGER),
        ("A's manager", &w.am, OPERATOR),
        ("A's manager", &w.am, HOME_LEARNER),
        ("B's manager", &w.bm, A_MANAGER),
        ("the operator", &w.op, B_LEARNER),
        ("the operator", &w.op, A_MANAGER),
        ("the operator", &w.op, OPERATOR),
    ] {
        for name in [victim.to_owned(), format!(" {victim}\t")] {
            let (s, v) = call(app, &m("create_user"), Some(admin), squat(&name)).await;
            refused(
                (s, &v),
                StatusCode::CONFLICT,
                "DuplicateEntryError",
                &format!("{who} create_user {name:?}"),
            );
        }
        // Also as user/name aliases.
        let (s, v) = call(
            app,
            &m("create_user"),
            Some(admin),
            json!({"user": victim, "name": "Squatter", "new_password": OTHER_PWD}),
        )
        .await;
        refused(
            (s, &v),
            StatusCode::CONFLICT,
            "DuplicateEntryError",
            &format!("{who} create_user (aliases) {victim}"),
        );
    }
    // Every victim still logs in to their own institution with their own
    // password, and the squatter's password opens nothing.
    for (user, inst) in [
        (B_LEARNER, "beta"),
        (B_MANAGER, "beta"),
        (A_MANAGER, "alpha"),
        (OPERATOR, "default"),
        (HOME_LEARNER, "default"),
    ] {
        let c = session(app, user).await;
        assert_eq!(whose(app, &c).await.as_deref(), Some(inst), "{user}");
        let (s, v, sid) = raw_login(app, json!({"usr": user, "pwd": OTHER_PWD}), None).await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            user,
        );
        assert_eq!(sid, None);
    }
    let me = ok(
        app,
        "get_logged_user",
        &session(app, B_LEARNER).await,
        json!({}),
    )
    .await;
    assert_eq!(me, B_LEARNER);
    // A case variant is the same account name (names are unique whatever
    // their case): A cannot squat a look-alike, and logging in with it
    // never opens B's account with another password.
    let variant = "KID@beta.test";
    let (s, v) = call(app, &m("create_user"), Some(&w.am), squat(variant)).await;
    refused(
        (s, &v),
        StatusCode::CONFLICT,
        "DuplicateEntryError",
        "a case variant of B's learner",
    );
    let (s, v, sid) = raw_login(app, json!({"usr": variant, "pwd": OTHER_PWD}), None).await;
    refused(
        (s, &v),
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        variant,
    );
    assert_eq!(sid, None);
    let bl = session(app, B_LEARNER).await;
    assert_eq!(whose(app, &bl).await.as_deref(), Some("beta"));
}

// ───────────────────────────── 5. suspension ─────────────────────────────

#[tokio::test]
async fn suspension_refuses_every_call_and_login_and_resume_restores_them() {
    let w = world().await;
    let app = &w.t.app;
    let (lk, lsec) = token_of(app, &w.bm, B_LEARNER).await;
    let (mk, msec) = token_of(app, &w.bm, B_MANAGER).await;
    let b_tokens = [format!("token {lk}:{lsec}"), format!("token {mk}:{msec}")];
    let (ak, asec) = token_of(app, &w.am, A_LEARNER).await;
    let a_token = format!("token {ak}:{asec}");

    let s = ok(
        app,
        "suspend_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    assert_eq!(s["institution"], "beta");
    assert_eq!(s["status"], "suspended");
    assert_eq!(
        institutions(app, &w.op).await,
        listing(&[
            ("alpha", "active"),
            ("beta", "suspended"),
            ("default", "active")
        ])
    );

    for spec in METHODS
        .iter()
        .filter(|s| s.name != "login" && s.name != "logout")
    {
        for cookie in [&w.bl, &w.bm] {
            let (s, v) = call(app, &spec.path(), Some(cookie), json!({})).await;
            refused(
                (s, &v),
                StatusCode::FORBIDDEN,
                "PermissionError",
                &format!("{} with B's cookie", spec.name),
            );
            assert!(
                v["exception"].as_str().unwrap().contains("suspended"),
                "{v}"
            );
        }
        for tok in &b_tokens {
            let (s, v) = raw_post(app, &spec.path(), None, None, Some(tok), json!({})).await;
            refused(
                (s, &v),
                StatusCode::FORBIDDEN,
                "PermissionError",
                &format!("{} with B's token", spec.name),
            );
        }
    }
    // A is unaffected throughout.
    assert_eq!(whose(app, &w.al).await.as_deref(), Some("alpha"));
    assert_eq!(whose(app, &w.am).await.as_deref(), Some("alpha"));
    let (s, v) = whose_token(app, &a_token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fresh = session(app, A_LEARNER).await;
    assert_eq!(whose(app, &fresh).await.as_deref(), Some("alpha"));

    // B's login: the right password → 403 and no usable session; a wrong
    // one → the same 401 as an unknown account.
    let mut leftovers = Vec::new();
    for (user, key) in [
        (B_LEARNER, "usr"),
        (B_MANAGER, "username"),
        (B_LEARNER, "email"),
    ] {
        let (s, v, sid) = raw_login(app, json!({key: user, "pwd": PWD}), None).await;
        refused((s, &v), StatusCode::FORBIDDEN, "PermissionError", user);
        assert!(
            v["exception"].as_str().unwrap().contains("suspended"),
            "{v}"
        );
        assert_eq!(sid, None, "a refused login set a cookie");
        leftovers.extend(sid);
        let (s, wrong, sid) = raw_login(app, json!({key: user, "pwd": OTHER_PWD}), None).await;
        refused(
            (s, &wrong),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            user,
        );
        assert_eq!(sid, None);
        let (s, unknown, _) = raw_login(
            app,
            json!({key: "nobody@beta.test", "pwd": OTHER_PWD}),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown, "a suspension must not tell accounts apart");
    }

    // A's login carrying B's (suspended) cookie is A's, and works.
    let (s, v, h) = send(
        app,
        Request::post("/api/method/login")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &w.bl)
            .body(Body::from(
                json!({"usr": A_LEARNER, "pwd": PWD}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sid = h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(whose(app, &sid).await.as_deref(), Some("alpha"));

    // Resume: every old credential works again, logins work, A untouched.
    let r = ok(
        app,
        "resume_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    assert_eq!(r["status"], "active");
    assert_eq!(whose(app, &w.bl).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.bm).await.as_deref(), Some("beta"));
    for tok in &b_tokens {
        let (s, v) = whose_token(app, tok).await;
        assert_eq!(
            (s, v["message"]["institution"].as_str()),
            (StatusCode::OK, Some("beta")),
            "{v}"
        );
    }
    for sid in leftovers {
        assert_eq!(
            whose(app, &sid).await,
            None,
            "a refused login's session lives"
        );
    }
    let again = session(app, B_LEARNER).await;
    assert_eq!(whose(app, &again).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.al).await.as_deref(), Some("alpha"));
    assert_eq!(
        institutions(app, &w.op).await,
        listing(&[
            ("alpha", "active"),
            ("beta", "active"),
            ("default", "active")
        ])
    );
}

#[tokio::test]
async fn suspending_and_resuming_twice_is_idempotent_and_other_institutions_stay_up() {
    let w = world().await;
    let app = &w.t.app;
    for _ in 0..2 {
        let v = ok(
            app,
            "suspend_institution",
            &w.op,
            json!({"institution": " alpha "}),
        )
        .await;
        assert_eq!(v["status"], "suspended");
    }
    assert_eq!(whose(app, &w.bl).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.hl).await.as_deref(), Some("default"));
    let (s, v) = call(app, &m("get_my_institution"), Some(&w.am), json!({})).await;
    refused(
        (s, &v),
        StatusCode::FORBIDDEN,
        "PermissionError",
        "A while suspended",
    );
    // A suspended institution's manager cannot resume it.
    let (s, v) = call(
        app,
        &m("resume_institution"),
        Some(&w.am),
        json!({"institution": "alpha"}),
    )
    .await;
    refused(
        (s, &v),
        StatusCode::FORBIDDEN,
        "PermissionError",
        "A resumes A",
    );
    // B's manager cannot either.
    let (s, v) = call(
        app,
        &m("resume_institution"),
        Some(&w.bm),
        json!({"institution": "alpha"}),
    )
    .await;
    refused(
        (s, &v),
        StatusCode::FORBIDDEN,
        "PermissionError",
        "B resumes A",
    );
    for _ in 0..2 {
        let v = ok(
            app,
            "resume_institution",
            &w.op,
            json!({"institution": "alpha"}),
        )
        .await;
        assert_eq!(v["status"], "active");
    }
    assert_eq!(whose(app, &w.am).await.as_deref(), Some("alpha"));
}

#[tokio::test]
async fn logout_during_a_suspension_ends_only_that_session() {
    let w = world().await;
    let app = &w.t.app;
    let other_bl = session(app, B_LEARNER).await;
    ok(
        app,
        "suspend_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    // A logout is allowed during a suspension (it only ends the session).
    let (s, v, h) = send(
        app,
        Request::post("/api/method/logout")
            .header(header::COOKIE, &w.bl)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        h.get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("sid=Guest"),
        "{h:?}"
    );
    ok(
        app,
        "resume_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    assert_eq!(
        whose(app, &w.bl).await,
        None,
        "the logged-out session ended"
    );
    assert_eq!(whose(app, &other_bl).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.bm).await.as_deref(), Some("beta"));
}

// ───────────────────────────── 6. login routing ─────────────────────────────

#[tokio::test]
async fn login_aliases_reach_the_accounts_institution_and_variants_reach_no_other() {
    let w = world().await;
    let app = &w.t.app;
    for (user, inst) in [
        (A_LEARNER, "alpha"),
        (A_MANAGER, "alpha"),
        (B_LEARNER, "beta"),
        (OPERATOR, "default"),
        (HOME_LEARNER, "default"),
    ] {
        for (uk, pk) in [
            ("usr", "pwd"),
            ("username", "pwd"),
            ("email", "pwd"),
            ("usr", "password"),
            ("email", "password"),
        ] {
            let (s, v, sid) = raw_login(app, json!({uk: user, pk: PWD}), None).await;
            assert_eq!(s, StatusCode::OK, "{uk}/{pk} {user}: {v}");
            assert_eq!(v["user"], user);
            let sid = sid.unwrap();
            assert_eq!(whose(app, &sid).await.as_deref(), Some(inst), "{uk} {user}");
        }
        // A form-encoded login too.
        let (s, v, h) = send(
            app,
            Request::post("/api/method/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "email={}&pwd={PWD}",
                    user.replace('@', "%40")
                )))
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "form {user}: {v}");
        let sid = h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(whose(app, &sid).await.as_deref(), Some(inst), "form {user}");
        // Surrounding whitespace is the same account (ids are trimmed).
        for padded in [format!(" {user} "), format!("\t{user}\n")] {
            let (s, v, sid) = raw_login(app, json!({"usr": padded, "pwd": PWD}), None).await;
            assert_eq!(s, StatusCode::OK, "{padded:?}: {v}");
            assert_eq!(whose(app, &sid.unwrap()).await.as_deref(), Some(inst));
        }
        // Case and look-alike variants are no account: 401, no cookie.
        for variant in [
            user.to_uppercase(),
            format!("{}{}", &user[..1].to_uppercase(), &user[1..]),
            format!("{user}\u{200b}"),
            format!("{user}."),
            user.replace('@', "＠"),
        ] {
            let (s, v, sid) = raw_login(app, json!({"usr": variant, "pwd": PWD}), None).await;
            refused(
                (s, &v),
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                &variant,
            );
            assert_eq!(sid, None, "{variant}");
        }
        // Control characters and braces: refused, never a 500.
        for odd in [
            format!("{user}\u{0}"),
            format!("{{{user}}}"),
            format!("a\nb{user}"),
        ] {
            let (s, v, sid) = raw_login(app, json!({"usr": odd, "pwd": PWD}), None).await;
            assert!(
                s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST,
                "{odd:?}: {s} {v}"
            );
            assert!(v["exc_type"].is_string(), "{v}");
            assert_eq!(sid, None);
        }
    }
    // Two aliases naming accounts of different institutions: refused or A's,
    // never B's.
    for body in [
        json!({"usr": A_LEARNER, "username": B_LEARNER, "pwd": PWD}),
        json!({"username": B_LEARNER, "usr": A_LEARNER, "pwd": PWD}),
        json!({"usr": A_LEARNER, "email": B_LEARNER, "pwd": PWD}),
        json!({"email": B_LEARNER, "username": A_LEARNER, "pwd": PWD}),
    ] {
        let (s, v, sid) = raw_login(app, body.clone(), None).await;
        refused(
            (s, &v),
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &body.to_string(),
        );
        assert_eq!(sid, None);
    }
    // Odd types for the account name: 400, never a 500.
    for usr in [
        json!(5),
        json!(null),
        json!([B_LEARNER]),
        json!({"usr": B_LEARNER}),
        json!(true),
    ] {
        let (s, v, sid) = raw_login(app, json!({"usr": usr, "pwd": PWD}), None).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNAUTHORIZED,
            "{usr}: {s} {v}"
        );
        assert!(v["exc_type"].is_string(), "{v}");
        assert_eq!(sid, None);
    }
    // An `institution` argument does not steer the login.
    let (s, v, sid) = raw_login(
        app,
        json!({"usr": A_LEARNER, "pwd": PWD, "institution": "beta"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(whose(app, &sid.unwrap()).await.as_deref(), Some("alpha"));
    let (s, v, sid) = raw_login(
        app,
        json!({"usr": "nobody@alpha.test", "pwd": PWD, "institution": "alpha"}),
        None,
    )
    .await;
    refused(
        (s, &v),
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "unknown",
    );
    assert_eq!(sid, None);
}

#[tokio::test]
async fn a_wrong_password_looks_the_same_in_every_institution() {
    let w = world().await;
    let app = &w.t.app;
    let mut bodies = Vec::new();
    for user in [A_LEARNER, B_LEARNER, OPERATOR, "nobody@beta.test", "nobody"] {
        let (s, v, sid) = raw_login(app, json!({"usr": user, "pwd": OTHER_PWD}), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{user}: {v}");
        assert_eq!(sid, None);
        bodies.push(v);
    }
    assert!(bodies.windows(2).all(|p| p[0] == p[1]), "{bodies:?}");
}

// ───────────────────────────────── 7. CSRF ─────────────────────────────────

#[tokio::test]
async fn a_cookie_session_needs_its_own_csrf_token_in_every_institution() {
    let w = world().await;
    let app = &w.t.app;
    let b_raw = w.bl.trim_start_matches("sid=");
    let wrong = [
        None,
        Some(String::new()),
        Some(csrf_of(&w.al)),
        Some(csrf_of(&w.am)),
        Some(csrf_of(&w.op)),
        Some(csrf_of(&w.bm)),
        // The token of B's id re-prefixed or unprefixed.
        Some(memora_http::csrf_token(&format!(
            "alpha~{}",
            b_raw.trim_start_matches("beta~")
        ))),
        Some(memora_http::csrf_token(b_raw.trim_start_matches("beta~"))),
        Some(csrf_of(&w.bl).to_uppercase()),
    ];
    let writes = [
        ("set_time_zone", &w.bl, json!({"time_zone": "Europe/Paris"})),
        (
            "register_device",
            &w.bl,
            json!({"device_id": "evil", "device_type": "mobile"}),
        ),
        (
            "create_user",
            &w.bm,
            json!({"email": "evil@beta.test", "full_name": "Evil", "password": OTHER_PWD}),
        ),
        (
            "create_institution",
            &w.op,
            json!({"institution": "evil", "name": "Evil", "manager": "evil@evil.test",
                   "manager_full_name": "Evil", "manager_password": OTHER_PWD}),
        ),
        ("suspend_institution", &w.op, json!({"institution": "beta"})),
    ];
    for (method, cookie, body) in &writes {
        for csrf in &wrong {
            if csrf.as_deref() == Some(csrf_of(cookie).as_str()) {
                continue;
            }
            let (s, v) = raw_post(
                app,
                &m(method),
                Some(cookie),
                csrf.as_deref(),
                None,
                body.clone(),
            )
            .await;
            refused(
                (s, &v),
                StatusCode::BAD_REQUEST,
                "CSRFTokenError",
                &format!("{method} with csrf {csrf:?}"),
            );
        }
    }
    // Nothing happened.
    assert_eq!(
        institutions(app, &w.op).await,
        listing(&[
            ("alpha", "active"),
            ("beta", "active"),
            ("default", "active")
        ])
    );
    let devices = ok(app, "get_my_devices", &w.bl, json!({})).await;
    assert_eq!(devices, json!([]));
    let (s, v, _) = raw_login(
        app,
        json!({"usr": "evil@beta.test", "pwd": OTHER_PWD}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // With its own token, B's write works.
    let (s, v) = call(
        app,
        &m("set_time_zone"),
        Some(&w.bl),
        json!({"time_zone": "Europe/Paris"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

// ───────────────────────────── 8. and the rest ─────────────────────────────

#[tokio::test]
async fn get_my_institution_answers_each_caller_with_its_own_institution_only() {
    let w = world().await;
    let app = &w.t.app;
    let mine = |v: &Value| v["message"].clone();
    let (s, v) = call(app, &m("get_my_institution"), Some(&w.op), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine(&v)["institution"], "default");
    assert_eq!(mine(&v)["status"], "active");
    let (s, v) = call(app, &m("get_my_institution"), Some(&w.al), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine(&v)["institution"], "alpha");
    assert_eq!(mine(&v)["name"], "Alpha School");
    assert!(mine(&v)["created_at"].is_string(), "{v}");
    assert!(!v.to_string().contains(MARKER), "{v}");
    let (s, v) = call(app, &m("get_my_institution"), Some(&w.bl), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine(&v)["institution"], "beta");
    assert_eq!(mine(&v)["name"], "Beta School BETA-SECRET");
    let (k, sec) = token_of(app, &w.am, A_MANAGER).await;
    let (s, v) = whose_token(app, &format!("token {k}:{sec}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine(&v)["institution"], "alpha");
    assert!(!v.to_string().contains(MARKER), "{v}");
    let (s, v) = call(app, &m("get_my_institution"), None, json!({})).await;
    refused(
        (s, &v),
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "guest",
    );
    // Over GET (a read) it works the same way.
    let (s, v, _) = crate::endpoints::get(
        app,
        &format!("/api/method/{}?institution=beta", m("get_my_institution")),
        Some(&w.al),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine(&v)["institution"], "alpha");
}

#[tokio::test]
async fn the_institution_is_never_taken_from_arguments_or_headers() {
    let w = world().await;
    let app = &w.t.app;
    let header_sets: [(&str, &str); 6] = [
        ("x-institution", "beta"),
        ("x-frappe-site-name", "beta"),
        ("host", "beta.memora.test"),
        ("x-forwarded-host", "beta.memora.test"),
        ("x-memora-institution", "beta"),
        ("institution", "beta"),
    ];
    for (name, value) in header_sets {
        for (cookie, expected) in [(&w.al, Some("alpha")), (&w.hl, Some("default"))] {
            let req = Request::post(format!(
                "/api/method/{}?institution=beta",
                m("get_my_institution")
            ))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, cookie.as_str())
            .header(name, value)
            .body(Body::from(
                json!({"institution": "beta", "site": "beta"}).to_string(),
            ))
            .unwrap();
            let (s, v, _) = send(app, req).await;
            assert_eq!(s, StatusCode::OK, "{name}: {v}");
            assert_eq!(
                v["message"]["institution"].as_str(),
                expected,
                "{name}: {v}"
            );
            assert!(!v.to_string().contains(MARKER), "{v}");
        }
        // A guest stays a guest.
        let req = Request::post(format!("/api/method/{}", m("get_my_institution")))
            .header(header::CONTENT_TYPE, "application/json")
            .header(name, value)
            .body(Body::from(json!({"institution": "beta"}).to_string()))
            .unwrap();
        let (s, v, _) = send(app, req).await;
        refused(
            (s, &v),
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            name,
        );
    }
    // A's manager reading "beta" things by argument: A's own answers.
    let v = ok(
        app,
        "list_store_items",
        &w.am,
        json!({"institution": "beta"}),
    )
    .await;
    assert!(!v.to_string().contains(MARKER), "{v}");
    let (s, v) = call(
        app,
        &m("create_api_key"),
        Some(&w.am),
        json!({"user": B_LEARNER, "institution": "beta"}),
    )
    .await;
    refused(
        (s, &v),
        StatusCode::NOT_FOUND,
        "DoesNotExistError",
        "A's key for B's learner",
    );
}

#[tokio::test]
async fn forged_logout_cookies_end_no_session() {
    let w = world().await;
    let app = &w.t.app;
    let raw_a = w.al.trim_start_matches("sid=alpha~");
    let raw_b = w.bl.trim_start_matches("sid=beta~");
    let logout = |cookie: String| {
        let app = app.clone();
        async move {
            let (s, v, h) = send(
                &app,
                Request::post("/api/method/logout")
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            (s, v, h)
        }
    };
    for forged in [
        format!("sid=beta~{raw_a}"),
        format!("sid=alpha~{raw_b}"),
        format!("sid=default~{raw_a}"),
        format!("sid={raw_a}"),
        format!("sid={raw_b}"),
        format!("sid=zzz~{raw_b}"),
        format!("sid=Beta~{raw_b}"),
        format!("sid=~{raw_b}"),
        format!("sid=a~{raw_b}"),
        "sid=beta~".into(),
        format!("sid={}~x", "z".repeat(10_000)),
    ] {
        let (s, v, h) = logout(forged.clone()).await;
        assert_eq!(s, StatusCode::OK, "{forged:.60}: {v}");
        assert!(
            h.get(header::SET_COOKIE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sid=Guest"),
            "{h:?}"
        );
    }
    for (cookie, inst) in [
        (&w.al, "alpha"),
        (&w.bl, "beta"),
        (&w.am, "alpha"),
        (&w.op, "default"),
    ] {
        assert_eq!(whose(app, cookie).await.as_deref(), Some(inst), "{cookie}");
    }
    // A real logout ends that session only.
    let (s, _, _) = logout(w.bl.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(whose(app, &w.bl).await, None);
    assert_eq!(whose(app, &w.bm).await.as_deref(), Some("beta"));
    assert_eq!(whose(app, &w.al).await.as_deref(), Some("alpha"));
}

#[tokio::test]
async fn odd_institution_arguments_are_4xx_never_500() {
    let w = world().await;
    let app = &w.t.app;
    let before = institutions(app, &w.op).await;
    let odd = [
        json!("x".repeat(100_000)),
        json!("β".repeat(20)),
        json!("beta\u{0}"),
        json!("beta\u{7}"),
        json!("beta~"),
        json!("../beta"),
        json!("beta'; DROP SCHEMA beta; --"),
        json!("beta*"),
        json!("%62eta"),
        json!("default~beta"),
        json!(12),
        json!(-1),
        json!(1e300),
        json!(true),
        json!(null),
        json!([]),
        json!(["beta"]),
        json!({"institution": "beta"}),
    ];
    for value in &odd {
        for method in ["suspend_institution", "resume_institution"] {
            let (s, v) = call(app, &m(method), Some(&w.op), json!({"institution": value})).await;
            assert!(
                s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
                "{method} {:.60}: {s} {v}",
                value.to_string()
            );
            assert!(v["exc_type"].is_string(), "{v}");
        }
        let (s, v) = call(
            app,
            &m("create_institution"),
            Some(&w.op),
            json!({"institution": value, "name": value, "manager": value,
                   "manager_full_name": value, "manager_password": value}),
        )
        .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::CONFLICT,
            "create {:.60}: {s} {v}",
            value.to_string()
        );
        assert!(v["exc_type"].is_string(), "{v}");
    }
    // A missing argument, an empty body, a non-object body.
    for body in [
        json!({}),
        json!({"institution": ""}),
        json!({"name": "beta"}),
    ] {
        let (s, v) = call(app, &m("suspend_institution"), Some(&w.op), body.clone()).await;
        refused(
            (s, &v),
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &body.to_string(),
        );
    }
    let (s, v) = call(app, &m("suspend_institution"), Some(&w.op), json!(["beta"])).await;
    refused(
        (s, &v),
        StatusCode::BAD_REQUEST,
        "ValidationError",
        "array body",
    );
    assert_eq!(institutions(app, &w.op).await, before);
    assert_eq!(whose(app, &w.bl).await.as_deref(), Some("beta"));
}

#[tokio::test]
async fn a_new_institution_is_empty_and_its_manager_sees_nothing_of_the_others() {
    let w = world().await;
    let app = &w.t.app;
    ok(
        app,
        "create_institution",
        &w.op,
        json!({"institution": "gamma", "name": "Gamma", "manager": "boss@gamma.test",
               "manager_full_name": "Gamma Boss", "manager_password": PWD}),
    )
    .await;
    let gm = session(app, "boss@gamma.test").await;
    // Reads of a manager: nothing of alpha, beta or home.
    for method in [
        "list_store_items",
        "list_seasons",
        "list_subscriptions",
        "list_purchase_requests",
        "get_audit_log",
        "get_job_runs",
        "get_subjects",
    ] {
        let (s, v) = call(app, &m(method), Some(&gm), json!({})).await;
        assert!(!s.is_server_error(), "{method}: {s} {v}");
        let text = v.to_string();
        for foreign in [
            MARKER,
            A_MANAGER,
            A_LEARNER,
            B_MANAGER,
            B_LEARNER,
            OPERATOR,
            HOME_LEARNER,
        ] {
            assert!(!text.contains(foreign), "{method} shows {foreign}: {text}");
        }
    }
    // The operator's audit of the creation stays home: gamma's own log
    // does not name the operator.
    let log = ok(app, "get_audit_log", &gm, json!({})).await;
    assert!(!log.to_string().contains(OPERATOR), "{log}");
    // Gamma's users are gamma's: a learner it creates logs in to gamma.
    create_user(app, &gm, "kid@gamma.test", "Gamma Kid").await;
    let gl = session(app, "kid@gamma.test").await;
    assert_eq!(whose(app, &gl).await.as_deref(), Some("gamma"));
    let id = InstitutionId::new("gamma").unwrap();
    assert!(w.t.platform.tenant(&id).is_ok());
}
