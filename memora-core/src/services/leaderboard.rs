//! Leaderboards: global or per subject, for the day, ISO week, month or all
//! time (calendar windows in the caller's time zone). Ranks are always
//! numbers (the original returned the string "50+"); ties are broken by
//! user id so the order is stable. The leaderboard cache, when configured
//! and built, serves reads; the store is the source of truth. Levels are
//! the players' levels (total XP, read with one batched profile read for
//! the rows shown), never the level of the board's period or subject XP.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::domain::{Actor, PlayerProfile};
use crate::error::CoreResult;
use crate::gamification::{LeaderboardPeriod, level_for_xp};
use crate::ids::{SubjectId, UserId};
use crate::ports::{BoardEntry, BoardQuery, LeaderboardCache};

use super::GamificationService;
use super::shared::Shared;

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardRow {
    /// 1-based rank (`None` for a caller without XP in scope).
    pub rank: Option<u64>,
    /// Opaque, stable player handle (never the account id or e-mail).
    pub player_id: String,
    /// Display name (never an e-mail address: a name that looks like one is
    /// replaced by `"Learner <handle>"`).
    pub name: String,
    /// Avatar.
    pub avatar: Option<String>,
    /// XP in scope (the board's period and subject).
    pub xp: i64,
    /// The player's level, from their total XP (the same on every board
    /// and on the profile), not from the XP in scope.
    pub level: u32,
    /// The caller's own row.
    pub is_current_user: bool,
}

/// Adds XP to every period bucket of the global board and, if given, of
/// the subject board of the leaderboard cache, when there is one and the
/// leaderboard breaker lets the call through. Best effort: the store is the
/// source of truth and the boards are rebuilt from it; a failure opens the
/// leaderboard breaker only (reviews stay out of safe mode).
pub(crate) async fn add_xp(
    shared: &Shared,
    board: Option<&Arc<dyn LeaderboardCache>>,
    user: &UserId,
    subject: Option<&SubjectId>,
    day: NaiveDate,
    xp: i64,
) {
    if xp <= 0 {
        return;
    }
    if let Some(board) = board {
        let now = shared.now();
        let breaker = &shared.leaderboard_health;
        if breaker.should_try(now) {
            match board.add_xp(user, subject, day, xp).await {
                Ok(()) => breaker.mark_ok(),
                Err(_) => breaker.mark_failed(now),
            }
        }
    }
}

/// `get_leaderboard` output.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// Period.
    pub period: LeaderboardPeriod,
    /// Top rows.
    pub rows: Vec<LeaderboardRow>,
    /// The caller's row.
    pub me: LeaderboardRow,
}

impl GamificationService {
    /// `get_leaderboard`.
    pub async fn get_leaderboard(
        &self,
        actor: &Actor,
        subject: Option<&SubjectId>,
        period: LeaderboardPeriod,
    ) -> CoreResult<Leaderboard> {
        if let Some(s) = subject {
            let idx = self.shared.catalog().await?;
            if idx.subject(s).is_none() {
                return Err(crate::error::CoreError::not_found(format!(
                    "subject {s} not found"
                )));
            }
        }
        let profile = self.profiles.or_default(&actor.user).await?;
        let today = self
            .shared
            .day_boundary(&profile)
            .local_day(self.shared.now());
        let limit = self.shared.config.leaderboard_size;
        let bucket = period.bucket(today);
        type Board = (Vec<BoardEntry>, (i64, Option<u64>));
        let mut from_cache: Option<Board> = None;
        if let Some(board) = &self.leaderboard {
            let now = self.shared.now();
            // The leaderboard breaker: while open, boards come from the store.
            let breaker = &self.shared.leaderboard_health;
            if breaker.should_try(now) {
                let top = board.top(subject, &bucket, limit).await;
                let me = board.rank(&actor.user, subject, &bucket).await;
                match (top, me) {
                    (Ok(Some(t)), Ok(Some(m))) => {
                        breaker.mark_ok();
                        from_cache = Some((t, m));
                    }
                    (Ok(_), Ok(_)) => breaker.mark_ok(),
                    _ => breaker.mark_failed(now),
                }
            }
        }
        let (top, (my_xp, my_rank)) = match from_cache {
            Some(x) => x,
            None => {
                let query = BoardQuery {
                    subject: subject.cloned(),
                    since: period.window_start(today),
                };
                let top = self.activity.top_players(&query, limit).await?;
                let me = self.activity.player_rank(&actor.user, &query).await?;
                (top, me)
            }
        };
        // One batched profile read for the rows shown: names, avatars and
        // the total XP the level is computed from. A row's level is always
        // the player's level (total XP), whatever the board's scope — the
        // period or subject XP only orders the board.
        let users: Vec<UserId> = top.iter().map(|e| e.user.clone()).collect();
        let profiles: HashMap<UserId, PlayerProfile> = self
            .profiles
            .store
            .get_profiles(&users)
            .await?
            .into_iter()
            .map(|p| (p.user.clone(), p))
            .collect();
        let rows = top
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let profile = profiles.get(&e.user);
                let name = profile.map_or("Unknown Hero", |p| p.full_name.as_str());
                LeaderboardRow {
                    rank: Some(i as u64 + 1),
                    is_current_user: e.user == actor.user,
                    player_id: super::integrity::learner_tag(&e.user),
                    name: public_name(name, &e.user),
                    avatar: profile.and_then(|p| p.avatar.clone()),
                    xp: e.xp,
                    // A player without a profile row has no recorded XP.
                    level: level_for_xp(profile.map_or(0, |p| p.total_xp)),
                }
            })
            .collect();
        Ok(Leaderboard {
            period,
            rows,
            me: LeaderboardRow {
                rank: my_rank,
                player_id: super::integrity::learner_tag(&actor.user),
                name: public_name(&profile.full_name, &actor.user),
                avatar: profile.avatar.clone(),
                xp: my_xp,
                level: level_for_xp(profile.total_xp),
                is_current_user: true,
            },
        })
    }
}

/// The name shown on public boards: the display name, unless it is empty
/// or looks like an e-mail address (profiles created without a name carry
/// the account id), in which case a neutral handle.
fn public_name(name: &str, user: &UserId) -> String {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.contains('@') {
        format!("Learner {}", &super::integrity::learner_tag(user)[..6])
    } else {
        trimmed.to_owned()
    }
}
