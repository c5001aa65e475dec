//! One connection type for both topologies, with the timeout wrapper every
//! call goes through, the few cluster-wide operations (SCAN, INFO on every
//! master) and the round-trip counters: every request sent to Redis (one
//! command, one script call attempt, or one pipeline) counts once, process
//! wide ([`round_trips`]) and in the current task's
//! [`count_round_trips`] scope, so the hot path's cost is measurable per
//! request.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, ScriptInvocation, Value};

use crate::config::{RedisConfig, Topology};
use crate::error::{Error, Result};

/// A cheap-to-clone, multiplexed connection to a server or a cluster. It
/// implements [`ConnectionLike`], so commands, pipelines and scripts run the
/// same way on both; callers keep every multi-key call inside one hash slot.
#[derive(Clone)]
pub enum RedisConn {
    /// Single server (reconnects by itself).
    Single(ConnectionManager),
    /// Cluster (routes by slot, follows MOVED/ASK).
    Cluster(ClusterConnection),
    /// Opened on first use: Redis was unreachable when the process started.
    /// Every call tries to connect until one succeeds (each attempt bounded
    /// by the caller's timeout), so a server that starts in safe mode
    /// leaves it as soon as Redis appears, without a restart.
    Lazy(Arc<LazyConn>),
}

/// The state behind [`RedisConn::Lazy`].
pub struct LazyConn {
    config: RedisConfig,
    cell: tokio::sync::OnceCell<RedisConn>,
    db: i64,
}

impl LazyConn {
    /// The connection, opening it if this is the first successful use.
    async fn get(&self) -> redis::RedisResult<RedisConn> {
        self.cell
            .get_or_try_init(|| async {
                // No retry: the caller's next call is the retry, and a probe
                // must not wait a back-off while Redis refuses connections.
                RedisConn::connect_with_retries(&self.config, 0)
                    .await
                    .map_err(into_redis_error)
            })
            .await
            .cloned()
    }
}

/// Back to the driver's error type (the [`ConnectionLike`] signature needs
/// it), keeping I/O failures I/O failures so they still map to
/// "unavailable".
fn into_redis_error(e: Error) -> redis::RedisError {
    match e {
        Error::Redis(r) => r,
        Error::Timeout(t) => std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting timed out after {t:?}"),
        )
        .into(),
        Error::Config(m) | Error::Decode(m) => {
            (redis::ErrorKind::InvalidClientConfig, "configuration", m).into()
        }
        Error::Task(m) => (redis::ErrorKind::ClientError, "task", m).into(),
        Error::Numbers(e) => (redis::ErrorKind::ClientError, "numbers", e.to_string()).into(),
    }
}

static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static TASK_ROUND_TRIPS: Cell<u64>;
}

/// Requests sent to Redis by this process so far (every adapter, every
/// connection). A script whose first call finds it unloaded costs three
/// (`EVALSHA`, `SCRIPT LOAD`, `EVALSHA`), later calls one.
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// Runs `f` and returns its output with the number of requests it sent to
/// Redis (counted in this task only: work `f` spawns onto other tasks is
/// not included). Scopes nest: an inner scope's requests count in the
/// outer one too.
pub async fn count_round_trips<F: Future>(f: F) -> (F::Output, u64) {
    let (out, n) = TASK_ROUND_TRIPS
        .scope(Cell::new(0), async move {
            let out = f.await;
            (out, TASK_ROUND_TRIPS.with(Cell::get))
        })
        .await;
    let _ = TASK_ROUND_TRIPS.try_with(|c| c.set(c.get() + n));
    (out, n)
}

/// Counts one request (process-wide and in the task's scope, if any).
fn count_request() {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    let _ = TASK_ROUND_TRIPS.try_with(|c| c.set(c.get() + 1));
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => {
                count_request();
                c.req_packed_command(cmd)
            }
            RedisConn::Cluster(c) => {
                count_request();
                c.req_packed_command(cmd)
            }
            RedisConn::Lazy(l) => {
                let l = Arc::clone(l);
                Box::pin(async move {
                    let mut c = l.get().await?;
                    c.req_packed_command(cmd).await
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => {
                count_request();
                c.req_packed_commands(cmd, offset, count)
            }
            RedisConn::Cluster(c) => {
                count_request();
                c.req_packed_commands(cmd, offset, count)
            }
            RedisConn::Lazy(l) => {
                let l = Arc::clone(l);
                Box::pin(async move {
                    let mut c = l.get().await?;
                    c.req_packed_commands(cmd, offset, count).await
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
            RedisConn::Lazy(l) => l.cell.get().map_or(l.db, |c| c.get_db()),
        }
    }
}

/// Runs `fut` within `limit`.
pub(crate) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Error::from),
        Err(_) => Err(Error::Timeout(limit)),
    }
}

impl RedisConn {
    /// Opens a connection (bounded by the bulk timeout). A separate
    /// connection is needed for blocking reads (the queue worker), because a
    /// blocked multiplexed connection would stall every other caller.
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        Self::connect_with_retries(config, 1).await
    }

    /// [`RedisConn::connect`] with `retries` connection retries on a single
    /// server (the driver waits about a second before a retry). A cluster
    /// client keeps one retry: it also serves slot redirections.
    async fn connect_with_retries(config: &RedisConfig, retries: usize) -> Result<Self> {
        config.validate()?;
        let limit = config.bulk_timeout;
        match &config.topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(config.call_timeout.max(Duration::from_millis(500)))
                    .set_number_of_retries(retries);
                let cm = bounded(limit, client.get_connection_manager_with_config(cfg)).await?;
                Ok(RedisConn::Single(cm))
            }
            Topology::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(config.call_timeout.max(Duration::from_millis(500)))
                    .retries(1)
                    .build()?;
                let c = bounded(limit, client.get_async_connection()).await?;
                Ok(RedisConn::Cluster(c))
            }
        }
    }

    /// A connection that is opened on first use instead of now: for a
    /// server that must start while Redis is down. The configuration and the
    /// URLs are still checked now, so a typo fails at start-up.
    pub fn lazy(config: &RedisConfig) -> Result<Self> {
        config.validate()?;
        let db = match &config.topology {
            Topology::Single(url) => {
                redis::Client::open(url.as_str())?
                    .get_connection_info()
                    .redis
                    .db
            }
            Topology::Cluster(nodes) => {
                for n in nodes {
                    redis::Client::open(n.as_str())?;
                }
                0
            }
        };
        Ok(RedisConn::Lazy(Arc::new(LazyConn {
            config: config.clone(),
            cell: tokio::sync::OnceCell::new(),
            db,
        })))
    }

    /// Whether the connection is open: always for a connection made by
    /// [`RedisConn::connect`], and for a [lazy](RedisConn::lazy) one once a
    /// call has reached Redis.
    pub fn is_open(&self) -> bool {
        match self {
            RedisConn::Lazy(l) => l.cell.initialized(),
            _ => true,
        }
    }

    /// The underlying single-server or cluster connection (opening a lazy
    /// one).
    async fn resolved(&self) -> Result<RedisConn> {
        match self {
            RedisConn::Lazy(l) => Ok(l.get().await?),
            other => Ok(other.clone()),
        }
    }

    /// Whether every master writes an append-only file (`INFO persistence`
    /// reports `aof_enabled:1`). Without it, a Redis restart loses the
    /// queued answers that were acknowledged but not yet written to the
    /// store, so the server warns at start-up.
    pub async fn aof_enabled(&self) -> Result<bool> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("persistence");
        let infos: Vec<String> = self.on_each_master(Duration::from_secs(1), &cmd).await?;
        Ok(!infos.is_empty()
            && infos
                .iter()
                .all(|i| i.lines().any(|l| l.trim() == "aof_enabled:1")))
    }

    /// `PING` (any node).
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.clone();
        let _: String = bounded(
            Duration::from_secs(1),
            redis::cmd("PING").query_async(&mut c),
        )
        .await?;
        Ok(())
    }

    /// Runs one command within `limit`.
    pub(crate) async fn query<T: FromRedisValue>(&self, limit: Duration, cmd: &Cmd) -> Result<T> {
        let mut c = self.clone();
        bounded(limit, cmd.query_async(&mut c)).await
    }

    /// Runs a pipeline (all keys in one slot) within `limit`.
    pub(crate) async fn pipe<T: FromRedisValue>(&self, limit: Duration, p: &Pipeline) -> Result<T> {
        let mut c = self.clone();
        bounded(limit, p.query_async(&mut c)).await
    }

    /// Runs a script (EVALSHA, loading it on first use) within `limit`.
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        limit: Duration,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut c = self.clone();
        bounded(limit, inv.invoke_async(&mut c)).await
    }

    /// Addresses of the masters (`None` for a single server).
    async fn masters(&self, limit: Duration) -> Result<Option<Vec<(String, u16)>>> {
        let RedisConn::Cluster(_) = bounded_resolve(self, limit).await? else {
            return Ok(None);
        };
        let nodes: String = self
            .query(limit, redis::cmd("CLUSTER").arg("NODES"))
            .await?;
        let mut out = Vec::new();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            // `host:port@cport[,hostname]`
            let addr = f[1].split(['@', ',']).next().unwrap_or_default();
            if let Some((host, port)) = addr.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    out.push((host.to_owned(), port));
                }
            }
        }
        if out.is_empty() {
            return Err(Error::Config("cluster reports no master".into()));
        }
        Ok(Some(out))
    }

    /// Runs `cmd` once on every master (once on a single server).
    pub(crate) async fn on_each_master<T: FromRedisValue>(
        &self,
        limit: Duration,
        cmd: &Cmd,
    ) -> Result<Vec<T>> {
        match self.masters(limit).await? {
            None => Ok(vec![self.query(limit, cmd).await?]),
            Some(masters) => {
                let mut out = Vec::with_capacity(masters.len());
                for (host, port) in masters {
                    out.push(self.on_node(limit, cmd, &host, port).await?);
                }
                Ok(out)
            }
        }
    }

    async fn on_node<T: FromRedisValue>(
        &self,
        limit: Duration,
        cmd: &Cmd,
        host: &str,
        port: u16,
    ) -> Result<T> {
        match bounded_resolve(self, limit).await? {
            RedisConn::Single(_) | RedisConn::Lazy(_) => self.query(limit, cmd).await,
            RedisConn::Cluster(mut c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.to_owned(),
                    port,
                });
                let v = bounded(limit, c.route_command(cmd, route)).await?;
                Ok(T::from_redis_value(&v)?)
            }
        }
    }

    /// Every key matching `pattern` on every master (SCAN, never KEYS).
    pub(crate) async fn scan_all(&self, limit: Duration, pattern: &str) -> Result<Vec<String>> {
        let nodes = match self.masters(limit).await? {
            None => vec![None],
            Some(m) => m.into_iter().map(Some).collect(),
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, batch): (u64, Vec<String>) = match &node {
                    None => self.query(limit, &cmd).await?,
                    Some((h, p)) => self.on_node(limit, &cmd, h, *p).await?,
                };
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }
}

/// [`RedisConn::resolved`] within `limit`.
async fn bounded_resolve(conn: &RedisConn, limit: Duration) -> Result<RedisConn> {
    match tokio::time::timeout(limit, conn.resolved()).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(limit)),
    }
}

/// Escapes glob metacharacters for `SCAN MATCH`.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
