//! Conformance suite of [`ReviewFastPath`]: the fast path answers and
//! writes exactly as the general ports it stands for ([`DueCache`],
//! [`ServedLedger`], [`PersistenceQueue`], [`LeaderboardCache`]), run on the
//! composed reference (`ComposedFastPath` over the in-memory adapters), on a
//! single Redis and on Redis Cluster.
//!
//! Each check gets a fresh [`FastPathHarness`]: the fast path plus the
//! underlying ports, through which it inspects what the fast path wrote.
//! [`fast_path_conformance!`](crate::fast_path_conformance) generates one
//! `#[tokio::test]` per check from a harness expression.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use memora_core::PortResult;
use memora_core::domain::MemoryTracker;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::{JobId, QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::{
    BoardCredit, BoardEntry, DeadLetter, DueCache, DueSlice, FastCommit, FastCommitOutcome,
    JobStatus, LeaderboardCache, PersistJob, PersistenceQueue, ReviewFastPath, ServeTerms,
    ServedLedger, Serving, ServingClaim,
};

use super::cache::{BuildBoard, q, row, season, subj, t0, user};
use super::queue::record;
use super::served::receipt;

// ───────────────────────── harness ─────────────────────────

/// A fast path and the ports it writes through, to look at what it did.
#[async_trait]
pub trait FastPathHarness: Send + Sync + 'static {
    /// The fast path under test.
    fn fast(&self) -> Arc<dyn ReviewFastPath>;
    /// The due cache it reads and writes.
    fn cache(&self) -> Arc<dyn DueCache>;
    /// The served ledger it records servings and claims in.
    fn ledger(&self) -> Arc<dyn ServedLedger>;
    /// The queue it enqueues jobs on.
    fn queue(&self) -> Arc<dyn PersistenceQueue>;
    /// The leaderboard it credits, if it has one.
    fn board(&self) -> Option<Arc<dyn BuildBoard>>;
    /// Every job enqueued on [`FastPathHarness::queue`] so far, oldest
    /// first, as the queue holds it (decoded back for a real queue).
    async fn enqueued(&self) -> Vec<PersistJob>;
    /// Deletes what the checks wrote (keys of a real server).
    async fn teardown(&self);
}

/// A [`PersistenceQueue`] that delegates to another and keeps a copy of
/// every job it enqueued successfully (the reference queue persists
/// synchronously, so it has no pending jobs to read back).
pub struct RecordingQueue {
    inner: Arc<dyn PersistenceQueue>,
    jobs: Mutex<Vec<PersistJob>>,
}

impl RecordingQueue {
    /// Records the jobs enqueued on `inner`.
    pub fn new(inner: Arc<dyn PersistenceQueue>) -> Self {
        RecordingQueue {
            inner,
            jobs: Mutex::new(Vec::new()),
        }
    }
    /// The jobs enqueued so far.
    pub fn jobs(&self) -> Vec<PersistJob> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl PersistenceQueue for RecordingQueue {
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus> {
        let st = self.inner.enqueue(job).await?;
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job.clone());
        Ok(st)
    }
    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>> {
        self.inner.status(job).await
    }
    async fn record_status(&self, job: &JobId, status: &JobStatus) -> PortResult<()> {
        self.inner.record_status(job, status).await
    }
    async fn depth(&self) -> PortResult<u64> {
        self.inner.depth().await
    }
    async fn oldest_unpersisted(&self) -> PortResult<Option<DateTime<Utc>>> {
        self.inner.oldest_unpersisted().await
    }
    async fn dead_letters<'a>(
        &self,
        after: Option<&'a str>,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        self.inner.dead_letters(after, limit).await
    }
    async fn dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        self.inner.dead_letter(id).await
    }
    async fn dead_letter_count(&self) -> PortResult<u64> {
        self.inner.dead_letter_count().await
    }
    async fn replay_dead_letter(&self, id: &str) -> PortResult<bool> {
        self.inner.replay_dead_letter(id).await
    }
    async fn discard_dead_letter(&self, id: &str) -> PortResult<bool> {
        self.inner.discard_dead_letter(id).await
    }
}

/// An in-memory leaderboard with the Redis board's rules (XP added to an
/// unbuilt board is dropped; order XP desc then user; XP ≤ 0 unranked), for
/// the reference fast path.
#[derive(Default)]
pub struct MemoryBoard {
    boards: Mutex<HashMap<BoardKey, BTreeMap<UserId, i64>>>,
}

/// (subject board or global, period bucket).
type BoardKey = (Option<SubjectId>, String);

impl MemoryBoard {
    fn sorted(&self, subject: Option<&SubjectId>, bucket: &str) -> Option<Vec<BoardEntry>> {
        let boards = self.boards.lock().unwrap_or_else(|p| p.into_inner());
        let b = boards.get(&(subject.cloned(), bucket.to_owned()))?;
        let mut v: Vec<BoardEntry> = b
            .iter()
            .filter(|(_, xp)| **xp > 0)
            .map(|(u, xp)| BoardEntry {
                user: u.clone(),
                xp: *xp,
            })
            .collect();
        v.sort_by(|a, b| (-a.xp, &a.user).cmp(&(-b.xp, &b.user)));
        Some(v)
    }
}

#[async_trait]
impl LeaderboardCache for MemoryBoard {
    async fn add_xp(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        day: NaiveDate,
        xp: i64,
    ) -> PortResult<()> {
        let mut boards = self.boards.lock().unwrap_or_else(|p| p.into_inner());
        for scope in std::iter::once(None).chain(subject.map(Some)) {
            for p in [
                LeaderboardPeriod::Daily,
                LeaderboardPeriod::Weekly,
                LeaderboardPeriod::Monthly,
                LeaderboardPeriod::AllTime,
            ] {
                if let Some(b) = boards.get_mut(&(scope.cloned(), p.bucket(day))) {
                    *b.entry(user.clone()).or_default() += xp;
                }
            }
        }
        Ok(())
    }
    async fn top(
        &self,
        subject: Option<&SubjectId>,
        bucket: &str,
        limit: usize,
    ) -> PortResult<Option<Vec<BoardEntry>>> {
        Ok(self
            .sorted(subject, bucket)
            .map(|v| v.into_iter().take(limit).collect()))
    }
    async fn rank(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        bucket: &str,
    ) -> PortResult<Option<(i64, Option<u64>)>> {
        let Some(v) = self.sorted(subject, bucket) else {
            return Ok(None);
        };
        Ok(Some(match v.iter().position(|e| &e.user == user) {
            Some(i) => (v[i].xp, Some(i as u64 + 1)),
            None => (0, None),
        }))
    }
}

#[async_trait]
impl BuildBoard for MemoryBoard {
    async fn build(&self, subject: Option<&SubjectId>, bucket: &str, entries: &[BoardEntry]) {
        self.boards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (subject.cloned(), bucket.to_owned()),
                entries
                    .iter()
                    .filter(|e| e.xp > 0)
                    .map(|e| (e.user.clone(), e.xp))
                    .collect(),
            );
    }
}

// ───────────────────────── fixtures ─────────────────────────

/// Request time of the checks: `t0` plus 123 456 µs (the ledger keeps
/// microseconds exactly).
pub fn now() -> DateTime<Utc> {
    t0() + Duration::microseconds(123_456)
}

/// `now + s` seconds.
pub fn at(s: i64) -> DateTime<Utc> {
    now() + Duration::seconds(s)
}

const ANSWERABLE: i64 = 600;
const RETAIN: i64 = 86_400;

/// Serving terms at `at(secs)`: item keys `q:<question>`, answerable ten
/// minutes, kept a day.
pub fn terms(secs: i64) -> ServeTerms {
    ServeTerms {
        item_prefix: "q:".to_owned(),
        served_at: at(secs),
        answerable_until: at(secs + ANSWERABLE),
        retain_until: at(secs + RETAIN),
    }
}

/// The entry `terms(secs)` records.
pub fn fresh(secs: i64) -> Serving {
    Serving {
        served_at: at(secs),
        answerable_until: at(secs + ANSWERABLE),
        retain_until: at(secs + RETAIN),
        answered: false,
        last_receipt: None,
        xp_day: None,
    }
}

/// The learner day of the checks.
pub fn today() -> NaiveDate {
    t0().date_naive()
}

fn item_keys(qs: &[&str]) -> Vec<String> {
    qs.iter().map(|x| format!("q:{x}")).collect()
}

fn qids(qs: &[&str]) -> Vec<QuestionId> {
    qs.iter().map(|x| q(x)).collect()
}

/// A claim on `q:<question>` served at `served_at`, review `r-<question>`.
pub fn claim(question: &str, served_at: DateTime<Utc>) -> ServingClaim {
    ServingClaim {
        item: format!("q:{question}"),
        served_at,
        receipt: receipt(&format!("r-{question}"), 12, 30),
        xp_day: Some(today()),
        prev_xp_day: None,
    }
}

/// The schedule of the checks: `first` (due 60 min ago), `a` and `b` (30
/// min ago), `late` (due now, history), `future` (in a minute); all math
/// unless said, last reviewed two hours before `t0`.
pub fn schedule(u: &UserId, s: &SeasonId) -> Vec<MemoryTracker> {
    vec![
        row(u, s, "first", Some("math"), -60, Some(-120)),
        row(u, s, "a", Some("math"), -30, Some(-120)),
        row(u, s, "b", Some("math"), -30, Some(-120)),
        row(u, s, "late", Some("history"), 0, Some(-120)),
        row(u, s, "future", Some("math"), 1, Some(-120)),
    ]
}

/// `r` reviewed at `t0 + reviewed_min`, next due at `t0 + due_min`.
pub fn answered(mut r: MemoryTracker, reviewed_min: i64, due_min: i64) -> MemoryTracker {
    r.state.last_review = Some(t0() + Duration::minutes(reviewed_min));
    r.state.due = t0() + Duration::minutes(due_min);
    r.state.reps += 1;
    r
}

/// A job whose records are `rows` (review ids `r-<question>`).
pub fn job_of(id: &str, rows: &[MemoryTracker]) -> PersistJob {
    PersistJob {
        id: JobId::new(id).expect("job id"),
        records: rows
            .iter()
            .map(|r| {
                let mut rec = record(
                    &r.key.user,
                    &r.key.season,
                    r.key.question.as_str(),
                    1,
                    &format!("r-{}", r.key.question.as_str()),
                );
                rec.tracker = r.clone();
                rec.log.state_after = r.state.clone();
                rec
            })
            .collect(),
    }
}

/// Builds the global and math boards of every period of [`today`], bob at
/// 5 XP on each.
async fn build_boards(b: &dyn BuildBoard) {
    let bob = [BoardEntry {
        user: user("bob"),
        xp: 5,
    }];
    for p in periods() {
        b.build(None, &p.bucket(today()), &bob).await;
        b.build(Some(&subj("math")), &p.bucket(today()), &bob).await;
    }
}

fn periods() -> [LeaderboardPeriod; 4] {
    [
        LeaderboardPeriod::Daily,
        LeaderboardPeriod::Weekly,
        LeaderboardPeriod::Monthly,
        LeaderboardPeriod::AllTime,
    ]
}

/// Everything a commit may change, read through the general ports.
#[derive(Debug, PartialEq)]
struct Snapshot {
    servings: Vec<Option<Serving>>,
    states: Vec<Option<MemoryTracker>>,
    due: Option<DueSlice>,
    jobs: usize,
    boards: Vec<Option<Vec<BoardEntry>>>,
}

async fn snapshot(h: &dyn FastPathHarness, u: &UserId, s: &SeasonId, qs: &[&str]) -> Snapshot {
    let mut boards = Vec::new();
    if let Some(b) = h.board() {
        for p in periods() {
            for scope in [None, Some(subj("math"))] {
                boards.push(
                    b.top(scope.as_ref(), &p.bucket(today()), 10)
                        .await
                        .expect("top"),
                );
            }
        }
    }
    Snapshot {
        servings: h
            .ledger()
            .lookup(u, s, &item_keys(qs), at(1))
            .await
            .expect("lookup"),
        states: h.cache().states(u, s, &qids(qs)).await.expect("states"),
        due: h
            .cache()
            .due(u, s, None, t0() + Duration::days(3), 100)
            .await
            .expect("due"),
        jobs: h.enqueued().await.len(),
        boards,
    }
}

/// A commit of `claims` and `rows` at `at(40)`, with job `job` holding
/// `rows`, 7 XP for the math board and the given count.
pub fn commit_of(
    claims: Vec<ServingClaim>,
    rows: Vec<MemoryTracker>,
    job: &str,
    count_due: Option<Option<SubjectId>>,
) -> FastCommit {
    FastCommit {
        claims,
        job: job_of(job, &rows),
        rows,
        board: Some(BoardCredit {
            subject: Some(subj("math")),
            day: today(),
            xp: 7,
        }),
        count_due,
        now: at(40),
    }
}

// ───────────────────────── checks ─────────────────────────

/// An absent schedule: `due_and_serve` is `None` and records nothing;
/// `prepare_submit` has no states (and no horizon).
pub async fn absent_schedule_serves_nothing(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let f = h.fast();
    for subject in [None, Some(subj("math"))] {
        let got = f
            .due_and_serve(&u, &s, subject.as_ref(), now(), 10, &terms(0))
            .await
            .expect("due_and_serve");
        assert_eq!(got, None);
    }
    let v = f
        .prepare_submit(&u, &s, &item_keys(&["a", "b"]), &qids(&["a"]), at(1))
        .await
        .expect("prepare");
    assert_eq!(v.servings, vec![None, None], "nothing was recorded");
    assert_eq!(v.states, None);
    assert_eq!(v.horizon, None);
    // Nothing asked, nothing answered.
    let v = f
        .prepare_submit(&u, &s, &[], &[], at(1))
        .await
        .expect("prepare");
    assert!(v.servings.is_empty());
    assert_eq!(v.states, None);
}

/// `due_and_serve` answers as `DueCache::due` (order, limit, total, subject
/// filter) and records exactly the returned items as served per the terms.
pub async fn serves_due_items_and_records_them(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c, l) = (h.fast(), h.cache(), h.ledger());
    c.load(&u, &s, &schedule(&u, &s)).await.expect("load");
    let expected = c
        .due(&u, &s, None, now(), 2)
        .await
        .expect("due")
        .expect("present");
    let got = f
        .due_and_serve(&u, &s, None, now(), 2, &terms(0))
        .await
        .expect("due_and_serve")
        .expect("present");
    assert_eq!(got, expected);
    assert_eq!(
        got.items,
        qids(&["first", "a"]),
        "due order, then question id"
    );
    assert_eq!(got.total_due, 4, "late is due exactly now; future is not");
    let seen = l
        .lookup(&u, &s, &item_keys(&["first", "a", "b", "future"]), at(1))
        .await
        .expect("lookup");
    assert_eq!(seen, vec![Some(fresh(0)), Some(fresh(0)), None, None]);
    // Subject filter, later serving: only history's item, recorded anew.
    let history = subj("history");
    let expected = c
        .due(&u, &s, Some(&history), now(), 10)
        .await
        .expect("due")
        .expect("present");
    let got = f
        .due_and_serve(&u, &s, Some(&history), now(), 10, &terms(5))
        .await
        .expect("due_and_serve")
        .expect("present");
    assert_eq!(got, expected);
    assert_eq!(got.items, qids(&["late"]));
    let seen = l
        .lookup(&u, &s, &item_keys(&["late", "first"]), at(6))
        .await
        .expect("lookup");
    assert_eq!(seen, vec![Some(fresh(5)), Some(fresh(0))]);
    // Nothing due yet: a present, empty answer, and nothing recorded.
    let early = t0() - Duration::days(1);
    let got = f
        .due_and_serve(&u, &s, None, early, 10, &terms(7))
        .await
        .expect("due_and_serve")
        .expect("present");
    assert_eq!(got.items, Vec::<QuestionId>::new());
    assert_eq!(got.total_due, 0);
    assert_eq!(
        l.lookup(&u, &s, &item_keys(&["b"]), at(8))
            .await
            .expect("lookup"),
        vec![None]
    );
    // A limit of zero counts without serving.
    let got = f
        .due_and_serve(&u, &s, None, now(), 0, &terms(9))
        .await
        .expect("due_and_serve")
        .expect("present");
    assert_eq!((got.items.len(), got.total_due), (0, 4));
    assert_eq!(
        l.lookup(&u, &s, &item_keys(&["b"]), at(10))
            .await
            .expect("lookup"),
        vec![None]
    );
}

/// Re-serving through the fast path keeps the receipt and `xp_day` of an
/// answered entry (as `record_served` does) and reopens it.
pub async fn reserving_keeps_receipt(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c, l) = (h.fast(), h.cache(), h.ledger());
    c.load(&u, &s, &schedule(&u, &s)).await.expect("load");
    f.due_and_serve(&u, &s, None, now(), 1, &terms(0))
        .await
        .expect("due_and_serve");
    assert!(
        l.commit(&u, &s, &[claim("first", at(0))])
            .await
            .expect("commit")
    );
    f.due_and_serve(&u, &s, None, now(), 1, &terms(100))
        .await
        .expect("due_and_serve");
    let e = l
        .lookup(&u, &s, &item_keys(&["first"]), at(101))
        .await
        .expect("lookup");
    assert_eq!(
        e,
        vec![Some(Serving {
            last_receipt: Some(receipt("r-first", 12, 30)),
            xp_day: Some(today()),
            ..fresh(100)
        })]
    );
}

/// `prepare_submit` reads the ledger entries (past `retain_until` at `now`:
/// absent) and the cached rows, in the asked order.
pub async fn prepare_sees_servings_and_states(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c) = (h.fast(), h.cache());
    let rows = schedule(&u, &s);
    c.load(&u, &s, &rows).await.expect("load");
    f.due_and_serve(&u, &s, None, now(), 2, &terms(0))
        .await
        .expect("due_and_serve");
    let v = f
        .prepare_submit(
            &u,
            &s,
            &item_keys(&["a", "nope", "first"]),
            &qids(&["future", "nope", "a"]),
            at(1),
        )
        .await
        .expect("prepare");
    assert_eq!(v.servings, vec![Some(fresh(0)), None, Some(fresh(0))]);
    assert_eq!(
        v.states,
        Some(vec![Some(rows[4].clone()), None, Some(rows[1].clone())])
    );
    assert_eq!(v.horizon, None, "this schedule holds every row");
    // Past retain_until the entries read as absent; retain_until is
    // inclusive.
    let v = f
        .prepare_submit(&u, &s, &item_keys(&["a"]), &[], at(RETAIN))
        .await
        .expect("prepare");
    assert_eq!(v.servings, vec![Some(fresh(0))]);
    let v = f
        .prepare_submit(
            &u,
            &s,
            &item_keys(&["a"]),
            &[],
            at(RETAIN) + Duration::microseconds(1),
        )
        .await
        .expect("prepare");
    assert_eq!(v.servings, vec![None]);
    assert_eq!(v.states, Some(vec![]), "present, nothing asked");
}

/// A claim that does not match (stale `served_at`, unknown item, already
/// answered) makes the commit `Lost`, and nothing changes: ledger,
/// schedule, queue, boards.
pub async fn commit_lost_changes_nothing(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c) = (h.fast(), h.cache());
    let rows = schedule(&u, &s);
    c.load(&u, &s, &rows).await.expect("load");
    if let Some(b) = h.board() {
        build_boards(b.as_ref()).await;
    }
    f.due_and_serve(&u, &s, None, now(), 3, &terms(0))
        .await
        .expect("due_and_serve");
    let qs = ["first", "a", "b", "new"];
    let new_rows = vec![
        answered(rows[0].clone(), 1, 1440),
        answered(rows[1].clone(), 1, 1440),
        row(&u, &s, "new", Some("math"), -5, Some(1)),
    ];
    let before = snapshot(h.as_ref(), &u, &s, &qs).await;
    let mut stale = claim("a", at(0));
    stale.served_at = at(0) - Duration::microseconds(1);
    let attempts = [
        vec![claim("first", at(0)), stale],
        vec![claim("first", at(0)), claim("never-served", at(0))],
    ];
    for claims in attempts {
        let out = f
            .commit_submit(
                &u,
                &s,
                &commit_of(claims, new_rows.clone(), "job-lost", Some(None)),
            )
            .await
            .expect("commit");
        assert_eq!(out, FastCommitOutcome::Lost);
        assert_eq!(snapshot(h.as_ref(), &u, &s, &qs).await, before);
    }
    // "first" answered once; a second claim on it loses, with the others.
    let once = f
        .commit_submit(
            &u,
            &s,
            &commit_of(vec![claim("first", at(0))], vec![], "job-once", None),
        )
        .await
        .expect("commit");
    assert!(
        matches!(once, FastCommitOutcome::Committed { .. }),
        "{once:?}"
    );
    let middle = snapshot(h.as_ref(), &u, &s, &qs).await;
    assert_eq!(middle.jobs, before.jobs + 1);
    let out = f
        .commit_submit(
            &u,
            &s,
            &commit_of(
                vec![claim("a", at(0)), claim("first", at(0))],
                new_rows,
                "job-again",
                Some(None),
            ),
        )
        .await
        .expect("commit");
    assert_eq!(out, FastCommitOutcome::Lost);
    assert_eq!(snapshot(h.as_ref(), &u, &s, &qs).await, middle);
}

/// A committed submission writes the claims, the rows (never over a newer
/// cached row), enqueues exactly its job, credits the boards, and counts
/// the due items after the write.
pub async fn commit_writes_claims_rows_job_and_board(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c, l) = (h.fast(), h.cache(), h.ledger());
    let rows = schedule(&u, &s);
    c.load(&u, &s, &rows).await.expect("load");
    if let Some(b) = h.board() {
        build_boards(b.as_ref()).await;
    }
    f.due_and_serve(&u, &s, None, now(), 3, &terms(0))
        .await
        .expect("due_and_serve");
    // b's cached row is newer than the one submitted: it stays.
    let newer_b = answered(rows[2].clone(), 10, 2000);
    c.put(&u, &s, std::slice::from_ref(&newer_b))
        .await
        .expect("put");
    let new_rows = vec![
        answered(rows[0].clone(), 1, 1440),
        answered(rows[1].clone(), 1, 1440),
        answered(rows[2].clone(), 1, 1440),
        row(&u, &s, "new", Some("math"), -5, Some(1)),
    ];
    let jobs_before = h.enqueued().await.len();
    let commit = commit_of(
        vec![claim("first", at(0)), claim("a", at(0)), claim("b", at(0))],
        new_rows.clone(),
        "job-1",
        Some(None),
    );
    let out = f.commit_submit(&u, &s, &commit).await.expect("commit");
    let FastCommitOutcome::Committed {
        status,
        total_due,
        mastery: _,
        board_credited,
    } = out
    else {
        panic!("expected a commit, got {out:?}");
    };
    assert!(
        matches!(status, JobStatus::Queued | JobStatus::Done),
        "{status:?}"
    );
    assert_eq!(
        h.queue().status(&commit.job.id).await.expect("status"),
        Some(status)
    );
    // Claims: answered, with their receipts.
    let seen = l
        .lookup(&u, &s, &item_keys(&["first", "a", "b"]), at(41))
        .await
        .expect("lookup");
    for (e, qn) in seen.iter().zip(["first", "a", "b"]) {
        let e = e.as_ref().expect("entry");
        assert!(e.answered, "{qn}");
        assert_eq!(
            e.last_receipt,
            Some(receipt(&format!("r-{qn}"), 12, 30)),
            "{qn}"
        );
        assert_eq!(e.xp_day, Some(today()));
        assert_eq!(e.served_at, at(0));
    }
    // Rows: newer wins.
    let states = c
        .states(&u, &s, &qids(&["first", "a", "b", "new", "late"]))
        .await
        .expect("states");
    assert_eq!(
        states,
        vec![
            Some(new_rows[0].clone()),
            Some(new_rows[1].clone()),
            Some(newer_b),
            Some(new_rows[3].clone()),
            Some(rows[3].clone()),
        ]
    );
    // Due count after the write, at the commit's time: late and new.
    let after = c
        .due(&u, &s, None, commit.now, 0)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(after.total_due, 2);
    assert_eq!(total_due, Some(after.total_due));
    // Exactly one job, this one.
    let jobs = h.enqueued().await;
    assert_eq!(jobs.len(), jobs_before + 1);
    assert_eq!(jobs.last(), Some(&commit.job));
    // Boards: 7 XP on every period of the global and the math board.
    match h.board() {
        Some(b) => {
            assert!(board_credited);
            for p in periods() {
                for scope in [None, Some(subj("math"))] {
                    let top = b
                        .top(scope.as_ref(), &p.bucket(today()), 10)
                        .await
                        .expect("top")
                        .expect("built");
                    assert_eq!(
                        top,
                        vec![
                            BoardEntry {
                                user: u.clone(),
                                xp: 7
                            },
                            BoardEntry {
                                user: user("bob"),
                                xp: 5
                            }
                        ],
                        "{scope:?} {}",
                        p.bucket(today())
                    );
                }
            }
        }
        None => assert!(!board_credited),
    }
}

/// The count honours the subject filter and is skipped when not asked;
/// without a board credit nothing is credited.
pub async fn commit_counts_per_subject(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c) = (h.fast(), h.cache());
    let rows = schedule(&u, &s);
    c.load(&u, &s, &rows).await.expect("load");
    let mut commit = commit_of(
        vec![],
        vec![answered(rows[0].clone(), 1, 1440)],
        "job-math",
        Some(Some(subj("math"))),
    );
    commit.board = None;
    let out = f.commit_submit(&u, &s, &commit).await.expect("commit");
    let math = c
        .due(&u, &s, Some(&subj("math")), commit.now, 0)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(math.total_due, 2, "a and b; first is answered");
    assert!(
        matches!(
            out,
            FastCommitOutcome::Committed {
                total_due: Some(2),
                board_credited: false,
                ..
            }
        ),
        "{out:?}"
    );
    let mut commit = commit_of(vec![], vec![], "job-none", None);
    commit.board = None;
    let out = f.commit_submit(&u, &s, &commit).await.expect("commit");
    assert!(
        matches!(
            out,
            FastCommitOutcome::Committed {
                total_due: None,
                board_credited: false,
                ..
            }
        ),
        "{out:?}"
    );
}

/// With the schedule absent a commit still binds and enqueues, but writes
/// no row (no partial schedule appears) and counts nothing.
pub async fn commit_on_absent_schedule_writes_no_rows(h: Arc<dyn FastPathHarness>) {
    let (u, s) = (user("alice"), season(2026));
    let (f, c, l) = (h.fast(), h.cache(), h.ledger());
    let t = terms(0);
    l.record_served(
        &u,
        &s,
        &item_keys(&["a"]),
        t.served_at,
        t.answerable_until,
        t.retain_until,
    )
    .await
    .expect("record");
    let r = row(&u, &s, "a", Some("math"), 1440, Some(1));
    let jobs_before = h.enqueued().await.len();
    let commit = commit_of(vec![claim("a", at(0))], vec![r], "job-absent", Some(None));
    let out = f.commit_submit(&u, &s, &commit).await.expect("commit");
    assert!(
        matches!(
            out,
            FastCommitOutcome::Committed {
                total_due: None,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(c.due(&u, &s, None, now(), 10).await.expect("due"), None);
    assert_eq!(
        c.states(&u, &s, &qids(&["a"])).await.expect("states"),
        vec![None]
    );
    assert_eq!(h.enqueued().await.len(), jobs_before + 1);
    let e = l
        .lookup(&u, &s, &item_keys(&["a"]), at(41))
        .await
        .expect("lookup");
    assert!(e[0].as_ref().is_some_and(|e| e.answered));
}

/// Users and seasons stay apart: serving and committing for one never
/// shows in another's ledger or schedule.
pub async fn users_and_seasons_are_isolated(h: Arc<dyn FastPathHarness>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let (s26, s27) = (season(2026), season(2027));
    let (f, c, l) = (h.fast(), h.cache(), h.ledger());
    c.load(&alice, &s26, &schedule(&alice, &s26))
        .await
        .expect("load");
    c.load(&bob, &s26, &[]).await.expect("load");
    f.due_and_serve(&alice, &s26, None, now(), 10, &terms(0))
        .await
        .expect("due_and_serve");
    for (u, s) in [(&bob, &s26), (&alice, &s27)] {
        assert_eq!(
            l.lookup(u, s, &item_keys(&["a"]), at(1))
                .await
                .expect("lookup"),
            vec![None]
        );
        let out = f
            .commit_submit(
                u,
                s,
                &commit_of(vec![claim("a", at(0))], vec![], "job-x", None),
            )
            .await
            .expect("commit");
        assert_eq!(out, FastCommitOutcome::Lost, "{u} {s}");
    }
    let got = f
        .due_and_serve(&bob, &s26, None, now(), 10, &terms(2))
        .await
        .expect("due_and_serve")
        .expect("present");
    assert_eq!((got.items.len(), got.total_due), (0, 0));
}

/// Generates one `#[tokio::test]` per [`ReviewFastPath`] check. `$setup` is
/// an async expression yielding `Option<H>` (None = skipped), `H:
/// FastPathHarness`.
#[macro_export]
macro_rules! fast_path_conformance {
    ($setup:expr) => {
        $crate::fast_path_conformance!(@each $setup;
            absent_schedule_serves_nothing, serves_due_items_and_records_them,
            reserving_keeps_receipt, prepare_sees_servings_and_states,
            commit_lost_changes_nothing, commit_writes_claims_rows_job_and_board,
            commit_counts_per_subject, commit_on_absent_schedule_writes_no_rows,
            users_and_seasons_are_isolated);
    };
    (@each $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(h) = $setup.await else { return };
                let h: std::sync::Arc<dyn $crate::conformance::fast_path::FastPathHarness> =
                    std::sync::Arc::new(h);
                let run = tokio::spawn({
                    let h = h.clone();
                    async move { $crate::conformance::fast_path::$name(h).await }
                })
                .await;
                h.teardown().await;
                if let Err(e) = run {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        )*
    };
}
