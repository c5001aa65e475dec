//! The gamification area: the player profile and statistics, daily quests,
//! leaderboards and onboarding (academic profile, time zone). The use cases
//! live in [`super::profile`], [`super::quests`], [`super::leaderboard`] and
//! [`super::onboarding`]; this module defines the service.

use std::sync::Arc;

use crate::ports::{
    ActivityStore, LeaderboardCache, Ports, QuestStore, ReviewLogStore, TrackerStore,
};

use super::shared::{Profiles, Shared};

/// Profile, quests, leaderboards and onboarding. Holds the activity ledger
/// (XP, streaks, leaderboard sources), quest claims, the tracker store (for
/// due and mastery counts only), the review log (what was reviewed today,
/// for the review quests) and the leaderboard cache.
pub struct GamificationService {
    pub(crate) shared: Arc<Shared>,
    pub(crate) profiles: Profiles,
    pub(crate) activity: Arc<dyn ActivityStore>,
    pub(crate) quests: Arc<dyn QuestStore>,
    pub(crate) trackers: Arc<dyn TrackerStore>,
    pub(crate) review_log: Arc<dyn ReviewLogStore>,
    pub(crate) leaderboard: Option<Arc<dyn LeaderboardCache>>,
}

impl GamificationService {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>, profiles: Profiles) -> Self {
        GamificationService {
            shared: Arc::clone(shared),
            profiles,
            activity: Arc::clone(&ports.activity),
            quests: Arc::clone(&ports.quests),
            trackers: Arc::clone(&ports.trackers),
            review_log: Arc::clone(&ports.revlog),
            leaderboard: ports.leaderboard.clone(),
        }
    }
}
