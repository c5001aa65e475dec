//! Institutions over HTTP: the operator's methods, the per-institution
//! device policy, and what every user sees of their institution.

use axum::http::StatusCode;
use memora_core::domain::InstitutionId;
use serde_json::json;

use crate::endpoints::call;
use crate::hostile_devices::login_as;
use crate::isolation::memory_stack;

const PWD: &str = "Institution-Tests-Pass-1";
const OPERATOR: &str = "operator@platform.test";

async fn session(app: &axum::Router, usr: &str, pwd: &str) -> String {
    login_as(app, usr, pwd, json!({})).await.unwrap()
}

/// Creates institution `id` with manager `manager@<id>.test` and student
/// `student@<id>.test`; returns their sessions.
async fn institution(t: &crate::isolation::Stack, operator: &str, id: &str) -> (String, String) {
    let manager = format!("manager@{id}.test");
    let student = format!("student@{id}.test");
    let (s, v) = call(
        &t.app,
        "memora.api.platform.create_institution",
        Some(operator),
        json!({"institution": id, "name": format!("School {id}"), "manager": manager,
               "manager_full_name": "Manager", "manager_password": PWD}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["institution"], id);
    assert_eq!(v["message"]["status"], "active");
    let m = session(&t.app, &manager, PWD).await;
    assert!(m.starts_with(&format!("sid={id}~")), "{m}");
    let (s, v) = call(
        &t.app,
        "memora.api.admin.create_user",
        Some(&m),
        json!({"email": student, "full_name": "Student", "password": PWD}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (m, session(&t.app, &student, PWD).await)
}

async fn register(app: &axum::Router, who: &str, device: &str) -> (StatusCode, serde_json::Value) {
    call(
        app,
        "memora.api.auth.register_device",
        Some(who),
        json!({"device_id": device, "device_type": "mobile"}),
    )
    .await
}

#[tokio::test]
async fn each_institution_has_its_own_device_policy() {
    let t = memory_stack().await;
    let op = session(&t.app, OPERATOR, crate::isolation::PWD).await;
    let (am, al) = institution(&t, &op, "alpha").await;
    let (bm, bl) = institution(&t, &op, "beta").await;

    let (s, v) = call(
        &t.app,
        "memora.api.admin.get_device_policy",
        Some(&am),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"max_devices": 5, "on_limit": "sign-out-oldest", "source": "server"})
    );

    // A's manager: one device, refuse the next.
    let (s, v) = call(
        &t.app,
        "memora.api.admin.set_device_policy",
        Some(&am),
        json!({"max_devices": 1, "on_limit": "refuse"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"],
        json!({"max_devices": 1, "on_limit": "refuse", "source": "institution"})
    );
    assert_eq!(register(&t.app, &al, "a-1").await.0, StatusCode::OK);
    let (s, v) = register(&t.app, &al, "a-2").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["exception"].as_str().unwrap().contains("at most 1"),
        "{v}"
    );

    // B keeps the server default.
    for d in ["b-1", "b-2", "b-3"] {
        assert_eq!(register(&t.app, &bl, d).await.0, StatusCode::OK, "{d}");
    }
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_device_policy",
        Some(&bm),
        json!({}),
    )
    .await;
    assert_eq!(v["message"]["source"], "server");

    // The policy is in the directory, so every process applies it.
    let alpha = t
        .platform
        .directory()
        .list_institutions()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.id == InstitutionId::new("alpha").unwrap())
        .unwrap();
    assert_eq!(alpha.device_policy.map(|p| p.max_devices), Some(1));

    // Learners cannot set it; bad values are 400s that change nothing.
    let (s, _) = call(
        &t.app,
        "memora.api.admin.set_device_policy",
        Some(&al),
        json!({"max_devices": 9}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [
        json!({"max_devices": 0}),
        json!({"max_devices": 1001}),
        json!({"max_devices": 2, "on_limit": "evict"}),
        json!({"on_limit": "refuse"}),
        json!({"reset": true, "max_devices": 2}),
    ] {
        let (s, v) = call(
            &t.app,
            "memora.api.admin.set_device_policy",
            Some(&am),
            bad.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_device_policy",
        Some(&am),
        json!({}),
    )
    .await;
    assert_eq!(v["message"]["max_devices"], 1);

    // Reset: back to the server default.
    let (s, v) = call(
        &t.app,
        "memora.api.admin.set_device_policy",
        Some(&am),
        json!({"reset": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["source"], "server");
    assert_eq!(register(&t.app, &al, "a-2").await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_user_sees_their_institution_and_the_operator_sees_all() {
    let t = memory_stack().await;
    let op = session(&t.app, OPERATOR, crate::isolation::PWD).await;
    let (am, al) = institution(&t, &op, "alpha").await;
    for (who, expect) in [(&am, "alpha"), (&al, "alpha"), (&op, "default")] {
        let (s, v) = call(
            &t.app,
            "memora.api.platform.get_my_institution",
            Some(who),
            json!({}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["message"]["institution"], expect);
    }
    let (s, v) = call(
        &t.app,
        "memora.api.platform.get_institutions",
        Some(&op),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["institution"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "default"]);
    // The operator's actions are audited in the home institution.
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&op),
        json!({"action": "institution."}),
    )
    .await;
    assert_eq!(
        v["message"]["events"][0]["action"], "institution.create",
        "{v}"
    );
}

#[tokio::test]
async fn every_institution_spends_the_one_platform_safe_mode_budget() {
    use memora_core::ids::UserId;
    use memora_core::memory::InMemoryBackend;
    use memora_core::ports::Coordination;
    use memora_core::safe_mode::{Admission, SafeModeLimits};
    use memora_http::tenancy::PlatformBudget;
    use std::sync::Arc;

    let home = InMemoryBackend::new().ports().coordination;
    let alpha = PlatformBudget {
        own: InMemoryBackend::new().ports().coordination,
        budget: Arc::clone(&home),
    };
    let beta = PlatformBudget {
        own: InMemoryBackend::new().ports().coordination,
        budget: Arc::clone(&home),
    };
    let limits = SafeModeLimits {
        global_per_window: 2,
        ..SafeModeLimits::default()
    };
    let now = chrono::Utc::now();
    let u = |s: &str| UserId::new(s).unwrap();
    assert_eq!(
        alpha
            .admit_safe_mode(&u("a1@alpha.test"), now, &limits)
            .await
            .unwrap(),
        Admission::Allowed
    );
    assert_eq!(
        beta.admit_safe_mode(&u("b1@beta.test"), now, &limits)
            .await
            .unwrap(),
        Admission::Allowed
    );
    // The budget of 2 is spent across both institutions.
    assert!(matches!(
        alpha
            .admit_safe_mode(&u("a2@alpha.test"), now, &limits)
            .await
            .unwrap(),
        Admission::Denied { .. }
    ));
    assert!(matches!(
        beta.admit_safe_mode(&u("b2@beta.test"), now, &limits)
            .await
            .unwrap(),
        Admission::Denied { .. }
    ));
}

#[tokio::test]
async fn an_institution_adopts_the_shared_library_and_customises_its_copy() {
    let t = memory_stack().await;
    memora_core::demo::seed_demo(t.platform.home(), crate::isolation::PWD)
        .await
        .unwrap();
    let op = session(&t.app, OPERATOR, crate::isolation::PWD).await;
    let (am, al) = institution(&t, &op, "alpha").await;
    let adopt = |who: String, args: serde_json::Value| {
        let app = t.app.clone();
        async move {
            call(
                &app,
                "memora.api.admin.adopt_shared_content",
                Some(&who),
                args,
            )
            .await
        }
    };

    // A preview writes nothing.
    let (s, v) = adopt(
        am.clone(),
        json!({"subjects": ["science"], "dry_run": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["applied"], false);
    assert_eq!(v["message"]["added"]["subjects"], json!(["science"]), "{v}");
    assert!(v["message"]["added_count"].as_u64().unwrap() > 5, "{v}");
    let (_, ver) = call(
        &t.app,
        "memora.api.admin.get_catalog_version",
        Some(&am),
        json!({}),
    )
    .await;
    assert_eq!(ver["message"]["version"], 0, "{ver}");

    // Adopt science only: alpha's catalog gets it, not history.
    let (s, v) = adopt(am.clone(), json!({"subjects": "science"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["applied"], true);
    assert_eq!(v["message"]["subjects"], 1, "{v}");
    let lessons = v["message"]["added"]["lessons"].as_array().unwrap().clone();
    assert!(
        lessons
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("sci-")),
        "{lessons:?}"
    );

    // Customise the copy: hide a lesson. The library is untouched.
    let hidden = lessons[0].as_str().unwrap().to_owned();
    let (s, v) = call(
        &t.app,
        "memora.api.admin.import_content",
        Some(&am),
        json!({"bundle": {"unpublish": {"lessons": [hidden]}}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let home_catalog = t
        .platform
        .home()
        .ports()
        .content
        .load_catalog()
        .await
        .unwrap();
    assert!(
        home_catalog
            .lessons
            .iter()
            .any(|l| l.id.as_str() == hidden && l.is_published),
        "the shared library keeps its lesson"
    );
    // Adopting again would publish it again (the preview says so).
    let (_, v) = adopt(
        am.clone(),
        json!({"subjects": ["science"], "dry_run": true}),
    )
    .await;
    assert!(
        v["message"]["changed"]["lessons"]
            .as_array()
            .unwrap()
            .contains(&json!(hidden)),
        "{v}"
    );

    // Refusals: unknown subject (404), a learner (403), the home
    // institution itself (409), nothing changes.
    let (s, v) = adopt(am.clone(), json!({"subjects": ["astronomy"]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["exception"].as_str().unwrap().contains("astronomy"),
        "{v}"
    );
    let (s, _) = adopt(al.clone(), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let home_admin = session(&t.app, memora_core::demo::DEMO_ADMIN, crate::isolation::PWD).await;
    let (s, v) = adopt(home_admin, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["exc_type"], "InvalidStateError");
}

#[tokio::test]
async fn a_login_to_an_institution_this_process_has_not_opened_is_a_503_to_retry() {
    use memora_core::domain::{Institution, InstitutionStatus};
    use memora_core::ids::UserId;
    let t = memory_stack().await;
    // Another process created `later` a moment ago: it is in the directory,
    // this process has not opened it yet.
    let later = InstitutionId::new("later").unwrap();
    let dir = t.platform.directory();
    dir.create_institution(&Institution {
        id: later.clone(),
        name: "Later".into(),
        status: InstitutionStatus::Active,
        created_at: chrono::Utc::now(),
        device_policy: None,
    })
    .await
    .unwrap();
    dir.claim_account(&UserId::new("head@later.test").unwrap(), &later)
        .await
        .unwrap();
    let (s, v) = call(
        &t.app,
        "login",
        None,
        json!({"usr": "head@later.test", "pwd": PWD}),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["exception"].as_str().unwrap().contains("retry"), "{v}");
}

#[tokio::test]
async fn a_pool_whose_connections_miss_their_schema_is_refused() {
    let Some(url) = memora_tests::pg_url_or_skip().await else {
        return;
    };
    // No search_path option: the connection's schema is the default one,
    // so a pool expecting an institution's schema must not open.
    let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let r = memora_store_postgres::PgStore::connect_in_schema(opts, 1, "nowhere__north").await;
    let e = r.expect_err("a pool on the wrong schema");
    assert!(e.to_string().contains("search_path"), "{e}");
}

#[tokio::test]
async fn metrics_and_readiness_describe_every_institution() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let t = memory_stack().await;
    let op = session(&t.app, OPERATOR, crate::isolation::PWD).await;
    institution(&t, &op, "alpha").await;
    // alpha's cache fails: alpha (only) is in safe mode.
    t.platform
        .tenant(&InstitutionId::new("alpha").unwrap())
        .unwrap()
        .cache_health()
        .mark_failed(chrono::Utc::now());
    let app = memora_http::router(std::sync::Arc::new(memora_http::AppState {
        memora: std::sync::Arc::clone(t.platform.home()),
        platform: Some(std::sync::Arc::clone(&t.platform)),
        metrics: Some(recorder.handle()),
        secure_cookies: false,
        metrics_token: None,
    }));
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let page = get("/metrics").await;
    for line in [
        "memora_institution_safe_mode{institution=\"alpha\"} 1",
        "memora_institution_safe_mode{institution=\"default\"} 0",
        "memora_institution_dead_letters{institution=\"alpha\"} 0",
        "memora_institution_queue_depth{institution=\"default\"} 0",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }
    let ready: serde_json::Value = serde_json::from_str(&get("/readyz").await).unwrap();
    assert_eq!(
        ready["institutions_in_safe_mode"],
        json!(["alpha"]),
        "{ready}"
    );
    assert_eq!(
        ready["safe_mode"], false,
        "the home institution serves normally"
    );
}
