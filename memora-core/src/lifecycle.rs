//! Data-lifecycle policies: season archival, retention of archived rows,
//! strict confirmation flags, cache reconciliation, retry back-off and
//! idempotent review writes.
//!
//! These are the pure decision rules behind the original's background jobs
//! (spec §4.5, §4.6, §4.8), with the defects listed in spec §7 fixed:
//! confirmation flags are parsed strictly so the string `"false"` never
//! confirms a destructive action (§7 #15); reconciliation never overwrites a
//! cache entry that is newer than the database row and also removes entries
//! that no longer have a due date (§7 #8), and it also looks at entries only
//! the cache holds, which the original never saw (§4.6), removing them unless
//! a write for them may still be pending; the retry back-off is actually a
//! delay to apply (§7 #5); and replayed review writes are recognised by their
//! event time instead of a 300-second "recently modified" heuristic.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::Value;

/// Errors produced by the lifecycle policies.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    /// A string could not be interpreted as a boolean.
    #[error("invalid boolean {0:?} (expected 1/0, true/false, yes/no, on/off)")]
    InvalidBool(String),
    /// A JSON value could not be interpreted as a boolean.
    #[error("invalid boolean JSON value {0}")]
    InvalidBoolJson(String),
}

// ---------------------------------------------------------------------------
// Archival and retention
// ---------------------------------------------------------------------------

/// Days an archived row is kept before it becomes eligible for deletion
/// (3 × 365).
pub const RETENTION_DAYS: i64 = 1095;

/// Whether the daily auto-archiver should archive a season: `auto_archive`
/// is set, the season is not active and its `end_date` is strictly before
/// `today`. A season without an end date is never auto-archived.
pub fn archive_eligible(
    is_active: bool,
    auto_archive: bool,
    end_date: Option<NaiveDate>,
    today: NaiveDate,
) -> bool {
    auto_archive && !is_active && end_date.is_some_and(|end| end < today)
}

/// `now - RETENTION_DAYS` days; archived rows whose `archived_at` is strictly
/// before the cutoff are flagged as eligible for deletion.
pub fn retention_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(TimeDelta::days(RETENTION_DAYS))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether a row archived at `archived_at` is past retention at `now`.
pub fn eligible_for_deletion(archived_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    archived_at < retention_cutoff(now)
}

// ---------------------------------------------------------------------------
// Strict confirmation flags
// ---------------------------------------------------------------------------

/// Parses a confirmation flag strictly (trimmed, ASCII case-insensitive):
/// `"1"`, `"true"`, `"yes"`, `"on"` → `true`; `"0"`, `"false"`, `"no"`,
/// `"off"`, `""` → `false`; anything else is an error.
pub fn parse_confirm_str(s: &str) -> Result<bool, LifecycleError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(LifecycleError::InvalidBool(s.to_owned())),
    }
}

/// Parses a JSON boolean strictly: `true`/`false`, the numbers `0` and `1`
/// (also `0.0`/`1.0`), and strings via [`parse_confirm_str`]. Everything else
/// (other numbers, `null`, arrays, objects) is an error.
pub fn parse_bool_json(v: &Value) -> Result<bool, LifecycleError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => {
            if n.as_u64() == Some(1) || n.as_f64() == Some(1.0) {
                Ok(true)
            } else if n.as_u64() == Some(0) || n.as_f64() == Some(0.0) {
                Ok(false)
            } else {
                Err(LifecycleError::InvalidBoolJson(v.to_string()))
            }
        }
        Value::String(s) => parse_confirm_str(s),
        _ => Err(LifecycleError::InvalidBoolJson(v.to_string())),
    }
}

/// Reads an optional confirmation parameter: absent or `null` means `false`
/// (not confirmed); anything else goes through [`parse_bool_json`].
pub fn parse_confirm(value: Option<&Value>) -> Result<bool, LifecycleError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(v) => parse_bool_json(v),
    }
}

// ---------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------

/// Maximum difference (seconds) between the cached score and the database
/// due time that still counts as in sync.
pub const RECONCILE_TOLERANCE_SECS: u64 = 1;

/// What reconciliation should do with one (player, season, item) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileAction {
    /// Cache and database agree (or both have nothing).
    InSync,
    /// The cache lacks the entry: add it with this score (unix seconds).
    AddToCache(i64),
    /// The cached score is stale: replace it with this score (unix seconds).
    UpdateCache(i64),
    /// The cache entry differs but was written after the database row (the
    /// write is still being persisted): leave it alone.
    KeepCacheNewer,
    /// The database row has no due date any more: drop the cache entry.
    RemoveFromCache,
}

impl ReconcileAction {
    /// Whether this entry counts as a discrepancy for the alert rate.
    /// [`ReconcileAction::KeepCacheNewer`] is expected persistence lag and
    /// does not count.
    pub fn is_discrepancy(&self) -> bool {
        matches!(
            self,
            Self::AddToCache(_) | Self::UpdateCache(_) | Self::RemoveFromCache
        )
    }
}

/// Outcome of reconciling one entry, with the observed drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileDecision {
    /// What to do with the cache entry.
    pub action: ReconcileAction,
    /// `cache_score - db_due` in seconds when both are present.
    pub drift_secs: Option<i128>,
}

/// Decides how to reconcile one entry (DB is the source of truth unless the
/// cache entry is provably newer):
///
/// 1. both absent → `InSync`;
/// 2. cache absent, DB due present → `AddToCache(db_due)`;
/// 3. both present and within 1 s → `InSync`;
/// 4. cache present and `cache_updated_at > db_updated_at` → `KeepCacheNewer`
///    (a newer cache entry is never overwritten or removed);
/// 5. cache present, DB due absent → `RemoveFromCache`;
/// 6. otherwise → `UpdateCache(db_due)`.
///
/// An unknown `cache_updated_at` is treated as not newer.
pub fn reconcile_entry(
    cache_score: Option<i64>,
    db_due: Option<DateTime<Utc>>,
    db_updated_at: DateTime<Utc>,
    cache_updated_at: Option<DateTime<Utc>>,
) -> ReconcileAction {
    reconcile_decision(cache_score, db_due, db_updated_at, cache_updated_at).action
}

/// Like [`reconcile_entry`] but also reports the drift between cache and DB.
pub fn reconcile_decision(
    cache_score: Option<i64>,
    db_due: Option<DateTime<Utc>>,
    db_updated_at: DateTime<Utc>,
    cache_updated_at: Option<DateTime<Utc>>,
) -> ReconcileDecision {
    let db_score = db_due.map(|d| d.timestamp());
    let drift_secs = match (cache_score, db_score) {
        (Some(c), Some(d)) => Some(i128::from(c) - i128::from(d)),
        _ => None,
    };
    let cache_newer = cache_updated_at.is_some_and(|c| c > db_updated_at);
    let action = match (cache_score, db_score) {
        (None, None) => ReconcileAction::InSync,
        (None, Some(d)) => ReconcileAction::AddToCache(d),
        (Some(c), Some(d)) if c.abs_diff(d) <= RECONCILE_TOLERANCE_SECS => ReconcileAction::InSync,
        (Some(_), _) if cache_newer => ReconcileAction::KeepCacheNewer,
        (Some(_), None) => ReconcileAction::RemoveFromCache,
        (Some(_), Some(d)) => ReconcileAction::UpdateCache(d),
    };
    ReconcileDecision { action, drift_secs }
}

/// What reconciliation does with a cache entry whose tracker is not in the
/// database (a member found only by sampling the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOnlyAction {
    /// The entry may belong to an answer still on its way to the database
    /// (a queued, or dead-lettered and replayable, write-behind job): keep
    /// it; it is write-behind lag like [`ReconcileAction::KeepCacheNewer`],
    /// not a discrepancy.
    KeepPending,
    /// No write can be pending for it: the entry is stale (its row was
    /// deleted or archived, or its write was discarded). Remove it; it is a
    /// discrepancy.
    RemoveStale,
}

/// Decides the fate of a cache-only entry last reviewed at
/// `cache_last_review`.
///
/// An answer reaches the cache only after its job was durably enqueued, so
/// every job holding an answer reviewed at `t` was enqueued at or after `t`
/// (give or take clock skew between processes). If the oldest job that may
/// not be in the database yet (`oldest_unpersisted`, pending or dead-
/// lettered) was enqueued at `o`, an answer reviewed before `o − grace` is
/// either in the database or nowhere. The same bound is applied to `now`,
/// so an answer from the last `grace` is always kept (it may be between
/// enqueue and the queue's bookkeeping). An entry never reviewed (loaded
/// from a row that no longer exists) is stale.
pub fn cache_only_action(
    cache_last_review: Option<DateTime<Utc>>,
    oldest_unpersisted: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> CacheOnlyAction {
    let horizon = oldest_unpersisted.map_or(now, |o| o.min(now));
    let cutoff = horizon
        .checked_sub_signed(grace)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    match cache_last_review {
        Some(at) if at >= cutoff => CacheOnlyAction::KeepPending,
        _ => CacheOnlyAction::RemoveStale,
    }
}

/// Discrepancy rate above which an alert is raised (0.1 %).
pub const DISCREPANCY_ALERT_RATE: f64 = 0.001;

/// Whether `discrepancies / sampled` exceeds [`DISCREPANCY_ALERT_RATE`]
/// (strictly). Evaluated exactly in integers as `discrepancies * 1000 >
/// sampled`; nothing sampled never alerts.
pub fn discrepancy_alert(discrepancies: usize, sampled: usize) -> bool {
    if sampled == 0 {
        return false;
    }
    // usize -> u128 is lossless on every supported platform.
    let d = discrepancies as u128;
    let s = sampled as u128;
    d * 1000 > s
}

/// Running totals of a reconciliation pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// Entries examined.
    pub sampled: usize,
    /// Entries that needed a correction ([`ReconcileAction::is_discrepancy`]).
    pub discrepancies: usize,
    /// Entries left alone because the cache was newer.
    pub kept_cache_newer: usize,
}

impl ReconcileSummary {
    /// Accounts for one reconciled entry.
    pub fn record(&mut self, action: ReconcileAction) {
        self.sampled += 1;
        if action.is_discrepancy() {
            self.discrepancies += 1;
        }
        if action == ReconcileAction::KeepCacheNewer {
            self.kept_cache_newer += 1;
        }
    }

    /// `discrepancies / sampled` (0 when nothing was sampled), for reporting.
    pub fn rate(&self) -> f64 {
        if self.sampled == 0 {
            0.0
        } else {
            self.discrepancies as f64 / self.sampled as f64
        }
    }

    /// Whether this pass should raise an alert ([`discrepancy_alert`]).
    pub fn alert(&self) -> bool {
        discrepancy_alert(self.discrepancies, self.sampled)
    }
}

// ---------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------

/// Exponential back-off for background jobs: `base * 2^attempt`, capped at
/// `max_delay`, for at most `max_retries` retries; after that the job goes to
/// the dead-letter store.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry (1 s).
    pub base: Duration,
    /// Upper bound of any delay (60 s).
    pub max_delay: Duration,
    /// Number of retries before giving up (3).
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    /// 1 s base, 60 s cap, 3 retries.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retries: 3,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (0-based): `min(base * 2^attempt,
    /// max_delay)`, or `None` once `attempt >= max_retries` (give up and
    /// dead-letter). Overflow saturates to `max_delay`.
    pub fn delay_for(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        let delay = 2u32
            .checked_pow(attempt)
            .and_then(|factor| self.base.checked_mul(factor))
            .unwrap_or(self.max_delay);
        Some(delay.min(self.max_delay))
    }
}

// ---------------------------------------------------------------------------
// Idempotent review writes
// ---------------------------------------------------------------------------

/// How to apply a review result to the unique (player, season, item) row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteDecision {
    /// No row yet: insert it.
    Insert,
    /// The result is newer than the stored review: update the row in place.
    Apply,
    /// The same review (same event time) was already applied: skip.
    SkipDuplicate,
    /// An older review arrived late (out-of-order retry): skip it so it does
    /// not roll the schedule back.
    SkipStale,
}

/// Decides how a review result reviewed at `incoming_reviewed_at` is written,
/// given the stored row's `last_review` (if the row exists). Replaces the
/// original's "modified less than 300 s ago ⇒ duplicate" heuristic, which
/// also dropped legitimate quick re-reviews: retries and replays carry the
/// original event time, so they are recognised exactly.
pub fn review_write_decision(
    existing_last_review: Option<DateTime<Utc>>,
    incoming_reviewed_at: DateTime<Utc>,
) -> WriteDecision {
    match existing_last_review {
        None => WriteDecision::Insert,
        Some(last) if incoming_reviewed_at > last => WriteDecision::Apply,
        Some(last) if incoming_reviewed_at == last => WriteDecision::SkipDuplicate,
        Some(_) => WriteDecision::SkipStale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn archive_eligibility() {
        let today = date(2026, 9, 1);
        assert!(archive_eligible(
            false,
            true,
            Some(date(2026, 8, 31)),
            today
        ));
        // End date today is not yet eligible (strictly before).
        assert!(!archive_eligible(false, true, Some(today), today));
        assert!(!archive_eligible(true, true, Some(date(2026, 1, 1)), today));
        assert!(!archive_eligible(
            false,
            false,
            Some(date(2026, 1, 1)),
            today
        ));
        assert!(!archive_eligible(false, true, None, today));
    }

    #[test]
    fn retention() {
        assert_eq!(RETENTION_DAYS, 3 * 365);
        let now = utc("2026-11-22T12:00:00Z");
        // 2026-11-22 minus 1095 days (2024 is a leap year) = 2023-11-23.
        assert_eq!(retention_cutoff(now), utc("2023-11-23T12:00:00Z"));
        assert!(eligible_for_deletion(utc("2023-11-23T11:59:59Z"), now));
        assert!(!eligible_for_deletion(utc("2023-11-23T12:00:00Z"), now));
        assert!(!eligible_for_deletion(utc("2025-01-01T00:00:00Z"), now));
        assert_eq!(
            retention_cutoff(DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn confirm_strings() {
        for s in ["1", "true", "TRUE", " yes ", "On", "True"] {
            assert_eq!(parse_confirm_str(s), Ok(true), "{s:?}");
        }
        for s in ["0", "false", "False", "no", "OFF", "", "   "] {
            assert_eq!(parse_confirm_str(s), Ok(false), "{s:?}");
        }
        for s in ["2", "y", "n", "truee", "confirm", "-1", "1.0"] {
            assert_eq!(
                parse_confirm_str(s),
                Err(LifecycleError::InvalidBool(s.to_owned())),
                "{s:?}"
            );
        }
    }

    #[test]
    fn confirm_json() {
        assert_eq!(parse_bool_json(&json!(true)), Ok(true));
        assert_eq!(parse_bool_json(&json!(false)), Ok(false));
        assert_eq!(parse_bool_json(&json!(1)), Ok(true));
        assert_eq!(parse_bool_json(&json!(0)), Ok(false));
        assert_eq!(parse_bool_json(&json!(1.0)), Ok(true));
        // The original treated the string "false" as confirmation (§7 #15).
        assert_eq!(parse_bool_json(&json!("false")), Ok(false));
        assert_eq!(parse_bool_json(&json!("0")), Ok(false));
        assert_eq!(parse_bool_json(&json!("true")), Ok(true));
        for bad in [
            json!(2),
            json!(-1),
            json!(0.5),
            json!(null),
            json!([]),
            json!({}),
        ] {
            assert!(parse_bool_json(&bad).is_err(), "{bad}");
        }
        assert_eq!(parse_confirm(None), Ok(false));
        assert_eq!(parse_confirm(Some(&json!(null))), Ok(false));
        assert_eq!(parse_confirm(Some(&json!("yes"))), Ok(true));
        assert!(parse_confirm(Some(&json!("maybe"))).is_err());
    }

    #[test]
    fn reconcile_cases() {
        let db_updated = utc("2026-11-22T10:00:00Z");
        let due = utc("2026-11-25T08:00:00Z");
        let ts = due.timestamp();
        let older = Some(utc("2026-11-22T09:00:00Z"));
        let newer = Some(utc("2026-11-22T11:00:00Z"));
        use ReconcileAction::*;
        assert_eq!(reconcile_entry(None, None, db_updated, None), InSync);
        assert_eq!(
            reconcile_entry(None, Some(due), db_updated, None),
            AddToCache(ts)
        );
        assert_eq!(
            reconcile_entry(Some(ts), Some(due), db_updated, older),
            InSync
        );
        // Within the 1 s tolerance.
        assert_eq!(
            reconcile_entry(Some(ts + 1), Some(due), db_updated, None),
            InSync
        );
        assert_eq!(
            reconcile_entry(Some(ts - 1), Some(due), db_updated, None),
            InSync
        );
        // Beyond tolerance and cache older/unknown: DB wins.
        assert_eq!(
            reconcile_entry(Some(ts + 2), Some(due), db_updated, older),
            UpdateCache(ts)
        );
        assert_eq!(
            reconcile_entry(Some(ts - 86_400), Some(due), db_updated, None),
            UpdateCache(ts)
        );
        // Same update time is not "newer": DB wins.
        assert_eq!(
            reconcile_entry(Some(ts + 2), Some(due), db_updated, Some(db_updated)),
            UpdateCache(ts)
        );
        // Cache written after the DB row: never overwritten (§7 #8).
        assert_eq!(
            reconcile_entry(Some(ts + 3 * 86_400), Some(due), db_updated, newer),
            KeepCacheNewer
        );
        // DB has no due date: remove, unless the cache is newer.
        assert_eq!(
            reconcile_entry(Some(ts), None, db_updated, older),
            RemoveFromCache
        );
        assert_eq!(
            reconcile_entry(Some(ts), None, db_updated, None),
            RemoveFromCache
        );
        assert_eq!(
            reconcile_entry(Some(ts), None, db_updated, newer),
            KeepCacheNewer
        );

        let d = reconcile_decision(Some(ts + 5), Some(due), db_updated, None);
        assert_eq!(d.drift_secs, Some(5));
        assert_eq!(d.action, UpdateCache(ts));
        assert!(UpdateCache(0).is_discrepancy());
        assert!(AddToCache(0).is_discrepancy());
        assert!(RemoveFromCache.is_discrepancy());
        assert!(!KeepCacheNewer.is_discrepancy());
        assert!(!InSync.is_discrepancy());
        // Extreme scores do not overflow.
        assert_eq!(
            reconcile_entry(Some(i64::MIN), Some(due), db_updated, None),
            UpdateCache(ts)
        );
    }

    #[test]
    fn cache_only_entries() {
        use CacheOnlyAction::*;
        let now = utc("2026-11-22T12:00:00Z");
        let grace = TimeDelta::minutes(10);
        let ago = |m: i64| Some(now - TimeDelta::minutes(m));
        // Nothing pending: only the last `grace` is kept.
        assert_eq!(cache_only_action(ago(0), None, now, grace), KeepPending);
        assert_eq!(cache_only_action(ago(10), None, now, grace), KeepPending);
        assert_eq!(cache_only_action(ago(11), None, now, grace), RemoveStale);
        assert_eq!(cache_only_action(None, None, now, grace), RemoveStale);
        // A job enqueued two hours ago is not persisted yet: anything
        // answered since (less the grace) may be in it.
        let pending = ago(120);
        assert_eq!(cache_only_action(ago(60), pending, now, grace), KeepPending);
        assert_eq!(
            cache_only_action(ago(125), pending, now, grace),
            KeepPending
        );
        assert_eq!(
            cache_only_action(ago(131), pending, now, grace),
            RemoveStale
        );
        assert_eq!(cache_only_action(None, pending, now, grace), RemoveStale);
        // A pending time in the future (clock skew) never widens past now.
        assert_eq!(
            cache_only_action(ago(11), Some(now + TimeDelta::hours(1)), now, grace),
            RemoveStale
        );
        // Unknown queue state is passed as the earliest time: keep all.
        assert_eq!(
            cache_only_action(ago(100_000), Some(DateTime::<Utc>::MIN_UTC), now, grace),
            KeepPending
        );
    }

    #[test]
    fn alert_threshold() {
        assert!(!discrepancy_alert(0, 0));
        assert!(!discrepancy_alert(5, 0));
        assert!(!discrepancy_alert(0, 10_000));
        // Exactly 0.1 % does not alert; above it does.
        assert!(!discrepancy_alert(10, 10_000));
        assert!(discrepancy_alert(11, 10_000));
        assert!(discrepancy_alert(1, 999));
        assert!(!discrepancy_alert(1, 1000));
        assert!(discrepancy_alert(usize::MAX, usize::MAX));

        let mut s = ReconcileSummary::default();
        for _ in 0..997 {
            s.record(ReconcileAction::InSync);
        }
        s.record(ReconcileAction::KeepCacheNewer);
        s.record(ReconcileAction::UpdateCache(1));
        assert_eq!(s.sampled, 999);
        assert_eq!(s.discrepancies, 1);
        assert_eq!(s.kept_cache_newer, 1);
        assert!(s.alert());
        s.record(ReconcileAction::InSync);
        assert!(!s.alert());
        assert!((s.rate() - DISCREPANCY_ALERT_RATE).abs() < 1e-12);
        assert_eq!(ReconcileSummary::default().rate(), 0.0);
    }

    #[test]
    fn retry_backoff() {
        let p = RetryPolicy::default();
        assert_eq!(p.base, Duration::from_secs(1));
        assert_eq!(p.max_delay, Duration::from_secs(60));
        assert_eq!(p.max_retries, 3);
        assert_eq!(p.delay_for(0), Some(Duration::from_secs(1)));
        assert_eq!(p.delay_for(1), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_for(2), Some(Duration::from_secs(4)));
        assert_eq!(p.delay_for(3), None);
        assert_eq!(p.delay_for(u32::MAX), None);
        let long = RetryPolicy {
            max_retries: 100,
            ..RetryPolicy::default()
        };
        assert_eq!(long.delay_for(5), Some(Duration::from_secs(32)));
        assert_eq!(long.delay_for(6), Some(Duration::from_secs(60)));
        assert_eq!(long.delay_for(40), Some(Duration::from_secs(60)));
        assert_eq!(long.delay_for(99), Some(Duration::from_secs(60)));
    }

    #[test]
    fn review_writes_are_idempotent() {
        let t = utc("2026-11-22T10:00:00Z");
        assert_eq!(review_write_decision(None, t), WriteDecision::Insert);
        assert_eq!(
            review_write_decision(Some(t), t + TimeDelta::seconds(5)),
            WriteDecision::Apply
        );
        assert_eq!(
            review_write_decision(Some(t), t),
            WriteDecision::SkipDuplicate
        );
        assert_eq!(
            review_write_decision(Some(t), t - TimeDelta::seconds(5)),
            WriteDecision::SkipStale
        );
    }

    proptest! {
        #[test]
        fn newer_cache_is_never_overwritten(
            cache in proptest::option::of(any::<i64>()),
            due in proptest::option::of(0i64..4_000_000_000),
            db_upd in 0i64..4_000_000_000,
            cache_upd in proptest::option::of(0i64..4_000_000_000),
        ) {
            let ts = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
            let action = reconcile_entry(cache, due.map(ts), ts(db_upd), cache_upd.map(ts));
            let cache_newer = cache_upd.is_some_and(|c| c > db_upd);
            if cache.is_some() && cache_newer {
                prop_assert!(matches!(
                    action,
                    ReconcileAction::KeepCacheNewer | ReconcileAction::InSync
                ));
            }
            if let ReconcileAction::UpdateCache(s) | ReconcileAction::AddToCache(s) = action {
                prop_assert_eq!(Some(s), due);
            }
            if cache.is_none() {
                prop_assert!(!matches!(
                    action,
                    ReconcileAction::KeepCacheNewer
                        | ReconcileAction::RemoveFromCache
                        | ReconcileAction::UpdateCache(_)
                ));
            }
        }

        #[test]
        fn alert_matches_float_rate(d in 0usize..100_000, s in 1usize..100_000) {
            let float = (d as f64 / s as f64) > DISCREPANCY_ALERT_RATE;
            // The float comparison can only disagree at the exact boundary.
            if d * 1000 != s {
                prop_assert_eq!(discrepancy_alert(d, s), float);
            } else {
                prop_assert!(!discrepancy_alert(d, s));
            }
        }

        #[test]
        fn retry_delays_are_monotone_and_capped(attempt in 0u32..200) {
            let p = RetryPolicy { max_retries: 200, ..RetryPolicy::default() };
            let d = p.delay_for(attempt).unwrap();
            prop_assert!(d <= p.max_delay && d >= p.base);
            if attempt > 0 {
                prop_assert!(p.delay_for(attempt - 1).unwrap() <= d);
            }
        }
    }
}
