//! # memora-cache-redis
//!
//! Redis adapters for six memora-core ports, running unchanged on a single
//! Redis server or on a Redis Cluster:
//!
//! * [`RedisDueCache`] — the due-schedule cache ([`memora_core::ports::DueCache`]):
//!   per (user, season) binary card states in chunked hashes, per subject
//!   chunked sorted sets of question ids scored by due time (so a subject
//!   filter is exact) and a marker saying the schedule is complete (layout
//!   in the module docs of `due.rs`). Every key of one user shares the hash
//!   tag `{<user>}`, so every script and pipeline touches one Cluster slot.
//! * [`RedisLeaderboard`] — XP leaderboards
//!   ([`memora_core::ports::LeaderboardCache`]) per scope × period bucket.
//! * [`RedisQueue`] + [`PersistenceWorker`] — the durable write-behind queue
//!   ([`memora_core::ports::PersistenceQueue`]) on a Redis Stream with a
//!   consumer group, retries, reclaim of crashed consumers' entries and a
//!   dead-letter stream.
//! * [`RedisServedLedger`] — the fast served-set ledger
//!   ([`memora_core::ports::ServedLedger`]): one hash per (user, season)
//!   under the same `{<user>}` tag, written by Lua scripts, expiring by TTL.
//! * [`RedisFastPath`] — the review fast path
//!   ([`memora_core::ports::ReviewFastPath`]) over the adapters above: a warm
//!   serving in one script, a submission in one pipeline plus one script on
//!   a single Redis (Cluster: see [`RedisFastPath`]'s module docs).
//! * [`RedisAttempts`] — failed-login counters
//!   ([`memora_core::ports::AttemptCounter`]) shared by every process.
//!
//! Every Redis call is bounded by a short timeout ([`RedisConfig::call_timeout`]);
//! timeouts and I/O failures surface as [`memora_core::PortError::Unavailable`]
//! so the core switches to safe mode instead of hanging. Every request sent
//! to Redis is counted ([`round_trips`], and per task scope with
//! [`count_round_trips`]).

mod attempts;
mod card_text;
mod codec;
mod config;
mod conn;
mod due;
mod dump;
mod error;
mod fast;
mod job_codec;
mod leaderboard;
mod lua;
mod numbers;
mod queue;
mod served;

pub use attempts::RedisAttempts;
pub use config::{LoadWrite, RedisConfig, Topology};
pub use conn::{RedisConn, count_round_trips, round_trips};
pub use due::RedisDueCache;
pub use error::{Error, Result};
pub use fast::RedisFastPath;
pub use leaderboard::RedisLeaderboard;
pub use numbers::{DEFAULT_CAPACITY as NUMBERING_CAPACITY, Numbering};
pub use queue::{PersistenceWorker, RedisQueue, WorkerConfig};
pub use served::RedisServedLedger;

/// Name of the persistence workers' consumer group.
pub fn queue_group() -> &'static str {
    queue::GROUP
}

/// Connects with `config` and sends `PING` (health probe for the server).
pub async fn ping(config: &RedisConfig) -> Result<()> {
    let conn = RedisConn::connect(config).await?;
    conn.ping().await
}
