//! The in-memory due-schedule cache (reference behaviour of the Redis
//! adapter), with an availability switch and counters for fault tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::MemoryTracker;
use crate::error::{PortError, PortResult};
use crate::ids::*;
use crate::ports::{CacheStats, DueCache, DueSlice, UserCacheStats};

type Schedule = BTreeMap<QuestionId, MemoryTracker>;

#[derive(Default)]
struct Inner {
    schedules: Mutex<HashMap<(UserId, SeasonId), Schedule>>,
    down: AtomicBool,
    loads: AtomicU64,
}

/// In-memory [`DueCache`]. Clones share state.
#[derive(Clone, Default)]
pub struct InMemoryCache {
    inner: Arc<Inner>,
}

impl InMemoryCache {
    /// An empty, available cache.
    pub fn new() -> Self {
        Self::default()
    }
    /// Fault injection: every call fails while `down`.
    pub fn set_available(&self, up: bool) {
        self.inner.down.store(!up, Ordering::SeqCst);
    }
    /// How many schedules were loaded (rehydrations + rebuilds).
    pub fn load_count(&self) -> u64 {
        self.inner.loads.load(Ordering::SeqCst)
    }
    /// Drops everything (simulates a flush / eviction).
    pub fn flush(&self) {
        self.map().clear();
    }
    fn map(&self) -> MutexGuard<'_, HashMap<(UserId, SeasonId), Schedule>> {
        self.inner
            .schedules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
    fn check(&self) -> PortResult<()> {
        if self.inner.down.load(Ordering::SeqCst) {
            Err(PortError::Unavailable("cache is down".into()))
        } else {
            Ok(())
        }
    }
}

fn merge(schedule: &mut Schedule, row: &MemoryTracker) {
    match schedule.get(&row.key.question) {
        Some(existing) if existing.state.last_review > row.state.last_review => {}
        _ => {
            schedule.insert(row.key.question.clone(), row.clone());
        }
    }
}

#[async_trait]
impl DueCache for InMemoryCache {
    async fn due<'a>(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&'a SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Option<DueSlice>> {
        self.check()?;
        let map = self.map();
        let Some(s) = map.get(&(user.clone(), season.clone())) else {
            return Ok(None);
        };
        let mut due: Vec<&MemoryTracker> = s
            .values()
            .filter(|r| r.state.due <= now)
            .filter(|r| subject.is_none_or(|x| r.subject.as_ref() == Some(x)))
            .collect();
        due.sort_by(|a, b| (a.state.due, &a.key.question).cmp(&(b.state.due, &b.key.question)));
        Ok(Some(DueSlice {
            total_due: due.len() as u64,
            items: due
                .into_iter()
                .take(limit)
                .map(|r| r.key.question.clone())
                .collect(),
        }))
    }

    async fn states(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<Option<MemoryTracker>>> {
        self.check()?;
        let map = self.map();
        let s = map.get(&(user.clone(), season.clone()));
        Ok(questions
            .iter()
            .map(|q| s.and_then(|s| s.get(q).cloned()))
            .collect())
    }

    async fn put(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> PortResult<()> {
        self.check()?;
        let mut map = self.map();
        if let Some(s) = map.get_mut(&(user.clone(), season.clone())) {
            for r in rows {
                merge(s, r);
            }
        }
        Ok(())
    }

    async fn load(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> PortResult<()> {
        self.check()?;
        self.inner.loads.fetch_add(1, Ordering::SeqCst);
        let mut map = self.map();
        let key = (user.clone(), season.clone());
        let old = map.remove(&key).unwrap_or_default();
        let mut fresh = Schedule::new();
        for r in rows {
            merge(&mut fresh, r);
        }
        // Entries newer than what was loaded survive.
        for (q, r) in old {
            if fresh
                .get(&q)
                .is_some_and(|f| r.state.last_review > f.state.last_review)
            {
                fresh.insert(q, r);
            }
        }
        map.insert(key, fresh);
        Ok(())
    }

    async fn remove(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<()> {
        self.check()?;
        if let Some(s) = self.map().get_mut(&(user.clone(), season.clone())) {
            for q in questions {
                s.remove(q);
            }
        }
        Ok(())
    }

    async fn clear_user(&self, user: &UserId, season: &SeasonId) -> PortResult<()> {
        self.check()?;
        self.map().remove(&(user.clone(), season.clone()));
        Ok(())
    }

    async fn clear_season(&self, season: &SeasonId) -> PortResult<u64> {
        self.check()?;
        let mut map = self.map();
        let before = map.len();
        map.retain(|(_, s), _| s != season);
        Ok((before - map.len()) as u64)
    }

    async fn user_stats(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Option<UserCacheStats>> {
        self.check()?;
        let map = self.map();
        Ok(map
            .get(&(user.clone(), season.clone()))
            .map(|s| UserCacheStats {
                total: s.len() as u64,
                due_now: s.values().filter(|r| r.state.due <= now).count() as u64,
            }))
    }

    async fn stats(&self) -> PortResult<CacheStats> {
        self.check()?;
        let map = self.map();
        let mut by_season: BTreeMap<String, u64> = BTreeMap::new();
        let mut members = 0u64;
        for ((_, season), s) in map.iter() {
            *by_season.entry(season.to_string()).or_default() += 1;
            members += s.len() as u64;
        }
        Ok(CacheStats {
            // No cache server: nothing is "connected" (get_cache_status
            // reports redis_connected = false in embedded mode).
            connected: false,
            memory_used_bytes: members * 160,
            total_keys: map.len() as u64,
            keys_by_season: by_season,
        })
    }

    async fn sample_schedules(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<UserId>> {
        self.check()?;
        let mut users: Vec<(u64, UserId)> = self
            .map()
            .keys()
            .filter(|(_, s)| s == season)
            .map(|(u, _)| (crate::srs::stable_hash(&[u.as_str()], seed), u.clone()))
            .collect();
        users.sort();
        Ok(users.into_iter().take(n).map(|(_, u)| u).collect())
    }

    async fn sample_entries(
        &self,
        user: &UserId,
        season: &SeasonId,
        n: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        self.check()?;
        Ok(self
            .map()
            .get(&(user.clone(), season.clone()))
            .map(|s| s.values().take(n).cloned().collect())
            .unwrap_or_default())
    }

    async fn ping(&self) -> PortResult<()> {
        self.check()
    }
}
