//! The review fast-path conformance suite on a single Redis and on the test
//! Redis Cluster (random namespace per test, deleted afterwards), plus the
//! Redis-only promises: the round trips per call, horizon mode, and entries
//! byte for byte those of the general path.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use memora_cache_redis::{
    RedisConfig, RedisConn, RedisDueCache, RedisFastPath, RedisLeaderboard, RedisQueue,
    RedisServedLedger, count_round_trips, round_trips,
};
use memora_core::ports::{
    DueCache, FastCommitOutcome, PersistJob, PersistenceQueue, ReviewFastPath, ServedLedger,
};
use memora_tests::conformance::cache::{BuildBoard, q, row, season, t0, user};
use memora_tests::conformance::fast_path::{
    FastPathHarness, answered, at, claim, commit_of, now, terms,
};

/// The adapters of one configuration over one connection, as the server
/// builds them, and the fast path over them.
pub(crate) struct Harness {
    cfg: RedisConfig,
    due: RedisDueCache,
    ledger: RedisServedLedger,
    queue: RedisQueue,
    board: RedisLeaderboard,
    fast: RedisFastPath,
}

impl Harness {
    async fn new(cfg: RedisConfig) -> Harness {
        Self::build(cfg, None).await
    }

    /// With numbered schedules (layout 5) and ledger, as the server builds
    /// them by default.
    async fn numbered(cfg: RedisConfig) -> Harness {
        Self::build(cfg, Some(memora_tests::numbering())).await
    }

    async fn build(cfg: RedisConfig, numbering: Option<memora_cache_redis::Numbering>) -> Harness {
        let conn = RedisConn::connect(&cfg).await.expect("connect");
        let mut due = RedisDueCache::with_connection(conn.clone(), cfg.clone());
        let mut ledger = RedisServedLedger::with_connection(conn.clone(), cfg.clone());
        if let Some(n) = numbering {
            due = due.with_numbering(n.clone());
            ledger = ledger.with_numbering(n);
        }
        let board = RedisLeaderboard::with_connection(conn.clone(), cfg.clone());
        let queue = RedisQueue::with_connection(conn, cfg.clone())
            .await
            .expect("queue");
        let fast = RedisFastPath::new(
            due.clone(),
            ledger.clone(),
            queue.clone(),
            Some(board.clone()),
        );
        Harness {
            cfg,
            due,
            ledger,
            queue,
            board,
            fast,
        }
    }
}

#[async_trait]
impl FastPathHarness for Harness {
    fn fast(&self) -> Arc<dyn ReviewFastPath> {
        Arc::new(self.fast.clone())
    }
    fn cache(&self) -> Arc<dyn DueCache> {
        Arc::new(self.due.clone())
    }
    fn ledger(&self) -> Arc<dyn ServedLedger> {
        Arc::new(self.ledger.clone())
    }
    fn queue(&self) -> Arc<dyn PersistenceQueue> {
        Arc::new(self.queue.clone())
    }
    fn board(&self) -> Option<Arc<dyn BuildBoard>> {
        Some(Arc::new(self.board.clone()))
    }
    async fn enqueued(&self) -> Vec<PersistJob> {
        self.queue.peek(10_000).await.expect("peek")
    }
    async fn teardown(&self) {
        memora_tests::redis_delete_namespace(&self.cfg).await;
    }
}

fn qids(qs: &[&str]) -> Vec<memora_core::ids::QuestionId> {
    qs.iter().map(|x| q(x)).collect()
}

/// A schedule of `n` math cards `q00`, `q01`, … (`q<i>` due `i - 60`
/// minutes from `t0`, last reviewed two hours before), loaded.
async fn loaded(
    h: &Harness,
    u: &memora_core::ids::UserId,
    s: &memora_core::ids::SeasonId,
    n: i64,
) -> Vec<memora_core::domain::MemoryTracker> {
    let rows: Vec<_> = (0..n)
        .map(|i| row(u, s, &format!("q{i:02}"), Some("math"), i - 60, Some(-120)))
        .collect();
    h.due.load(u, s, &rows).await.expect("load");
    rows
}

/// The persistence worker's refresh (`DueCache::refresh`) of a job the
/// fast path committed writes nothing (one round trip: the check) while
/// the schedule is the one the commit wrote into, and writes the rows once
/// it is not: reloaded from a store that does not have them yet, or a card
/// removed since (reconciliation relies on the refresh to put back what it
/// removed too early); and for a job it knows nothing of.
async fn a_refresh_skips_only_what_the_commit_wrote(h: &Harness) {
    use memora_core::ids::JobId;
    let (u, s) = (user("alice"), season(2026));
    let rows = loaded(h, &u, &s, 12).await;
    let f: &dyn ReviewFastPath = &h.fast;
    // Serves q<from>..q<from+3> and commits their answers as `job`.
    let commit = |from: usize, job: &'static str, secs: i64| {
        let done: Vec<_> = rows[from..from + 4]
            .iter()
            .map(|r| answered(r.clone(), 1 + secs, 1440 + secs))
            .collect();
        let claims = (from..from + 4)
            .map(|i| claim(&format!("q{i:02}"), at(secs)))
            .collect();
        (commit_of(claims, done.clone(), job, Some(None)), done)
    };
    let (ur, sr) = (&u, &s);
    let states = |qs: Vec<String>| async move {
        let qs: Vec<&str> = qs.iter().map(String::as_str).collect();
        h.due
            .states(ur, sr, &qids(&qs))
            .await
            .expect("states")
            .into_iter()
            .map(|t| t.map(|t| t.state))
            .collect::<Vec<_>>()
    };
    let expected = |done: &[memora_core::domain::MemoryTracker]| {
        done.iter()
            .map(|t| Some(t.state.clone()))
            .collect::<Vec<_>>()
    };
    let names = |from: usize| {
        (from..from + 4)
            .map(|i| format!("q{i:02}"))
            .collect::<Vec<_>>()
    };
    let serve = |secs: i64| async move {
        f.due_and_serve(ur, sr, None, now(), 12, &terms(secs))
            .await
            .expect("serve")
            .expect("present")
    };

    // Loads the scripts (a first call costs two more round trips).
    let warm_up = JobId::new("job-warm-up").expect("job id");
    h.due
        .refresh(&u, &s, &rows[11..], &warm_up)
        .await
        .expect("warm-up");

    // The schedule the commit wrote into: the check only.
    serve(0).await;
    let (c, done) = commit(0, "job-same", 0);
    let out = f.commit_submit(&u, &s, &c).await.expect("commit");
    assert!(
        matches!(out, FastCommitOutcome::Committed { .. }),
        "{out:?}"
    );
    let job = JobId::new("job-same").expect("job id");
    let (r, n) = count_round_trips(h.due.refresh(&u, &s, &done, &job)).await;
    r.expect("refresh");
    assert_eq!(n, 1, "nothing to write");
    assert_eq!(states(names(0)).await, expected(&done));
    // The mark is used once: the same job again is a put.
    let (r, n) = count_round_trips(h.due.refresh(&u, &s, &done, &job)).await;
    r.expect("refresh");
    assert_eq!(n, 2, "check and put");

    // Reloaded between the commit and the worker, from a store without
    // the answers: the refresh writes them.
    serve(1).await;
    let (c, done) = commit(4, "job-reloaded", 1);
    let out = f.commit_submit(&u, &s, &c).await.expect("commit");
    assert!(
        matches!(out, FastCommitOutcome::Committed { .. }),
        "{out:?}"
    );
    h.due.clear_user(&u, &s).await.expect("clear");
    h.due
        .load(&u, &s, &rows)
        .await
        .expect("reload without the answers");
    assert_ne!(states(names(4)).await, expected(&done));
    let job = JobId::new("job-reloaded").expect("job id");
    h.due.refresh(&u, &s, &done, &job).await.expect("refresh");
    assert_eq!(states(names(4)).await, expected(&done));

    // A card removed after the commit: the refresh puts it back.
    serve(2).await;
    let (c, done) = commit(8, "job-removed", 2);
    let out = f.commit_submit(&u, &s, &c).await.expect("commit");
    assert!(
        matches!(out, FastCommitOutcome::Committed { .. }),
        "{out:?}"
    );
    h.due.remove(&u, &s, &qids(&["q08"])).await.expect("remove");
    assert_eq!(states(vec!["q08".into()]).await, vec![None]);
    let job = JobId::new("job-removed").expect("job id");
    h.due.refresh(&u, &s, &done, &job).await.expect("refresh");
    assert_eq!(states(names(8)).await, expected(&done));

    // A job the fast path never committed: a put.
    let other = JobId::new("job-general-path").expect("job id");
    let (r, n) = count_round_trips(h.due.refresh(&u, &s, &done, &other)).await;
    r.expect("refresh");
    assert_eq!(n, 2, "check and put");
    h.teardown().await;
}

mod single {
    use super::*;

    pub(crate) async fn config() -> Option<RedisConfig> {
        let url = memora_tests::redis_url_or_skip().await?;
        let mut c = RedisConfig::single(url).namespace(memora_tests::random_namespace());
        c.schedule_ttl = Duration::from_secs(600);
        Some(c)
    }

    async fn setup() -> Option<Harness> {
        Some(Harness::new(config().await?).await)
    }

    memora_tests::fast_path_conformance!(setup());

    /// The suite on numbered schedules and ledger (the server's default).
    mod numbered {
        use super::*;

        async fn setup() -> Option<Harness> {
            Some(Harness::numbered(config().await?).await)
        }

        memora_tests::fast_path_conformance!(setup());

        #[tokio::test]
        async fn a_refresh_skips_only_what_the_commit_wrote() {
            let Some(h) = setup().await else { return };
            super::super::a_refresh_skips_only_what_the_commit_wrote(&h).await;
        }
    }

    #[tokio::test]
    async fn a_refresh_skips_only_what_the_commit_wrote() {
        let Some(h) = setup().await else { return };
        super::a_refresh_skips_only_what_the_commit_wrote(&h).await;
    }

    /// The promise: a warm serving is one round trip, a submission
    /// two (prepare + commit), whatever the number of answers.
    #[tokio::test]
    async fn round_trips_per_call() {
        let Some(h) = setup().await else { return };
        let (u, s) = (user("alice"), season(2026));
        let rows = loaded(&h, &u, &s, 60).await;
        let f: &dyn ReviewFastPath = &h.fast;
        // Warm-up (loads both scripts): serve q00, commit its answer.
        let first = f
            .due_and_serve(&u, &s, None, now(), 1, &terms(0))
            .await
            .expect("warm-up")
            .expect("present");
        assert_eq!(first.items[0].as_str(), "q00");
        let warm = commit_of(
            vec![claim("q00", at(0))],
            vec![answered(rows[0].clone(), 1, 1440)],
            "job-warm",
            Some(None),
        );
        let out = f.commit_submit(&u, &s, &warm).await.expect("commit");
        assert!(
            matches!(out, FastCommitOutcome::Committed { .. }),
            "{out:?}"
        );

        let before = round_trips();
        let (slice, n) =
            count_round_trips(f.due_and_serve(&u, &s, None, now(), 50, &terms(1))).await;
        let slice = slice.expect("due_and_serve").expect("present");
        assert_eq!((slice.items.len(), slice.total_due), (50, 59));
        assert_eq!(n, 1, "warm due_and_serve");
        assert!(round_trips() > before, "the process-wide counter moves too");

        let items: Vec<String> = slice.items.iter().map(|q| format!("q:{q}")).collect();
        let (view, n) =
            count_round_trips(f.prepare_submit(&u, &s, &items, &slice.items, at(2))).await;
        let view = view.expect("prepare");
        assert_eq!(n, 1, "prepare_submit");
        assert!(view.servings.iter().all(Option::is_some));
        assert_eq!(view.states.as_ref().map(Vec::len), Some(50));

        let commit = commit_of(
            slice
                .items
                .iter()
                .map(|q| claim(q.as_str(), at(1)))
                .collect(),
            rows[1..51]
                .iter()
                .map(|r| answered(r.clone(), 1, 1440))
                .collect(),
            "job-50",
            Some(None),
        );
        assert_eq!(commit.claims.len(), 50);
        let (out, n) = count_round_trips(f.commit_submit(&u, &s, &commit)).await;
        let out = out.expect("commit");
        assert!(
            matches!(
                out,
                FastCommitOutcome::Committed {
                    total_due: Some(9),
                    ..
                }
            ),
            "{out:?}"
        );
        assert_eq!(n, 1, "commit_submit of 50 answers");
        // The same claims again: lost, still one round trip.
        let (out, n) = count_round_trips(f.commit_submit(&u, &s, &commit)).await;
        assert_eq!(out.expect("commit"), FastCommitOutcome::Lost);
        assert_eq!(n, 1);
        // Scopes nest: the outer one sees the inner one's requests.
        let ((_, inner), outer) = count_round_trips(async {
            let _ = f.prepare_submit(&u, &s, &items, &[], at(3)).await;
            count_round_trips(f.prepare_submit(&u, &s, &items, &[], at(3))).await
        })
        .await;
        assert_eq!((inner, outer), (1, 2));
        h.teardown().await;
    }

    /// Mastery counts of a schedule, from its rows as the core buckets them.
    fn counts_of(
        rows: &[memora_core::domain::MemoryTracker],
    ) -> memora_core::domain::MasteryCounts {
        let mut c = memora_core::domain::MasteryCounts::default();
        for r in rows {
            match r.state.mastery() {
                Some(memora_core::srs::MasteryBucket::New) => c.new += 1,
                Some(memora_core::srs::MasteryBucket::Learning) => c.learning += 1,
                Some(memora_core::srs::MasteryBucket::Mature) => c.mature += 1,
                None => {}
            }
        }
        c
    }

    fn mastery_of(out: &FastCommitOutcome) -> Option<memora_core::domain::MasteryCounts> {
        match out {
            FastCommitOutcome::Committed { mastery, .. } => *mastery,
            FastCommitOutcome::Lost => panic!("commit lost"),
        }
    }

    /// A full schedule keeps exact mastery counts through loads, commits
    /// and removals (the core then reads none from the store); a card whose
    /// bucket the scripts cannot know (written before the bucket was
    /// encoded) drops them, and horizon mode never keeps them.
    #[tokio::test]
    async fn mastery_counts_follow_every_write() {
        let Some(h) = setup().await else { return };
        let (u, s) = (user("alice"), season(2026));
        let f: &dyn ReviewFastPath = &h.fast;
        assert!(f.keeps_mastery());
        let mut rows: Vec<_> = (0..6)
            .map(|i| row(&u, &s, &format!("q{i}"), Some("math"), i - 60, Some(-120)))
            .collect();
        rows[0].state.phase = memora_core::srs::Phase::Learning; // new
        rows[1].state.stability = 30.0; // mature
        rows[2].state.stability = 40.0; // mature
        h.due.load(&u, &s, &rows).await.expect("load");
        // Serve and answer q0 (new → mature) and q3 (learning → new).
        let slice = f
            .due_and_serve(&u, &s, None, now(), 6, &terms(0))
            .await
            .expect("serve")
            .expect("present");
        assert_eq!(slice.items.len(), 6);
        let mut a0 = answered(rows[0].clone(), 1, 1440);
        a0.state.phase = memora_core::srs::Phase::Review;
        a0.state.stability = 25.0;
        let mut a3 = answered(rows[3].clone(), 1, 10);
        a3.state.phase = memora_core::srs::Phase::Relearning;
        let out = f
            .commit_submit(
                &u,
                &s,
                &commit_of(
                    vec![claim("q0", at(0)), claim("q3", at(0))],
                    vec![a0.clone(), a3.clone()],
                    "job-m1",
                    Some(None),
                ),
            )
            .await
            .expect("commit");
        rows[0] = a0;
        rows[3] = a3;
        let want = counts_of(&rows);
        assert_eq!(
            (want.new, want.learning, want.mature),
            (1, 2, 3),
            "the fixture covers every bucket"
        );
        assert_eq!(mastery_of(&out), Some(want));
        // A removal counts too.
        h.due.remove(&u, &s, &qids(&["q1"])).await.expect("remove");
        rows.remove(1);
        let mut a2 = answered(rows[1].clone(), 2, 1440);
        a2.state.stability = 5.0; // mature → learning
        let out = f
            .commit_submit(
                &u,
                &s,
                &commit_of(
                    vec![claim("q2", at(0))],
                    vec![a2.clone()],
                    "job-m2",
                    Some(None),
                ),
            )
            .await
            .expect("commit");
        rows[1] = a2;
        assert_eq!(mastery_of(&out), Some(counts_of(&rows)));
        // A reload recounts from the rows.
        h.due.load(&u, &s, &rows).await.expect("reload");
        let out = f
            .commit_submit(&u, &s, &commit_of(vec![], vec![], "job-m3", Some(None)))
            .await
            .expect("commit");
        assert_eq!(mastery_of(&out), Some(counts_of(&rows)));
        h.teardown().await;
        // Horizon mode keeps none.
        let Some(cfg) = config().await else { return };
        let hz = Harness::new(cfg.horizon_days(Some(2))).await;
        assert!(!ReviewFastPath::keeps_mastery(&hz.fast));
        hz.due.load(&u, &s, &rows).await.expect("load");
        let out = hz
            .fast
            .commit_submit(&u, &s, &commit_of(vec![], vec![], "job-h", Some(None)))
            .await
            .expect("commit");
        assert_eq!(mastery_of(&out), None);
        hz.teardown().await;
    }

    /// Horizon mode: `prepare_submit` reports the horizon end; past it the
    /// schedule is absent for every call (as `due` says), and a committed
    /// row due beyond it is not cached (as `put` does).
    #[tokio::test]
    async fn horizon_mode() {
        let Some(cfg) = config().await else { return };
        let h = Harness::new(cfg.horizon_days(Some(2))).await;
        let (u, s) = (user("alice"), season(2026));
        let rows = vec![
            row(&u, &s, "a", Some("math"), -30, Some(-120)),
            row(&u, &s, "far", Some("math"), 3 * 1440, Some(-120)),
        ];
        h.due.load_at(&u, &s, &rows, t0()).await.expect("load");
        let hz = t0() + chrono::Duration::days(2);
        let f: &dyn ReviewFastPath = &h.fast;
        let v = f
            .prepare_submit(&u, &s, &[], &qids(&["a", "far"]), now())
            .await
            .expect("prepare");
        assert_eq!(v.horizon, Some(hz));
        assert_eq!(v.states, Some(vec![Some(rows[0].clone()), None]));
        // At the horizon end: still present; just after: absent.
        let v = f
            .prepare_submit(&u, &s, &[], &[], hz)
            .await
            .expect("prepare");
        assert_eq!(v.horizon, Some(hz));
        let past = hz + chrono::Duration::microseconds(1);
        let v = f
            .prepare_submit(&u, &s, &[], &qids(&["a"]), past)
            .await
            .expect("prepare");
        assert_eq!((v.states, v.horizon), (None, None));
        let later = terms(0);
        assert_eq!(
            f.due_and_serve(&u, &s, None, past, 10, &later)
                .await
                .expect("due_and_serve"),
            None
        );
        assert_eq!(
            h.ledger
                .lookup(&u, &s, &["q:a".to_owned()], at(1))
                .await
                .expect("lookup"),
            vec![None],
            "nothing recorded past the horizon"
        );
        // A commit: the row due beyond the horizon leaves the cache.
        f.due_and_serve(&u, &s, None, now(), 10, &terms(0))
            .await
            .expect("due_and_serve");
        let out = f
            .commit_submit(
                &u,
                &s,
                &commit_of(
                    vec![claim("a", at(0))],
                    vec![answered(rows[0].clone(), 1, 4 * 1440)],
                    "job-hz",
                    Some(None),
                ),
            )
            .await
            .expect("commit");
        assert!(
            matches!(
                out,
                FastCommitOutcome::Committed {
                    total_due: Some(0),
                    ..
                }
            ),
            "{out:?}"
        );
        assert_eq!(
            h.due.states(&u, &s, &qids(&["a"])).await.expect("states"),
            vec![None]
        );
        h.teardown().await;
    }

    use memora_tests::redis_raw as raw;

    async fn dump(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(c)
            .await
            .expect("hgetall");
        v.sort();
        v
    }

    /// What the fast path writes is what the general path writes: alice
    /// goes through the fast path, bob through the adapters' own calls;
    /// their ledgers are compared raw, their schedules card by card, in
    /// their markers (but the generation) and in their due answers.
    #[tokio::test]
    async fn writes_what_the_general_path_writes() {
        let Some(h) = setup().await else { return };
        let s = season(2026);
        let (alice, bob) = (user("alice"), user("bob"));
        for u in [&alice, &bob] {
            h.due
                .load(
                    u,
                    &s,
                    &memora_tests::conformance::fast_path::schedule(u, &s),
                )
                .await
                .expect("load");
        }
        let t = terms(0);
        // Serve.
        let a = h
            .fast
            .due_and_serve(&alice, &s, None, now(), 3, &t)
            .await
            .expect("fast")
            .expect("present");
        let b = h
            .due
            .due(&bob, &s, None, now(), 3)
            .await
            .expect("due")
            .expect("present");
        assert_eq!(a, b);
        let items: Vec<String> = b.items.iter().map(|q| format!("q:{q}")).collect();
        h.ledger
            .record_served(
                &bob,
                &s,
                &items,
                t.served_at,
                t.answerable_until,
                t.retain_until,
            )
            .await
            .expect("record");
        // Commit: claims, rows (one of them moving to another subject), job.
        let mk = |u: &memora_core::ids::UserId| {
            let sched = memora_tests::conformance::fast_path::schedule(u, &s);
            let mut moved = answered(sched[1].clone(), 1, 1440);
            moved.subject = Some(memora_tests::conformance::cache::subj("history"));
            let mut c = commit_of(
                vec![claim("first", at(0)), claim("a", at(0))],
                vec![answered(sched[0].clone(), 1, 1440), moved],
                "job-same",
                Some(None),
            );
            c.board = None;
            c
        };
        let out = h
            .fast
            .commit_submit(&alice, &s, &mk(&alice))
            .await
            .expect("commit");
        assert!(
            matches!(out, FastCommitOutcome::Committed { .. }),
            "{out:?}"
        );
        let cb = mk(&bob);
        assert!(h.ledger.commit(&bob, &s, &cb.claims).await.expect("commit"));
        h.queue.enqueue(&cb.job).await.expect("enqueue");
        h.due.put(&bob, &s, &cb.rows).await.expect("put");
        let mut c = raw(&h.cfg).await;
        let (la, lb) = (
            h.ledger.ledger_key(&alice, &s),
            h.ledger.ledger_key(&bob, &s),
        );
        assert_eq!(dump(&mut c, &la).await, dump(&mut c, &lb).await);
        assert_eq!(dump(&mut c, &la).await.len(), 3);
        let (ba, bb) = (h.due.schedule_key(&alice, &s), h.due.schedule_key(&bob, &s));
        let (da, db) = (
            h.due.schedule_dump(&alice, &s).await.expect("dump"),
            h.due.schedule_dump(&bob, &s).await.expect("dump"),
        );
        assert_eq!(da.len(), db.len());
        assert!(!da.is_empty());
        for (a, b) in da.iter().zip(&db) {
            assert_eq!(
                (&a.key.question, &a.subject, &a.topic, &a.state),
                (&b.key.question, &b.subject, &b.topic, &b.state)
            );
        }
        // The markers match but for the generation and the cached due
        // counts (`k…`), which depend on the reads.
        let marker = |mut v: Vec<(String, String)>| {
            v.retain(|(f, _)| f != "g" && !f.starts_with('k'));
            v
        };
        assert_eq!(
            marker(dump(&mut c, &format!("{ba}:m")).await),
            marker(dump(&mut c, &format!("{bb}:m")).await)
        );
        for subject in [Some("math"), Some("history"), None] {
            let subject = subject.map(|x| memora_core::ids::SubjectId::new(x).unwrap());
            let due = |u| {
                h.due.due(
                    u,
                    &s,
                    subject.as_ref(),
                    now() + chrono::Duration::days(400),
                    100,
                )
            };
            assert_eq!(
                due(&alice).await.expect("due"),
                due(&bob).await.expect("due")
            );
        }
        // Both jobs decode to the same records.
        let jobs = h.queue.peek(10).await.expect("peek");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].records.len(), 2);
        assert_eq!(jobs[0].id, jobs[1].id);
        // TTLs: the ledger key covers retain_until, the schedule's are fresh.
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&la)
            .query_async(&mut c)
            .await
            .expect("pttl");
        assert!((86_400_000..=86_460_000).contains(&ttl), "{ttl}");
        let ttls = h.due.schedule_ttls(&alice, &s).await.expect("ttls");
        assert!(ttls.values().all(|t| *t > 590_000), "{ttls:?}");
        h.teardown().await;
    }
}

mod cluster {
    use super::*;

    fn config() -> Option<RedisConfig> {
        let cluster = memora_tests::redis_cluster::cluster_or_skip()?;
        let mut c =
            RedisConfig::cluster(cluster.nodes.clone()).namespace(memora_tests::random_namespace());
        c.schedule_ttl = Duration::from_secs(600);
        // Cold cluster connections can be slower than the production budget.
        c.call_timeout = Duration::from_secs(2);
        Some(c)
    }

    async fn setup() -> Option<Harness> {
        Some(Harness::new(config()?).await)
    }

    memora_tests::fast_path_conformance!(setup());

    mod numbered {
        use super::*;

        async fn setup() -> Option<Harness> {
            Some(Harness::numbered(config()?).await)
        }

        memora_tests::fast_path_conformance!(setup());

        #[tokio::test]
        async fn a_refresh_skips_only_what_the_commit_wrote() {
            let Some(h) = setup().await else { return };
            super::super::a_refresh_skips_only_what_the_commit_wrote(&h).await;
        }
    }
}
