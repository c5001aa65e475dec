//! Daily quests (§3.4 of the original, with rewards that are really granted,
//! once per quest day): per-subject review quests, the streak quest and the
//! XP goal. Decision: the original's "all reviews done" quest had no reward;
//! here it pays [`REVIEW_DONE_REWARD`] XP so that finishing reviews is
//! claimable.
//!
//! **Per-subject review quests** (`quest_review_<subject>`; the original's
//! were always "active", so they could never be completed): for each
//! subject, `target` = items due now + items *cleared* today, `progress` =
//! items cleared today, where an item is cleared when it was answered in a
//! review session (source `Review`, not a lesson play) since the start of
//! the learner day and is not due again now. The quest is completed when
//! nothing of the subject is due any more, and pays `10 × target` XP
//! (the original's `10 × due`, measured over the whole day) once per quest
//! day. Learning new items in a lesson never creates or feeds a review
//! quest; answering items in topic focus (which may serve items not yet
//! due) does count, as those are review answers too.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::gamification::{self, STREAK_QUEST_REWARD, XP_QUEST_REWARD, XP_QUEST_TARGET};
use crate::ids::{SessionId, SubjectId};

use super::GamificationService;

/// Reward of the "reviews done for today" quest.
pub const REVIEW_DONE_REWARD: i64 = 50;

/// Description of a finished review quest ("you finished your reviews for
/// today, well done!").
const DONE_DESCRIPTION: &str = "أنجزت مراجعاتك لليوم، أحسنت!";

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
        // Per subject: items due now, and items cleared today (answered in
        // a review session since the start of the learner day and not due
        // again now). A subject's review quest targets both, so its target
        // stays put while the learner works through it.
        let mut per_subject: BTreeMap<Option<SubjectId>, (u64, u64)> = BTreeMap::new();
        if let Some(season) = self.shared.active_season().await? {
            for (s, n) in self
                .trackers
                .due_counts_by_subject(&actor.user, &season.id, now)
                .await?
            {
                per_subject.entry(s).or_default().0 += n;
            }
            let reviewed = self
                .review_log
                .reviewed_since(&actor.user, &season.id, day.day_start(today))
                .await?;
            if !reviewed.is_empty() {
                for row in self
                    .trackers
                    .get_trackers(&actor.user, &season.id, &reviewed)
                    .await?
                {
                    if row.state.due > now {
                        per_subject.entry(row.subject).or_default().1 += 1;
                    }
                }
            }
        }
        per_subject.retain(|s, (due, cleared)| {
            *due + *cleared > 0 && subject.is_none_or(|want| s.as_ref() == Some(want))
        });
        let nothing_due = per_subject.values().all(|(due, _)| *due == 0);
        if nothing_due && summary.review_sessions > 0 {
            quests.push(DailyQuest {
                id: "quest_review_done".to_owned(),
                quest_type: QuestType::Review,
                title: "أنعش ذاكرتك".to_owned(),
                description: DONE_DESCRIPTION.to_owned(),
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
        for (s, (due, cleared)) in per_subject {
            let name = s
                .as_ref()
                .and_then(|id| idx.subject(id).map(|x| x.title.clone()))
                .unwrap_or_else(|| "عام".to_owned());
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let target = count(due.saturating_add(cleared));
            let done = due == 0;
            quests.push(DailyQuest {
                id: format!(
                    "quest_review_{}",
                    s.as_ref().map(|x| x.as_str()).unwrap_or("general")
                ),
                quest_type: QuestType::Review,
                title: format!("مراجعة {name}"),
                description: if done {
                    DONE_DESCRIPTION.to_owned()
                } else {
                    format!("لديك {} معلومة تحتاج للتثبيت!", count(due))
                },
                icon: "brain",
                progress: count(cleared),
                target,
                reward_xp: gamification::review_quest_reward(
                    u32::try_from(target).unwrap_or(u32::MAX),
                ),
                status: if done {
                    QuestStatus::Completed
                } else {
                    QuestStatus::Active
                },
                is_urgent: !done,
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
        // Claims are once per quest day: a claimed quest stays claimed even
        // if, say, new items fell due after the claim.
        for q in &mut quests {
            if claimed.contains(&q.id) {
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
