//! Conformance suite of [`ActivityStore`]: the session ledger (atomic XP
//! credit, duplicates refused), what is aggregated from it and the
//! leaderboard sources.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation; the
//! [`store_conformance!`](crate::store_conformance) macro runs them on every
//! adapter.

use std::collections::HashSet;

use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;

use super::store::*;

/// Sessions: atomic XP credit, duplicates refused, streak days, XP per day,
/// day summaries, lesson plays and completions.
pub async fn sessions_and_activity(s: &Stores) {
    let u = user("u1");
    s.activity
        .record_session(&session(
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
    s.activity
        .record_session(&session(
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
    s.activity
        .record_session(&session(
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
    s.activity
        .record_session(&session(
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
    s.activity
        .record_session(&session(
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
        s.activity
            .record_session(&session(
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
    let prof = s
        .profiles
        .get_profile(&u)
        .await
        .expect("profile")
        .expect("created");
    assert_eq!(prof.total_xp, 75);
    assert_eq!(
        s.activity
            .subject_xp(&u, &subject("math"))
            .await
            .expect("xp"),
        15
    );
    assert_eq!(
        s.activity
            .subject_xp(&u, &subject("none"))
            .await
            .expect("xp"),
        0
    );
    assert_eq!(
        s.activity.active_days(&u, day(1)).await.expect("days"),
        vec![day(4), day(3), day(1)]
    );
    assert_eq!(
        s.activity.active_days(&u, day(2)).await.expect("days"),
        vec![day(4), day(3)]
    );
    assert_eq!(
        s.activity.xp_by_day(&u, day(1), day(4)).await.expect("xp"),
        vec![(day(1), 15), (day(3), 7), (day(4), 3)]
    );
    assert_eq!(
        s.activity.day_summary(&u, day(1)).await.expect("sum"),
        DaySummary {
            lesson_sessions: 2,
            review_sessions: 0,
            xp: 15
        }
    );
    assert_eq!(
        s.activity.day_summary(&u, day(4)).await.expect("sum"),
        DaySummary {
            lesson_sessions: 1,
            review_sessions: 0,
            xp: 3
        }
    );
    let l1 = LessonId::new("l1").expect("lesson");
    assert_eq!(
        s.activity
            .lesson_plays_on(&u, &l1, day(1))
            .await
            .expect("plays"),
        2
    );
    assert_eq!(
        s.activity
            .lesson_plays_on(&u, &l1, day(2))
            .await
            .expect("plays"),
        0
    );
    assert_eq!(
        s.activity.completed_lessons(&u).await.expect("done"),
        HashSet::from([l1])
    );
    // upsert_profile never touches total_xp.
    let mut edited = prof.clone();
    edited.full_name = "Renamed".into();
    edited.total_xp = 9999;
    edited.time_zone = "Asia/Amman".into();
    s.profiles.upsert_profile(&edited).await.expect("upsert");
    let after = s
        .profiles
        .get_profile(&u)
        .await
        .expect("profile")
        .expect("exists");
    assert_eq!(after.full_name, "Renamed");
    assert_eq!(after.time_zone, "Asia/Amman");
    assert_eq!(after.total_xp, 75);
}

/// Leaderboards: XP desc then user id, zero XP and disabled users out,
/// subject boards, period windows from the learner day.
pub async fn leaderboards(s: &Stores) {
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
        s.activity
            .record_session(&session(
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
    s.profiles
        .upsert_profile(&PlayerProfile::new(user("u-zero"), "Zero"))
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
        board(s.activity.top_players(&global, 10).await.expect("top")),
        vec![
            ("u-a".into(), 30),
            ("u-c".into(), 30),
            ("u-b".into(), 20),
            ("u-d".into(), 5)
        ]
    );
    assert_eq!(
        board(s.activity.top_players(&global, 2).await.expect("top")).len(),
        2
    );
    let math = BoardQuery {
        subject: Some(subject("math")),
        since: None,
    };
    assert_eq!(
        board(s.activity.top_players(&math, 10).await.expect("top")),
        vec![("u-c".into(), 30), ("u-b".into(), 20), ("u-a".into(), 10)]
    );
    let week = BoardQuery {
        subject: None,
        since: Some(day(5)),
    };
    assert_eq!(
        board(s.activity.top_players(&week, 10).await.expect("top")),
        vec![("u-a".into(), 30), ("u-b".into(), 20), ("u-d".into(), 5)]
    );
    let week_math = BoardQuery {
        subject: Some(subject("math")),
        since: Some(day(5)),
    };
    assert_eq!(
        board(s.activity.top_players(&week_math, 10).await.expect("top")),
        vec![("u-b".into(), 20), ("u-a".into(), 10)]
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u-c"), &global)
            .await
            .expect("rank"),
        (30, Some(2))
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u-a"), &global)
            .await
            .expect("rank"),
        (30, Some(1))
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u-d"), &week)
            .await
            .expect("rank"),
        (5, Some(3))
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u-c"), &week)
            .await
            .expect("rank"),
        (0, None)
    );
    assert_eq!(
        s.activity
            .player_rank(&user("u-zero"), &global)
            .await
            .expect("rank"),
        (0, None)
    );
    let (xp, rank) = s
        .activity
        .player_rank(&user("u-x"), &global)
        .await
        .expect("rank");
    assert_eq!((xp, rank), (100, None));
    assert_eq!(
        s.activity
            .player_rank(&user("u-a"), &math)
            .await
            .expect("rank"),
        (10, Some(3))
    );
}

/// A lesson play and its tracker batch are recorded together: the batch is
/// pending (readable by job id, listed oldest first up to a time) until
/// cleared; a duplicate session or job id stores nothing; the records round
/// trip exactly.
pub async fn sessions_with_pending_batches(s: &Stores) {
    make_seasons(s, &[2026]).await;
    let u = user("u1");
    let job = |id: &str, rid: &str| PersistJob {
        id: JobId::new(id).expect("job"),
        records: vec![
            record(
                &tracker("u1", 2026, "q1", 2, at(24), Some(at(0)), Some("math"), None),
                &format!("{rid}:0"),
            ),
            record(
                &tracker("u1", 2026, "q2", 1, at(48), Some(at(0)), None, Some("t1")),
                &format!("{rid}:1"),
            ),
        ],
    };
    let play = |id: &str, h: i64| {
        let mut p = session(
            id,
            "u1",
            SessionKind::Lesson,
            Some("l1"),
            Some("math"),
            30,
            true,
            day(1),
        );
        p.created_at = at(h);
        p
    };
    let j1 = job("job-1", "j1");
    s.activity
        .record_session_with_batch(&play("gs-1", 0), &j1)
        .await
        .expect("record");
    assert_eq!(
        s.activity
            .subject_xp(&u, &subject("math"))
            .await
            .expect("xp"),
        30
    );
    assert_eq!(
        s.profiles
            .get_profile(&u)
            .await
            .expect("p")
            .expect("profile")
            .total_xp,
        30
    );
    assert_eq!(
        s.activity.pending_batch(&j1.id).await.expect("pending"),
        Some(j1.clone()),
        "records round trip exactly"
    );
    // A duplicate session stores neither the session nor a second batch.
    assert!(matches!(
        s.activity
            .record_session_with_batch(&play("gs-1", 1), &job("job-2", "j2"))
            .await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        s.activity
            .pending_batch(&JobId::new("job-2").expect("job"))
            .await
            .expect("pending"),
        None
    );
    // A duplicate job id stores no session (no XP either).
    assert!(matches!(
        s.activity
            .record_session_with_batch(&play("gs-2", 1), &job("job-1", "j1b"))
            .await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        s.activity
            .lesson_plays_on(&u, &LessonId::new("l1").expect("lesson"), day(1))
            .await
            .expect("plays"),
        1
    );
    assert_eq!(
        s.profiles
            .get_profile(&u)
            .await
            .expect("p")
            .expect("profile")
            .total_xp,
        30
    );
    let j3 = job("job-3", "j3");
    s.activity
        .record_session_with_batch(&play("gs-3", 2), &j3)
        .await
        .expect("record");
    let ids = |v: Vec<PersistJob>| v.into_iter().map(|j| j.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(s.activity.pending_batches(at(5), 10).await.expect("list")),
        vec!["job-1", "job-3"]
    );
    assert_eq!(
        ids(s.activity.pending_batches(at(2), 10).await.expect("list")),
        vec!["job-1", "job-3"],
        "recorded at or before"
    );
    assert_eq!(
        ids(s.activity.pending_batches(at(1), 10).await.expect("list")),
        vec!["job-1"]
    );
    assert_eq!(
        ids(s.activity.pending_batches(at(5), 1).await.expect("list")),
        vec!["job-1"]
    );
    s.activity.clear_pending_batch(&j1.id).await.expect("clear");
    s.activity
        .clear_pending_batch(&j1.id)
        .await
        .expect("clearing twice is fine");
    assert_eq!(
        s.activity.pending_batch(&j1.id).await.expect("pending"),
        None
    );
    assert_eq!(
        ids(s.activity.pending_batches(at(5), 10).await.expect("list")),
        vec!["job-3"]
    );
    assert_eq!(
        s.profiles
            .get_profile(&u)
            .await
            .expect("p")
            .expect("profile")
            .total_xp,
        60,
        "clearing a batch never touches the XP"
    );
}
