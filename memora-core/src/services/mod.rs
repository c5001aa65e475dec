//! Use cases: the behaviour of every endpoint, grouped in one service per
//! area. [`Memora`] is the thin facade an embedding application (or the
//! HTTP server) holds; it builds the services and hands them out:
//!
//! | accessor | service | ports it holds |
//! |---|---|---|
//! | [`Memora::learning`] | [`LearningService`]: map, content, lesson plays | `ActivityStore`, `LeaderboardCache`; profiles; commerce (access keys), reviews (answer engine) and the served-set ledger |
//! | [`Memora::reviews`] | [`ReviewService`]: review sessions, answers, the durable write path | `TrackerStore`, `DueCache`, `ActivityStore`, `FsrsParamStore`, `PersistenceQueue`, `LeaderboardCache`; profiles; commerce (access keys) and the ledger |
//! | [`Memora::gamification`] | [`GamificationService`]: profile, quests, leaderboards, onboarding | `ActivityStore`, `QuestStore`, `TrackerStore` (due and mastery counts), `LeaderboardCache`; profiles |
//! | [`Memora::commerce`] | [`CommerceService`]: store, purchases, access keys; store items and subscriptions administration | `CommerceStore`, `AuthStore` (grantees exist); profiles |
//! | [`Memora::admin`] | [`AdminService`]: seasons, imports, cache jobs, dead letters, archival, FSRS re-fit, audit log | `SeasonStore`, `ContentStore`, `SeasonScanStore`, `TrackerStore` (reconciliation's cache-side lookups), `ArchiveStore`, `DueCache`, `PersistenceQueue` (depth, dead letters), `JobProgressStore`, `JobLock`, `AuthStore`, `ReviewLogStore`, `FsrsParamStore`, `AuditStore` (reads); profiles |
//! | [`Memora::auth`] | [`AuthService`]: login, sessions, API keys, users | `AuthStore`, `PasswordHasher`, `AttemptCounter`, `ProfileStore` |
//!
//! Every service also holds the shared internals (`shared::Shared`: config,
//! clock, ids, audit log, cache health, catalog and season caches). "Profiles"
//! is the shared profile reader (`ProfileStore` + `AuthStore` for names).
//! Services that need another area's behaviour hold that service (learning
//! holds reviews and commerce, reviews holds commerce); nothing goes back
//! through `Memora`, so there are no cycles.
//!
//! Use cases take an [`Actor`](crate::domain::Actor) (the authenticated
//! caller, or [`Actor::system`](crate::domain::Actor::system) for the
//! server's own work), validate input, apply the
//! domain rules and talk to the world only through their ports.

pub mod admin;
pub mod auth;
pub mod cards;
pub mod content;
pub mod content_import;
pub mod coordination;
pub mod dead_letters;
pub mod fsrs_fit;
pub mod gamification;
pub mod health;
pub mod insight;
pub mod integrity;
pub mod leaderboard;
pub mod learning;
pub mod onboarding;
pub mod persistence;
pub mod platform;
pub mod profile;
pub mod quests;
pub mod reviews;
pub mod sessions;
pub(crate) mod shared;
pub mod store;
pub mod store_admin;
mod ttl_cache;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::Season;
use crate::error::CoreResult;
use crate::ports::Ports;
use crate::safe_mode::SafeModeLimits;
use crate::srs::fsrs::FsrsConfig;

pub use admin::AdminService;
pub use auth::AuthService;
pub use content::ContentIndex;
pub use gamification::GamificationService;
pub use health::CacheHealth;
pub use learning::LearningService;
pub use platform::{Platform, TenantFactory, TenantScope};
pub use reviews::ReviewService;
pub use store::CommerceService;

use integrity::ServedSet;
use shared::{Profiles, Shared};

/// Tunables of the use cases, with production defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a learner's clock (time zone, rollover hour) and FSRS
    /// parameters stay in the in-process learner cache: the bound on how
    /// late a change made through another server process is seen (changes
    /// made in this process apply at once). Zero disables the cache.
    pub learner_cache_ttl: Duration,
    /// Most learners held in each in-process learner cache.
    pub learner_cache_capacity: usize,
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
    /// Share of one core's time the nightly FSRS re-fit job
    /// (`admin().run_fsrs_refit_job`) may take: after each learner it
    /// pauses (through [`JobRuntime::pause`](crate::ports::JobRuntime::pause))
    /// `1 / share - 1` times as long as that learner took (its count, log
    /// read, fit and write), so that it never takes a core from requests
    /// for long: with `0.25` the job is busy a quarter of the time and
    /// takes 4x its unpaced time. Clamped to `0.01..=1.0` (`1.0`: no
    /// pauses; NaN counts as `1.0`).
    pub fsrs_refit_share: f64,
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
    /// Schedules the season cache rebuild loads at once (clamped to
    /// `1..=256`); they are independent, so this only bounds how many
    /// cache round trips are in flight.
    pub rebuild_concurrency: usize,
    /// Rows sampled by `admin().trigger_reconciliation` when the caller
    /// gives no `sample_size` (the daily job always uses it).
    pub reconciliation_sample_default: u64,
    /// Largest accepted reconciliation `sample_size` (the smallest is
    /// [`RECONCILIATION_SAMPLE_MIN`]).
    pub reconciliation_sample_max: u64,
    /// Day-rollover hour (0–23) of `gamification().set_time_zone` when the
    /// caller gives none.
    pub default_rollover_hour: u8,
    /// Reconciliation keeps a cache-only entry (no tracker in the store)
    /// reviewed within this margin of the oldest unpersisted queue job, or
    /// of now: its write may still be on its way
    /// ([`lifecycle::cache_only_action`](crate::lifecycle::cache_only_action)).
    /// Covers clock skew between processes and the enqueue-to-cache gap.
    pub reconcile_pending_grace: Duration,
    /// A `running` cache rebuild whose runner has not written progress for
    /// this long is reported stale and may be resumed by any process.
    /// Must exceed the time one page of `rebuild_batch_size` rows takes.
    pub rebuild_stale_after: Duration,
    /// How long a scheduled job's lease lasts unless renewed (the server
    /// renews it every third of this while the job runs); a crashed
    /// holder blocks the job at most this long.
    pub job_lease_ttl: Duration,
    /// Devices per player and what one too many does (a deployment-wide
    /// policy today; per institution once institutions exist).
    pub device_policy: auth::DevicePolicy,
    /// A device's `last_active` is written at most this often per process.
    pub device_touch_interval: Duration,
    /// Most institutions a platform holds besides the home one (each costs
    /// a pool, a Redis connection and background tasks in every process).
    pub max_institutions: usize,
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
            fsrs_refit_share: 0.25,
            review_answer_window: Duration::from_secs(6 * 3600),
            lesson_answer_window: Duration::from_secs(6 * 3600),
            served_retention: Duration::from_secs(48 * 3600),
            login_free_failures: 5,
            login_max_backoff: Duration::from_secs(15 * 60),
            min_password_score: 2,
            rebuild_batch_size: 5000,
            rebuild_concurrency: 16,
            reconciliation_sample_default: 10_000,
            reconciliation_sample_max: 1_000_000,
            default_rollover_hour: 4,
            reconcile_pending_grace: Duration::from_secs(10 * 60),
            rebuild_stale_after: Duration::from_secs(5 * 60),
            learner_cache_ttl: Duration::from_secs(60),
            learner_cache_capacity: 100_000,
            job_lease_ttl: Duration::from_secs(120),
            device_policy: auth::DevicePolicy::default(),
            device_touch_interval: Duration::from_secs(5 * 60),
            max_institutions: 200,
        }
    }
}

/// The Memora application: a thin facade over the per-area services, all
/// built over one set of ports. Hold it in an `Arc` to spawn background
/// work: `let bg = Arc::clone(&app); tokio::spawn(async move {
/// bg.admin().run_season_rebuild(&job).await })`.
pub struct Memora {
    ports: Ports,
    shared: Arc<Shared>,
    learning: Arc<LearningService>,
    reviews: Arc<ReviewService>,
    gamification: Arc<GamificationService>,
    commerce: Arc<CommerceService>,
    admin: Arc<AdminService>,
    auth: Arc<AuthService>,
    sync: coordination::Sync,
}

impl Memora {
    /// Builds the application over `ports`.
    pub fn new(ports: Ports, config: Config) -> Self {
        Self::in_institution(ports, config, TenantScope::standalone())
    }

    /// Builds the application of one institution of a platform (see
    /// [`platform`]): its session ids and API keys carry the institution's
    /// prefix, and the accounts it creates are reserved in the directory.
    pub fn in_institution(ports: Ports, config: Config, scope: TenantScope) -> Self {
        let shared = Arc::new(Shared::new(&ports, config, scope));
        let profiles = Profiles::new(&ports, &shared);
        let ledger = Arc::new(ServedSet::new(&ports, &shared));
        let commerce = Arc::new(CommerceService::new(&ports, &shared, profiles.clone()));
        let reviews = Arc::new(ReviewService::new(
            &ports,
            &shared,
            profiles.clone(),
            Arc::clone(&commerce),
            Arc::clone(&ledger),
        ));
        let learning = Arc::new(LearningService::new(
            &ports,
            &shared,
            profiles.clone(),
            Arc::clone(&commerce),
            Arc::clone(&reviews),
            ledger,
        ));
        let gamification = Arc::new(GamificationService::new(&ports, &shared, profiles.clone()));
        let admin = Arc::new(AdminService::new(&ports, &shared, profiles));
        let auth = Arc::new(AuthService::new(&ports, &shared));
        Memora {
            ports,
            shared,
            learning,
            reviews,
            gamification,
            commerce,
            admin,
            auth,
            sync: Default::default(),
        }
    }

    /// The institution this application serves.
    pub fn institution(&self) -> &crate::domain::InstitutionId {
        &self.shared.tenant.institution
    }

    /// The ports (for adapters' background workers).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Due-cache breaker (safe-mode state): the only breaker that drives
    /// safe mode.
    pub fn cache_health(&self) -> &CacheHealth {
        &self.shared.health
    }

    /// Leaderboard-cache breaker (open: boards come from the store).
    pub fn leaderboard_health(&self) -> &CacheHealth {
        &self.shared.leaderboard_health
    }

    /// Persistence-queue breaker (open: answers are written to the store
    /// synchronously).
    pub fn queue_health(&self) -> &CacheHealth {
        &self.shared.queue_health
    }

    /// The active season, if any (cached in process for
    /// `Config::season_cache_ttl`).
    pub async fn active_season(&self) -> CoreResult<Option<Season>> {
        self.shared.active_season().await
    }

    /// Map, content and lesson plays.
    pub fn learning(&self) -> &LearningService {
        &self.learning
    }

    /// Review sessions, answers and their persistence.
    pub fn reviews(&self) -> &ReviewService {
        &self.reviews
    }

    /// Profile, quests, leaderboards and onboarding.
    pub fn gamification(&self) -> &GamificationService {
        &self.gamification
    }

    /// Store, purchases and access keys.
    pub fn commerce(&self) -> &CommerceService {
        &self.commerce
    }

    /// Administration and scheduled jobs (System Manager or
    /// [`Actor::system`](crate::domain::Actor::system)).
    pub fn admin(&self) -> &AdminService {
        &self.admin
    }

    /// Login, sessions, API keys and users.
    pub fn auth(&self) -> &AuthService {
        &self.auth
    }
}

#[cfg(test)]
mod mock_tests;
