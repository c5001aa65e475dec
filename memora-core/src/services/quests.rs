//! Daily quests (§3.4 of the original, with rewards that are really granted,
//! once): per-subject review quests, the streak quest and the XP goal.
//! Decision: the original's "all reviews done" quest had no reward; here it
//! pays [`REVIEW_DONE_REWARD`] XP so that finishing reviews is claimable.

use chrono::NaiveDate;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::gamification::{self, STREAK_QUEST_REWARD, XP_QUEST_REWARD, XP_QUEST_TARGET};
use crate::ids::{SessionId, SubjectId};

use super::GamificationService;

/// Reward of the "reviews done for today" quest.
pub const REVIEW_DONE_REWARD: i64 = 50;

/// Outcome of a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimOutcome {
    /// The quest (now `Claimed`).
    pub quest: DailyQuest,
    /// XP granted.
    pub xp_awarded: i64,
}

impl GamificationService {
    async fn compute_quests(
        &self,
        actor: &Actor,
        subject: Option<&SubjectId>,
    ) -> CoreResult<(NaiveDate, PlayerProfile, Vec<DailyQuest>)> {
        let profile = self.profiles.or_default(&actor.user).await?;
        let now = self.shared.now();
        let day = self.shared.day_boundary(&profile);
        let today = day.local_day(now);
        let summary = self.activity.day_summary(&actor.user, today).await?;
        let claimed = self.quests.claimed(&actor.user, today).await?;
        let mut quests = Vec::new();
        let due = match self.shared.active_season().await? {
            Some(season) => {
                self.trackers
                    .due_counts_by_subject(&actor.user, &season.id, now)
                    .await?
            }
            None => Vec::new(),
        };
        let due: Vec<(Option<SubjectId>, u64)> = due
            .into_iter()
            .filter(|(s, n)| *n > 0 && subject.is_none_or(|want| s.as_ref() == Some(want)))
            .collect();
        if due.is_empty() && summary.review_sessions > 0 {
            quests.push(DailyQuest {
                id: "quest_review_done".to_owned(),
                quest_type: QuestType::Review,
                title: "أنعش ذاكرتك".to_owned(),
                description: "أنجزت مراجعاتك لليوم، أحسنت!".to_owned(),
                icon: "brain",
                progress: 1,
                target: 1,
                reward_xp: REVIEW_DONE_REWARD,
                status: QuestStatus::Completed,
                is_urgent: false,
                subject: None,
            });
        }
        let idx = self.shared.catalog().await?;
        for (s, n) in due {
            let name = s
                .as_ref()
                .and_then(|id| idx.subject(id).map(|x| x.title.clone()))
                .unwrap_or_else(|| "عام".to_owned());
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            quests.push(DailyQuest {
                id: format!(
                    "quest_review_{}",
                    s.as_ref().map(|x| x.as_str()).unwrap_or("general")
                ),
                quest_type: QuestType::Review,
                title: format!("مراجعة {name}"),
                description: format!("لديك {n} معلومة تحتاج للتثبيت!"),
                icon: "brain",
                progress: 0,
                target: n,
                reward_xp: gamification::review_quest_reward(u32::try_from(n).unwrap_or(u32::MAX)),
                status: QuestStatus::Active,
                is_urgent: true,
                subject: s,
            });
        }
        let active_today = summary.lesson_sessions + summary.review_sessions > 0;
        quests.push(DailyQuest {
            id: "quest_streak".to_owned(),
            quest_type: QuestType::Streak,
            title: "شعلة النشاط".to_owned(),
            description: "أكمل درساً واحداً اليوم.".to_owned(),
            icon: "flame",
            progress: i64::from(active_today),
            target: 1,
            reward_xp: STREAK_QUEST_REWARD,
            status: if active_today {
                QuestStatus::Completed
            } else {
                QuestStatus::Active
            },
            is_urgent: false,
            subject: None,
        });
        quests.push(DailyQuest {
            id: "quest_xp".to_owned(),
            quest_type: QuestType::XpGoal,
            title: "تحدي النقاط اليومي".to_owned(),
            description: format!("اجمع {XP_QUEST_TARGET} نقطة خبرة اليوم."),
            icon: "trophy",
            progress: summary.xp.min(XP_QUEST_TARGET),
            target: XP_QUEST_TARGET,
            reward_xp: XP_QUEST_REWARD,
            status: if summary.xp >= XP_QUEST_TARGET {
                QuestStatus::Completed
            } else {
                QuestStatus::Active
            },
            is_urgent: false,
            subject: None,
        });
        for q in &mut quests {
            if q.status == QuestStatus::Completed && claimed.contains(&q.id) {
                q.status = QuestStatus::Claimed;
            }
        }
        Ok((today, profile, quests))
    }

    /// `get_daily_quests`.
    pub async fn get_daily_quests(
        &self,
        actor: &Actor,
        subject: Option<&SubjectId>,
    ) -> CoreResult<Vec<DailyQuest>> {
        Ok(self.compute_quests(actor, subject).await?.2)
    }

    /// `claim_quest_reward`: grants a completed quest's XP exactly once per day.
    pub async fn claim_quest_reward(
        &self,
        actor: &Actor,
        quest_id: &str,
    ) -> CoreResult<ClaimOutcome> {
        crate::text::check_text("quest_id", quest_id, 140)?;
        let (today, _profile, quests) = self.compute_quests(actor, None).await?;
        let mut quest = quests
            .into_iter()
            .find(|q| q.id == quest_id)
            .ok_or_else(|| {
                CoreError::not_found(format!("quest {quest_id} is not available today"))
            })?;
        match quest.status {
            QuestStatus::Active => {
                return Err(CoreError::invalid_state(format!(
                    "quest {quest_id} is not completed yet"
                )));
            }
            QuestStatus::Claimed => {
                return Err(CoreError::conflict(format!(
                    "quest {quest_id} was already claimed today"
                )));
            }
            QuestStatus::Completed => {}
        }
        let now = self.shared.now();
        let reward = GameplaySession {
            id: SessionId::new(self.shared.ids.next_id("gs"))?,
            user: actor.user.clone(),
            kind: SessionKind::QuestReward,
            lesson: None,
            subject: None,
            topic: None,
            xp_earned: quest.reward_xp,
            score: 0,
            completed: false,
            created_at: now,
            local_day: today,
            raw_data: serde_json::json!({ "quest": quest_id }),
        };
        let granted = self
            .quests
            .claim(&actor.user, today, quest_id, &reward)
            .await?;
        if !granted {
            return Err(CoreError::conflict(format!(
                "quest {quest_id} was already claimed today"
            )));
        }
        super::leaderboard::add_xp(
            &self.shared,
            self.leaderboard.as_ref(),
            &actor.user,
            None,
            today,
            quest.reward_xp,
        )
        .await;
        quest.status = QuestStatus::Claimed;
        Ok(ClaimOutcome {
            xp_awarded: quest.reward_xp,
            quest,
        })
    }
}
