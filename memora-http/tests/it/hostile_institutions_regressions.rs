//! Regression tests of the bugs the hostile institution suite found (each
//! failed before its fix; the doc comment of each test says the input,
//! the expected and the old behaviour): a refused manager left a
//! half-created institution, percent-encoding hid a password key in the
//! URL, a forged prefix revealed a suspension, a login refused by a
//! suspension still registered a device, the per-address login throttle
//! was counted per institution, a huge institution id was echoed back, and
//! two concurrent creations naming one manager both kept their institution.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::endpoints::call;
use crate::hostile_devices::{login_as, raw_post};
use crate::hostile_institutions::{
    A_LEARNER, A_MANAGER, B_LEARNER, B_MANAGER, OTHER_PWD, csrf_of, institutions, m, ok, raw_login,
    send, whose, world,
};
use crate::isolation::{OPERATOR, PWD};

fn good_gamma() -> Value {
    json!({"institution": "gamma", "name": "Gamma School", "manager": "boss@gamma.test",
           "manager_full_name": "Gamma Boss", "manager_password": PWD})
}

/// BUG 1: `create_institution` leaves a half-created institution behind when
/// the manager account is refused by `AuthService::create_user`.
///
/// `Platform::create_institution` (memora-core/src/services/platform.rs)
/// pre-checks the password, that `manager_full_name` is not blank and that
/// the account name is free, then writes the institution to the directory
/// and opens it, and only then calls `create_user`, which also refuses a
/// full name over 140 characters or with a control character
/// (`text::check_text`) and the reserved system id `<system>`. Those
/// refusals come after the institution was written and are not undone.
///
/// Input: the operator's `create_institution` with a good id and password
/// and `manager_full_name` = 141 × "M" (or "Gamma\u{7}Boss", or manager
/// `<system>`).
/// Expected: 400 and nothing created (no `gamma` in `get_institutions`, and
/// the same request with a good manager then succeeds).
/// Actual: 400 `ValidationError` ("full_name is too long…"), but `gamma` is
/// listed as active, has no manager at all (nobody can ever log in to it),
/// and the corrected retry gets 409 "institution gamma exists": the id is
/// burnt (there is no delete).
#[tokio::test]
async fn a_refused_manager_leaves_no_institution_behind() {
    let w = world().await;
    let app = &w.t.app;
    let before = institutions(app, &w.op).await;
    for (what, key, bad) in [
        (
            "a 141-character manager name",
            "manager_full_name",
            json!("M".repeat(141)),
        ),
        (
            "a control character in the manager name",
            "manager_full_name",
            json!("Gamma\u{7}Boss"),
        ),
        ("the reserved system id", "manager", json!("<system>")),
    ] {
        let mut args = good_gamma();
        args[key] = bad;
        let (s, v) = call(app, &m("create_institution"), Some(&w.op), args).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert_eq!(v["exc_type"], "ValidationError", "{what}: {v}");
        assert_eq!(
            institutions(app, &w.op).await,
            before,
            "{what}: refused with 400, yet the institution was created"
        );
    }
    let (s, v) = call(app, &m("create_institution"), Some(&w.op), good_gamma()).await;
    assert_eq!(s, StatusCode::OK, "the corrected retry: {v}");
}

/// BUG 2: the "password in the URL" guard of `create_institution` (and of
/// `login`) only looks at the raw query keys, while the arguments are read
/// from the percent-decoded query.
///
/// `memora-http/src/api/methods/platform.rs` (`CreateInstitution`) and
/// `memora-http/src/api/methods/session.rs` (`Login`) compare
/// `ctx.query.split('&')…split('=')` with `"manager_password"` /
/// `"pwd" | "password"` byte for byte, but `Args::parse`
/// (`memora-http/src/args.rs`) decodes `%5F` to `_` (any byte may be
/// percent-encoded), so `?manager%5Fpassword=…` reaches the handler as
/// `manager_password` and passes the guard.
///
/// Input: `POST /api/method/memora.api.platform.create_institution?manager%5Fpassword=<password>`
/// with a JSON body holding every other argument (operator cookie + CSRF);
/// likewise `POST /api/method/login?p%77d=<password>` with `{"usr": …}`.
/// Expected: 400 "send the password in the request body, never in the URL".
/// Actual: 200, the institution is created (login: the session opens), and
/// the manager's initial password sits in proxy and access logs.
#[tokio::test]
async fn a_percent_encoded_password_key_in_the_url_is_refused() {
    let w = world().await;
    let app = &w.t.app;
    let before = institutions(app, &w.op).await;
    let mut body = good_gamma();
    body.as_object_mut().unwrap().remove("manager_password");
    for key in [
        "manager%5Fpassword",
        "manager%5fpassword",
        "%6danager_password",
    ] {
        let req = Request::post(format!(
            "/api/method/{}?{key}={PWD}",
            m("create_institution")
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &w.op)
        .header(memora_http::CSRF_HEADER, csrf_of(&w.op))
        .body(Body::from(body.to_string()))
        .unwrap();
        let (s, v, _) = send(app, req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "?{key}=<password>: {v}");
        assert_eq!(institutions(app, &w.op).await, before, "?{key}");
    }
    for key in ["p%77d", "pass%77ord", "%70wd"] {
        let req = Request::post(format!("/api/method/login?{key}={PWD}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"usr": A_LEARNER}).to_string()))
            .unwrap();
        let (s, v, _) = send(app, req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "login ?{key}=<password>: {v}");
    }
}

/// BUG 3: a forged credential naming a *suspended* institution is answered
/// 403 "institution beta is suspended" instead of as an unknown credential,
/// so a stranger can list which institutions exist and are suspended.
///
/// `authenticate` (memora-http/src/lib.rs) calls `tenant(st, &inst)` with
/// the prefix of the credential *before* the credential is verified:
/// `Platform::tenant` answers `Forbidden` for a suspended institution, and
/// `authenticate` returns that error for a cookie (`Err(e) => return
/// Err(e.into())`) and for a token (`tenant(st, &inst)?`). An unknown or
/// active institution's forged credential is a guest / 401.
///
/// Input: while `beta` is suspended, a stranger sends `Cookie:
/// sid=beta~anything` (or `Authorization: token beta~x:y`) to
/// `get_my_institution` or to the guest method `get_plan_version`.
/// Expected: exactly what `sid=zzz~anything` gets (401
/// `AuthenticationError`; the guest method answers as for a guest), as the
/// login already does ("checking the password first keeps a suspension from
/// telling strangers which accounts exist").
/// Actual: 403 `PermissionError` "institution beta is suspended", even on
/// the guest method.
#[tokio::test]
async fn a_forged_credential_does_not_reveal_a_suspension() {
    let w = world().await;
    let app = &w.t.app;
    ok(
        app,
        "suspend_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    let guest_args = json!({"grade": "G12", "season": "SEASON-2031"});
    for method in ["get_my_institution", "get_plan_version"] {
        let args = if method == "get_plan_version" {
            guest_args.clone()
        } else {
            json!({})
        };
        let (unknown_s, unknown_v) = call(
            app,
            &m(method),
            Some("sid=zzz~forged-by-a-stranger"),
            args.clone(),
        )
        .await;
        let (s, v) = call(
            app,
            &m(method),
            Some("sid=beta~forged-by-a-stranger"),
            args.clone(),
        )
        .await;
        assert_eq!(
            (s, &v),
            (unknown_s, &unknown_v),
            "{method}: a forged beta~ cookie is told apart from an unknown institution's"
        );
        let (unknown_s, unknown_v) = raw_post(
            app,
            &m(method),
            None,
            None,
            Some("token zzz~x:y"),
            args.clone(),
        )
        .await;
        let (s, v) = raw_post(app, &m(method), None, None, Some("token beta~x:y"), args).await;
        assert_eq!(
            (s, &v),
            (unknown_s, &unknown_v),
            "{method}: a forged beta~ token is told apart from an unknown institution's"
        );
    }
}

/// BUG 4: a login refused because the institution is suspended still
/// registers the device it names, and under the device limit signs one of
/// the learner's real devices out.
///
/// `handle` (memora-http/src/lib.rs) runs the whole `login` method on the
/// suspended institution (so the password is checked first) and afterwards
/// only ends the session it opened (`SessionEffect::Start` → `logout`).
/// But `AuthService::login_on_device` (memora-core/src/services/auth.rs)
/// has already run `attach_device`: the device is upserted, bound, and with
/// `DeviceLimitAction::SignOutOldest` (the default, 5 devices) the least
/// recently active device is deleted and its sessions ended; an audit
/// record `device.register` is written too.
///
/// Input: B's learner has 5 devices (5 sessions); `beta` is suspended; a
/// login of B's learner with the right password and `device_id`
/// `ghost-phone` → 403; then `beta` is resumed.
/// Expected: a refused login changes nothing: the 5 devices and their
/// sessions are as before, `ghost-phone` is unknown.
/// Actual: `ghost-phone` is registered and the oldest real device was
/// removed and its session signed out.
#[tokio::test]
async fn a_login_refused_by_a_suspension_registers_no_device() {
    let w = world().await;
    let app = &w.t.app;
    let mut cookies = Vec::new();
    for i in 1..=5 {
        let c = login_as(
            app,
            B_LEARNER,
            PWD,
            json!({"device_id": format!("phone-{i}"), "device_type": "mobile"}),
        )
        .await
        .unwrap();
        cookies.push(c);
    }
    let devices = |v: Value| -> Vec<String> {
        let mut d: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap().to_owned())
            .collect();
        d.sort();
        d
    };
    let before = devices(ok(app, "get_my_devices", &cookies[4], json!({})).await);
    assert_eq!(before.len(), 5, "{before:?}");
    for c in &cookies {
        assert_eq!(whose(app, c).await.as_deref(), Some("beta"));
    }
    ok(
        app,
        "suspend_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    let (s, v, sid) = raw_login(
        app,
        json!({"usr": B_LEARNER, "pwd": PWD, "device_id": "ghost-phone", "device_type": "mobile"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(sid, None);
    ok(
        app,
        "resume_institution",
        &w.op,
        json!({"institution": "beta"}),
    )
    .await;
    for (i, c) in cookies.iter().enumerate() {
        assert_eq!(
            whose(app, c).await.as_deref(),
            Some("beta"),
            "the session on phone-{} was signed out by a refused login",
            i + 1
        );
    }
    let after = devices(ok(app, "get_my_devices", &cookies[4], json!({})).await);
    assert_eq!(after, before, "a refused login changed the devices");
}

/// BUG 5 (weakness): the per-client-address login throttle is kept per
/// institution, so one client gets `login_free_failures` (5) free failed
/// logins in *every* institution (and 5 more at the home institution, where
/// unknown names go) before any backoff.
///
/// `AuthService::login` (memora-core/src/services/auth.rs) counts
/// `login:ip:<client>` in the `attempts` port of the institution the login
/// was routed to (`session_tenant` in memora-http/src/lib.rs); each
/// institution has its own (its own Redis namespace / in-memory counter).
///
/// Input: from one client address, 5 failed logins at A's learner, then a
/// 6th at A's manager (throttled: 429, as designed), then one at B's
/// learner and one at the operator.
/// Expected: 429 for the same client wherever the account lives.
/// Actual: 401 (the password is checked) at B and at home.
#[tokio::test]
async fn the_client_address_throttle_spans_institutions() {
    let w = world().await;
    let app = &w.t.app;
    let ip = Some("203.0.113.7");
    for _ in 0..5 {
        let (s, v, _) = raw_login(app, json!({"usr": A_LEARNER, "pwd": OTHER_PWD}), ip).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    let (s, v, _) = raw_login(app, json!({"usr": A_MANAGER, "pwd": OTHER_PWD}), ip).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the client is throttled within alpha: {v}"
    );
    for user in [B_LEARNER, B_MANAGER, OPERATOR, "nobody@nowhere.test"] {
        let (s, v, _) = raw_login(app, json!({"usr": user, "pwd": OTHER_PWD}), ip).await;
        assert_eq!(
            s,
            StatusCode::TOO_MANY_REQUESTS,
            "the same client guessing at {user} (another institution) is not throttled: {v}"
        );
    }
}

/// BUG 6 (low, operator only): an invalid institution id is echoed back
/// whole, twice (`exception` and `_server_messages`), Debug-escaped.
///
/// `InstitutionId::new` (memora-core/src/domain/institution.rs) formats
/// the refused input with `{raw:?}`; other ids (`validate_id`) say only
/// "is longer than 140 characters". A 100 000-character id gives a
/// 200 000-byte error, and a control character (`\u{1}`, 1 byte) is echoed
/// as 6 bytes: an 8 MiB body of them answers with ~96 MiB.
///
/// Input: the operator's `suspend_institution` with `institution` =
/// 100 000 × "x" (or 10 000 × "\u{1}").
/// Expected: 400 with a short message.
/// Actual: 400 whose body is ~2× (or ~12×) the argument.
#[tokio::test]
async fn a_huge_institution_id_is_not_echoed_back() {
    let w = world().await;
    let app = &w.t.app;
    for (what, id) in [
        ("100 000 letters", "x".repeat(100_000)),
        ("10 000 control characters", "\u{1}".repeat(10_000)),
    ] {
        let (s, v) = call(
            app,
            &m("suspend_institution"),
            Some(&w.op),
            json!({"institution": id}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}");
        let n = v.to_string().len();
        assert!(n < 2_000, "{what}: a {n}-byte error");
    }
}

/// A password hasher as slow as a real one (the server's takes tens of
/// milliseconds), so concurrent requests interleave as in production.
struct SlowHasher;

#[async_trait::async_trait]
impl memora_core::ports::PasswordHasher for SlowHasher {
    async fn hash(&self, secret: &str) -> memora_core::error::PortResult<String> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        memora_core::memory::Sha256Hasher.hash(secret).await
    }
    async fn verify(&self, secret: &str, hash: &str) -> memora_core::error::PortResult<bool> {
        memora_core::memory::Sha256Hasher.verify(secret, hash).await
    }
}

fn slow_ports(backend: &memora_core::memory::InMemoryBackend) -> memora_core::ports::Ports {
    let mut ports = backend.ports();
    ports.clock = Arc::new(memora_core::memory::SystemClock);
    ports.ids = Arc::new(memora_http::security::RandomIds);
    ports.hasher = Arc::new(SlowHasher);
    ports
}

struct SlowTenants;

#[async_trait::async_trait]
impl memora_core::services::TenantFactory for SlowTenants {
    async fn open(
        &self,
        _inst: &memora_core::domain::Institution,
        scope: memora_core::services::TenantScope,
    ) -> memora_core::CoreResult<Arc<memora_core::Memora>> {
        let backend = memora_core::memory::InMemoryBackend::new();
        Ok(Arc::new(memora_core::Memora::in_institution(
            slow_ports(&backend),
            memora_core::services::Config::default(),
            scope,
        )))
    }
}

/// BUG 7: two concurrent `create_institution` calls naming the same new
/// manager (with different institution ids) both pass the "account name is
/// free" check; the loser's institution is written to the directory and
/// opened, its manager refused with 409, and the institution is left behind
/// without any manager (same root cause as bug 1: in
/// `Platform::create_institution`, memora-core/src/services/platform.rs,
/// the name is only checked with `account_institution`; it is claimed
/// later, inside `create_user`, after `directory.create_institution`, and
/// after the password was hashed, which takes tens of milliseconds with
/// the server's hasher).
///
/// Input: the operator sends, at the same time, `create_institution`
/// `gamma` and `delta`, both with manager `boss@race.test` (the platform
/// is the in-memory one, with a hasher that takes 50 ms like a real one).
/// Expected: one 200, one 409, only the winner listed.
/// Actual: one 200, one 409 "user boss@race.test exists", and BOTH
/// institutions listed; the loser has no manager and its id is burnt.
#[tokio::test]
async fn concurrent_creations_with_one_manager_leave_one_institution() {
    let directory = Arc::new(memora_core::memory::InMemoryDirectory::new());
    let home_backend = memora_core::memory::InMemoryBackend::new();
    let home = Arc::new(memora_core::Memora::in_institution(
        slow_ports(&home_backend),
        memora_core::services::Config::default(),
        memora_core::services::TenantScope {
            institution: memora_core::domain::InstitutionId::home(),
            directory: Some(directory.clone()),
        },
    ));
    let platform = Arc::new(memora_core::services::Platform::new(
        home,
        directory,
        Arc::new(SlowTenants),
    ));
    platform
        .home()
        .auth()
        .create_user(
            &memora_core::domain::Actor::system(),
            &memora_core::ids::UserId::new(OPERATOR).unwrap(),
            "Platform Operator",
            vec![memora_core::domain::Role::SystemManager],
            Some(PWD),
        )
        .await
        .unwrap();
    let app = memora_http::router(Arc::new(memora_http::AppState {
        memora: Arc::clone(platform.home()),
        platform: Some(Arc::clone(&platform)),
        metrics: None,
        secure_cookies: false,
        metrics_token: None,
    }));
    let op = login_as(&app, OPERATOR, PWD, json!({})).await.unwrap();
    let create = |id: &'static str| {
        let app = app.clone();
        let op = op.clone();
        async move {
            call(
                &app,
                &m("create_institution"),
                Some(&op),
                json!({"institution": id, "name": "Race", "manager": "boss@race.test",
                       "manager_full_name": "Race Boss", "manager_password": PWD}),
            )
            .await
        }
    };
    let ((s1, v1), (s2, v2)) = tokio::join!(create("gamma"), create("delta"));
    let mut statuses = [s1, s2];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{v1} / {v2}"
    );
    let winner = if s1 == StatusCode::OK {
        "gamma"
    } else {
        "delta"
    };
    let listed: Vec<String> = institutions(&app, &op)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        listed,
        vec![winner.to_owned(), "default".to_owned()]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "the refused creation left its institution behind ({v1} / {v2})"
    );
}
