//! In-process rate limiter for Safe Mode (degraded operation without the
//! cache).
//!
//! When the SRS cache is unavailable, review sessions are served straight
//! from the database, so their rate must be limited (spec §4.4): at most
//! `global_per_window` admitted requests per `global_window` across the whole
//! process, and at most one admitted request per user every
//! `per_user_interval`. The original kept these counters in the very cache
//! whose outage triggered Safe Mode, so it never worked (spec §7 #14); this
//! limiter lives entirely in process memory behind a [`std::sync::Mutex`]
//! and needs no external service.
//!
//! Differences from the original, by design:
//! * The global limit is a **sliding window**: a request at `now` is admitted
//!   only if fewer than `global_per_window` requests were admitted in
//!   `(now - global_window, now]`, so no window of length `global_window`
//!   ever holds more than `global_per_window` admissions (a fixed window
//!   allows up to twice the limit around a window edge).
//! * Denials carry the exact time until the blocking condition clears
//!   (`retry_after`, never less than one second) so callers can answer 429
//!   with a meaningful `Retry-After`.
//! * The limiter's clock never runs backwards: a `now` earlier than the
//!   latest instant already seen is treated as that latest instant.
//!
//! This limiter is per process. The core counts admissions across every
//! process through `Coordination::admit_safe_mode` (PostgreSQL, or this
//! limiter shared by the in-memory backend) and falls back to its own
//! limiter only when that port fails.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Limits applied while Safe Mode is active.
#[derive(Debug, Clone, PartialEq)]
pub struct SafeModeLimits {
    /// Maximum admitted requests in any window of length `global_window` (500).
    pub global_per_window: u32,
    /// Length of the sliding global window (60 s).
    pub global_window: Duration,
    /// Minimum time between two admitted requests of one user (30 s).
    pub per_user_interval: Duration,
    /// Maximum number of review items served per degraded session (15).
    pub max_items: usize,
}

impl Default for SafeModeLimits {
    /// 500 requests per 60 s globally, one request per user per 30 s, 15 items.
    fn default() -> Self {
        Self {
            global_per_window: 500,
            global_window: Duration::from_secs(60),
            per_user_interval: Duration::from_secs(30),
            max_items: 15,
        }
    }
}

impl SafeModeLimits {
    /// Caps a requested number of review items at `max_items`.
    pub fn clamp_items(&self, requested: usize) -> usize {
        requested.min(self.max_items)
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The process-wide sliding window is full.
    Global,
    /// The user's previous admitted request is too recent.
    PerUser,
}

/// Outcome of [`SafeModeLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The request is admitted and has been counted.
    Allowed,
    /// The request is rejected and was not counted.
    Denied {
        /// Time until the blocking condition clears (at least one second).
        retry_after: Duration,
        /// Which limit rejected the request.
        reason: DenyReason,
    },
}

impl Admission {
    /// Whether the request was admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// `retry_after` rounded up to whole seconds (for a `Retry-After`
    /// header); `None` when admitted.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Allowed => None,
            Self::Denied { retry_after, .. } => {
                let whole = retry_after.as_secs();
                Some(if retry_after.subsec_nanos() > 0 {
                    whole.saturating_add(1)
                } else {
                    whole
                })
            }
        }
    }
}

/// Below this many tracked users, `check` never prunes on its own.
const MIN_AUTO_PRUNE: usize = 1024;

#[derive(Debug)]
struct State {
    /// Admission instants inside the current sliding window, oldest first.
    window: VecDeque<DateTime<Utc>>,
    /// Last admitted request per user.
    last_allowed: HashMap<String, DateTime<Utc>>,
    /// Latest instant seen (the limiter's monotone clock).
    clock: Option<DateTime<Utc>>,
    /// `last_allowed` size above which `check` prunes automatically.
    auto_prune_at: usize,
}

/// Thread-safe in-process Safe Mode limiter (`Send + Sync`).
#[derive(Debug)]
pub struct SafeModeLimiter {
    limits: SafeModeLimits,
    window: TimeDelta,
    interval: TimeDelta,
    state: Mutex<State>,
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `until - now` as a `Duration`, at least one second.
fn wait(now: DateTime<Utc>, until: DateTime<Utc>) -> Duration {
    (until - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

fn plus(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl SafeModeLimiter {
    /// Creates a limiter with the given limits and no recorded requests.
    pub fn new(limits: SafeModeLimits) -> Self {
        let window = to_delta(limits.global_window);
        let interval = to_delta(limits.per_user_interval);
        Self {
            limits,
            window,
            interval,
            state: Mutex::new(State {
                window: VecDeque::new(),
                last_allowed: HashMap::new(),
                clock: None,
                auto_prune_at: MIN_AUTO_PRUNE,
            }),
        }
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &SafeModeLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Advances the monotone clock and drops admissions that left the window.
    fn advance(&self, state: &mut State, now: DateTime<Utc>) -> DateTime<Utc> {
        let now = state.clock.map_or(now, |c| c.max(now));
        state.clock = Some(now);
        while let Some(&oldest) = state.window.front() {
            if plus(oldest, self.window) <= now {
                state.window.pop_front();
            } else {
                break;
            }
        }
        now
    }

    /// Decides whether `user` may be served at `now`, in the order of §4.4:
    /// deny if the global sliding window is full; deny if the user's last
    /// admitted request is less than `per_user_interval` ago; otherwise admit
    /// and count the request. Denied requests are not counted.
    pub fn check(&self, user: &str, now: DateTime<Utc>) -> Admission {
        let mut state = self.lock();
        let now = self.advance(&mut state, now);

        let cap = usize::try_from(self.limits.global_per_window).unwrap_or(usize::MAX);
        if state.window.len() >= cap {
            let until = state
                .window
                .front()
                .map_or(plus(now, self.window), |&oldest| plus(oldest, self.window));
            return Admission::Denied {
                retry_after: wait(now, until),
                reason: DenyReason::Global,
            };
        }

        if let Some(&last) = state.last_allowed.get(user) {
            let until = plus(last, self.interval);
            if until > now {
                return Admission::Denied {
                    retry_after: wait(now, until),
                    reason: DenyReason::PerUser,
                };
            }
        }

        state.window.push_back(now);
        state.last_allowed.insert(user.to_owned(), now);
        if state.last_allowed.len() > state.auto_prune_at {
            self.prune_locked(&mut state, now);
            state.auto_prune_at = (state.last_allowed.len() * 2).max(MIN_AUTO_PRUNE);
        }
        Admission::Allowed
    }

    fn prune_locked(&self, state: &mut State, now: DateTime<Utc>) {
        let interval = self.interval;
        state
            .last_allowed
            .retain(|_, &mut last| plus(last, interval) > now);
    }

    /// Forgets users whose interval has passed and admissions that left the
    /// window, bounding memory to what still affects decisions. `check` also
    /// prunes on its own (amortised) once many users are tracked.
    pub fn prune(&self, now: DateTime<Utc>) {
        let mut state = self.lock();
        let now = self.advance(&mut state, now);
        self.prune_locked(&mut state, now);
    }

    /// Number of users currently remembered.
    pub fn tracked_users(&self) -> usize {
        self.lock().last_allowed.len()
    }

    /// Number of admissions inside the sliding window ending at `now`.
    pub fn global_count(&self, now: DateTime<Utc>) -> usize {
        let mut state = self.lock();
        self.advance(&mut state, now);
        state.window.len()
    }

    /// The user's last admitted request, if still remembered.
    pub fn user_last_allowed(&self, user: &str) -> Option<DateTime<Utc>> {
        self.lock().last_allowed.get(user).copied()
    }

    /// Clears the per-user limit of one user (admin helper).
    pub fn reset_user(&self, user: &str) {
        self.lock().last_allowed.remove(user);
    }

    /// Clears the global window (admin helper).
    pub fn reset_global(&self) {
        self.lock().window.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(ms: i64) -> DateTime<Utc> {
        t0() + TimeDelta::milliseconds(ms)
    }

    fn limits(n: u32, window_s: u64, interval_s: u64) -> SafeModeLimits {
        SafeModeLimits {
            global_per_window: n,
            global_window: Duration::from_secs(window_s),
            per_user_interval: Duration::from_secs(interval_s),
            max_items: 15,
        }
    }

    #[test]
    fn defaults_match_spec() {
        let l = SafeModeLimits::default();
        assert_eq!(l.global_per_window, 500);
        assert_eq!(l.global_window, Duration::from_secs(60));
        assert_eq!(l.per_user_interval, Duration::from_secs(30));
        assert_eq!(l.max_items, 15);
        assert_eq!(l.clamp_items(40), 15);
        assert_eq!(l.clamp_items(3), 3);
        let limiter = SafeModeLimiter::new(l.clone());
        assert_eq!(limiter.limits(), &l);
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SafeModeLimiter>();
    }

    #[test]
    fn per_user_interval_is_enforced_with_exact_retry_after() {
        let lim = SafeModeLimiter::new(SafeModeLimits::default());
        assert_eq!(lim.check("alice", at(0)), Admission::Allowed);
        assert_eq!(
            lim.check("alice", at(10_000)),
            Admission::Denied {
                retry_after: Duration::from_secs(20),
                reason: DenyReason::PerUser
            }
        );
        // Sub-second remainder is exact; the header value rounds up.
        let d = lim.check("alice", at(27_500));
        assert_eq!(
            d,
            Admission::Denied {
                retry_after: Duration::from_millis(2_500),
                reason: DenyReason::PerUser
            }
        );
        assert_eq!(d.retry_after_secs(), Some(3));
        // Less than a second left: reported as the 1 s minimum.
        assert_eq!(
            lim.check("alice", at(29_500)),
            Admission::Denied {
                retry_after: Duration::from_secs(1),
                reason: DenyReason::PerUser
            }
        );
        // Other users are unaffected; denials did not move alice's clock.
        assert_eq!(lim.check("bob", at(10_000)), Admission::Allowed);
        assert_eq!(lim.check("alice", at(30_000)), Admission::Allowed);
        assert_eq!(lim.user_last_allowed("alice"), Some(at(30_000)));
        assert_eq!(Admission::Allowed.retry_after_secs(), None);
    }

    #[test]
    fn global_window_slides() {
        let lim = SafeModeLimiter::new(limits(3, 60, 0));
        assert!(lim.check("a", at(0)).is_allowed());
        assert!(lim.check("b", at(20_000)).is_allowed());
        assert!(lim.check("c", at(40_000)).is_allowed());
        // Window (0, 59s] holds three admissions: full until t=60s.
        assert_eq!(
            lim.check("d", at(45_000)),
            Admission::Denied {
                retry_after: Duration::from_secs(15),
                reason: DenyReason::Global
            }
        );
        assert_eq!(lim.global_count(at(45_000)), 3);
        // A fixed window starting at 0 would reset at 60 s and admit three more
        // right away; the sliding window frees exactly one slot at a time.
        assert!(lim.check("d", at(60_000)).is_allowed());
        assert_eq!(
            lim.check("e", at(60_000)),
            Admission::Denied {
                retry_after: Duration::from_secs(20),
                reason: DenyReason::Global
            }
        );
        assert!(lim.check("e", at(80_000)).is_allowed());
    }

    #[test]
    fn global_check_comes_first_and_denials_do_not_count() {
        let lim = SafeModeLimiter::new(limits(1, 60, 30));
        assert!(lim.check("a", at(0)).is_allowed());
        // Both limits block "a"; the global one is reported (order of §4.4).
        assert!(matches!(
            lim.check("a", at(1_000)),
            Admission::Denied {
                reason: DenyReason::Global,
                ..
            }
        ));
        for i in 0..100 {
            assert!(!lim.check("spam", at(2_000 + i)).is_allowed());
        }
        assert_eq!(lim.global_count(at(59_000)), 1);
        assert!(lim.check("spam", at(60_000)).is_allowed());
    }

    #[test]
    fn zero_limits() {
        let lim = SafeModeLimiter::new(limits(0, 60, 30));
        assert_eq!(
            lim.check("a", at(0)),
            Admission::Denied {
                retry_after: Duration::from_secs(60),
                reason: DenyReason::Global
            }
        );
        let lim = SafeModeLimiter::new(limits(10, 60, 0));
        assert!(lim.check("a", at(0)).is_allowed());
        assert!(lim.check("a", at(0)).is_allowed());
    }

    #[test]
    fn clock_never_runs_backwards() {
        let lim = SafeModeLimiter::new(limits(10, 60, 30));
        assert!(lim.check("a", at(100_000)).is_allowed());
        // An earlier timestamp is treated as t=100 s.
        assert_eq!(
            lim.check("a", at(0)),
            Admission::Denied {
                retry_after: Duration::from_secs(30),
                reason: DenyReason::PerUser
            }
        );
    }

    #[test]
    fn prune_forgets_expired_users_and_resets_work() {
        let lim = SafeModeLimiter::new(limits(1_000, 60, 30));
        for i in 0..50 {
            assert!(lim.check(&format!("u{i}"), at(i * 1_000)).is_allowed());
        }
        assert_eq!(lim.tracked_users(), 50);
        // At t=49 s users admitted at <= 19 s have expired (20 of them).
        lim.prune(at(49_000));
        assert_eq!(lim.tracked_users(), 30);
        lim.prune(at(200_000));
        assert_eq!(lim.tracked_users(), 0);
        assert_eq!(lim.global_count(at(200_000)), 0);

        assert!(lim.check("x", at(300_000)).is_allowed());
        assert!(!lim.check("x", at(300_001)).is_allowed());
        lim.reset_user("x");
        assert!(lim.check("x", at(300_002)).is_allowed());
        lim.reset_global();
        assert_eq!(lim.global_count(at(300_002)), 0);
    }

    #[test]
    fn memory_is_bounded_without_explicit_prune() {
        let lim = SafeModeLimiter::new(limits(u32::MAX, 60, 1));
        for i in 0..20_000i64 {
            assert!(lim.check(&format!("u{i}"), at(i * 10)).is_allowed());
        }
        // Only users from the last second matter (100); auto-prune keeps the
        // map within a small multiple of the minimum threshold.
        assert!(lim.tracked_users() <= 2 * MIN_AUTO_PRUNE + 1);
    }

    #[test]
    fn concurrent_use_respects_global_limit() {
        let lim = std::sync::Arc::new(SafeModeLimiter::new(limits(100, 60, 30)));
        let handles: Vec<_> = (0..8)
            .map(|th| {
                let lim = lim.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|i| lim.check(&format!("t{th}-{i}"), at(0)).is_allowed())
                        .count()
                })
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 100);
    }

    /// Reference model: recompute every decision from the admitted history.
    fn reference(
        l: &SafeModeLimits,
        admitted: &[(usize, DateTime<Utc>)],
        user: usize,
        now: DateTime<Utc>,
    ) -> bool {
        let w = to_delta(l.global_window);
        let iv = to_delta(l.per_user_interval);
        let in_window = admitted.iter().filter(|(_, t)| *t + w > now).count();
        if in_window >= l.global_per_window as usize {
            return false;
        }
        !admitted.iter().any(|(u, t)| *u == user && *t + iv > now)
    }

    proptest! {
        #[test]
        fn invariants_hold_for_random_traffic(
            n in 1u32..6,
            window_s in 1u64..20,
            interval_s in 0u64..30,
            steps in proptest::collection::vec((0usize..6, 0i64..4_000, any::<bool>()), 1..200),
        ) {
            let l = limits(n, window_s, interval_s);
            let lim = SafeModeLimiter::new(l.clone());
            let mut now = t0();
            let mut admitted: Vec<(usize, DateTime<Utc>)> = Vec::new();
            for (user, delta_ms, prune) in steps {
                now += TimeDelta::milliseconds(delta_ms);
                if prune {
                    lim.prune(now);
                    // Only users whose interval is still running are kept.
                    let live = (0..6)
                        .filter(|u| admitted.iter().any(|(v, t)| v == u
                            && *t + to_delta(l.per_user_interval) > now))
                        .count();
                    prop_assert_eq!(lim.tracked_users(), live);
                }
                let expected = reference(&l, &admitted, user, now);
                let got = lim.check(&format!("user{user}"), now);
                prop_assert_eq!(got.is_allowed(), expected);
                match got {
                    Admission::Allowed => admitted.push((user, now)),
                    Admission::Denied { retry_after, .. } => {
                        prop_assert!(retry_after >= Duration::from_secs(1));
                    }
                }
            }
            let w = to_delta(l.global_window);
            for &(_, start) in &admitted {
                let count = admitted
                    .iter()
                    .filter(|(_, t)| *t >= start && *t < start + w)
                    .count();
                prop_assert!(count <= n as usize);
            }
            for u in 0..6 {
                let times: Vec<_> = admitted.iter().filter(|(v, _)| *v == u).map(|(_, t)| *t).collect();
                for pair in times.windows(2) {
                    prop_assert!(pair[1] - pair[0] >= to_delta(l.per_user_interval));
                }
            }
            prop_assert!(lim.global_count(now) <= n as usize);
        }

        #[test]
        fn retry_after_is_exact(
            n in 1u32..4,
            steps in proptest::collection::vec((0usize..3, 0i64..3_000), 1..60),
        ) {
            let l = limits(n, 10, 5);
            let lim = SafeModeLimiter::new(l.clone());
            let mut now = t0();
            let mut admitted: Vec<(usize, DateTime<Utc>)> = Vec::new();
            for (user, delta_ms) in steps {
                now += TimeDelta::milliseconds(delta_ms);
                match lim.check(&format!("user{user}"), now) {
                    Admission::Allowed => admitted.push((user, now)),
                    Admission::Denied { retry_after, reason } => {
                        let later = now + to_delta(retry_after);
                        let just_before = later - TimeDelta::milliseconds(1);
                        let w = to_delta(l.global_window);
                        let iv = to_delta(l.per_user_interval);
                        match reason {
                            DenyReason::Global => {
                                let full_at = |t: DateTime<Utc>| admitted.iter()
                                    .filter(|(_, a)| *a + w > t).count() >= n as usize;
                                prop_assert!(!full_at(later));
                                if retry_after > Duration::from_secs(1) {
                                    prop_assert!(full_at(just_before));
                                }
                            }
                            DenyReason::PerUser => {
                                let blocked_at = |t: DateTime<Utc>| admitted.iter()
                                    .any(|(v, a)| *v == user && *a + iv > t);
                                prop_assert!(!blocked_at(later));
                                if retry_after > Duration::from_secs(1) {
                                    prop_assert!(blocked_at(just_before));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
