//! What a lesson play is worth: the server's view of the play (the stages
//! of the lesson that were answered), never the bare claim of the client.

use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::services::sessions::{Interaction, LessonSubmission};

use crate::support::*;

fn lesson_sub(lesson: &str, interactions: Vec<Interaction>) -> LessonSubmission {
    LessonSubmission {
        lesson: LessonId::new(lesson).unwrap(),
        claimed_xp: Some(40),
        score: Some(100),
        interactions,
        raw: serde_json::json!({}),
    }
}

#[tokio::test]
async fn a_play_without_interactions_earns_nothing_and_completes_nothing() {
    let h = harness().await;
    let learner = h.fresh_student("empty-play").await;
    let lesson = LessonId::new("hist-l1").unwrap();
    h.app
        .learning()
        .get_lesson_details(&learner, &lesson)
        .await
        .unwrap();
    let out = h
        .app
        .learning()
        .submit_session(&learner, &lesson_sub("hist-l1", Vec::new()))
        .await
        .unwrap();
    assert_eq!(out.xp_earned, 0);
    assert!(!out.completed);
    assert_eq!(h.total_xp(&learner).await, 0);
    let completed = h
        .app
        .ports()
        .activity
        .completed_lessons(&learner.user)
        .await
        .unwrap();
    assert!(!completed.contains(&lesson));
    // Not activity either: the streak quest stays open.
    let quests = h
        .app
        .gamification()
        .get_daily_quests(&learner, None)
        .await
        .unwrap();
    let streak = quests.iter().find(|q| q.id == "quest_streak").unwrap();
    assert_eq!(streak.status, QuestStatus::Active);
    // The opening is still there: the real play can follow it.
    let full = h.every_stage("hist-l1").await;
    let out = h
        .app
        .learning()
        .submit_session(&learner, &lesson_sub("hist-l1", full))
        .await
        .unwrap();
    assert_eq!(out.xp_earned, 40);
    assert!(out.completed);
}

#[tokio::test]
async fn xp_follows_the_answered_stages_and_completion_needs_all_of_them() {
    let h = harness().await;
    let learner = h.fresh_student("partial-play").await;
    let all = h.every_stage("hist-l1").await;
    assert_eq!(all.len(), 3);
    // One stage of three (even answered several times): a third of the XP.
    let one = vec![
        all[0].clone(),
        Interaction {
            question_id: q("hist-l1-rv:1"),
            ..all[0].clone()
        },
    ];
    let out = h.play(&learner, "hist-l1", one, Some(100)).await;
    assert_eq!(out.xp_earned, 13, "⌊40 × 1/3⌋");
    assert!(!out.completed, "two stages were never played");
    // Two stages on the second play of the day: ⌊40 × 2/3⌋ × 50 %.
    let out = h
        .play(&learner, "hist-l1", all[..2].to_vec(), Some(100))
        .await;
    assert_eq!(out.xp_earned, 13);
    assert!(!out.completed);
    // Every stage, third play: 10 % of 40.
    let out = h.play(&learner, "hist-l1", all.clone(), Some(100)).await;
    assert_eq!(out.xp_earned, 4);
    assert!(out.completed);
    assert_eq!(h.total_xp(&learner).await, 13 + 13 + 4);
}

#[tokio::test]
async fn a_failed_play_does_not_complete_the_lesson() {
    let h = harness().await;
    let learner = h.fresh_student("failed-play").await;
    let mut all = h.every_stage("hist-l1").await;
    for i in &mut all {
        i.is_correct = Some(false);
        i.attempts = Some(3);
    }
    // The client's score cannot lift a play the server saw failing.
    let out = h.play(&learner, "hist-l1", all, Some(100)).await;
    assert!(!out.completed);
    assert_eq!(out.xp_earned, 40, "every stage was played");
    // A client that reports a failing score is believed (it can only lower).
    let all = h.every_stage("hist-l1").await;
    let out = h.play(&learner, "hist-l1", all, Some(20)).await;
    assert!(!out.completed);
}
