//! One connection type for both topologies, with the timeout wrapper every
//! call goes through and the few cluster-wide operations (SCAN, INFO on every
//! master).

use std::future::Future;
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
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
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
        config.validate()?;
        let limit = config.bulk_timeout;
        match &config.topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(config.call_timeout.max(Duration::from_millis(500)))
                    .set_number_of_retries(1);
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
        let RedisConn::Cluster(_) = self else {
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
        match self {
            RedisConn::Single(_) => self.query(limit, cmd).await,
            RedisConn::Cluster(c) => {
                let mut c = c.clone();
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
