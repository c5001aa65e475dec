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
                        } else if !app.cache_health().is_degraded() {
                            tracing::warn!("cache probe failed: entering safe mode");
                            app.cache_health().mark_failed(chrono::Utc::now());
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
    use memora_core::ids::{SeasonId, UserId};

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
