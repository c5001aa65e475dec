//! Adapter configuration: where Redis is, the key namespace and the time
//! budgets.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Single server or cluster.
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://host:port/db`), through a reconnecting
    /// `ConnectionManager`.
    Single(String),
    /// Seed nodes of a Redis Cluster (`redis://host:port` each).
    Cluster(Vec<String>),
}

/// Strips `user:password@` from a URL so it can be logged.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Single(u) => f.debug_tuple("Single").field(&redact(u)).finish(),
            Topology::Cluster(n) => f
                .debug_tuple("Cluster")
                .field(&n.iter().map(|u| redact(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// How to reach Redis and how to use it. Secrets in URLs are redacted in
/// `Debug` output.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Server or cluster.
    pub topology: Topology,
    /// Prefix of every key (e.g. `"memora:"`); isolates tenants and tests.
    /// Must not contain `{` or `}` (hash tags are ours).
    pub namespace: String,
    /// Budget of one interactive call (default 250 ms).
    pub call_timeout: Duration,
    /// Budget of bulk calls: schedule loads, season clears, statistics,
    /// leaderboard rebuilds (default 5 s).
    pub bulk_timeout: Duration,
    /// Time-to-live of a schedule, refreshed on every write (default 30 days).
    pub schedule_ttl: Duration,
    /// Horizon mode: cache only items due within this many days of the load
    /// (`None` = cache everything).
    pub horizon_days: Option<u32>,
    /// How a load writes a schedule's keys: the first way tried; a server
    /// that refuses it (an older Redis, an ACL without `RESTORE`) gets the
    /// next, from then on.
    pub load_write: LoadWrite,
}

/// How a schedule load writes its keys, fastest first; a server refusing
/// one gets the next. Every way leaves the same keys with the same content
/// and encoding (docs/PERFORMANCE.md, "Rehydration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadWrite {
    /// `RESTORE` of `listpack` values where they fit (Redis 7.0 and later).
    #[default]
    Listpack = 0,
    /// `RESTORE` of hashes and sorted sets of the RDB types every Redis
    /// since 5 reads.
    Generic = 1,
    /// `HSET`/`ZADD`.
    Commands = 2,
}

impl LoadWrite {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => LoadWrite::Listpack,
            1 => LoadWrite::Generic,
            _ => LoadWrite::Commands,
        }
    }
}

impl RedisConfig {
    /// Defaults for one server at `url`.
    pub fn single(url: impl Into<String>) -> Self {
        Self::with_topology(Topology::Single(url.into()))
    }

    /// Defaults for a cluster reachable through `nodes`.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_topology(Topology::Cluster(
            nodes.into_iter().map(Into::into).collect(),
        ))
    }

    fn with_topology(topology: Topology) -> Self {
        RedisConfig {
            topology,
            namespace: "memora:".to_owned(),
            call_timeout: Duration::from_millis(250),
            bulk_timeout: Duration::from_secs(5),
            schedule_ttl: Duration::from_secs(30 * 24 * 3600),
            horizon_days: None,
            load_write: LoadWrite::default(),
        }
    }

    /// Sets the key namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Sets the per-call timeout.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// Enables horizon mode.
    pub fn horizon_days(mut self, days: Option<u32>) -> Self {
        self.horizon_days = days;
        self
    }

    /// Chooses the first way a load writes its keys
    /// ([`RedisConfig::load_write`]).
    pub fn load_write(mut self, how: LoadWrite) -> Self {
        self.load_write = how;
        self
    }

    /// Checks the values once at start-up.
    pub fn validate(&self) -> Result<()> {
        if self.namespace.contains(['{', '}']) {
            return Err(Error::Config(
                "namespace must not contain '{' or '}'".into(),
            ));
        }
        if let Topology::Cluster(n) = &self.topology {
            if n.is_empty() {
                return Err(Error::Config("cluster needs at least one node".into()));
            }
        }
        if self.call_timeout.is_zero() || self.bulk_timeout.is_zero() {
            return Err(Error::Config("timeouts must be positive".into()));
        }
        if self.schedule_ttl.as_secs() == 0 {
            return Err(Error::Config("schedule TTL must be at least 1 s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_passwords() {
        let c = RedisConfig::single("redis://u:secret@host:6379/0");
        let s = format!("{c:?}");
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("host:6379"));
    }

    #[test]
    fn namespace_may_not_hold_braces() {
        assert!(
            RedisConfig::single("redis://x")
                .namespace("a{b")
                .validate()
                .is_err()
        );
        assert!(RedisConfig::single("redis://x").validate().is_ok());
    }
}
