//! The in-memory store: every store port over one mutex-guarded state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::*;
use crate::error::{PortError, PortResult};
use crate::ids::*;
use crate::ports::*;
use crate::srs::MasteryBucket;
use crate::util::SplitMix64;

use super::{InMemoryCache, SequentialIds, Sha256Hasher, SystemClock};

type SeasonRows = BTreeMap<(UserId, QuestionId), MemoryTracker>;

#[derive(Default)]
struct State {
    catalog: Catalog,
    catalog_version: u64,
    seasons: BTreeMap<SeasonId, Season>,
    trackers: HashMap<SeasonId, SeasonRows>,
    log: HashMap<ReviewId, ReviewLogEntry>,
    log_order: Vec<ReviewId>,
    archived: Vec<ArchivedTracker>,
    profiles: HashMap<UserId, PlayerProfile>,
    sessions: Vec<GameplaySession>,
    session_ids: HashSet<SessionId>,
    pending_batches: BTreeMap<JobId, (DateTime<Utc>, PersistJob)>,
    subject_xp: HashMap<(UserId, SubjectId), i64>,
    fsrs: HashMap<UserId, (Vec<f64>, u64)>,
    fit_quality: HashMap<UserId, FitQuality>,
    items: BTreeMap<SalesItemId, SalesItem>,
    requests: Vec<PurchaseRequest>,
    subscriptions: Vec<Subscription>,
    claims: HashSet<(UserId, NaiveDate, String)>,
    users: BTreeMap<UserId, User>,
    passwords: HashMap<UserId, String>,
    login_sessions: HashMap<String, (UserId, DateTime<Utc>)>,
    api_keys: HashMap<String, ApiKeyRecord>,
    audit: Vec<AuditEvent>,
    devices: BTreeMap<(UserId, String), Device>,
    session_devices: HashMap<String, (UserId, String)>,
    leases: HashMap<String, MemLease>,
    runs: Vec<JobRun>,
    invalidations: Vec<(u64, DateTime<Utc>, Invalidation)>,
    invalidation_seq: u64,
    admissions: Option<Arc<crate::safe_mode::SafeModeLimiter>>,
    stale: BTreeMap<(UserId, SeasonId), u64>,
    served: HashMap<(UserId, SeasonId, String), Serving>,
    dead_letters: BTreeMap<u64, MemDeadLetter>,
    dead_seq: u64,
    job_progress: HashMap<JobId, JobProgress>,
    question_numbers: NumberSpace<QuestionId>,
    label_numbers: NumberSpace<Label>,
}

/// One number space of [`CatalogNumbers`]: key → number, and the keys in
/// number order (number `n` is `keys[n - 1]`).
#[derive(Debug)]
struct NumberSpace<K> {
    of: HashMap<K, u64>,
    keys: Vec<K>,
}

impl<K> Default for NumberSpace<K> {
    fn default() -> Self {
        NumberSpace {
            of: HashMap::new(),
            keys: Vec::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> NumberSpace<K> {
    /// Numbers the new keys (in `order`, once each), then answers all.
    fn assign(&mut self, keys: &[K], order: impl Fn(&K, &K) -> std::cmp::Ordering) -> Vec<u64> {
        let mut new: Vec<&K> = keys.iter().filter(|k| !self.of.contains_key(*k)).collect();
        new.sort_by(|a, b| order(a, b));
        new.dedup();
        for k in new {
            self.keys.push(k.clone());
            self.of.insert(k.clone(), self.keys.len() as u64);
        }
        keys.iter()
            .map(|k| self.of.get(k).copied().unwrap_or_default())
            .collect()
    }

    fn find(&self, keys: &[K]) -> Vec<Option<u64>> {
        keys.iter().map(|k| self.of.get(k).copied()).collect()
    }

    fn after(&self, after: u64, limit: usize) -> Vec<(u64, K)> {
        let from = usize::try_from(after).unwrap_or(usize::MAX);
        self.keys
            .iter()
            .enumerate()
            .skip(from)
            .take(limit)
            .map(|(i, k)| (i as u64 + 1, k.clone()))
            .collect()
    }

    fn named(&self, numbers: &[u64]) -> Vec<Option<K>> {
        numbers
            .iter()
            .map(|n| {
                usize::try_from(*n)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| self.keys.get(i).cloned())
            })
            .collect()
    }
}

/// A job's lease row: the current (or last) lease, its newest token and
/// when the job last started.
#[derive(Debug)]
struct MemLease {
    lease: JobLease,
    last_started: DateTime<Utc>,
}

/// A dead letter of the in-memory queue.
#[derive(Clone, Debug)]
struct MemDeadLetter {
    job: PersistJob,
    error: String,
    attempts: u32,
    at: DateTime<Utc>,
}

impl MemDeadLetter {
    fn summary(&self, id: u64) -> DeadLetter {
        DeadLetter::new(
            id.to_string(),
            Some(&self.job),
            self.error.clone(),
            self.attempts,
            Some(self.at),
        )
    }
}

/// All store ports in memory. Cloning shares the state.
#[derive(Clone)]
pub struct InMemoryBackend {
    state: Arc<Mutex<State>>,
    cache: InMemoryCache,
    queue_available: Arc<AtomicBool>,
    store_available: Arc<AtomicBool>,
}

/// The entries of a collection as sorted `Debug` lines (so the same
/// content prints the same whatever a hash map's iteration order).
fn lines<T: std::fmt::Debug>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(|i| format!("{i:?}")).collect();
    v.sort();
    v
}

/// The same as [`InMemoryBackend::new`]: an empty backend whose store and
/// queue work (a derived `Default` used to build one with both switched
/// off, which `unwrap_or_default` and friends picked up silently).
impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryBackend {
    /// A deterministic text of everything this backend stores (not the due
    /// cache): equal fingerprints mean equal stored state. Tests use it to
    /// show that a call changed nothing (the institution isolation suite).
    pub fn fingerprint(&self) -> String {
        let Ok(st) = self.state.lock() else {
            return "poisoned".into();
        };
        let parts: Vec<(&str, Vec<String>)> = vec![
            (
                "catalog",
                vec![format!("{:?}", st.catalog), st.catalog_version.to_string()],
            ),
            ("seasons", lines(st.seasons.iter())),
            (
                "trackers",
                lines(
                    st.trackers
                        .iter()
                        .flat_map(|(s, rows)| rows.values().map(move |r| (s, r))),
                ),
            ),
            ("log", lines(st.log.iter())),
            ("archived", lines(st.archived.iter())),
            ("profiles", lines(st.profiles.iter())),
            ("sessions", lines(st.sessions.iter())),
            ("pending_batches", lines(st.pending_batches.iter())),
            ("subject_xp", lines(st.subject_xp.iter())),
            ("fsrs", lines(st.fsrs.iter())),
            ("fit_quality", lines(st.fit_quality.iter())),
            ("items", lines(st.items.iter())),
            ("requests", lines(st.requests.iter())),
            ("subscriptions", lines(st.subscriptions.iter())),
            ("claims", lines(st.claims.iter())),
            ("users", lines(st.users.iter())),
            ("passwords", lines(st.passwords.iter())),
            ("login_sessions", lines(st.login_sessions.iter())),
            ("api_keys", lines(st.api_keys.iter())),
            ("audit", lines(st.audit.iter())),
            ("devices", lines(st.devices.iter())),
            ("session_devices", lines(st.session_devices.iter())),
            ("leases", lines(st.leases.iter())),
            ("runs", lines(st.runs.iter())),
            ("invalidations", lines(st.invalidations.iter())),
            ("stale", lines(st.stale.iter())),
            ("served", lines(st.served.iter())),
            ("dead_letters", lines(st.dead_letters.iter())),
            ("job_progress", lines(st.job_progress.iter())),
        ];
        parts
            .into_iter()
            .map(|(name, v)| format!("{name}:\n  {}", v.join("\n  ")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An empty backend (store and queue available).
    pub fn new() -> Self {
        InMemoryBackend {
            state: Arc::default(),
            cache: InMemoryCache::default(),
            queue_available: Arc::new(AtomicBool::new(true)),
            store_available: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The cache adapter bundled with this backend.
    pub fn cache(&self) -> InMemoryCache {
        self.cache.clone()
    }

    /// Fault injection: make the (write-through) queue fail or work.
    pub fn set_queue_available(&self, up: bool) {
        self.queue_available.store(up, Ordering::SeqCst);
    }

    /// Fault injection: make memory-store calls fail or work.
    pub fn set_store_available(&self, up: bool) {
        self.store_available.store(up, Ordering::SeqCst);
    }

    /// A write-through queue persisting into this backend.
    pub fn queue(&self) -> InlineQueue {
        InlineQueue {
            backend: self.clone(),
            statuses: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Ports wired to this backend, the bundled cache, the inline queue, the
    /// system clock, sequential ids and the test hasher.
    pub fn ports(&self) -> Ports {
        let this = Arc::new(self.clone());
        Ports {
            clock: Arc::new(SystemClock),
            ids: Arc::new(SequentialIds::default()),
            hasher: Arc::new(Sha256Hasher),
            job_runtime: Arc::new(super::InlineJobRuntime),
            content: this.clone(),
            seasons: this.clone(),
            trackers: this.clone(),
            revlog: this.clone(),
            scans: this.clone(),
            archive: this.clone(),
            profiles: this.clone(),
            activity: this.clone(),
            fsrs: this.clone(),
            commerce: this.clone(),
            quests: this.clone(),
            auth: this.clone(),
            audit: this.clone(),
            devices: this.clone(),
            locks: this.clone(),
            coordination: this.clone(),
            cache: Arc::new(self.cache.clone()),
            leaderboard: None,
            queue: Arc::new(self.queue()),
            job_progress: this.clone(),
            served: this,
            served_cache: None,
            fast_path: None,
            attempts: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn memory_lock(&self) -> PortResult<MutexGuard<'_, State>> {
        if !self.store_available.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable(
                "in-memory store switched off".into(),
            ));
        }
        Ok(self.lock())
    }

    /// Number of review-log entries (tests).
    pub fn review_log_len(&self) -> usize {
        self.lock().log.len()
    }
}

fn user_rows<'a>(
    st: &'a State,
    user: &'a UserId,
    season: &SeasonId,
) -> impl Iterator<Item = &'a MemoryTracker> + 'a {
    st.trackers
        .get(season)
        .into_iter()
        .flat_map(move |rows| rows.values().filter(move |r| &r.key.user == user))
}

fn matches(filter: &DueFilter, r: &MemoryTracker) -> bool {
    filter
        .subject
        .as_ref()
        .is_none_or(|s| r.subject.as_ref() == Some(s))
        && filter
            .topic
            .as_ref()
            .is_none_or(|t| r.topic.as_ref() == Some(t))
}

#[async_trait]
impl ContentStore for InMemoryBackend {
    async fn load_catalog(&self) -> PortResult<Catalog> {
        Ok(self.lock().catalog.clone())
    }
    async fn import_catalog(&self, bundle: &Catalog) -> PortResult<u64> {
        let mut st = self.lock();
        let mut bundle = bundle.clone();
        for p in &mut bundle.plans {
            let prev = st
                .catalog
                .plans
                .iter()
                .find(|x| x.id == p.id)
                .map(|x| x.version)
                .unwrap_or(0);
            p.version = prev.max(p.version) + 1;
        }
        let merged = crate::services::admin::merge_catalog(std::mem::take(&mut st.catalog), bundle);
        st.catalog = merged;
        st.catalog_version += 1;
        Ok(st.catalog_version)
    }
    async fn catalog_version(&self) -> PortResult<u64> {
        Ok(self.lock().catalog_version)
    }
}

#[async_trait]
impl SeasonStore for InMemoryBackend {
    async fn list_seasons(&self) -> PortResult<Vec<Season>> {
        let mut v: Vec<Season> = self.lock().seasons.values().cloned().collect();
        v.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(b.id.cmp(&a.id)));
        Ok(v)
    }
    async fn get_season(&self, id: &SeasonId) -> PortResult<Option<Season>> {
        Ok(self.lock().seasons.get(id).cloned())
    }
    async fn create_season(&self, season: &Season) -> PortResult<()> {
        let mut st = self.lock();
        if st.seasons.contains_key(&season.id) {
            return Err(PortError::Conflict(format!(
                "season {} already exists",
                season.id
            )));
        }
        st.seasons.insert(season.id.clone(), season.clone());
        st.trackers.entry(season.id.clone()).or_default();
        Ok(())
    }
    async fn update_season(&self, season: &Season) -> PortResult<()> {
        let mut st = self.lock();
        match st.seasons.get_mut(&season.id) {
            Some(s) => {
                *s = season.clone();
                Ok(())
            }
            None => Err(PortError::Rejected(format!(
                "season {} does not exist",
                season.id
            ))),
        }
    }
    async fn activate_season(&self, id: &SeasonId) -> PortResult<()> {
        let mut st = self.lock();
        if !st.seasons.contains_key(id) {
            return Err(PortError::Rejected(format!("season {id} does not exist")));
        }
        for (k, s) in st.seasons.iter_mut() {
            s.is_active = k == id;
        }
        Ok(())
    }
}

#[async_trait]
impl TrackerStore for InMemoryBackend {
    async fn get_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let Some(rows) = st.trackers.get(season) else {
            return Ok(Vec::new());
        };
        Ok(questions
            .iter()
            .filter_map(|q| rows.get(&(user.clone(), q.clone())).cloned())
            .collect())
    }

    async fn due_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let mut v: Vec<MemoryTracker> = user_rows(&st, user, season)
            .filter(|r| r.state.due <= now && matches(filter, r))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.state.due, &a.key.question).cmp(&(b.state.due, &b.key.question)));
        v.truncate(limit);
        Ok(v)
    }

    async fn count_due(
        &self,
        user: &UserId,
        season: &SeasonId,
        filter: &DueFilter,
        now: DateTime<Utc>,
    ) -> PortResult<u64> {
        let st = self.memory_lock()?;
        Ok(user_rows(&st, user, season)
            .filter(|r| r.state.due <= now && matches(filter, r))
            .count() as u64)
    }

    async fn due_counts_by_subject(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Vec<(Option<SubjectId>, u64)>> {
        let st = self.memory_lock()?;
        let mut m: BTreeMap<Option<SubjectId>, u64> = BTreeMap::new();
        for r in user_rows(&st, user, season).filter(|r| r.state.due <= now) {
            *m.entry(r.subject.clone()).or_default() += 1;
        }
        Ok(m.into_iter().collect())
    }

    async fn count_topic(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
    ) -> PortResult<u64> {
        let st = self.memory_lock()?;
        Ok(user_rows(&st, user, season)
            .filter(|r| r.topic.as_ref() == Some(topic))
            .count() as u64)
    }

    async fn topic_candidates(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let mut v: Vec<(u8, Option<DateTime<Utc>>, MemoryTracker)> = user_rows(&st, user, season)
            .filter(|r| r.topic.as_ref() == Some(topic))
            .filter_map(|r| {
                let is_new = r.state.mastery() == Some(MasteryBucket::New);
                let due = r.state.due <= now;
                let stale = r.state.last_review.is_none_or(|l| l < day_start);
                let group = if is_new {
                    0
                } else if due {
                    1
                } else if stale {
                    2
                } else {
                    return None;
                };
                Some((group, r.state.last_review, r.clone()))
            })
            .collect();
        v.sort_by(|a, b| (a.0, a.1, &a.2.key.question).cmp(&(b.0, b.1, &b.2.key.question)));
        Ok(v.into_iter().take(limit).map(|x| x.2).collect())
    }

    async fn random_topic_items(
        &self,
        user: &UserId,
        season: &SeasonId,
        topic: &TopicId,
        limit: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let mut v: Vec<MemoryTracker> = user_rows(&st, user, season)
            .filter(|r| r.topic.as_ref() == Some(topic))
            .cloned()
            .collect();
        SplitMix64::new(seed).shuffle(&mut v);
        v.truncate(limit);
        Ok(v)
    }

    async fn all_trackers(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        Ok(user_rows(&st, user, season).cloned().collect())
    }

    async fn mastery_counts(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        subject: Option<&SubjectId>,
    ) -> PortResult<MasteryCounts> {
        let st = self.memory_lock()?;
        let mut c = MasteryCounts::default();
        let seasons: Vec<&SeasonId> = match season {
            Some(s) => vec![s],
            None => st.trackers.keys().collect(),
        };
        for s in seasons {
            for r in user_rows(&st, user, s) {
                if subject.is_some_and(|want| r.subject.as_ref() != Some(want)) {
                    continue;
                }
                match r.state.mastery() {
                    Some(MasteryBucket::New) => c.new += 1,
                    Some(MasteryBucket::Learning) => c.learning += 1,
                    Some(MasteryBucket::Mature) => c.mature += 1,
                    None => {}
                }
            }
        }
        Ok(c)
    }

    async fn persist_batch(&self, records: &[ReviewRecord]) -> PortResult<PersistOutcome> {
        let mut st = self.memory_lock()?;
        // Validate first so a bad batch changes nothing.
        for r in records {
            if !st.trackers.contains_key(&r.tracker.key.season) {
                return Err(PortError::Rejected(format!(
                    "season {} does not exist (no partition)",
                    r.tracker.key.season
                )));
            }
        }
        let mut out = PersistOutcome::default();
        for r in records {
            if !st.log.contains_key(&r.log.review_id) {
                st.log.insert(r.log.review_id.clone(), r.log.clone());
                st.log_order.push(r.log.review_id.clone());
                out.logs_inserted += 1;
            }
            let key = (r.tracker.key.user.clone(), r.tracker.key.question.clone());
            let rows = st.trackers.entry(r.tracker.key.season.clone()).or_default();
            let write = match rows.get(&key) {
                Some(existing) => {
                    existing.state.last_review <= r.tracker.state.last_review
                        && existing != &r.tracker
                }
                None => true,
            };
            if write {
                rows.insert(key, r.tracker.clone());
                out.trackers_written += 1;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ReviewLogStore for InMemoryBackend {
    async fn review_log(
        &self,
        user: &UserId,
        season: Option<&SeasonId>,
        limit: usize,
    ) -> PortResult<Vec<ReviewLogEntry>> {
        let st = self.memory_lock()?;
        let mut v: Vec<ReviewLogEntry> = st
            .log_order
            .iter()
            .filter_map(|id| st.log.get(id))
            .filter(|e| &e.key.user == user && season.is_none_or(|s| &e.key.season == s))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.reviewed_at, &a.review_id).cmp(&(b.reviewed_at, &b.review_id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn count_reviews(&self, user: &UserId) -> PortResult<u64> {
        let st = self.memory_lock()?;
        Ok(st.log.values().filter(|e| &e.key.user == user).count() as u64)
    }

    async fn has_review(&self, review_id: &ReviewId) -> PortResult<bool> {
        Ok(self.memory_lock()?.log.contains_key(review_id))
    }

    async fn reviewed_since(
        &self,
        user: &UserId,
        season: &SeasonId,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<QuestionId>> {
        let st = self.memory_lock()?;
        let mut v: Vec<QuestionId> = st
            .log
            .values()
            .filter(|e| {
                &e.key.user == user
                    && &e.key.season == season
                    && e.reviewed_at >= since
                    && e.source == ReviewSource::Review
            })
            .map(|e| e.key.question.clone())
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
}

#[async_trait]
impl SeasonScanStore for InMemoryBackend {
    async fn count_season(&self, season: &SeasonId) -> PortResult<u64> {
        let st = self.memory_lock()?;
        Ok(st.trackers.get(season).map(|r| r.len() as u64).unwrap_or(0))
    }

    async fn scan_season(
        &self,
        season: &SeasonId,
        after: Option<&TrackerKey>,
        limit: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let Some(rows) = st.trackers.get(season) else {
            return Ok(Vec::new());
        };
        let out = match after {
            Some(k) => rows
                .range((
                    std::ops::Bound::Excluded((k.user.clone(), k.question.clone())),
                    std::ops::Bound::Unbounded,
                ))
                .take(limit)
                .map(|(_, v)| v.clone())
                .collect(),
            None => rows.values().take(limit).cloned().collect(),
        };
        Ok(out)
    }

    async fn sample_trackers(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<MemoryTracker>> {
        let st = self.memory_lock()?;
        let Some(rows) = st.trackers.get(season) else {
            return Ok(Vec::new());
        };
        let mut all: Vec<&MemoryTracker> = rows.values().collect();
        SplitMix64::new(seed).shuffle(&mut all);
        Ok(all.into_iter().take(n).cloned().collect())
    }

    async fn due_forecast(
        &self,
        season: &SeasonId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, Option<SubjectId>, u64)>> {
        let st = self.memory_lock()?;
        let mut counts: BTreeMap<(NaiveDate, Option<SubjectId>), u64> = BTreeMap::new();
        for t in st.trackers.get(season).into_iter().flat_map(|r| r.values()) {
            if t.state.due < until {
                let day = t.state.due.max(from).date_naive();
                *counts.entry((day, t.subject.clone())).or_insert(0) += 1;
            }
        }
        Ok(counts.into_iter().map(|((d, s), n)| (d, s, n)).collect())
    }

    async fn interval_histogram(&self, season: &SeasonId, bounds: &[u32]) -> PortResult<Vec<u64>> {
        let st = self.memory_lock()?;
        let mut out = vec![0u64; bounds.len() + 1];
        for t in st.trackers.get(season).into_iter().flat_map(|r| r.values()) {
            let i = bounds.partition_point(|b| *b < t.state.scheduled_days);
            out[i] += 1;
        }
        Ok(out)
    }

    async fn reviews_per_day(
        &self,
        season: &SeasonId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> PortResult<Vec<(NaiveDate, u64, u64)>> {
        let st = self.memory_lock()?;
        let mut days: BTreeMap<NaiveDate, (u64, u64)> = BTreeMap::new();
        for e in st.log.values() {
            if &e.key.season == season && e.reviewed_at >= since && e.reviewed_at < until {
                let d = days.entry(e.reviewed_at.date_naive()).or_insert((0, 0));
                d.0 += 1;
                d.1 += u64::from(e.is_correct);
            }
        }
        Ok(days.into_iter().map(|(d, (n, c))| (d, n, c)).collect())
    }
}

#[async_trait]
impl ArchiveStore for InMemoryBackend {
    async fn archive_season(&self, season: &SeasonId, now: DateTime<Utc>) -> PortResult<u64> {
        let mut st = self.memory_lock()?;
        let rows = match st.trackers.get_mut(season) {
            Some(rows) => std::mem::take(rows),
            None => {
                return Err(PortError::Rejected(format!(
                    "season {season} does not exist"
                )));
            }
        };
        let n = rows.len() as u64;
        st.archived
            .extend(rows.into_values().map(|tracker| ArchivedTracker {
                tracker,
                archived_at: now,
                eligible_for_deletion: false,
            }));
        Ok(n)
    }

    async fn flag_archived_before(&self, cutoff: DateTime<Utc>) -> PortResult<u64> {
        let mut st = self.memory_lock()?;
        let mut n = 0;
        for a in st.archived.iter_mut() {
            if a.archived_at < cutoff && !a.eligible_for_deletion {
                a.eligible_for_deletion = true;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn delete_flagged(&self, season: Option<&SeasonId>) -> PortResult<u64> {
        let mut st = self.memory_lock()?;
        let before = st.archived.len();
        st.archived.retain(|a| {
            !(a.eligible_for_deletion && season.is_none_or(|s| &a.tracker.key.season == s))
        });
        Ok((before - st.archived.len()) as u64)
    }

    async fn archive_counts(&self, season: &SeasonId) -> PortResult<ArchiveCounts> {
        let st = self.memory_lock()?;
        let archived: Vec<&ArchivedTracker> = st
            .archived
            .iter()
            .filter(|a| &a.tracker.key.season == season)
            .collect();
        Ok(ArchiveCounts {
            active_records: st.trackers.get(season).map(|r| r.len() as u64).unwrap_or(0),
            archived_records: archived.len() as u64,
            eligible_for_deletion: archived.iter().filter(|a| a.eligible_for_deletion).count()
                as u64,
        })
    }
}

fn counts_as_activity(s: &GameplaySession) -> bool {
    matches!(s.kind, SessionKind::Lesson | SessionKind::Review)
}

fn board_xp(st: &State, user: &UserId, q: &BoardQuery) -> i64 {
    match (&q.subject, q.since) {
        (None, None) => st.profiles.get(user).map(|p| p.total_xp).unwrap_or(0),
        (Some(s), None) => st
            .subject_xp
            .get(&(user.clone(), s.clone()))
            .copied()
            .unwrap_or(0),
        (subject, Some(since)) => st
            .sessions
            .iter()
            .filter(|x| &x.user == user && x.local_day >= since)
            .filter(|x| subject.is_none() || x.subject.as_ref() == subject.as_ref())
            .map(|x| x.xp_earned)
            .sum(),
    }
}

fn board(st: &State, q: &BoardQuery) -> Vec<BoardEntry> {
    let mut users: HashSet<&UserId> = st.profiles.keys().collect();
    users.extend(st.sessions.iter().map(|s| &s.user));
    let mut v: Vec<BoardEntry> = users
        .into_iter()
        .filter(|u| st.users.get(*u).is_none_or(|x| x.enabled))
        .map(|u| BoardEntry {
            user: u.clone(),
            xp: board_xp(st, u, q),
        })
        .filter(|e| e.xp > 0)
        .collect();
    v.sort_by(|a, b| b.xp.cmp(&a.xp).then(a.user.cmp(&b.user)));
    v
}

/// The session insert and XP credit of `record_session`, on locked state.
fn record_session_in(st: &mut State, session: &GameplaySession) -> PortResult<()> {
    if !st.session_ids.insert(session.id.clone()) {
        return Err(PortError::Conflict(format!(
            "session {} exists",
            session.id
        )));
    }
    let xp = session.xp_earned.max(0);
    let profile = st
        .profiles
        .entry(session.user.clone())
        .or_insert_with(|| PlayerProfile::new(session.user.clone(), session.user.as_str()));
    profile.total_xp = profile.total_xp.saturating_add(xp);
    if let Some(s) = &session.subject {
        *st.subject_xp
            .entry((session.user.clone(), s.clone()))
            .or_default() += xp;
    }
    st.sessions.push(session.clone());
    Ok(())
}

#[async_trait]
impl ProfileStore for InMemoryBackend {
    async fn get_profile(&self, user: &UserId) -> PortResult<Option<PlayerProfile>> {
        Ok(self.lock().profiles.get(user).cloned())
    }

    async fn get_profiles(&self, users: &[UserId]) -> PortResult<Vec<PlayerProfile>> {
        let st = self.lock();
        Ok(users
            .iter()
            .filter_map(|u| st.profiles.get(u).cloned())
            .collect())
    }

    async fn upsert_profile(&self, profile: &PlayerProfile) -> PortResult<()> {
        let mut st = self.lock();
        let xp = st
            .profiles
            .get(&profile.user)
            .map(|p| p.total_xp)
            .unwrap_or(0);
        let mut p = profile.clone();
        p.total_xp = xp;
        st.profiles.insert(p.user.clone(), p);
        Ok(())
    }
}

#[async_trait]
impl ActivityStore for InMemoryBackend {
    async fn record_session(&self, session: &GameplaySession) -> PortResult<()> {
        record_session_in(&mut self.lock(), session)
    }

    async fn record_session_with_batch(
        &self,
        session: &GameplaySession,
        batch: &PersistJob,
    ) -> PortResult<()> {
        let mut st = self.lock();
        if st.pending_batches.contains_key(&batch.id) {
            return Err(PortError::Conflict(format!(
                "pending batch {} exists",
                batch.id
            )));
        }
        record_session_in(&mut st, session)?;
        st.pending_batches
            .insert(batch.id.clone(), (session.created_at, batch.clone()));
        Ok(())
    }

    async fn pending_batch(&self, job: &JobId) -> PortResult<Option<PersistJob>> {
        Ok(self.lock().pending_batches.get(job).map(|(_, b)| b.clone()))
    }

    async fn pending_batches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<PersistJob>> {
        let st = self.lock();
        let mut v: Vec<&(DateTime<Utc>, PersistJob)> = st
            .pending_batches
            .values()
            .filter(|(at, _)| *at <= before)
            .collect();
        v.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(v.into_iter().take(limit).map(|(_, b)| b.clone()).collect())
    }

    async fn clear_pending_batch(&self, job: &JobId) -> PortResult<()> {
        self.lock().pending_batches.remove(job);
        Ok(())
    }

    async fn active_days(&self, user: &UserId, since: NaiveDate) -> PortResult<Vec<NaiveDate>> {
        let st = self.lock();
        let mut days: Vec<NaiveDate> = st
            .sessions
            .iter()
            .filter(|s| &s.user == user && s.local_day >= since && counts_as_activity(s))
            .map(|s| s.local_day)
            .collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        days.dedup();
        Ok(days)
    }

    async fn xp_by_day(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> PortResult<Vec<(NaiveDate, i64)>> {
        let st = self.lock();
        let mut m: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        for s in st.sessions.iter().filter(|s| {
            &s.user == user && s.local_day >= from && s.local_day <= to && counts_as_activity(s)
        }) {
            *m.entry(s.local_day).or_default() += s.xp_earned;
        }
        Ok(m.into_iter().collect())
    }

    async fn day_summary(&self, user: &UserId, day: NaiveDate) -> PortResult<DaySummary> {
        let st = self.lock();
        let mut d = DaySummary::default();
        for s in st
            .sessions
            .iter()
            .filter(|s| &s.user == user && s.local_day == day)
        {
            match s.kind {
                SessionKind::Lesson => d.lesson_sessions += 1,
                SessionKind::Review => d.review_sessions += 1,
                SessionKind::QuestReward => continue,
            }
            d.xp += s.xp_earned;
        }
        Ok(d)
    }

    async fn lesson_plays_on(
        &self,
        user: &UserId,
        lesson: &LessonId,
        day: NaiveDate,
    ) -> PortResult<u32> {
        let st = self.lock();
        Ok(st
            .sessions
            .iter()
            .filter(|s| &s.user == user && s.lesson.as_ref() == Some(lesson) && s.local_day == day)
            .count() as u32)
    }

    async fn completed_lessons(&self, user: &UserId) -> PortResult<HashSet<LessonId>> {
        let st = self.lock();
        Ok(st
            .sessions
            .iter()
            .filter(|s| &s.user == user && s.completed)
            .filter_map(|s| s.lesson.clone())
            .collect())
    }

    async fn subject_xp(&self, user: &UserId, subject: &SubjectId) -> PortResult<i64> {
        Ok(self
            .lock()
            .subject_xp
            .get(&(user.clone(), subject.clone()))
            .copied()
            .unwrap_or(0))
    }

    async fn top_players(&self, query: &BoardQuery, limit: usize) -> PortResult<Vec<BoardEntry>> {
        let st = self.lock();
        let mut v = board(&st, query);
        v.truncate(limit);
        Ok(v)
    }

    async fn player_rank(
        &self,
        user: &UserId,
        query: &BoardQuery,
    ) -> PortResult<(i64, Option<u64>)> {
        let st = self.lock();
        let xp = board_xp(&st, user, query);
        let rank = board(&st, query)
            .iter()
            .position(|e| &e.user == user)
            .map(|i| i as u64 + 1);
        Ok((xp, rank))
    }
}

#[async_trait]
impl FsrsParamStore for InMemoryBackend {
    async fn fsrs_params(&self, user: &UserId) -> PortResult<Option<(Vec<f64>, u64)>> {
        Ok(self.lock().fsrs.get(user).cloned())
    }

    async fn set_fsrs_params(&self, user: &UserId, params: &[f64], n: u64) -> PortResult<()> {
        self.lock().fsrs.insert(user.clone(), (params.to_vec(), n));
        Ok(())
    }

    async fn record_fit_quality(&self, user: &UserId, quality: &FitQuality) -> PortResult<()> {
        let mut st = self.lock();
        if st.fsrs.contains_key(user) {
            st.fit_quality.insert(user.clone(), *quality);
        }
        Ok(())
    }

    async fn fit_quality_summary(&self) -> PortResult<FitQualitySummary> {
        let st = self.lock();
        let q: Vec<&FitQuality> = st.fit_quality.values().collect();
        let mean = |f: fn(&FitQuality) -> Option<f64>| {
            let v: Vec<f64> = q.iter().filter_map(|x| f(x)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        Ok(FitQualitySummary {
            fitted: q.len() as u64,
            fell_back: q.iter().filter(|x| x.fell_back).count() as u64,
            improved: q
                .iter()
                .filter(|x| matches!((x.loss_before, x.loss_after), (Some(b), Some(a)) if a < b))
                .count() as u64,
            mean_loss_before: mean(|x| x.loss_before),
            mean_loss_after: mean(|x| x.loss_after),
        })
    }
}

#[async_trait]
impl CommerceStore for InMemoryBackend {
    async fn list_sales_items(&self) -> PortResult<Vec<SalesItem>> {
        let mut v: Vec<SalesItem> = self.lock().items.values().cloned().collect();
        v.sort_by(|a, b| (a.price, &a.id).cmp(&(b.price, &b.id)));
        Ok(v)
    }
    async fn get_sales_item(&self, id: &SalesItemId) -> PortResult<Option<SalesItem>> {
        Ok(self.lock().items.get(id).cloned())
    }
    async fn upsert_sales_item(&self, item: &SalesItem) -> PortResult<()> {
        self.lock().items.insert(item.id.clone(), item.clone());
        Ok(())
    }
    async fn create_purchase_request(&self, r: &PurchaseRequest) -> PortResult<()> {
        let mut st = self.lock();
        if st.requests.iter().any(|x| x.id == r.id) {
            return Err(PortError::Conflict(format!("request {} exists", r.id)));
        }
        if st
            .requests
            .iter()
            .any(|x| x.user == r.user && x.item == r.item && x.status == PurchaseStatus::Pending)
        {
            return Err(PortError::Conflict(
                "a pending request already exists".into(),
            ));
        }
        st.requests.push(r.clone());
        Ok(())
    }
    async fn get_purchase_request(
        &self,
        id: &PurchaseRequestId,
    ) -> PortResult<Option<PurchaseRequest>> {
        Ok(self.lock().requests.iter().find(|r| &r.id == id).cloned())
    }
    async fn list_purchase_requests(
        &self,
        user: Option<&UserId>,
        status: Option<PurchaseStatus>,
    ) -> PortResult<Vec<PurchaseRequest>> {
        let st = self.lock();
        let mut v: Vec<PurchaseRequest> = st
            .requests
            .iter()
            .filter(|r| user.is_none_or(|u| &r.user == u) && status.is_none_or(|s| r.status == s))
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }
    async fn decide_purchase(
        &self,
        decided: &PurchaseRequest,
        grant: Option<&Subscription>,
    ) -> PortResult<()> {
        let mut st = self.lock();
        let Some(r) = st.requests.iter_mut().find(|r| r.id == decided.id) else {
            return Err(PortError::Rejected(format!(
                "request {} does not exist",
                decided.id
            )));
        };
        if r.status != PurchaseStatus::Pending {
            return Err(PortError::Conflict(format!(
                "request {} is no longer pending",
                decided.id
            )));
        }
        *r = decided.clone();
        if let Some(g) = grant {
            st.subscriptions.push(g.clone());
        }
        Ok(())
    }
    async fn subscriptions_of(&self, user: &UserId) -> PortResult<Vec<Subscription>> {
        Ok(self
            .lock()
            .subscriptions
            .iter()
            .filter(|s| &s.user == user)
            .cloned()
            .collect())
    }
    async fn create_subscription(&self, s: &Subscription) -> PortResult<()> {
        let mut st = self.lock();
        if st.subscriptions.iter().any(|x| x.id == s.id) {
            return Err(PortError::Conflict(format!("subscription {} exists", s.id)));
        }
        st.subscriptions.push(s.clone());
        Ok(())
    }
    async fn create_sales_item(&self, item: &SalesItem) -> PortResult<()> {
        let mut st = self.lock();
        if st.items.contains_key(&item.id) {
            return Err(PortError::Conflict(format!(
                "store item {} exists",
                item.id
            )));
        }
        st.items.insert(item.id.clone(), item.clone());
        Ok(())
    }
    async fn get_subscription(&self, id: &SubscriptionId) -> PortResult<Option<Subscription>> {
        Ok(self
            .lock()
            .subscriptions
            .iter()
            .find(|s| &s.id == id)
            .cloned())
    }
    async fn list_subscriptions(&self, q: &SubscriptionQuery) -> PortResult<Vec<Subscription>> {
        let st = self.lock();
        let mut v: Vec<Subscription> = st
            .subscriptions
            .iter()
            .filter(|s| q.user.as_ref().is_none_or(|u| &s.user == u))
            .filter(|s| q.status.is_none_or(|x| s.status == x))
            .filter(|s| q.after.as_ref().is_none_or(|a| &s.id > a))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.truncate(q.limit);
        Ok(v)
    }
    async fn set_subscription_status(
        &self,
        id: &SubscriptionId,
        from: SubscriptionStatus,
        to: SubscriptionStatus,
    ) -> PortResult<bool> {
        let mut st = self.lock();
        let Some(s) = st.subscriptions.iter_mut().find(|s| &s.id == id) else {
            return Err(PortError::Rejected(format!(
                "subscription {id} does not exist"
            )));
        };
        if s.status != from {
            return Ok(false);
        }
        s.status = to;
        Ok(true)
    }
}

#[async_trait]
impl QuestStore for InMemoryBackend {
    async fn claimed(&self, user: &UserId, day: NaiveDate) -> PortResult<Vec<String>> {
        let st = self.lock();
        let mut v: Vec<String> = st
            .claims
            .iter()
            .filter(|(u, d, _)| u == user && *d == day)
            .map(|(_, _, q)| q.clone())
            .collect();
        v.sort();
        Ok(v)
    }
    async fn claim(
        &self,
        user: &UserId,
        day: NaiveDate,
        quest: &str,
        reward: &GameplaySession,
    ) -> PortResult<bool> {
        {
            let mut st = self.lock();
            if !st.claims.insert((user.clone(), day, quest.to_owned())) {
                return Ok(false);
            }
        }
        if let Err(e) = self.record_session(reward).await {
            self.lock()
                .claims
                .remove(&(user.clone(), day, quest.to_owned()));
            return Err(e);
        }
        Ok(true)
    }
}

#[async_trait]
impl AuthStore for InMemoryBackend {
    async fn get_user(&self, id: &UserId) -> PortResult<Option<User>> {
        Ok(self.lock().users.get(id).cloned())
    }
    async fn list_users(&self) -> PortResult<Vec<User>> {
        Ok(self.lock().users.values().cloned().collect())
    }
    async fn user_ids_after(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> PortResult<Vec<UserId>> {
        use std::ops::Bound;
        let st = self.lock();
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        Ok(st
            .users
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect())
    }
    async fn create_user(&self, user: &User, hash: Option<&str>) -> PortResult<()> {
        let mut st = self.lock();
        if st.users.contains_key(&user.id) {
            return Err(PortError::Conflict(format!(
                "user {} already exists",
                user.id
            )));
        }
        st.users.insert(user.id.clone(), user.clone());
        if let Some(h) = hash {
            st.passwords.insert(user.id.clone(), h.to_owned());
        }
        Ok(())
    }
    async fn password_hash(&self, id: &UserId) -> PortResult<Option<String>> {
        Ok(self.lock().passwords.get(id).cloned())
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> PortResult<()> {
        self.lock().passwords.insert(id.clone(), hash.to_owned());
        Ok(())
    }
    async fn create_login_session(
        &self,
        sid_hash: &str,
        user: &UserId,
        exp: DateTime<Utc>,
    ) -> PortResult<()> {
        self.lock()
            .login_sessions
            .insert(sid_hash.to_owned(), (user.clone(), exp));
        Ok(())
    }
    async fn get_login_session(
        &self,
        sid_hash: &str,
    ) -> PortResult<Option<(UserId, DateTime<Utc>)>> {
        Ok(self.lock().login_sessions.get(sid_hash).cloned())
    }
    async fn delete_login_session(&self, sid_hash: &str) -> PortResult<()> {
        let mut st = self.lock();
        st.login_sessions.remove(sid_hash);
        st.session_devices.remove(sid_hash);
        Ok(())
    }
    async fn create_api_key(&self, r: &ApiKeyRecord) -> PortResult<()> {
        let mut st = self.lock();
        if st.api_keys.contains_key(&r.key) {
            return Err(PortError::Conflict("api key exists".into()));
        }
        st.api_keys.insert(r.key.clone(), r.clone());
        Ok(())
    }
    async fn get_api_key(&self, key: &str) -> PortResult<Option<ApiKeyRecord>> {
        Ok(self.lock().api_keys.get(key).cloned())
    }
}

#[async_trait]
impl AuditStore for InMemoryBackend {
    async fn record(&self, event: &AuditEvent) -> PortResult<()> {
        self.lock().audit.push(event.clone());
        Ok(())
    }
    async fn recent(&self, limit: usize) -> PortResult<Vec<AuditEvent>> {
        let st = self.lock();
        Ok(st.audit.iter().rev().take(limit).cloned().collect())
    }
    async fn query(&self, q: &AuditQuery) -> PortResult<Vec<AuditRecord>> {
        let st = self.lock();
        Ok(st
            .audit
            .iter()
            .enumerate()
            .rev()
            .map(|(i, e)| (i as u64 + 1, e))
            .filter(|(seq, _)| q.before.is_none_or(|b| *seq < b))
            .filter(|(_, e)| {
                q.action
                    .as_ref()
                    .is_none_or(|a| e.action.starts_with(a.as_str()))
            })
            .filter(|(_, e)| q.actor.is_none() || e.actor == q.actor)
            .filter(|(_, e)| q.since.is_none_or(|t| e.at >= t))
            .filter(|(_, e)| q.until.is_none_or(|t| e.at < t))
            .take(q.limit)
            .map(|(seq, e)| AuditRecord {
                seq,
                event: e.clone(),
            })
            .collect())
    }
}

#[async_trait]
impl DeviceStore for InMemoryBackend {
    async fn upsert_device(&self, d: &Device) -> PortResult<bool> {
        let mut st = self.memory_lock()?;
        let key = (d.user.clone(), d.device_id.clone());
        match st.devices.get_mut(&key) {
            Some(known) => {
                known.kind = d.kind;
                known.name = d.name.clone();
                known.last_active = known.last_active.max(d.last_active);
                Ok(false)
            }
            None => {
                st.devices.insert(key, d.clone());
                Ok(true)
            }
        }
    }

    async fn list_devices(&self, user: &UserId) -> PortResult<Vec<Device>> {
        let st = self.memory_lock()?;
        let mut out: Vec<Device> = st
            .devices
            .values()
            .filter(|d| &d.user == user)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.last_active
                .cmp(&a.last_active)
                .then_with(|| a.device_id.cmp(&b.device_id))
        });
        Ok(out)
    }

    async fn delete_device(
        &self,
        user: &UserId,
        device_id: &str,
    ) -> PortResult<Option<Vec<String>>> {
        let mut st = self.memory_lock()?;
        if st
            .devices
            .remove(&(user.clone(), device_id.to_owned()))
            .is_none()
        {
            return Ok(None);
        }
        let ended: Vec<String> = st
            .session_devices
            .iter()
            .filter(|(_, (u, d))| u == user && d == device_id)
            .map(|(h, _)| h.clone())
            .collect();
        for h in &ended {
            st.session_devices.remove(h);
            st.login_sessions.remove(h);
        }
        Ok(Some(ended))
    }

    async fn bind_session(&self, sid_hash: &str, user: &UserId, device_id: &str) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        if st
            .login_sessions
            .get(sid_hash)
            .is_some_and(|(u, _)| u == user)
        {
            st.session_devices
                .insert(sid_hash.to_owned(), (user.clone(), device_id.to_owned()));
        }
        Ok(())
    }

    async fn session_device(&self, sid_hash: &str) -> PortResult<Option<String>> {
        let st = self.memory_lock()?;
        Ok(st.session_devices.get(sid_hash).map(|(_, d)| d.clone()))
    }

    async fn touch_device(
        &self,
        user: &UserId,
        device_id: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        if let Some(d) = st.devices.get_mut(&(user.clone(), device_id.to_owned())) {
            d.last_active = d.last_active.max(at);
        }
        Ok(())
    }
}

fn lease_delta(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

#[async_trait]
impl JobLock for InMemoryBackend {
    async fn try_acquire(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
        every: std::time::Duration,
    ) -> PortResult<Option<JobLease>> {
        let mut st = self.memory_lock()?;
        let token = match st.leases.get(job) {
            Some(row) => {
                let held = row.lease.expires_at > now;
                let finished = st
                    .runs
                    .iter()
                    .any(|r| r.job == job && r.token == row.lease.token && r.finished_at.is_some());
                // A run whose holder died is retried once its lease lapses.
                let too_soon = finished && row.last_started + lease_delta(every) > now;
                if held || too_soon {
                    return Ok(None);
                }
                row.lease.token + 1
            }
            None => 1,
        };
        let lease = JobLease {
            job: job.to_owned(),
            holder: holder.to_owned(),
            token,
            expires_at: now + lease_delta(ttl),
        };
        st.leases.insert(
            job.to_owned(),
            MemLease {
                lease: lease.clone(),
                last_started: now,
            },
        );
        st.runs.push(JobRun {
            job: job.to_owned(),
            token,
            holder: holder.to_owned(),
            started_at: now,
            finished_at: None,
            outcome: None,
        });
        Ok(Some(lease))
    }

    async fn renew(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> PortResult<Option<JobLease>> {
        let mut st = self.memory_lock()?;
        match st.leases.get_mut(&lease.job) {
            Some(row) if row.lease.token == lease.token && row.lease.expires_at > now => {
                row.lease.expires_at = now + lease_delta(ttl);
                Ok(Some(row.lease.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        outcome: &str,
    ) -> PortResult<bool> {
        let mut st = self.memory_lock()?;
        match st.leases.get_mut(&lease.job) {
            Some(row) if row.lease.token == lease.token => {
                row.lease.expires_at = now;
            }
            _ => return Ok(false),
        }
        if let Some(run) = st
            .runs
            .iter_mut()
            .find(|r| r.job == lease.job && r.token == lease.token)
        {
            run.finished_at = Some(now);
            run.outcome = Some(outcome.to_owned());
        }
        Ok(true)
    }

    async fn runs(&self, job: &str, limit: usize) -> PortResult<Vec<JobRun>> {
        let st = self.memory_lock()?;
        Ok(st
            .runs
            .iter()
            .rev()
            .filter(|r| r.job == job)
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Coordination for InMemoryBackend {
    async fn publish(&self, what: &Invalidation) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        st.invalidation_seq += 1;
        let seq = st.invalidation_seq;
        st.invalidations.push((seq, Utc::now(), what.clone()));
        Ok(())
    }

    async fn invalidations_since(
        &self,
        cursor: Option<InvalidationCursor>,
    ) -> PortResult<InvalidationBatch> {
        let st = self.memory_lock()?;
        let end = InvalidationCursor {
            seq: st.invalidation_seq,
            horizon: 0,
        };
        let Some(cursor) = cursor else {
            return Ok(InvalidationBatch {
                entries: Vec::new(),
                cursor: end,
            });
        };
        Ok(InvalidationBatch {
            entries: st
                .invalidations
                .iter()
                .filter(|(seq, _, _)| *seq > cursor.seq)
                .map(|(seq, _, what)| (*seq, what.clone()))
                .collect(),
            cursor: InvalidationCursor {
                seq: end.seq.max(cursor.seq),
                horizon: 0,
            },
        })
    }

    async fn prune_invalidations(&self, before: DateTime<Utc>) -> PortResult<u64> {
        let mut st = self.memory_lock()?;
        let n = st.invalidations.len();
        st.invalidations.retain(|(_, at, _)| *at >= before);
        Ok((n - st.invalidations.len()) as u64)
    }

    async fn admit_safe_mode(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limits: &crate::safe_mode::SafeModeLimits,
    ) -> PortResult<crate::safe_mode::Admission> {
        let limiter = {
            let mut st = self.memory_lock()?;
            match &st.admissions {
                Some(l) if l.limits() == limits => Arc::clone(l),
                _ => {
                    let l = Arc::new(crate::safe_mode::SafeModeLimiter::new(limits.clone()));
                    st.admissions = Some(Arc::clone(&l));
                    l
                }
            }
        };
        Ok(limiter.check(user.as_str(), now))
    }

    async fn mark_stale(&self, keys: &[(UserId, SeasonId)]) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        for k in keys {
            *st.stale.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(())
    }

    async fn stale_schedules(&self, limit: usize) -> PortResult<Vec<StaleMark>> {
        Ok(self
            .memory_lock()?
            .stale
            .iter()
            .take(limit)
            .map(|((user, season), mark)| StaleMark {
                user: user.clone(),
                season: season.clone(),
                mark: *mark,
            })
            .collect())
    }

    async fn clear_stale(&self, marks: &[StaleMark]) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        for m in marks {
            let key = (m.user.clone(), m.season.clone());
            if st.stale.get(&key) == Some(&m.mark) {
                st.stale.remove(&key);
            }
        }
        Ok(())
    }
}

/// Write-through queue: a job is durable once persisted, so `enqueue`
/// persists it into the in-memory store immediately.
#[derive(Clone)]
pub struct InlineQueue {
    backend: InMemoryBackend,
    statuses: Arc<Mutex<HashMap<JobId, JobStatus>>>,
}

#[async_trait]
impl PersistenceQueue for InlineQueue {
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus> {
        if !self.backend.queue_available.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("queue switched off".into()));
        }
        self.backend.persist_batch(&job.records).await?;
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id.clone(), JobStatus::Done);
        Ok(JobStatus::Done)
    }
    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>> {
        Ok(self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job)
            .cloned())
    }
    async fn record_status(&self, job: &JobId, status: &JobStatus) -> PortResult<()> {
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.clone(), status.clone());
        Ok(())
    }
    async fn depth(&self) -> PortResult<u64> {
        Ok(0)
    }
    async fn oldest_unpersisted(&self) -> PortResult<Option<DateTime<Utc>>> {
        // Write-through: only dead letters can hold unpersisted answers.
        Ok(self
            .backend
            .lock()
            .dead_letters
            .values()
            .map(|d| d.at)
            .min())
    }
    async fn dead_letters<'a>(
        &self,
        after: Option<&'a str>,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        let start = match after {
            None => 0,
            Some(a) => match a.parse::<u64>() {
                Ok(n) => n.saturating_add(1),
                Err(_) => return Ok(Vec::new()),
            },
        };
        Ok(self
            .backend
            .lock()
            .dead_letters
            .range(start..)
            .take(limit)
            .map(|(id, d)| d.summary(*id))
            .collect())
    }
    async fn dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        let Ok(n) = id.parse::<u64>() else {
            return Ok(None);
        };
        Ok(self
            .backend
            .lock()
            .dead_letters
            .get(&n)
            .map(|d| d.summary(n)))
    }
    async fn dead_letter_count(&self) -> PortResult<u64> {
        Ok(self.backend.lock().dead_letters.len() as u64)
    }
    async fn replay_dead_letter(&self, id: &str) -> PortResult<bool> {
        let Ok(n) = id.parse::<u64>() else {
            return Ok(false);
        };
        // Taken out first, so two concurrent replays persist it once; put
        // back if the store refuses.
        let Some(d) = self.backend.lock().dead_letters.remove(&n) else {
            return Ok(false);
        };
        if let Err(e) = self.backend.persist_batch(&d.job.records).await {
            self.backend.lock().dead_letters.insert(n, d);
            return Err(e);
        }
        self.set_status(&d.job.id, JobStatus::Done);
        Ok(true)
    }
    async fn discard_dead_letter(&self, id: &str) -> PortResult<bool> {
        let Ok(n) = id.parse::<u64>() else {
            return Ok(false);
        };
        Ok(self.backend.lock().dead_letters.remove(&n).is_some())
    }
}

impl InlineQueue {
    fn set_status(&self, job: &JobId, status: JobStatus) {
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.clone(), status);
    }

    /// Fault injection: records `job` as a dead letter (a write-through
    /// queue never dead-letters by itself: a failed write fails `enqueue`).
    /// Returns its id; ids are increasing decimal numbers.
    pub fn inject_dead_letter(
        &self,
        job: &PersistJob,
        error: &str,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> String {
        let n = {
            let mut st = self.backend.lock();
            st.dead_seq += 1;
            let n = st.dead_seq;
            st.dead_letters.insert(
                n,
                MemDeadLetter {
                    job: job.clone(),
                    error: error.to_owned(),
                    attempts,
                    at,
                },
            );
            n
        };
        self.set_status(&job.id, JobStatus::Failed(error.to_owned()));
        n.to_string()
    }
}

#[async_trait]
impl JobProgressStore for InMemoryBackend {
    async fn save_progress(&self, progress: &JobProgress) -> PortResult<bool> {
        let mut st = self.memory_lock()?;
        if st
            .job_progress
            .get(&progress.id)
            .is_some_and(|p| p.owner != progress.owner)
        {
            return Ok(false);
        }
        st.job_progress
            .insert(progress.id.clone(), progress.clone());
        Ok(true)
    }
    async fn get_progress(&self, id: &JobId) -> PortResult<Option<JobProgress>> {
        Ok(self.memory_lock()?.job_progress.get(id).cloned())
    }
    async fn claim_progress(
        &self,
        id: &JobId,
        seen: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<JobProgress>> {
        let mut st = self.memory_lock()?;
        match st.job_progress.get_mut(id) {
            Some(p) if p.updated_at == seen => {
                p.owner = owner.to_owned();
                p.status = "running".to_owned();
                p.updated_at = now;
                Ok(Some(p.clone()))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl CatalogNumbers for InMemoryBackend {
    async fn assign_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<u64>> {
        let mut st = self.memory_lock()?;
        Ok(st
            .question_numbers
            .assign(questions, |a, b| a.as_str().cmp(b.as_str())))
    }

    async fn find_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<Option<u64>>> {
        Ok(self.memory_lock()?.question_numbers.find(questions))
    }

    async fn numbered_after(&self, after: u64, limit: usize) -> PortResult<Vec<(u64, QuestionId)>> {
        Ok(self.memory_lock()?.question_numbers.after(after, limit))
    }

    async fn numbered_questions(&self, numbers: &[u64]) -> PortResult<Vec<Option<QuestionId>>> {
        Ok(self.memory_lock()?.question_numbers.named(numbers))
    }

    async fn assign_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<u64>> {
        let mut st = self.memory_lock()?;
        Ok(st
            .label_numbers
            .assign(labels, |a, b| a.key().cmp(&b.key())))
    }

    async fn find_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<Option<u64>>> {
        Ok(self.memory_lock()?.label_numbers.find(labels))
    }

    async fn numbered_labels(&self, numbers: &[u64]) -> PortResult<Vec<Option<Label>>> {
        Ok(self.memory_lock()?.label_numbers.named(numbers))
    }

    async fn labels_numbered_after(
        &self,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Label)>> {
        Ok(self.memory_lock()?.label_numbers.after(after, limit))
    }
}

#[async_trait]
impl ServedLedger for InMemoryBackend {
    async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        served_at: DateTime<Utc>,
        answerable_until: DateTime<Utc>,
        retain_until: DateTime<Utc>,
    ) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        for item in items {
            let key = (user.clone(), season.clone(), item.clone());
            let (last_receipt, xp_day) = match st.served.get(&key) {
                Some(e) if e.retain_until >= served_at => (e.last_receipt.clone(), e.xp_day),
                _ => (None, None),
            };
            st.served.insert(
                key,
                Serving {
                    served_at,
                    answerable_until,
                    retain_until,
                    answered: false,
                    last_receipt,
                    xp_day,
                },
            );
        }
        Ok(())
    }

    async fn lookup(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> PortResult<Vec<Option<Serving>>> {
        let st = self.memory_lock()?;
        Ok(items
            .iter()
            .map(|i| {
                st.served
                    .get(&(user.clone(), season.clone(), i.clone()))
                    .filter(|e| e.retain_until >= now)
                    .cloned()
            })
            .collect())
    }

    async fn commit(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<bool> {
        let mut st = self.memory_lock()?;
        let key = |c: &ServingClaim| (user.clone(), season.clone(), c.item.clone());
        let all_open = claims.iter().all(|c| {
            st.served
                .get(&key(c))
                .is_some_and(|e| e.served_at == c.served_at && !e.answered)
        });
        if !all_open {
            return Ok(false);
        }
        for c in claims {
            if let Some(e) = st.served.get_mut(&key(c)) {
                e.answered = true;
                e.last_receipt = Some(c.receipt.clone());
                e.xp_day = c.xp_day;
            }
        }
        Ok(true)
    }

    async fn release(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<()> {
        let mut st = self.memory_lock()?;
        for c in claims {
            if let Some(e) = st
                .served
                .get_mut(&(user.clone(), season.clone(), c.item.clone()))
            {
                if e.last_receipt.as_ref().map(|r| &r.review_id) == Some(&c.receipt.review_id) {
                    e.answered = false;
                    e.last_receipt = None;
                    e.xp_day = c.prev_xp_day;
                }
            }
        }
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> PortResult<u64> {
        let mut st = self.memory_lock()?;
        let before = st.served.len();
        st.served.retain(|_, e| e.retain_until >= now);
        Ok((before - st.served.len()) as u64)
    }
}
