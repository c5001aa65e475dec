//! Wiring ports from configuration: the embedded in-memory backend (with the
//! demo dataset) when no database is configured, PostgreSQL (+ Redis when
//! configured) otherwise.
//!
//! Start-up checks live here too, because an operator's first contact with
//! Memora is usually a wrong URL: the database is tried once with a short
//! timeout and a failure names the (redacted) URL and the cause — refused,
//! unknown host, authentication, missing database, wrong scheme — instead of
//! a pool timeout. Redis being down is not fatal: the server starts in safe
//! mode on a lazily opened connection and leaves safe mode when Redis
//! answers (see [`RedisStart`]).

use std::sync::Arc;
use std::time::Duration;

use memora_core::memory::{InMemoryBackend, SystemClock};
use memora_core::ports::Ports;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::security::{Argon2Hasher, RandomIds};

/// How long the first database connection may take before start-up fails.
pub const DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first Redis connection may take before the server starts in
/// safe mode without it.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the data lives.
#[derive(Clone, Default)]
pub struct BackendConfig {
    /// PostgreSQL URL (None = embedded in-memory backend).
    pub database_url: Option<String>,
    /// URL of a streaming replica of that database for reads that may be
    /// served by one (`MEMORA_DATABASE_READ_URL`; see
    /// `memora_store_postgres::PgStore::with_read_replica`).
    pub database_read_url: Option<String>,
    /// Redis URL (single node).
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (comma-separated URLs).
    pub redis_cluster_nodes: Option<String>,
    /// Redis key namespace (default `memora:`): several deployments or
    /// test runs can share one Redis.
    pub redis_namespace: Option<String>,
    /// Horizon mode of the due cache (`MEMORA_CACHE_HORIZON_DAYS`): cache
    /// only cards due within this many days. `None`: every card.
    pub cache_horizon_days: Option<u32>,
    /// How a schedule load writes its Redis keys (`MEMORA_REDIS_LOAD`):
    /// the first way tried, the next ones when the server refuses it.
    pub redis_load: memora_cache_redis::LoadWrite,
    /// Whether cached schedules name questions by their ids
    /// (`MEMORA_REDIS_QUESTION_KEYS=ids`, layout 3) rather than by their
    /// permanent numbers (the default, layout 5).
    pub redis_keys_by_id: bool,
    /// Database pool size.
    pub db_pool_size: u32,
    /// The PostgreSQL schema to use first (`search_path`), created if
    /// missing: set for the institutions of a platform other than the home
    /// one (see [`BackendConfig::for_institution`]). `None`: the URL's
    /// own `search_path`.
    pub schema: Option<String>,
    /// The institution a CLI command acts on (`None`: the home one). The
    /// server ignores it: it serves every institution.
    pub institution: Option<String>,
    /// Queue entries pending this long on a dead consumer are reclaimed.
    pub queue_reclaim_idle: std::time::Duration,
}

impl BackendConfig {
    /// The backend of `institution` on a platform whose home institution
    /// uses `self` and the schema `home_schema`: its own schema
    /// ([`memora_store_postgres::institution_schema`]), its own Redis key
    /// namespace (`<namespace>i:<id>:`), a pool of `pool_size` connections.
    /// The same servers, nothing shared. Refused when the schema name would
    /// not be a plain schema name (see
    /// [`memora_store_postgres::institution_schema`]).
    pub fn for_institution(
        &self,
        institution: &memora_core::domain::InstitutionId,
        home_schema: &str,
        pool_size: u32,
    ) -> Result<BackendConfig, BackendError> {
        Self::institution_fits(home_schema, institution).map_err(BackendError::Config)?;
        let ns = self.redis_namespace.as_deref().unwrap_or("memora:");
        Ok(BackendConfig {
            schema: memora_store_postgres::institution_schema(home_schema, institution),
            redis_namespace: Some(format!("{ns}i:{}:", institution.as_str())),
            db_pool_size: pool_size,
            ..self.clone()
        })
    }
}

impl BackendConfig {
    /// Why `institution` cannot have a schema next to `home_schema`, if it
    /// cannot.
    pub fn institution_fits(
        home_schema: &str,
        institution: &memora_core::domain::InstitutionId,
    ) -> Result<(), String> {
        match memora_store_postgres::institution_schema(home_schema, institution) {
            Some(_) => Ok(()),
            None => Err(format!(
                "institution {institution} cannot have a schema next to the home schema {home_schema:?}: `{home_schema}__<id>` must be at most {} bytes of a–z, 0–9 and _ (use a shorter id, or a shorter lowercase home schema)",
                memora_store_postgres::MAX_SCHEMA_LEN
            )),
        }
    }
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("BackendConfig")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact(u)),
            )
            .field(
                "database_read_url",
                &self.database_read_url.as_ref().map(|u| redact(u)),
            )
            .field("redis_url", &self.redis_url.as_ref().map(|u| redact(u)))
            .field(
                "redis_cluster_nodes",
                &self.redis_cluster_nodes.as_ref().map(|n| redact_list(n)),
            )
            .field("db_pool_size", &self.db_pool_size)
            .field("schema", &self.schema)
            .field("queue_reclaim_idle", &self.queue_reclaim_idle)
            .finish()
    }
}

/// A URL fit for logs and error messages: the password of the user part and
/// secret-looking query parameters (`password`, `sslpassword`, `token`, …)
/// become `***`; user, host, port and database stay, because they are what
/// an operator needs to see to fix a wrong URL.
/// `postgres://app:s3cret@db:5432/memora` → `postgres://app:***@db:5432/memora`.
pub fn redact(url: &str) -> String {
    let Some(s) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = (&url[..s], &url[s + 3..]);
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let before_query = match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    let query = match query.strip_prefix('?') {
        Some(q) => {
            let parts: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("?{}", parts.join("&"))
        }
        None => String::new(),
    };
    format!("{scheme}://{before_query}{query}")
}

fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key"]
        .iter()
        .any(|s| k.contains(s))
}

/// [`redact`] for a comma-separated list of URLs.
pub fn redact_list(urls: &str) -> String {
    urls.split(',')
        .map(|u| redact(u.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// What was built, and what background work it needs.
pub struct Built {
    /// The ports.
    pub ports: Ports,
    /// The in-memory backend, when embedded.
    pub memory: Option<InMemoryBackend>,
    /// The PostgreSQL store, when there is one.
    pub pg: Option<memora_store_postgres::PgStore>,
    /// The platform directory (institutions and account names): the
    /// store's tables, or one in memory for the embedded backend.
    pub directory: Arc<dyn memora_core::ports::InstitutionDirectory>,
    /// Handles the server keeps alive (workers etc.).
    pub extras: crate::jobs::Extras,
    /// What the server runs on, for the start-up log.
    pub report: StartupReport,
}

/// What [`build`] chose and found, for the start-up log and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupReport {
    /// `embedded` (in-memory, demo data, nothing survives a restart) or
    /// `postgres`.
    pub backend: &'static str,
    /// The database URL, redacted (None when embedded).
    pub database: Option<String>,
    /// The read replica's URL, redacted (None when not configured).
    pub read_replica: Option<String>,
    /// Why the read replica could not be used at start-up (its reads go to
    /// the primary until it answers).
    pub read_replica_down: Option<String>,
    /// Migrations this start applied (0: the schema was up to date).
    pub migrations_applied: usize,
    /// Migrations the binary knows (the schema version it needs).
    pub migrations_known: usize,
    /// The database holds no season yet (nothing to serve: run
    /// `memora seed-demo` or create a season).
    pub database_empty: bool,
    /// The due-schedule cache: `in-process` or the redacted Redis URL(s).
    pub cache: String,
    /// Where acknowledged answers go first.
    pub queue: String,
    /// Redis and the reason it could not be reached at start-up (the server
    /// then starts in safe mode).
    pub redis_down: Option<RedisStart>,
    /// Whether Redis persists to its append-only file (None: no Redis, or
    /// unknown because it was down or refused `INFO`).
    pub redis_aof: Option<bool>,
}

/// Redis was unreachable when the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStart {
    /// Redacted URL (or node list).
    pub url: String,
    /// Why the first connection failed.
    pub cause: String,
}

impl StartupReport {
    fn embedded() -> Self {
        StartupReport {
            backend: "embedded",
            database: None,
            read_replica: None,
            read_replica_down: None,
            migrations_applied: 0,
            migrations_known: 0,
            database_empty: false,
            cache: "in-process".into(),
            queue: "none (embedded: answers are kept in memory)".into(),
            redis_down: None,
            redis_aof: None,
        }
    }
}

/// In-memory ports with production ids, clock and hashing.
pub fn in_memory() -> Built {
    let backend = InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.clock = Arc::new(SystemClock);
    ports.ids = Arc::new(RandomIds);
    ports.hasher = Arc::new(Argon2Hasher);
    ports.job_runtime = Arc::new(crate::jobs::TokioJobRuntime);
    Built {
        ports,
        memory: Some(backend),
        pg: None,
        directory: Arc::new(memora_core::memory::InMemoryDirectory::new()),
        extras: crate::jobs::Extras::default(),
        report: StartupReport::embedded(),
    }
}

/// Checks that `url` names a PostgreSQL database this process can use, with
/// one connection bounded by [`DB_CONNECT_TIMEOUT`], and explains a failure
/// in the operator's terms. Returns the parsed options and the connection.
pub async fn check_database(url: &str) -> Result<(PgConnectOptions, PgConnection), BackendError> {
    let shown = redact(url);
    let fail = |problem: String| BackendError::Database {
        url: shown.clone(),
        problem,
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => {}
        Some(other) => {
            return Err(fail(format!(
                "`{other}://` is not a PostgreSQL URL; Memora stores its data in PostgreSQL only (postgres://user:password@host:5432/database)"
            )));
        }
        None => {
            return Err(fail(
                "not a URL; expected postgres://user:password@host:5432/database".into(),
            ));
        }
    }
    let opts: PgConnectOptions = url
        .parse()
        .map_err(|e| fail(format!("the URL cannot be parsed: {e}")))?;
    let (host, port) = (opts.get_host().to_owned(), opts.get_port());
    let user = opts.get_username().to_owned();
    let database = opts.get_database().unwrap_or(&user).to_owned();
    if opts.get_socket().is_none() && !host.starts_with('/') {
        match tokio::time::timeout(
            DB_CONNECT_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(fail(format!(
                    "unknown host `{host}`: its name does not resolve ({e})"
                )));
            }
            Err(_) => {
                return Err(fail(format!(
                    "unknown host `{host}`: no DNS answer within {DB_CONNECT_TIMEOUT:?}"
                )));
            }
        }
    }
    let conn = match tokio::time::timeout(DB_CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
        .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(fail(explain_pg_error(&e, &host, port, &user, &database))),
        Err(_) => {
            return Err(fail(format!(
                "no answer from {host}:{port} within {DB_CONNECT_TIMEOUT:?} (wrong address, or a firewall drops the connection?)"
            )));
        }
    };
    Ok((opts, conn))
}

/// The cause of a failed first connection, in the operator's terms.
fn explain_pg_error(e: &sqlx::Error, host: &str, port: u16, user: &str, database: &str) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused: nothing listens on {host}:{port} (is PostgreSQL running, and on this port?)"
        ),
        sqlx::Error::Io(io) => format!("cannot reach {host}:{port}: {io}"),
        sqlx::Error::Tls(t) => format!("TLS with {host}:{port} failed: {t}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!("authentication failed: wrong password for user `{user}`"),
            Some("28000") => format!(
                "authentication failed: the server does not let user `{user}` in (check the user name and pg_hba.conf): {}",
                db.message()
            ),
            Some("3D000") => format!(
                "database `{database}` does not exist on {host}:{port} (create it first, e.g. `createdb -h {host} -p {port} -U {user} {database}`)"
            ),
            Some(code) => format!(
                "the server refused the connection ({code}): {}",
                db.message()
            ),
            None => format!("the server refused the connection: {}", db.message()),
        },
        other => format!("connecting to {host}:{port} failed: {other}"),
    }
}

/// Checks the read replica's URL: a malformed URL stops start-up (a typo
/// must not silently send every read to the primary), an unreachable
/// replica does not (its reads go to the primary until it answers; the
/// cause is returned for the start-up log). A server that is not in
/// recovery is accepted too — reads are then simply served by it — but
/// reported, since it is probably the wrong URL.
async fn check_replica(url: &str) -> Result<(PgConnectOptions, Option<String>), BackendError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let opts: Option<PgConnectOptions> = match scheme.as_deref() {
        Some("postgres" | "postgresql") => url.parse().ok(),
        _ => None,
    };
    let Some(opts) = opts else {
        return Err(BackendError::Database {
            url: redact(url),
            problem: "the read replica URL is not a PostgreSQL URL (postgres://user:password@host:5432/database)".into(),
        });
    };
    match check_database(url).await {
        Ok((_, mut conn)) => {
            let standby = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await;
            let _ = conn.close().await;
            let note = match standby {
                Ok(true) => None,
                Ok(false) => Some(
                    "it is not a standby (not in recovery): reads are served by it as they are by the primary".into(),
                ),
                Err(e) => Some(format!("asking whether it is a standby failed: {e}")),
            };
            Ok((opts, note))
        }
        Err(BackendError::Database { problem, .. }) => Ok((opts, Some(problem))),
        Err(other) => Err(other),
    }
}

/// Every 5 s: `memora_replica_lag_seconds` (replay lag, -1 while the
/// replica does not answer), `memora_replica_up` and
/// `memora_replica_reads_total{route}` (replica / lagging / unavailable:
/// how reads that may use the replica were answered).
fn replica_gauges(store: memora_store_postgres::PgStore) -> crate::jobs::Spawner {
    Box::new(move |_app, mut stop| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        let lag = tokio::time::timeout(Duration::from_secs(2), store.replica_lag()).await;
                        let (up, secs) = match lag {
                            Ok(Ok(Some(d))) => (1.0, d.as_secs_f64()),
                            _ => (0.0, -1.0),
                        };
                        metrics::gauge!("memora_replica_up").set(up);
                        metrics::gauge!("memora_replica_lag_seconds").set(secs);
                        if let Some(st) = store.replica_stats() {
                            for (route, n) in [
                                ("replica", st.replica),
                                ("lagging", st.lagging),
                                ("unavailable", st.unavailable),
                            ] {
                                metrics::counter!("memora_replica_reads_total", "route" => route)
                                    .absolute(n);
                            }
                        }
                    }
                }
            }
        })
    })
}

/// How many migrations `conn`'s database has applied (0 for a fresh one).
async fn applied_migrations(conn: &mut PgConnection) -> usize {
    // The table belongs to sqlx's migrator; before the first migration it
    // does not exist, which reads as "none applied".
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(conn)
        .await
        .map(|n| usize::try_from(n).unwrap_or(0))
        .unwrap_or(0)
}

/// Builds the ports for `cfg`: in-memory when no database is configured;
/// PostgreSQL (migrations applied) otherwise, with Redis for the cache,
/// leaderboards, the durable queue, the fast served-set ledger and the shared
/// failed-login counters when a Redis URL or cluster is set. The durable
/// served ledger is always the store's.
///
/// Redis that does not answer is no reason to refuse to start: the ports get
/// a lazily opened connection, the report says so ([`StartupReport::redis_down`])
/// and the caller starts in safe mode. The queue is then unreachable too, so
/// the core writes answers synchronously to PostgreSQL until Redis is back.
pub async fn build(cfg: &BackendConfig) -> Result<Built, BackendError> {
    let Some(url) = &cfg.database_url else {
        if cfg.database_read_url.is_some() {
            return Err(BackendError::Config(
                "a read replica needs its primary: set MEMORA_DATABASE_URL too".into(),
            ));
        }
        if cfg.redis_url.is_some() || cfg.redis_cluster_nodes.is_some() {
            return Err(BackendError::Config(
                "Redis needs a database: set MEMORA_DATABASE_URL too".into(),
            ));
        }
        return Ok(in_memory());
    };
    let (mut opts, mut first) = check_database(url).await?;
    if let Some(schema) = &cfg.schema {
        let fail = |problem: String| BackendError::Database {
            url: redact(url),
            problem,
        };
        if !memora_store_postgres::is_plain_schema(schema) {
            return Err(fail(format!(
                "schema name {schema:?} must be 1–{} bytes of a–z, 0–9 and _ (PostgreSQL would change or truncate it)",
                memora_store_postgres::MAX_SCHEMA_LEN
            )));
        }
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        // Two processes may create it at once (the creator and another's
        // directory refresh): the loser's IF NOT EXISTS can still hit the
        // catalog's unique index; once is enough to retry.
        if let Err(e) = sqlx::query(&create).execute(&mut first).await {
            let duplicate =
                matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"));
            if !duplicate {
                return Err(fail(format!("preparing schema {schema}: {e}")));
            }
            sqlx::query(&create)
                .execute(&mut first)
                .await
                .map_err(|e| fail(format!("preparing schema {schema}: {e}")))?;
        }
        sqlx::query(&format!("SET search_path TO \"{schema}\""))
            .execute(&mut first)
            .await
            .map_err(|e| fail(format!("preparing schema {schema}: {e}")))?;
        opts = opts.options([("search_path", schema.as_str())]);
    }
    let before = applied_migrations(&mut first).await;
    let _ = first.close().await;
    let pool_size = cfg.db_pool_size.max(2);
    let pg = match &cfg.schema {
        Some(schema) => {
            memora_store_postgres::PgStore::connect_in_schema(opts, pool_size, schema).await
        }
        None => memora_store_postgres::PgStore::connect_with(opts, pool_size).await,
    }
    .map_err(|e| BackendError::Database {
        url: redact(url),
        problem: format!("opening the connection pool: {e}"),
    })?;
    pg.migrate().await.map_err(|e| BackendError::Database {
        url: redact(url),
        problem: format!("applying the migrations: {e}"),
    })?;
    let known = memora_store_postgres::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .count();
    let database_empty = {
        use memora_core::ports::SeasonStore;
        pg.list_seasons()
            .await
            .map(|s| s.is_empty())
            .unwrap_or(false)
    };
    let mut report = StartupReport {
        backend: "postgres",
        database: Some(redact(url)),
        read_replica: None,
        read_replica_down: None,
        migrations_applied: known.saturating_sub(before),
        migrations_known: known,
        database_empty,
        cache: "in-process".into(),
        queue: "none: answers are written to PostgreSQL before they are acknowledged".into(),
        redis_down: None,
        redis_aof: None,
    };
    let mut extras = crate::jobs::Extras::default();
    let pg = match &cfg.database_read_url {
        None => pg,
        Some(read_url) => {
            let (mut opts, down) = check_replica(read_url).await?;
            if let Some(schema) = &cfg.schema {
                opts = opts.options([("search_path", schema.as_str())]);
            }
            report.read_replica = Some(redact(read_url));
            report.read_replica_down = down;
            let pg = match &cfg.schema {
                Some(schema) => {
                    pg.with_read_replica_in_schema(opts, cfg.db_pool_size.max(2), schema)
                }
                None => pg.with_read_replica(opts, cfg.db_pool_size.max(2)),
            };
            extras.spawners.push(replica_gauges(pg.clone()));
            pg
        }
    };
    let pg_store = pg.clone();
    let store = Arc::new(pg);
    let (redis, redis_shown) = match (&cfg.redis_url, &cfg.redis_cluster_nodes) {
        (Some(_), Some(_)) => {
            return Err(BackendError::Config(
                "set either MEMORA_REDIS_URL or MEMORA_REDIS_CLUSTER_NODES, not both".into(),
            ));
        }
        (Some(u), None) => (
            Some(memora_cache_redis::RedisConfig::single(u.clone())),
            redact(u),
        ),
        (None, Some(nodes)) => (
            Some(memora_cache_redis::RedisConfig::cluster(
                nodes
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
            )),
            redact_list(nodes),
        ),
        (None, None) => (None, String::new()),
    };
    let redis = match (redis, &cfg.redis_namespace) {
        (Some(rc), Some(ns)) => Some(rc.namespace(ns.clone())),
        (rc, _) => rc,
    };
    let redis = redis.map(|rc| {
        rc.horizon_days(cfg.cache_horizon_days)
            .load_write(cfg.redis_load)
    });
    let reclaim_idle = cfg.queue_reclaim_idle;
    type CachePorts = (
        Arc<dyn memora_core::ports::DueCache>,
        Option<Arc<dyn memora_core::ports::LeaderboardCache>>,
        Arc<dyn memora_core::ports::PersistenceQueue>,
        Option<Arc<dyn memora_core::ports::ServedLedger>>,
        Option<Arc<dyn memora_core::ports::AttemptCounter>>,
        Option<Arc<dyn memora_core::ports::ReviewFastPath>>,
    );
    let (cache, leaderboard, queue, served_cache, attempts, fast_path): CachePorts = match redis {
        None => {
            // No Redis: in-process cache, and answers are written through
            // to PostgreSQL synchronously (the store is the queue).
            let mem = InMemoryBackend::new();
            (
                Arc::new(mem.cache()),
                None,
                Arc::new(SyncQueue {
                    store: Arc::clone(&store),
                    done: Default::default(),
                }),
                // The served ledger lives in PostgreSQL alone, and login
                // throttling falls back to the core's in-process counter.
                None,
                None,
                // No cache server: nothing to save round trips on.
                None,
            )
        }
        Some(rc) => {
            report.cache = format!("Redis {redis_shown}");
            report.queue = format!(
                "Redis stream on {redis_shown} (durable with appendonly yes), drained into PostgreSQL"
            );
            let redis_error = |problem: String| BackendError::Redis {
                url: redis_shown.clone(),
                problem,
            };
            let first = tokio::time::timeout(
                REDIS_CONNECT_TIMEOUT,
                memora_cache_redis::RedisConn::connect(&rc),
            )
            .await;
            let (conn, down) = match first {
                Ok(Ok(conn)) => (Ok(conn), None),
                Ok(Err(e)) => {
                    let cause = e.to_string();
                    if matches!(
                        memora_core::PortError::from(e),
                        memora_core::PortError::Unavailable(_)
                    ) {
                        (memora_cache_redis::RedisConn::lazy(&rc), Some(cause))
                    } else {
                        // Wrong password, bad URL, …: waiting will not help.
                        return Err(redis_error(cause));
                    }
                }
                Err(_) => (
                    memora_cache_redis::RedisConn::lazy(&rc),
                    Some(format!("no answer within {REDIS_CONNECT_TIMEOUT:?}")),
                ),
            };
            let conn = match conn {
                Ok(c) => c,
                Err(e) => return Err(redis_error(e.to_string())),
            };
            if down.is_none() {
                report.redis_aof = conn.aof_enabled().await.ok();
            }
            let mut due =
                memora_cache_redis::RedisDueCache::with_connection(conn.clone(), rc.clone());
            let board =
                memora_cache_redis::RedisLeaderboard::with_connection(conn.clone(), rc.clone());
            let mut served_cache =
                memora_cache_redis::RedisServedLedger::with_connection(conn.clone(), rc.clone());
            if !cfg.redis_keys_by_id {
                // Cards and served questions under the questions' permanent
                // numbers (PostgreSQL's `question_numbers`).
                let numbering = memora_cache_redis::Numbering::new(
                    Arc::clone(&store) as Arc<dyn memora_core::ports::CatalogNumbers>
                );
                due = due.with_numbering(numbering.clone());
                served_cache = served_cache.with_numbering(numbering.clone());
                // Every number given so far, read in the background: warm
                // reviews then map their questions without PostgreSQL.
                tokio::spawn(async move {
                    match numbering.preload().await {
                        Ok(n) => tracing::info!(questions = n, "question numbers loaded"),
                        Err(e) => tracing::warn!(
                            error = %e,
                            "question numbers not preloaded; they are read as questions come"
                        ),
                    }
                });
            }
            let attempts =
                memora_cache_redis::RedisAttempts::with_connection(conn.clone(), rc.clone());
            let queue = if down.is_some() {
                memora_cache_redis::RedisQueue::with_connection_unchecked(conn, rc.clone())
            } else {
                memora_cache_redis::RedisQueue::with_connection(conn, rc.clone())
                    .await
                    .map_err(|e| redis_error(format!("preparing the queue: {e}")))?
            };
            report.redis_down = down.map(|cause| RedisStart {
                url: redis_shown.clone(),
                cause,
            });
            extras.spawners.push(Box::new(move |app, stop| {
                tokio::spawn(run_persistence_worker(app, rc, reclaim_idle, stop))
            }));
            let rebuild_board = board.clone();
            extras.spawners.push(Box::new(move |app, stop| {
                tokio::spawn(rebuild_leaderboards(app, rebuild_board, stop))
            }));
            // The review hot path in one round trip per call, over the same
            // connection and keys as the adapters above.
            let fast = memora_cache_redis::RedisFastPath::new(
                due.clone(),
                served_cache.clone(),
                queue.clone(),
                Some(board.clone()),
            );
            (
                Arc::new(due),
                Some(Arc::new(board)),
                Arc::new(queue),
                Some(Arc::new(served_cache)),
                Some(Arc::new(attempts)),
                Some(Arc::new(fast)),
            )
        }
    };
    let ports = Ports {
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        hasher: Arc::new(Argon2Hasher),
        job_runtime: Arc::new(crate::jobs::TokioJobRuntime),
        content: store.clone(),
        seasons: store.clone(),
        trackers: store.clone(),
        revlog: store.clone(),
        scans: store.clone(),
        archive: store.clone(),
        profiles: store.clone(),
        activity: store.clone(),
        fsrs: store.clone(),
        commerce: store.clone(),
        quests: store.clone(),
        auth: store.clone(),
        audit: store.clone(),
        devices: store.clone(),
        locks: store.clone(),
        coordination: store.clone(),
        cache,
        leaderboard,
        queue,
        job_progress: store.clone(),
        served: store.clone(),
        served_cache,
        fast_path,
        attempts,
    };
    Ok(Built {
        ports,
        memory: None,
        directory: Arc::new(pg_store.clone()),
        pg: Some(pg_store),
        extras,
        report,
    })
}

/// Runs the persistence worker, starting it when Redis answers (it may be
/// down at start-up). The first failure is a warning; repeats are debug
/// lines, so a long outage does not flood the log.
async fn run_persistence_worker(
    app: Arc<memora_core::Memora>,
    rc: memora_cache_redis::RedisConfig,
    reclaim_idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failures = 0u64;
    loop {
        match memora_cache_redis::PersistenceWorker::new(
            rc.clone(),
            Arc::clone(&app),
            memora_cache_redis::WorkerConfig {
                min_idle: reclaim_idle,
                ..memora_cache_redis::WorkerConfig::default()
            },
        )
        .await
        {
            Ok(worker) => {
                if failures > 0 {
                    tracing::info!("persistence worker started: Redis answers again");
                }
                let mut stop2 = stop.clone();
                worker
                    .run(async move {
                        let _ = stop2.changed().await;
                    })
                    .await;
                return;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, "persistence worker cannot start yet (retrying every second; answers go to PostgreSQL directly meanwhile)");
                } else {
                    tracing::debug!(error = %e, "persistence worker cannot start yet");
                }
                failures += 1;
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Keeps the Redis leaderboards built: shortly after start-up and then every
/// ten minutes, every board (global and per subject, each period) is filled
/// from the store. Boards hold every player with XP, so the caller's own
/// rank stays exact; between rebuilds the core adds XP incrementally. A
/// round that fails (Redis down) stops at the first error and is retried
/// after [`LEADERBOARD_RETRY`], so boards are back soon after Redis is.
async fn rebuild_leaderboards(
    app: Arc<memora_core::Memora>,
    board: memora_cache_redis::RedisLeaderboard,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use memora_core::gamification::LeaderboardPeriod;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let today = chrono::Utc::now().date_naive();
        let subjects: Vec<Option<memora_core::ids::SubjectId>> =
            match app.learning().catalog().await {
                Ok(idx) => std::iter::once(None)
                    .chain(idx.catalog().subjects.iter().map(|s| Some(s.id.clone())))
                    .collect(),
                Err(_) => vec![None],
            };
        let started = std::time::Instant::now();
        let mut filled = 0usize;
        let mut failed = None;
        'round: for subject in &subjects {
            for period in [
                LeaderboardPeriod::Daily,
                LeaderboardPeriod::Weekly,
                LeaderboardPeriod::Monthly,
                LeaderboardPeriod::AllTime,
            ] {
                match board
                    .rebuild(
                        app.ports().activity.as_ref(),
                        subject.as_ref(),
                        period,
                        today,
                        usize::MAX,
                    )
                    .await
                {
                    Ok(n) => filled += n,
                    Err(e) => {
                        failed = Some(e);
                        break 'round;
                    }
                }
            }
        }
        match failed {
            None => {
                tracing::info!(
                    entries = filled,
                    ms = started.elapsed().as_millis() as u64,
                    "leaderboards rebuilt"
                );
                wait = LEADERBOARD_PERIOD;
            }
            Some(e) => {
                tracing::warn!(error = %e, retry_in_s = LEADERBOARD_RETRY.as_secs(), "leaderboard rebuild failed");
                wait = LEADERBOARD_RETRY;
            }
        }
    }
}

/// Period of the leaderboard rebuild.
const LEADERBOARD_PERIOD: Duration = Duration::from_secs(600);
/// Retry delay of a failed leaderboard rebuild.
const LEADERBOARD_RETRY: Duration = Duration::from_secs(30);

/// The queue used without Redis: persists synchronously into PostgreSQL, so
/// an acknowledged answer is already committed. Job ids are remembered in
/// process (bounded) for `get_persistence_status`.
struct SyncQueue {
    store: Arc<memora_store_postgres::PgStore>,
    done: std::sync::Mutex<std::collections::VecDeque<memora_core::ids::JobId>>,
}

impl SyncQueue {
    const REMEMBER: usize = 100_000;

    fn remember(&self, job: &memora_core::ids::JobId) {
        if let Ok(mut d) = self.done.lock() {
            if d.len() >= Self::REMEMBER {
                d.pop_front();
            }
            d.push_back(job.clone());
        }
    }
}

#[async_trait::async_trait]
impl memora_core::ports::PersistenceQueue for SyncQueue {
    async fn enqueue(
        &self,
        job: &memora_core::ports::PersistJob,
    ) -> memora_core::PortResult<memora_core::ports::JobStatus> {
        use memora_core::ports::TrackerStore;
        self.store.persist_batch(&job.records).await?;
        self.remember(&job.id);
        Ok(memora_core::ports::JobStatus::Done)
    }
    async fn status(
        &self,
        job: &memora_core::ids::JobId,
    ) -> memora_core::PortResult<Option<memora_core::ports::JobStatus>> {
        let known = self.done.lock().map(|d| d.contains(job)).unwrap_or(false);
        Ok(known.then_some(memora_core::ports::JobStatus::Done))
    }
    async fn record_status(
        &self,
        job: &memora_core::ids::JobId,
        status: &memora_core::ports::JobStatus,
    ) -> memora_core::PortResult<()> {
        if *status == memora_core::ports::JobStatus::Done {
            self.remember(job);
        }
        Ok(())
    }
    async fn depth(&self) -> memora_core::PortResult<u64> {
        Ok(0)
    }
    // Write-through: a write that fails reaches the caller (and so the
    // learner, unacknowledged) instead of a dead letter; nothing is ever
    // pending or dead-lettered.
    async fn oldest_unpersisted(
        &self,
    ) -> memora_core::PortResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(None)
    }
    async fn dead_letters<'a>(
        &self,
        _after: Option<&'a str>,
        _limit: usize,
    ) -> memora_core::PortResult<Vec<memora_core::ports::DeadLetter>> {
        Ok(Vec::new())
    }
    async fn dead_letter(
        &self,
        _id: &str,
    ) -> memora_core::PortResult<Option<memora_core::ports::DeadLetter>> {
        Ok(None)
    }
    async fn dead_letter_count(&self) -> memora_core::PortResult<u64> {
        Ok(0)
    }
    async fn replay_dead_letter(&self, _id: &str) -> memora_core::PortResult<bool> {
        Ok(false)
    }
    async fn discard_dead_letter(&self, _id: &str) -> memora_core::PortResult<bool> {
        Ok(false)
    }
}

/// Why the backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The database cannot be used (the URL is shown redacted).
    #[error("database {url}: {problem}")]
    Database {
        /// The redacted URL.
        url: String,
        /// What is wrong, in the operator's terms.
        problem: String,
    },
    /// Redis cannot be used and waiting will not help (wrong password, bad
    /// URL). Redis that is merely down is not an error: see [`build`].
    #[error("Redis {url}: {problem}")]
    Redis {
        /// The redacted URL (or node list).
        url: String,
        /// What is wrong.
        problem: String,
    },
}

#[cfg(test)]
mod tests {
    use super::{redact, redact_list};

    #[test]
    fn redact_hides_passwords_and_keeps_what_an_operator_needs() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/memora",
                "postgres://app:***@db:5432/memora",
            ),
            (
                "postgres://app@db:5432/memora",
                "postgres://app@db:5432/memora",
            ),
            (
                "postgres://app:p@ss/w0rd@db/memora?sslmode=require&password=x1",
                "postgres://app:***@db/memora?sslmode=require&password=***",
            ),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("mysql://root:s3cret@h/m", "mysql://root:***@h/m"),
            ("127.0.0.1:5432", "127.0.0.1:5432"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
        assert_eq!(
            redact_list("redis://:a1@h1:7000, redis://:b2@h2:7001"),
            "redis://:***@h1:7000,redis://:***@h2:7001"
        );
    }
}
