//! The store and institution-directory conformance suites on PostgreSQL
//! (each test in a fresh schema),
//! plus the database-specific checks: partition pruning, concurrent
//! idempotent persistence and archive atomicity.

use std::sync::Arc;

use memora_core::ports::{DueFilter, PortError};
use memora_tests::PgSchema;
use memora_tests::conformance::directory::Directories;
use memora_tests::conformance::store::{
    Stores, at, make_seasons, record, season, t0, tracker, user,
};

struct Pg(PgSchema);

impl Pg {
    async fn setup() -> Option<Pg> {
        PgSchema::create().await.map(Pg)
    }
    fn stores(&self) -> Stores {
        Stores::from_backend(
            Arc::new(self.0.store.clone()),
            Arc::new(self.0.other.clone()),
        )
    }
    /// The directory through the store (as the home institution's store
    /// serves it), and through the second store: "another process".
    fn directories(&self) -> Directories {
        Directories {
            this: Arc::new(self.0.store.clone()),
            other: Arc::new(self.0.other.clone()),
        }
    }
    async fn teardown(self) {
        self.0.teardown().await
    }
}

memora_tests::store_conformance!(Pg::setup());
memora_tests::directory_conformance!(Pg::setup());

/// Runs `f` on a fresh schema and always drops it.
async fn with_schema<F, Fut>(f: F)
where
    F: FnOnce(Stores, memora_store_postgres::PgStore) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(h) = Pg::setup().await else { return };
    let run = tokio::spawn(f(h.stores(), h.0.store.clone())).await;
    h.teardown().await;
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_query_prunes_to_one_partition() {
    with_schema(|s, pg| async move {
        make_seasons(&s, &[2025, 2026, 2027]).await;
        let mut recs = Vec::new();
        for y in [2025, 2026, 2027] {
            for i in 0..20 {
                let t = tracker(
                    "u1",
                    y,
                    &format!("q{i}"),
                    2,
                    at(-1),
                    Some(at(-5)),
                    None,
                    None,
                );
                recs.push(record(&t, &format!("r-{y}-{i}")));
            }
        }
        s.trackers.persist_batch(&recs).await.expect("persist");
        let plan = pg
            .explain_due_query(&user("u1"), &season(2026), t0())
            .await
            .expect("explain");
        let want = memora_store_postgres::partition_name("memory_tracker", &season(2026));
        assert!(plan.contains(&want), "plan does not touch {want}:\n{plan}");
        for other in [2025, 2027] {
            let name = memora_store_postgres::partition_name("memory_tracker", &season(other));
            assert!(!plan.contains(&name), "plan touches {name}:\n{plan}");
        }
        // And the query answers correctly.
        let due = s
            .trackers
            .due_trackers(&user("u1"), &season(2026), &DueFilter::default(), t0(), 100)
            .await
            .expect("due");
        assert_eq!(due.len(), 20);
        // Partitions are listed and can be dropped.
        let parts = pg.list_partitions().await.expect("list");
        assert_eq!(parts.len(), 6);
        assert!(parts.iter().all(|p| p.season.is_some()));
        pg.drop_season_partitions(&season(2027))
            .await
            .expect("drop");
        pg.drop_season_partitions(&season(2027))
            .await
            .expect("drop is idempotent");
        assert_eq!(pg.list_partitions().await.expect("list").len(), 4);
        let t = tracker("u1", 2027, "q0", 2, at(1), Some(at(0)), None, None);
        let r = s
            .trackers
            .persist_batch(&[record(&t, "r-after-drop")])
            .await;
        assert!(matches!(r, Err(PortError::Rejected(_))), "{r:?}");
        pg.ensure_season_partitions(&season(2027))
            .await
            .expect("recreate");
        s.trackers
            .persist_batch(&[record(&t, "r-after-drop")])
            .await
            .expect("persist");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_batches_write_once() {
    with_schema(|s, pg| async move {
        make_seasons(&s, &[2026]).await;
        let mut recs = Vec::new();
        for u in 0..10 {
            for i in 0..20 {
                let t = tracker(&format!("u{u}"), 2026, &format!("q{i:02}"), 2, at(24), Some(at(i)), None, None);
                recs.push(record(&t, &format!("r-{u}-{i}")));
            }
        }
        let recs = Arc::new(recs);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mem = s.trackers.clone();
            let recs = recs.clone();
            tasks.push(tokio::spawn(async move { mem.persist_batch(&recs).await }));
        }
        let mut logs = 0;
        for t in tasks {
            logs += t.await.expect("join").expect("persist").logs_inserted;
        }
        assert_eq!(logs, 200, "every answer logged exactly once across tasks");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM review_log")
            .fetch_one(pg.pool())
            .await
            .expect("count");
        assert_eq!(n, 200);
        let dup: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT review_id FROM review_log GROUP BY review_id HAVING count(*) > 1) d",
        )
        .fetch_one(pg.pool())
        .await
        .expect("dups");
        assert_eq!(dup, 0);
        assert_eq!(s.scans.count_season(&season(2026)).await.expect("count"), 200);
        let mut rows = s.trackers.all_trackers(&user("u3"), &season(2026)).await.expect("rows");
        rows.sort_by(|a, b| a.key.question.as_str().cmp(b.key.question.as_str()));
        let expected: Vec<_> = recs.iter().filter(|r| r.tracker.key.user == user("u3")).map(|r| r.tracker.clone()).collect();
        assert_eq!(rows, expected);
    })
    .await;
}

/// A season scan's page costs the same wherever it starts: the rebuild
/// reads a season page after page, and a page that re-read the index from
/// the season's start made the rebuild quadratic (10 M rows at 24 K rows/s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_scan_page_costs_the_same_anywhere_in_the_season() {
    with_schema(|s, pg| async move {
        make_seasons(&s, &[2026]).await;
        const USERS: usize = 500;
        const PER_USER: usize = 30;
        for chunk in 0..USERS / 50 {
            let mut recs = Vec::new();
            for u in chunk * 50..(chunk + 1) * 50 {
                for i in 0..PER_USER {
                    let t = tracker(
                        &format!("u{u:04}"),
                        2026,
                        &format!("q{i:02}"),
                        2,
                        at(24),
                        Some(at(-1)),
                        None,
                        None,
                    );
                    recs.push(record(&t, &format!("r-{u}-{i}")));
                }
            }
            s.trackers.persist_batch(&recs).await.expect("persist");
        }
        sqlx::query("ANALYZE memory_tracker")
            .execute(pg.pool())
            .await
            .expect("analyze");
        let key = |u: usize| memora_core::domain::TrackerKey {
            user: user(&format!("u{u:04}")),
            season: season(2026),
            question: memora_tests::conformance::store::q(&format!("q{:02}", PER_USER - 1)),
        };
        let early = pg
            .scan_page_buffers(&season(2026), &key(1), PER_USER)
            .await
            .expect("explain");
        let late = pg
            .scan_page_buffers(&season(2026), &key(USERS - 2), PER_USER)
            .await
            .expect("explain");
        // The index alone spans ~80 leaf pages here; a page of one learner's
        // rows needs its path down the index and a heap page or two.
        assert!(
            late <= 20,
            "the page after learner {} touched {late} buffers",
            USERS - 2
        );
        assert!(
            late <= early + 5,
            "a late page touched {late} buffers, an early one {early}"
        );
        // And the pages answer the scan: the last learner's rows, in order.
        let page = s
            .scans
            .scan_season(&season(2026), Some(&key(USERS - 2)), PER_USER + 5)
            .await
            .expect("scan");
        assert_eq!(page.len(), PER_USER);
        assert!(
            page.iter()
                .all(|t| t.key.user == user(&format!("u{:04}", USERS - 1)))
        );
        assert!(
            page.windows(2)
                .all(|w| w[0].key.question.as_str() < w[1].key.question.as_str())
        );
    })
    .await;
}

/// The bulk readers (`all_trackers`, `scan_season`) decode rows by
/// position and share repeated ids; they must give exactly the rows the
/// per-key read (`get_trackers`, decoded by column name) gives: every
/// scheduler, phase and null, subjects and topics that repeat and change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_reads_decode_rows_as_the_keyed_read_does() {
    with_schema(|s, _pg| async move {
        make_seasons(&s, &[2026]).await;
        let mut recs = Vec::new();
        for u in ["ua", "ub"] {
            for i in 0..40u32 {
                let subj = (i % 3 != 0).then(|| format!("subj-{}", i % 4));
                let top = (i % 5 != 0).then(|| format!("topic-{}", i % 7));
                let last = (i % 6 != 0).then(|| at(-i64::from(i)));
                let mut t = tracker(
                    u,
                    2026,
                    &format!("q{i:02}"),
                    (i % 4) as u8,
                    at(i64::from(i) * 7 - 100),
                    last,
                    subj.as_deref(),
                    top.as_deref(),
                );
                if i % 2 == 1 {
                    t.state.kind = memora_core::srs::SchedulerKind::Fsrs6;
                    t.state.phase = memora_core::srs::Phase::Relearning;
                    t.state.stability = 0.1 + f64::from(i) * 1.37;
                    t.state.difficulty = 9.99 - f64::from(i) / 7.0;
                    t.state.step = i % 3;
                    t.state.lapses = i;
                    t.state.reps = 1_000_000 + i;
                }
                recs.push(record(&t, &format!("r-{u}-{i}")));
            }
        }
        s.trackers.persist_batch(&recs).await.expect("persist");
        let scanned = s
            .scans
            .scan_season(&season(2026), None, 1000)
            .await
            .expect("scan");
        assert_eq!(scanned.len(), 80);
        for u in ["ua", "ub"] {
            let keys: Vec<_> = (0..40)
                .map(|i| memora_tests::conformance::store::q(&format!("q{i:02}")))
                .collect();
            let keyed = s
                .trackers
                .get_trackers(&user(u), &season(2026), &keys)
                .await
                .expect("keyed");
            assert_eq!(keyed.len(), 40);
            let mut all = s
                .trackers
                .all_trackers(&user(u), &season(2026))
                .await
                .expect("all");
            all.sort_by(|a, b| a.key.question.as_str().cmp(b.key.question.as_str()));
            let mut keyed = keyed;
            keyed.sort_by(|a, b| a.key.question.as_str().cmp(b.key.question.as_str()));
            assert_eq!(all, keyed, "all_trackers of {u}");
            let mine: Vec<_> = scanned
                .iter()
                .filter(|t| t.key.user == user(u))
                .cloned()
                .collect();
            assert_eq!(mine, keyed, "scan_season of {u}");
            let want: Vec<_> = recs
                .iter()
                .filter(|r| r.tracker.key.user == user(u))
                .map(|r| r.tracker.clone())
                .collect();
            assert_eq!(keyed, want, "the rows written");
        }
    })
    .await;
}

/// `review_log` has no key of its own (migration 20270103000000):
/// `review_ids` alone keeps a review id to one log row — replayed in its
/// season, sent again for another season, or twice in one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_log_stays_unique_without_a_key() {
    with_schema(|s, pg| async move {
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'review_log'::regclass",
        )
        .fetch_all(pg.pool())
        .await
        .expect("constraints");
        assert!(keys.iter().all(|k| !k.ends_with("_pkey")), "{keys:?}");
        make_seasons(&s, &[2026, 2027]).await;
        let t26 = tracker("u1", 2026, "q1", 2, at(24), Some(at(1)), None, None);
        let t27 = tracker("u1", 2027, "q1", 2, at(24), Some(at(1)), None, None);
        let first = s
            .trackers
            .persist_batch(&[record(&t26, "r-once")])
            .await
            .expect("persist");
        assert_eq!(first.logs_inserted, 1);
        for batch in [
            vec![record(&t26, "r-once")],
            vec![record(&t27, "r-once")],
            vec![record(&t26, "r-once"), record(&t27, "r-once")],
        ] {
            let again = s.trackers.persist_batch(&batch).await.expect("replay");
            assert_eq!(again.logs_inserted, 0, "{batch:?}");
        }
        let twice = s
            .trackers
            .persist_batch(&[record(&t26, "r-twice"), record(&t26, "r-twice")])
            .await
            .expect("persist");
        assert_eq!(twice.logs_inserted, 1);
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT review_id, count(*) FROM review_log GROUP BY review_id ORDER BY review_id",
        )
        .fetch_all(pg.pool())
        .await
        .expect("count");
        assert_eq!(
            rows,
            vec![("r-once".to_owned(), 1), ("r-twice".to_owned(), 1)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_failure_leaves_season_untouched() {
    with_schema(|s, pg| async move {
        make_seasons(&s, &[2025]).await;
        let mut recs = Vec::new();
        for i in 0..100 {
            let t = tracker(
                "u1",
                2025,
                &format!("q{i:03}"),
                2,
                at(1),
                Some(at(0)),
                None,
                None,
            );
            recs.push(record(&t, &format!("r-{i}")));
        }
        s.trackers.persist_batch(&recs).await.expect("persist");
        // Inject a failure in the middle of the move: the 50th archived row
        // raises, after earlier rows were already deleted and copied.
        sqlx::query(
            "CREATE FUNCTION fail_midway() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.question_id = 'q050' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$",
        )
        .execute(pg.pool())
        .await
        .expect("function");
        sqlx::query(
            "CREATE TRIGGER fail_midway BEFORE INSERT ON archived_tracker \
             FOR EACH ROW EXECUTE FUNCTION fail_midway()",
        )
        .execute(pg.pool())
        .await
        .expect("trigger");
        let r = s.archive.archive_season(&season(2025), at(0)).await;
        assert!(r.is_err(), "archive must fail: {r:?}");
        let counts = s
            .archive
            .archive_counts(&season(2025))
            .await
            .expect("counts");
        assert_eq!(counts.active_records, 100);
        assert_eq!(counts.archived_records, 0);
        sqlx::query("DROP TRIGGER fail_midway ON archived_tracker")
            .execute(pg.pool())
            .await
            .expect("drop trigger");
        assert_eq!(
            s.archive
                .archive_season(&season(2025), at(0))
                .await
                .expect("archive"),
            100
        );
        assert_eq!(s.scans.count_season(&season(2025)).await.expect("count"), 0);
        assert!(
            s.seasons
                .get_season(&season(2025))
                .await
                .expect("season")
                .is_some()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_loader_fills_a_season() {
    with_schema(|s, pg| async move {
        let report = pg
            .bulk_load(&season(2026), 20, 50, true, 7)
            .await
            .expect("bulk load");
        assert_eq!(report.trackers, 1000);
        assert_eq!(report.reviews, 1000);
        assert_eq!(
            s.scans.count_season(&season(2026)).await.expect("count"),
            1000
        );
        let u = user(&memora_store_postgres::bench_user(3));
        let due = s
            .trackers
            .count_due(&u, &season(2026), &DueFilter::default(), chrono::Utc::now())
            .await
            .expect("due");
        assert!(
            due > 0 && due < 50,
            "due dates spread past and future: {due}"
        );
        assert_eq!(s.revlog.count_reviews(&u).await.expect("reviews"), 50);
        let sample = s
            .scans
            .sample_trackers(&season(2026), 10, 1)
            .await
            .expect("sample");
        assert_eq!(sample.len(), 10);
    })
    .await;
}

/// An invalidation whose sequence number was taken before one already read,
/// but whose transaction commits later (long after any clock-based window),
/// is still delivered: the reader re-reads from the oldest transaction that
/// was running at its previous read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_committing_invalidation_is_not_skipped() {
    use memora_core::ports::Invalidation;
    with_schema(|s, pg| async move {
        let c = s.coordination.clone();
        let start = c.invalidations_since(None).await.expect("start");
        // A transaction takes a sequence number and stays open.
        let mut slow = pg.pool().begin().await.expect("begin");
        sqlx::query("INSERT INTO invalidations (kind, subject) VALUES ('seasons', '')")
            .execute(&mut *slow)
            .await
            .expect("slow insert");
        // A later one commits first and is read.
        c.publish(&Invalidation::Catalog).await.expect("publish");
        let first = c
            .invalidations_since(Some(start.cursor))
            .await
            .expect("read");
        let seen: Vec<&Invalidation> = first.entries.iter().map(|(_, w)| w).collect();
        assert_eq!(seen, vec![&Invalidation::Catalog]);
        // The slow one commits with the lower sequence number.
        slow.commit().await.expect("commit");
        let next = c
            .invalidations_since(Some(first.cursor))
            .await
            .expect("read");
        let fresh: Vec<&Invalidation> = next
            .entries
            .iter()
            .filter(|(q, _)| !first.entries.iter().any(|(f, _)| f == q))
            .map(|(_, w)| w)
            .collect();
        assert_eq!(fresh, vec![&Invalidation::Seasons], "{next:?}");
        // Nothing unseen is left (entries may come back while any older
        // transaction in the database — another test's — still runs).
        let later = c
            .invalidations_since(Some(next.cursor))
            .await
            .expect("read");
        assert!(
            later
                .entries
                .iter()
                .all(|(q, _)| next.entries.iter().any(|(n, _)| n == q)),
            "{later:?}"
        );
    })
    .await;
}

/// A bulk load cut off between its COPYs (the three tables end at different
/// players) is completed by `bulk_resume_point` + `bulk_load_from` with the
/// rows an uninterrupted load writes (`datagen --resume`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_load_resumes_where_it_was_cut_off() {
    with_schema(|_s, pg| async move {
        // Everything but the due dates (relative to the load's clock).
        async fn snapshot(pg: &memora_store_postgres::PgStore) -> Vec<String> {
            sqlx::query_scalar(
                "SELECT concat_ws(' ', 't', user_id, question_id, stability, reps, scheduled_days) \
                   FROM memory_tracker \
                 UNION ALL SELECT concat_ws(' ', 'l', review_id, user_id, duration_ms, elapsed_days) \
                   FROM review_log \
                 UNION ALL SELECT concat_ws(' ', 'i', review_id, season) FROM review_ids \
                 ORDER BY 1",
            )
            .fetch_all(pg.pool())
            .await
            .expect("snapshot")
        }
        let s26 = season(2026);
        pg.bulk_load(&s26, 20, 50, true, 7).await.expect("load");
        let whole = snapshot(&pg).await;
        assert_eq!(whole.len(), 3000);
        let bench = memora_store_postgres::bench_user;
        // Cut off: trackers up to part of player 11, the log up to player
        // 8, the review ids up to player 14.
        for (sql, from) in [
            (
                "DELETE FROM memory_tracker WHERE user_id > $1 OR (user_id = $1 AND question_id >= 'bench-st00005')",
                bench(11),
            ),
            ("DELETE FROM review_log WHERE user_id > $1", bench(8)),
            (
                "DELETE FROM review_ids WHERE review_id > $1",
                format!("bench-r-{}-z", bench(14)),
            ),
        ] {
            sqlx::query(sql)
                .bind(from)
                .execute(pg.pool())
                .await
                .expect("cut");
        }
        let first = pg.bulk_resume_point(&s26).await.expect("resume point");
        assert_eq!(first, 8, "the log's last player may be incomplete");
        let r = pg
            .bulk_load_from(&s26, first, 20, 50, true, 7)
            .await
            .expect("resume");
        assert_eq!(r.trackers, 12 * 50);
        assert_eq!(snapshot(&pg).await, whole);
        // Nothing to resume: the first player whose rows may be incomplete
        // is the last one, reloaded as it was.
        assert_eq!(pg.bulk_resume_point(&s26).await.expect("again"), 19);
        pg.bulk_load_from(&s26, 19, 20, 50, true, 7)
            .await
            .expect("reload the last player");
        assert_eq!(snapshot(&pg).await, whole);
    })
    .await;
}
