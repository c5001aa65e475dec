//! The season cache rebuild loads independent schedules concurrently, and
//! its progress never claims a user whose load failed (in-memory ports).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use memora_core::Memora;
use memora_core::domain::{
    Actor, MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource, Season, TrackerKey,
};
use memora_core::ids::{QuestionId, ReviewId, SeasonId, SubjectId, UserId};
use memora_core::memory::InMemoryBackend;
use memora_core::ports::{DueCache, SeasonStore, TrackerStore};
use memora_core::services::Config;
use memora_core::srs::{CardState, Grade, Phase, SchedulerKind};
use memora_tests::hooked_cache::HookedCache;

const USERS: usize = 20;
const PER_USER: usize = 9;

fn user(k: usize) -> UserId {
    UserId::new(format!("rb-{k:03}")).unwrap()
}

fn record(s: &SeasonId, k: usize, i: usize) -> ReviewRecord {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let tracker = MemoryTracker {
        key: TrackerKey {
            user: user(k),
            season: s.clone(),
            question: QuestionId::parse(format!("st{i:03}:0")).unwrap(),
        },
        subject: Some(SubjectId::new("math").unwrap()),
        topic: None,
        state: CardState {
            kind: SchedulerKind::Ladder,
            phase: Phase::Review,
            step: 0,
            stability: 2.0,
            difficulty: 0.0,
            reps: 1,
            lapses: 0,
            last_review: Some(t0),
            due: t0 + chrono::Duration::hours(i as i64),
            scheduled_days: 1,
        },
    };
    ReviewRecord {
        log: ReviewLogEntry {
            review_id: ReviewId::new(format!("rb-{k}-{i}")).unwrap(),
            key: tracker.key.clone(),
            source: ReviewSource::Review,
            grade: Grade::Good,
            is_correct: true,
            duration_ms: 900,
            attempts: 1,
            reviewed_at: t0,
            elapsed_days: 1,
            scheduler: tracker.state.kind,
            state_after: tracker.state.clone(),
        },
        tracker,
    }
}

async fn setup(concurrency: usize) -> (Arc<Memora>, Arc<HookedCache>, Arc<dyn DueCache>, SeasonId) {
    let backend = InMemoryBackend::new();
    let s = SeasonId::new("SEASON-2026").unwrap();
    let season = Season::new(
        s.clone(),
        "rebuild",
        chrono::NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 8, 31).unwrap(),
    )
    .unwrap();
    backend.create_season(&season).await.unwrap();
    let records: Vec<ReviewRecord> = (0..USERS)
        .flat_map(|k| (0..PER_USER).map(move |i| (k, i)))
        .map(|(k, i)| record(&s, k, i))
        .collect();
    backend.persist_batch(&records).await.unwrap();
    let mut ports = backend.ports();
    let inner = ports.cache.clone();
    let hooked = Arc::new(HookedCache::counting(inner.clone()));
    ports.cache = hooked.clone();
    let config = Config {
        // Pages end inside a user's rows, so a user spans two pages.
        rebuild_batch_size: 25,
        rebuild_concurrency: concurrency,
        ..Config::default()
    };
    (Arc::new(Memora::new(ports, config)), hooked, inner, s)
}

async fn present(cache: &Arc<dyn DueCache>, s: &SeasonId, k: usize) -> Option<u64> {
    let far = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    cache
        .user_stats(&user(k), s, far)
        .await
        .unwrap()
        .map(|st| st.total)
}

#[tokio::test]
async fn rebuild_loads_schedules_concurrently_and_completely() {
    let (app, hooked, inner, s) = setup(4).await;
    let admin = Actor::admin(UserId::new("admin").unwrap());
    let job = app.admin().start_season_rebuild(&admin, &s).await.unwrap();
    let p = app.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(p.status, "completed");
    assert_eq!(p.processed, (USERS * PER_USER) as u64);
    assert_eq!(p.users, USERS as u64);
    assert_eq!(hooked.loads(), USERS as u64, "one load per user");
    let most = hooked.max_concurrent_loads();
    assert!(
        (2..=4).contains(&most),
        "loads ran {most} at a time, expected 2..=4"
    );
    for k in 0..USERS {
        assert_eq!(
            present(&inner, &s, k).await,
            Some(PER_USER as u64),
            "user {k}"
        );
    }
}

#[tokio::test]
async fn one_at_a_time_when_configured() {
    let (app, hooked, _inner, s) = setup(1).await;
    let admin = Actor::admin(UserId::new("admin").unwrap());
    let job = app.admin().start_season_rebuild(&admin, &s).await.unwrap();
    let p = app.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(p.users, USERS as u64);
    assert_eq!(hooked.max_concurrent_loads(), 1);
}

#[tokio::test]
async fn a_failed_load_stops_progress_before_that_user_and_resumption_finishes() {
    let (app, hooked, inner, s) = setup(8).await;
    let admin = Actor::admin(UserId::new("admin").unwrap());
    // User 6 is loaded beside users 5 and 7 (one page completes 5..=7).
    hooked.fail_loads_of(Some(user(6)));
    let job = app.admin().start_season_rebuild(&admin, &s).await.unwrap();
    let err = app.admin().run_season_rebuild(&job.id).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let st = app.admin().rebuild_status(&admin, &job.id).await.unwrap();
    assert_eq!(st.state(), "failed");
    // Users 0..=5 loaded and counted, in key order; user 6 is not, and
    // neither is user 7, whose load ran beside it (it is loaded again).
    assert_eq!(st.progress.users, 6);
    assert_eq!(st.progress.processed, (6 * PER_USER) as u64);
    let last = st.progress.resume_after.clone().expect("resume key");
    assert_eq!(last.user, user(5));
    assert_eq!(last.question.as_str(), format!("st{:03}:0", PER_USER - 1));
    assert_eq!(present(&inner, &s, 6).await, None);
    assert!(
        hooked.max_concurrent_loads() >= 2,
        "loads ran one at a time"
    );

    hooked.fail_loads_of(None);
    app.admin()
        .resume_season_rebuild(&admin, &job.id)
        .await
        .unwrap();
    let p = app.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(p.status, "completed");
    assert_eq!(p.users, USERS as u64);
    assert_eq!(p.processed, (USERS * PER_USER) as u64);
    for k in 0..USERS {
        assert_eq!(
            present(&inner, &s, k).await,
            Some(PER_USER as u64),
            "user {k}"
        );
    }
}
