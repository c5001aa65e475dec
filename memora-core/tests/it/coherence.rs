//! Two server processes over one store: what one changes reaches the
//! other's caches through the invalidation log (`sync_invalidations`), the
//! safe-mode budget is shared, and stale schedules marked by one are
//! dropped by the other.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::{Clock, Invalidation};
use memora_core::services::Config;
use memora_core::services::admin::{ImportMode, ImportRequest, SeasonInput};
use memora_core::services::reviews::ReviewQuery;
use memora_core::{CoreError, Memora};

const PASSWORD: &str = "demo-password";

struct Two {
    a: Memora,
    b: Memora,
    backend: InMemoryBackend,
    clock: Arc<ManualClock>,
    info: DemoInfo,
    admin: Actor,
}

/// Process `a` seeds the demo; `b` starts on the same store and takes its
/// place in the invalidation log.
async fn two(config: Config) -> Two {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let process = |config: Config| {
        let mut ports = backend.ports();
        ports.clock = clock.clone();
        Memora::new(ports, config)
    };
    let a = process(config.clone());
    let b = process(config);
    let info = seed_demo(&a, PASSWORD).await.unwrap();
    a.sync_invalidations().await.unwrap();
    b.sync_invalidations().await.unwrap();
    Two {
        admin: Actor::admin(info.admin.clone()),
        a,
        b,
        backend,
        clock,
        info,
    }
}

fn query() -> ReviewQuery {
    ReviewQuery {
        limit: Some(5),
        ..ReviewQuery::default()
    }
}

#[tokio::test]
async fn a_logout_in_one_process_ends_the_session_in_the_other_at_the_next_sync() {
    let t = two(Config::default()).await;
    let login =
        t.a.auth()
            .login(memora_core::demo::DEMO_STUDENT, PASSWORD, None)
            .await
            .unwrap();
    // b verifies the session once and caches it.
    t.b.auth().authenticate_session(&login.sid).await.unwrap();
    t.a.auth().logout(&login.sid).await.unwrap();
    assert!(
        t.b.auth().authenticate_session(&login.sid).await.is_ok(),
        "b still trusts its cached copy until it syncs"
    );
    let report = t.b.sync_invalidations().await.unwrap();
    assert_eq!(report.applied, 1);
    assert!(matches!(
        t.b.auth().authenticate_session(&login.sid).await,
        Err(CoreError::Unauthenticated)
    ));
    // Applied once: the next sync finds nothing new.
    assert_eq!(t.b.sync_invalidations().await.unwrap().applied, 0);
}

#[tokio::test]
async fn a_password_change_drops_every_cached_credential_of_the_user_everywhere() {
    let t = two(Config::default()).await;
    let login =
        t.a.auth()
            .login(memora_core::demo::DEMO_STUDENT, PASSWORD, None)
            .await
            .unwrap();
    t.b.auth().authenticate_session(&login.sid).await.unwrap();
    // The session row disappears behind b's back (as a revocation would);
    // only the user-wide invalidation of the password change tells b.
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(login.sid.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    t.backend
        .ports()
        .auth
        .delete_login_session(&hash)
        .await
        .unwrap();
    assert!(t.b.auth().authenticate_session(&login.sid).await.is_ok());
    t.a.auth()
        .set_password(
            &Actor::system(),
            &t.info.student,
            "a-much-longer-new-secret-42",
        )
        .await
        .unwrap();
    t.b.sync_invalidations().await.unwrap();
    assert!(matches!(
        t.b.auth().authenticate_session(&login.sid).await,
        Err(CoreError::Unauthenticated)
    ));
}

#[tokio::test]
async fn a_content_import_in_one_process_reaches_the_others_catalog() {
    let t = two(Config::default()).await;
    let before = t.b.learning().catalog().await.unwrap();
    let mut lesson =
        t.a.ports()
            .content
            .load_catalog()
            .await
            .unwrap()
            .lessons
            .into_iter()
            .find(|l| l.id.as_str() == "hist-l3")
            .unwrap();
    lesson.id = LessonId::new("hist-l9").unwrap();
    for s in &mut lesson.stages {
        s.id = StageId::new(format!("hist-l9-{}", s.id)).unwrap();
    }
    let new_id = lesson.id.clone();
    let report =
        t.a.admin()
            .import_content(
                &t.admin,
                &ImportRequest {
                    bundle: ContentBundle {
                        catalog: Catalog {
                            lessons: vec![lesson],
                            ..Default::default()
                        },
                        unpublish: ContentIds::default(),
                    },
                    mode: ImportMode::Merge,
                    dry_run: false,
                },
            )
            .await
            .unwrap();
    assert!(report.applied);
    assert!(
        t.a.learning()
            .catalog()
            .await
            .unwrap()
            .lesson(&new_id)
            .is_some()
    );
    assert!(
        t.b.learning()
            .catalog()
            .await
            .unwrap()
            .lesson(&new_id)
            .is_none(),
        "b serves its cached catalog until it syncs"
    );
    let sync = t.b.sync_invalidations().await.unwrap();
    assert!(sync.catalog_reloaded);
    let after = t.b.learning().catalog().await.unwrap();
    assert!(after.lesson(&new_id).is_some());
    assert!(before.lesson(&new_id).is_none());
}

#[tokio::test]
async fn a_lost_publication_is_caught_by_the_catalog_version_check() {
    let t = two(Config::default()).await;
    // The first version check happens on b's first sync after start.
    t.b.sync_invalidations().await.unwrap();
    let id = LessonId::new("hist-l4").unwrap();
    let mut lesson =
        t.a.ports()
            .content
            .load_catalog()
            .await
            .unwrap()
            .lessons
            .into_iter()
            .find(|l| l.id == id)
            .unwrap();
    lesson.title = "Renamed behind everyone's back".into();
    // Straight through the store: a new version, nothing published.
    let catalog = Catalog {
        lessons: vec![lesson],
        ..Default::default()
    };
    t.a.ports().content.import_catalog(&catalog).await.unwrap();
    async fn title(m: &Memora) -> String {
        let id = LessonId::new("hist-l4").unwrap();
        m.learning()
            .catalog()
            .await
            .unwrap()
            .lesson(&id)
            .unwrap()
            .title
            .clone()
    }
    assert_ne!(title(&t.b).await, "Renamed behind everyone's back");
    t.clock.advance(Duration::seconds(30));
    assert!(!t.b.sync_invalidations().await.unwrap().catalog_reloaded);
    t.clock.advance(Duration::seconds(31));
    assert!(t.b.sync_invalidations().await.unwrap().catalog_reloaded);
    assert_eq!(title(&t.b).await, "Renamed behind everyone's back");
}

#[tokio::test]
async fn a_new_active_season_reaches_the_other_process_at_the_next_sync() {
    let t = two(Config {
        season_cache_ttl: std::time::Duration::from_secs(3600),
        ..Config::default()
    })
    .await;
    let old = t.b.active_season().await.unwrap().unwrap();
    let id = SeasonId::new("SEASON-2027").unwrap();
    t.a.admin()
        .create_season(
            &t.admin,
            &SeasonInput {
                id: id.clone(),
                title: None,
                start_date: old.end_date + Duration::days(1),
                end_date: old.end_date + Duration::days(300),
                scheduler: None,
                desired_retention: None,
                auto_archive: false,
            },
        )
        .await
        .unwrap();
    t.a.admin().activate_season(&t.admin, &id).await.unwrap();
    assert_eq!(t.b.active_season().await.unwrap().unwrap().id, old.id);
    t.b.sync_invalidations().await.unwrap();
    assert_eq!(t.b.active_season().await.unwrap().unwrap().id, id);
}

#[tokio::test]
async fn the_safe_mode_budget_is_counted_across_processes() {
    let mut config = Config::default();
    config.safe_mode.global_per_window = 2;
    let t = two(config).await;
    let mut students = Vec::new();
    for n in 0..3 {
        let id = UserId::new(format!("budget-{n}@x.test")).unwrap();
        t.a.auth()
            .create_user(&Actor::system(), &id, "Budget", vec![Role::Student], None)
            .await
            .unwrap();
        students.push(Actor::student(id));
    }
    let now = t.clock.now();
    t.a.cache_health().mark_failed(now);
    t.b.cache_health().mark_failed(now);
    // Alone, each process would admit two sessions a minute.
    let first =
        t.a.reviews()
            .get_review_session(&students[0], &query())
            .await;
    let second =
        t.b.reviews()
            .get_review_session(&students[1], &query())
            .await;
    assert!(first.unwrap().is_degraded);
    assert!(second.unwrap().is_degraded);
    match t
        .a
        .reviews()
        .get_review_session(&students[2], &query())
        .await
    {
        Err(CoreError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, std::time::Duration::from_secs(60));
        }
        other => panic!("a third session in the minute, over two processes: {other:?}"),
    }
    t.clock.advance(Duration::seconds(60));
    assert!(
        t.a.reviews()
            .get_review_session(&students[2], &query())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn schedules_marked_stale_by_one_process_are_dropped_by_the_other_before_trusting_the_cache()
{
    let t = two(Config::default()).await;
    let (user, season) = (t.info.student.clone(), t.info.season.clone());
    let rows =
        t.a.ports()
            .trackers
            .all_trackers(&user, &season)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    t.a.ports().cache.load(&user, &season, &rows).await.unwrap();
    async fn cached(m: &Memora, user: &UserId, season: &SeasonId) -> bool {
        let now = m.ports().clock.now();
        m.ports()
            .cache
            .due(user, season, None, now, 1)
            .await
            .unwrap()
            .is_some()
    }
    assert!(cached(&t.b, &user, &season).await);
    // A worker of process a could not write this schedule to the cache.
    t.a.ports()
        .coordination
        .mark_stale(&[(user.clone(), season.clone())])
        .await
        .unwrap();
    assert_eq!(t.b.drain_stale_schedules().await.unwrap(), 1);
    assert!(
        !cached(&t.a, &user, &season).await,
        "the shared cache no longer holds it"
    );
    assert!(
        t.b.ports()
            .coordination
            .stale_schedules(10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.a.drain_stale_schedules().await.unwrap(), 0);
}

#[tokio::test]
async fn invalidations_published_before_a_process_starts_do_not_replay_but_its_caches_start_fresh()
{
    let t = two(Config::default()).await;
    t.a.ports()
        .coordination
        .publish(&Invalidation::Seasons)
        .await
        .unwrap();
    let mut ports = t.backend.ports();
    ports.clock = t.clock.clone();
    let late = Memora::new(ports, Config::default());
    let first = late.sync_invalidations().await.unwrap();
    assert_eq!(
        first.applied, 0,
        "a new process starts at the end of the log"
    );
    assert!(first.catalog_reloaded, "and loads its caches afresh");
    assert_eq!(t.b.sync_invalidations().await.unwrap().applied, 1);
}

/// Counts the safe-mode admissions asked of the shared budget.
struct CountingBudget {
    inner: Arc<dyn memora_core::ports::Coordination>,
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl memora_core::ports::Coordination for CountingBudget {
    async fn publish(&self, what: &Invalidation) -> memora_core::PortResult<()> {
        self.inner.publish(what).await
    }
    async fn invalidations_since(
        &self,
        cursor: Option<memora_core::ports::InvalidationCursor>,
    ) -> memora_core::PortResult<memora_core::ports::InvalidationBatch> {
        self.inner.invalidations_since(cursor).await
    }
    async fn prune_invalidations(
        &self,
        before: chrono::DateTime<Utc>,
    ) -> memora_core::PortResult<u64> {
        self.inner.prune_invalidations(before).await
    }
    async fn admit_safe_mode(
        &self,
        user: &UserId,
        now: chrono::DateTime<Utc>,
        limits: &memora_core::safe_mode::SafeModeLimits,
    ) -> memora_core::PortResult<memora_core::safe_mode::Admission> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.admit_safe_mode(user, now, limits).await
    }
    async fn mark_stale(&self, keys: &[(UserId, SeasonId)]) -> memora_core::PortResult<()> {
        self.inner.mark_stale(keys).await
    }
    async fn stale_schedules(
        &self,
        limit: usize,
    ) -> memora_core::PortResult<Vec<memora_core::ports::StaleMark>> {
        self.inner.stale_schedules(limit).await
    }
    async fn clear_stale(
        &self,
        marks: &[memora_core::ports::StaleMark],
    ) -> memora_core::PortResult<()> {
        self.inner.clear_stale(marks).await
    }
}

#[tokio::test]
async fn refusals_the_shared_budget_already_decided_are_not_asked_again() {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    ports.coordination = Arc::new(CountingBudget {
        inner: ports.coordination.clone(),
        asked: asked.clone(),
    });
    let mut config = Config::default();
    config.safe_mode.global_per_window = 2;
    let app = Memora::new(ports, config);
    let info = seed_demo(&app, PASSWORD).await.unwrap();
    let mut students = vec![Actor::student(info.student.clone())];
    for n in 0..3 {
        let id = UserId::new(format!("flood-{n}@x.test")).unwrap();
        app.auth()
            .create_user(&Actor::system(), &id, "Flood", vec![Role::Student], None)
            .await
            .unwrap();
        students.push(Actor::student(id));
    }
    backend.cache().set_available(false);
    app.cache_health().mark_failed(clock.now());
    let count = || asked.load(std::sync::atomic::Ordering::SeqCst);
    let q = query();
    let review = |s: &Actor| {
        let (app, q, s) = (&app, &q, s.clone());
        async move { app.reviews().get_review_session(&s, q).await }
    };
    assert!(review(&students[0]).await.is_ok());
    assert_eq!(count(), 1);
    // The same learner again within 30 s: refused here.
    assert!(matches!(
        review(&students[0]).await,
        Err(CoreError::RateLimited { .. })
    ));
    assert_eq!(count(), 1);
    assert!(review(&students[1]).await.is_ok());
    // The window is full: the budget says so once, then this process knows.
    assert!(review(&students[2]).await.is_err());
    assert_eq!(count(), 3);
    for s in &students[2..] {
        match review(s).await {
            Err(CoreError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, std::time::Duration::from_secs(60));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(count(), 3);
    clock.advance(Duration::seconds(60));
    assert!(review(&students[2]).await.is_ok());
    assert_eq!(count(), 4);
}
