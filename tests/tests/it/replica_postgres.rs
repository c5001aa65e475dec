//! Reads routed to a streaming replica (`PgStore::with_read_replica`), on a
//! real primary + replica pair started by [`LocalReplica`]: bulk reads are
//! served by the replica (shown by pausing its replay: they see the old
//! data), a learner's own reads see their writes while replay is paused
//! (the read fence sends them to the primary), and a replica that is down
//! costs nothing but the fallback.

use chrono::NaiveDate;
use memora_core::domain::SessionKind;
use memora_core::ports::{BoardQuery, DueFilter, SeasonScanStore, TrackerStore};
use memora_store_postgres::{PgStore, ReplicaStats};
use memora_tests::PgSchema;
use memora_tests::conformance::store::{
    Stores, at, make_seasons, record, season, session, t0, tracker, user,
};
use memora_tests::replica::{Commit, LocalReplica};

/// A pair plus a migrated schema whose stores read from the replica, with
/// the schema replayed on the replica.
async fn setup() -> Option<(LocalReplica, PgSchema)> {
    let pair = LocalReplica::start(Commit::Async).await?;
    let schema = PgSchema::create_on(&pair.primary_url(), Some(&pair.replica_url())).await;
    pair.wait_replayed().await;
    Some((pair, schema))
}

fn stores(h: &PgSchema) -> Stores {
    Stores::from_backend(
        std::sync::Arc::new(h.store.clone()),
        std::sync::Arc::new(h.other.clone()),
    )
}

fn stats(pg: &PgStore) -> ReplicaStats {
    pg.replica_stats().expect("a replica is configured")
}

/// Persists `n` due trackers `q<from..from+n>` of `u` in 2026.
async fn persist_due(s: &Stores, u: &str, from: usize, n: usize) {
    let recs: Vec<_> = (from..from + n)
        .map(|i| {
            let t = tracker(
                u,
                2026,
                &format!("q{i:02}"),
                2,
                at(-1),
                Some(at(-30)),
                None,
                None,
            );
            record(&t, &format!("r-{u}-{i}"))
        })
        .collect();
    s.trackers.persist_batch(&recs).await.expect("persist");
}

async fn due_ids(s: &Stores, u: &str) -> Vec<String> {
    s.trackers
        .due_trackers(&user(u), &season(2026), &DueFilter::default(), t0(), 100)
        .await
        .expect("due")
        .into_iter()
        .map(|t| t.key.question.to_string())
        .collect()
}

async fn primary_count(pg: &PgStore) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM memory_tracker")
        .fetch_one(pg.pool())
        .await
        .expect("count on the primary")
}

async fn teardown(pair: LocalReplica, h: PgSchema) {
    h.teardown().await;
    drop(pair);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_reads_are_served_by_the_replica() {
    let Some((pair, h)) = setup().await else {
        return;
    };
    let s = stores(&h);
    make_seasons(&s, &[2026]).await;
    persist_due(&s, "u1", 0, 10).await;
    s.activity
        .record_session(&session(
            "s-u1",
            "u1",
            SessionKind::Lesson,
            None,
            None,
            40,
            true,
            day(),
        ))
        .await
        .expect("session");
    pair.wait_replayed().await;

    pair.pause_replay().await;
    persist_due(&s, "u2", 0, 5).await;
    s.activity
        .record_session(&session(
            "s-u2",
            "u2",
            SessionKind::Lesson,
            None,
            None,
            90,
            true,
            day(),
        ))
        .await
        .expect("session");
    assert_eq!(
        primary_count(&h.store).await,
        15,
        "the primary has every row"
    );

    let before = stats(&h.store);
    // Season scan, count, reconciliation sample, archive status and the
    // board source all answer from the paused replica: the old data.
    assert_eq!(
        s.scans.count_season(&season(2026)).await.expect("count"),
        10
    );
    let page = s
        .scans
        .scan_season(&season(2026), None, 100)
        .await
        .expect("scan");
    assert_eq!(page.len(), 10);
    assert!(page.iter().all(|t| t.key.user == user("u1")), "{page:?}");
    let sample = s
        .scans
        .sample_trackers(&season(2026), 100, 7)
        .await
        .expect("sample");
    assert_eq!(sample.len(), 10);
    let counts = s
        .archive
        .archive_counts(&season(2026))
        .await
        .expect("archive");
    assert_eq!(counts.active_records, 10);
    let board = BoardQuery {
        subject: None,
        since: None,
    };
    let top = s.activity.top_players(&board, 10).await.expect("top");
    assert_eq!(top.len(), 1, "u2's XP is not replayed yet: {top:?}");
    let after = stats(&h.store);
    assert!(
        after.replica >= before.replica + 5,
        "bulk reads counted on the replica: {before:?} → {after:?}"
    );
    assert_eq!(after.unavailable, before.unavailable, "{after:?}");

    pair.resume_replay().await;
    pair.wait_replayed().await;
    assert_eq!(
        s.scans.count_season(&season(2026)).await.expect("count"),
        15
    );
    assert_eq!(
        s.activity.top_players(&board, 10).await.expect("top").len(),
        2
    );
    teardown(pair, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_read_their_own_writes_while_replay_is_paused() {
    let Some((pair, h)) = setup().await else {
        return;
    };
    let s = stores(&h);
    make_seasons(&s, &[2026]).await;
    persist_due(&s, "u1", 0, 5).await;
    persist_due(&s, "u2", 0, 3).await;
    s.activity
        .record_session(&session(
            "s-u2",
            "u2",
            SessionKind::Lesson,
            None,
            None,
            50,
            true,
            day(),
        ))
        .await
        .expect("session");
    pair.wait_replayed().await;

    pair.pause_replay().await;
    // u1 answers: q00 moves out of today (due in 2 days), q05 is new.
    let later = tracker("u1", 2026, "q00", 3, at(48), Some(at(0)), None, None);
    let fresh = tracker("u1", 2026, "q05", 2, at(-1), Some(at(-2)), None, None);
    s.trackers
        .persist_batch(&[record(&later, "r-u1-later"), record(&fresh, "r-u1-fresh")])
        .await
        .expect("persist");
    s.activity
        .record_session(&session(
            "s-u1",
            "u1",
            SessionKind::Review,
            None,
            None,
            30,
            true,
            day(),
        ))
        .await
        .expect("session");
    // A change to u2 made behind the adapter's back (no fence bump): a read
    // of u2 that the replica answers cannot see it.
    sqlx::query("UPDATE memory_tracker SET due = $1 WHERE user_id = 'u2'")
        .bind(at(72))
        .execute(h.store.pool())
        .await
        .expect("raw update");

    let before = stats(&h.store);
    assert_eq!(
        due_ids(&s, "u1").await,
        ["q01", "q02", "q03", "q04", "q05"],
        "u1 sees their own answers"
    );
    let count = s
        .trackers
        .count_due(&user("u1"), &season(2026), &DueFilter::default(), t0())
        .await
        .expect("count");
    assert_eq!(count, 5);
    let (xp, rank) = s
        .activity
        .player_rank(
            &user("u1"),
            &BoardQuery {
                subject: None,
                since: None,
            },
        )
        .await
        .expect("rank");
    assert_eq!(
        (xp, rank),
        (30, Some(2)),
        "u1 sees their own XP and is ranked"
    );
    let mid = stats(&h.store);
    assert_eq!(
        mid.lagging,
        before.lagging + 3,
        "u1's reads went to the primary because the replica is behind: {mid:?}"
    );
    // u2 wrote nothing since the pause: the replica answers (and shows the
    // state before the raw update, which only the primary has).
    assert_eq!(due_ids(&s, "u2").await, ["q00", "q01", "q02"]);
    let after = stats(&h.store);
    assert_eq!(after.replica, mid.replica + 1, "{after:?}");
    assert_eq!(after.lagging, mid.lagging, "{after:?}");

    pair.resume_replay().await;
    pair.wait_replayed().await;
    let caught_up = stats(&h.store);
    assert_eq!(due_ids(&s, "u1").await, ["q01", "q02", "q03", "q04", "q05"]);
    assert_eq!(due_ids(&s, "u2").await, Vec::<String>::new());
    let end = stats(&h.store);
    assert_eq!(
        end.replica,
        caught_up.replica + 2,
        "replayed: both from the replica"
    );
    assert_eq!(end.lagging, caught_up.lagging, "{end:?}");
    teardown(pair, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_primary_when_the_replica_is_down() {
    let Some((pair, h)) = setup().await else {
        return;
    };
    let s = stores(&h);
    make_seasons(&s, &[2026]).await;
    persist_due(&s, "u1", 0, 4).await;
    pair.wait_replayed().await;
    pair.stop_replica();
    // Written after the replica went away: only the primary has it.
    persist_due(&s, "u1", 4, 2).await;
    s.activity
        .record_session(&session(
            "s-u1",
            "u1",
            SessionKind::Lesson,
            None,
            None,
            20,
            true,
            day(),
        ))
        .await
        .expect("session");

    let before = stats(&h.store);
    assert_eq!(due_ids(&s, "u1").await.len(), 6);
    assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 6);
    assert_eq!(
        s.scans
            .scan_season(&season(2026), None, 100)
            .await
            .expect("scan")
            .len(),
        6
    );
    assert_eq!(
        s.archive
            .archive_counts(&season(2026))
            .await
            .expect("archive")
            .active_records,
        6
    );
    let board = BoardQuery {
        subject: None,
        since: None,
    };
    assert_eq!(
        s.activity.top_players(&board, 10).await.expect("top").len(),
        1
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u1"), &board)
            .await
            .expect("rank"),
        (20, Some(1))
    );
    let after = stats(&h.store);
    assert!(after.unavailable > before.unavailable, "{after:?}");
    assert_eq!(after.replica, before.replica, "{after:?}");
    assert!(
        h.store.replica_lag().await.is_err(),
        "the lag of a stopped replica is an error, not a number"
    );

    // A replica that was never reachable (nothing listens on its port).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let opts: sqlx::postgres::PgConnectOptions = pair.primary_url().parse().expect("url");
    let dead: sqlx::postgres::PgConnectOptions =
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
            .parse()
            .expect("url");
    let store = PgStore::connect_with(opts.options([("search_path", h.schema.as_str())]), 2)
        .await
        .expect("pool")
        .with_read_replica(dead.options([("search_path", h.schema.as_str())]), 2);
    assert_eq!(
        store.count_season(&season(2026)).await.expect("count"),
        6,
        "answered by the primary"
    );
    assert_eq!(
        store
            .due_trackers(&user("u1"), &season(2026), &DueFilter::default(), t0(), 100)
            .await
            .expect("due")
            .len(),
        6
    );
    assert!(stats(&store).unavailable >= 2);
    store.pool().close().await;
    teardown(pair, h).await;
}

fn day() -> NaiveDate {
    t0().date_naive()
}
