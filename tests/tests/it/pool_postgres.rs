//! The PostgreSQL pool on the wire: how many round trips a query costs
//! (`Sync` messages from the client, counted by a proxy between the pool
//! and the server), and that a connection idle long enough to have died is
//! checked before use (`memora_store_postgres::PING_IF_IDLE_FOR`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use memora_store_postgres::{PING_IF_IDLE_FOR, PgStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy in front of PostgreSQL that counts the client's `Sync`
/// messages: one per round trip of the extended protocol (a query, or
/// sqlx's ping).
struct SyncCounter {
    port: u16,
    syncs: Arc<AtomicUsize>,
}

impl SyncCounter {
    async fn start(upstream: String) -> SyncCounter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let syncs = Arc::new(AtomicUsize::new(0));
        let counter = syncs.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, mut sw) = server.into_split();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut cr = cr;
                    let _ = forward_counting(&mut cr, &mut sw, &counter).await;
                    let _ = sw.shutdown().await;
                });
                tokio::spawn(async move {
                    let (mut sr, mut cw) = (sr, cw);
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
            }
        });
        SyncCounter { port, syncs }
    }

    fn take(&self) -> usize {
        self.syncs.swap(0, Ordering::SeqCst)
    }
}

/// Client to server: the startup message (length-prefixed, no type), then
/// typed messages (type byte, length including itself, body).
async fn forward_counting(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    syncs: &AtomicUsize,
) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await?;
    let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
    from.read_exact(&mut body).await?;
    to.write_all(&len).await?;
    to.write_all(&body).await?;
    loop {
        let mut head = [0u8; 5];
        from.read_exact(&mut head).await?;
        let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        from.read_exact(&mut body).await?;
        if head[0] == b'S' {
            syncs.fetch_add(1, Ordering::SeqCst);
        }
        to.write_all(&head).await?;
        to.write_all(&body).await?;
    }
}

/// `host:port` and the rest of a `postgres://user@host:port/db` URL.
fn split_url(url: &str) -> (String, String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (creds, rest) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let (host, db) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let db = db.split('?').next().unwrap_or("postgres");
    (creds.to_owned(), host.to_owned(), db.to_owned())
}

async fn select_one(store: &PgStore) {
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(store.pool())
        .await
        .expect("query");
    assert_eq!(one, 1);
}

/// Lets the pool's ping on release (sqlx runs it in the background)
/// reach the server before the count is read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn a_busy_pool_costs_the_query_and_the_release_check_only() {
    let Some(url) = memora_tests::pg_url_or_skip().await else {
        return;
    };
    let (creds, host, db) = split_url(&url);
    let proxy = SyncCounter::start(host).await;
    let app = format!("memora-pool-test-{}", std::process::id());
    let proxied = format!(
        "postgres://{creds}@127.0.0.1:{}/{db}?sslmode=disable&application_name={app}",
        proxy.port
    );
    // One connection, so every query reuses it.
    let store = PgStore::connect(&proxied, 1).await.expect("connect");
    select_one(&store).await; // prepares the statement
    settle().await;
    proxy.take();

    for _ in 0..10 {
        select_one(&store).await;
    }
    settle().await;
    // Per query: its own Sync and sqlx's ping on release; no check before
    // use (sqlx's default would add one: 30).
    assert_eq!(proxy.take(), 20, "two round trips per query, not three");

    // Idle past the window: checked before use.
    tokio::time::sleep(PING_IF_IDLE_FOR + Duration::from_millis(200)).await;
    proxy.take();
    select_one(&store).await;
    settle().await;
    assert_eq!(proxy.take(), 3, "ping, query, release check");

    // A connection that died while idle is replaced, not handed out.
    let admin = PgStore::connect(&url, 1).await.expect("admin");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1) t",
    )
    .bind(&app)
    .fetch_one(admin.pool())
    .await
    .expect("terminate");
    assert_eq!(killed, 1, "the pooled connection");
    tokio::time::sleep(PING_IF_IDLE_FOR + Duration::from_millis(200)).await;
    select_one(&store).await;
}
