//! The leaderboard use case served from the Redis leaderboard cache (the
//! in-memory store behind it): rows carry the player's level from their
//! total XP, like the store path, not the level of the board's XP.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use memora_cache_redis::{RedisConfig, RedisLeaderboard};
use memora_core::Memora;
use memora_core::domain::Actor;
use memora_core::gamification::{LeaderboardPeriod, level_for_xp};
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::LeaderboardCache;
use memora_core::services::Config;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::srs::AnswerSignals;

#[tokio::test]
async fn redis_boards_show_the_level_of_the_total_xp() {
    let Some(url) = memora_tests::redis_url_or_skip().await else {
        return;
    };
    let cfg = RedisConfig::single(url).namespace(memora_tests::random_namespace());
    let board = RedisLeaderboard::connect(cfg.clone())
        .await
        .expect("connect");
    let backend = InMemoryBackend::new();
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let mut ports = backend.ports();
    ports.clock = ManualClock::new(start);
    ports.leaderboard = Some(Arc::new(board.clone()) as Arc<dyn LeaderboardCache>);
    let app = Memora::new(ports, Config::default());
    let info = memora_core::demo::seed_demo(&app, "demo-password")
        .await
        .expect("demo");
    let student = Actor::student(info.student.clone());
    let today = start.date_naive();
    for period in [LeaderboardPeriod::Daily, LeaderboardPeriod::AllTime] {
        board
            .rebuild(app.ports().activity.as_ref(), None, period, today, 1000)
            .await
            .expect("rebuild");
    }
    // Some XP today, added to the built boards incrementally.
    let s = app
        .reviews()
        .get_review_session(
            &student,
            &ReviewQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("session");
    let sub = ReviewSubmission {
        answers: s
            .questions
            .iter()
            .map(|c| AnswerInput {
                question_id: c.id.clone(),
                signals: AnswerSignals::review(true, 3000),
                review_id: None,
            })
            .collect(),
        ..Default::default()
    };
    let out = app
        .reviews()
        .submit_review_session(&student, &sub)
        .await
        .expect("submit");
    let total = app
        .gamification()
        .get_player_profile(&student)
        .await
        .expect("profile")
        .total_xp;
    let level = level_for_xp(total);
    assert_eq!(level, 2);
    // The daily board is served by Redis: today's XP, total level.
    let top = board
        .top(None, &LeaderboardPeriod::Daily.bucket(today), 10)
        .await
        .expect("top")
        .expect("built");
    assert_eq!(top[0].xp, out.xp_earned, "served from the cache");
    let daily = app
        .gamification()
        .get_leaderboard(&student, None, LeaderboardPeriod::Daily)
        .await
        .expect("board");
    assert_eq!(daily.rows[0].xp, out.xp_earned);
    assert!(level_for_xp(daily.rows[0].xp) < level);
    assert_eq!(daily.rows[0].level, level, "{daily:?}");
    assert_eq!(daily.me.level, level);
    let all = app
        .gamification()
        .get_leaderboard(&student, None, LeaderboardPeriod::AllTime)
        .await
        .expect("board");
    assert_eq!(all.rows[0].xp, total);
    assert_eq!(all.rows[0].level, level);
    memora_tests::redis_delete_namespace(&cfg).await;
}
