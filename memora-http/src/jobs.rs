//! Background work in the server process: the cache health probe, the
//! persistence workers (Redis mode) and the scheduled jobs (daily
//! reconciliation, daily auto-archive, weekly retention flagging, nightly
//! FSRS re-fit, hourly purge of expired served-ledger entries, the per-minute
//! hand-over of interrupted lesson plays' tracker batches), each guarded
//! by the store's leader lock so only one process runs it at a time.

use std::sync::Arc;
use std::time::Duration;

use memora_core::Memora;
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
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        let ok = tokio::time::timeout(Duration::from_millis(500), app.ports().cache.ping())
                            .await
                            .map(|r| r.is_ok())
                            .unwrap_or(false);
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
    let jobs: [(&'static str, Duration); 6] = [
        ("reconcile", schedule.reconcile),
        ("auto_archive", schedule.auto_archive),
        ("retention", schedule.retention),
        ("fsrs_refit", schedule.refit),
        ("served_purge", schedule.served_purge),
        ("pending_batches", schedule.pending_batches),
    ];
    for (name, period) in jobs {
        let app = Arc::clone(&app);
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await; // not at start-up
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => run_job(&app, name).await,
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

/// Runs one scheduled job under the leader lock.
pub async fn run_job(app: &Memora, name: &str) {
    let result = match name {
        "reconcile" => {
            app.admin()
                .run_exclusive(name, || async {
                    app.admin()
                        .trigger_reconciliation(&memora_core::domain::Actor::system(), None, None)
                        .await
                        .map(|r| {
                            record_reconciliation(&r, "schedule");
                            format!(
                                "sampled {} discrepancies {}",
                                r.sample_size, r.discrepancies_found
                            )
                        })
                })
                .await
        }
        "auto_archive" => {
            app.admin()
                .run_exclusive(name, || async {
                    app.admin()
                        .run_auto_archive()
                        .await
                        .map(|(ok, failed)| format!("archived {ok:?} failed {failed:?}"))
                })
                .await
        }
        "retention" => {
            app.admin()
                .run_exclusive(name, || async {
                    app.admin()
                        .run_retention_flagging()
                        .await
                        .map(|n| format!("flagged {n}"))
                })
                .await
        }
        "fsrs_refit" => {
            app.admin()
                .run_exclusive(name, || async {
                    app.admin()
                        .run_fsrs_refit_job(100)
                        .await
                        .map(|n| format!("refitted {n}"))
                })
                .await
        }
        "served_purge" => {
            // The store ledger does not expire rows by itself (the Redis
            // one does); entries past retain_until are deleted in batches.
            app.admin()
                .run_exclusive(name, || async {
                    let now = app.ports().clock.now();
                    app.ports()
                        .served
                        .purge_expired(now)
                        .await
                        .map(|n| format!("purged {n} served entries"))
                        .map_err(memora_core::CoreError::from)
                })
                .await
        }
        "pending_batches" => {
            // A play's batch is handed over within its own request; one
            // still pending after a minute was interrupted.
            app.admin()
                .run_exclusive(name, || async {
                    app.reviews()
                        .resume_pending_batches(chrono::Duration::seconds(60), 500)
                        .await
                        .map(|n| format!("handed over {n} pending tracker batches"))
                })
                .await
        }
        _ => return,
    };
    match result {
        Ok(Some(summary)) => tracing::info!(job = name, %summary, "scheduled job done"),
        Ok(None) => tracing::debug!(job = name, "another process holds the job lock"),
        Err(e) => tracing::error!(job = name, error = %e, "scheduled job failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memora_core::domain::{ReviewLogEntry, ReviewRecord, ReviewSource};
    use memora_core::ids::{ReviewId, SeasonId, UserId};
    use std::sync::Mutex;

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

        run_job(&app, "reconcile").await;
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
        run_job(&app, "reconcile").await;
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
        run_job(&app, "served_purge").await;
        // Looked up at the time it was still retained: purged all the same.
        let got = served.lookup(&u, &s, &items, past).await.expect("lookup");
        assert_eq!(got, vec![None]);
    }
}
