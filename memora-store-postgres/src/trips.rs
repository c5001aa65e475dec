//! Counting PostgreSQL round trips: every statement the store sends (and
//! every `BEGIN` and `COMMIT`) adds one, to a process-wide total and, inside
//! [`count_queries`], to the scope of the calling task — so the HTTP layer
//! can report the round trips of each request kind and a test can pin the
//! hot path's budget.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgPool, Postgres, Transaction};

static TOTAL: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static SCOPE: Cell<u64>;
}

/// Round trips sent to PostgreSQL by this process so far.
pub fn round_trips() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Runs `f` and returns its output with the PostgreSQL round trips it made
/// (on its own task; work it spawns is not counted).
pub async fn count_queries<F: Future>(f: F) -> (F::Output, u64) {
    SCOPE
        .scope(Cell::new(0), async {
            let out = f.await;
            let n = SCOPE.try_with(Cell::get).unwrap_or(0);
            (out, n)
        })
        .await
}

/// Notes `n` round trips.
pub(crate) fn note(n: u64) {
    TOTAL.fetch_add(n, Ordering::Relaxed);
    let _ = SCOPE.try_with(|c| c.set(c.get() + n));
}

/// `value`, after noting one round trip (wraps the executor of a statement).
pub(crate) fn one<T>(value: T) -> T {
    note(1);
    value
}

/// `BEGIN` (one round trip).
pub(crate) async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    note(1);
    pool.begin().await
}

/// `COMMIT` (one round trip).
pub(crate) async fn commit(tx: Transaction<'static, Postgres>) -> sqlx::Result<()> {
    note(1);
    tx.commit().await
}
