//! In-memory adapters for every port: the embedded backend (`memora` with no
//! database configured) and the reference behaviour that the conformance
//! suite pins for the PostgreSQL and Redis adapters.
//!
//! * [`InMemoryBackend`] — all stores behind one mutex-guarded state.
//! * [`InMemoryDirectory`] — the platform directory of institutions and
//!   account names, shared by every institution's backend.
//! * [`InMemoryCache`] — the due-schedule cache, with an availability switch
//!   for fault tests.
//! * [`ComposedFastPath`] — the review fast path composed of the general
//!   ports (reference behaviour; opt in with `Ports::with_composed_fast_path`).
//! * [`InlineQueue`] — a write-through "queue": a job is durable once it is
//!   in the store, so `enqueue` persists immediately.
//! * [`SystemClock`], [`ManualClock`], [`SequentialIds`], [`Sha256Hasher`],
//!   [`InlineJobRuntime`].

mod attempts;
mod cache;
mod directory;
mod fast;
mod store;

pub use attempts::{DEFAULT_ATTEMPT_KEYS, LocalAttempts};
pub use cache::InMemoryCache;
pub use directory::InMemoryDirectory;
pub use fast::ComposedFastPath;
pub use store::{InMemoryBackend, InlineQueue};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::error::PortResult;
use crate::ports::{Clock, IdGenerator, JobRuntime, PasswordHasher};
use crate::util::SplitMix64;

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// Starts at `at`.
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            millis: AtomicI64::new(at.timestamp_millis()),
        })
    }
    /// Moves forward (or back) by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        self.millis
            .fetch_add(d.num_milliseconds(), Ordering::SeqCst);
    }
    /// Jumps to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        self.millis.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.millis.load(Ordering::SeqCst))
            .single()
            .unwrap_or_else(Utc::now)
    }
}

/// Sequential ids (`prefix-000001`) and pseudo-random secrets. Secrets are
/// seeded from the process start time: fine for tests and demos; the server
/// replaces this with an OS-random generator.
#[derive(Debug)]
pub struct SequentialIds {
    next: AtomicU64,
    seed: u64,
}

impl Default for SequentialIds {
    fn default() -> Self {
        SequentialIds {
            next: AtomicU64::new(1),
            seed: Utc::now().timestamp_nanos_opt().unwrap_or(7) as u64,
        }
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:06}", self.next.fetch_add(1, Ordering::Relaxed))
    }
    fn secret(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix64::new(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect()
    }
}

/// SHA-256 "password hashing" for tests and the in-memory backend's
/// examples. Not for production secrets (no salt, fast): the server uses
/// argon2.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sha256Hasher;

#[async_trait]
impl PasswordHasher for Sha256Hasher {
    async fn hash(&self, secret: &str) -> PortResult<String> {
        use sha2::Digest;
        let d = sha2::Sha256::digest(secret.as_bytes());
        Ok(format!("sha256${}", hex::encode(d)))
    }
    async fn verify(&self, secret: &str, hash: &str) -> PortResult<bool> {
        Ok(self.hash(secret).await? == hash)
    }
}

/// Runs a job's CPU-heavy steps inline, on the caller's thread, and does not
/// pause (the core has no timer). The server replaces it with tokio's
/// blocking pool and timer; an embedder serving requests on an async runtime
/// should do the same.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineJobRuntime;

#[async_trait]
impl JobRuntime for InlineJobRuntime {
    async fn run_cpu(&self, work: Box<dyn FnOnce() + Send + 'static>) -> PortResult<()> {
        work();
        Ok(())
    }
    async fn pause(&self, _pause: std::time::Duration) {}
}
