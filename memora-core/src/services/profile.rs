//! Profile use cases: the basic profile, the full statistics screen and the
//! login info.

use crate::domain::*;
use crate::error::CoreResult;
use crate::gamification::{self, LevelProgress, WeeklyDay};

use super::GamificationService;

/// `get_full_profile_stats` output.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileStats {
    /// Profile.
    pub profile: PlayerProfile,
    /// XP shown (global, or the subject's).
    pub xp: i64,
    /// Level progress of that XP.
    pub level: LevelProgress,
    /// Level title.
    pub level_title: &'static str,
    /// Current streak (days, global).
    pub streak: u32,
    /// Last 7 learner days (global).
    pub weekly: Vec<WeeklyDay>,
    /// Mastery counts (active season; optionally one subject).
    pub mastery: MasteryCounts,
}

impl GamificationService {
    /// `get_player_profile`: the profile (defaults if none yet).
    pub async fn get_player_profile(&self, actor: &Actor) -> CoreResult<PlayerProfile> {
        self.profiles.or_default(&actor.user).await
    }

    /// Current streak of a user, computed in their time zone, without cap.
    pub(crate) async fn streak_of(&self, profile: &PlayerProfile) -> CoreResult<u32> {
        let day = self.shared.day_boundary(profile);
        let today = day.local_day(self.shared.now());
        let mut window = 400i64;
        loop {
            let since = today - chrono::Duration::days(window);
            let days = self.activity.active_days(&profile.user, since).await?;
            let streak = gamification::streak(&days, today);
            // A streak reaching the window edge may continue before it.
            if i64::from(streak) < window - 1 {
                return Ok(streak);
            }
            window *= 4;
        }
    }

    /// `get_full_profile_stats`.
    pub async fn get_full_profile_stats(
        &self,
        actor: &Actor,
        subject: Option<&crate::ids::SubjectId>,
    ) -> CoreResult<ProfileStats> {
        let profile = self.profiles.or_default(&actor.user).await?;
        let xp = match subject {
            Some(s) => self.activity.subject_xp(&actor.user, s).await?,
            None => profile.total_xp,
        };
        let day = self.shared.day_boundary(&profile);
        let today = day.local_day(self.shared.now());
        let streak = self.streak_of(&profile).await?;
        let by_day = self
            .activity
            .xp_by_day(&actor.user, today - chrono::Duration::days(6), today)
            .await?;
        let season = self.shared.active_season().await?;
        let mastery = self
            .trackers
            .mastery_counts(&actor.user, season.as_ref().map(|s| &s.id), subject)
            .await?;
        let level = gamification::level_progress(xp);
        Ok(ProfileStats {
            level_title: gamification::level_title(level.level),
            level,
            xp,
            streak,
            weekly: gamification::weekly_activity(&by_day, today),
            mastery,
            profile,
        })
    }
}
