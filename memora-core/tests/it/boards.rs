//! Leaderboard levels come from the player's total XP on every board, not
//! from the XP in the board's scope.

use memora_core::gamification::{LeaderboardPeriod, level_for_xp};
use memora_core::ids::*;

use crate::support::*;

#[tokio::test]
async fn every_board_shows_the_level_of_the_total_xp() {
    let h = harness().await;
    // A little XP today on top of the demo history (240 XP: level 2).
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(2))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 3000))
        .await
        .unwrap();
    let total = h.total_xp(&h.student).await;
    let level = level_for_xp(total);
    assert_eq!(level, 2, "total {total}");
    let history = SubjectId::new("history").unwrap();
    for (subject, period) in [
        (None, LeaderboardPeriod::Daily),
        (None, LeaderboardPeriod::Weekly),
        (None, LeaderboardPeriod::Monthly),
        (None, LeaderboardPeriod::AllTime),
        (Some(&history), LeaderboardPeriod::AllTime),
        (Some(&history), LeaderboardPeriod::Weekly),
    ] {
        let board = h
            .app
            .gamification()
            .get_leaderboard(&h.student, subject, period)
            .await
            .unwrap();
        let row = board
            .rows
            .iter()
            .find(|r| r.is_current_user)
            .unwrap_or_else(|| panic!("{subject:?} {period:?}: {board:?}"));
        assert!(row.xp <= total);
        assert_eq!(row.level, level, "{subject:?} {period:?}: row {row:?}");
        assert_eq!(board.me.level, level, "{subject:?} {period:?}: me");
        // The admin (no XP) sees the student's level the same way.
        let seen = h
            .app
            .gamification()
            .get_leaderboard(&h.admin, subject, period)
            .await
            .unwrap();
        assert_eq!(
            seen.rows[0].level, level,
            "{subject:?} {period:?}: admin view"
        );
        assert_eq!(seen.me.level, 1);
    }
    // The daily board's XP is today's XP only (the bug showed its level).
    let daily = h
        .app
        .gamification()
        .get_leaderboard(&h.student, None, LeaderboardPeriod::Daily)
        .await
        .unwrap();
    assert!(level_for_xp(daily.me.xp) < level, "{daily:?}");
}
