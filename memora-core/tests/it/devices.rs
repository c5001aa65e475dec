//! Players' devices: registered at login or explicitly, listed, revoked
//! (which ends the sessions opened on them, in every process), limited per
//! player with either policy, and their `last_active` kept up to date
//! without a write per request.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::{DEMO_STUDENT, seed_demo};
use memora_core::domain::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::services::Config;
use memora_core::services::auth::{DeviceInput, DeviceLimitAction, DevicePolicy};
use memora_core::{CoreError, Memora};

const PASSWORD: &str = "demo-password";

struct T {
    a: Memora,
    b: Memora,
    clock: Arc<ManualClock>,
}

/// Two processes on one store, the demo seeded.
async fn setup(policy: DevicePolicy) -> T {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let config = Config {
        device_policy: policy,
        ..Config::default()
    };
    let process = || {
        let mut ports = backend.ports();
        ports.clock = clock.clone();
        Memora::new(ports, config.clone())
    };
    let (a, b) = (process(), process());
    seed_demo(&a, PASSWORD).await.unwrap();
    b.sync_invalidations().await.unwrap();
    T { a, b, clock }
}

fn phone(id: &str) -> DeviceInput {
    DeviceInput::new(id, "mobile", Some("My phone")).unwrap()
}

async fn login(m: &Memora, device: Option<&DeviceInput>) -> Result<String, CoreError> {
    m.auth()
        .login_on_device(DEMO_STUDENT, PASSWORD, None, device)
        .await
        .map(|o| o.sid)
}

async fn devices(m: &Memora, actor: &Actor) -> Vec<String> {
    m.auth()
        .my_devices(actor)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect()
}

#[tokio::test]
async fn a_device_registered_at_login_is_listed_and_revoking_it_ends_its_sessions_everywhere() {
    let t = setup(DevicePolicy::default()).await;
    let sid = login(&t.a, Some(&phone("phone-1"))).await.unwrap();
    let other = login(&t.a, None).await.unwrap();
    let me = t.a.auth().authenticate_session(&sid).await.unwrap();
    assert_eq!(devices(&t.a, &me).await, vec!["phone-1"]);
    assert_eq!(
        t.a.auth().session_device(&sid).await.unwrap().as_deref(),
        Some("phone-1")
    );
    // Process b has the session cached.
    t.b.auth().authenticate_session(&sid).await.unwrap();
    assert_eq!(t.a.auth().revoke_device(&me, "phone-1").await.unwrap(), 1);
    assert!(matches!(
        t.a.auth().authenticate_session(&sid).await,
        Err(CoreError::Unauthenticated)
    ));
    t.b.sync_invalidations().await.unwrap();
    assert!(matches!(
        t.b.auth().authenticate_session(&sid).await,
        Err(CoreError::Unauthenticated)
    ));
    // A session not opened on the device lives on.
    assert!(t.b.auth().authenticate_session(&other).await.is_ok());
    assert!(devices(&t.a, &me).await.is_empty());
    assert!(matches!(
        t.a.auth().revoke_device(&me, "phone-1").await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn one_device_too_many_signs_the_least_recently_active_out() {
    let t = setup(DevicePolicy {
        max_devices: 2,
        on_limit: DeviceLimitAction::SignOutOldest,
    })
    .await;
    let first = login(&t.a, Some(&phone("p1"))).await.unwrap();
    t.clock.advance(Duration::minutes(1));
    let second = login(&t.a, Some(&phone("p2"))).await.unwrap();
    t.clock.advance(Duration::minutes(1));
    // Logging in again on a known device is not a new device.
    let again = login(&t.a, Some(&phone("p1"))).await.unwrap();
    let me = t.a.auth().authenticate_session(&again).await.unwrap();
    assert_eq!(devices(&t.a, &me).await, vec!["p1", "p2"]);
    t.clock.advance(Duration::minutes(1));
    let third = login(&t.a, Some(&phone("p3"))).await.unwrap();
    assert_eq!(devices(&t.a, &me).await, vec!["p3", "p1"]);
    assert!(matches!(
        t.a.auth().authenticate_session(&second).await,
        Err(CoreError::Unauthenticated)
    ));
    for sid in [&first, &again, &third] {
        assert!(t.a.auth().authenticate_session(sid).await.is_ok());
    }
}

#[tokio::test]
async fn with_the_refuse_policy_one_device_too_many_cannot_log_in() {
    let t = setup(DevicePolicy {
        max_devices: 1,
        on_limit: DeviceLimitAction::Refuse,
    })
    .await;
    let sid = login(&t.a, Some(&phone("p1"))).await.unwrap();
    match login(&t.a, Some(&phone("p2"))).await {
        Err(CoreError::Conflict(m)) => assert!(m.contains("revoke_device"), "{m}"),
        other => panic!("second device: {other:?}"),
    }
    let me = t.a.auth().authenticate_session(&sid).await.unwrap();
    assert_eq!(devices(&t.a, &me).await, vec!["p1"]);
    // The explicit registration obeys the same limit.
    assert!(matches!(
        t.a.auth().register_device(&me, None, &phone("p2")).await,
        Err(CoreError::Conflict(_))
    ));
    // After revoking, the new device gets in.
    t.a.auth().revoke_device(&me, "p1").await.unwrap();
    assert!(login(&t.a, Some(&phone("p2"))).await.is_ok());
}

#[tokio::test]
async fn a_session_bound_later_by_register_device_ends_with_its_device() {
    let t = setup(DevicePolicy::default()).await;
    let sid = login(&t.a, None).await.unwrap();
    let me = t.a.auth().authenticate_session(&sid).await.unwrap();
    let reg =
        t.a.auth()
            .register_device(&me, Some(&sid), &phone("tab"))
            .await
            .unwrap();
    assert!(reg.is_new);
    assert_eq!(reg.device.kind, DeviceKind::Mobile);
    let renamed = DeviceInput::new("tab", "tablet", Some("Kitchen tablet")).unwrap();
    let reg =
        t.a.auth()
            .register_device(&me, Some(&sid), &renamed)
            .await
            .unwrap();
    assert!(!reg.is_new);
    assert_eq!(reg.device.name.as_deref(), Some("Kitchen tablet"));
    t.a.auth().revoke_device(&me, "tab").await.unwrap();
    assert!(t.a.auth().authenticate_session(&sid).await.is_err());
}

#[tokio::test]
async fn last_active_follows_use_at_most_once_per_interval() {
    let t = setup(DevicePolicy::default()).await;
    let start = memora_core::ports::Clock::now(t.clock.as_ref());
    let sid = login(&t.a, Some(&phone("p1"))).await.unwrap();
    let me = t.a.auth().authenticate_session(&sid).await.unwrap();
    let last = || async { t.a.auth().my_devices(&me).await.unwrap()[0].last_active };
    assert_eq!(last().await, start);
    t.clock.advance(Duration::minutes(2));
    t.a.auth().authenticate_session(&sid).await.unwrap();
    assert_eq!(last().await, start, "within the interval: not written");
    t.clock.advance(Duration::minutes(4));
    t.a.auth().authenticate_session(&sid).await.unwrap();
    assert_eq!(last().await, start + Duration::minutes(6));
}

#[test]
fn device_descriptions_are_checked() {
    assert!(DeviceInput::new("ok-1.a_b:c", "desktop", None).is_ok());
    for (id, kind, name) in [
        ("", "mobile", None),
        ("has space", "mobile", None),
        ("x", "watch", None),
        ("x", "mobile", Some("a\u{0}b")),
    ] {
        assert!(
            matches!(DeviceInput::new(id, kind, name), Err(CoreError::Invalid(_))),
            "{id:?} {kind:?} {name:?}"
        );
    }
    assert!(DeviceInput::new(&"x".repeat(129), "mobile", None).is_err());
    assert!(DeviceInput::new("x", "mobile", Some(&"n".repeat(81))).is_err());
    assert_eq!(
        DeviceInput::new("x", "mobile", Some("  ")).unwrap().name,
        None,
        "a blank name is no name"
    );
}
