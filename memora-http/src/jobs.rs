//! Background work in the server process: the cache health probe (which
//! also drops the schedules that missed writes before leaving safe mode),
//! the invalidation poller (coherence with the other processes), the
//! persistence workers (Redis mode) and the scheduled jobs (daily
//! reconciliation, daily auto-archive, weekly retention flagging, nightly
//! FSRS re-fit, hourly purge of expired served-ledger entries and of old
//! invalidations, the per-minute hand-over of interrupted lesson plays'
//! tracker batches). Each scheduled job runs under a lease in the store
//! (expiry + fencing token, renewed while it runs): once per interval
//! across every process sharing the database.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use memora_core::ports::JobRuntime;
use memora_core::{Memora, PortError, PortResult};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts one background task given the app and the shutdown signal.
pub type Spawner = Box<dyn FnOnce(Arc<Memora>, watch::Receiver<bool>) -> JoinHandle<()> + Send>;

/// Extra background tasks an adapter needs (e.g. queue workers).
#[derive(Default)]
pub struct Extras {
    /// Spawners run at start-up.
    pub spawners: Vec<Spawner>,
}

/// The server's [`JobRuntime`]: CPU-heavy job steps (FSRS fits) run on
/// tokio's blocking pool, so that no runtime worker, which also serves
/// requests, is held by one; pauses are tokio sleeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioJobRuntime;

#[async_trait::async_trait]
impl JobRuntime for TokioJobRuntime {
    async fn run_cpu(&self, work: Box<dyn FnOnce() + Send + 'static>) -> PortResult<()> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PortError::Internal(format!("background work did not complete: {e}")))
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }
}

/// How often each scheduled job runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Health probe period.
    pub probe: Duration,
    /// Reconciliation period.
    pub reconcile: Duration,
    /// Auto-archive period.
    pub auto_archive: Duration,
    /// Retention flagging period.
    pub retention: Duration,
    /// FSRS re-fit period.
    pub refit: Duration,
    /// Period of the purge of expired served-ledger entries in the store.
    pub served_purge: Duration,
    /// Period of the hand-over of lesson plays' tracker batches left
    /// pending by an interrupted request.
    pub pending_batches: Duration,
    /// Period of the purge of old invalidation-log entries.
    pub invalidations_prune: Duration,
    /// How often the invalidations of other processes are applied.
    pub sync: Duration,
}

/// The names of the scheduled jobs (`MEMORA_JOB_PERIODS` keys).
pub const JOB_NAMES: [&str; 7] = [
    "reconcile",
    "auto_archive",
    "retention",
    "fsrs_refit",
    "served_purge",
    "pending_batches",
    "invalidations_prune",
];

impl Schedule {
    /// The period of scheduled job `job`, for reading or setting.
    fn slot(&mut self, job: &str) -> Option<&mut Duration> {
        Some(match job {
            "reconcile" => &mut self.reconcile,
            "auto_archive" => &mut self.auto_archive,
            "retention" => &mut self.retention,
            "fsrs_refit" => &mut self.refit,
            "served_purge" => &mut self.served_purge,
            "pending_batches" => &mut self.pending_batches,
            "invalidations_prune" => &mut self.invalidations_prune,
            _ => return None,
        })
    }

    /// The period of a scheduled job.
    pub fn period(&self, job: &str) -> Option<Duration> {
        let mut copy = *self;
        copy.slot(job).map(|d| *d)
    }

    /// Overrides job periods from `name=seconds` pairs separated by commas
    /// (e.g. `served_purge=2,pending_batches=30`).
    pub fn with_periods(mut self, spec: &str) -> Result<Self, String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, secs) = pair
                .split_once('=')
                .ok_or_else(|| format!("'{pair}': expected name=seconds"))?;
            let secs: u64 = secs
                .trim()
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("'{pair}': seconds must be a positive integer"))?;
            let name = name.trim();
            let slot = self.slot(name).ok_or_else(|| {
                format!("unknown job '{name}' (one of: {})", JOB_NAMES.join(", "))
            })?;
            *slot = Duration::from_secs(secs);
        }
        Ok(self)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            probe: Duration::from_secs(1),
            reconcile: Duration::from_secs(24 * 3600),
            auto_archive: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            refit: Duration::from_secs(24 * 3600),
            served_purge: Duration::from_secs(3600),
            pending_batches: Duration::from_secs(60),
            invalidations_prune: Duration::from_secs(3600),
            sync: Duration::from_millis(250),
        }
    }
}

/// Spawns the probe and the scheduled jobs; they stop when `shutdown` flips.
pub fn spawn_all(
    app: Arc<Memora>,
    schedule: Schedule,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    {
        let app = Arc::clone(&app);
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(schedule.probe);
            let mut drained_at: Option<u64> = None;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        let ok = tokio::time::timeout(Duration::from_millis(500), app.ports().cache.ping())
                            .await
                            .map(|r| r.is_ok())
                            .unwrap_or(false);
                        // Schedules that missed writes while the cache was
                        // unreachable (marked by any process, even before a
                        // restart) are dropped before this process trusts
                        // the cache: at start-up, and after every failure
                        // since the last drain — whoever closed the breaker
                        // (a request's own retry may have, at most one probe
                        // interval earlier).
                        let failures = app.cache_health().failure_count();
                        if ok && (app.cache_health().is_degraded() || drained_at != Some(failures)) {
                            match app.drain_stale_schedules().await {
                                Ok(0) => drained_at = Some(failures),
                                Ok(n) => {
                                    drained_at = Some(failures);
                                    tracing::info!(schedules = n, "dropped cached schedules that missed writes during the outage");
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "could not drop the stale cached schedules: staying in safe mode");
                                    if !app.cache_health().is_degraded() {
                                        app.cache_health().mark_failed(chrono::Utc::now());
                                    }
                                    continue;
                                }
                            }
                        }
                        if ok {
                            if app.cache_health().is_degraded() {
                                tracing::info!("cache is back: leaving safe mode");
                            }
                            app.cache_health().mark_ok();
                            // The leaderboards live in the same Redis as the
                            // due cache: its ping closes their breaker too.
                            if app.leaderboard_health().is_degraded() {
                                tracing::info!("cache is back: leaderboard breaker closed");
                            }
                            app.leaderboard_health().mark_ok();
                        } else if !app.cache_health().is_degraded() {
                            tracing::warn!("cache probe failed: entering safe mode");
                            app.cache_health().mark_failed(chrono::Utc::now());
                        }
                        // The queue breaker is opened only by failing
                        // enqueues; the probe closes it once the queue answers.
                        if app.queue_health().is_degraded() {
                            let queue_ok = tokio::time::timeout(Duration::from_millis(500), app.ports().queue.depth())
                                .await
                                .map(|r| r.is_ok())
                                .unwrap_or(false);
                            if queue_ok {
                                tracing::info!("queue is back: queue breaker closed");
                                app.queue_health().mark_ok();
                            }
                        }
                    }
                }
            }
        }));
    }
    {
        // Coherence: apply what the other processes changed.
        let app = Arc::clone(&app);
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(schedule.sync);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => match app.sync_invalidations().await {
                        Ok(r) => {
                            if failing {
                                tracing::info!("invalidation log readable again");
                                failing = false;
                            }
                            if r.applied > 0 {
                                metrics::counter!("memora_invalidations_applied_total").increment(r.applied as u64);
                            }
                        }
                        Err(e) => {
                            if !failing {
                                tracing::warn!(error = %e, "cannot read the invalidation log: caches converge by their TTLs until it is back");
                                failing = true;
                            }
                        }
                    },
                }
            }
        }));
    }
    for name in JOB_NAMES {
        let Some(period) = schedule.period(name) else {
            continue;
        };
        let app = Arc::clone(&app);
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            // Every process asks for the lease at least once a minute (one
            // cheap statement); the lease lets one of them run the job once
            // per period, counted from its last start across all processes,
            // so restarts neither repeat nor postpone a run.
            let mut tick = tokio::time::interval(
                (period / 4).clamp(Duration::from_millis(250), Duration::from_secs(60)),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first ask waits one tick (at most a minute): a process
            // that just started serves first.
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        run_job(&app, name, period).await;
                    }
                }
            }
        }));
    }
    handles
}

/// `tracing` target of events an operator should alert on.
pub const ALERT_TARGET: &str = "memora::alert";

/// Value of the `alert` field of the event logged when reconciliation finds
/// more than 0.1 % discrepancies (stable: alert rules match on it).
pub const RECONCILIATION_ALERT: &str = "reconciliation_discrepancy";

/// Exports a reconciliation's outcome wherever one runs (HTTP method,
/// scheduled job, CLI): the gauge `memora_reconciliation_discrepancy_rate`
/// (last run), the counters `memora_reconciliation_runs_total` and, above
/// the 0.1 % threshold, `memora_reconciliation_alerts_total`, plus a WARN
/// event on target [`ALERT_TARGET`] with `alert = "reconciliation_discrepancy"`.
pub fn record_reconciliation(r: &memora_core::services::admin::ReconcileReport, trigger: &str) {
    metrics::gauge!("memora_reconciliation_discrepancy_rate").set(r.discrepancy_rate);
    metrics::counter!("memora_reconciliation_runs_total").increment(1);
    if r.alert_triggered {
        metrics::counter!("memora_reconciliation_alerts_total").increment(1);
        tracing::warn!(
            target: ALERT_TARGET,
            alert = RECONCILIATION_ALERT,
            trigger,
            rate = r.discrepancy_rate,
            threshold = memora_core::lifecycle::DISCREPANCY_ALERT_RATE,
            discrepancies = r.discrepancies_found,
            sampled = r.sample_size,
            cache_only_removed = r.cache_only_removed,
            "cache and database disagree on more than 0.1 % of the sampled entries (stale entries were corrected)"
        );
    }
}

type JobFuture<'a> = Pin<Box<dyn Future<Output = memora_core::CoreResult<String>> + Send + 'a>>;

/// The work of scheduled job `name`, `None` if there is no such job.
fn job_work<'a>(app: &'a Memora, name: &str) -> Option<JobFuture<'a>> {
    let system = memora_core::domain::Actor::system();
    Some(match name {
        "reconcile" => Box::pin(async move {
            app.admin()
                .trigger_reconciliation(&system, None, None)
                .await
                .map(|r| {
                    record_reconciliation(&r, "schedule");
                    format!(
                        "sampled {} discrepancies {}",
                        r.sample_size, r.discrepancies_found
                    )
                })
        }),
        "auto_archive" => Box::pin(async move {
            app.admin()
                .run_auto_archive()
                .await
                .map(|(ok, failed)| format!("archived {ok:?} failed {failed:?}"))
        }),
        "retention" => Box::pin(async move {
            app.admin()
                .run_retention_flagging()
                .await
                .map(|n| format!("flagged {n}"))
        }),
        "fsrs_refit" => Box::pin(async move {
            app.admin()
                .run_fsrs_refit_job(100)
                .await
                .map(|n| format!("refitted {n}"))
        }),
        // The store ledger does not expire rows by itself (the Redis one
        // does); entries past retain_until are deleted in batches.
        "served_purge" => Box::pin(async move {
            let now = app.ports().clock.now();
            app.ports()
                .served
                .purge_expired(now)
                .await
                .map(|n| format!("purged {n} served entries"))
                .map_err(memora_core::CoreError::from)
        }),
        // A play's batch is handed over within its own request; one still
        // pending after a minute was interrupted.
        "pending_batches" => Box::pin(async move {
            app.reviews()
                .resume_pending_batches(chrono::Duration::seconds(60), 500)
                .await
                .map(|n| format!("handed over {n} pending tracker batches"))
        }),
        "invalidations_prune" => Box::pin(async move {
            app.prune_invalidations()
                .await
                .map(|n| format!("pruned {n} invalidations"))
        }),
        _ => return None,
    })
}

/// What became of one [`run_job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRunOutcome {
    /// Another process holds the job, or it ran less than a period ago.
    NotDue,
    /// It ran; the summary, or the error it failed with.
    Ran(Result<String, String>),
    /// Its lease was lost while it ran (the work was stopped).
    LeaseLost,
    /// The lease could not be taken (the store failed) or the job is unknown.
    Skipped(String),
}

/// Runs scheduled job `name` if this process wins its lease: nobody holds
/// it and it last started at least `every` ago (across every process). The
/// lease is renewed every third of `Config::job_lease_ttl` while the job
/// runs; if it is lost (another process took it after it lapsed) the work
/// is stopped and its outcome is not recorded.
pub async fn run_job(app: &Memora, name: &str, every: Duration) -> JobRunOutcome {
    let Some(work) = job_work(app, name) else {
        return JobRunOutcome::Skipped(format!("unknown job {name}"));
    };
    let lease = match app.admin().acquire_job_lease(name, every).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            tracing::debug!(job = name, "another process runs the job, or it is not due");
            return JobRunOutcome::NotDue;
        }
        Err(e) => {
            tracing::error!(job = name, error = %e, "could not take the job lease");
            return JobRunOutcome::Skipped(e.to_string());
        }
    };
    let ttl = app.config().job_lease_ttl;
    let renew = async {
        let mut held = lease.clone();
        loop {
            tokio::time::sleep((ttl / 3).max(Duration::from_millis(100))).await;
            match app.admin().renew_job_lease(&held).await {
                Ok(Some(l)) => held = l,
                Ok(None) => return,
                // A failed renewal is retried until the lease lapses.
                Err(e) if chrono::Utc::now() < held.expires_at => {
                    tracing::warn!(job = name, error = %e, "could not renew the job lease");
                }
                Err(_) => return,
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = renew => {
            tracing::error!(job = name, token = lease.token, "job lease lost: the job was stopped");
            return JobRunOutcome::LeaseLost;
        }
    };
    let outcome = match &result {
        Ok(summary) => summary.clone(),
        Err(e) => format!("failed: {e}"),
    };
    match app.admin().finish_job_lease(&lease, &outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = name,
            token = lease.token,
            "job lease lapsed before the job ended"
        ),
        Err(e) => {
            tracing::warn!(job = name, error = %e, "could not record the job's end (the lease lapses by itself)")
        }
    }
    match result {
        Ok(summary) => {
            tracing::info!(job = name, token = lease.token, %summary, "scheduled job done");
            JobRunOutcome::Ran(Ok(summary))
        }
        Err(e) => {
            tracing::error!(job = name, token = lease.token, error = %e, "scheduled job failed");
            JobRunOutcome::Ran(Err(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memora_core::domain::{ReviewLogEntry, ReviewRecord, ReviewSource};
    use memora_core::ids::{ReviewId, SeasonId, UserId};
    use std::sync::Mutex;

    /// On a runtime of one thread, work that waits for a message the
    /// runtime's other task sends completes only if it runs elsewhere:
    /// inline, it would hold the only thread and time out.
    #[tokio::test(flavor = "current_thread")]
    async fn cpu_work_runs_off_the_threads_that_serve_requests() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let work = TokioJobRuntime.run_cpu(Box::new(move || {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the runtime's other task ran while the work waited");
        }));
        let other_task = async {
            tokio::task::yield_now().await;
            tx.send(()).expect("the work is waiting");
        };
        let (done, ()) = tokio::join!(work, other_task);
        done.expect("the work completed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_step_is_an_error_not_a_crash() {
        let r = TokioJobRuntime
            .run_cpu(Box::new(|| panic!("a fit that panics")))
            .await;
        assert!(matches!(r, Err(PortError::Internal(_))), "{r:?}");
    }

    /// Log lines written by the test's subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The demo, with its student's schedule cached and then `n` rows moved
    /// on in the store only (stale cache entries).
    async fn stale_demo(n: usize) -> Memora {
        let app = Memora::new(
            crate::backend::in_memory().ports,
            memora_core::services::Config::default(),
        );
        let demo = memora_core::demo::seed_demo(&app, "quiet-walrus-lantern-42")
            .await
            .expect("seed");
        let rows = app
            .ports()
            .trackers
            .all_trackers(&demo.student, &demo.season)
            .await
            .expect("rows");
        app.ports()
            .cache
            .load(&demo.student, &demo.season, &rows)
            .await
            .expect("load");
        let now = app.ports().clock.now();
        let records: Vec<ReviewRecord> = rows
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, r)| {
                let mut t = r.clone();
                t.state.last_review = Some(now);
                t.state.due = now + chrono::Duration::days(2);
                ReviewRecord {
                    log: ReviewLogEntry {
                        review_id: ReviewId::new(format!("jobs-stale-{i}")).expect("id"),
                        key: t.key.clone(),
                        source: ReviewSource::Review,
                        grade: memora_core::srs::Grade::Good,
                        is_correct: true,
                        duration_ms: 700,
                        attempts: 1,
                        reviewed_at: now,
                        elapsed_days: 1,
                        scheduler: t.state.kind,
                        state_after: t.state.clone(),
                    },
                    tracker: t,
                }
            })
            .collect();
        app.ports()
            .trackers
            .persist_batch(&records)
            .await
            .expect("persist");
        app
    }

    #[tokio::test]
    async fn scheduled_reconciliation_exports_the_alert_as_metric_and_log_event() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let _metrics = metrics::set_default_local_recorder(&recorder);
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || sink.clone())
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);
        let app = stale_demo(3).await;

        run_job(&app, "reconcile", Duration::ZERO).await;
        let page = recorder.handle().render();
        assert!(
            page.contains("memora_reconciliation_alerts_total 1"),
            "{page}"
        );
        assert!(
            page.contains("memora_reconciliation_runs_total 1"),
            "{page}"
        );
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf8");
        let alert: serde_json::Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["target"] == ALERT_TARGET)
            .unwrap_or_else(|| panic!("no alert event in:\n{text}"));
        assert_eq!(alert["level"], "WARN");
        assert_eq!(alert["fields"]["alert"], RECONCILIATION_ALERT);
        assert_eq!(alert["fields"]["trigger"], "schedule");
        assert_eq!(alert["fields"]["discrepancies"], 3);

        // Corrected: the next run raises nothing, the rate gauge drops to 0.
        run_job(&app, "reconcile", Duration::ZERO).await;
        let page = recorder.handle().render();
        assert!(
            page.contains("memora_reconciliation_alerts_total 1"),
            "{page}"
        );
        assert!(
            page.contains("memora_reconciliation_discrepancy_rate 0"),
            "{page}"
        );
        assert!(
            page.contains("memora_reconciliation_runs_total 2"),
            "{page}"
        );
    }

    #[tokio::test]
    async fn a_scheduled_job_runs_once_per_period_across_processes() {
        let backend = memora_core::memory::InMemoryBackend::new();
        let config = memora_core::services::Config::default();
        let a = Memora::new(backend.ports(), config.clone());
        let b = Memora::new(backend.ports(), config);
        assert_ne!(a.instance_id(), b.instance_id());
        let hour = Duration::from_secs(3600);
        let first = run_job(&a, "served_purge", hour).await;
        assert!(matches!(first, JobRunOutcome::Ran(Ok(_))), "{first:?}");
        // Finished, but ran less than a period ago: nobody runs it again.
        assert_eq!(
            run_job(&b, "served_purge", hour).await,
            JobRunOutcome::NotDue
        );
        assert_eq!(
            run_job(&a, "served_purge", hour).await,
            JobRunOutcome::NotDue
        );
        let runs = a
            .admin()
            .job_runs(&memora_core::domain::Actor::system(), "served_purge", 10)
            .await
            .expect("runs");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].holder, a.instance_id());
        assert!(
            runs[0]
                .outcome
                .as_deref()
                .is_some_and(|o| o.starts_with("purged"))
        );
        // With no interval, the other process may run it now.
        assert!(matches!(
            run_job(&b, "served_purge", Duration::ZERO).await,
            JobRunOutcome::Ran(Ok(_))
        ));
        assert_eq!(
            run_job(&b, "no_such_job", Duration::ZERO).await,
            JobRunOutcome::Skipped("unknown job no_such_job".into())
        );
    }

    #[test]
    fn job_periods_parse_and_reject_unknown_names() {
        let s = Schedule::default()
            .with_periods("served_purge=2, pending_batches=30")
            .expect("valid");
        assert_eq!(s.served_purge, Duration::from_secs(2));
        assert_eq!(s.pending_batches, Duration::from_secs(30));
        assert_eq!(s.reconcile, Schedule::default().reconcile);
        assert!(Schedule::default().with_periods("").is_ok());
        for bad in [
            "served_purge",
            "served_purge=0",
            "served_purge=x",
            "nightly=5",
        ] {
            assert!(Schedule::default().with_periods(bad).is_err(), "{bad}");
        }
        for name in JOB_NAMES {
            assert!(Schedule::default().period(name).is_some(), "{name}");
        }
    }

    #[tokio::test]
    async fn served_purge_deletes_expired_entries() {
        let app = Memora::new(
            crate::backend::in_memory().ports,
            memora_core::services::Config::default(),
        );
        let (u, s) = (
            UserId::new("purge-user").expect("user"),
            SeasonId::new("SEASON-2026").expect("season"),
        );
        let past = chrono::Utc::now() - chrono::Duration::hours(2);
        let served = app.ports().served.clone();
        let items = vec!["q:a".to_owned()];
        served
            .record_served(&u, &s, &items, past, past, past)
            .await
            .expect("record");
        run_job(&app, "served_purge", Duration::ZERO).await;
        // Looked up at the time it was still retained: purged all the same.
        let got = served.lookup(&u, &s, &items, past).await.expect("lookup");
        assert_eq!(got, vec![None]);
    }
}
