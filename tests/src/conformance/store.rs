//! Conformance suite of the store ports ([`ContentStore`], [`SeasonStore`],
//! [`MemoryStore`], [`PlayerStore`], [`CommerceStore`], [`QuestStore`],
//! [`AuthStore`], [`AuditStore`], [`JobLock`]): the behaviour every adapter
//! must show, pinned once and run against the in-memory reference and
//! PostgreSQL.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation.
//! [`store_conformance!`](crate::store_conformance) generates one
//! `#[tokio::test]` per check from a harness expression. Times are whole
//! seconds (PostgreSQL keeps microseconds, Rust nanoseconds).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;
use memora_core::srs::{CardState, Grade as SrsGrade, Phase, SchedulerKind};

/// The store ports of one adapter instance.
#[derive(Clone)]
pub struct Stores {
    /// Content.
    pub content: Arc<dyn ContentStore>,
    /// Seasons.
    pub seasons: Arc<dyn SeasonStore>,
    /// Memory trackers and review log.
    pub memory: Arc<dyn MemoryStore>,
    /// Players.
    pub players: Arc<dyn PlayerStore>,
    /// Commerce.
    pub commerce: Arc<dyn CommerceStore>,
    /// Quests.
    pub quests: Arc<dyn QuestStore>,
    /// Auth.
    pub auth: Arc<dyn AuthStore>,
    /// Audit.
    pub audit: Arc<dyn AuditStore>,
    /// Job lock of this "process".
    pub locks: Arc<dyn JobLock>,
    /// Job lock of a second "process" sharing the same data.
    pub other_locks: Arc<dyn JobLock>,
}

impl Stores {
    /// Every store port from one object implementing them all.
    pub fn from_backend<B>(b: Arc<B>, other_locks: Arc<dyn JobLock>) -> Self
    where
        B: ContentStore
            + SeasonStore
            + MemoryStore
            + PlayerStore
            + CommerceStore
            + QuestStore
            + AuthStore
            + AuditStore
            + JobLock
            + 'static,
    {
        Stores {
            content: b.clone(),
            seasons: b.clone(),
            memory: b.clone(),
            players: b.clone(),
            commerce: b.clone(),
            quests: b.clone(),
            auth: b.clone(),
            audit: b.clone(),
            locks: b,
            other_locks,
        }
    }
}

// ───────────────────────── fixtures ─────────────────────────

/// Reference "now" of the checks.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}
/// `t0 + h` hours.
pub fn at(hours: i64) -> DateTime<Utc> {
    t0() + Duration::hours(hours)
}
/// A user id.
pub fn user(s: &str) -> UserId {
    UserId::new(s).expect("user id")
}
/// A season id `SEASON-<year>`.
pub fn season(year: u32) -> SeasonId {
    SeasonId::new(format!("SEASON-{year}")).expect("season id")
}
/// A question id.
pub fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).expect("question id")
}
fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).expect("subject")
}
fn topic(s: &str) -> TopicId {
    TopicId::new(s).expect("topic")
}
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("day")
}

/// Creates seasons `SEASON-<year>` (inactive, defaults).
pub async fn make_seasons(s: &Stores, years: &[u32]) {
    for (i, y) in years.iter().enumerate() {
        let start = NaiveDate::from_ymd_opt(*y as i32, 1, 1).expect("date");
        let mut se = Season::new(
            season(*y),
            format!("Season {y}"),
            start,
            start + Duration::days(300),
        )
        .expect("season");
        se.desired_retention = 0.9 - (i as f64) * 0.01;
        s.seasons.create_season(&se).await.expect("create season");
    }
}

/// A ladder tracker at `level` (0 = never scheduled).
#[allow(clippy::too_many_arguments)]
pub fn tracker(
    u: &str,
    y: u32,
    question: &str,
    level: u8,
    due: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    subj: Option<&str>,
    top: Option<&str>,
) -> MemoryTracker {
    MemoryTracker {
        key: TrackerKey {
            user: user(u),
            season: season(y),
            question: q(question),
        },
        subject: subj.map(subject),
        topic: top.map(topic),
        state: CardState {
            kind: SchedulerKind::Ladder,
            phase: if level == 0 {
                Phase::New
            } else {
                Phase::Review
            },
            step: 0,
            stability: f64::from(level),
            difficulty: 0.0,
            reps: u32::from(level),
            lapses: 0,
            last_review: last,
            due,
            scheduled_days: u32::from(level) * 2,
        },
    }
}

/// The record persisting `t` under review id `rid`.
pub fn record(t: &MemoryTracker, rid: &str) -> ReviewRecord {
    ReviewRecord {
        tracker: t.clone(),
        log: ReviewLogEntry {
            review_id: ReviewId::new(rid).expect("review id"),
            key: t.key.clone(),
            source: ReviewSource::Review,
            grade: SrsGrade::Good,
            is_correct: true,
            duration_ms: 1500,
            attempts: 1,
            reviewed_at: t.state.last_review.unwrap_or_else(t0),
            elapsed_days: 1,
            scheduler: SchedulerKind::Ladder,
            state_after: t.state.clone(),
        },
    }
}

async fn persist(s: &Stores, ts: &[MemoryTracker]) -> PersistOutcome {
    let recs: Vec<ReviewRecord> = ts
        .iter()
        .map(|t| {
            record(
                t,
                &format!("r-{}-{}-{}", t.key.user, t.key.question, t.state.reps),
            )
        })
        .collect();
    s.memory.persist_batch(&recs).await.expect("persist")
}

fn qids(v: &[MemoryTracker]) -> Vec<String> {
    v.iter().map(|t| t.key.question.to_string()).collect()
}

#[allow(clippy::too_many_arguments)]
fn session(
    id: &str,
    u: &str,
    kind: SessionKind,
    lesson: Option<&str>,
    subj: Option<&str>,
    xp: i64,
    completed: bool,
    d: NaiveDate,
) -> GameplaySession {
    GameplaySession {
        id: SessionId::new(id).expect("session id"),
        user: user(u),
        kind,
        lesson: lesson.map(|l| LessonId::new(l).expect("lesson")),
        subject: subj.map(subject),
        topic: None,
        xp_earned: xp,
        score: 80,
        completed,
        created_at: t0(),
        local_day: d,
        raw_data: serde_json::json!({"k": 1}),
    }
}

// ───────────────────────── seasons ─────────────────────────

/// Seasons: create (conflict on duplicates), list newest first, update,
/// exclusive activation; unknown seasons are rejected.
pub async fn seasons_lifecycle(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let list = s.seasons.list_seasons().await.expect("list");
    assert_eq!(
        list.iter().map(|x| x.id.to_string()).collect::<Vec<_>>(),
        vec!["SEASON-2026", "SEASON-2025"]
    );
    let mut dup = list[0].clone();
    dup.title = "again".into();
    assert!(matches!(
        s.seasons.create_season(&dup).await,
        Err(PortError::Conflict(_))
    ));
    let mut upd = list[1].clone();
    upd.title = "renamed".into();
    upd.scheduler = SchedulerKind::Fsrs6;
    s.seasons.update_season(&upd).await.expect("update");
    assert_eq!(
        s.seasons.get_season(&season(2025)).await.expect("get"),
        Some(upd)
    );
    let mut ghost = list[0].clone();
    ghost.id = season(2030);
    assert!(matches!(
        s.seasons.update_season(&ghost).await,
        Err(PortError::Rejected(_))
    ));
    s.seasons
        .activate_season(&season(2025))
        .await
        .expect("activate");
    s.seasons
        .activate_season(&season(2026))
        .await
        .expect("activate");
    let active: Vec<String> = s
        .seasons
        .list_seasons()
        .await
        .expect("list")
        .into_iter()
        .filter(|x| x.is_active)
        .map(|x| x.id.to_string())
        .collect();
    assert_eq!(active, vec!["SEASON-2026"]);
    assert!(matches!(
        s.seasons.activate_season(&season(2030)).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        s.seasons.get_season(&season(2030)).await.expect("get"),
        None
    );
}

// ───────────────────────── memory ─────────────────────────

/// Replaying a batch changes nothing; review ids are logged once.
pub async fn persist_is_idempotent(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let ts = [
        tracker(
            "u1",
            2026,
            "st1:0",
            1,
            at(24),
            Some(at(0)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2026,
            "st1:1",
            2,
            at(48),
            Some(at(0)),
            Some("math"),
            Some("t1"),
        ),
        tracker("u2", 2026, "st2", 3, at(72), Some(at(0)), None, None),
    ];
    let recs: Vec<ReviewRecord> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| record(t, &format!("rev-{i}")))
        .collect();
    let first = s.memory.persist_batch(&recs).await.expect("persist");
    assert_eq!(
        first,
        PersistOutcome {
            logs_inserted: 3,
            trackers_written: 3
        }
    );
    let again = s.memory.persist_batch(&recs).await.expect("replay");
    assert_eq!(
        again,
        PersistOutcome {
            logs_inserted: 0,
            trackers_written: 0
        }
    );
    assert_eq!(
        s.memory.persist_batch(&[]).await.expect("empty"),
        PersistOutcome::default()
    );
    assert!(
        s.memory
            .has_review(&ReviewId::new("rev-1").expect("id"))
            .await
            .expect("has")
    );
    assert!(
        !s.memory
            .has_review(&ReviewId::new("rev-9").expect("id"))
            .await
            .expect("has")
    );
    assert_eq!(s.memory.count_reviews(&user("u1")).await.expect("count"), 2);
    assert_eq!(
        s.memory.count_season(&season(2026)).await.expect("count"),
        3
    );
    let got = s
        .memory
        .get_trackers(
            &user("u1"),
            &season(2026),
            &[q("st1:1"), q("nope"), q("st1:0")],
        )
        .await
        .expect("get");
    assert_eq!(got, vec![ts[1].clone(), ts[0].clone()]);
    let log = s
        .memory
        .review_log(&user("u1"), None, 10)
        .await
        .expect("log");
    assert_eq!(log, vec![recs[0].log.clone(), recs[1].log.clone()]);
}

/// A newer state replaces a row, an older one never does (late replays).
pub async fn persist_newer_wins(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let old = tracker("u1", 2026, "st1", 1, at(24), Some(at(0)), None, None);
    let new = tracker("u1", 2026, "st1", 2, at(96), Some(at(10)), None, None);
    s.memory
        .persist_batch(&[record(&new, "r-new")])
        .await
        .expect("new");
    let late = s
        .memory
        .persist_batch(&[record(&old, "r-old")])
        .await
        .expect("old");
    assert_eq!(
        late,
        PersistOutcome {
            logs_inserted: 1,
            trackers_written: 0
        }
    );
    let rows = s
        .memory
        .all_trackers(&user("u1"), &season(2026))
        .await
        .expect("all");
    assert_eq!(rows, vec![new.clone()]);
    // Same last_review, different state: the later write wins.
    let mut same_time = new.clone();
    same_time.state.due = at(120);
    let o = s
        .memory
        .persist_batch(&[record(&same_time, "r-same")])
        .await
        .expect("same");
    assert_eq!(o.trackers_written, 1);
    let rows = s
        .memory
        .all_trackers(&user("u1"), &season(2026))
        .await
        .expect("all");
    assert_eq!(rows, vec![same_time]);
}

/// Duplicates of one key inside a batch collapse to the newest state.
pub async fn persist_collapses_duplicates(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let a = tracker("u1", 2026, "st1", 1, at(24), Some(at(1)), None, None);
    let b = tracker("u1", 2026, "st1", 2, at(48), Some(at(2)), None, None);
    let o = s
        .memory
        .persist_batch(&[record(&b, "r-b"), record(&a, "r-a"), record(&b, "r-b")])
        .await
        .expect("persist");
    assert_eq!(o.logs_inserted, 2);
    assert_eq!(
        s.memory
            .all_trackers(&user("u1"), &season(2026))
            .await
            .expect("all"),
        vec![b]
    );
    assert_eq!(s.memory.count_reviews(&user("u1")).await.expect("count"), 2);
}

/// A batch touching an unknown season is rejected and writes nothing.
pub async fn persist_unknown_season_rejected(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let good = tracker("u1", 2026, "st1", 1, at(24), Some(at(0)), None, None);
    let bad = tracker("u1", 2031, "st1", 1, at(24), Some(at(0)), None, None);
    let r = s
        .memory
        .persist_batch(&[record(&good, "r-good"), record(&bad, "r-bad")])
        .await;
    assert!(matches!(r, Err(PortError::Rejected(_))), "{r:?}");
    assert_eq!(
        s.memory.count_season(&season(2026)).await.expect("count"),
        0
    );
    assert!(
        !s.memory
            .has_review(&ReviewId::new("r-good").expect("id"))
            .await
            .expect("has")
    );
    assert_eq!(s.memory.count_reviews(&user("u1")).await.expect("count"), 0);
}

/// Due rows: due ≤ now, ordered by due then question, filters and limit;
/// counts agree; other users and seasons never leak in.
pub async fn due_queries(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let ts = vec![
        tracker(
            "u1",
            2026,
            "b",
            1,
            at(-5),
            Some(at(-30)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2026,
            "a",
            1,
            at(-5),
            Some(at(-30)),
            Some("math"),
            Some("t2"),
        ),
        tracker(
            "u1",
            2026,
            "c",
            2,
            at(-10),
            Some(at(-30)),
            Some("phys"),
            Some("t3"),
        ),
        tracker("u1", 2026, "d", 2, at(0), Some(at(-30)), None, None),
        tracker(
            "u1",
            2026,
            "e",
            3,
            at(5),
            Some(at(-30)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u2",
            2026,
            "a",
            1,
            at(-50),
            Some(at(-60)),
            Some("math"),
            Some("t1"),
        ),
        tracker(
            "u1",
            2025,
            "z",
            1,
            at(-50),
            Some(at(-60)),
            Some("math"),
            Some("t1"),
        ),
    ];
    persist(s, &ts).await;
    let (u, se) = (user("u1"), season(2026));
    let all = DueFilter::default();
    let due = s
        .memory
        .due_trackers(&u, &se, &all, t0(), 10)
        .await
        .expect("due");
    assert_eq!(qids(&due), vec!["c", "a", "b", "d"]);
    let due2 = s
        .memory
        .due_trackers(&u, &se, &all, t0(), 2)
        .await
        .expect("due");
    assert_eq!(qids(&due2), vec!["c", "a"]);
    let math = DueFilter {
        subject: Some(subject("math")),
        topic: None,
    };
    assert_eq!(
        qids(
            &s.memory
                .due_trackers(&u, &se, &math, t0(), 10)
                .await
                .expect("due")
        ),
        vec!["a", "b"]
    );
    let t1 = DueFilter {
        subject: None,
        topic: Some(topic("t1")),
    };
    assert_eq!(
        qids(
            &s.memory
                .due_trackers(&u, &se, &t1, t0(), 10)
                .await
                .expect("due")
        ),
        vec!["b"]
    );
    assert_eq!(
        s.memory
            .count_due(&u, &se, &all, t0())
            .await
            .expect("count"),
        4
    );
    assert_eq!(
        s.memory
            .count_due(&u, &se, &math, t0())
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        s.memory
            .count_due(&u, &se, &all, at(10))
            .await
            .expect("count"),
        5
    );
    let by = s
        .memory
        .due_counts_by_subject(&u, &se, t0())
        .await
        .expect("by subject");
    assert_eq!(
        by,
        vec![
            (None, 1),
            (Some(subject("math")), 2),
            (Some(subject("phys")), 1)
        ]
    );
    assert_eq!(
        s.memory
            .count_topic(&u, &se, &topic("t1"))
            .await
            .expect("topic"),
        2
    );
    assert_eq!(s.memory.all_trackers(&u, &se).await.expect("all").len(), 5);
    assert!(
        s.memory
            .due_trackers(&user("nobody"), &se, &all, t0(), 10)
            .await
            .expect("due")
            .is_empty()
    );
}

/// Topic candidates: `new` bucket first, then due, then not reviewed since
/// the day start; by last review (never first), then question id.
pub async fn topic_candidate_order(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let day_start = at(-2);
    let tp = Some("t1");
    let ts = vec![
        // new bucket (ladder level 1), one never reviewed
        tracker("u1", 2026, "n2", 1, at(50), Some(at(-40)), None, tp),
        tracker("u1", 2026, "n1", 1, at(50), Some(at(-1)), None, tp),
        tracker("u1", 2026, "n0", 1, at(50), None, None, tp),
        // due
        tracker("u1", 2026, "d1", 2, at(-1), Some(at(-20)), None, tp),
        tracker("u1", 2026, "d2", 3, at(-3), Some(at(-30)), None, tp),
        // stale (not due, reviewed before day start)
        tracker("u1", 2026, "s1", 3, at(30), Some(at(-10)), None, tp),
        // fresh and not due: excluded
        tracker("u1", 2026, "f1", 3, at(30), Some(at(-1)), None, tp),
        // other topic
        tracker("u1", 2026, "x1", 1, at(-1), None, None, Some("t2")),
    ];
    persist(s, &ts).await;
    let c = s
        .memory
        .topic_candidates(
            &user("u1"),
            &season(2026),
            &topic("t1"),
            t0(),
            day_start,
            10,
        )
        .await
        .expect("candidates");
    assert_eq!(qids(&c), vec!["n0", "n2", "n1", "d2", "d1", "s1"]);
    let c = s
        .memory
        .topic_candidates(&user("u1"), &season(2026), &topic("t1"), t0(), day_start, 4)
        .await
        .expect("candidates");
    assert_eq!(qids(&c), vec!["n0", "n2", "n1", "d2"]);
    let r1 = s
        .memory
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 4, 42)
        .await
        .expect("random");
    let r2 = s
        .memory
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 4, 42)
        .await
        .expect("random");
    assert_eq!(r1, r2);
    assert_eq!(r1.len(), 4);
    assert!(r1.iter().all(|t| t.topic == Some(topic("t1"))));
    let all = s
        .memory
        .random_topic_items(&user("u1"), &season(2026), &topic("t1"), 100, 7)
        .await
        .expect("random");
    assert_eq!(all.len(), 7);
}

/// Keyset scan: pages ordered by (user, question), strictly after the
/// cursor, covering the season exactly once.
pub async fn scan_season_keyset(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for u in ["u3", "u1", "u2"] {
        for qq in ["e", "a", "c", "b", "d"] {
            ts.push(tracker(u, 2026, qq, 2, at(1), Some(at(0)), None, None));
        }
    }
    ts.push(tracker("u0", 2025, "a", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut after: Option<TrackerKey> = None;
    loop {
        let page = s
            .memory
            .scan_season(&season(2026), after.as_ref(), 4)
            .await
            .expect("scan");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|t| t.key.clone());
        seen.extend(
            page.iter()
                .map(|t| (t.key.user.to_string(), t.key.question.to_string())),
        );
    }
    let mut expected: Vec<(String, String)> = ts
        .iter()
        .filter(|t| t.key.season == season(2026))
        .map(|t| (t.key.user.to_string(), t.key.question.to_string()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(
        s.memory
            .scan_season(&season(2031), None, 10)
            .await
            .expect("scan")
            .is_empty()
    );
}

/// Sampling: distinct rows of the season, deterministic per seed, never
/// more than asked.
pub async fn sample_is_deterministic(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for i in 0..30 {
        ts.push(tracker(
            &format!("u{}", i % 3),
            2026,
            &format!("q{i:02}"),
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        ));
    }
    ts.push(tracker("u0", 2025, "zz", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let a = s
        .memory
        .sample_trackers(&season(2026), 5, 11)
        .await
        .expect("sample");
    let b = s
        .memory
        .sample_trackers(&season(2026), 5, 11)
        .await
        .expect("sample");
    assert_eq!(a.len(), 5);
    assert_eq!(a, b);
    let keys: HashSet<_> = a.iter().map(|t| t.key.clone()).collect();
    assert_eq!(keys.len(), 5);
    assert!(a.iter().all(|t| t.key.season == season(2026)));
    let all = s
        .memory
        .sample_trackers(&season(2026), 100, 3)
        .await
        .expect("sample");
    assert_eq!(all.len(), 30);
    assert!(
        s.memory
            .sample_trackers(&season(2031), 5, 3)
            .await
            .expect("sample")
            .is_empty()
    );
}

/// Mastery counts per bucket, with season and subject filters; FSRS states
/// bucket by phase and stability.
pub async fn mastery_counts(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut fsrs_mature = tracker("u1", 2026, "f1", 0, at(1), Some(at(0)), Some("math"), None);
    fsrs_mature.state.kind = SchedulerKind::Fsrs6;
    fsrs_mature.state.phase = Phase::Review;
    fsrs_mature.state.stability = 30.0;
    let mut fsrs_learning = fsrs_mature.clone();
    fsrs_learning.key.question = q("f2");
    fsrs_learning.state.phase = Phase::Learning;
    let ts = vec![
        tracker("u1", 2026, "a", 1, at(1), Some(at(0)), Some("math"), None),
        tracker("u1", 2026, "b", 2, at(1), Some(at(0)), Some("math"), None),
        tracker("u1", 2026, "c", 3, at(1), Some(at(0)), Some("phys"), None),
        tracker("u1", 2026, "d", 4, at(1), Some(at(0)), None, None),
        tracker("u1", 2026, "e", 0, at(1), None, None, None),
        tracker("u1", 2025, "a", 1, at(1), Some(at(0)), Some("math"), None),
        tracker("u2", 2026, "a", 1, at(1), Some(at(0)), Some("math"), None),
        fsrs_mature,
        fsrs_learning,
    ];
    persist(s, &ts).await;
    let c = s
        .memory
        .mastery_counts(&user("u1"), Some(&season(2026)), None)
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 2,
            learning: 1,
            mature: 3
        }
    );
    let c = s
        .memory
        .mastery_counts(&user("u1"), None, None)
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 3,
            learning: 1,
            mature: 3
        }
    );
    let c = s
        .memory
        .mastery_counts(&user("u1"), Some(&season(2026)), Some(&subject("math")))
        .await
        .expect("m");
    assert_eq!(
        c,
        MasteryCounts {
            new: 2,
            learning: 1,
            mature: 1
        }
    );
    assert_eq!(
        s.memory
            .mastery_counts(&user("nobody"), None, None)
            .await
            .expect("m"),
        MasteryCounts::default()
    );
}

/// Review log reads: oldest first, season filter, limit.
pub async fn review_log_reads(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let a = tracker("u1", 2026, "a", 1, at(1), Some(at(-3)), None, None);
    let b = tracker("u1", 2025, "b", 1, at(1), Some(at(-5)), None, None);
    let c = tracker("u1", 2026, "c", 1, at(1), Some(at(-1)), None, None);
    let recs = vec![record(&a, "r-a"), record(&b, "r-b"), record(&c, "r-c")];
    s.memory.persist_batch(&recs).await.expect("persist");
    let ids = |v: Vec<ReviewLogEntry>| {
        v.into_iter()
            .map(|e| e.review_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s
            .memory
            .review_log(&user("u1"), None, 10)
            .await
            .expect("log")),
        vec!["r-b", "r-a", "r-c"]
    );
    assert_eq!(
        ids(s
            .memory
            .review_log(&user("u1"), Some(&season(2026)), 10)
            .await
            .expect("log")),
        vec!["r-a", "r-c"]
    );
    assert_eq!(
        ids(s
            .memory
            .review_log(&user("u1"), None, 1)
            .await
            .expect("log")),
        vec!["r-b"]
    );
    assert_eq!(s.memory.count_reviews(&user("u1")).await.expect("count"), 3);
}

/// Archive moves a whole season, flagging and deletion follow the
/// retention rules, counts report every stage.
pub async fn archive_lifecycle(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let mut ts = Vec::new();
    for i in 0..6 {
        ts.push(tracker(
            "u1",
            2025,
            &format!("q{i}"),
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        ));
    }
    ts.push(tracker("u1", 2026, "q0", 2, at(1), Some(at(0)), None, None));
    persist(s, &ts).await;
    let n = s
        .memory
        .archive_season(&season(2025), at(0))
        .await
        .expect("archive");
    assert_eq!(n, 6);
    assert_eq!(
        s.memory.count_season(&season(2025)).await.expect("count"),
        0
    );
    assert_eq!(
        s.memory.count_season(&season(2026)).await.expect("count"),
        1
    );
    assert_eq!(
        s.memory
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts {
            active_records: 0,
            archived_records: 6,
            eligible_for_deletion: 0
        }
    );
    assert_eq!(s.memory.flag_archived_before(at(0)).await.expect("flag"), 0);
    assert_eq!(s.memory.delete_flagged(None).await.expect("delete"), 0);
    assert_eq!(s.memory.flag_archived_before(at(1)).await.expect("flag"), 6);
    assert_eq!(s.memory.flag_archived_before(at(1)).await.expect("flag"), 0);
    assert_eq!(
        s.memory
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts {
            active_records: 0,
            archived_records: 6,
            eligible_for_deletion: 6
        }
    );
    assert_eq!(
        s.memory
            .delete_flagged(Some(&season(2026)))
            .await
            .expect("delete"),
        0
    );
    assert_eq!(
        s.memory
            .delete_flagged(Some(&season(2025)))
            .await
            .expect("delete"),
        6
    );
    assert_eq!(
        s.memory
            .archive_counts(&season(2025))
            .await
            .expect("counts"),
        ArchiveCounts::default()
    );
    // The season stays writable after archival.
    persist(
        s,
        &[tracker(
            "u1",
            2025,
            "late",
            2,
            at(1),
            Some(at(0)),
            None,
            None,
        )],
    )
    .await;
    assert_eq!(
        s.memory.count_season(&season(2025)).await.expect("count"),
        1
    );
    assert!(matches!(
        s.memory.archive_season(&season(2031), at(0)).await,
        Err(PortError::Rejected(_))
    ));
}

// ───────────────────────── players ─────────────────────────

/// Sessions: atomic XP credit, duplicates refused, streak days, XP per day,
/// day summaries, lesson plays and completions.
pub async fn sessions_and_activity(s: &Stores) {
    let p = &s.players;
    let u = user("u1");
    p.record_session(&session(
        "s1",
        "u1",
        SessionKind::Lesson,
        Some("l1"),
        Some("math"),
        10,
        true,
        day(1),
    ))
    .await
    .expect("s1");
    p.record_session(&session(
        "s2",
        "u1",
        SessionKind::Lesson,
        Some("l1"),
        Some("math"),
        5,
        false,
        day(1),
    ))
    .await
    .expect("s2");
    p.record_session(&session(
        "s3",
        "u1",
        SessionKind::Review,
        None,
        Some("phys"),
        7,
        false,
        day(3),
    ))
    .await
    .expect("s3");
    p.record_session(&session(
        "s4",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        50,
        false,
        day(4),
    ))
    .await
    .expect("s4");
    p.record_session(&session(
        "s5",
        "u1",
        SessionKind::Lesson,
        Some("l2"),
        None,
        3,
        false,
        day(4),
    ))
    .await
    .expect("s5");
    assert!(matches!(
        p.record_session(&session(
            "s1",
            "u1",
            SessionKind::Lesson,
            Some("l1"),
            Some("math"),
            10,
            true,
            day(1)
        ))
        .await,
        Err(PortError::Conflict(_))
    ));
    let prof = p.get_profile(&u).await.expect("profile").expect("created");
    assert_eq!(prof.total_xp, 75);
    assert_eq!(p.subject_xp(&u, &subject("math")).await.expect("xp"), 15);
    assert_eq!(p.subject_xp(&u, &subject("none")).await.expect("xp"), 0);
    assert_eq!(
        p.active_days(&u, day(1)).await.expect("days"),
        vec![day(4), day(3), day(1)]
    );
    assert_eq!(
        p.active_days(&u, day(2)).await.expect("days"),
        vec![day(4), day(3)]
    );
    assert_eq!(
        p.xp_by_day(&u, day(1), day(4)).await.expect("xp"),
        vec![(day(1), 15), (day(3), 7), (day(4), 3)]
    );
    assert_eq!(
        p.day_summary(&u, day(1)).await.expect("sum"),
        DaySummary {
            lesson_sessions: 2,
            review_sessions: 0,
            xp: 15
        }
    );
    assert_eq!(
        p.day_summary(&u, day(4)).await.expect("sum"),
        DaySummary {
            lesson_sessions: 1,
            review_sessions: 0,
            xp: 3
        }
    );
    let l1 = LessonId::new("l1").expect("lesson");
    assert_eq!(p.lesson_plays_on(&u, &l1, day(1)).await.expect("plays"), 2);
    assert_eq!(p.lesson_plays_on(&u, &l1, day(2)).await.expect("plays"), 0);
    assert_eq!(
        p.completed_lessons(&u).await.expect("done"),
        HashSet::from([l1])
    );
    // upsert_profile never touches total_xp.
    let mut edited = prof.clone();
    edited.full_name = "Renamed".into();
    edited.total_xp = 9999;
    edited.time_zone = "Asia/Amman".into();
    p.upsert_profile(&edited).await.expect("upsert");
    let after = p.get_profile(&u).await.expect("profile").expect("exists");
    assert_eq!(after.full_name, "Renamed");
    assert_eq!(after.time_zone, "Asia/Amman");
    assert_eq!(after.total_xp, 75);
}

/// Profiles in bulk keep the asked order; FSRS parameters and a pending
/// time-zone change round-trip; upserts never touch total XP.
pub async fn profiles_and_params(s: &Stores) {
    let p = &s.players;
    for n in ["b", "a"] {
        let mut prof = PlayerProfile::new(user(n), format!("User {n}"));
        prof.grade = Some(GradeId::new("g12").expect("grade"));
        prof.season = Some(season(2026));
        p.upsert_profile(&prof).await.expect("upsert");
    }
    let got = p
        .get_profiles(&[user("a"), user("zz"), user("b")])
        .await
        .expect("profiles");
    assert_eq!(
        got.iter().map(|x| x.user.to_string()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(got[0].total_xp, 0);
    assert_eq!(got[0].grade, Some(GradeId::new("g12").expect("grade")));
    assert_eq!(p.get_profile(&user("zz")).await.expect("p"), None);
    assert_eq!(p.fsrs_params(&user("a")).await.expect("params"), None);
    p.set_fsrs_params(&user("a"), &[0.1, 1.5, 3.25], 400)
        .await
        .expect("set");
    p.set_fsrs_params(&user("a"), &[0.2, 1.5], 500)
        .await
        .expect("set");
    assert_eq!(
        p.fsrs_params(&user("a")).await.expect("params"),
        Some((vec![0.2, 1.5], 500))
    );
    // A pending time-zone change round-trips (microseconds included) and
    // can be cleared; an upsert never changes total_xp.
    let mut prof = p
        .get_profile(&user("a"))
        .await
        .expect("profile")
        .expect("exists");
    prof.time_zone = "Europe/Berlin".to_owned();
    prof.pending_zone = Some(PendingZone {
        time_zone: "Asia/Amman".to_owned(),
        rollover_hour: 23,
        effective_at: at(5) + Duration::microseconds(123_456),
    });
    prof.total_xp = 999;
    p.upsert_profile(&prof).await.expect("upsert");
    let got = p
        .get_profile(&user("a"))
        .await
        .expect("profile")
        .expect("exists");
    assert_eq!(got.pending_zone, prof.pending_zone);
    assert_eq!(got.time_zone, "Europe/Berlin");
    assert_eq!(got.total_xp, 0, "upsert_profile never writes total_xp");
    assert_eq!(
        p.get_profiles(&[user("a")]).await.expect("profiles")[0].pending_zone,
        prof.pending_zone
    );
    prof.pending_zone = None;
    p.upsert_profile(&prof).await.expect("upsert");
    assert_eq!(
        p.get_profile(&user("a"))
            .await
            .expect("profile")
            .expect("exists")
            .pending_zone,
        None
    );
}

/// Leaderboards: XP desc then user id, zero XP and disabled users out,
/// subject boards, period windows from the learner day.
pub async fn leaderboards(s: &Stores) {
    let p = &s.players;
    let disabled = User {
        id: user("u-x"),
        full_name: "X".into(),
        roles: vec![Role::Student],
        enabled: false,
    };
    s.auth.create_user(&disabled, None).await.expect("user");
    let enabled = User {
        id: user("u-b"),
        full_name: "B".into(),
        roles: vec![Role::Student],
        enabled: true,
    };
    s.auth.create_user(&enabled, None).await.expect("user");
    let plays = [
        ("1", "u-c", Some("math"), 30, day(1)),
        ("2", "u-b", Some("math"), 20, day(5)),
        ("3", "u-a", Some("phys"), 20, day(5)),
        ("4", "u-x", Some("math"), 100, day(5)),
        ("5", "u-d", None, 5, day(6)),
        ("6", "u-a", Some("math"), 10, day(6)),
    ];
    for (id, u, subj, xp, d) in plays {
        p.record_session(&session(
            &format!("s{id}"),
            u,
            SessionKind::Review,
            None,
            subj,
            xp,
            false,
            d,
        ))
        .await
        .expect("session");
    }
    p.upsert_profile(&PlayerProfile::new(user("u-zero"), "Zero"))
        .await
        .expect("profile");
    let board = |v: Vec<BoardEntry>| {
        v.into_iter()
            .map(|e| (e.user.to_string(), e.xp))
            .collect::<Vec<_>>()
    };
    let global = BoardQuery {
        subject: None,
        since: None,
    };
    assert_eq!(
        board(p.top_players(&global, 10).await.expect("top")),
        vec![
            ("u-a".into(), 30),
            ("u-c".into(), 30),
            ("u-b".into(), 20),
            ("u-d".into(), 5)
        ]
    );
    assert_eq!(
        board(p.top_players(&global, 2).await.expect("top")).len(),
        2
    );
    let math = BoardQuery {
        subject: Some(subject("math")),
        since: None,
    };
    assert_eq!(
        board(p.top_players(&math, 10).await.expect("top")),
        vec![("u-c".into(), 30), ("u-b".into(), 20), ("u-a".into(), 10)]
    );
    let week = BoardQuery {
        subject: None,
        since: Some(day(5)),
    };
    assert_eq!(
        board(p.top_players(&week, 10).await.expect("top")),
        vec![("u-a".into(), 30), ("u-b".into(), 20), ("u-d".into(), 5)]
    );
    let week_math = BoardQuery {
        subject: Some(subject("math")),
        since: Some(day(5)),
    };
    assert_eq!(
        board(p.top_players(&week_math, 10).await.expect("top")),
        vec![("u-b".into(), 20), ("u-a".into(), 10)]
    );
    assert_eq!(
        p.player_rank(&user("u-c"), &global).await.expect("rank"),
        (30, Some(2))
    );
    assert_eq!(
        p.player_rank(&user("u-a"), &global).await.expect("rank"),
        (30, Some(1))
    );
    assert_eq!(
        p.player_rank(&user("u-d"), &week).await.expect("rank"),
        (5, Some(3))
    );
    assert_eq!(
        p.player_rank(&user("u-c"), &week).await.expect("rank"),
        (0, None)
    );
    assert_eq!(
        p.player_rank(&user("u-zero"), &global).await.expect("rank"),
        (0, None)
    );
    let (xp, rank) = p.player_rank(&user("u-x"), &global).await.expect("rank");
    assert_eq!((xp, rank), (100, None));
    assert_eq!(
        p.player_rank(&user("u-a"), &math).await.expect("rank"),
        (10, Some(3))
    );
}

// ───────────────────────── commerce ─────────────────────────

fn item(id: &str, price: i64) -> SalesItem {
    SalesItem {
        id: SalesItemId::new(id).expect("item"),
        name: format!("Item {id}"),
        description: Some("desc".into()),
        price,
        discounted_price: None,
        image: None,
        sku: Some(format!("SKU-{id}")),
        season: season(2026),
        target_grade: Some(GradeId::new("g12").expect("grade")),
        target_streams: vec![StreamId::new("sci").expect("stream")],
        contents: vec![
            AccessGrant::Subject(subject("math")),
            AccessGrant::Track(TrackId::new("tr-1").expect("track")),
        ],
    }
}

fn request(id: &str, u: &str, it: &str, h: i64) -> PurchaseRequest {
    PurchaseRequest {
        id: PurchaseRequestId::new(id).expect("req"),
        user: user(u),
        item: SalesItemId::new(it).expect("item"),
        status: PurchaseStatus::Pending,
        price: 100,
        payment_method: Some("cash".into()),
        transaction_id: None,
        created_at: at(h),
        decided_at: None,
        decided_by: None,
    }
}

fn subscription(id: &str, u: &str, req: Option<&str>) -> Subscription {
    Subscription {
        id: SubscriptionId::new(id).expect("sub"),
        user: user(u),
        season: season(2026),
        kind: SubscriptionKind::Specific,
        status: SubscriptionStatus::Active,
        grants: vec![AccessGrant::Subject(subject("math"))],
        source_request: req.map(|r| PurchaseRequestId::new(r).expect("req")),
        created_at: t0(),
    }
}

/// Items by price; one pending request per (user, item); a request is
/// decided once, granting its subscription atomically.
pub async fn commerce_rules(s: &Stores) {
    let c = &s.commerce;
    c.upsert_sales_item(&item("i-2", 300)).await.expect("item");
    c.upsert_sales_item(&item("i-1", 100)).await.expect("item");
    let mut changed = item("i-2", 50);
    changed.contents = vec![AccessGrant::Track(TrackId::new("tr-9").expect("track"))];
    changed.discounted_price = Some(40);
    c.upsert_sales_item(&changed).await.expect("item");
    let items = c.list_sales_items().await.expect("items");
    assert_eq!(items, vec![changed.clone(), item("i-1", 100)]);
    assert_eq!(
        c.get_sales_item(&SalesItemId::new("i-1").expect("id"))
            .await
            .expect("get"),
        Some(item("i-1", 100))
    );
    assert_eq!(
        c.get_sales_item(&SalesItemId::new("nope").expect("id"))
            .await
            .expect("get"),
        None
    );

    c.create_purchase_request(&request("r1", "u1", "i-1", 1))
        .await
        .expect("r1");
    assert!(matches!(
        c.create_purchase_request(&request("r2", "u1", "i-1", 2))
            .await,
        Err(PortError::Conflict(_))
    ));
    c.create_purchase_request(&request("r3", "u1", "i-2", 3))
        .await
        .expect("other item");
    c.create_purchase_request(&request("r4", "u2", "i-1", 4))
        .await
        .expect("other user");
    assert!(matches!(
        c.create_purchase_request(&request("r1", "u9", "i-9", 5))
            .await,
        Err(PortError::Conflict(_))
    ));
    let mut approved = request("r1", "u1", "i-1", 1);
    approved.status = PurchaseStatus::Approved;
    approved.decided_at = Some(at(10));
    approved.decided_by = Some(user("admin"));
    let grant = subscription("sub-1", "u1", Some("r1"));
    c.decide_purchase(&approved, Some(&grant))
        .await
        .expect("approve");
    let mut again = approved.clone();
    again.status = PurchaseStatus::Rejected;
    assert!(matches!(
        c.decide_purchase(&again, None).await,
        Err(PortError::Conflict(_))
    ));
    let ghost = request("r-ghost", "u1", "i-1", 1);
    assert!(matches!(
        c.decide_purchase(&ghost, None).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        c.get_purchase_request(&approved.id).await.expect("get"),
        Some(approved.clone())
    );
    // The pending slot is free again once decided.
    c.create_purchase_request(&request("r5", "u1", "i-1", 6))
        .await
        .expect("new pending");
    let ids = |v: Vec<PurchaseRequest>| v.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(c.list_purchase_requests(None, None).await.expect("list")),
        vec!["r5", "r4", "r3", "r1"]
    );
    assert_eq!(
        ids(c
            .list_purchase_requests(Some(&user("u1")), Some(PurchaseStatus::Pending))
            .await
            .expect("list")),
        vec!["r5", "r3"]
    );
    assert_eq!(
        ids(c
            .list_purchase_requests(None, Some(PurchaseStatus::Approved))
            .await
            .expect("list")),
        vec!["r1"]
    );
    assert_eq!(
        c.subscriptions_of(&user("u1")).await.expect("subs"),
        vec![grant.clone()]
    );
    let mut global = subscription("sub-2", "u2", None);
    global.kind = SubscriptionKind::Global;
    global.grants.clear();
    c.create_subscription(&global).await.expect("admin grant");
    assert!(matches!(
        c.create_subscription(&global).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        c.subscriptions_of(&user("u2")).await.expect("subs"),
        vec![global]
    );
    assert!(
        c.subscriptions_of(&user("u3"))
            .await
            .expect("subs")
            .is_empty()
    );
}

/// A quest is claimed once per day; the reward XP is added exactly once.
pub async fn quest_claim_once(s: &Stores) {
    let u = user("u1");
    let reward = session(
        "qr-1",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        25,
        false,
        day(2),
    );
    assert!(
        s.quests
            .claim(&u, day(2), "quest_xp", &reward)
            .await
            .expect("claim")
    );
    let reward2 = session(
        "qr-2",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        25,
        false,
        day(2),
    );
    assert!(
        !s.quests
            .claim(&u, day(2), "quest_xp", &reward2)
            .await
            .expect("claim")
    );
    let reward3 = session(
        "qr-3",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        10,
        false,
        day(2),
    );
    assert!(
        s.quests
            .claim(&u, day(2), "quest_streak", &reward3)
            .await
            .expect("claim")
    );
    assert_eq!(
        s.quests.claimed(&u, day(2)).await.expect("claimed"),
        vec!["quest_streak", "quest_xp"]
    );
    assert!(
        s.quests
            .claimed(&u, day(3))
            .await
            .expect("claimed")
            .is_empty()
    );
    assert_eq!(
        s.players
            .get_profile(&u)
            .await
            .expect("p")
            .expect("profile")
            .total_xp,
        35
    );
    // Rewards are not activity.
    assert!(
        s.players
            .active_days(&u, day(1))
            .await
            .expect("days")
            .is_empty()
    );
}

// ───────────────────────── auth, audit, locks ─────────────────────────

/// Users, password hashes, login sessions and API keys.
pub async fn auth_records(s: &Stores) {
    let a = &s.auth;
    let admin = User {
        id: user("admin@x.io"),
        full_name: "Admin".into(),
        roles: vec![Role::SystemManager, Role::Student],
        enabled: true,
    };
    let stu = User {
        id: user("a-student@x.io"),
        full_name: "Stu".into(),
        roles: vec![Role::Student],
        enabled: false,
    };
    a.create_user(&admin, Some("hash-1")).await.expect("admin");
    a.create_user(&stu, None).await.expect("student");
    assert!(matches!(
        a.create_user(&admin, None).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        a.get_user(&admin.id).await.expect("get"),
        Some(admin.clone())
    );
    assert_eq!(a.get_user(&user("ghost")).await.expect("get"), None);
    assert_eq!(
        a.list_users().await.expect("list"),
        vec![stu.clone(), admin.clone()]
    );
    assert_eq!(
        a.password_hash(&admin.id).await.expect("hash"),
        Some("hash-1".into())
    );
    assert_eq!(a.password_hash(&stu.id).await.expect("hash"), None);
    a.set_password_hash(&stu.id, "hash-2").await.expect("set");
    a.set_password_hash(&admin.id, "hash-3").await.expect("set");
    assert_eq!(
        a.password_hash(&stu.id).await.expect("hash"),
        Some("hash-2".into())
    );
    assert_eq!(
        a.password_hash(&admin.id).await.expect("hash"),
        Some("hash-3".into())
    );
    a.create_login_session("sid-h", &admin.id, at(24))
        .await
        .expect("session");
    assert_eq!(
        a.get_login_session("sid-h").await.expect("get"),
        Some((admin.id.clone(), at(24)))
    );
    a.delete_login_session("sid-h").await.expect("delete");
    a.delete_login_session("sid-h").await.expect("delete twice");
    assert_eq!(a.get_login_session("sid-h").await.expect("get"), None);
    let key = ApiKeyRecord {
        key: "k-1".into(),
        user: admin.id.clone(),
        secret_hash: "sh".into(),
    };
    a.create_api_key(&key).await.expect("key");
    assert!(matches!(
        a.create_api_key(&key).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(a.get_api_key("k-1").await.expect("get"), Some(key));
    assert_eq!(a.get_api_key("k-2").await.expect("get"), None);
}

/// The audit log returns the newest events first.
pub async fn audit_recent(s: &Stores) {
    for i in 0..3 {
        s.audit
            .record(&AuditEvent {
                at: at(i),
                actor: (i == 1).then(|| user("admin")),
                action: format!("action.{i}"),
                detail: serde_json::json!({"n": i}),
            })
            .await
            .expect("record");
    }
    let r = s.audit.recent(2).await.expect("recent");
    assert_eq!(
        r.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["action.2", "action.1"]
    );
    assert_eq!(r[1].actor, Some(user("admin")));
    assert_eq!(r[1].detail, serde_json::json!({"n": 1}));
}

/// Only one process holds a job lock until it releases it.
pub async fn job_lock_exclusive(s: &Stores) {
    assert!(s.locks.try_acquire("nightly").await.expect("acquire"));
    assert!(!s.other_locks.try_acquire("nightly").await.expect("other"));
    assert!(!s.locks.try_acquire("nightly").await.expect("again"));
    assert!(
        s.other_locks
            .try_acquire("hourly")
            .await
            .expect("other job")
    );
    s.locks.release("nightly").await.expect("release");
    assert!(
        s.other_locks
            .try_acquire("nightly")
            .await
            .expect("other now")
    );
    assert!(!s.locks.try_acquire("nightly").await.expect("held by other"));
    s.other_locks.release("nightly").await.expect("release");
    s.other_locks.release("hourly").await.expect("release");
    s.locks
        .release("never-held")
        .await
        .expect("release unknown");
}

// ───────────────────────── content ─────────────────────────

fn catalog(title: &str) -> Catalog {
    let subj = subject("math");
    let track = TrackId::new("tr-1").expect("track");
    let unit = UnitId::new("un-1").expect("unit");
    let top = topic("tp-1");
    Catalog {
        subjects: vec![Subject {
            id: subj.clone(),
            title: title.into(),
            icon: Some("🧮".into()),
            is_published: true,
            is_paid: true,
        }],
        tracks: vec![Track {
            id: track.clone(),
            subject: subj.clone(),
            name: "Main".into(),
            is_default: true,
            unlock_level: 3,
            icon: None,
            description: Some("d".into()),
            is_linear: true,
            is_published: true,
            is_paid: false,
            is_sold_separately: true,
        }],
        units: vec![Unit {
            id: unit.clone(),
            subject: subj.clone(),
            track,
            title: "Unit 1".into(),
            order: 2,
            structure: UnitStructure::TopicBased,
            is_linear_topics: false,
            is_free_preview: true,
            is_published: true,
        }],
        topics: vec![Topic {
            id: top.clone(),
            unit: unit.clone(),
            title: "Topic".into(),
            description: None,
            order: 1,
            is_linear: true,
            is_free_preview: false,
            is_published: true,
        }],
        lessons: vec![Lesson {
            id: LessonId::new("ls-1").expect("lesson"),
            title: "Lesson".into(),
            unit,
            topic: Some(top),
            xp_reward: 20,
            order: 1,
            is_published: true,
            stages: vec![
                Stage {
                    id: StageId::new("st-2").expect("stage"),
                    title: "Reveal".into(),
                    config: StageConfig::Reveal {
                        image: None,
                        sentence: "The cat sat".into(),
                        highlights: vec![Highlight {
                            word: "cat".into(),
                            explanation: Some("animal".into()),
                            id: None,
                        }],
                    },
                },
                Stage {
                    id: StageId::new("st-1").expect("stage"),
                    title: "Quiz".into(),
                    config: StageConfig::Quiz(serde_json::json!({"q": "2+2", "a": 4})),
                },
            ],
        }],
        grades: vec![Grade {
            id: GradeId::new("g12").expect("g"),
            name: "Grade 12".into(),
            valid_streams: vec![StreamId::new("sci").expect("s")],
        }],
        streams: vec![Stream {
            id: StreamId::new("sci").expect("s"),
            name: "Scientific".into(),
        }],
        plans: vec![AcademicPlan {
            id: PlanId::new("plan-1").expect("plan"),
            title: "Plan".into(),
            grade: GradeId::new("g12").expect("g"),
            stream: Some(StreamId::new("sci").expect("s")),
            season: season(2026),
            subjects: vec![PlanSubject {
                subject: subj,
                display_name: Some("Maths".into()),
                is_mandatory: true,
                selection: UnitSelection::SpecificUnits(vec![UnitId::new("un-1").expect("u")]),
            }],
            version: 0,
        }],
    }
}

/// Import then load returns the same catalog; re-import replaces by id and
/// bumps plan versions.
pub async fn content_round_trip(s: &Stores) {
    assert_eq!(
        s.content.load_catalog().await.expect("empty"),
        Catalog::default()
    );
    let c1 = catalog("Mathematics");
    s.content.import_catalog(&c1).await.expect("import");
    let mut expected = c1.clone();
    expected.plans[0].version = 1;
    assert_eq!(s.content.load_catalog().await.expect("load"), expected);
    let mut c2 = catalog("Maths v2");
    c2.lessons[0].stages.remove(0);
    c2.plans[0].subjects[0].selection = UnitSelection::AllUnits;
    s.content.import_catalog(&c2).await.expect("re-import");
    let loaded = s.content.load_catalog().await.expect("load");
    assert_eq!(loaded.subjects[0].title, "Maths v2");
    assert_eq!(loaded.lessons[0].stages.len(), 1);
    assert_eq!(loaded.plans[0].version, 2);
    assert_eq!(
        loaded.plans[0].subjects[0].selection,
        UnitSelection::AllUnits
    );
    assert_eq!(loaded.subjects.len(), 1);
}

/// Generates one `#[tokio::test]` per store check. `$setup` is an async
/// expression yielding `Option<H>` (None = skipped) where `H` has
/// `fn stores(&self) -> Stores` and `async fn teardown(self)`.
#[macro_export]
macro_rules! store_conformance {
    ($setup:expr) => {
        $crate::store_conformance!(@each $setup;
            seasons_lifecycle, persist_is_idempotent, persist_newer_wins,
            persist_collapses_duplicates, persist_unknown_season_rejected, due_queries,
            topic_candidate_order, scan_season_keyset, sample_is_deterministic,
            mastery_counts, review_log_reads, archive_lifecycle, sessions_and_activity,
            profiles_and_params, leaderboards, commerce_rules, quest_claim_once,
            auth_records, audit_recent, job_lock_exclusive, content_round_trip);
    };
    (@each $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(h) = $setup.await else { return };
                let stores = h.stores();
                let run = tokio::spawn(async move {
                    $crate::conformance::store::$name(&stores).await
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
