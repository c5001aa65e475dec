//! Read routing to an optional streaming replica.
//!
//! What goes where (the adapter decides per statement, the core never
//! knows a replica exists):
//!
//! * **Learner-scoped reads that may be served stale-free** — the safe-mode
//!   due query and due count (`TrackerStore::due_trackers` / `count_due`)
//!   and the learner's own XP on a board (`ActivityStore::player_rank`) —
//!   go through [`PgStore::read_fenced`]: the replica statement also returns
//!   the learner's `learner_fence.seq` as the replica sees it (same
//!   statement, same snapshot), a primary-key lookup of the same row runs
//!   concurrently on the primary, and the replica's answer is used only when
//!   its fence is not behind. Every write of a learner's trackers, review log
//!   or XP bumps the fence in the same statement as the write, so "fence not
//!   behind" means "every write of this learner committed before the read
//!   began is in the replica's snapshot": **read-your-writes**, across
//!   processes.
//! * **Bulk reads not scoped to a learner** — season scans and counts of the
//!   cache rebuild, reconciliation samples, leaderboard sources
//!   (`top_players`, the rank count), archive status — go through
//!   [`PgStore::read_bulk`]: served by the replica, stale by at most the
//!   replica's replay lag ([`PgStore::replica_lag`]).
//! * **Everything else** (writes, the submit path's reads, ledgers, locks,
//!   auth) stays on the primary.
//!
//! A replica error never becomes the caller's error: the read is repeated
//! on the primary. Connection-level failures (refused, reset, pool timeout)
//! also open a small breaker so the next [`REPLICA_RETRY`] of reads go
//! straight to the primary instead of each paying a failed connect.
//! Replica statements are PostgreSQL round trips and are counted by
//! [`crate::trips`] like any other.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memora_core::ids::UserId;
use sqlx::PgPool;

use crate::PgStore;

/// After a connection-level replica failure, reads skip the replica for
/// this long.
pub const REPLICA_RETRY: Duration = Duration::from_secs(5);

/// Longest a statement on the replica may take before it counts as a
/// connection-level failure (the read is repeated on the primary and the
/// replica skipped for [`REPLICA_RETRY`]): a replica host that stops
/// answering must not hold reads until the TCP timeout.
pub const REPLICA_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// `fut` bounded by [`REPLICA_STATEMENT_TIMEOUT`].
async fn bounded<T>(fut: impl Future<Output = sqlx::Result<T>>) -> sqlx::Result<T> {
    tokio::time::timeout(REPLICA_STATEMENT_TIMEOUT, fut)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// SQL of the learner's fence (0 when the learner never wrote): `$1` is the
/// user id.
pub(crate) const FENCE_SQL: &str =
    "coalesce((SELECT seq FROM learner_fence WHERE user_id = $1), 0)::int8";

/// How this process's reads were routed since the store was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Reads answered by the replica.
    pub replica: u64,
    /// Learner-scoped reads repeated on the primary because the replica had
    /// not replayed the learner's latest write.
    pub lagging: u64,
    /// Reads repeated on the primary because the replica failed (or was
    /// skipped while its breaker was open).
    pub unavailable: u64,
}

/// The replica pool and its routing state.
pub(crate) struct Replica {
    pool: PgPool,
    down_until: Mutex<Option<Instant>>,
    replica: AtomicU64,
    lagging: AtomicU64,
    unavailable: AtomicU64,
}

impl Replica {
    pub(crate) fn new(pool: PgPool) -> Self {
        Replica {
            pool,
            down_until: Mutex::new(None),
            replica: AtomicU64::new(0),
            lagging: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool, unless the breaker is open (then counted as unavailable).
    fn usable(&self) -> Option<PgPool> {
        let open = match self.down_until.lock() {
            Ok(g) => g.is_some_and(|t| Instant::now() < t),
            Err(_) => false,
        };
        if open {
            self.unavailable.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            Some(self.pool.clone())
        }
    }

    fn served(&self) {
        self.replica.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.down_until.lock() {
            *g = None;
        }
    }

    fn failed(&self, e: &sqlx::Error) {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
        let connection_level = matches!(
            e,
            sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_)
        ) || matches!(e, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")));
        tracing::debug!(error = %e, connection_level, "replica read failed; reading the primary");
        if connection_level {
            if let Ok(mut g) = self.down_until.lock() {
                *g = Some(Instant::now() + REPLICA_RETRY);
            }
        }
    }

    pub(crate) fn stats(&self) -> ReplicaStats {
        ReplicaStats {
            replica: self.replica.load(Ordering::Relaxed),
            lagging: self.lagging.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
        }
    }
}

impl PgStore {
    /// A read not scoped to one learner: on the replica when one is
    /// configured and answers, on the primary otherwise. `run` gets the pool
    /// to read from.
    pub(crate) async fn read_bulk<T, F, Fut>(&self, run: F) -> sqlx::Result<T>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        if let Some((r, pool)) = self.routed_replica() {
            match bounded(run(pool)).await {
                Ok(v) => {
                    r.served();
                    return Ok(v);
                }
                Err(e) => r.failed(&e),
            }
        }
        run(self.pool.clone()).await
    }

    /// A read of `user`'s own data that must show their own writes.
    /// `run(pool, fenced)`: with `fenced` the statement must also return
    /// the learner's fence ([`FENCE_SQL`]) as seen by its snapshot (second
    /// tuple field); without, the plain statement (the fence is ignored).
    pub(crate) async fn read_fenced<T, F, Fut>(&self, user: &UserId, run: F) -> sqlx::Result<T>
    where
        F: Fn(PgPool, bool) -> Fut,
        Fut: Future<Output = sqlx::Result<(T, i64)>>,
    {
        if let Some((r, pool)) = self.routed_replica() {
            let (primary, replica) =
                tokio::join!(self.primary_fence(user), bounded(run(pool, true)));
            match (primary, replica) {
                (Ok(want), Ok((v, seen))) if seen >= want => {
                    r.served();
                    return Ok(v);
                }
                (Ok(_), Ok(_)) => {
                    r.lagging.fetch_add(1, Ordering::Relaxed);
                }
                (_, Err(e)) => r.failed(&e),
                // The primary failed: reading it again reports why.
                (Err(_), Ok(_)) => {}
            }
        }
        run(self.pool.clone(), false).await.map(|(v, _)| v)
    }

    /// The replica and its pool, when configured and its breaker is closed.
    fn routed_replica(&self) -> Option<(&Replica, PgPool)> {
        let r = self.replica.as_deref()?;
        r.usable().map(|p| (r, p))
    }

    /// The learner's fence on the primary (one primary-key lookup).
    async fn primary_fence(&self, user: &UserId) -> sqlx::Result<i64> {
        sqlx::query_scalar(&format!("SELECT {FENCE_SQL}"))
            .bind(user.as_str())
            .fetch_one(crate::trips::one(&self.pool))
            .await
    }

    /// Whether a read replica is configured.
    pub fn has_read_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// How reads were routed so far (None without a replica).
    pub fn replica_stats(&self) -> Option<ReplicaStats> {
        self.replica.as_ref().map(|r| r.stats())
    }

    /// How far the replica's replay is behind: zero when it has replayed
    /// everything it received, otherwise the age of the last transaction it
    /// replayed. This bounds the staleness of the bulk reads. `Ok(None)`
    /// without a replica; an error when the replica does not answer.
    pub async fn replica_lag(&self) -> crate::Result<Option<Duration>> {
        let Some(r) = &self.replica else {
            return Ok(None);
        };
        let secs: f64 = sqlx::query_scalar(
            "SELECT CASE \
                 WHEN NOT pg_is_in_recovery() THEN 0 \
                 WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() \
                     THEN 0 \
                 ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) \
             END::float8",
        )
        .fetch_one(crate::trips::one(r.pool()))
        .await?;
        Ok(Some(Duration::from_secs_f64(secs.max(0.0))))
    }
}
