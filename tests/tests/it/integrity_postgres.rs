//! The served-ledger conformance suite on PostgreSQL, each test in a fresh
//! schema (migrations applied), plus the integrity migration's constraints:
//! half-written pending zones and receipts are refused by the database.

use std::sync::Arc;

use memora_core::ports::ServedLedger;
use memora_tests::PgSchema;

struct Pg(PgSchema);

impl Pg {
    async fn setup() -> Option<Pg> {
        PgSchema::create().await.map(Pg)
    }
    fn ledger(&self) -> Arc<dyn ServedLedger> {
        Arc::new(self.0.store.clone())
    }
    async fn teardown(self) {
        self.0.teardown().await
    }
}

memora_tests::served_ledger_conformance!(Pg::setup(), purging);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_refuse_half_written_rows() {
    let Some(h) = Pg::setup().await else { return };
    let pool = h.0.store.pool().clone();
    let run = tokio::spawn(async move {
        let refused = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                let r = sqlx::query(sql).execute(&pool).await;
                assert!(r.is_err(), "accepted: {sql}");
            }
        };
        refused(
            "INSERT INTO player_profiles (user_id, full_name, pending_time_zone) \
             VALUES ('u1', 'U', 'Asia/Amman')",
        )
        .await;
        refused(
            "INSERT INTO player_profiles (user_id, full_name, pending_time_zone, \
             pending_rollover_hour, pending_zone_at) VALUES ('u1', 'U', 'UTC', 24, now())",
        )
        .await;
        refused(
            "INSERT INTO served_items (user_id, season, item, served_at, answerable_until, \
             retain_until, review_id) VALUES ('u1', 'SEASON-2026', 'q:a', now(), now(), now(), 'r1')",
        )
        .await;
        sqlx::query(
            "INSERT INTO player_profiles (user_id, full_name, pending_time_zone, \
             pending_rollover_hour, pending_zone_at) VALUES ('u1', 'U', 'UTC', 23, now())",
        )
        .execute(&pool)
        .await
        .expect("a whole pending zone is accepted");
    })
    .await;
    h.teardown().await;
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}
