//! Per-subject review quests: they complete when the subject's due reviews
//! are done and pay once per quest day.

use memora_core::CoreError;
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::services::reviews::ReviewQuery;

use crate::support::*;

async fn quest(h: &H, actor: &Actor, id: &str) -> Option<DailyQuest> {
    h.app
        .gamification()
        .get_daily_quests(actor, None)
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.id == id)
}

#[tokio::test]
async fn subject_review_quest_completes_and_pays_once_per_day() {
    let h = harness().await;
    let history = SubjectId::new("history").unwrap();
    let before = quest(&h, &h.student, "quest_review_history").await.unwrap();
    assert_eq!(before.status, QuestStatus::Active);
    assert_eq!(before.progress, 0);
    assert!(before.target > 0);
    match h
        .app
        .gamification()
        .claim_quest_reward(&h.student, "quest_review_history")
        .await
    {
        Err(CoreError::InvalidState(_)) => {}
        other => panic!("claim before completion: {other:?}"),
    }

    // Review part of the subject: progress moves, the target stays.
    let subject_query = |limit| ReviewQuery {
        subject: Some(history.clone()),
        limit: Some(limit),
        ..Default::default()
    };
    let first = h
        .app
        .reviews()
        .get_review_session(&h.student, &subject_query(3))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = first.questions.iter().map(|c| c.id.clone()).collect();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 3000))
        .await
        .unwrap();
    let partway = quest(&h, &h.student, "quest_review_history").await.unwrap();
    assert_eq!(partway.status, QuestStatus::Active);
    assert_eq!(partway.progress, 3);
    assert_eq!(partway.target, before.target);

    // Review everything else that is due in history.
    let rest = h
        .app
        .reviews()
        .get_review_session(&h.student, &subject_query(50))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = rest.questions.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len() as i64, before.target - 3);
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 3000))
        .await
        .unwrap();
    let done = quest(&h, &h.student, "quest_review_history").await.unwrap();
    assert_eq!(done.status, QuestStatus::Completed);
    assert_eq!(done.progress, done.target);
    assert_eq!(done.target, before.target);
    // Another subject's quest is unaffected.
    let science = quest(&h, &h.student, "quest_review_science").await.unwrap();
    assert_eq!(science.status, QuestStatus::Active);

    let xp = h.total_xp(&h.student).await;
    let claim = h
        .app
        .gamification()
        .claim_quest_reward(&h.student, "quest_review_history")
        .await
        .unwrap();
    assert_eq!(claim.xp_awarded, done.reward_xp);
    assert_eq!(claim.xp_awarded, 10 * before.target);
    assert_eq!(h.total_xp(&h.student).await, xp + claim.xp_awarded);
    match h
        .app
        .gamification()
        .claim_quest_reward(&h.student, "quest_review_history")
        .await
    {
        Err(CoreError::Conflict(_)) => {}
        other => panic!("second claim: {other:?}"),
    }
    assert_eq!(h.total_xp(&h.student).await, xp + claim.xp_awarded);
    assert_eq!(
        quest(&h, &h.student, "quest_review_history")
            .await
            .unwrap()
            .status,
        QuestStatus::Claimed
    );
}

#[tokio::test]
async fn lesson_plays_do_not_make_a_review_quest() {
    // Learning new items in a lesson is not reviewing: a learner with
    // nothing due gets no per-subject review quest from a lesson play.
    let h = harness().await;
    let fresh = h.fresh_student("quest-newcomer").await;
    h.complete(&fresh, "hist-l1").await;
    let quests = h
        .app
        .gamification()
        .get_daily_quests(&fresh, None)
        .await
        .unwrap();
    assert!(
        quests.iter().all(|q| !q.id.starts_with("quest_review_")),
        "{quests:?}"
    );
}

/// The demo's activity lies on the three learner days before today, by the
/// learner's own day (rollover 04:00), whatever the hour it is seeded at:
/// between midnight and the rollover, "today" is still the previous date.
/// (Seeded with a midnight rollover, the streak quest was already complete
/// at 00:05 UTC, and an HTTP test failed between 00:00 and 04:00.)
#[tokio::test]
async fn the_demo_leaves_today_empty_at_any_hour() {
    for at in [
        "2026-11-30T00:05:00Z",
        "2026-11-30T03:59:00Z",
        "2026-11-30T04:00:00Z",
        "2026-11-30T23:59:00Z",
    ] {
        let h = crate::support::harness_at(crate::support::utc(at)).await;
        let quests = h
            .app
            .gamification()
            .get_daily_quests(&h.student, None)
            .await
            .unwrap();
        let streak = quests.iter().find(|q| q.id == "quest_streak").unwrap();
        assert_eq!(
            streak.status,
            memora_core::domain::QuestStatus::Active,
            "seeded at {at}: nothing was done today yet"
        );
        let stats = h
            .app
            .gamification()
            .get_full_profile_stats(&h.student, None)
            .await
            .unwrap();
        assert_eq!(stats.streak, 3, "seeded at {at}: a three-day streak");
    }
}
