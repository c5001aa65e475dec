//! [`RedisAttempts`]: failed-login counters
//! ([`memora_core::ports::AttemptCounter`]) shared by every server process.
//!
//! One hash per counter key: `<ns>attempts:{<key>}` (the key is the core's,
//! opaque here; wrapping it in a hash tag keeps each counter in one slot
//! whatever characters it holds, and the prefix/suffix make the mapping
//! one-to-one).
//!
//! | field | value |
//! |---|---|
//! | `c` | failures counted |
//! | `l` | latest failure, Unix µs |
//! | `e` | expiry (`l` + ttl), Unix µs |
//!
//! `record_failure` is one Lua script: it restarts the count when `e` is not
//! after `now`, increments, writes `l` and `e`, and sets the key's `PEXPIRE`
//! to the ttl — count and expiry change together. Expiry is judged on `e`
//! against the caller's `now` (the same rule as the in-process counter);
//! the key TTL only reclaims memory.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::PortResult;
use memora_core::ports::AttemptCounter;
use redis::Script;

use crate::codec::{micros, time_from_micros};
use crate::config::RedisConfig;
use crate::conn::RedisConn;
use crate::error::{Error, Result};

/// KEYS[1] = counter; ARGV = now µs, expiry µs, ttl ms. Returns the count.
const RECORD: &str = r"
local k = KEYS[1]
local now = tonumber(ARGV[1])
local e = tonumber(redis.call('HGET', k, 'e') or '')
local c = 0
if e and e > now then c = tonumber(redis.call('HGET', k, 'c') or '0') or 0 end
if c < 4294967295 then c = c + 1 end
redis.call('HSET', k, 'c', c, 'l', ARGV[1], 'e', ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', k, ARGV[3])
else
  redis.call('DEL', k)
end
return c
";

/// Longest TTL set (about 100 years): keeps Redis's expiry arithmetic and
/// the stored microseconds far from overflow.
const MAX_TTL_MS: u64 = 100 * 366 * 86_400_000;

/// The [`AttemptCounter`] on Redis or Redis Cluster. Clones share the
/// connection.
#[derive(Clone)]
pub struct RedisAttempts {
    conn: RedisConn,
    cfg: Arc<RedisConfig>,
    record: Arc<Script>,
}

impl std::fmt::Debug for RedisAttempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAttempts")
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl RedisAttempts {
    /// Connects with `config`.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        Ok(Self::with_connection(conn, config))
    }

    /// Uses an existing connection (shared with the other adapters).
    pub fn with_connection(conn: RedisConn, config: RedisConfig) -> Self {
        RedisAttempts {
            conn,
            cfg: Arc::new(config),
            record: Arc::new(Script::new(RECORD)),
        }
    }

    /// The Redis key of counter `key`: `<ns>attempts:{<key>}`.
    pub fn counter_key(&self, key: &str) -> String {
        format!("{}attempts:{{{key}}}", self.cfg.namespace)
    }

    async fn failures_inner(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(u32, DateTime<Utc>)>> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.counter_key(key)).arg(&["c", "l", "e"]);
        let v: (Option<u32>, Option<i64>, Option<i64>) =
            self.conn.query(self.cfg.call_timeout, &cmd).await?;
        match v {
            (Some(c), Some(l), Some(e)) if e > micros(now) => Ok(Some((c, time_from_micros(l)?))),
            (None, None, None) | (Some(_), Some(_), Some(_)) => Ok(None),
            _ => Err(Error::Decode(format!("partial attempt counter {key:?}"))),
        }
    }
}

#[async_trait]
impl AttemptCounter for RedisAttempts {
    async fn failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<(u32, DateTime<Utc>)>> {
        Ok(self.failures_inner(key, now).await?)
    }

    async fn record_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<u32> {
        // Rounded up, so a sub-unit ttl still outlives `now`.
        let ttl_us = u64::try_from(ttl.as_nanos().div_ceil(1_000))
            .unwrap_or(u64::MAX)
            .min(MAX_TTL_MS * 1_000);
        let ttl_ms = ttl_us.div_ceil(1_000);
        let ttl_us = i64::try_from(ttl_us).unwrap_or(i64::MAX);
        let now_us = micros(now);
        let mut inv = self.record.key(self.counter_key(key));
        inv.arg(now_us)
            .arg(now_us.saturating_add(ttl_us))
            .arg(ttl_ms);
        Ok(self.conn.script(self.cfg.call_timeout, &inv).await?)
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.counter_key(key));
        let _: i64 = self.conn.query(self.cfg.call_timeout, &cmd).await?;
        Ok(())
    }
}
