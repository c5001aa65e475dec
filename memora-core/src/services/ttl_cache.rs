//! [`TtlCache`]: a small bounded map whose entries expire on the core's
//! [`Clock`](crate::ports::Clock), for per-learner values the hot path reads
//! on every request (the learner's day boundary, FSRS parameters).
//!
//! Hand-written rather than `moka` on purpose: expiry runs on the injected
//! clock (so tests move time by hand and nothing depends on wall-clock
//! sleeps), the pure core stays free of a concurrent-cache crate, and the
//! needs are tiny — a lookup, an insert, an invalidation. Capacity is a hard
//! bound: a full map first drops its expired entries, then an arbitrary
//! half (a miss costs one store read, never a wrong answer).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A bounded map with a time to live per entry.
pub(crate) struct TtlCache<K, V> {
    ttl: chrono::Duration,
    capacity: usize,
    map: Mutex<HashMap<K, (V, DateTime<Utc>)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl`, at most `capacity` of them
    /// (`capacity == 0` or a zero `ttl` disables it).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero()),
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && self.ttl > chrono::Duration::zero()
    }

    /// The live value of `key` at `now`.
    pub(crate) fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` for `key` from `now` on.
    pub(crate) fn insert(&self, key: K, value: V, now: DateTime<Utc>) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                let drop: Vec<K> = map.keys().take(map.len() / 2 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, (value, now + self.ttl));
    }

    /// Forgets `key` (its value changed in this process).
    pub(crate) fn invalidate(&self, key: &K) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }

    /// Number of entries held (live or not yet dropped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    #[test]
    fn entries_expire_on_the_given_clock_and_can_be_invalidated() {
        let c: TtlCache<u32, &str> = TtlCache::new(Duration::from_secs(60), 10);
        c.insert(1, "a", t(0));
        assert_eq!(c.get(&1, t(59)), Some("a"));
        assert_eq!(c.get(&1, t(60)), None, "expired at the TTL");
        c.insert(1, "b", t(100));
        c.invalidate(&1);
        assert_eq!(c.get(&1, t(100)), None);
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let c: TtlCache<u32, u32> = TtlCache::new(Duration::from_secs(60), 4);
        for k in 0..100 {
            c.insert(k, k, t(0));
            assert!(c.len() <= 4, "{} entries", c.len());
        }
        assert_eq!(c.get(&99, t(1)), Some(99), "the newest entry is kept");
    }

    #[test]
    fn a_zero_ttl_or_capacity_disables_the_cache() {
        let c: TtlCache<u32, u32> = TtlCache::new(Duration::ZERO, 4);
        c.insert(1, 1, t(0));
        assert_eq!(c.get(&1, t(0)), None);
        let c: TtlCache<u32, u32> = TtlCache::new(Duration::from_secs(1), 0);
        c.insert(1, 1, t(0));
        assert_eq!(c.get(&1, t(0)), None);
    }
}
