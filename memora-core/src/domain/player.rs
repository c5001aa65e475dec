//! Player data: profile, devices, subject scores and gameplay sessions.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::{GradeId, LessonId, SeasonId, SessionId, StreamId, SubjectId, TopicId, UserId};

/// A learner's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerProfile {
    /// The user.
    pub user: UserId,
    /// Display name.
    pub full_name: String,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Total XP (never negative).
    pub total_xp: i64,
    /// Gems (kept for API compatibility; no economy uses them yet).
    pub gems: i64,
    /// Academic grade.
    pub grade: Option<GradeId>,
    /// Academic stream.
    pub stream: Option<StreamId>,
    /// The season whose plan the learner follows.
    pub season: Option<SeasonId>,
    /// IANA time zone used for "today", streaks and elapsed days.
    pub time_zone: String,
    /// Hour at which the learner's day rolls over (0–23).
    pub rollover_hour: u8,
    /// A time-zone change waiting for the learner's next day: until
    /// `effective_at` the learner's day (quests, streaks, XP days) is still
    /// computed with `time_zone`, so switching zones never yields a second
    /// "today".
    pub pending_zone: Option<PendingZone>,
}

/// A time zone / rollover change that takes effect at the start of the
/// learner's next day under the zone in force when it was requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingZone {
    /// IANA zone.
    pub time_zone: String,
    /// Rollover hour (0–23).
    pub rollover_hour: u8,
    /// When it applies.
    pub effective_at: chrono::DateTime<chrono::Utc>,
}

impl PlayerProfile {
    /// A fresh profile with no XP, UTC and a 4 a.m. rollover.
    pub fn new(user: UserId, full_name: impl Into<String>) -> Self {
        PlayerProfile {
            user,
            full_name: full_name.into(),
            avatar: None,
            total_xp: 0,
            gems: 0,
            grade: None,
            stream: None,
            season: None,
            time_zone: "UTC".to_owned(),
            rollover_hour: 4,
            pending_zone: None,
        }
    }
}

/// XP per (player, subject): the subject leaderboard source.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectScore {
    /// Player.
    pub user: UserId,
    /// Subject.
    pub subject: SubjectId,
    /// XP earned in this subject.
    pub total_xp: i64,
}

/// What a gameplay session was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A lesson play.
    Lesson,
    /// A review session (no lesson).
    Review,
    /// A claimed quest reward (XP only; not activity).
    QuestReward,
}

impl SessionKind {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Lesson => "lesson",
            SessionKind::Review => "review",
            SessionKind::QuestReward => "quest_reward",
        }
    }
}

/// One played session: the activity ledger behind streaks, weekly activity,
/// period leaderboards, quests and lesson completion.
#[derive(Debug, Clone, PartialEq)]
pub struct GameplaySession {
    /// Id.
    pub id: SessionId,
    /// Player.
    pub user: UserId,
    /// Kind.
    pub kind: SessionKind,
    /// Lesson (lesson sessions only).
    pub lesson: Option<LessonId>,
    /// Subject, when known.
    pub subject: Option<SubjectId>,
    /// Topic, when known.
    pub topic: Option<TopicId>,
    /// XP awarded by the server (never negative).
    pub xp_earned: i64,
    /// Score 0..=100: for lesson plays the server's score of the play (a
    /// client score can only lower it), for reviews the share correct.
    pub score: i64,
    /// Whether the lesson counts as completed (a passing play).
    pub completed: bool,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The learner's local day of `created_at`.
    pub local_day: NaiveDate,
    /// Client payload kept for audit (interactions, stats).
    pub raw_data: serde_json::Value,
}
