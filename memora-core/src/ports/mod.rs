//! Ports: the async traits through which use cases reach storage, cache,
//! queue, clock, ids and password hashing. Adapters (in-memory here,
//! PostgreSQL and Redis in their own crates) implement them; the behaviour
//! every implementation must show is pinned by the conformance suite in the
//! `memora-tests` crate. Port methods return [`PortError`]; they translate,
//! never decide — every business rule lives in the services.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::*;
use crate::error::PortResult;
use crate::ids::*;

#[cfg(test)]
use mockall::automock;

pub use crate::error::PortError;

mod fast;
pub use fast::{
    BoardCredit, FastCommit, FastCommitOutcome, ReviewFastPath, ServeTerms, SubmitView,
};

/// Source of the current time.
#[cfg_attr(test, automock)]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// Source of unique ids.
#[cfg_attr(test, automock)]
pub trait IdGenerator: Send + Sync {
    /// A new unique id, e.g. `"{prefix}-0193…"`.
    fn next_id(&self, prefix: &str) -> String;
    /// An unguessable secret token (≥ 128 bits of randomness, hex or
    /// base64url, at least 32 characters): session ids and API secrets.
    fn secret(&self) -> String;
}

/// Work a background job hands to its host: how it runs CPU-heavy steps
/// (an FSRS-6 fit takes ~13 ms for a 10 000-review learner) and how it
/// waits between steps to pace itself. A step computed on a thread that also
/// serves requests holds every request queued behind it, so the server runs
/// them on tokio's blocking pool and pauses with tokio's timer. The default
/// ([`InlineJobRuntime`](crate::memory::InlineJobRuntime)) runs work inline
/// and does not wait: for embedders without an async runtime of their own.
#[async_trait]
pub trait JobRuntime: Send + Sync {
    /// Runs `work` to completion, off the threads that serve requests where
    /// the host has such threads. An error means `work` did not complete
    /// (its thread panicked or the pool is shut down).
    async fn run_cpu(&self, work: Box<dyn FnOnce() + Send + 'static>) -> PortResult<()>;
    /// Waits `pause` before the job's next step (pacing; see
    /// [`Config::fsrs_refit_share`](crate::services::Config::fsrs_refit_share)).
    async fn pause(&self, pause: std::time::Duration);
}

/// Password and API-secret hashing (argon2 in the server; run off the async
/// executor by the implementation).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a secret.
    async fn hash(&self, secret: &str) -> PortResult<String>;
    /// Verifies a secret against a stored hash.
    async fn verify(&self, secret: &str, hash: &str) -> PortResult<bool>;
    /// Estimated strength of a password, 0 (trivially guessable) to 4, and
    /// a hint for the user. `user_inputs` (e-mail, name) count as known
    /// words. The default is a coarse length-and-variety estimate; the
    /// server's hasher uses zxcvbn.
    fn strength(&self, password: &str, user_inputs: &[&str]) -> (u8, Option<String>) {
        crate::text::coarse_password_strength(password, user_inputs)
    }
}

/// Content and academic structure.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// The whole catalog (content is small; it is indexed in process).
    async fn load_catalog(&self) -> PortResult<Catalog>;
    /// Inserts or replaces every entity of the bundle (by id) and makes a
    /// new catalog version, in one transaction. Plans get their version
    /// bumped. Returns the new catalog version: the previous one + 1 (1 for
    /// the first import); concurrent imports get distinct versions.
    async fn import_catalog(&self, bundle: &Catalog) -> PortResult<u64>;
    /// The current catalog version (0 = nothing imported yet).
    async fn catalog_version(&self) -> PortResult<u64>;
}

/// Seasons (and the storage partitions behind them).
#[async_trait]
pub trait SeasonStore: Send + Sync {
    /// All seasons, newest start date first.
    async fn list_seasons(&self) -> PortResult<Vec<Season>>;
    /// One season.
    async fn get_season(&self, id: &SeasonId) -> PortResult<Option<Season>>;
    /// Creates a season and its storage partition (the partition step is
    /// idempotent). `Conflict` if the season exists.
    async fn create_season(&self, season: &Season) -> PortResult<()>;
    /// Replaces a season's mutable fields. `Rejected` if it does not exist.
    async fn update_season(&self, season: &Season) -> PortResult<()>;
    /// Makes `id` the only active season, atomically.
    async fn activate_season(&self, id: &SeasonId) -> PortResult<()>;
}

/// Which question set a due query covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DueFilter {
    /// Only this subject.
    pub subject: Option<SubjectId>,
    /// Only this topic.
    pub topic: Option<TopicId>,
}

/// What one `persist_batch` call changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistOutcome {
    /// Review-log rows newly inserted (replays insert none).
    pub logs_inserted: u64,
    /// Tracker rows inserted or updated.
    pub trackers_written: u64,
}

/// Learner memory on the request path: one learner's tracker rows (reads by
/// question, due, topic; counts; mastery) and the one write, `persist_batch`,
/// which stores answers and their review-log entries together. Tracker rows
/// are unique per (user, season, question); writes for a season that does
/// not exist are `Rejected`, never silently routed.
///
/// The memory ports are split by concern so that each service holds only
/// what it uses and a backend can place each concern where it scales:
/// [`TrackerStore`] (per-learner, latency-bound, reviews and lessons),
/// [`ReviewLogStore`] (review-history reads for the FSRS optimizer),
/// [`SeasonScanStore`] (whole-season reads feeding cache maintenance) and
/// [`ArchiveStore`] (season archival and retention). All four see the same
/// rows.
#[async_trait]
pub trait TrackerStore: Send + Sync {
    /// Rows for the given questions (missing questions are simply absent).
    async fn get_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Rows due at `now` (due ≤ now), ordered by due ascending then question
    /// id, at most `limit`.
    async fn due_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Number of rows due at `now`.
    async fn count_due(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
    ) -> PortResult<u64>;

    /// Due counts per subject (rows without a subject under `None`).
    async fn due_counts_by_subject(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Vec<(Option<SubjectId>, u64)>>;

    /// Number of rows of a topic.
    async fn count_topic(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
    ) -> PortResult<u64>;

    /// Topic-focus candidates: rows of the topic that are in the `new`
    /// mastery bucket, or due (due ≤ now), or not reviewed since `day_start`.
    /// Order: `new` bucket first, then due rows, then the rest; inside each
    /// group by last review ascending (never-reviewed first), then question
    /// id. At most `limit`.
    async fn topic_candidates(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Up to `limit` rows of the topic in a pseudo-random order determined
    /// by `seed` (the fallback when no candidate is left).
    async fn random_topic_items(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        limit: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Every row of (user, season), in no particular order: cache
    /// rehydration.
    async fn all_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Mastery bucket counts for a user, optionally one season / subject.
    async fn mastery_counts(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        subject: Option<&SubjectId>,
    ) -> PortResult<MasteryCounts>;

    /// Persists answers idempotently in one round trip: each log entry is
    /// inserted once per review id (replays change nothing); each tracker is
    /// inserted, or updated only if its `last_review` is not older than the
    /// stored row's (so late or replayed batches never regress a card).
    async fn persist_batch(&self, records: &[ReviewRecord]) -> PortResult<PersistOutcome>;
}

/// Review-history reads (the FSRS optimizer's input, audits). The log is
/// written only by [`TrackerStore::persist_batch`], together with the
/// trackers, so a logged review always has its tracker row.
#[async_trait]
pub trait ReviewLogStore: Send + Sync {
    /// Review-log entries of a user (all seasons when `None`), oldest first
    /// (by `reviewed_at`, then review id), at most `limit` (optimizer input
    /// and audit).
    async fn review_log(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        limit: usize,
    ) -> PortResult<Vec<ReviewLogEntry>>;

    /// Number of review-log entries of a user (all seasons).
    async fn count_reviews(&self, user: &UserId) -> PortResult<u64>;

    /// Whether a review id is already logged.
    async fn has_review(&self, review_id: &ReviewId) -> PortResult<bool>;

    /// Distinct questions of `season` the user answered in review sessions
    /// (source [`ReviewSource::Review`], not lesson plays) at or after
    /// `since`, in no particular order: the progress of the daily
    /// per-subject review quests. One learner's recent rows only.
    async fn reviewed_since(
        &self,
        user: &UserId,
        season: &SeasonId,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<QuestionId>>;
}

/// Whole-season reads for cache maintenance, never on the request path: the
/// keyset scan behind the season cache rebuild and the pseudo-random sample
/// behind reconciliation (both read live rows only). Sampling lives here,
/// beside the scan, because both are season-wide reads whose cost a backend
/// must bound (keyset pages, block sampling) and both feed the admin
/// service's cache jobs.
#[async_trait]
pub trait SeasonScanStore: Send + Sync {
    /// Live tracker rows of a season.
    async fn count_season(&self, season: &SeasonId) -> PortResult<u64>;

    /// Keyset page of a season ordered by (user, question), strictly after
    /// `after`: constant cost per page at any table size.
    async fn scan_season(
        &self,
        season: &SeasonId,
        after: Option<&TrackerKey>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>>;

    /// Up to `n` rows of the season chosen pseudo-randomly by `seed`
    /// without a full scan (reconciliation).
    async fn sample_trackers(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>>;
    /// Live trackers of a season due before `until`, counted per UTC day
    /// of `max(due, from)` (everything overdue at `from` counts on `from`'s
    /// day) and subject, ordered by day then subject (`None` first).
    async fn due_forecast(
        &self,
        season: &SeasonId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, Option<SubjectId>, u64)>>;
    /// Live trackers of a season by scheduled interval: element `i` counts
    /// `bounds[i-1] < scheduled_days <= bounds[i]` (from 0 for `i = 0`), the
    /// last element (`bounds.len()`) everything above. `bounds` ascending.
    async fn interval_histogram(&self, season: &SeasonId, bounds: &[u32]) -> PortResult<Vec<u64>>;
    /// Review-log entries of a season per UTC day of `reviewed_at` in
    /// `[since, until)`: `(day, answers, correct answers)`, by day.
    async fn reviews_per_day(
        &self,
        season: &SeasonId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, u64, u64)>>;
}

/// Season archival and retention: moving a finished season's live rows to
/// the archive, flagging archived rows past retention, deleting flagged
/// rows, and the counts an administrator checks before and after.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Moves every live row of the season to the archive (stamped
    /// `archived_at = now`) atomically: either all rows move or none.
    async fn archive_season(&self, season: &SeasonId, now: DateTime<Utc>) -> PortResult<u64>;

    /// Flags archived rows with `archived_at < cutoff`; returns how many
    /// were newly flagged.
    async fn flag_archived_before(&self, cutoff: DateTime<Utc>) -> PortResult<u64>;

    /// Deletes flagged archived rows (one season or all).
    async fn delete_flagged(&self, season: Option<&SeasonId>) -> PortResult<u64>;

    /// Live / archived / flagged counts for a season.
    async fn archive_counts(&self, season: &SeasonId) -> PortResult<ArchiveCounts>;
}

/// Aggregates of one learner day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaySummary {
    /// Lesson sessions.
    pub lesson_sessions: u32,
    /// Review sessions.
    pub review_sessions: u32,
    /// XP from lessons and reviews (quest rewards excluded).
    pub xp: i64,
}

/// Which XP a leaderboard ranks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoardQuery {
    /// `None` = global, else one subject.
    pub subject: Option<SubjectId>,
    /// Count only activity on learner days ≥ this (None = all time).
    pub since: Option<NaiveDate>,
}

/// One leaderboard row from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardEntry {
    /// Player.
    pub user: UserId,
    /// XP in scope.
    pub xp: i64,
}

/// Player profiles: the descriptive fields (name, avatar, academic profile,
/// time zone). The XP total is read here but written only by
/// [`ActivityStore::record_session`].
///
/// The player ports are split by concern: [`ProfileStore`] (who the learner
/// is), [`ActivityStore`] (what they did: the session ledger and everything
/// aggregated from it, leaderboards included) and [`FsrsParamStore`] (their
/// fitted scheduler parameters).
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// A profile.
    async fn get_profile(&self, user: &UserId) -> PortResult<Option<PlayerProfile>>;
    /// Profiles of several users (missing ones are absent).
    async fn get_profiles(&self, users: &[UserId]) -> PortResult<Vec<PlayerProfile>>;
    /// Creates or replaces a profile's descriptive fields (name, avatar,
    /// grade, stream, season, time zone). Never changes `total_xp`.
    async fn upsert_profile(&self, profile: &PlayerProfile) -> PortResult<()>;
}

/// The activity ledger: gameplay sessions (lessons, reviews, quest rewards)
/// and what is aggregated from them — XP totals and per subject, active
/// days, day summaries, lesson plays and completions, leaderboard sources.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Atomically: inserts the session, adds its XP to the profile total and
    /// (if `subject`) to the subject score, creating rows as needed.
    /// `Conflict` if the session id exists.
    async fn record_session(&self, session: &GameplaySession) -> PortResult<()>;
    /// Atomically: [`ActivityStore::record_session`] plus the session's
    /// tracker batch, kept as *pending* (stamped with the session's
    /// `created_at`) until [`ActivityStore::clear_pending_batch`]. A lesson
    /// play and its tracker updates are thereby one outcome: both are
    /// recorded, or neither. `Conflict`, storing nothing, if the session id
    /// or the batch's job id exists.
    async fn record_session_with_batch(
        &self,
        session: &GameplaySession,
        batch: &PersistJob,
    ) -> PortResult<()>;
    /// A pending batch, by job id (`None` if never recorded or cleared).
    async fn pending_batch(&self, job: &JobId) -> PortResult<Option<PersistJob>>;
    /// Pending batches recorded at or before `before`, oldest first (then
    /// by job id), at most `limit`.
    async fn pending_batches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<PersistJob>>;
    /// Forgets a pending batch once it is durable elsewhere (queued or
    /// persisted). Idempotent: clearing an unknown job is not an error.
    async fn clear_pending_batch(&self, job: &JobId) -> PortResult<()>;
    /// Distinct learner days with a lesson or review session on or after
    /// `since`, newest first.
    async fn active_days(&self, user: &UserId, since: NaiveDate) -> PortResult<Vec<NaiveDate>>;
    /// XP per learner day in `[from, to]` (lesson and review sessions).
    async fn xp_by_day(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> PortResult<Vec<(NaiveDate, i64)>>;
    /// Summary of one learner day.
    async fn day_summary(&self, user: &UserId, day: NaiveDate) -> PortResult<DaySummary>;
    /// How many times the lesson was played on that learner day.
    async fn lesson_plays_on(
        &self,
        user: &UserId,
        lesson: &LessonId,
        day: NaiveDate,
    ) -> PortResult<u32>;
    /// Lessons the user completed (a completed play exists).
    async fn completed_lessons(&self, user: &UserId) -> PortResult<HashSet<LessonId>>;
    /// XP of one subject for the user (0 if none).
    async fn subject_xp(&self, user: &UserId, subject: &SubjectId) -> PortResult<i64>;
    /// Top players by XP in scope: XP desc, then user id asc; players with
    /// XP ≤ 0 and disabled users excluded.
    async fn top_players(&self, query: &BoardQuery, limit: usize) -> PortResult<Vec<BoardEntry>>;
    /// The user's XP in scope and rank (1-based, same ordering; `None` if
    /// the user has no XP in scope).
    async fn player_rank(
        &self,
        user: &UserId,
        query: &BoardQuery,
    ) -> PortResult<(i64, Option<u64>)>;
}

/// Per-learner FSRS-6 parameters and the review count they were fitted on.
#[async_trait]
pub trait FsrsParamStore: Send + Sync {
    /// Stored FSRS parameters of a learner and the number of logged reviews
    /// they were fitted on.
    async fn fsrs_params(&self, user: &UserId) -> PortResult<Option<(Vec<f64>, u64)>>;
    /// Stores FSRS parameters and the review count they were fitted on.
    async fn set_fsrs_params(
        &self,
        user: &UserId,
        params: &[f64],
        fitted_on_reviews: u64,
    ) -> PortResult<()>;
    /// Records how well a learner's last fit did (after
    /// [`FsrsParamStore::set_fsrs_params`]; no-op without stored parameters).
    async fn record_fit_quality(&self, user: &UserId, quality: &FitQuality) -> PortResult<()>;
    /// Fit quality over every learner whose fit recorded one.
    async fn fit_quality_summary(&self) -> PortResult<FitQualitySummary>;
}

/// How well one learner's FSRS fit did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitQuality {
    /// Weighted log loss of the learner's reviews with default parameters
    /// (`None` when there was nothing to evaluate).
    pub loss_before: Option<f64>,
    /// With the stored parameters (the defaults when the fit fell back).
    pub loss_after: Option<f64>,
    /// Too little data or no improvement: defaults kept.
    pub fell_back: bool,
}

/// Fit quality over the learners whose fit recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FitQualitySummary {
    /// Learners with a recorded fit.
    pub fitted: u64,
    /// Of which the fit fell back to the defaults.
    pub fell_back: u64,
    /// Of which the stored parameters predict their reviews better than the
    /// defaults (`loss_after < loss_before`).
    pub improved: u64,
    /// Mean log loss with default parameters, over the fits that could be
    /// evaluated (None without any).
    pub mean_loss_before: Option<f64>,
    /// Mean log loss with the stored parameters.
    pub mean_loss_after: Option<f64>,
}

/// Store, purchases and subscriptions.
#[async_trait]
pub trait CommerceStore: Send + Sync {
    /// All sales items, price ascending.
    async fn list_sales_items(&self) -> PortResult<Vec<SalesItem>>;
    /// One item.
    async fn get_sales_item(&self, id: &SalesItemId) -> PortResult<Option<SalesItem>>;
    /// Inserts or replaces an item.
    async fn upsert_sales_item(&self, item: &SalesItem) -> PortResult<()>;
    /// Inserts a request; `Conflict` if the user already has a pending
    /// request for the item.
    async fn create_purchase_request(&self, request: &PurchaseRequest) -> PortResult<()>;
    /// One request.
    async fn get_purchase_request(
        &self,
        id: &PurchaseRequestId,
    ) -> PortResult<Option<PurchaseRequest>>;
    /// Requests, optionally of one user and/or status, newest first.
    async fn list_purchase_requests(
        &self,
        user: Option<&UserId>,
        status: Option<PurchaseStatus>,
    ) -> PortResult<Vec<PurchaseRequest>>;
    /// Decides a *pending* request atomically, inserting `grant` (the
    /// subscription) in the same transaction when approving. `Conflict` if
    /// the request is no longer pending (double approval is impossible).
    async fn decide_purchase(
        &self,
        decided: &PurchaseRequest,
        grant: Option<&Subscription>,
    ) -> PortResult<()>;
    /// Subscriptions of a user.
    async fn subscriptions_of(&self, user: &UserId) -> PortResult<Vec<Subscription>>;
    /// Inserts a subscription (admin grant).
    async fn create_subscription(&self, subscription: &Subscription) -> PortResult<()>;
    /// Inserts a new item; `Conflict` if the id exists.
    async fn create_sales_item(&self, item: &SalesItem) -> PortResult<()>;
    /// One subscription.
    async fn get_subscription(&self, id: &SubscriptionId) -> PortResult<Option<Subscription>>;
    /// Subscriptions matching the query, by id ascending, strictly after
    /// `query.after`, at most `query.limit` (keyset pages).
    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> PortResult<Vec<Subscription>>;
    /// Compare-and-set of a subscription's status: sets `to` and returns
    /// `true` only if the status is still `from`; `false` (nothing changed)
    /// if it is not; `Rejected` if the subscription does not exist.
    async fn set_subscription_status(
        &self,
        id: &SubscriptionId,
        from: SubscriptionStatus,
        to: SubscriptionStatus,
    ) -> PortResult<bool>;
}

/// Which subscriptions [`CommerceStore::list_subscriptions`] returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscriptionQuery {
    /// Only this user's.
    pub user: Option<UserId>,
    /// Only with this status.
    pub status: Option<SubscriptionStatus>,
    /// Keyset cursor: ids strictly greater than this.
    pub after: Option<SubscriptionId>,
    /// Page size.
    pub limit: usize,
}

/// Daily quest claims.
#[async_trait]
pub trait QuestStore: Send + Sync {
    /// Quest ids claimed by the user on that learner day.
    async fn claimed(&self, user: &UserId, day: NaiveDate) -> PortResult<Vec<String>>;
    /// Atomically records the claim and its reward session (which adds the
    /// XP). Returns `false`, changing nothing, if already claimed.
    async fn claim(
        &self,
        user: &UserId,
        day: NaiveDate,
        quest_id: &str,
        reward: &GameplaySession,
    ) -> PortResult<bool>;
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public key.
    pub key: String,
    /// Owner.
    pub user: UserId,
    /// Hash of the secret.
    pub secret_hash: String,
}

/// Users, credentials and login sessions.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// A user.
    async fn get_user(&self, id: &UserId) -> PortResult<Option<User>>;
    /// All users (admin listing).
    async fn list_users(&self) -> PortResult<Vec<User>>;
    /// The ids of at most `limit` users after `after` (from the first when
    /// `None`), in the byte order of their ids: a job that visits every
    /// user reads them page by page instead of the whole table at once.
    async fn user_ids_after(&self, after: Option<&UserId>, limit: usize)
    -> PortResult<Vec<UserId>>;
    /// Creates a user; `Conflict` if the id exists.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> PortResult<()>;
    /// Stored password hash.
    async fn password_hash(&self, id: &UserId) -> PortResult<Option<String>>;
    /// Replaces the password hash.
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> PortResult<()>;
    /// Stores a login session under the hash of its id.
    async fn create_login_session(
        &self,
        sid_hash: &str,
        user: &UserId,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()>;
    /// Looks a login session up.
    async fn get_login_session(
        &self,
        sid_hash: &str,
    ) -> PortResult<Option<(UserId, DateTime<Utc>)>>;
    /// Ends a login session.
    async fn delete_login_session(&self, sid_hash: &str) -> PortResult<()>;
    /// Stores an API key.
    async fn create_api_key(&self, record: &ApiKeyRecord) -> PortResult<()>;
    /// Looks an API key up.
    async fn get_api_key(&self, key: &str) -> PortResult<Option<ApiKeyRecord>>;
}

/// Players' devices, and which login session was opened on which device.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Registers a device, or updates the kind, name and `last_active` of
    /// a registered one (keeping `registered_at`). `true` if it is new.
    async fn upsert_device(&self, device: &Device) -> PortResult<bool>;
    /// A user's devices, most recently active first.
    async fn list_devices(&self, user: &UserId) -> PortResult<Vec<Device>>;
    /// Removes a device and ends every login session bound to it; returns
    /// the hashes of the ended sessions, or `None` if there is no such
    /// device.
    async fn delete_device(
        &self,
        user: &UserId,
        device_id: &str,
    ) -> PortResult<Option<Vec<String>>>;
    /// Binds a login session of `user` to one of their devices.
    async fn bind_session(&self, sid_hash: &str, user: &UserId, device_id: &str) -> PortResult<()>;
    /// The device a login session is bound to.
    async fn session_device(&self, sid_hash: &str) -> PortResult<Option<String>>;
    /// Records activity of a device (never moves `last_active` back).
    async fn touch_device(
        &self,
        user: &UserId,
        device_id: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()>;
}

/// The platform directory: the institutions, and which institution each
/// account name belongs to. It is the only state institutions share (see
/// [`crate::domain::institution`]); it lives beside the home institution's
/// data.
#[async_trait]
pub trait InstitutionDirectory: Send + Sync {
    /// Records a new institution; `Conflict` if the id is taken.
    async fn create_institution(&self, institution: &Institution) -> PortResult<()>;
    /// Every institution, by id.
    async fn list_institutions(&self) -> PortResult<Vec<Institution>>;
    /// Removes an institution's row; `false` if there was none. Only the
    /// roll-back of a creation that failed half-way uses it (the
    /// institution has no account yet).
    async fn delete_institution(&self, id: &InstitutionId) -> PortResult<bool>;
    /// Sets an institution's status; `false` if there is no such
    /// institution.
    async fn set_institution_status(
        &self,
        id: &InstitutionId,
        status: InstitutionStatus,
    ) -> PortResult<bool>;
    /// Sets an institution's device policy (`None`: the server default);
    /// `false` if there is no such institution.
    async fn set_institution_device_policy(
        &self,
        id: &InstitutionId,
        policy: Option<&DevicePolicy>,
    ) -> PortResult<bool>;
    /// Reserves an account name for an institution; `Conflict` if any
    /// institution (this one included) already holds it, whatever the case
    /// of its ASCII letters (`Bob@x.org` and `bob@x.org` are one name here;
    /// `É` and `é` are not folded).
    async fn claim_account(&self, user: &UserId, institution: &InstitutionId) -> PortResult<()>;
    /// Gives up a reservation made by `institution` (a no-op otherwise).
    async fn release_account(&self, user: &UserId, institution: &InstitutionId) -> PortResult<()>;
    /// The institution an account name belongs to (compared without case).
    async fn account_institution(&self, user: &UserId) -> PortResult<Option<InstitutionId>>;
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the caller's user id, or the reserved
    /// [`SYSTEM_USER_ID`] for the server's own
    /// work (CLI, scheduled jobs, internal bookkeeping). `None` only in
    /// records written before the system caller existed.
    pub actor: Option<UserId>,
    /// What, e.g. `season.archive`.
    pub action: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// A stored audit event and its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the log: strictly increasing in insertion order (the
    /// keyset cursor of [`AuditQuery::before`]).
    pub seq: u64,
    /// The event.
    pub event: AuditEvent,
}

/// Which audit events [`AuditStore::query`] returns. Every filter is
/// optional; results are newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditQuery {
    /// Only actions starting with this (`subscription.` or
    /// `season.archive`).
    pub action: Option<String>,
    /// Only events of this actor.
    pub actor: Option<UserId>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: only events with `seq` strictly below this.
    pub before: Option<u64>,
    /// Page size.
    pub limit: usize,
}

/// Append-only audit log of admin actions and persistence failures.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event.
    async fn record(&self, event: &AuditEvent) -> PortResult<()>;
    /// Most recent events, newest first.
    async fn recent(&self, limit: usize) -> PortResult<Vec<AuditEvent>>;
    /// Events matching `query`, newest first (by `seq` descending), at most
    /// `query.limit`.
    async fn query(&self, query: &AuditQuery) -> PortResult<Vec<AuditRecord>>;
}

/// A lease on a scheduled job, held by one process until `expires_at`
/// unless renewed. `token` grows with every acquisition of the job (the
/// fencing token): a holder whose token is no longer the newest has lost
/// the lease, and its renewals and releases are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    /// Job name.
    pub job: String,
    /// The process holding it ([`crate::Memora::instance_id`]).
    pub holder: String,
    /// Fencing token.
    pub token: u64,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// Leases for scheduled jobs across server processes: at most one holder
/// of a job at a time, and one start per interval across all processes.
/// A lease expires (a crashed holder does not block the job for ever) and
/// carries a fencing token; every run is recorded.
#[async_trait]
pub trait JobLock: Send + Sync {
    /// Takes the lease of `job` for `holder` until `now + ttl` if nobody
    /// holds an unexpired lease and the job last started at least `every`
    /// before `now` — or its last run never finished (its holder died or
    /// lost the lease): then as soon as that lease lapses. Records the run
    /// as started. `None` otherwise.
    async fn try_acquire(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
        every: std::time::Duration,
    ) -> PortResult<Option<JobLease>>;
    /// Extends a lease still held (same token) to `now + ttl`; `None` if it
    /// was lost (expired and taken by another holder).
    async fn renew(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> PortResult<Option<JobLease>>;
    /// Ends a lease still held and records the run's outcome; `false` (and
    /// nothing written) if the lease was lost.
    async fn release(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        outcome: &str,
    ) -> PortResult<bool>;
    /// The most recent runs of `job`, newest first.
    async fn runs(&self, job: &str, limit: usize) -> PortResult<Vec<JobRun>>;
}

/// One recorded run of a scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// Job name.
    pub job: String,
    /// The lease's fencing token.
    pub token: u64,
    /// The process that ran it.
    pub holder: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished (`None` while running or if its holder died).
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome summary.
    pub outcome: Option<String>,
}

/// Something a process may hold in memory that another process changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// The content catalog changed (an import).
    Catalog,
    /// A season was created or changed.
    Seasons,
    /// A login session ended; the SHA-256 hash of its id, never the id.
    Session(String),
    /// A user's credentials, roles or API keys changed: every credential
    /// of the user cached anywhere is dropped.
    User(UserId),
}

/// A position in the invalidation log: the last sequence number read, and
/// an adapter-defined horizon below which nothing can still appear (for
/// PostgreSQL, the oldest transaction still running at the read: a row
/// whose sequence number was taken earlier but committed later is read
/// again until no transaction that old remains — whatever the clocks say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvalidationCursor {
    /// Highest sequence number read.
    pub seq: u64,
    /// Adapter horizon (0 for adapters that publish in order).
    pub horizon: u64,
}

/// Invalidations read from the log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvalidationBatch {
    /// `(sequence number, invalidation)`, ascending. Entries may be
    /// delivered again on the next read (consumers are idempotent and keep
    /// the last batch's sequence numbers); none is ever skipped.
    pub entries: Vec<(u64, Invalidation)>,
    /// Pass to the next read.
    pub cursor: InvalidationCursor,
}

/// State every server process shares, so that N processes behave as one:
/// the invalidation log, the safe-mode budget and the schedules that
/// missed cache writes. Implemented by the store (PostgreSQL), which stays
/// up when the cache is down.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Appends an invalidation for every process to apply.
    async fn publish(&self, what: &Invalidation) -> PortResult<()>;
    /// Invalidations after `cursor` (plus, possibly, recent ones already
    /// delivered). `None` starts at the end of the log: no entries, the
    /// current cursor.
    async fn invalidations_since(
        &self,
        cursor: Option<InvalidationCursor>,
    ) -> PortResult<InvalidationBatch>;
    /// Deletes log entries older than `before`; returns how many.
    async fn prune_invalidations(&self, before: DateTime<Utc>) -> PortResult<u64>;
    /// Decides one safe-mode request of `user` at `now` against `limits`,
    /// counted across every process (a sliding global window and a
    /// per-learner interval, as [`crate::safe_mode::SafeModeLimiter`]).
    async fn admit_safe_mode(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limits: &crate::safe_mode::SafeModeLimits,
    ) -> PortResult<crate::safe_mode::Admission>;
    /// Remembers schedules whose cached copy missed writes (marking one
    /// already marked gives it a new `mark`).
    async fn mark_stale(&self, keys: &[(UserId, SeasonId)]) -> PortResult<()>;
    /// Up to `limit` remembered stale schedules.
    async fn stale_schedules(&self, limit: usize) -> PortResult<Vec<StaleMark>>;
    /// Forgets stale schedules (after dropping them from the cache) — each
    /// only if it was not marked again since it was read, so a write
    /// missed during a drain is not forgotten with it.
    async fn clear_stale(&self, marks: &[StaleMark]) -> PortResult<()>;
}

/// A schedule remembered as stale, with the version of its mark.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleMark {
    /// Learner.
    pub user: UserId,
    /// Season.
    pub season: SeasonId,
    /// Grows each time the schedule is marked again.
    pub mark: u64,
}

/// Due items of one cached schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct DueSlice {
    /// Due question ids in due order (earliest first), at most the limit.
    pub items: Vec<QuestionId>,
    /// Total number of due items (for `total_due`).
    pub total_due: u64,
}

/// Global cache statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheStats {
    /// A cache server (Redis) answered. Always false for the in-process
    /// cache, which has no server to connect to.
    pub connected: bool,
    /// Memory used by the cache server (bytes).
    pub memory_used_bytes: u64,
    /// Number of schedule keys.
    pub total_keys: u64,
    /// Schedule keys per season.
    pub keys_by_season: BTreeMap<String, u64>,
}

/// Statistics of one cached schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserCacheStats {
    /// Cached items.
    pub total: u64,
    /// Items due now.
    pub due_now: u64,
}

/// Permanent numbers for question ids, and in a space of their own for
/// subjects and topics ([`Label`]): the compact Redis schedule keeps its
/// cards under these numbers instead of the ids (a 15-character id costs
/// 17 bytes of a Redis `listpack` entry, a number below 2^24 five), and
/// names their subject and topic by number, so a learner's schedule needs
/// no dictionary of its own.
///
/// A number, once given to an id, stays that id's and is never given to
/// another, in every process and across restarts, so a number read back
/// from a cache names the question that was written under it. Numbers
/// start at 1; new ids of one call get consecutive numbers in id order.
#[async_trait]
pub trait CatalogNumbers: Send + Sync {
    /// The number of each id (one per id, in order), numbering new ids.
    async fn assign_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<u64>>;
    /// The number of each id, `None` for an id never numbered (numbers
    /// nothing: for ids a client sent).
    async fn find_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<Option<u64>>>;
    /// The id of each number, `None` for a number never given.
    async fn numbered_questions(&self, numbers: &[u64]) -> PortResult<Vec<Option<QuestionId>>>;
    /// Up to `limit` numbered questions with numbers above `after`, in
    /// number order (a process reads them all when it starts).
    async fn numbered_after(&self, after: u64, limit: usize) -> PortResult<Vec<(u64, QuestionId)>>;

    /// The number of each subject or topic (one per label, in order),
    /// numbering new ones: label numbers are a space of their own, from 1,
    /// new labels of one call numbered in [`Label::key`] order.
    async fn assign_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<u64>>;
    /// The number of each label, `None` for one never numbered (numbers
    /// nothing: for a subject a client names).
    async fn find_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<Option<u64>>>;
    /// The label of each number, `None` for a number never given.
    async fn numbered_labels(&self, numbers: &[u64]) -> PortResult<Vec<Option<Label>>>;
    /// Up to `limit` numbered labels with numbers above `after`, in number
    /// order.
    async fn labels_numbered_after(
        &self,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Label)>>;
}

/// The due-schedule cache: per (user, season) the due time and state of
/// every card. A schedule is either *absent* (never loaded, expired,
/// evicted: reads answer `None` and the caller rehydrates) or *complete*.
#[cfg_attr(test, automock)]
#[async_trait]
pub trait DueCache: Send + Sync {
    /// Due items (due ≤ now), earliest first, at most `limit`; with a
    /// subject, only that subject's items — whenever the subject has due
    /// items, they are returned. `None` if the schedule is absent.
    async fn due<'a>(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&'a SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Option<DueSlice>>;
    /// Cached rows for the questions (`None` per question not cached;
    /// all `None` if the schedule is absent).
    async fn states(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<Option<MemoryTracker>>>;
    /// Writes rows into a *present* schedule (no-op if absent), never
    /// replacing an entry whose `last_review` is newer. Refreshes the TTL.
    async fn put(&self, user: &UserId, season: &SeasonId, rows: &[MemoryTracker])
    -> PortResult<()>;
    /// The persistence worker's write of job `job`'s rows once they are
    /// persisted: [`DueCache::put`], which an adapter may skip when it knows
    /// the schedule already holds them — the review fast path's commit
    /// wrote exactly these rows into this same schedule (not one loaded
    /// since) when it enqueued the job. The default writes them.
    async fn refresh(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
        job: &JobId,
    ) -> PortResult<()> {
        let _ = job;
        self.put(user, season, rows).await
    }
    /// Loads a complete schedule (rehydration), replacing what was there,
    /// except entries newer than the loaded ones.
    async fn load(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> PortResult<()>;
    /// Removes questions from a schedule.
    async fn remove(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<()>;
    /// Drops a user's schedule for one season.
    async fn clear_user(&self, user: &UserId, season: &SeasonId) -> PortResult<()>;
    /// Drops every schedule of a season; returns keys deleted.
    async fn clear_season(&self, season: &SeasonId) -> PortResult<u64>;
    /// Statistics of one schedule (`None` if absent).
    async fn user_stats(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Option<UserCacheStats>>;
    /// Global statistics.
    async fn stats(&self) -> PortResult<CacheStats>;
    /// Up to `n` users whose schedule of `season` is present, chosen
    /// pseudo-randomly by `seed`: the cache side of reconciliation. May
    /// walk the whole key space (never on the request path).
    async fn sample_schedules(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<UserId>>;
    /// Up to `n` cached entries of one schedule (all of them when it holds
    /// no more than `n`; otherwise which ones is the adapter's choice);
    /// empty if the schedule is absent.
    async fn sample_entries(
        &self,
        user: &UserId,
        season: &SeasonId,
        n: usize,
    ) -> PortResult<Vec<MemoryTracker>>;
    /// Health probe.
    async fn ping(&self) -> PortResult<()>;
}

/// Leaderboard cache (optional acceleration; the store is the source).
#[async_trait]
pub trait LeaderboardCache: Send + Sync {
    /// Adds XP to every period bucket of the global board and, if given, of
    /// the subject board.
    async fn add_xp(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        day: NaiveDate,
        xp: i64,
    ) -> PortResult<()>;
    /// Top entries of a board bucket (`None` if the board is not built).
    async fn top(
        &self,
        subject: Option<&SubjectId>,
        bucket: &str,
        limit: usize,
    ) -> PortResult<Option<Vec<BoardEntry>>>;
    /// The user's (xp, rank) in a board bucket (`None` if not built).
    async fn rank(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        bucket: &str,
    ) -> PortResult<Option<(i64, Option<u64>)>>;
}

/// A batch of answers waiting to be persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistJob {
    /// Job id returned to the client.
    pub id: JobId,
    /// The records.
    pub records: Vec<ReviewRecord>,
}

/// Status of a persistence job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Durably queued, not yet in the database.
    Queued,
    /// In the database.
    Done,
    /// Gave up after retries (in the dead-letter queue, replayable).
    Failed(String),
}

impl JobStatus {
    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Done => "done",
            JobStatus::Failed(_) => "failed",
        }
    }
}

/// The durable write-behind queue. `enqueue` returning `Ok` means the job
/// survives a crash of this process: only then may the answers be
/// acknowledged to the client.
#[cfg_attr(test, automock)]
#[async_trait]
pub trait PersistenceQueue: Send + Sync {
    /// Durably enqueues a job. Returns `Queued`, or `Done` for queues that
    /// persist synchronously (write-through).
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus>;
    /// Status of a job (`None` if unknown).
    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>>;
    /// Records the status of a job handled outside the queue (synchronous
    /// fallback); best effort.
    async fn record_status(&self, job: &JobId, status: &JobStatus) -> PortResult<()>;
    /// Jobs not yet persisted (queue depth).
    async fn depth(&self) -> PortResult<u64>;
    /// When the oldest job whose records may not be in the store yet was
    /// enqueued: the oldest pending job, or the oldest dead letter (its
    /// records are not in the store either). `None` when every acknowledged
    /// job is persisted (always, for write-through queues). Reconciliation
    /// keeps cache entries written since then: they may be on their way.
    async fn oldest_unpersisted(&self) -> PortResult<Option<DateTime<Utc>>>;
    /// Dead letters, oldest first, strictly after the entry `after` (keyset
    /// paging), at most `limit`. An id the adapter cannot have issued is
    /// treated as unknown, never as an error.
    async fn dead_letters<'a>(
        &self,
        after: Option<&'a str>,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>>;
    /// One dead letter (`None`: unknown or malformed id).
    async fn dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>>;
    /// Number of dead letters.
    async fn dead_letter_count(&self) -> PortResult<u64>;
    /// Moves a dead letter back into the queue (status `queued`), or, for a
    /// write-through queue, persists it now (status `done`). `false` if
    /// there is no such dead letter. Persisting is idempotent per review id,
    /// so replaying a job that was partly or wholly persisted before
    /// duplicates nothing.
    async fn replay_dead_letter(&self, id: &str) -> PortResult<bool>;
    /// Deletes a dead letter without persisting it (its job's status stays
    /// `failed`). `false` if there is no such dead letter.
    async fn discard_dead_letter(&self, id: &str) -> PortResult<bool>;
}

/// A persistence job that failed every retry, as an operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Id of the dead letter (the adapter's; pass it back to replay or
    /// discard).
    pub id: String,
    /// The job (`None` if its payload could not be decoded).
    pub job: Option<JobId>,
    /// The learner whose answers the job holds (a job holds one learner's
    /// answers of one season; `None` if undecodable or empty).
    pub user: Option<UserId>,
    /// The season of those answers.
    pub season: Option<SeasonId>,
    /// Number of answers (review records) in the job.
    pub records: u64,
    /// The last error.
    pub error: String,
    /// Attempts made before giving up.
    pub attempts: u32,
    /// When the job was dead-lettered (`None` if unknown).
    pub failed_at: Option<DateTime<Utc>>,
}

impl DeadLetter {
    /// Summarizes a dead letter from its job (`None`: undecodable payload).
    pub fn new(
        id: String,
        job: Option<&PersistJob>,
        error: String,
        attempts: u32,
        failed_at: Option<DateTime<Utc>>,
    ) -> Self {
        let first = job.and_then(|j| j.records.first()).map(|r| &r.tracker.key);
        DeadLetter {
            id,
            job: job.map(|j| j.id.clone()),
            user: first.map(|k| k.user.clone()),
            season: first.map(|k| k.season.clone()),
            records: job.map_or(0, |j| j.records.len() as u64),
            error,
            attempts,
            failed_at,
        }
    }
}

/// Progress of a background job (a season cache rebuild), kept in a
/// [`JobProgressStore`] so every process can read it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    /// Job id.
    pub id: JobId,
    /// Season.
    pub season: SeasonId,
    /// Rows expected.
    pub estimated: u64,
    /// Rows processed.
    pub processed: u64,
    /// Schedules written.
    pub users: u64,
    /// `running`, `completed` or `failed: …`.
    pub status: String,
    /// Resume point: last row key whose user was fully written.
    pub resume_after: Option<TrackerKey>,
    /// The process running the job (or that ran it last).
    pub owner: String,
    /// When the job was registered.
    pub started_at: DateTime<Utc>,
    /// When its runner last wrote progress (after every page): a `running`
    /// job whose runner stopped writing is stale.
    pub updated_at: DateTime<Utc>,
}

/// Progress records of background jobs, shared by every server process (a
/// rebuild started by one process is watched, and resumed if its process
/// died, from any other). Adapters store and compare; what counts as stale
/// is decided by the core.
#[async_trait]
pub trait JobProgressStore: Send + Sync {
    /// Writes the record if there is none for `progress.id` or its stored
    /// `owner` is `progress.owner`; returns `false` (nothing written) when
    /// another process has taken the job over.
    async fn save_progress(&self, progress: &JobProgress) -> PortResult<bool>;
    /// One job's record.
    async fn get_progress(&self, id: &JobId) -> PortResult<Option<JobProgress>>;
    /// Hands the job to `owner` (status `running`, `updated_at = now`) if its
    /// record still has `updated_at == seen`: of two processes taking over
    /// the same job, exactly one succeeds. Returns the new record, or `None`
    /// if the record changed or does not exist.
    async fn claim_progress(
        &self,
        id: &JobId,
        seen: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<JobProgress>>;
}

/// Every port the use cases need, as shared trait objects.
#[derive(Clone)]
pub struct Ports {
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Where background jobs run CPU-heavy steps, and how they pause.
    pub job_runtime: Arc<dyn JobRuntime>,
    /// Content.
    pub content: Arc<dyn ContentStore>,
    /// Seasons.
    pub seasons: Arc<dyn SeasonStore>,
    /// Learner memory on the request path (trackers, `persist_batch`).
    pub trackers: Arc<dyn TrackerStore>,
    /// Review-log reads.
    pub revlog: Arc<dyn ReviewLogStore>,
    /// Whole-season scans and samples (cache rebuild, reconciliation).
    pub scans: Arc<dyn SeasonScanStore>,
    /// Season archival and retention.
    pub archive: Arc<dyn ArchiveStore>,
    /// Player profiles.
    pub profiles: Arc<dyn ProfileStore>,
    /// Sessions, XP and leaderboard sources.
    pub activity: Arc<dyn ActivityStore>,
    /// Per-learner FSRS parameters.
    pub fsrs: Arc<dyn FsrsParamStore>,
    /// Store and subscriptions.
    pub commerce: Arc<dyn CommerceStore>,
    /// Quests.
    pub quests: Arc<dyn QuestStore>,
    /// Auth.
    pub auth: Arc<dyn AuthStore>,
    /// Audit log.
    pub audit: Arc<dyn AuditStore>,
    /// Players' devices.
    pub devices: Arc<dyn DeviceStore>,
    /// Job leases.
    pub locks: Arc<dyn JobLock>,
    /// State shared by every server process (invalidations, safe-mode
    /// budget, stale schedules).
    pub coordination: Arc<dyn Coordination>,
    /// Due-schedule cache.
    pub cache: Arc<dyn DueCache>,
    /// Leaderboard cache (optional).
    pub leaderboard: Option<Arc<dyn LeaderboardCache>>,
    /// Durable write queue.
    pub queue: Arc<dyn PersistenceQueue>,
    /// Progress of background jobs, shared by every process.
    pub job_progress: Arc<dyn JobProgressStore>,
    /// Served-set ledger in the store (durable; the fallback in safe mode).
    pub served: Arc<dyn ServedLedger>,
    /// Served-set ledger in the cache (fast path), if there is a cache
    /// server; `None` uses `served` only.
    pub served_cache: Option<Arc<dyn ServedLedger>>,
    /// The review fast path over the cache (one round trip per warm review
    /// read, two per submission), if the cache offers it; `None` uses the
    /// general path through `cache`, `served_cache`, `queue` and
    /// `leaderboard`.
    pub fast_path: Option<Arc<dyn ReviewFastPath>>,
    /// Shared failed-login counters (Redis); `None` or a failing counter
    /// falls back to the core's bounded in-process counter.
    pub attempts: Option<Arc<dyn AttemptCounter>>,
}

/// What the server remembers about one item it served to a learner (a
/// review card, or a lesson handed out by `get_lesson_details`): the basis
/// of served-set binding, XP once per item per learner day, and idempotent
/// answers. Entries are keyed by (user, season, item key); the item key is
/// `q:<question id>` or `l:<lesson id>` (see `services::integrity`).
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    /// When the item was last served (also the compare-and-set token of
    /// [`ServedLedger::commit`]).
    pub served_at: DateTime<Utc>,
    /// An answer is accepted until then.
    pub answerable_until: DateTime<Utc>,
    /// The entry is forgotten after this (≥ `answerable_until`).
    pub retain_until: DateTime<Utc>,
    /// The current serving has been answered.
    pub answered: bool,
    /// The most recent accepted answer (kept across re-servings, so a
    /// replayed review id is recognised).
    pub last_receipt: Option<AnswerReceipt>,
    /// Learner day on which this item last earned XP.
    pub xp_day: Option<NaiveDate>,
}

/// The server's record of one accepted answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerReceipt {
    /// Review id as stored in the review log (scoped to the learner).
    pub review_id: ReviewId,
    /// Persistence job the answer went into.
    pub job_id: JobId,
    /// XP this answer earned.
    pub xp: i64,
    /// When it was accepted.
    pub answered_at: DateTime<Utc>,
}

/// One answer to bind to a serving in [`ServedLedger::commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct ServingClaim {
    /// Item key.
    pub item: String,
    /// The `served_at` read by [`ServedLedger::lookup`]: the commit fails if
    /// the entry changed since.
    pub served_at: DateTime<Utc>,
    /// Receipt to store (also marks the serving answered).
    pub receipt: AnswerReceipt,
    /// New `xp_day`.
    pub xp_day: Option<NaiveDate>,
    /// `xp_day` before this claim (restored by [`ServedLedger::release`]).
    pub prev_xp_day: Option<NaiveDate>,
}

/// The served-set ledger. Two implementations are composed by the core: a
/// fast one in the cache (Redis) and a durable one in the store (used when
/// the cache is down, so binding holds in safe mode and across processes).
/// Adapters store and compare; every rule (what may be answered, what earns
/// XP) lives in the core.
#[async_trait]
pub trait ServedLedger: Send + Sync {
    /// Records that `items` were served at `served_at`: each entry becomes
    /// answerable until `answerable_until` and is kept until `retain_until`;
    /// `answered` is reset, `last_receipt` and `xp_day` are kept.
    async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        served_at: DateTime<Utc>,
        answerable_until: DateTime<Utc>,
        retain_until: DateTime<Utc>,
    ) -> PortResult<()>;

    /// The entries of `items`, in order (`None`: never served, or past its
    /// `retain_until` at `now`).
    async fn lookup(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> PortResult<Vec<Option<Serving>>>;

    /// All or nothing: if every claimed entry exists, still has the claimed
    /// `served_at` and is not answered, marks each answered with its receipt
    /// and `xp_day` and returns `true`; otherwise changes nothing and returns
    /// `false` (a concurrent submission won).
    async fn commit(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<bool>;

    /// Undoes a commit whose answers could not be made durable: entries whose
    /// `last_receipt` carries the claim's review id become unanswered again,
    /// with `last_receipt` cleared and `xp_day` set back to `prev_xp_day`.
    async fn release(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<()>;

    /// Deletes entries past their `retain_until` (stores that do not expire
    /// keys by themselves); returns how many.
    async fn purge_expired(&self, now: DateTime<Utc>) -> PortResult<u64>;
}

/// Failed-attempt counters (login throttling), shared by every server
/// process when backed by Redis. The core decides what a count means.
#[async_trait]
pub trait AttemptCounter: Send + Sync {
    /// Failures recorded under `key` and the time of the latest (`None`:
    /// none, or expired at `now`).
    async fn failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<(u32, DateTime<Utc>)>>;
    /// Adds one failure at `now`; the counter expires `ttl` after its latest
    /// failure. Returns the new count.
    async fn record_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> PortResult<u32>;
    /// Forgets `key` (after a successful login).
    async fn reset(&self, key: &str) -> PortResult<()>;
}
