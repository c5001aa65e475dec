//! The in-process failed-attempt counter: the login throttle of a single
//! server (no Redis) and the fallback when the shared counter is
//! unreachable. Memory is bounded: at most `capacity` keys; when full,
//! expired keys are dropped first, then the least recently failed ones.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::PortResult;
use crate::ports::AttemptCounter;

/// Default number of keys kept.
pub const DEFAULT_ATTEMPT_KEYS: usize = 100_000;

struct Entry {
    count: u32,
    last: DateTime<Utc>,
    expires: DateTime<Utc>,
}

/// Bounded in-process [`AttemptCounter`].
pub struct LocalAttempts {
    capacity: usize,
    map: Mutex<HashMap<String, Entry>>,
}

impl Default for LocalAttempts {
    fn default() -> Self {
        LocalAttempts::with_capacity(DEFAULT_ATTEMPT_KEYS)
    }
}

impl LocalAttempts {
    /// A counter keeping at most `capacity` keys (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        LocalAttempts {
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Keys currently held (tests).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// No keys held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AttemptCounter for LocalAttempts {
    async fn failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<(u32, DateTime<Utc>)>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| (e.count, e.last)))
    }

    async fn record_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<u32> {
        // A ttl beyond chrono's range means "practically forever": saturate
        // (never shorten it, never panic on the addition below).
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expires = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(key) && map.len() >= self.capacity {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.capacity {
                // Still full: drop the oldest tenth (by latest failure).
                let mut lasts: Vec<(DateTime<Utc>, String)> =
                    map.iter().map(|(k, e)| (e.last, k.clone())).collect();
                lasts.sort();
                let drop = (self.capacity / 10).max(1);
                for (_, k) in lasts.into_iter().take(drop) {
                    map.remove(&k);
                }
            }
        }
        let e = map.entry(key.to_owned()).or_insert(Entry {
            count: 0,
            last: now,
            expires: now,
        });
        if e.expires <= now {
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        e.last = now;
        e.expires = expires;
        Ok(e.count)
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_counts() {
        let c = LocalAttempts::with_capacity(10);
        let now = Utc::now();
        for i in 0..100 {
            c.record_failure(&format!("k{i}"), now, Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(c.len() <= 10, "capacity holds: {}", c.len());
        assert_eq!(
            c.record_failure("x", now, Duration::from_secs(60))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            c.record_failure("x", now, Duration::from_secs(60))
                .await
                .unwrap(),
            2
        );
        assert_eq!(c.failures("x", now).await.unwrap().map(|f| f.0), Some(2));
        c.reset("x").await.unwrap();
        assert_eq!(c.failures("x", now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn huge_ttl_saturates_instead_of_panicking() {
        let c = LocalAttempts::default();
        let now = Utc::now();
        for ttl in [
            Duration::from_secs(1_000_000 * 366 * 86_400),
            Duration::from_secs(u64::MAX),
        ] {
            assert_eq!(c.record_failure("k", now, ttl).await.unwrap(), 1);
            let later = now + chrono::Duration::days(10 * 366);
            assert_eq!(c.failures("k", later).await.unwrap(), Some((1, now)));
            c.reset("k").await.unwrap();
        }
    }
}
