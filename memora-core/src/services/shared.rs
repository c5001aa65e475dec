//! What the per-area services share, kept deliberately small: the
//! configuration, the clock and id ports, the audit log, the cache-health
//! switch, and the two in-process caches every area reads (the content
//! catalog and the season list, each with the one port that fills it). Plus
//! [`Profiles`], the profile reader most areas use. Anything only one
//! service needs lives in that service.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{Actor, PendingZone, PlayerProfile, Season};
use crate::error::{CoreError, CoreResult};
use crate::ids::{SeasonId, UserId};
use crate::ports::{
    AuditEvent, AuditStore, AuthStore, Clock, ContentStore, Coordination, IdGenerator,
    Invalidation, Ports, ProfileStore, SeasonStore,
};
use crate::time::DayBoundary;

use super::ttl_cache::TtlCache;
use super::{CacheHealth, Config, ContentIndex};

/// FSRS parameters of a learner as the store holds them (`None`: not
/// fitted; the defaults apply).
pub(crate) type LearnerParams = Option<Arc<(Vec<f64>, u64)>>;

/// What the hot path needs of a stored profile: the learner's clock.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LearnerClock {
    time_zone: String,
    rollover_hour: u8,
    pending_zone: Option<PendingZone>,
}

impl LearnerClock {
    pub(crate) fn of(profile: &PlayerProfile) -> Self {
        LearnerClock {
            time_zone: profile.time_zone.clone(),
            rollover_hour: profile.rollover_hour,
            pending_zone: profile.pending_zone.clone(),
        }
    }

    /// The learner's day boundary at `at`.
    pub(crate) fn day_boundary_at(&self, at: DateTime<Utc>) -> DayBoundary {
        let (zone, hour) = match &self.pending_zone {
            Some(p) if p.effective_at <= at => (p.time_zone.as_str(), p.rollover_hour),
            _ => (self.time_zone.as_str(), self.rollover_hour),
        };
        let tz = DayBoundary::parse_tz(zone).unwrap_or(chrono_tz::UTC);
        DayBoundary::new(tz, hour.min(23)).unwrap_or_else(|_| DayBoundary::utc())
    }
}

struct SeasonCache {
    loaded_at: Option<DateTime<Utc>>,
    seasons: Arc<Vec<Season>>,
}

/// Internals shared by every service (one per [`super::Memora`]).
pub(crate) struct Shared {
    /// Tunables.
    pub(crate) config: Config,
    /// Due-cache breaker: the safe-mode switch (only this one drives
    /// `is_degraded` and the safe-mode limiter).
    pub(crate) health: CacheHealth,
    /// Leaderboard-cache breaker: while open, boards are served from the
    /// store and XP is not mirrored to the cache.
    pub(crate) leaderboard_health: CacheHealth,
    /// Persistence-queue breaker: while open, answers are written to the
    /// store synchronously.
    pub(crate) queue_health: CacheHealth,
    /// Id generator.
    pub(crate) ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    audit_log: Arc<dyn AuditStore>,
    content: Arc<dyn ContentStore>,
    catalog: RwLock<Option<Arc<ContentIndex>>>,
    season_store: Arc<dyn SeasonStore>,
    seasons: Mutex<SeasonCache>,
    /// Learners' clocks, and whether their profile is stored (see
    /// [`Profiles::clock`]).
    pub(crate) clocks: TtlCache<UserId, (LearnerClock, bool)>,
    /// FSRS parameters read on the review path.
    pub(crate) fsrs_params: TtlCache<UserId, LearnerParams>,
    /// State shared with the other server processes.
    pub(crate) coordination: Arc<dyn Coordination>,
    /// This process's name in job leases and runs.
    pub(crate) instance_id: String,
    /// The institution served, and the platform directory.
    pub(crate) tenant: super::TenantScope,
    /// Invalidations that could not be published (the others converge by
    /// their caches' bounds instead).
    pub(crate) publish_failures: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn new(ports: &Ports, config: Config, tenant: super::TenantScope) -> Self {
        Shared {
            tenant,
            health: CacheHealth::new(config.cache_retry_interval),
            leaderboard_health: CacheHealth::new(config.cache_retry_interval),
            queue_health: CacheHealth::new(config.cache_retry_interval),
            ids: Arc::clone(&ports.ids),
            clock: Arc::clone(&ports.clock),
            audit_log: Arc::clone(&ports.audit),
            content: Arc::clone(&ports.content),
            catalog: RwLock::new(None),
            season_store: Arc::clone(&ports.seasons),
            seasons: Mutex::new(SeasonCache {
                loaded_at: None,
                seasons: Arc::new(Vec::new()),
            }),
            clocks: TtlCache::new(config.learner_cache_ttl, config.learner_cache_capacity),
            fsrs_params: TtlCache::new(config.learner_cache_ttl, config.learner_cache_capacity),
            coordination: Arc::clone(&ports.coordination),
            instance_id: format!("memora-{}", &ports.ids.secret()[..16]),
            publish_failures: std::sync::atomic::AtomicU64::new(0),
            config,
        }
    }

    /// Now, truncated to microseconds: the precision PostgreSQL stores, so
    /// a time written to the store and to the cache compares equal.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// The in-process content index, loaded on first use.
    pub(crate) async fn catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        if let Ok(guard) = self.catalog.read() {
            if let Some(idx) = guard.as_ref() {
                return Ok(Arc::clone(idx));
            }
        }
        self.reload_catalog().await
    }

    /// Tells every other process that something it may cache changed
    /// (best effort: a failure is counted, and their caches converge by
    /// their own bounds — see `Memora::sync_invalidations`).
    pub(crate) async fn publish(&self, what: Invalidation) {
        if self.coordination.publish(&what).await.is_err() {
            self.publish_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The season list changed here: forget it, and tell the others.
    pub(crate) async fn seasons_changed(&self) {
        self.invalidate_seasons();
        self.publish(Invalidation::Seasons).await;
    }

    /// Forgets the content index (the next use loads it).
    pub(crate) fn drop_catalog(&self) {
        if let Ok(mut guard) = self.catalog.write() {
            *guard = None;
        }
    }

    /// Reloads the content index from the store (after imports).
    pub(crate) async fn reload_catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        let catalog = self.content.load_catalog().await?;
        let idx = Arc::new(ContentIndex::build(catalog)?);
        if let Ok(mut guard) = self.catalog.write() {
            *guard = Some(Arc::clone(&idx));
        }
        Ok(idx)
    }

    /// All seasons, cached in process for `season_cache_ttl`.
    pub(crate) async fn seasons(&self) -> CoreResult<Arc<Vec<Season>>> {
        let now = self.now();
        if let Ok(cache) = self.seasons.lock() {
            if let Some(at) = cache.loaded_at {
                let age = (now - at).to_std().unwrap_or(Duration::ZERO);
                if age < self.config.season_cache_ttl {
                    return Ok(Arc::clone(&cache.seasons));
                }
            }
        }
        let list = Arc::new(self.season_store.list_seasons().await?);
        if let Ok(mut cache) = self.seasons.lock() {
            cache.loaded_at = Some(now);
            cache.seasons = Arc::clone(&list);
        }
        Ok(list)
    }

    /// Forgets the cached season list (after admin changes).
    pub(crate) fn invalidate_seasons(&self) {
        if let Ok(mut cache) = self.seasons.lock() {
            cache.loaded_at = None;
        }
    }

    /// The active season, if any.
    pub(crate) async fn active_season(&self) -> CoreResult<Option<Season>> {
        Ok(self.seasons().await?.iter().find(|s| s.is_active).cloned())
    }

    /// The active season, or [`CoreError::InvalidState`] if there is none.
    pub(crate) async fn require_active_season(&self) -> CoreResult<Season> {
        self.active_season().await?.ok_or_else(|| {
            CoreError::invalid_state(
                "no active season: an administrator must create and activate a season first",
            )
        })
    }

    /// One season (from the cached list).
    pub(crate) async fn season(&self, id: &SeasonId) -> CoreResult<Season> {
        self.seasons()
            .await?
            .iter()
            .find(|s| &s.id == id)
            .cloned()
            .ok_or_else(|| CoreError::not_found(format!("season {id} not found")))
    }

    /// The learner's day boundary now (falls back to UTC for an unknown
    /// zone). A pending time-zone change counts once it is effective.
    pub(crate) fn day_boundary(&self, profile: &PlayerProfile) -> DayBoundary {
        Self::day_boundary_at(profile, self.now())
    }

    /// The learner's day boundary at `at`.
    pub(crate) fn day_boundary_at(profile: &PlayerProfile, at: DateTime<Utc>) -> DayBoundary {
        LearnerClock::of(profile).day_boundary_at(at)
    }

    /// Best-effort audit record naming `actor` (the system caller for the
    /// server's own work). Failures are logged by adapters, never fatal.
    pub(crate) async fn audit(&self, actor: &Actor, action: &str, detail: serde_json::Value) {
        let event = AuditEvent {
            at: self.now(),
            actor: Some(actor.user.clone()),
            action: action.to_owned(),
            detail,
        };
        let _ = self.audit_log.record(&event).await;
    }
}

/// Reads (and creates) player profiles. A learner without a stored profile
/// gets a default one named after their account (hence the auth store).
#[derive(Clone)]
pub(crate) struct Profiles {
    /// The profile port.
    pub(crate) store: Arc<dyn ProfileStore>,
    users: Arc<dyn AuthStore>,
    shared: Arc<Shared>,
}

impl Profiles {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>) -> Self {
        Profiles {
            store: Arc::clone(&ports.profiles),
            users: Arc::clone(&ports.auth),
            shared: Arc::clone(shared),
        }
    }

    /// The learner's clock — from the in-process learner cache when it
    /// holds the learner (no store read on the hot path), else from the
    /// store, then cached. With `ensure`, the profile is also stored
    /// (created if missing), as [`Profiles::ensure`]. Changes made in this
    /// process invalidate the entry at once ([`Profiles::save`]); made by
    /// another process, they are seen within `Config::learner_cache_ttl`
    /// (a time-zone change of an active learner takes effect at their next
    /// day boundary anyway).
    pub(crate) async fn clock(&self, user: &UserId, ensure: bool) -> CoreResult<LearnerClock> {
        let now = self.shared.now();
        if let Some((c, stored)) = self.shared.clocks.get(user, now) {
            if stored || !ensure {
                return Ok(c);
            }
        }
        let (profile, stored) = if ensure {
            (self.ensure(user).await?, true)
        } else {
            match self.store.get_profile(user).await? {
                Some(p) => (p, true),
                None => (self.or_default(user).await?, false),
            }
        };
        let clock = LearnerClock::of(&profile);
        self.shared
            .clocks
            .insert(user.clone(), (clock.clone(), stored), now);
        Ok(clock)
    }

    /// Stores a profile and forgets its cached clock.
    pub(crate) async fn save(&self, profile: &PlayerProfile) -> CoreResult<()> {
        self.store.upsert_profile(profile).await?;
        self.shared.clocks.invalidate(&profile.user);
        Ok(())
    }

    /// The caller's profile, or a fresh default one (not stored) if none.
    pub(crate) async fn or_default(&self, user: &UserId) -> CoreResult<PlayerProfile> {
        if let Some(p) = self.store.get_profile(user).await? {
            return Ok(p);
        }
        let name = match self.users.get_user(user).await? {
            Some(u) => u.full_name,
            None => user.as_str().to_owned(),
        };
        Ok(PlayerProfile::new(user.clone(), name))
    }

    /// The profile, created and stored if missing.
    pub(crate) async fn ensure(&self, user: &UserId) -> CoreResult<PlayerProfile> {
        if let Some(p) = self.store.get_profile(user).await? {
            return Ok(p);
        }
        let p = self.or_default(user).await?;
        self.store.upsert_profile(&p).await?;
        Ok(p)
    }
}
