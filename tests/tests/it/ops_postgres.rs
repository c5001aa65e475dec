//! Operations across processes on one PostgreSQL store: two `Memora`
//! instances (own pools, own process ids) share a season cache rebuild's
//! progress; a rebuild whose process dies is reported stale by the other
//! and resumed there from where it stopped.

use std::sync::Arc;
use std::time::Duration;

use memora_core::domain::{Actor, Season};
use memora_core::ids::{SeasonId, UserId};
use memora_core::memory::{InMemoryBackend, InMemoryCache, ManualClock};
use memora_core::ports::{DueCache, Ports, SeasonStore, TrackerStore};
use memora_core::services::Config;
use memora_core::{CoreError, Memora};
use memora_store_postgres::PgStore;
use memora_tests::PgSchema;
use memora_tests::conformance::store::{at, record, season, tracker};
use memora_tests::hooked_cache::HookedCache;

/// Every store port on `store`; cache, clock as given; the rest in memory.
fn pg_ports(store: &PgStore, cache: Arc<dyn DueCache>, clock: Arc<ManualClock>) -> Ports {
    let mut p = InMemoryBackend::new().ports();
    let s = Arc::new(store.clone());
    p.content = s.clone();
    p.seasons = s.clone();
    p.trackers = s.clone();
    p.revlog = s.clone();
    p.scans = s.clone();
    p.archive = s.clone();
    p.profiles = s.clone();
    p.activity = s.clone();
    p.fsrs = s.clone();
    p.commerce = s.clone();
    p.quests = s.clone();
    p.auth = s.clone();
    p.audit = s.clone();
    p.locks = s.clone();
    p.job_progress = s.clone();
    p.served = s;
    p.cache = cache;
    p.clock = clock;
    p
}

async fn seed(store: &PgStore, users: usize, per_user: usize) -> SeasonId {
    let s = Season::new(
        season(2026),
        "test",
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
    )
    .expect("season");
    store.create_season(&s).await.expect("season");
    let mut recs = Vec::new();
    for u in 0..users {
        for i in 0..per_user {
            let t = tracker(
                &format!("u{u:02}"),
                2026,
                &format!("q{i:02}"),
                2,
                at(24),
                Some(at(-1)),
                None,
                None,
            );
            recs.push(record(&t, &format!("r-{u}-{i}")));
        }
    }
    store.persist_batch(&recs).await.expect("persist");
    s.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_progress_is_shared_and_a_dead_rebuild_is_resumed_by_another_process() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let store = pg.store.clone();
    let other_store = pg.other.clone();
    let run = tokio::spawn(async move {
        let season = seed(&store, 5, 4).await;
        let clock = ManualClock::new(at(0));
        let cache = InMemoryCache::new();
        let config = Config {
            // One learner's rows per page: progress is written between
            // learners.
            rebuild_batch_size: 4,
            ..Config::default()
        };
        // The process "dies" in its third load.
        let dying = Arc::new(HookedCache::dying_at(Arc::new(cache.clone()), 3));
        let a = Arc::new(Memora::new(
            pg_ports(&store, dying, clock.clone()),
            config.clone(),
        ));
        let b = Memora::new(
            pg_ports(&other_store, Arc::new(cache.clone()), clock.clone()),
            config,
        );
        let admin = Actor::system();

        let job = a
            .admin()
            .start_season_rebuild(&admin, &season)
            .await
            .expect("start");
        assert_eq!(job.estimated, 20);
        let seen = b
            .admin()
            .rebuild_status(&admin, &job.id)
            .await
            .expect("seen by b");
        assert_eq!((seen.state(), seen.progress.processed), ("running", 0));

        // A runs it and dies loading the third learner.
        let bg = Arc::clone(&a);
        let id = job.id.clone();
        let runner = tokio::spawn(async move { bg.admin().run_season_rebuild(&id).await });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let progress = loop {
            let s = b
                .admin()
                .rebuild_status(&admin, &job.id)
                .await
                .expect("status");
            if s.progress.users == 2 {
                break s;
            }
            assert!(tokio::time::Instant::now() < deadline, "no progress: {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        runner.abort();
        assert_eq!(
            progress.state(),
            "running",
            "B sees A's progress: {progress:?}"
        );
        assert_eq!(progress.progress.processed, 8);
        assert_eq!(
            progress
                .progress
                .resume_after
                .as_ref()
                .map(|k| k.user.as_str()),
            Some("u01")
        );
        assert!(matches!(
            b.admin().resume_season_rebuild(&admin, &job.id).await,
            Err(CoreError::Conflict(_))
        ));

        // No heartbeat for longer than `rebuild_stale_after`: stale.
        clock.advance(chrono::Duration::minutes(6));
        let stale = b
            .admin()
            .rebuild_status(&admin, &job.id)
            .await
            .expect("status");
        assert_eq!((stale.state(), stale.resumable()), ("stale", true));
        b.admin()
            .resume_season_rebuild(&admin, &job.id)
            .await
            .expect("resume");
        let done = b.admin().run_season_rebuild(&job.id).await.expect("run");
        assert_eq!(done.status, "completed");
        assert_eq!((done.processed, done.users), (20, 5));
        let final_seen = a
            .admin()
            .rebuild_status(&admin, &job.id)
            .await
            .expect("status");
        assert_eq!(final_seen.state(), "completed");
        for u in 0..5 {
            let stats = cache
                .user_stats(
                    &UserId::new(format!("u{u:02}")).expect("user"),
                    &season,
                    at(0),
                )
                .await
                .expect("stats");
            assert_eq!(stats.map(|s| s.total), Some(4), "u{u:02} loaded");
        }
    })
    .await;
    pg.teardown().await;
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}
