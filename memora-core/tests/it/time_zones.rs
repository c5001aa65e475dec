//! Learners outside UTC, end to end on the in-memory backend with a manual
//! clock: streak days, daily quests, the daily leaderboard and due days all
//! follow the learner's day (time zone + 04:00 rollover), across the 2026
//! daylight-saving changes of America/New_York (2026-03-08 and 2026-11-01)
//! and in Asia/Kolkata (+05:30); a zone change of an active learner takes
//! effect at the start of their next day.

use chrono::{Duration, NaiveDate};
use memora_core::CoreError;
use memora_core::domain::*;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::*;

use crate::support::*;

/// The demo seeded at `seed`, then (three quiet days later) the student
/// moved to `zone` with a 04:00 rollover — at once, being inactive.
async fn learner_in(zone: &str, seed: &str) -> H {
    let h = harness_at(utc(seed)).await;
    h.clock.advance(Duration::days(3));
    let p = h
        .app
        .gamification()
        .set_time_zone(&h.student, zone, Some(4))
        .await
        .unwrap();
    assert_eq!((p.time_zone.as_str(), p.pending_zone), (zone, None));
    h
}

/// Serves one due card at `at` and answers it correctly; returns its id.
async fn review_one(h: &H, at: &str, ms: u32) -> QuestionId {
    h.clock.set(utc(at));
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(1))
        .await
        .unwrap();
    let id = s.questions[0].id.clone();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(std::slice::from_ref(&id), true, ms))
        .await
        .unwrap();
    id
}

async fn claim_streak(h: &H) -> Result<i64, CoreError> {
    h.app
        .gamification()
        .claim_quest_reward(&h.student, "quest_streak")
        .await
        .map(|c| c.xp_awarded)
}

async fn streak_status(h: &H) -> QuestStatus {
    h.app
        .gamification()
        .get_daily_quests(&h.student, None)
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.id == "quest_streak")
        .unwrap()
        .status
}

async fn daily_xp(h: &H) -> i64 {
    h.app
        .gamification()
        .get_leaderboard(&h.student, None, LeaderboardPeriod::Daily)
        .await
        .unwrap()
        .me
        .xp
}

async fn is_due(h: &H, at: &str, id: &QuestionId) -> bool {
    h.clock.set(utc(at));
    h.app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap()
        .questions
        .iter()
        .any(|c| &c.id == id)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn new_york_days_across_the_spring_change() {
    let h = learner_in("America/New_York", "2026-03-01T15:00:00Z").await;
    // 23:30 EST on 6 March: learner day 6 March.
    review_one(&h, "2026-03-07T04:30:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    let xp = daily_xp(&h).await;
    assert!(xp > 100, "the review and the quest reward");
    // 03:59 EST on 7 March is still learner day 6 March: claimed already,
    // and the daily board still shows that day's XP.
    h.clock.set(utc("2026-03-07T08:59:00Z"));
    assert!(matches!(
        claim_streak(&h).await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(daily_xp(&h).await, xp);
    // 04:01 EST: a new learner day, a new quest day and a new daily board.
    h.clock.set(utc("2026-03-07T09:01:00Z"));
    assert_eq!(streak_status(&h).await, QuestStatus::Active);
    assert!(matches!(
        claim_streak(&h).await,
        Err(CoreError::InvalidState(_))
    ));
    assert_eq!(daily_xp(&h).await, 0);
    // 03:30 EDT on 8 March (the clocks jumped at 02:00): still 7 March.
    review_one(&h, "2026-03-08T07:30:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    // 04:30 EDT on 8 March: learner day 8 March.
    review_one(&h, "2026-03-08T08:30:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 3, "6, 7 and 8 March");
    let active: Vec<NaiveDate> = stats
        .weekly
        .iter()
        .filter(|d| d.xp > 0)
        .map(|d| d.date)
        .collect();
    assert_eq!(
        active,
        vec![day(2026, 3, 6), day(2026, 3, 7), day(2026, 3, 8)]
    );
    assert_eq!(stats.weekly.last().unwrap().date, day(2026, 3, 8));
}

#[tokio::test]
async fn a_card_due_tomorrow_is_due_on_the_learners_next_day_across_the_fall_change() {
    let h = learner_in("America/New_York", "2026-10-25T15:00:00Z").await;
    // 04:30 EDT on 31 October (learner day 31 October): a correct but slow
    // answer keeps the card at level 1, due the next learner day.
    let card = review_one(&h, "2026-10-31T08:30:00Z", 7000).await;
    assert!(!is_due(&h, "2026-10-31T20:00:00Z", &card).await);
    // 03:45 EST on 1 November — the clocks went back at 02:00, and this is
    // still learner day 31 October: not due yet (24 h later would be).
    assert!(!is_due(&h, "2026-11-01T08:45:00Z", &card).await);
    // Learner day 1 November (04:30 EST, the same wall-clock time): due.
    assert!(is_due(&h, "2026-11-01T09:31:00Z", &card).await);
}

#[tokio::test]
async fn a_card_due_tomorrow_is_not_skipped_across_the_spring_change() {
    let h = learner_in("America/New_York", "2026-03-01T15:00:00Z").await;
    // 03:59 EST on 7 March: learner day 6 March.
    let card = review_one(&h, "2026-03-07T08:59:00Z", 7000).await;
    // 03:59:30 EDT on 8 March is learner day 7 March, the card's next day:
    // it is due (24 h later would only be 04:59 EDT, on 8 March).
    assert!(is_due(&h, "2026-03-08T07:59:30Z", &card).await);
}

#[tokio::test]
async fn kolkata_days_turn_at_22_30_utc() {
    let h = learner_in("Asia/Kolkata", "2026-03-01T15:00:00Z").await;
    // 03:59 IST on 5 March: learner day 4 March.
    let card = review_one(&h, "2026-03-04T22:29:00Z", 7000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    // 04:01 IST: learner day 5 March, one more claim, a new daily board.
    h.clock.set(utc("2026-03-04T22:31:00Z"));
    assert_eq!(daily_xp(&h).await, 0);
    review_one(&h, "2026-03-04T22:31:00Z", 3000).await;
    assert!(daily_xp(&h).await > 0);
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    assert!(matches!(
        claim_streak(&h).await,
        Err(CoreError::Conflict(_))
    ));
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 2);
    // The first card is due on learner day 5 March at the same time.
    assert!(!is_due(&h, "2026-03-05T22:28:00Z", &card).await);
    assert!(is_due(&h, "2026-03-05T22:29:30Z", &card).await);
}

#[tokio::test]
async fn a_zone_change_takes_effect_at_the_next_learner_day() {
    let h = learner_in("America/New_York", "2026-01-10T15:00:00Z").await;
    // 10:00 EST on 14 January: active, streak quest claimed.
    review_one(&h, "2026-01-14T15:00:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    let p = h
        .app
        .gamification()
        .set_time_zone(&h.student, "Asia/Kolkata", Some(4))
        .await
        .unwrap();
    assert_eq!(p.time_zone, "America/New_York");
    let pending = p.pending_zone.expect("pending change");
    assert_eq!(pending.time_zone, "Asia/Kolkata");
    assert_eq!(pending.effective_at, utc("2026-01-15T09:00:00Z"));
    // Kolkata is already on 15 January, but the change has not started: no
    // second claim for 14 January.
    assert!(matches!(
        claim_streak(&h).await,
        Err(CoreError::Conflict(_))
    ));
    h.clock.set(utc("2026-01-15T08:59:00Z"));
    assert_eq!(streak_status(&h).await, QuestStatus::Claimed);
    // From 04:00 EST on 15 January the learner lives in Kolkata (14:30 IST).
    review_one(&h, "2026-01-15T09:01:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    // 04:30 IST on 16 January (still 15 January in New York): a new day.
    h.clock.set(utc("2026-01-15T23:00:00Z"));
    assert_eq!(streak_status(&h).await, QuestStatus::Active);
    review_one(&h, "2026-01-15T23:00:00Z", 3000).await;
    assert_eq!(claim_streak(&h).await.unwrap(), 100);
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 3, "14, 15 and 16 January");
}
