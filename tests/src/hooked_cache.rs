//! A [`DueCache`] that delegates every call to another one, counts loads
//! (rehydrations) and how many run at once, and can "die" in its n-th
//! load (the call never returns, as a killed process would stop
//! mid-rebuild) or fail every load of one user; it also logs the
//! persistence worker's refreshes (learner, job, rows).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::MemoryTracker;
use memora_core::ids::{JobId, QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::{CacheStats, DueCache, DueSlice, UserCacheStats};
use memora_core::{PortError, PortResult};

/// See the module docs.
pub struct HookedCache {
    inner: Arc<dyn DueCache>,
    loads: AtomicU64,
    die_at: Option<u64>,
    fail_user: std::sync::Mutex<Option<UserId>>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    refreshes: std::sync::Mutex<Vec<(UserId, JobId, usize)>>,
}

impl HookedCache {
    /// Delegates to `inner` and counts loads.
    pub fn counting(inner: Arc<dyn DueCache>) -> Self {
        HookedCache {
            inner,
            loads: AtomicU64::new(0),
            die_at: None,
            fail_user: std::sync::Mutex::new(None),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            refreshes: std::sync::Mutex::new(Vec::new()),
        }
    }
    /// The refreshes so far: learner, job and number of rows, in order.
    pub fn refreshes(&self) -> Vec<(UserId, JobId, usize)> {
        self.refreshes.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Makes every later load of `user` fail as an unreachable cache would
    /// (`None`: no more failures).
    pub fn fail_loads_of(&self, user: Option<UserId>) {
        if let Ok(mut f) = self.fail_user.lock() {
            *f = user;
        }
    }

    /// The most loads that were running at the same time.
    pub fn max_concurrent_loads(&self) -> u64 {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Like [`HookedCache::counting`], but the `die_at`-th load (1-based)
    /// and every later one never return.
    pub fn dying_at(inner: Arc<dyn DueCache>, die_at: u64) -> Self {
        HookedCache {
            die_at: Some(die_at),
            ..Self::counting(inner)
        }
    }

    /// Loads so far (including a load that never returned).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl DueCache for HookedCache {
    async fn due<'a>(
        &self,
        u: &UserId,
        s: &SeasonId,
        subject: Option<&'a SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Option<DueSlice>> {
        self.inner.due(u, s, subject, now, limit).await
    }
    async fn states(
        &self,
        u: &UserId,
        s: &SeasonId,
        q: &[QuestionId],
    ) -> PortResult<Vec<Option<MemoryTracker>>> {
        self.inner.states(u, s, q).await
    }
    async fn put(&self, u: &UserId, s: &SeasonId, rows: &[MemoryTracker]) -> PortResult<()> {
        self.inner.put(u, s, rows).await
    }
    async fn refresh(
        &self,
        u: &UserId,
        s: &SeasonId,
        rows: &[MemoryTracker],
        job: &JobId,
    ) -> PortResult<()> {
        if let Ok(mut r) = self.refreshes.lock() {
            r.push((u.clone(), job.clone(), rows.len()));
        }
        self.inner.refresh(u, s, rows, job).await
    }
    async fn load(&self, u: &UserId, s: &SeasonId, rows: &[MemoryTracker]) -> PortResult<()> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
        if self.die_at.is_some_and(|d| n >= d) {
            std::future::pending::<()>().await;
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Let other loads start: an in-memory cache would otherwise finish
        // each load before the next one is polled.
        tokio::task::yield_now().await;
        let fail = self
            .fail_user
            .lock()
            .map(|f| f.as_ref() == Some(u))
            .unwrap_or(false);
        let res = if fail {
            Err(PortError::Unavailable(format!("load of {u} refused")))
        } else {
            self.inner.load(u, s, rows).await
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        res
    }
    async fn remove(&self, u: &UserId, s: &SeasonId, q: &[QuestionId]) -> PortResult<()> {
        self.inner.remove(u, s, q).await
    }
    async fn clear_user(&self, u: &UserId, s: &SeasonId) -> PortResult<()> {
        self.inner.clear_user(u, s).await
    }
    async fn clear_season(&self, s: &SeasonId) -> PortResult<u64> {
        self.inner.clear_season(s).await
    }
    async fn user_stats(
        &self,
        u: &UserId,
        s: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Option<UserCacheStats>> {
        self.inner.user_stats(u, s, now).await
    }
    async fn stats(&self) -> PortResult<CacheStats> {
        self.inner.stats().await
    }
    async fn sample_schedules(&self, s: &SeasonId, n: usize, seed: u64) -> PortResult<Vec<UserId>> {
        self.inner.sample_schedules(s, n, seed).await
    }
    async fn sample_entries(
        &self,
        u: &UserId,
        s: &SeasonId,
        n: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.inner.sample_entries(u, s, n).await
    }
    async fn ping(&self) -> PortResult<()> {
        self.inner.ping().await
    }
}
