//! The learning area: the content catalog, the learner's map (subjects,
//! tracks, units, topics, lessons with their statuses) and lesson plays.
//! The use cases live in [`super::content`] (map and content) and
//! [`super::sessions`] (`submit_session`); this module defines the service.

use std::sync::Arc;

use crate::error::CoreResult;
use crate::ports::{ActivityStore, LeaderboardCache, Ports};

use super::integrity::ServedSet;
use super::shared::{Profiles, Shared};
use super::{CommerceService, ContentIndex, ReviewService};

/// Map, content and lesson plays. Holds the activity ledger (completions,
/// plays, lesson sessions) and the leaderboard cache; reads access keys
/// through [`CommerceService`], schedules and persists a play's answers
/// through [`ReviewService`] (the one answer engine) and binds plays to
/// lesson openings through the served-set ledger.
pub struct LearningService {
    pub(crate) shared: Arc<Shared>,
    pub(crate) profiles: Profiles,
    pub(crate) activity: Arc<dyn ActivityStore>,
    pub(crate) leaderboard: Option<Arc<dyn LeaderboardCache>>,
    pub(crate) commerce: Arc<CommerceService>,
    pub(crate) reviews: Arc<ReviewService>,
    pub(crate) ledger: Arc<ServedSet>,
}

impl LearningService {
    pub(crate) fn new(
        ports: &Ports,
        shared: &Arc<Shared>,
        profiles: Profiles,
        commerce: Arc<CommerceService>,
        reviews: Arc<ReviewService>,
        ledger: Arc<ServedSet>,
    ) -> Self {
        LearningService {
            shared: Arc::clone(shared),
            profiles,
            activity: Arc::clone(&ports.activity),
            leaderboard: ports.leaderboard.clone(),
            commerce,
            reviews,
            ledger,
        }
    }

    /// The in-process content index, loaded on first use.
    pub async fn catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        self.shared.catalog().await
    }

    /// Reloads the content index from the store (after imports done
    /// straight through the content port) and tells the other processes
    /// to reload theirs.
    pub async fn reload_catalog(&self) -> CoreResult<Arc<ContentIndex>> {
        self.shared
            .publish(crate::ports::Invalidation::Catalog)
            .await;
        self.shared.reload_catalog().await
    }
}
