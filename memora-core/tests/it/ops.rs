//! Operations use cases on the in-memory backend: reconciliation of the
//! cache with the store, season cache rebuild progress shared between
//! processes.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::{Clock, DueCache};
use memora_core::services::Config;
use memora_core::srs::SchedulerKind;
use memora_core::{CoreError, Memora};

struct H {
    app: Memora,
    backend: InMemoryBackend,
    clock: Arc<ManualClock>,
    info: DemoInfo,
    admin: Actor,
}

async fn harness() -> H {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, "demo-password").await.unwrap();
    H {
        admin: Actor::admin(info.admin.clone()),
        app,
        backend,
        clock,
        info,
    }
}

/// Another "process" over the same stores (a clone of the backend shares
/// its state), with its own clock.
fn other_process(h: &H) -> Memora {
    let mut ports = h.backend.ports();
    ports.clock = h.clock.clone();
    Memora::new(ports, Config::default())
}

impl H {
    /// The student's rows in the store, loaded into the cache.
    async fn cached_rows(&self) -> Vec<MemoryTracker> {
        let rows = self
            .app
            .ports()
            .trackers
            .all_trackers(&self.info.student, &self.info.season)
            .await
            .unwrap();
        assert!(rows.len() >= 20, "demo has {} rows", rows.len());
        self.cache()
            .load(&self.info.student, &self.info.season, &rows)
            .await
            .unwrap();
        rows
    }

    fn cache(&self) -> Arc<dyn DueCache> {
        Arc::new(self.backend.cache())
    }

    async fn cached(&self, q: &QuestionId) -> Option<MemoryTracker> {
        self.cache()
            .states(
                &self.info.student,
                &self.info.season,
                std::slice::from_ref(q),
            )
            .await
            .unwrap()
            .pop()
            .flatten()
    }

    /// Writes `row` to the store only (as the worker would, with the cache
    /// not refreshed).
    async fn persist_only(&self, row: &MemoryTracker, review: &str) {
        let log = ReviewLogEntry {
            review_id: ReviewId::new(review).unwrap(),
            key: row.key.clone(),
            source: ReviewSource::Review,
            grade: memora_core::srs::Grade::Good,
            is_correct: true,
            duration_ms: 1000,
            attempts: 1,
            reviewed_at: row.state.last_review.unwrap(),
            elapsed_days: 1,
            scheduler: SchedulerKind::Ladder,
            state_after: row.state.clone(),
        };
        self.app
            .ports()
            .trackers
            .persist_batch(&[ReviewRecord {
                tracker: row.clone(),
                log,
            }])
            .await
            .unwrap();
    }
}

/// `row` answered at `at`, due three days later.
fn answered(row: &MemoryTracker, at: chrono::DateTime<Utc>) -> MemoryTracker {
    let mut r = row.clone();
    r.state.last_review = Some(at);
    r.state.due = at + Duration::days(3);
    r.state.reps += 1;
    r
}

#[tokio::test]
async fn reconciliation_keeps_newer_cache_entries_without_counting_them() {
    let h = harness().await;
    let rows = h.cached_rows().await;
    // An answer the cache already has and the write-behind worker has not
    // persisted yet: normal lag, not a discrepancy.
    let newer = answered(&rows[0], h.clock.now());
    h.cache()
        .put(
            &h.info.student,
            &h.info.season,
            std::slice::from_ref(&newer),
        )
        .await
        .unwrap();
    let r = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1000), None)
        .await
        .unwrap();
    assert_eq!(r.kept_newer_in_cache, 1, "{r:?}");
    assert_eq!(r.discrepancies_found, 0, "lag is not a discrepancy: {r:?}");
    assert_eq!(r.discrepancy_rate, 0.0);
    assert!(!r.alert_triggered, "{r:?}");
    assert_eq!(h.cached(&newer.key.question).await, Some(newer));
}

#[tokio::test]
async fn reconciliation_corrects_and_counts_stale_cache_entries() {
    let h = harness().await;
    let rows = h.cached_rows().await;
    // The store moved on (written by another path) and the cache did not.
    let fresh = answered(&rows[1], h.clock.now());
    h.persist_only(&fresh, "r-stale-1").await;
    let r = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1000), None)
        .await
        .unwrap();
    assert_eq!(r.discrepancies_found, 1, "{r:?}");
    assert_eq!(r.auto_corrected, 1, "{r:?}");
    assert_eq!(r.kept_newer_in_cache, 0, "{r:?}");
    assert!(r.alert_triggered, "1 in {} is above 0.1 %", r.sample_size);
    assert!((r.discrepancy_rate - 1.0 / r.sample_size as f64).abs() < 1e-12);
    assert_eq!(h.cached(&fresh.key.question).await, Some(fresh));
    // Corrected: the next pass finds nothing.
    let again = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1000), None)
        .await
        .unwrap();
    assert_eq!(again.discrepancies_found, 0, "{again:?}");
}

#[tokio::test]
async fn reconciliation_finds_cache_only_members() {
    let h = harness().await;
    let rows = h.cached_rows().await;
    let now = h.clock.now();
    let mut ghost = rows[2].clone();
    ghost.key.question = QuestionId::parse("ghost-stage:7").unwrap();
    ghost.state.last_review = Some(now - Duration::days(5));
    ghost.state.due = now - Duration::days(1);
    let mut pending = rows[2].clone();
    pending.key.question = QuestionId::parse("pending-stage:1").unwrap();
    pending.state.last_review = Some(now);
    pending.state.due = now + Duration::days(1);
    h.cache()
        .put(
            &h.info.student,
            &h.info.season,
            &[ghost.clone(), pending.clone()],
        )
        .await
        .unwrap();
    let r = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1000), None)
        .await
        .unwrap();
    // The ghost (no tracker in the store, no write pending for it: it was
    // answered days ago) is a discrepancy and is removed; the entry answered
    // just now may still be on its way to the store and is kept.
    assert_eq!(r.discrepancies_found, 1, "{r:?}");
    assert_eq!(h.cached(&ghost.key.question).await, None, "{r:?}");
    assert_eq!(h.cached(&pending.key.question).await, Some(pending));
    assert_eq!(r.kept_newer_in_cache, 1, "{r:?}");
    assert_eq!((r.cache_only_found, r.cache_only_removed), (2, 1), "{r:?}");
    assert!(r.cache_sampled >= 2, "{r:?}");
    assert_eq!(r.sample_size, rows.len() as u64 + r.cache_sampled, "{r:?}");
}

#[tokio::test]
async fn reconciliation_keeps_cache_only_entries_a_dead_letter_may_still_write() {
    let h = harness().await;
    let rows = h.cached_rows().await;
    let now = h.clock.now();
    let mut answer = rows[3].clone();
    answer.key.question = QuestionId::parse("late-stage:2").unwrap();
    answer.state.last_review = Some(now - Duration::days(2));
    h.cache()
        .put(
            &h.info.student,
            &h.info.season,
            std::slice::from_ref(&answer),
        )
        .await
        .unwrap();
    // Its job failed three days ago (enqueued before the answer's review
    // time would be impossible, so this is clock skew or an older job of
    // the same learner): a replay may still write answers from then on.
    h.backend.queue().inject_dead_letter(
        &job("job-old", &rows[3], 1),
        "store down",
        4,
        now - Duration::days(3),
    );
    let r = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1000), None)
        .await
        .unwrap();
    assert_eq!((r.cache_only_found, r.cache_only_removed), (1, 0), "{r:?}");
    assert_eq!(r.discrepancies_found, 0, "{r:?}");
    assert_eq!(h.cached(&answer.key.question).await, Some(answer));
}

/// A persistence job of `n` answers to copies of `row`.
fn job(id: &str, row: &MemoryTracker, n: usize) -> memora_core::ports::PersistJob {
    let records = (0..n)
        .map(|i| {
            let mut t = row.clone();
            t.key.question = QuestionId::parse(format!("{id}-q:{i}")).unwrap();
            let at = t.state.last_review.unwrap_or(t.state.due);
            ReviewRecord {
                log: ReviewLogEntry {
                    review_id: ReviewId::new(format!("{id}-r{i}")).unwrap(),
                    key: t.key.clone(),
                    source: ReviewSource::Review,
                    grade: memora_core::srs::Grade::Good,
                    is_correct: true,
                    duration_ms: 800,
                    attempts: 1,
                    reviewed_at: at,
                    elapsed_days: 1,
                    scheduler: SchedulerKind::Ladder,
                    state_after: t.state.clone(),
                },
                tracker: t,
            }
        })
        .collect();
    memora_core::ports::PersistJob {
        id: JobId::new(id).unwrap(),
        records,
    }
}

#[tokio::test]
async fn dead_letters_are_listed_replayed_once_and_discarded_with_audit() {
    let h = harness().await;
    let row = h.cached_rows().await.remove(0);
    let q = h.backend.queue();
    let at = h.clock.now();
    let a = q.inject_dead_letter(&job("job-a", &row, 3), "store down", 4, at);
    let b = q.inject_dead_letter(&job("job-b", &row, 1), "store down", 4, at);
    let c = q.inject_dead_letter(&job("job-c", &row, 2), "bad row", 1, at);
    let admin = h.app.admin();
    let student = Actor::student(h.info.student.clone());

    let p1 = admin.list_dead_letters(&h.admin, None, 2).await.unwrap();
    assert_eq!(p1.total, 3);
    assert_eq!(
        p1.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec![a.as_str(), b.as_str()]
    );
    assert_eq!(p1.next_after.as_deref(), Some(b.as_str()));
    let first = &p1.items[0];
    assert_eq!(first.job.as_ref().map(|j| j.as_str()), Some("job-a"));
    assert_eq!(first.user.as_ref(), Some(&h.info.student));
    assert_eq!(first.season.as_ref(), Some(&h.info.season));
    assert_eq!((first.records, first.attempts), (3, 4));
    assert_eq!(first.error, "store down");
    assert_eq!(first.failed_at, Some(at));
    let p2 = admin
        .list_dead_letters(&h.admin, p1.next_after.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].id, c);
    assert_eq!(p2.next_after, None);
    for bad in [0, 501] {
        assert!(matches!(
            admin.list_dead_letters(&h.admin, None, bad).await,
            Err(CoreError::Invalid(_))
        ));
    }
    assert_eq!(
        admin.get_dead_letter(&h.admin, &c).await.unwrap(),
        p2.items[0]
    );
    assert!(matches!(
        admin.get_dead_letter(&h.admin, "999").await,
        Err(CoreError::NotFound(_))
    ));
    assert!(matches!(
        admin.get_dead_letter(&h.admin, "not-an-id").await,
        Err(CoreError::NotFound(_))
    ));
    assert!(matches!(
        admin.get_dead_letter(&h.admin, "").await,
        Err(CoreError::Invalid(_))
    ));
    assert!(matches!(
        admin.list_dead_letters(&student, None, 10).await,
        Err(CoreError::Forbidden(_))
    ));
    assert!(matches!(
        admin.replay_dead_letter(&student, &a).await,
        Err(CoreError::Forbidden(_))
    ));

    // Replay: the answers reach the store once, even replayed twice.
    let logged = h.backend.review_log_len();
    admin.replay_dead_letter(&h.admin, &a).await.unwrap();
    assert_eq!(h.backend.review_log_len(), logged + 3);
    assert!(matches!(
        admin.replay_dead_letter(&h.admin, &a).await,
        Err(CoreError::NotFound(_))
    ));
    let again = q.inject_dead_letter(&job("job-a", &row, 3), "store down", 4, at);
    admin.replay_dead_letter(&h.admin, &again).await.unwrap();
    assert_eq!(
        h.backend.review_log_len(),
        logged + 3,
        "replays are idempotent"
    );

    // Discard needs confirmation, and then loses the answers for good.
    assert!(matches!(
        admin.discard_dead_letter(&h.admin, &b, false).await,
        Err(CoreError::Invalid(_))
    ));
    let gone = admin.discard_dead_letter(&h.admin, &b, true).await.unwrap();
    assert_eq!(gone.records, 1);
    assert!(matches!(
        admin.discard_dead_letter(&h.admin, &b, true).await,
        Err(CoreError::NotFound(_))
    ));
    assert_eq!(admin.replay_all_dead_letters(&h.admin).await.unwrap(), 1);
    assert_eq!(h.backend.review_log_len(), logged + 5);
    let st = admin.get_cache_status(&h.admin).await.unwrap();
    assert_eq!(st.dead_letters, Some(0));

    let audit = h.app.ports().audit.recent(20).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for want in ["queue.replay", "queue.discard", "queue.replay_all"] {
        assert!(actions.contains(&want), "{want} audited: {actions:?}");
    }
    let discard = audit.iter().find(|e| e.action == "queue.discard").unwrap();
    assert_eq!(discard.actor.as_ref(), Some(&h.info.admin));
    assert_eq!(discard.detail["job"], "job-b");
    assert_eq!(discard.detail["error"], "store down");
}

#[tokio::test]
async fn rebuild_progress_is_visible_to_another_process() {
    let h = harness().await;
    let other = other_process(&h);
    let job = h
        .app
        .admin()
        .start_season_rebuild(&h.admin, &h.info.season)
        .await
        .unwrap();
    let done = h.app.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(done.status, "completed");
    let seen = other
        .admin()
        .rebuild_status(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!(seen.progress, done);
    assert!(!seen.stale);
    assert_eq!(seen.state(), "completed");
    assert!(matches!(
        other
            .admin()
            .run_season_rebuild(&JobId::new("nope").unwrap())
            .await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_rebuild_whose_process_died_is_reported_stale_and_resumed_elsewhere() {
    let h = harness().await;
    let other = other_process(&h);
    let job = h
        .app
        .admin()
        .start_season_rebuild(&h.admin, &h.info.season)
        .await
        .unwrap();
    // The starting process dies before (or while) running it: the record
    // stays `running` and stops moving.
    let fresh = other
        .admin()
        .rebuild_status(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!((fresh.state(), fresh.stale), ("running", false));
    assert!(matches!(
        other.admin().resume_season_rebuild(&h.admin, &job.id).await,
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        other.admin().run_season_rebuild(&job.id).await,
        Err(CoreError::Conflict(_))
    ));
    h.clock.advance(Duration::minutes(6));
    let stale = other
        .admin()
        .rebuild_status(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!((stale.state(), stale.stale), ("stale", true));
    assert!(stale.resumable());

    let claimed = other
        .admin()
        .resume_season_rebuild(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!(claimed.status, "running");
    // Only one process gets it.
    assert!(matches!(
        h.app.admin().resume_season_rebuild(&h.admin, &job.id).await,
        Err(CoreError::Conflict(_))
    ));
    let done = other.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.processed, job.estimated);
    // The original process, had it survived, may not write over it.
    assert!(matches!(
        h.app.admin().run_season_rebuild(&job.id).await,
        Err(CoreError::Conflict(_))
    ));
    let seen = h
        .app
        .admin()
        .rebuild_status(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!(seen.state(), "completed");
    assert!(matches!(
        h.app.admin().resume_season_rebuild(&h.admin, &job.id).await,
        Err(CoreError::InvalidState(_))
    ));
    assert!(matches!(
        h.app
            .admin()
            .rebuild_status(&Actor::student(h.info.student.clone()), &job.id)
            .await,
        Err(CoreError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_failed_rebuild_is_recorded_and_resumable() {
    let h = harness().await;
    let job = h
        .app
        .admin()
        .start_season_rebuild(&h.admin, &h.info.season)
        .await
        .unwrap();
    h.backend.cache().set_available(false);
    assert!(h.app.admin().run_season_rebuild(&job.id).await.is_err());
    let st = h
        .app
        .admin()
        .rebuild_status(&h.admin, &job.id)
        .await
        .unwrap();
    assert_eq!(st.state(), "failed");
    assert!(st.progress.status.contains("cache"), "{:?}", st.progress);
    h.backend.cache().set_available(true);
    let other = other_process(&h);
    other
        .admin()
        .resume_season_rebuild(&h.admin, &job.id)
        .await
        .unwrap();
    let done = other.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(
        (done.status.as_str(), done.processed),
        ("completed", job.estimated)
    );
}
