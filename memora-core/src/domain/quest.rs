//! Daily quests: computed from the day's activity, claimable once per day.

use crate::ids::SubjectId;

/// Quest kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuestType {
    /// Review due items (per subject).
    Review,
    /// Be active today.
    Streak,
    /// Earn XP today.
    XpGoal,
}

impl QuestType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestType::Review => "review",
            QuestType::Streak => "streak",
            QuestType::XpGoal => "xp_goal",
        }
    }
}

/// Quest status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestStatus {
    /// Not done yet.
    Active,
    /// Done, reward not yet claimed.
    Completed,
    /// Done and reward granted.
    Claimed,
}

impl QuestStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestStatus::Active => "active",
            QuestStatus::Completed => "completed",
            QuestStatus::Claimed => "claimed",
        }
    }
}

/// One daily quest as shown to the learner.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyQuest {
    /// Stable id for the day (`quest_streak`, `quest_xp`, `quest_review_<subject>`).
    pub id: String,
    /// Kind.
    pub quest_type: QuestType,
    /// Title (Arabic, as the original).
    pub title: String,
    /// Description.
    pub description: String,
    /// Icon name.
    pub icon: &'static str,
    /// Progress.
    pub progress: i64,
    /// Target.
    pub target: i64,
    /// XP reward (0 = none).
    pub reward_xp: i64,
    /// Status.
    pub status: QuestStatus,
    /// Shown as urgent.
    pub is_urgent: bool,
    /// Subject for review quests.
    pub subject: Option<SubjectId>,
}
