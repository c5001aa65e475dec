//! Institutions in the server: how each one's [`Memora`] is opened, and
//! the periodic refresh that keeps every process's set of institutions (and
//! their suspensions) in step with the platform directory.
//!
//! An institution other than the home one gets the same servers as the home
//! institution but nothing shared with it: its own PostgreSQL schema (with
//! every migration), its own Redis key namespace (so its own queue, cache
//! and leaderboards), its own pool and its own background jobs. See
//! `docs/ARCHITECTURE.md`, "Institutions".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::PortResult;
use memora_core::domain::Institution;
use memora_core::ids::{SeasonId, UserId};
use memora_core::ports::{
    Coordination, Invalidation, InvalidationBatch, InvalidationCursor, StaleMark,
};
use memora_core::safe_mode::{Admission, SafeModeLimits};
use memora_core::services::{Config, Platform, TenantFactory, TenantScope};
use memora_core::{CoreError, CoreResult, Memora};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{self, BackendConfig};
use crate::jobs;

/// How often every process re-reads the directory: a new institution is
/// served, and a suspension enforced, by every process within this.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// Opens institutions for the server.
pub struct ServerTenants {
    /// The home institution's backend configuration.
    pub base: BackendConfig,
    /// The home institution's schema (PostgreSQL only).
    pub home_schema: Option<String>,
    /// Connections per institution pool.
    pub pool_size: u32,
    /// The core configuration every institution shares.
    pub config: Config,
    /// Job periods.
    pub schedule: jobs::Schedule,
    /// The server's shutdown signal.
    pub stop: watch::Receiver<bool>,
    /// The background tasks of the opened institutions (awaited at
    /// shutdown).
    pub handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Start each institution's jobs and workers (`false` for CLI commands).
    pub background: bool,
    /// The home institution's coordination: every institution's safe-mode
    /// requests are counted there (see [`PlatformBudget`]).
    pub home_coordination: Arc<dyn Coordination>,
    /// The home institution's failed-login counters, shared by every
    /// institution: the per-address throttle holds across the platform.
    pub home_attempts: Option<Arc<dyn memora_core::ports::AttemptCounter>>,
    /// Each open institution's own stop signal (its tasks stop when it is
    /// closed, or when the server's `stop` flips).
    pub stops:
        Mutex<std::collections::HashMap<memora_core::domain::InstitutionId, watch::Sender<bool>>>,
}

/// An institution's coordination, except that safe-mode requests are
/// admitted against the platform's one budget (the home institution's):
/// the budget protects the shared PostgreSQL server, so a hundred
/// institutions in safe mode together get what one would, not a hundred
/// times that. Account names are platform-unique, so the per-learner rule
/// keeps its meaning.
pub struct PlatformBudget {
    /// The institution's own coordination (invalidations, stale schedules).
    pub own: Arc<dyn Coordination>,
    /// Where the budget is counted.
    pub budget: Arc<dyn Coordination>,
}

#[async_trait]
impl Coordination for PlatformBudget {
    async fn publish(&self, what: &Invalidation) -> PortResult<()> {
        self.own.publish(what).await
    }
    async fn invalidations_since(
        &self,
        cursor: Option<InvalidationCursor>,
    ) -> PortResult<InvalidationBatch> {
        self.own.invalidations_since(cursor).await
    }
    async fn prune_invalidations(&self, before: DateTime<Utc>) -> PortResult<u64> {
        self.own.prune_invalidations(before).await
    }
    async fn admit_safe_mode(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limits: &SafeModeLimits,
    ) -> PortResult<Admission> {
        self.budget.admit_safe_mode(user, now, limits).await
    }
    async fn mark_stale(&self, keys: &[(UserId, SeasonId)]) -> PortResult<()> {
        self.own.mark_stale(keys).await
    }
    async fn stale_schedules(&self, limit: usize) -> PortResult<Vec<StaleMark>> {
        self.own.stale_schedules(limit).await
    }
    async fn clear_stale(&self, marks: &[StaleMark]) -> PortResult<()> {
        self.own.clear_stale(marks).await
    }
}

#[async_trait]
impl TenantFactory for ServerTenants {
    async fn check(&self, institution: &memora_core::domain::InstitutionId) -> CoreResult<()> {
        match (&self.base.database_url, &self.home_schema) {
            (Some(_), Some(home)) => {
                BackendConfig::institution_fits(home, institution).map_err(CoreError::Invalid)
            }
            _ => Ok(()),
        }
    }

    async fn open(&self, inst: &Institution, scope: TenantScope) -> CoreResult<Arc<Memora>> {
        let built = match (&self.base.database_url, &self.home_schema) {
            (Some(_), Some(home)) => {
                let cfg = self
                    .base
                    .for_institution(&inst.id, home, self.pool_size)
                    .map_err(|e| CoreError::invalid(e.to_string()))?;
                backend::build(&cfg).await.map_err(|e| {
                    CoreError::Unavailable(format!("opening institution {}: {e}", inst.id))
                })?
            }
            (Some(_), None) => {
                return Err(CoreError::Internal(
                    "the home schema is unknown: institutions cannot be opened".into(),
                ));
            }
            (None, _) => backend::in_memory(),
        };
        let mut ports = built.ports.clone();
        if self.home_attempts.is_some() {
            ports.attempts = self.home_attempts.clone();
        }
        ports.coordination = Arc::new(PlatformBudget {
            own: Arc::clone(&ports.coordination),
            budget: Arc::clone(&self.home_coordination),
        });
        let app = Arc::new(Memora::in_institution(ports, self.config.clone(), scope));
        if built.report.redis_down.is_some() {
            app.cache_health().mark_failed(chrono::Utc::now());
        }
        if self.background {
            // The institution's tasks stop with the server or when the
            // institution is closed, whichever comes first.
            let (tx, rx) = watch::channel(false);
            let relay = tx.clone();
            let mut server_stop = self.stop.clone();
            let mut spawned = vec![tokio::spawn(async move {
                tokio::select! {
                    _ = server_stop.changed() => { let _ = relay.send(true); }
                    _ = relay.closed() => {}
                }
            })];
            spawned.extend(jobs::spawn_all(Arc::clone(&app), self.schedule, rx.clone()));
            for spawn in built.extras.spawners {
                spawned.push(spawn(Arc::clone(&app), rx.clone()));
            }
            if let Ok(mut h) = self.handles.lock() {
                h.extend(spawned);
            }
            if let Ok(mut stops) = self.stops.lock() {
                stops.insert(inst.id.clone(), tx);
            }
        }
        tracing::info!(institution = %inst.id, "institution opened");
        Ok(app)
    }

    async fn close(&self, institution: &memora_core::domain::InstitutionId) {
        let stop = self
            .stops
            .lock()
            .ok()
            .and_then(|mut s| s.remove(institution));
        if let Some(stop) = stop {
            let _ = stop.send(true);
            tracing::info!(%institution, "institution closed (no longer in the directory)");
        }
    }
}

/// Who starts the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `memora serve`: every institution is opened now, with its jobs and
    /// workers.
    Server,
    /// A CLI command: institutions are opened only when a command needs
    /// one (creating it), without background work.
    Command,
}

/// The platform around `home` (already built over `built` from `base`):
/// its factory opens the other institutions on the same servers. For a
/// server ([`Start::Server`]) every institution the directory holds is
/// opened now with its jobs and workers (one that fails is logged and
/// retried by [`spawn_refresh`]); those tasks stop when `stop` flips, and
/// their handles are in the second value. A command ([`Start::Command`])
/// opens none up front and starts no background work.
pub async fn start_platform(
    home: Arc<Memora>,
    built: &backend::Built,
    base: &BackendConfig,
    pool_size: u32,
    schedule: jobs::Schedule,
    stop: watch::Receiver<bool>,
    start: Start,
) -> Result<(Arc<Platform>, Arc<Mutex<Vec<JoinHandle<()>>>>), backend::BackendError> {
    let background = start == Start::Server;
    if let Some(pg) = &built.pg {
        // Accounts created by a server of an earlier version during a
        // rolling upgrade (after the migration copied them) are the home
        // institution's too.
        let elsewhere = pg.claim_home_accounts().await.map_err(|e| {
            backend::BackendError::Config(format!("recording the home institution's accounts: {e}"))
        })?;
        if !elsewhere.is_empty() {
            tracing::warn!(
                accounts = ?elsewhere,
                "home accounts whose name another institution holds: their logins go there (rename one of them)"
            );
        }
    }
    let home_schema = match &built.pg {
        Some(pg) => Some(pg.current_schema().await.map_err(|e| {
            backend::BackendError::Config(format!("reading the home institution's schema: {e}"))
        })?),
        None => None,
    };
    let handles = Arc::new(Mutex::new(Vec::new()));
    let config = home.config().clone();
    let home_coordination = Arc::clone(&home.ports().coordination);
    let home_attempts = home.ports().attempts.clone();
    let platform = Arc::new(Platform::new(
        home,
        Arc::clone(&built.directory),
        Arc::new(ServerTenants {
            base: base.clone(),
            home_schema,
            pool_size,
            config,
            schedule,
            stop,
            handles: Arc::clone(&handles),
            background,
            home_coordination,
            home_attempts,
            stops: Mutex::default(),
        }),
    ));
    if !background {
        return Ok((platform, handles));
    }
    match platform.refresh().await {
        Ok(outcome) => {
            if !outcome.opened.is_empty() {
                tracing::info!(institutions = outcome.opened.len(), "institutions opened");
            }
            for (inst, e) in outcome.failed {
                tracing::warn!(institution = %inst, error = %e, "an institution could not be opened (retrying)");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the institution directory failed (retrying)")
        }
    }
    Ok((platform, handles))
}

/// Re-reads the directory every [`REFRESH_INTERVAL`] until `stop` flips.
pub fn spawn_refresh(platform: Arc<Platform>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => match platform.refresh().await {
                    Ok(outcome) => {
                        failing = false;
                        for (inst, e) in outcome.failed {
                            tracing::warn!(institution = %inst, error = %e, "an institution could not be opened (retrying)");
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "reading the institution directory failed (retrying)");
                        }
                        failing = true;
                    }
                },
            }
        }
    })
}
