//! Cache health: the switch between normal mode and safe mode. A failing
//! cache call flips the system to safe mode at once (within the request that
//! saw the failure); while degraded, requests skip the cache and go to the
//! database under the safe-mode rate limits, except that one request per
//! `retry_interval` tries the cache again. A background probe (the server's
//! health task) can also restore normal mode as soon as the cache answers.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Shared cache-health state.
#[derive(Debug)]
pub struct CacheHealth {
    degraded: AtomicBool,
    last_attempt_ms: AtomicI64,
    retry_interval: Duration,
    failures: std::sync::atomic::AtomicU64,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
    safe_mode_requests: std::sync::atomic::AtomicU64,
}

/// Counters of the review read path (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Due queries answered by the cache.
    pub hits: u64,
    /// Due queries that found no schedule (each leads to a rehydration or
    /// waits for one).
    pub misses: u64,
    /// Review sessions served from the database in safe mode.
    pub safe_mode_requests: u64,
    /// Cache call failures.
    pub failures: u64,
}

impl CacheHealth {
    /// Healthy state with the given retry interval.
    pub fn new(retry_interval: Duration) -> Self {
        CacheHealth {
            degraded: AtomicBool::new(false),
            last_attempt_ms: AtomicI64::new(0),
            retry_interval,
            failures: std::sync::atomic::AtomicU64::new(0),
            hits: std::sync::atomic::AtomicU64::new(0),
            misses: std::sync::atomic::AtomicU64::new(0),
            safe_mode_requests: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts a cache hit.
    pub fn record_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cache miss.
    pub fn record_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a safe-mode request.
    pub fn record_safe_mode(&self) {
        self.safe_mode_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Current counters.
    pub fn counters(&self) -> CacheCounters {
        CacheCounters {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            safe_mode_requests: self.safe_mode_requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// Whether the system is in safe mode.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Whether a request at `now` should call the cache. While degraded, only
    /// one caller per retry interval gets `true` (the inline probe).
    pub fn should_try(&self, now: DateTime<Utc>) -> bool {
        if !self.is_degraded() {
            return true;
        }
        let now_ms = now.timestamp_millis();
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        let interval = i64::try_from(self.retry_interval.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(last) >= interval {
            self.last_attempt_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        } else {
            false
        }
    }

    /// Records a successful cache call: back to normal mode.
    pub fn mark_ok(&self) {
        self.degraded.store(false, Ordering::Release);
    }

    /// Records a failed cache call: safe mode from now on.
    pub fn mark_failed(&self, now: DateTime<Utc>) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.last_attempt_ms
            .store(now.timestamp_millis(), Ordering::Release);
        self.degraded.store(true, Ordering::Release);
    }

    /// Number of cache failures seen (metrics).
    pub fn failure_count(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn degraded_state_retries_once_per_interval() {
        let h = CacheHealth::new(Duration::from_secs(2));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(h.should_try(t0));
        h.mark_failed(t0);
        assert!(h.is_degraded());
        assert!(!h.should_try(t0 + chrono::Duration::milliseconds(500)));
        let t1 = t0 + chrono::Duration::seconds(2);
        assert!(h.should_try(t1));
        assert!(!h.should_try(t1), "only one inline probe per interval");
        h.mark_ok();
        assert!(!h.is_degraded());
        assert!(h.should_try(t1));
        assert_eq!(h.failure_count(), 1);
    }
}
