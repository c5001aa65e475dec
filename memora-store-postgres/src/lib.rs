//! PostgreSQL adapter for every Memora store port (content, seasons, learner
//! memory, players, commerce, quests, auth, audit, the job leader lock, the
//! shared progress of background jobs and the durable served-set ledger),
//! built on sqlx with embedded, never-edited SQL migrations.
//!
//! Design points (see `migrations/` for the commented schema):
//!
//! * `memory_tracker` and `review_log` are LIST-partitioned by season with
//!   the season in every key. Creating a season creates its partitions
//!   (idempotently); there is no default partition, so a row for an unknown
//!   season is refused by PostgreSQL and reported as [`PortError::Rejected`](memora_core::PortError::Rejected).
//! * [`TrackerStore::persist_batch`](memora_core::ports::TrackerStore::persist_batch)
//!   writes a whole batch in one statement built from `UNNEST` arrays; it is
//!   idempotent (review ids are claimed in the unpartitioned `review_ids`
//!   table) and never regresses a tracker row (`ON CONFLICT … WHERE newer`).
//! * The served-set ledger ([`ServedLedger`](memora_core::ports::ServedLedger))
//!   is one row per (player, season, item); `commit` is an all-or-nothing
//!   compare-and-set under row locks taken in item order.
//! * Reads are keyset-paginated and index-backed; sampling uses
//!   `TABLESAMPLE SYSTEM … REPEATABLE(seed)`.
//! * With a read replica ([`PgStore::with_read_replica`]) learner-scoped
//!   reads that must show the learner's own writes are checked against a
//!   per-learner write fence, and bulk reads go to the replica (stale by at
//!   most its replay lag); see the `replica` module.
//! * The adapter translates, never decides: business rules stay in
//!   memora-core.

mod auth;
mod bulk;
mod commerce;
mod content;
mod coordination;
mod devices;
mod error;
mod institutions;
mod jobs;
mod memory;
mod numbers;
mod partitions;
mod player;
mod replica;
mod rows;
mod seasons;
mod served;
pub mod trips;
pub use institutions::{MAX_SCHEMA_LEN, institution_schema, is_plain_schema};

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use bulk::LoadReport;
pub use bulk::{BENCH_SUBJECTS, bench_question, bench_subject, bench_user};
pub use error::{PgStoreError, Result};
pub use memory::DUE_QUERY;
pub use partitions::PartitionInfo;
pub use partitions::partition_name;
pub use replica::{REPLICA_RETRY, ReplicaStats};

/// The embedded migrations of this crate (`migrations/*.sql`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The optional streaming replica for reads (see `replica`).
    replica: Option<Arc<replica::Replica>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the connection options: they may hold a password.
        f.debug_struct("PgStore")
            .field("pool_size", &self.pool.size())
            .field("read_replica", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

/// A pooled connection idle for less than this is handed out without a
/// health check; one idle longer is pinged first (and replaced if dead).
///
/// sqlx's default checks every connection it hands out with a `Sync` round
/// trip before the query's own, and pings it again when it comes back: on
/// a busy pool that made each query three round trips on the wire. A
/// connection used this recently was healthy when it came back (the ping on
/// release), so the check is kept only where it finds something: after a
/// quiet spell (a restarted server, an idle connection a network dropped).
/// A server that restarts while the pool is busy fails at most one query
/// per pooled connection, which is closed then; the request reports the
/// store unavailable and nothing acknowledged is lost (the write-behind
/// retries).
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// The pool options of every pool here: see [`PING_IF_IDLE_FOR`].
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    use sqlx::Connection;
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Pool options whose every new connection must have `schema` as its
/// `current_schema()` (else the connection is refused).
fn in_schema(options: PgPoolOptions, schema: &str) -> PgPoolOptions {
    let expected = schema.to_owned();
    options.after_connect(move |conn, _meta| {
        let expected = expected.clone();
        Box::pin(async move {
            let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut *conn)
                .await?;
            if current.as_deref() != Some(expected.as_str()) {
                return Err(sqlx::Error::Configuration(
                    format!(
                        "the connection's schema is {current:?}, not {expected:?}: the search_path option did not reach the server (a connection pooler that ignores startup options?)"
                    )
                    .into(),
                ));
            }
            Ok(())
        })
    })
}

impl PgStore {
    /// Connects a pool of at most `max_conns` connections to `url`.
    pub async fn connect(url: &str, max_conns: u32) -> Result<Self> {
        let opts: PgConnectOptions = url.parse()?;
        Self::connect_with(opts, max_conns).await
    }

    /// Connects with explicit options (e.g. a `search_path` set through
    /// [`PgConnectOptions::options`]).
    pub async fn connect_with(opts: PgConnectOptions, max_conns: u32) -> Result<Self> {
        let pool = pool_options()
            .max_connections(max_conns.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// [`PgStore::connect_with`] on the schema `schema` (which `opts` must
    /// put first on the `search_path`): every new connection checks that
    /// `current_schema()` is `schema` and is refused otherwise, so a proxy
    /// that drops the connection options (PgBouncer's
    /// `ignore_startup_parameters = options`) can never send one
    /// institution's queries to another's tables.
    pub async fn connect_in_schema(
        opts: PgConnectOptions,
        max_conns: u32,
        schema: &str,
    ) -> Result<Self> {
        // Checked once up front for a clear error (the pool would only time
        // out retrying), then on every connection the pool opens.
        {
            use sqlx::Connection;
            let mut first = sqlx::PgConnection::connect_with(&opts).await?;
            let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut first)
                .await?;
            let _ = first.close().await;
            if current.as_deref() != Some(schema) {
                return Err(PgStoreError::Invalid(format!(
                    "the connection's schema is {current:?}, not {schema:?}: the search_path option did not reach the server (a connection pooler that ignores startup options?)"
                )));
            }
        }
        let pool = in_schema(pool_options(), schema)
            .max_connections(max_conns.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// [`PgStore::with_read_replica`] for a store on the schema `schema`:
    /// a replica connection whose `current_schema()` is another is refused
    /// (the read then goes to the primary), as the primary's are.
    pub fn with_read_replica_in_schema(
        mut self,
        opts: PgConnectOptions,
        max_conns: u32,
        schema: &str,
    ) -> Self {
        let pool = in_schema(pool_options(), schema)
            .max_connections(max_conns.max(1))
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy_with(opts);
        self.replica = Some(Arc::new(replica::Replica::new(pool)));
        self
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            pool,
            replica: None,
        }
    }

    /// Routes the reads that may be served by a streaming replica of this
    /// database (see the `replica` module) to a pool of at most
    /// `max_conns` connections on `opts`. The pool connects lazily, so a
    /// replica that is down at start-up is not an error: its reads go to the
    /// primary until it answers.
    pub fn with_read_replica(mut self, opts: PgConnectOptions, max_conns: u32) -> Self {
        let pool = pool_options()
            .max_connections(max_conns.max(1))
            // A replica that does not answer must not hold a read for long:
            // the read is repeated on the primary after this (sqlx retries
            // a refused connection until then).
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy_with(opts);
        self.replica = Some(Arc::new(replica::Replica::new(pool)));
        self
    }

    /// The replica's pool, when one is configured (tests, health checks).
    pub fn replica_pool(&self) -> Option<&PgPool> {
        self.replica.as_deref().map(replica::Replica::pool)
    }

    /// The underlying pool (tests, health checks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Health probe: one round trip.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(crate::trips::one(&self.pool))
            .await?;
        Ok(())
    }
}
