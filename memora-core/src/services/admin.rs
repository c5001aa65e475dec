//! Administration (System Manager only): seasons, content import, cache
//! status, season cache rebuild, reconciliation, archival, retention and
//! deletion, the audit log reader — plus the scheduled jobs that run them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::lifecycle::{self, CacheOnlyAction, ReconcileAction};
use crate::ports::{
    ArchiveStore, AuditQuery, AuditRecord, AuditStore, AuthStore, CacheStats, ContentStore,
    DueCache, FsrsParamStore, JobLock, JobProgressStore, JobRuntime, PersistenceQueue, Ports,
    ReviewLogStore, SeasonScanStore, SeasonStore, TrackerStore,
};
use crate::srs::SchedulerKind;

use super::RECONCILIATION_SAMPLE_MIN;
use super::shared::{Profiles, Shared};

pub use super::content_import::{ChangeSet, ImportMode, ImportReport, ImportRequest};

/// Largest page of `get_audit_log`.
pub const MAX_AUDIT_PAGE: usize = 500;

pub use crate::ports::JobProgress;

/// A rebuild's progress as `get_rebuild_status` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildStatus {
    /// The stored progress.
    pub progress: JobProgress,
    /// `running`, but its runner has not written progress for
    /// `Config::rebuild_stale_after`: its process most likely died. Resume it
    /// with [`AdminService::resume_season_rebuild`].
    pub stale: bool,
}

impl RebuildStatus {
    /// `running`, `completed`, `failed` or `stale`.
    pub fn state(&self) -> &str {
        if self.stale {
            "stale"
        } else if self.progress.status.starts_with("failed") {
            "failed"
        } else {
            &self.progress.status
        }
    }

    /// Whether [`AdminService::resume_season_rebuild`] accepts the job.
    pub fn resumable(&self) -> bool {
        self.stale || self.progress.status.starts_with("failed")
    }
}

/// Fields of a new season.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonInput {
    /// Name.
    pub id: SeasonId,
    /// Title (defaults to the name).
    pub title: Option<String>,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
    /// Scheduler (default ladder).
    pub scheduler: Option<SchedulerKind>,
    /// FSRS desired retention (default 0.9).
    pub desired_retention: Option<f64>,
    /// Auto-archive after the end.
    pub auto_archive: bool,
}

/// `get_cache_status` output.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStatus {
    /// Cache statistics (`connected = false` when unreachable).
    pub stats: CacheStats,
    /// Safe mode active.
    pub is_safe_mode: bool,
    /// Persistence queue depth (None if unknown).
    pub queue_depth: Option<u64>,
    /// Dead-lettered persistence jobs (None if unknown).
    pub dead_letters: Option<u64>,
    /// How long the oldest acknowledged answer not yet in the database has
    /// waited (the persistence lag; zero when every answer is persisted,
    /// None if unknown). A dead-lettered job counts until it is replayed
    /// or discarded.
    pub persistence_lag: Option<std::time::Duration>,
}

/// `trigger_reconciliation` output.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileReport {
    /// Rows sampled.
    pub sample_size: u64,
    /// Mismatches found.
    pub discrepancies_found: u64,
    /// discrepancies / sampled.
    pub discrepancy_rate: f64,
    /// Cache entries corrected from the database.
    pub auto_corrected: u64,
    /// Cache entries left alone because they are newer than the database
    /// (write-behind lag, including cache-only entries whose write may still
    /// be pending). Not discrepancies.
    pub kept_newer_in_cache: u64,
    /// Sampled rows whose user has no cached schedule (nothing to compare).
    pub not_cached: u64,
    /// Entries sampled from the cache side (schedules picked in the cache,
    /// entries not already compared from the database sample); included in
    /// `sample_size`.
    pub cache_sampled: u64,
    /// Cache entries without a tracker in the database.
    pub cache_only_found: u64,
    /// Of those, stale ones removed from the cache (discrepancies).
    pub cache_only_removed: u64,
    /// Rate above the 0.1 % threshold.
    pub alert_triggered: bool,
}

/// `archive_season` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveOutcome {
    /// Rows archived.
    pub records_archived: u64,
    /// Cache keys removed.
    pub cache_keys_deleted: u64,
}

/// `get_archive_status` output.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveStatus {
    /// Season.
    pub season: Season,
    /// Counts.
    pub counts: ArchiveCounts,
}

/// Administration and the scheduled jobs. Every use case checks the
/// System Manager role of its caller; the jobs run as [`Actor::system`].
/// Holds the season and content stores (writes), the whole-season scan and
/// archive stores, the tracker store (reconciliation's cache-side lookups),
/// the due cache (rebuild, reconciliation, status), the queue (depth, dead
/// letters), the shared job-progress store, the job lock, and for the FSRS
/// re-fit the user list, the review log and the parameter store.
pub struct AdminService {
    pub(crate) shared: Arc<Shared>,
    pub(crate) profiles: Profiles,
    pub(crate) seasons: Arc<dyn SeasonStore>,
    pub(crate) content: Arc<dyn ContentStore>,
    pub(crate) scans: Arc<dyn SeasonScanStore>,
    pub(crate) archive: Arc<dyn ArchiveStore>,
    pub(crate) cache: Arc<dyn DueCache>,
    pub(crate) queue: Arc<dyn PersistenceQueue>,
    pub(crate) locks: Arc<dyn JobLock>,
    pub(crate) users: Arc<dyn AuthStore>,
    pub(crate) revlog: Arc<dyn ReviewLogStore>,
    pub(crate) fsrs: Arc<dyn FsrsParamStore>,
    pub(crate) trackers: Arc<dyn TrackerStore>,
    pub(crate) progress: Arc<dyn JobProgressStore>,
    /// Where jobs run CPU-heavy steps (FSRS fits) and how they pause.
    pub(crate) job_runtime: Arc<dyn JobRuntime>,
    /// This process's name as the owner of the jobs it runs.
    instance: String,
    pub(crate) audit_log: Arc<dyn AuditStore>,
}

impl AdminService {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>, profiles: Profiles) -> Self {
        AdminService {
            shared: Arc::clone(shared),
            profiles,
            seasons: Arc::clone(&ports.seasons),
            content: Arc::clone(&ports.content),
            scans: Arc::clone(&ports.scans),
            archive: Arc::clone(&ports.archive),
            cache: Arc::clone(&ports.cache),
            queue: Arc::clone(&ports.queue),
            locks: Arc::clone(&ports.locks),
            users: Arc::clone(&ports.auth),
            revlog: Arc::clone(&ports.revlog),
            fsrs: Arc::clone(&ports.fsrs),
            trackers: Arc::clone(&ports.trackers),
            progress: Arc::clone(&ports.job_progress),
            job_runtime: Arc::clone(&ports.job_runtime),
            // Unique per process (ids are only unique per generator, and
            // every process has its own): the secret is random.
            instance: format!(
                "proc-{}",
                shared.ids.secret().chars().take(16).collect::<String>()
            ),
            audit_log: Arc::clone(&ports.audit),
        }
    }

    /// Creates a season and its storage partition.
    pub async fn create_season(&self, actor: &Actor, input: &SeasonInput) -> CoreResult<Season> {
        actor.require_admin()?;
        if let Some(t) = &input.title {
            crate::text::check_text("title", t, 140)?;
        }
        let mut season = Season::new(
            input.id.clone(),
            input.title.clone().unwrap_or_else(|| input.id.to_string()),
            input.start_date,
            input.end_date,
        )?;
        if let Some(k) = input.scheduler {
            season.scheduler = k;
        }
        if let Some(r) = input.desired_retention {
            season.desired_retention = r;
        }
        season.auto_archive = input.auto_archive;
        season.validate()?;
        self.seasons.create_season(&season).await?;
        self.shared.seasons_changed().await;
        self.shared
            .audit(
                actor,
                "season.create",
                serde_json::json!({"season": season.id.as_str()}),
            )
            .await;
        Ok(season)
    }

    /// Makes a season the only active one.
    pub async fn activate_season(&self, actor: &Actor, id: &SeasonId) -> CoreResult<Season> {
        actor.require_admin()?;
        let season = self.fresh_season(id).await?;
        if season.archived {
            return Err(CoreError::invalid_state(format!("season {id} is archived")));
        }
        if season.auto_archive {
            let mut s = season.clone();
            s.auto_archive = false;
            self.seasons.update_season(&s).await?;
        }
        self.seasons.activate_season(id).await?;
        self.shared.seasons_changed().await;
        self.shared
            .audit(
                actor,
                "season.activate",
                serde_json::json!({"season": id.as_str()}),
            )
            .await;
        self.fresh_season(id).await
    }

    /// Changes a season's scheduler, retention, cache flag or auto-archive.
    pub async fn update_season_settings(
        &self,
        actor: &Actor,
        id: &SeasonId,
        scheduler: Option<SchedulerKind>,
        desired_retention: Option<f64>,
        enable_cache: Option<bool>,
        auto_archive: Option<bool>,
    ) -> CoreResult<Season> {
        actor.require_admin()?;
        let mut season = self.fresh_season(id).await?;
        if let Some(k) = scheduler {
            season.scheduler = k;
        }
        if let Some(r) = desired_retention {
            season.desired_retention = r;
        }
        if let Some(c) = enable_cache {
            season.enable_cache = c;
        }
        if let Some(a) = auto_archive {
            season.auto_archive = a;
        }
        season.validate()?;
        self.seasons.update_season(&season).await?;
        self.shared.seasons_changed().await;
        Ok(season)
    }

    async fn fresh_season(&self, id: &SeasonId) -> CoreResult<Season> {
        self.seasons
            .get_season(id)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("season {id} not found")))
    }

    /// All seasons (admin listing).
    pub async fn list_seasons(&self, actor: &Actor) -> CoreResult<Vec<Season>> {
        actor.require_admin()?;
        Ok(self.seasons.list_seasons().await?)
    }

    /// `get_audit_log`: audit events, newest first, filtered by action
    /// prefix, actor and time, a keyset page before `query.before`
    /// (`limit` 1–500).
    pub async fn get_audit_log(
        &self,
        actor: &Actor,
        query: &AuditQuery,
    ) -> CoreResult<Vec<AuditRecord>> {
        actor.require_admin()?;
        if !(1..=MAX_AUDIT_PAGE).contains(&query.limit) {
            return Err(CoreError::invalid(format!(
                "limit must be between 1 and {MAX_AUDIT_PAGE}"
            )));
        }
        if let Some(a) = &query.action {
            crate::text::check_text("action", a, 140)?;
        }
        if let (Some(since), Some(until)) = (query.since, query.until) {
            if until <= since {
                return Err(CoreError::invalid("until must be after since"));
            }
        }
        Ok(self.audit_log.query(query).await?)
    }

    /// `get_cache_status`.
    pub async fn get_cache_status(&self, actor: &Actor) -> CoreResult<CacheStatus> {
        actor.require_admin()?;
        let stats = match self.cache.stats().await {
            Ok(s) => {
                self.shared.health.mark_ok();
                s
            }
            Err(_) => {
                self.shared.health.mark_failed(self.shared.now());
                CacheStats::default()
            }
        };
        Ok(CacheStatus {
            stats,
            is_safe_mode: self.shared.health.is_degraded(),
            queue_depth: self.queue.depth().await.ok(),
            dead_letters: self.queue.dead_letter_count().await.ok(),
            persistence_lag: self.queue.oldest_unpersisted().await.ok().map(|oldest| {
                oldest
                    .and_then(|t| (self.shared.now() - t).to_std().ok())
                    .unwrap_or_default()
            }),
        })
    }

    /// `rebuild_season_cache`, step 1: registers the job in the shared
    /// [`JobProgressStore`] (owned by this process) and returns its id and
    /// the number of rows to load. Run it with
    /// [`AdminService::run_season_rebuild`].
    pub async fn start_season_rebuild(
        &self,
        actor: &Actor,
        season: &SeasonId,
    ) -> CoreResult<JobProgress> {
        actor.require_admin()?;
        let s = self.fresh_season(season).await?;
        if s.archived {
            return Err(CoreError::invalid_state(format!(
                "season {season} is archived"
            )));
        }
        let estimated = self.scans.count_season(season).await?;
        let now = self.shared.now();
        let progress = JobProgress {
            id: JobId::new(self.shared.ids.next_id("rebuild"))?,
            season: season.clone(),
            estimated,
            processed: 0,
            users: 0,
            status: "running".to_owned(),
            resume_after: None,
            owner: self.instance.clone(),
            started_at: now,
            updated_at: now,
        };
        if !self.progress.save_progress(&progress).await? {
            return Err(CoreError::Conflict(format!(
                "job {} already exists",
                progress.id
            )));
        }
        self.shared
            .audit(
                actor,
                "cache.rebuild",
                serde_json::json!({"season": season.as_str(), "job": progress.id.as_str()}),
            )
            .await;
        Ok(progress)
    }

    /// `get_rebuild_status`: a rebuild's progress as stored by whichever
    /// process runs it, and whether it is stale (its runner stopped writing
    /// progress while `running`).
    pub async fn rebuild_status(&self, actor: &Actor, job: &JobId) -> CoreResult<RebuildStatus> {
        actor.require_admin()?;
        let progress = self
            .progress
            .get_progress(job)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("job {job} not found")))?;
        Ok(self.status_of(progress))
    }

    fn status_of(&self, progress: JobProgress) -> RebuildStatus {
        let stale_after =
            TimeDelta::from_std(self.shared.config.rebuild_stale_after).unwrap_or(TimeDelta::MAX);
        let stale = progress.status == "running"
            && self.shared.now().signed_duration_since(progress.updated_at) > stale_after;
        RebuildStatus { progress, stale }
    }

    /// Takes over a stale or failed rebuild (from any process): the job
    /// becomes this process's, `running`, and continues after its
    /// `resume_after` key when run with [`AdminService::run_season_rebuild`].
    /// A job that is still making progress is a conflict; a completed one is
    /// an invalid state. Of two processes resuming the same job, one wins.
    pub async fn resume_season_rebuild(
        &self,
        actor: &Actor,
        job: &JobId,
    ) -> CoreResult<JobProgress> {
        let status = self.rebuild_status(actor, job).await?;
        if status.progress.status == "completed" {
            return Err(CoreError::invalid_state(format!(
                "job {job} is completed; start a new rebuild instead"
            )));
        }
        if !status.resumable() {
            return Err(CoreError::Conflict(format!(
                "job {job} is still running (last progress at {}); it can be resumed once stale",
                status.progress.updated_at
            )));
        }
        let claimed = self
            .progress
            .claim_progress(
                job,
                status.progress.updated_at,
                &self.instance,
                self.shared.now(),
            )
            .await?
            .ok_or_else(|| {
                CoreError::Conflict(format!("job {job} was resumed by another process"))
            })?;
        self.shared
            .audit(
                actor,
                "cache.rebuild.resume",
                serde_json::json!({
                    "season": claimed.season.as_str(),
                    "job": job.as_str(),
                    "resume_after": claimed.resume_after.as_ref().map(|k| k.user.as_str()),
                }),
            )
            .await;
        Ok(claimed)
    }

    /// `rebuild_season_cache`, step 2: keyset-scans the season in pages of
    /// `Config::rebuild_batch_size` rows and loads each user's complete
    /// schedule, writing progress to the shared store after every page.
    ///
    /// The users a page completes are loaded `Config::rebuild_concurrency`
    /// at a time while the next page is read, so neither the store's scan
    /// nor the cache's round trips wait for the other. Progress only ever
    /// covers the users loaded before the first failure, in key order.
    ///
    /// Resumable: it starts after the job's `resume_after` key. Runs only a
    /// job this process owns (registered by
    /// [`AdminService::start_season_rebuild`] or taken over by
    /// [`AdminService::resume_season_rebuild`], which authorised it); stops
    /// with a conflict if another process takes the job over meanwhile.
    pub async fn run_season_rebuild(&self, job: &JobId) -> CoreResult<JobProgress> {
        let mut p = self
            .progress
            .get_progress(job)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("job {job} not found")))?;
        if p.owner != self.instance {
            return Err(CoreError::Conflict(format!(
                "job {job} belongs to another process; resume it first"
            )));
        }
        p.status = "running".to_owned();
        let batch = self.shared.config.rebuild_batch_size.clamp(1, 100_000);
        let season = p.season.clone();
        let mut after = p.resume_after.clone();
        // Rows of the last user of a page: it may go on in the next one.
        let mut current: Vec<MemoryTracker> = Vec::new();
        let result: CoreResult<()> = async {
            let mut page = self
                .scans
                .scan_season(&season, after.as_ref(), batch)
                .await?;
            loop {
                let done = page.len() < batch;
                let mut users: Vec<Vec<MemoryTracker>> = Vec::new();
                for row in page {
                    if current.first().is_some_and(|r| r.key.user != row.key.user) {
                        users.push(std::mem::take(&mut current));
                    }
                    after = Some(row.key.clone());
                    current.push(row);
                }
                if done {
                    users.push(std::mem::take(&mut current));
                    self.load_users(users, &mut p).await?;
                    return self.save_own_progress(&mut p).await;
                }
                let (loaded, next) = futures::join!(
                    self.load_users(users, &mut p),
                    self.scans.scan_season(&season, after.as_ref(), batch)
                );
                loaded?;
                self.save_own_progress(&mut p).await?;
                page = next?;
            }
        }
        .await;
        let taken_over = matches!(result, Err(CoreError::Conflict(_)));
        p.status = match &result {
            Ok(()) => "completed".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        if !taken_over {
            // The final state must be recorded: a job left `running` would
            // only be reported once stale. The job's own error comes first.
            let saved = self.save_own_progress(&mut p).await;
            if result.is_ok() {
                saved?;
            }
        }
        result.map(|()| p)
    }

    /// Writes progress as the job's owner (heartbeat included); a conflict
    /// if another process took the job over.
    async fn save_own_progress(&self, p: &mut JobProgress) -> CoreResult<()> {
        p.updated_at = self.shared.now();
        if self.progress.save_progress(p).await? {
            Ok(())
        } else {
            Err(CoreError::Conflict(format!(
                "job {} was taken over by another process",
                p.id
            )))
        }
    }

    /// Loads complete schedules (one user's rows each, in key order),
    /// `Config::rebuild_concurrency` at a time. `p` counts the users loaded
    /// in order up to the first failure, whose error is returned; users
    /// after it that were loaded anyway are loaded again on resumption.
    async fn load_users(
        &self,
        users: Vec<Vec<MemoryTracker>>,
        p: &mut JobProgress,
    ) -> CoreResult<()> {
        use futures::StreamExt;
        let season = &p.season;
        let cache = &self.cache;
        let mut loads = futures::stream::iter(users.into_iter().filter(|r| !r.is_empty()))
            .map(|rows| async move {
                let res = match rows.first() {
                    Some(first) => cache.load(&first.key.user, season, &rows).await,
                    None => Ok(()),
                };
                (rows, res)
            })
            .buffered(self.shared.config.rebuild_concurrency.clamp(1, 256));
        let mut done: Vec<(u64, Option<TrackerKey>)> = Vec::new();
        let mut failed = None;
        while let Some((rows, res)) = loads.next().await {
            if let Err(e) = res {
                failed = Some(CoreError::Unavailable(format!("cache: {e}")));
                break;
            }
            done.push((rows.len() as u64, rows.last().map(|r| r.key.clone())));
        }
        drop(loads);
        for (n, last) in done {
            p.processed += n;
            p.users += 1;
            p.resume_after = last;
        }
        failed.map_or(Ok(()), Err)
    }

    /// `trigger_reconciliation`: compares the cache with the database on a
    /// sample, from both sides, and corrects the cache.
    ///
    /// * Database side: up to `sample_size` tracker rows (of one season or
    ///   split over every live cached season) are compared with their cache
    ///   entries ([`lifecycle::reconcile_entry`]): stale or missing entries of
    ///   a present schedule are corrected and counted; entries newer than the
    ///   row (write-behind lag) are kept and counted in
    ///   `kept_newer_in_cache` only.
    /// * Cache side: schedules picked in the cache, and entries of each not
    ///   already compared, are looked up in the database. Entries with a row
    ///   are compared as above; entries without one are cache-only: kept if
    ///   their write may still be pending, removed otherwise
    ///   ([`lifecycle::cache_only_action`]).
    ///
    /// The rate is discrepancies over every entry compared; above 0.1 % the
    /// report's `alert_triggered` is set (the caller exports it as a metric
    /// and a log event). `sample_size` defaults to
    /// `Config::reconciliation_sample_default` and must lie in
    /// `RECONCILIATION_SAMPLE_MIN..=Config::reconciliation_sample_max`.
    pub async fn trigger_reconciliation(
        &self,
        actor: &Actor,
        sample_size: Option<u64>,
        season: Option<&SeasonId>,
    ) -> CoreResult<ReconcileReport> {
        actor.require_admin()?;
        let sample_size = sample_size.unwrap_or(self.shared.config.reconciliation_sample_default);
        let max = self.shared.config.reconciliation_sample_max;
        if !(RECONCILIATION_SAMPLE_MIN..=max).contains(&sample_size) {
            return Err(CoreError::invalid(format!(
                "sample_size must be between {RECONCILIATION_SAMPLE_MIN} and {max} (got {sample_size})"
            )));
        }
        let seasons: Vec<Season> = match season {
            Some(id) => vec![self.fresh_season(id).await?],
            None => self
                .seasons
                .list_seasons()
                .await?
                .into_iter()
                .filter(|s| !s.archived && s.enable_cache)
                .collect(),
        };
        let mut report = ReconcileReport {
            sample_size: 0,
            discrepancies_found: 0,
            discrepancy_rate: 0.0,
            auto_corrected: 0,
            kept_newer_in_cache: 0,
            not_cached: 0,
            cache_sampled: 0,
            cache_only_found: 0,
            cache_only_removed: 0,
            alert_triggered: false,
        };
        let now = self.shared.now();
        // Where unknown (queue unreachable), every cache-only entry is
        // treated as possibly pending: nothing is removed on a guess.
        let pending_since = match self.queue.oldest_unpersisted().await {
            Ok(t) => t,
            Err(_) => Some(DateTime::<Utc>::MIN_UTC),
        };
        let ctx = ReconcileCtx {
            now,
            pending_since,
            grace: TimeDelta::from_std(self.shared.config.reconcile_pending_grace)
                .unwrap_or(TimeDelta::MAX),
        };
        let per_season =
            usize::try_from(sample_size / seasons.len().max(1) as u64).unwrap_or(usize::MAX);
        for s in &seasons {
            let seed = crate::srs::stable_hash(&[s.id.as_str()], now.timestamp() as u64);
            let seen = self
                .reconcile_db_side(&s.id, per_season, seed, &mut report)
                .await?;
            self.reconcile_cache_side(&s.id, per_season, seed, &seen, &ctx, &mut report)
                .await?;
        }
        let sampled = usize::try_from(report.sample_size).unwrap_or(usize::MAX);
        let found = usize::try_from(report.discrepancies_found).unwrap_or(usize::MAX);
        report.discrepancy_rate = if sampled == 0 {
            0.0
        } else {
            found as f64 / sampled as f64
        };
        report.alert_triggered = lifecycle::discrepancy_alert(found, sampled);
        self.shared
            .audit(
                actor,
                "cache.reconcile",
                serde_json::json!({
                    "sampled": report.sample_size,
                    "discrepancies": report.discrepancies_found,
                    "cache_only_removed": report.cache_only_removed,
                    "kept_newer_in_cache": report.kept_newer_in_cache,
                    "alert": report.alert_triggered,
                }),
            )
            .await;
        Ok(report)
    }

    /// Database side of one season; returns the (user, question) pairs it
    /// compared, so the cache side does not count them twice.
    async fn reconcile_db_side(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
        report: &mut ReconcileReport,
    ) -> CoreResult<BTreeSet<(UserId, QuestionId)>> {
        let now = self.shared.now();
        let rows = self.scans.sample_trackers(season, n, seed).await?;
        let mut by_user: BTreeMap<UserId, Vec<MemoryTracker>> = BTreeMap::new();
        for r in rows {
            by_user.entry(r.key.user.clone()).or_default().push(r);
        }
        let mut seen = BTreeSet::new();
        for (user, rows) in by_user {
            report.sample_size += rows.len() as u64;
            if self
                .cache
                .user_stats(&user, season, now)
                .await
                .map_err(cache_err)?
                .is_none()
            {
                report.not_cached += rows.len() as u64;
                continue;
            }
            let qs: Vec<QuestionId> = rows.iter().map(|r| r.key.question.clone()).collect();
            let cached = self
                .cache
                .states(&user, season, &qs)
                .await
                .map_err(cache_err)?;
            let pairs: Vec<(MemoryTracker, Option<MemoryTracker>)> =
                rows.into_iter().zip(cached).collect();
            seen.extend(
                pairs
                    .iter()
                    .map(|(r, _)| (user.clone(), r.key.question.clone())),
            );
            self.compare(&user, season, &pairs, report).await?;
        }
        Ok(seen)
    }

    /// Compares database rows with their cache entries (of a present
    /// schedule), corrects stale entries, counts.
    async fn compare(
        &self,
        user: &UserId,
        season: &SeasonId,
        pairs: &[(MemoryTracker, Option<MemoryTracker>)],
        report: &mut ReconcileReport,
    ) -> CoreResult<()> {
        let mut fixes = Vec::new();
        for (row, c) in pairs {
            let action = lifecycle::reconcile_entry(
                c.as_ref().map(|c| c.state.due.timestamp()),
                Some(row.state.due),
                row.state.last_review.unwrap_or(row.state.due),
                c.as_ref().and_then(|c| c.state.last_review),
            );
            if action.is_discrepancy() {
                report.discrepancies_found += 1;
            }
            match action {
                ReconcileAction::InSync => {}
                ReconcileAction::KeepCacheNewer => report.kept_newer_in_cache += 1,
                ReconcileAction::AddToCache(_) | ReconcileAction::UpdateCache(_) => {
                    fixes.push(row.clone());
                }
                // The row has a due date, so this cannot happen here;
                // nothing to correct from a row that has none.
                ReconcileAction::RemoveFromCache => {}
            }
        }
        if !fixes.is_empty() {
            self.cache
                .put(user, season, &fixes)
                .await
                .map_err(cache_err)?;
            report.auto_corrected += fixes.len() as u64;
        }
        Ok(())
    }

    /// Cache side of one season: about `n` entries, spread over schedules
    /// picked in the cache (so learners the database sample missed, and
    /// entries the database does not have, are seen too).
    async fn reconcile_cache_side(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
        seen: &BTreeSet<(UserId, QuestionId)>,
        ctx: &ReconcileCtx,
        report: &mut ReconcileReport,
    ) -> CoreResult<()> {
        let users = self
            .cache
            .sample_schedules(season, n.div_ceil(CACHE_ENTRIES_PER_SCHEDULE).max(1), seed)
            .await
            .map_err(cache_err)?;
        if users.is_empty() {
            return Ok(());
        }
        let per_user = (n / users.len()).max(CACHE_ENTRIES_PER_SCHEDULE);
        for user in users {
            let entries: Vec<MemoryTracker> = self
                .cache
                .sample_entries(&user, season, per_user)
                .await
                .map_err(cache_err)?
                .into_iter()
                .filter(|e| !seen.contains(&(user.clone(), e.key.question.clone())))
                .collect();
            if entries.is_empty() {
                continue;
            }
            report.cache_sampled += entries.len() as u64;
            report.sample_size += entries.len() as u64;
            let qs: Vec<QuestionId> = entries.iter().map(|e| e.key.question.clone()).collect();
            let mut rows: BTreeMap<QuestionId, MemoryTracker> = self
                .trackers
                .get_trackers(&user, season, &qs)
                .await?
                .into_iter()
                .map(|r| (r.key.question.clone(), r))
                .collect();
            let mut pairs = Vec::new();
            let mut stale = Vec::new();
            for e in entries {
                match rows.remove(&e.key.question) {
                    Some(row) => pairs.push((row, Some(e))),
                    None => {
                        report.cache_only_found += 1;
                        match lifecycle::cache_only_action(
                            e.state.last_review,
                            ctx.pending_since,
                            ctx.now,
                            ctx.grace,
                        ) {
                            CacheOnlyAction::KeepPending => report.kept_newer_in_cache += 1,
                            CacheOnlyAction::RemoveStale => stale.push(e.key.question),
                        }
                    }
                }
            }
            self.compare(&user, season, &pairs, report).await?;
            if !stale.is_empty() {
                self.cache
                    .remove(&user, season, &stale)
                    .await
                    .map_err(cache_err)?;
                report.discrepancies_found += stale.len() as u64;
                report.cache_only_removed += stale.len() as u64;
            }
        }
        Ok(())
    }

    /// `archive_season`: moves a finished season's rows to the archive
    /// atomically and drops its cache. Needs `confirm = true`; an active
    /// season is refused.
    pub async fn archive_season(
        &self,
        actor: &Actor,
        season: &SeasonId,
        confirm: bool,
    ) -> CoreResult<ArchiveOutcome> {
        actor.require_admin()?;
        if !confirm {
            return Err(CoreError::invalid(
                "Confirmation required: pass confirm=true to archive a season",
            ));
        }
        let mut s = self.fresh_season(season).await?;
        if s.is_active {
            return Err(CoreError::invalid_state(format!(
                "season {season} is active; deactivate it (activate another season) first"
            )));
        }
        let records = self
            .archive
            .archive_season(season, self.shared.now())
            .await?;
        let keys = match self.cache.clear_season(season).await {
            Ok(n) => n,
            Err(_) => {
                self.shared.health.mark_failed(self.shared.now());
                0
            }
        };
        s.archived = true;
        s.auto_archive = false;
        self.seasons.update_season(&s).await?;
        self.shared.seasons_changed().await;
        self.shared.audit(
            actor,
            "season.archive",
            serde_json::json!({"season": season.as_str(), "records": records, "cache_keys": keys}),
        )
        .await;
        Ok(ArchiveOutcome {
            records_archived: records,
            cache_keys_deleted: keys,
        })
    }

    /// `get_archive_status`.
    pub async fn get_archive_status(
        &self,
        actor: &Actor,
        season: &SeasonId,
    ) -> CoreResult<ArchiveStatus> {
        actor.require_admin()?;
        let s = self.fresh_season(season).await?;
        Ok(ArchiveStatus {
            counts: self.archive.archive_counts(season).await?,
            season: s,
        })
    }

    /// `delete_eligible_archived_records`: deletes archived rows flagged by
    /// the retention job. Needs `confirm = true`.
    pub async fn delete_eligible_archived_records(
        &self,
        actor: &Actor,
        season: Option<&SeasonId>,
        confirm: bool,
    ) -> CoreResult<u64> {
        actor.require_admin()?;
        if !confirm {
            return Err(CoreError::invalid(
                "Confirmation required: pass confirm=true to delete archived records",
            ));
        }
        if let Some(s) = season {
            self.fresh_season(s).await?;
        }
        let n = self.archive.delete_flagged(season).await?;
        self.shared
            .audit(
                actor,
                "archive.delete",
                serde_json::json!({"season": season.map(|s| s.as_str()), "deleted": n}),
            )
            .await;
        Ok(n)
    }

    /// Weekly job: flags archived rows older than the retention period (as
    /// the system caller).
    pub async fn run_retention_flagging(&self) -> CoreResult<u64> {
        let cutoff = lifecycle::retention_cutoff(self.shared.now());
        let n = self.archive.flag_archived_before(cutoff).await?;
        self.shared
            .audit(
                &Actor::system(),
                "archive.flag",
                serde_json::json!({"flagged": n}),
            )
            .await;
        Ok(n)
    }

    /// Daily job: archives every season eligible for auto-archive (as the
    /// system caller). Returns
    /// (archived seasons, failed seasons with reasons).
    pub async fn run_auto_archive(&self) -> CoreResult<(Vec<SeasonId>, Vec<(SeasonId, String)>)> {
        let today = self.shared.now().date_naive();
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for s in self.seasons.list_seasons().await? {
            if s.archived
                || !lifecycle::archive_eligible(
                    s.is_active,
                    s.auto_archive,
                    Some(s.end_date),
                    today,
                )
            {
                continue;
            }
            match self.archive_season(&Actor::system(), &s.id, true).await {
                Ok(_) => ok.push(s.id),
                Err(e) => failed.push((s.id, e.to_string())),
            }
        }
        Ok((ok, failed))
    }
}

use std::sync::Arc;

/// Entries the cache side of reconciliation reads per schedule at least
/// (one round trip each), so a sample reaches many learners.
const CACHE_ENTRIES_PER_SCHEDULE: usize = 20;

/// What reconciliation needs to judge cache-only entries.
struct ReconcileCtx {
    now: DateTime<Utc>,
    /// When the oldest unpersisted queue job was enqueued.
    pending_since: Option<DateTime<Utc>>,
    grace: TimeDelta,
}

fn cache_err(e: crate::error::PortError) -> CoreError {
    CoreError::Unavailable(format!("cache: {e}"))
}

/// Merges a bundle into a catalog: entities with the same id are replaced,
/// new ones appended (the import's write, see `services::content_import`).
pub fn merge_catalog(mut base: Catalog, bundle: Catalog) -> Catalog {
    fn merge<T, K: PartialEq>(base: &mut Vec<T>, new: Vec<T>, key: impl Fn(&T) -> &K) {
        for item in new {
            match base.iter().position(|b| key(b) == key(&item)) {
                Some(i) => base[i] = item,
                None => base.push(item),
            }
        }
    }
    merge(&mut base.subjects, bundle.subjects, |x| &x.id);
    merge(&mut base.tracks, bundle.tracks, |x| &x.id);
    merge(&mut base.units, bundle.units, |x| &x.id);
    merge(&mut base.topics, bundle.topics, |x| &x.id);
    merge(&mut base.lessons, bundle.lessons, |x| &x.id);
    merge(&mut base.grades, bundle.grades, |x| &x.id);
    merge(&mut base.streams, bundle.streams, |x| &x.id);
    merge(&mut base.plans, bundle.plans, |x| &x.id);
    base
}

/// Content text may be multi-line but never carries NUL or other control
/// characters (PostgreSQL cannot store NUL; the in-memory store must refuse
/// what PostgreSQL refuses).
pub(crate) fn check_bundle_text(bundle: &Catalog) -> CoreResult<()> {
    let json = serde_json::to_value(bundle)
        .map_err(|e| CoreError::invalid(format!("content bundle: {e}")))?;
    fn walk(v: &serde_json::Value, path: &mut String) -> CoreResult<()> {
        match v {
            serde_json::Value::String(s) => crate::text::check_text_with(path, s, usize::MAX, true),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    crate::text::check_text("content bundle key", k, 1024)?;
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(&json, &mut "bundle".to_owned())
}
