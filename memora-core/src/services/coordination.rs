//! Coherence across server processes: applying the invalidations other
//! processes published, and the leases under which scheduled jobs run.
//!
//! Every process caches the content catalog, the season list and verified
//! credentials. A process that changes one of them publishes an
//! [`Invalidation`] through the [`Coordination`](crate::ports::Coordination)
//! port (PostgreSQL in production); every process polls the log with
//! [`Memora::sync_invalidations`] (the server does it every 250 ms) and
//! drops what it cached. So a logout, a password change, a content import
//! or a season change reaches every process within one poll interval plus
//! one query. If publishing fails, the caches still converge by their own
//! bounds: credentials after `AUTH_CACHE_TTL_SECS`, seasons after
//! `Config::season_cache_ttl`, the catalog at the next catalog-version
//! check (once a minute).

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::domain::Actor;
use crate::error::CoreResult;
use crate::ports::{Invalidation, JobLease, JobRun};

use super::Memora;
use super::admin::AdminService;

/// How often the catalog version is compared even without invalidations
/// (the safety net for a lost publication).
const CATALOG_VERSION_CHECK: Duration = Duration::seconds(60);

/// The poller's position in the invalidation log.
#[derive(Default)]
pub(crate) struct SyncState {
    cursor: Option<crate::ports::InvalidationCursor>,
    /// Sequence numbers of the last read (the log may deliver recent
    /// entries again; they are applied once).
    seen: HashSet<u64>,
    catalog_version: Option<u64>,
    version_checked_at: Option<DateTime<Utc>>,
}

/// What one [`Memora::sync_invalidations`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReport {
    /// Invalidations applied.
    pub applied: usize,
    /// The catalog was reloaded.
    pub catalog_reloaded: bool,
}

impl Memora {
    /// Reads the invalidations published by other processes since the last
    /// call and drops what they name from this process's caches. The first
    /// call only takes the log's position and forgets every cache (anything
    /// loaded before it may predate a change it will not see).
    pub async fn sync_invalidations(&self) -> CoreResult<SyncReport> {
        let shared = &self.shared;
        let cursor = self.sync.lock().map(|s| s.cursor).unwrap_or(None);
        let batch = shared.coordination.invalidations_since(cursor).await?;
        let mut fresh = Vec::new();
        if let Ok(mut state) = self.sync.lock() {
            for (seq, what) in &batch.entries {
                if !state.seen.contains(seq) {
                    fresh.push(what.clone());
                }
            }
            state.seen = batch.entries.iter().map(|(seq, _)| *seq).collect();
            state.cursor = Some(batch.cursor);
        }
        let mut report = SyncReport::default();
        let mut reload = false;
        if cursor.is_none() {
            shared.invalidate_seasons();
            self.auth.forget_all();
            reload = true;
        }
        for what in &fresh {
            match what {
                Invalidation::Catalog => reload = true,
                Invalidation::Seasons => shared.invalidate_seasons(),
                Invalidation::Session(_) | Invalidation::User(_) => self.auth.forget(what),
            }
            report.applied += 1;
        }
        let now = shared.now();
        let check_version = self
            .sync
            .lock()
            .map(|s| {
                s.version_checked_at
                    .is_none_or(|t| now - t >= CATALOG_VERSION_CHECK)
            })
            .unwrap_or(false);
        // The version check is a safety net: if it fails, what the log
        // said is still applied below, and the check is tried next time.
        let version = if check_version {
            self.ports.content.catalog_version().await.ok()
        } else {
            None
        };
        if let (Some(version), Ok(mut state)) = (version, self.sync.lock()) {
            if state.catalog_version.is_some_and(|v| v != version) {
                reload = true;
            }
            state.catalog_version = Some(version);
            state.version_checked_at = Some(now);
        }
        if reload {
            // A failed reload leaves the index unloaded: the next request
            // loads it.
            if shared.reload_catalog().await.is_err() {
                shared.drop_catalog();
            }
            report.catalog_reloaded = true;
        }
        Ok(report)
    }

    /// Drops from the cache the schedules that missed writes while it was
    /// unreachable (see `ReviewService::drain_stale_schedules`).
    pub async fn drain_stale_schedules(&self) -> CoreResult<usize> {
        self.reviews.drain_stale_schedules().await
    }

    /// This process's name in job leases and runs.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }

    /// Invalidations this process could not publish.
    pub fn publish_failures(&self) -> u64 {
        self.shared
            .publish_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Deletes invalidation-log entries older than an hour.
    pub async fn prune_invalidations(&self) -> CoreResult<u64> {
        let before = self.shared.now() - Duration::hours(1);
        Ok(self.ports.coordination.prune_invalidations(before).await?)
    }
}

impl AdminService {
    /// Takes the lease of scheduled job `job` for this process if no other
    /// process holds it and it last started at least `every` ago. The lease
    /// lasts `Config::job_lease_ttl`; renew it while the job runs.
    pub async fn acquire_job_lease(
        &self,
        job: &str,
        every: std::time::Duration,
    ) -> CoreResult<Option<JobLease>> {
        let now = self.shared.now();
        Ok(self
            .locks
            .try_acquire(
                job,
                &self.shared.instance_id,
                now,
                self.shared.config.job_lease_ttl,
                every,
            )
            .await?)
    }

    /// Extends a held lease; `None` if it was lost (the job must stop).
    pub async fn renew_job_lease(&self, lease: &JobLease) -> CoreResult<Option<JobLease>> {
        let now = self.shared.now();
        Ok(self
            .locks
            .renew(lease, now, self.shared.config.job_lease_ttl)
            .await?)
    }

    /// Ends a held lease and records the run's outcome; `false` if the
    /// lease had been lost (nothing recorded).
    pub async fn finish_job_lease(&self, lease: &JobLease, outcome: &str) -> CoreResult<bool> {
        let now = self.shared.now();
        Ok(self.locks.release(lease, now, outcome).await?)
    }

    /// The most recent runs of a scheduled job, newest first.
    pub async fn job_runs(
        &self,
        actor: &Actor,
        job: &str,
        limit: usize,
    ) -> CoreResult<Vec<JobRun>> {
        actor.require_admin()?;
        Ok(self.locks.runs(job, limit.clamp(1, 1000)).await?)
    }
}

/// Held by [`Memora`].
pub(crate) type Sync = Mutex<SyncState>;
