//! Use cases: the behaviour of every endpoint. [`Memora`] is the facade an
//! embedding application (or the HTTP server) holds; each module adds one
//! group of use cases to it. Use cases take an [`Actor`] (the authenticated
//! caller), validate input, apply the domain rules and talk to the world only
//! through [`Ports`].

pub mod admin;
pub mod auth;
pub mod cards;
pub mod content;
pub mod fsrs_fit;
pub mod health;
pub mod integrity;
pub mod leaderboard;
pub mod onboarding;
pub mod persistence;
pub mod profile;
pub mod quests;
pub mod reviews;
pub mod sessions;
pub mod store;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{Actor, PlayerProfile, Season};
use crate::error::{CoreError, CoreResult};
use crate::ids::{SeasonId, UserId};
use crate::ports::Ports;
use crate::safe_mode::{SafeModeLimiter, SafeModeLimits};
use crate::srs::fsrs::FsrsConfig;
use crate::time::DayBoundary;

pub use content::ContentIndex;
pub use health::CacheHealth;

/// Tunables of the use cases, with production defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Safe-mode limits.
    pub safe_mode: SafeModeLimits,
    /// Default number of review questions.
    pub review_limit_default: usize,
    /// Largest accepted review `limit`.
    pub review_limit_max: usize,
    /// Most answers accepted in one review submission.
    pub max_answers_per_submit: usize,
    /// Most interactions accepted in one lesson submission.
    pub max_interactions_per_lesson: usize,
    /// After a cache failure, requests skip the cache for this long before
    /// trying it again inline (the background probe may restore it sooner).
    pub cache_retry_interval: Duration,
    /// How long the active-season lookup is cached in process.
    pub season_cache_ttl: Duration,
    /// Login session lifetime.
    pub login_session_ttl: Duration,
    /// Leaderboard length.
    pub leaderboard_size: usize,
    /// Lesson score (0–100) from which a play completes the lesson.
    pub lesson_pass_score: i64,
    /// FSRS scheduling defaults (steps, maximum interval, fuzz); per-season
    /// desired retention and per-learner parameters override.
    pub fsrs: FsrsConfig,
    /// Fewest logged reviews before a learner's FSRS parameters are fitted.
    pub fsrs_min_reviews_to_fit: usize,
    /// How long a served review card may be answered.
    pub review_answer_window: Duration,
    /// How long a lesson handed out by `get_lesson_details` may be submitted.
    pub lesson_answer_window: Duration,
    /// How long served-set entries (and so replay detection and the
    /// once-per-day XP rule) are remembered; at least a learner day.
    pub served_retention: Duration,
    /// Failed logins (per account and per client address) before backoff.
    pub login_free_failures: u32,
    /// Longest login backoff.
    pub login_max_backoff: Duration,
    /// Smallest accepted password strength (zxcvbn-style score 0–4).
    pub min_password_score: u8,
    /// Rows read per page by the season cache rebuild
    /// (`admin().run_season_rebuild`); clamped to `1..=100_000`.
    pub rebuild_batch_size: usize,
    /// Rows sampled by `admin().trigger_reconciliation` when the caller
    /// gives no `sample_size` (the daily job always uses it).
    pub reconciliation_sample_default: u64,
    /// Largest accepted reconciliation `sample_size` (the smallest is
    /// [`RECONCILIATION_SAMPLE_MIN`]).
    pub reconciliation_sample_max: u64,
    /// Day-rollover hour (0–23) of `gamification().set_time_zone` when the
    /// caller gives none.
    pub default_rollover_hour: u8,
}

/// Smallest accepted reconciliation `sample_size`: fewer rows say nothing
/// about a 0.1 % discrepancy threshold.
pub const RECONCILIATION_SAMPLE_MIN: u64 = 100;

impl Default for Config {
    fn default() -> Self {
        Config {
            safe_mode: SafeModeLimits::default(),
            review_limit_default: 15,
            review_limit_max: 50,
            max_answers_per_submit: 50,
            max_interactions_per_lesson: 200,
            cache_retry_interval: Duration::from_secs(2),
            season_cache_ttl: Duration::from_secs(2),
            login_session_ttl: Duration::from_secs(7 * 24 * 3600),
            leaderboard_size: 50,
            lesson_pass_score: 50,
            fsrs: FsrsConfig::default(),
            fsrs_min_reviews_to_fit: 64,
            review_answer_window: Duration::from_secs(6 * 3600),
            lesson_answer_window: Duration::from_secs(6 * 3600),
            served_retention: Duration::from_secs(48 * 3600),
            login_free_failures: 5,
            login_max_backoff: Duration::from_secs(15 * 60),
            min_password_score: 2,
            rebuild_batch_size: 1000,
            reconciliation_sample_default: 10_000,
            reconciliation_sample_max: 1_000_000,
            default_rollover_hour: 4,
        }
    }
}

struct SeasonCache {
    loaded_at: Option<DateTime<Utc>>,
    seasons: Arc<Vec<Season>>,
}

/// The Memora application: every use case, over a set of ports.
pub struct Memora {
    pub(crate) ports: Ports,
    pub(crate) config: Config,
    pub(crate) limiter: SafeModeLimiter,
    pub(crate) health: CacheHealth,
    catalog: RwLock<Option<Arc<ContentIndex>>>,
    seasons: Mutex<SeasonCache>,
    pub(crate) rehydrations: persistence::SingleFlight,
    pub(crate) jobs: admin::JobRegistry,
    pub(crate) auth_cache: auth::AuthCache,
    pub(crate) stale_schedules: Mutex<std::collections::HashSet<(UserId, SeasonId)>>,
    pub(crate) local_attempts: crate::memory::LocalAttempts,
    pub(crate) dummy_hash: std::sync::OnceLock<String>,
}

impl Memora {
    /// Builds the application over `ports`.
    pub fn new(ports: Ports, config: Config) -> Self {
        Memora {
            limiter: SafeModeLimiter::new(config.safe_mode.clone()),
            health: CacheHealth::new(config.cache_retry_interval),
            ports,
            config,
            catalog: RwLock::new(None),
            seasons: Mutex::new(SeasonCache {
                loaded_at: None,
                seasons: Arc::new(Vec::new()),
            }),
            rehydrations: persistence::SingleFlight::default(),
            jobs: admin::JobRegistry::default(),
            auth_cache: auth::AuthCache::default(),
            stale_schedules: Mutex::new(std::collections::HashSet::new()),
            local_attempts: crate::memory::LocalAttempts::default(),
            dummy_hash: std::sync::OnceLock::new(),
        }
    }

    /// The ports (for adapters' background workers).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Cache health (safe-mode state).
    pub fn cache_health(&self) -> &CacheHealth {
        &self.health
    }

    /// Now, truncated to microseconds: the precision PostgreSQL stores, so
    /// a time written to the store and to the cache compares equal.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.ports.clock.now().trunc_subsecs(6)
    }

    /// The in-process content index, loaded on first use.
    pub async fn catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        if let Ok(guard) = self.catalog.read() {
            if let Some(idx) = guard.as_ref() {
                return Ok(Arc::clone(idx));
            }
        }
        self.reload_catalog().await
    }

    /// Reloads the content index from the store (after imports).
    pub async fn reload_catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        let catalog = self.ports.content.load_catalog().await?;
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
        let list = Arc::new(self.ports.seasons.list_seasons().await?);
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
    pub async fn active_season(&self) -> CoreResult<Option<Season>> {
        Ok(self.seasons().await?.iter().find(|s| s.is_active).cloned())
    }

    pub(crate) async fn require_active_season(&self) -> CoreResult<Season> {
        self.active_season().await?.ok_or_else(|| {
            CoreError::invalid_state(
                "no active season: an administrator must create and activate a season first",
            )
        })
    }

    pub(crate) async fn season(&self, id: &SeasonId) -> CoreResult<Season> {
        self.seasons()
            .await?
            .iter()
            .find(|s| &s.id == id)
            .cloned()
            .ok_or_else(|| CoreError::not_found(format!("season {id} not found")))
    }

    /// The caller's profile, or a fresh default one (not stored) if none.
    pub(crate) async fn profile_or_default(&self, user: &UserId) -> CoreResult<PlayerProfile> {
        if let Some(p) = self.ports.profiles.get_profile(user).await? {
            return Ok(p);
        }
        let name = match self.ports.auth.get_user(user).await? {
            Some(u) => u.full_name,
            None => user.as_str().to_owned(),
        };
        Ok(PlayerProfile::new(user.clone(), name))
    }

    /// The profile, created and stored if missing.
    pub(crate) async fn ensure_profile(&self, user: &UserId) -> CoreResult<PlayerProfile> {
        if let Some(p) = self.ports.profiles.get_profile(user).await? {
            return Ok(p);
        }
        let p = self.profile_or_default(user).await?;
        self.ports.profiles.upsert_profile(&p).await?;
        Ok(p)
    }

    /// The learner's day boundary now (falls back to UTC for an unknown
    /// zone). A pending time-zone change counts once it is effective.
    pub(crate) fn day_boundary(&self, profile: &PlayerProfile) -> DayBoundary {
        Self::day_boundary_at(profile, self.now())
    }

    /// The learner's day boundary at `at`.
    pub(crate) fn day_boundary_at(profile: &PlayerProfile, at: DateTime<Utc>) -> DayBoundary {
        let (zone, hour) = match &profile.pending_zone {
            Some(p) if p.effective_at <= at => (p.time_zone.as_str(), p.rollover_hour),
            _ => (profile.time_zone.as_str(), profile.rollover_hour),
        };
        let tz = DayBoundary::parse_tz(zone).unwrap_or(chrono_tz::UTC);
        DayBoundary::new(tz, hour.min(23)).unwrap_or_else(|_| DayBoundary::utc())
    }

    /// Best-effort audit record (failures are logged by adapters, never fatal).
    pub(crate) async fn audit(&self, actor: &Actor, action: &str, detail: serde_json::Value) {
        let event = crate::ports::AuditEvent {
            at: self.now(),
            actor: Some(actor.user.clone()),
            action: action.to_owned(),
            detail,
        };
        let _ = self.ports.audit.record(&event).await;
    }
}

#[cfg(test)]
mod mock_tests;
