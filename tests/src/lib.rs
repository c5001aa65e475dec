//! Cross-crate suites of Memora: the port conformance suites (written once,
//! run against every adapter), plus the tooling integration tests need to
//! reach real services (gating on env vars, a throwaway Redis Cluster).

pub mod conformance;
pub mod hooked_cache;
pub mod redis_cluster;
pub mod replica;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Env var with the Redis URL of the integration tests.
pub const REDIS_URL_ENV: &str = "MEMORA_TEST_REDIS_URL";

/// A plain connection to the single Redis of `cfg`, to inspect or plant
/// keys behind an adapter's back.
pub async fn redis_raw(cfg: &memora_cache_redis::RedisConfig) -> redis::aio::MultiplexedConnection {
    let memora_cache_redis::Topology::Single(url) = &cfg.topology else {
        panic!("single topology expected")
    };
    redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn")
}

/// A free loopback port for a server a test starts, with the ports at
/// `offsets` above it free too (a Redis Cluster bus listens at +10 000).
///
/// Ports come from below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), so no outgoing connection —
/// of this test or a concurrent one — can take one between this check and
/// the server's bind, which a port the kernel picked (`bind(0)`) allows.
/// Successive calls (and processes, by their id) start at different ports.
pub fn free_port_with(offsets: &[u16]) -> Option<u16> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let low = 10_000u32;
    let reach = u32::from(offsets.iter().copied().max().unwrap_or(0));
    let high = ephemeral.saturating_sub(reach).min(65_536 - reach);
    let span = high.checked_sub(low).filter(|s| *s > 0)?;
    let seed = u64::from(std::process::id()).wrapping_mul(7_919)
        + NEXT.fetch_add(1, Ordering::Relaxed) * 101;
    let free = |p: u32| {
        u16::try_from(p).is_ok_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
    };
    (0..span.min(2_000)).find_map(|i| {
        let p = low + ((seed + u64::from(i) * 7) % u64::from(span)) as u32;
        (free(p) && offsets.iter().all(|o| free(p + u32::from(*o))))
            .then(|| u16::try_from(p).ok())
            .flatten()
    })
}

/// [`free_port_with`] without companions; panics if there is none.
pub fn free_port() -> u16 {
    free_port_with(&[]).expect("a free loopback port below the ephemeral range")
}

/// Whether a missing service must fail the run (`CI` is set).
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skips (prints `SKIPPED: …`, returns `None`) or, under `CI`, panics.
pub fn skip_or_fail<T>(why: &str) -> Option<T> {
    if ci() {
        panic!("{why} (CI is set, refusing to skip)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// The Redis URL (env `MEMORA_TEST_REDIS_URL`, default
/// `redis://127.0.0.1:6379`) if a server answers `PING` there; otherwise
/// skipped with a notice, or a panic when `CI` is set.
pub async fn redis_url_or_skip() -> Option<String> {
    let url = std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let probe = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Some(_)) => Some(url),
        _ => skip_or_fail(&format!("Redis unreachable at {url}")),
    }
}

/// A question numbering over a fresh in-memory store (for numbered Redis
/// schedules, layout 3, in tests).
pub fn numbering() -> memora_cache_redis::Numbering {
    memora_cache_redis::Numbering::new(std::sync::Arc::new(
        memora_core::memory::InMemoryBackend::new(),
    ))
}

/// A key namespace no other test (or run) uses: `t<pid>-<n>-<nanos>:`.
pub fn random_namespace() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t{}-{}-{nanos}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Env var with the PostgreSQL URL of the integration tests.
pub const PG_URL_ENV: &str = "MEMORA_TEST_DATABASE_URL";

/// The PostgreSQL URL (env `MEMORA_TEST_DATABASE_URL`, default
/// `postgres://postgres@127.0.0.1:5432/postgres`) if a server accepts a
/// connection there; otherwise skipped with a visible notice, or a panic
/// when `CI` is set.
pub async fn pg_url_or_skip() -> Option<String> {
    use sqlx::Connection;
    let url = std::env::var(PG_URL_ENV)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let probe = sqlx::PgConnection::connect(&url);
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Some(url)
        }
        _ => skip_or_fail(&format!("PostgreSQL unreachable at {}", redact_url(&url))),
    }
}

/// The URL without its password (safe to print).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A PostgreSQL store in its own fresh schema (`memora_t_<random>`) with
/// migrations applied; [`PgSchema::teardown`] drops the schema.
pub struct PgSchema {
    /// The store, connected with `search_path` set to the schema.
    pub store: memora_store_postgres::PgStore,
    /// A second store (own pool) on the same schema: "another process".
    pub other: memora_store_postgres::PgStore,
    /// Schema name.
    pub schema: String,
    url: String,
}

impl PgSchema {
    /// Creates the schema and migrates it; `None` if PostgreSQL is
    /// unreachable (skip), panics under `CI`.
    pub async fn create() -> Option<PgSchema> {
        let url = pg_url_or_skip().await?;
        Some(Self::create_on(&url, None).await)
    }

    /// Creates the schema on the database at `url` and migrates it; with
    /// `read_url` (a streaming replica of it, e.g. [`replica::LocalReplica`])
    /// both stores route their replica-eligible reads there, in the same
    /// schema.
    pub async fn create_on(url: &str, read_url: Option<&str>) -> PgSchema {
        use sqlx::Connection;
        let url = url.to_owned();
        let schema = format!(
            "memora_t_{}",
            random_namespace()
                .trim_end_matches(':')
                .replace('-', "_")
                .to_ascii_lowercase()
        );
        let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let _ = admin.close().await;
        let in_schema = |u: &str| {
            let opts: sqlx::postgres::PgConnectOptions = u.parse().expect("url");
            opts.options([("search_path", schema.as_str())])
        };
        let with_replica = |store: memora_store_postgres::PgStore| match read_url {
            Some(r) => store.with_read_replica(in_schema(r), 4),
            None => store,
        };
        let store = memora_store_postgres::PgStore::connect_with(in_schema(&url), 6)
            .await
            .expect("pool");
        store.migrate().await.expect("migrate");
        let other = memora_store_postgres::PgStore::connect_with(in_schema(&url), 2)
            .await
            .expect("pool");
        PgSchema {
            store: with_replica(store),
            other: with_replica(other),
            schema,
            url,
        }
    }

    /// Closes the pools and drops the schema.
    pub async fn teardown(self) {
        use sqlx::Connection;
        for s in [&self.store, &self.other] {
            s.pool().close().await;
            if let Some(r) = s.replica_pool() {
                r.close().await;
            }
        }
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
                .execute(&mut admin)
                .await;
            let _ = admin.close().await;
        }
    }
}

/// Deletes every key under `config`'s namespace, the queue's
/// `{<ns>queue}…` keys included (test teardown): SCAN + DEL on the server, or on each node of a cluster. Errors are ignored (the
/// keys expire anyway).
pub async fn redis_delete_namespace(config: &memora_cache_redis::RedisConfig) {
    let urls = match &config.topology {
        memora_cache_redis::Topology::Single(u) => vec![u.clone()],
        memora_cache_redis::Topology::Cluster(nodes) => nodes.clone(),
    };
    // The queue's keys carry the namespace inside their hash tag.
    let patterns = [
        format!("{}*", glob_escape(&config.namespace)),
        format!("{{{}queue}}*", glob_escape(&config.namespace)),
    ];
    let mut targets = Vec::new();
    for u in &urls {
        for p in &patterns {
            targets.push((u.clone(), p.clone()));
        }
    }
    for (url, pattern) in targets {
        let Ok(client) = redis::Client::open(url.as_str()) else {
            continue;
        };
        let Ok(mut c) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        let mut cursor: u64 = 0;
        loop {
            let r: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await;
            let Ok((next, keys)) = r else { break };
            // One key per DEL: on a cluster node the keys span many slots.
            for k in keys {
                let _: redis::RedisResult<i64> =
                    redis::cmd("DEL").arg(&k).query_async(&mut c).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn free_ports_lie_below_the_ephemeral_range_with_their_companions_free() {
        let ephemeral: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(32_768);
        let a = super::free_port_with(&[10_000]).expect("a port");
        let b = super::free_port_with(&[10_000]).expect("a port");
        assert_ne!(a, b, "successive calls start elsewhere");
        for p in [a, b] {
            assert!(
                u32::from(p) >= 10_000 && u32::from(p) + 10_000 < ephemeral,
                "{p}"
            );
            for q in [p, p + 10_000] {
                assert!(
                    std::net::TcpListener::bind(("127.0.0.1", q)).is_ok(),
                    "{q} free"
                );
            }
        }
        // A port held by a listener is never handed out.
        let held = std::net::TcpListener::bind(("127.0.0.1", a)).expect("bind");
        for _ in 0..50 {
            assert_ne!(super::free_port(), a);
        }
        drop(held);
    }
}
