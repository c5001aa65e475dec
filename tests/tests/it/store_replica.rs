//! The store conformance suite on PostgreSQL with a read replica
//! configured: every replica-eligible read goes through the routing (fence
//! checks, bulk reads on the replica). The pair commits with
//! `remote_apply`, so the replica has replayed every completed write and
//! the suite's read-after-write expectations hold exactly; one primary +
//! replica pair serves every test of this module (a schema each).

use std::sync::Arc;

use memora_core::ports::DueFilter;
use memora_tests::PgSchema;
use memora_tests::conformance::store::{
    Stores, at, make_seasons, record, season, t0, tracker, user,
};
use memora_tests::replica::{Commit, LocalReplica};
use tokio::sync::OnceCell;

static PAIR: OnceCell<Option<LocalReplica>> = OnceCell::const_new();

struct Pg(PgSchema);

impl Pg {
    async fn setup() -> Option<Pg> {
        let pair = PAIR
            .get_or_init(|| LocalReplica::start(Commit::RemoteApply))
            .await
            .as_ref()?;
        Some(Pg(PgSchema::create_on(
            &pair.primary_url(),
            Some(&pair.replica_url()),
        )
        .await))
    }
    fn stores(&self) -> Stores {
        Stores::from_backend(
            Arc::new(self.0.store.clone()),
            Arc::new(self.0.other.clone()),
        )
    }
    async fn teardown(self) {
        self.0.teardown().await
    }
}

memora_tests::store_conformance!(Pg::setup());

/// The suite above really reads from the replica: with synchronous apply
/// the fence never sends a learner's read to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_answered_by_the_replica() {
    let Some(h) = Pg::setup().await else { return };
    let s = h.stores();
    make_seasons(&s, &[2026]).await;
    let t = tracker("u1", 2026, "q1", 2, at(-1), Some(at(-5)), None, None);
    s.trackers
        .persist_batch(&[record(&t, "r-1")])
        .await
        .expect("persist");
    let due = s
        .trackers
        .due_trackers(&user("u1"), &season(2026), &DueFilter::default(), t0(), 10)
        .await
        .expect("due");
    assert_eq!(due, vec![t]);
    assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 1);
    let st = h.0.store.replica_stats().expect("replica configured");
    h.teardown().await;
    assert_eq!(
        (st.replica, st.lagging, st.unavailable),
        (2, 0, 0),
        "{st:?}"
    );
}
