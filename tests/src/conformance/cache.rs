//! Conformance suite of the cache ports: [`DueCache`] (every adapter:
//! in-memory, Redis, Redis Cluster) and [`LeaderboardCache`] (adapters that
//! can be built from entries, see [`BuildBoard`]).
//!
//! Each check takes a fresh, empty adapter and panics on a violation. Run
//! them all with [`due_cache_conformance!`](crate::due_cache_conformance),
//! which generates one `#[tokio::test]` per check from a fixture.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use memora_core::domain::{MemoryTracker, TrackerKey};
use memora_core::ids::{QuestionId, SeasonId, SubjectId, TopicId, UserId};
use memora_core::ports::{BoardEntry, DueCache, LeaderboardCache};
use memora_core::srs::{CardState, Phase, SchedulerKind};

/// Reference "now" of the checks.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// A user id.
pub fn user(s: &str) -> UserId {
    UserId::new(s).expect("user id")
}
/// A season id (`SEASON-2026`, `SEASON-2027`, …).
pub fn season(year: u32) -> SeasonId {
    SeasonId::new(format!("SEASON-{year}")).expect("season id")
}
/// A question id.
pub fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).expect("question id")
}
/// A subject id.
pub fn subj(s: &str) -> SubjectId {
    SubjectId::new(s).expect("subject id")
}

/// A tracker row due at `t0 + due_min` minutes, last reviewed at
/// `t0 + reviewed_min` minutes (`None` = never).
pub fn row(
    u: &UserId,
    s: &SeasonId,
    question: &str,
    subject: Option<&str>,
    due_min: i64,
    reviewed_min: Option<i64>,
) -> MemoryTracker {
    MemoryTracker {
        key: TrackerKey {
            user: u.clone(),
            season: s.clone(),
            question: q(question),
        },
        subject: subject.map(subj),
        topic: Some(TopicId::new("topic-1").expect("topic")),
        state: CardState {
            kind: SchedulerKind::Fsrs6,
            phase: Phase::Review,
            step: 0,
            stability: 3.25,
            difficulty: 5.5,
            reps: 4,
            lapses: 1,
            last_review: reviewed_min.map(|m| t0() + Duration::minutes(m)),
            due: t0() + Duration::minutes(due_min),
            scheduled_days: 3,
        },
    }
}

fn ids(v: &[QuestionId]) -> Vec<&str> {
    v.iter().map(|x| x.as_str()).collect()
}

/// Absent schedule: `due`, `user_stats` are `None`, `states` all `None`,
/// and `put` does not create it.
pub async fn absent_is_none(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    assert_eq!(c.due(&u, &s, None, t0(), 10).await.expect("due"), None);
    assert_eq!(c.user_stats(&u, &s, t0()).await.expect("stats"), None);
    assert_eq!(
        c.states(&u, &s, &[q("a"), q("b")]).await.expect("states"),
        vec![None, None]
    );
    c.put(&u, &s, &[row(&u, &s, "a", None, -5, Some(-10))])
        .await
        .expect("put");
    assert_eq!(c.due(&u, &s, None, t0(), 10).await.expect("due"), None);
    c.ping().await.expect("ping");
}

/// `load` then `due`: due ≤ now only, ordered by due then question id,
/// at most `limit`, `total_due` counts every due item; empty loads are
/// present.
pub async fn load_then_due_order_limit_total(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    let rows = vec![
        row(&u, &s, "q-late", None, 0, Some(-100)),
        row(&u, &s, "q-b", None, -30, Some(-100)),
        row(&u, &s, "q-a", None, -30, Some(-100)),
        row(&u, &s, "q-first", None, -60, None),
        row(&u, &s, "q-future", None, 1, Some(-100)),
    ];
    c.load(&u, &s, &rows).await.expect("load");
    let d = c
        .due(&u, &s, None, t0(), 3)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q-first", "q-a", "q-b"]);
    assert_eq!(
        d.total_due, 4,
        "q-late is due exactly at now; q-future is not"
    );
    let d = c
        .due(&u, &s, None, t0(), 100)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q-first", "q-a", "q-b", "q-late"]);
    let later = c
        .due(&u, &s, None, t0() + Duration::minutes(5), 100)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(later.total_due, 5);
    // Another user / season is still absent.
    assert_eq!(
        c.due(&user("bob"), &s, None, t0(), 3).await.expect("due"),
        None
    );
    assert_eq!(
        c.due(&u, &season(2027), None, t0(), 3).await.expect("due"),
        None
    );
    // An empty schedule is present (and answers "nothing due").
    c.load(&user("carol"), &s, &[]).await.expect("load empty");
    let e = c.due(&user("carol"), &s, None, t0(), 3).await.expect("due");
    assert_eq!(e.map(|d| (d.items.len(), d.total_due)), Some((0, 0)));
}

/// A subject filter returns that subject's due items even when many other
/// subjects' items are due earlier.
pub async fn subject_filter_never_lies(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    let mut rows = Vec::new();
    for i in 0..40 {
        rows.push(row(
            &u,
            &s,
            &format!("math-{i:02}"),
            Some("math"),
            -1000 + i,
            Some(-2000),
        ));
    }
    rows.push(row(&u, &s, "hist-1", Some("history"), -5, Some(-2000)));
    rows.push(row(&u, &s, "hist-2", Some("history"), -6, Some(-2000)));
    rows.push(row(&u, &s, "hist-3", Some("history"), 60, Some(-2000)));
    rows.push(row(&u, &s, "nosubj", None, -3000, Some(-4000)));
    c.load(&u, &s, &rows).await.expect("load");
    let h = subj("history");
    let d = c
        .due(&u, &s, Some(&h), t0(), 15)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["hist-2", "hist-1"]);
    assert_eq!(d.total_due, 2);
    let m = subj("math");
    let d = c
        .due(&u, &s, Some(&m), t0(), 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.items.len(), 5);
    assert_eq!(d.total_due, 40);
    assert!(d.items.iter().all(|x| x.as_str().starts_with("math-")));
    let none = c
        .due(&u, &s, Some(&subj("art")), t0(), 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!((none.items.len(), none.total_due), (0, 0));
    let all = c
        .due(&u, &s, None, t0(), 1)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&all.items), ["nosubj"]);
    assert_eq!(all.total_due, 43);
    // A put moving an item to another subject moves it between filters.
    c.put(&u, &s, &[row(&u, &s, "hist-1", Some("math"), -5, Some(-1))])
        .await
        .expect("put");
    let d = c
        .due(&u, &s, Some(&h), t0(), 15)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["hist-2"]);
    let d = c
        .due(&u, &s, Some(&m), t0(), 100)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 41);
}

/// `put` never replaces a newer entry, replaces older ones, adds new
/// questions, and `states` round-trips rows exactly.
pub async fn put_newer_wins(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    let base = row(&u, &s, "q1", Some("math"), -10, Some(-20));
    c.load(&u, &s, std::slice::from_ref(&base))
        .await
        .expect("load");
    assert_eq!(
        c.states(&u, &s, &[q("q1")]).await.expect("states"),
        vec![Some(base.clone())]
    );
    // Older review: ignored.
    let older = row(&u, &s, "q1", Some("math"), 500, Some(-30));
    c.put(&u, &s, &[older]).await.expect("put");
    assert_eq!(
        c.states(&u, &s, &[q("q1")]).await.expect("states"),
        vec![Some(base.clone())]
    );
    let d = c
        .due(&u, &s, None, t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q1"]);
    // A never-reviewed row is older than a reviewed one.
    c.put(&u, &s, &[row(&u, &s, "q1", Some("math"), 500, None)])
        .await
        .expect("put");
    assert_eq!(
        c.states(&u, &s, &[q("q1")]).await.expect("states"),
        vec![Some(base.clone())]
    );
    // Same or newer review: applied.
    let newer = row(&u, &s, "q1", Some("math"), 500, Some(-1));
    let added = row(&u, &s, "q2", None, -1, Some(-2));
    c.put(&u, &s, &[newer.clone(), added.clone()])
        .await
        .expect("put");
    assert_eq!(
        c.states(&u, &s, &[q("q1"), q("q2"), q("q3")])
            .await
            .expect("states"),
        vec![Some(newer), Some(added), None]
    );
    let d = c
        .due(&u, &s, None, t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q2"]);
    let m = subj("math");
    let d = c
        .due(&u, &s, Some(&m), t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
}

/// `load` replaces the schedule (questions not loaded disappear) but keeps
/// cached entries newer than the loaded ones.
pub async fn load_replaces_but_keeps_newer(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    c.load(
        &u,
        &s,
        &[
            row(&u, &s, "old", None, -10, Some(-20)),
            row(&u, &s, "q1", Some("math"), -10, Some(-20)),
        ],
    )
    .await
    .expect("load");
    let fresh = row(&u, &s, "q1", Some("history"), 300, Some(-1));
    c.put(&u, &s, std::slice::from_ref(&fresh))
        .await
        .expect("put");
    // Reload from a store that has not seen the fresh answer yet.
    c.load(
        &u,
        &s,
        &[
            row(&u, &s, "q1", Some("math"), -10, Some(-20)),
            row(&u, &s, "q2", Some("math"), -5, Some(-20)),
        ],
    )
    .await
    .expect("load");
    let st = c
        .states(&u, &s, &[q("old"), q("q1"), q("q2")])
        .await
        .expect("states");
    assert_eq!(st[0], None, "questions not loaded are gone");
    assert_eq!(st[1], Some(fresh), "newer cached entry survives");
    assert!(st[2].is_some());
    let d = c
        .due(&u, &s, None, t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q2"]);
    let m = subj("math");
    let d = c
        .due(&u, &s, Some(&m), t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q2"]);
    // A load with a newer row replaces the cached one.
    let newest = row(&u, &s, "q1", Some("math"), -2, Some(0));
    c.load(&u, &s, std::slice::from_ref(&newest))
        .await
        .expect("load");
    assert_eq!(
        c.states(&u, &s, &[q("q1")]).await.expect("states"),
        vec![Some(newest)]
    );
    let d = c
        .due(&u, &s, Some(&m), t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["q1"]);
}

/// `remove` drops questions (from every filter); unknown ids are ignored.
pub async fn remove_questions(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    c.load(
        &u,
        &s,
        &[
            row(&u, &s, "a", Some("math"), -3, None),
            row(&u, &s, "b", Some("math"), -2, None),
            row(&u, &s, "c", None, -1, None),
        ],
    )
    .await
    .expect("load");
    c.remove(&u, &s, &[q("a"), q("zzz")]).await.expect("remove");
    let d = c
        .due(&u, &s, None, t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["b", "c"]);
    let m = subj("math");
    let d = c
        .due(&u, &s, Some(&m), t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(ids(&d.items), ["b"]);
    assert_eq!(
        c.states(&u, &s, &[q("a")]).await.expect("states"),
        vec![None]
    );
    // Removing everything leaves a present, empty schedule.
    c.remove(&u, &s, &[q("b"), q("c")]).await.expect("remove");
    let d = c
        .due(&u, &s, None, t0(), 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
}

/// `clear_user` drops one schedule only.
pub async fn clear_user_only(c: Arc<dyn DueCache>) {
    let (a, b, s1, s2) = (user("alice"), user("bob"), season(2026), season(2027));
    for (u, s) in [(&a, &s1), (&a, &s2), (&b, &s1)] {
        c.load(u, s, &[row(u, s, "x", Some("math"), -1, None)])
            .await
            .expect("load");
    }
    c.clear_user(&a, &s1).await.expect("clear");
    assert_eq!(c.due(&a, &s1, None, t0(), 5).await.expect("due"), None);
    let m = subj("math");
    assert_eq!(c.due(&a, &s1, Some(&m), t0(), 5).await.expect("due"), None);
    assert!(c.due(&a, &s2, None, t0(), 5).await.expect("due").is_some());
    assert!(c.due(&b, &s1, None, t0(), 5).await.expect("due").is_some());
    // Loading again after a clear starts from scratch.
    c.load(&a, &s1, &[]).await.expect("load");
    let d = c
        .due(&a, &s1, Some(&m), t0(), 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
}

/// `clear_season` drops every schedule of one season and counts them.
pub async fn clear_season_counts(c: Arc<dyn DueCache>) {
    let (s1, s2) = (season(2026), season(2027));
    for i in 0..5 {
        let u = user(&format!("user-{i}"));
        c.load(&u, &s1, &[row(&u, &s1, "x", Some("math"), -1, None)])
            .await
            .expect("load");
    }
    let other = user("user-0");
    c.load(&other, &s2, &[row(&other, &s2, "x", None, -1, None)])
        .await
        .expect("load");
    assert_eq!(c.clear_season(&s1).await.expect("clear"), 5);
    for i in 0..5 {
        let u = user(&format!("user-{i}"));
        assert_eq!(c.due(&u, &s1, None, t0(), 5).await.expect("due"), None);
    }
    assert!(
        c.due(&other, &s2, None, t0(), 5)
            .await
            .expect("due")
            .is_some()
    );
    assert_eq!(c.clear_season(&s1).await.expect("clear"), 0);
}

/// `user_stats` counts cached and due items; `stats` counts schedules by
/// season.
pub async fn stats_count(c: Arc<dyn DueCache>) {
    let (u, s1, s2) = (user("alice"), season(2026), season(2027));
    c.load(
        &u,
        &s1,
        &[
            row(&u, &s1, "a", None, -1, None),
            row(&u, &s1, "b", None, 0, None),
            row(&u, &s1, "c", None, 10, None),
        ],
    )
    .await
    .expect("load");
    c.load(&user("bob"), &s1, &[]).await.expect("load");
    c.load(&u, &s2, &[]).await.expect("load");
    let st = c
        .user_stats(&u, &s1, t0())
        .await
        .expect("stats")
        .expect("present");
    assert_eq!((st.total, st.due_now), (3, 2));
    let g = c.stats().await.expect("stats");
    // `connected` says whether a cache *server* answered: true for Redis,
    // false for the in-process cache, so it is not part of this contract.
    assert_eq!(g.total_keys, 3);
    assert_eq!(g.keys_by_season.get("SEASON-2026"), Some(&2));
    assert_eq!(g.keys_by_season.get("SEASON-2027"), Some(&1));
}

/// `sample_schedules` picks only present schedules of the season, at most
/// `n`, the same ones for the same seed; `sample_entries` returns every
/// entry of a small schedule exactly, at most `n` of a larger one (each a
/// real entry), and nothing for an absent schedule. Reconciliation's cache
/// side is built on these.
pub async fn sampling_for_reconciliation(c: Arc<dyn DueCache>) {
    let (s1, s2) = (season(2026), season(2027));
    let mut all = Vec::new();
    for i in 0..7 {
        let u = user(&format!("learner-{i}"));
        c.load(&u, &s1, &[row(&u, &s1, "x", Some("math"), -1, Some(-5))])
            .await
            .expect("load");
        all.push(u);
    }
    let elsewhere = user("other-season");
    c.load(&elsewhere, &s2, &[row(&elsewhere, &s2, "x", None, 1, None)])
        .await
        .expect("load");
    // Stray entries without a present schedule are not a schedule.
    c.put(
        &user("never-loaded"),
        &s1,
        &[row(&user("never-loaded"), &s1, "x", None, 1, None)],
    )
    .await
    .expect("put");

    let mut picked = c.sample_schedules(&s1, 100, 9).await.expect("sample");
    picked.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(
        picked, want,
        "every present schedule of the season, no other"
    );
    let three = c.sample_schedules(&s1, 3, 9).await.expect("sample");
    assert_eq!(three.len(), 3);
    assert!(three.iter().all(|u| all.contains(u)));
    assert_eq!(c.sample_schedules(&s1, 3, 9).await.expect("sample"), three);
    assert!(
        c.sample_schedules(&season(2030), 5, 1)
            .await
            .expect("sample")
            .is_empty()
    );

    let u = user("big");
    let rows: Vec<MemoryTracker> = (0..30)
        .map(|i| row(&u, &s1, &format!("q-{i:02}"), Some("math"), i, Some(i - 60)))
        .collect();
    c.load(&u, &s1, &rows).await.expect("load");
    let mut every = c.sample_entries(&u, &s1, 30).await.expect("entries");
    every.sort_by(|a, b| a.key.question.cmp(&b.key.question));
    assert_eq!(
        every, rows,
        "a schedule within n comes back whole and exact"
    );
    let some = c.sample_entries(&u, &s1, 10).await.expect("entries");
    assert_eq!(some.len(), 10);
    for e in &some {
        assert!(rows.contains(e), "{e:?} is a cached entry");
    }
    assert!(
        c.sample_entries(&u, &s2, 10)
            .await
            .expect("entries")
            .is_empty()
    );
    assert!(
        c.sample_entries(&u, &s1, 0)
            .await
            .expect("entries")
            .is_empty()
    );
}

/// Rows repeated inside one `load` or `put` batch: the newest wins.
pub async fn duplicate_rows_in_batch(c: Arc<dyn DueCache>) {
    let (u, s) = (user("alice"), season(2026));
    let newer = row(&u, &s, "a", None, 100, Some(-1));
    c.load(
        &u,
        &s,
        &[newer.clone(), row(&u, &s, "a", None, -5, Some(-9))],
    )
    .await
    .expect("load");
    assert_eq!(
        c.states(&u, &s, &[q("a")]).await.expect("states"),
        vec![Some(newer.clone())]
    );
    let newest = row(&u, &s, "a", None, -7, Some(5));
    c.put(
        &u,
        &s,
        &[newest.clone(), row(&u, &s, "a", None, 1, Some(2))],
    )
    .await
    .expect("put");
    assert_eq!(
        c.states(&u, &s, &[q("a")]).await.expect("states"),
        vec![Some(newest)]
    );
}

/// Generates one `#[tokio::test]` per [`DueCache`] check. `$fixture` is an
/// async fn returning `Option<Arc<dyn DueCache>>` (`None` = skipped).
#[macro_export]
macro_rules! due_cache_conformance {
    ($fixture:path) => {
        $crate::due_cache_conformance!(@ $fixture;
            absent_is_none, load_then_due_order_limit_total, subject_filter_never_lies,
            put_newer_wins, load_replaces_but_keeps_newer, remove_questions,
            clear_user_only, clear_season_counts, stats_count, duplicate_rows_in_batch,
            sampling_for_reconciliation);
    };
    (@ $fixture:path; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                if let Some(cache) = $fixture().await {
                    $crate::conformance::cache::$check(cache).await;
                }
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Leaderboards
// ---------------------------------------------------------------------------

/// A leaderboard adapter the suite can build from given entries (the
/// production path builds from the store).
#[async_trait]
pub trait BuildBoard: LeaderboardCache {
    /// Replaces a board with `entries` and marks it built.
    async fn build(&self, subject: Option<&SubjectId>, bucket: &str, entries: &[BoardEntry]);
}

fn entry(u: &str, xp: i64) -> BoardEntry {
    BoardEntry { user: user(u), xp }
}

/// Unbuilt boards answer `None`; XP added to them is not counted.
pub async fn board_unbuilt_is_none(b: Arc<dyn BuildBoard>) {
    let day = t0().date_naive();
    b.add_xp(&user("alice"), None, day, 10).await.expect("add");
    assert_eq!(b.top(None, "all", 10).await.expect("top"), None);
    assert_eq!(
        b.rank(&user("alice"), None, "all").await.expect("rank"),
        None
    );
}

/// Ordering (XP desc, then user asc), limit, ranks with ties, XP ≤ 0
/// excluded, unknown user unranked.
pub async fn board_order_and_rank(b: Arc<dyn BuildBoard>) {
    b.build(
        None,
        "all",
        &[
            entry("dave", 50),
            entry("bob", 70),
            entry("carol", 70),
            entry("alice", 90),
            entry("zero", 0),
        ],
    )
    .await;
    let top = b.top(None, "all", 3).await.expect("top").expect("built");
    assert_eq!(
        top,
        vec![entry("alice", 90), entry("bob", 70), entry("carol", 70)]
    );
    let all = b.top(None, "all", 100).await.expect("top").expect("built");
    assert_eq!(all.len(), 4, "zero XP is not ranked");
    assert_eq!(
        b.rank(&user("carol"), None, "all").await.expect("rank"),
        Some((70, Some(3)))
    );
    assert_eq!(
        b.rank(&user("alice"), None, "all").await.expect("rank"),
        Some((90, Some(1)))
    );
    assert_eq!(
        b.rank(&user("nobody"), None, "all").await.expect("rank"),
        Some((0, None))
    );
    assert_eq!(
        b.rank(&user("zero"), None, "all").await.expect("rank"),
        Some((0, None))
    );
}

/// `add_xp` updates all four period buckets of the global board and of the
/// subject board, once built.
pub async fn board_add_xp_updates_every_bucket(b: Arc<dyn BuildBoard>) {
    use memora_core::gamification::LeaderboardPeriod as P;
    let day = t0().date_naive();
    let math = subj("math");
    let periods = [P::Daily, P::Weekly, P::Monthly, P::AllTime];
    for p in &periods {
        b.build(None, &p.bucket(day), &[entry("bob", 5)]).await;
        b.build(Some(&math), &p.bucket(day), &[]).await;
    }
    b.add_xp(&user("alice"), Some(&math), day, 10)
        .await
        .expect("add");
    b.add_xp(&user("alice"), None, day, 1).await.expect("add");
    for p in &periods {
        let bucket = p.bucket(day);
        let g = b.top(None, &bucket, 10).await.expect("top").expect("built");
        assert_eq!(g, vec![entry("alice", 11), entry("bob", 5)], "{bucket}");
        let s = b
            .top(Some(&math), &bucket, 10)
            .await
            .expect("top")
            .expect("built");
        assert_eq!(s, vec![entry("alice", 10)], "{bucket}");
        assert_eq!(
            b.rank(&user("bob"), None, &bucket).await.expect("rank"),
            Some((5, Some(2)))
        );
    }
    // Another subject's board is untouched (and unbuilt).
    assert_eq!(
        b.top(Some(&subj("art")), "all", 10).await.expect("top"),
        None
    );
}

#[async_trait]
impl BuildBoard for memora_cache_redis::RedisLeaderboard {
    async fn build(&self, subject: Option<&SubjectId>, bucket: &str, entries: &[BoardEntry]) {
        self.fill(subject, bucket, entries)
            .await
            .expect("fill board");
    }
}
