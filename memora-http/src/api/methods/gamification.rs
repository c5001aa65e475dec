//! Profile, time zone, quests, leaderboards and onboarding.

use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, id, method, opt_id};
use crate::api::de;
use crate::api::dto::*;
use crate::error::ApiError;

/// Result of `get_player_profile`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerProfileDto {
    /// Total XP.
    pub xp: i64,
    /// Gems.
    pub gems: i64,
    /// Grade.
    pub current_grade: Option<String>,
    /// Stream.
    pub current_stream: Option<String>,
    /// Season.
    pub season: Option<String>,
    /// IANA time zone.
    pub time_zone: String,
}

method!(
    /// `get_player_profile`.
    GetPlayerProfile = "get_player_profile" in "profile", User, Read,
    "Basic profile",
    NoArgs => PlayerProfileDto,
    |app, ctx, _req| {
        let p = app.gamification().get_player_profile(ctx.actor()?).await?;
        Ok(PlayerProfileDto {
            xp: p.total_xp,
            gems: p.gems,
            current_grade: p.grade.as_ref().map(|g| g.as_str().to_owned()),
            current_stream: p.stream.as_ref().map(|s| s.as_str().to_owned()),
            season: p.season.as_ref().map(|s| s.as_str().to_owned()),
            time_zone: p.time_zone.clone(),
        })
    }
);

/// Optional subject filter.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OptSubjectArg {
    /// Subject id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
}

/// One day of the weekly activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyDayDto {
    /// Day label (Arabic weekday).
    pub day: String,
    /// Date (YYYY-MM-DD).
    pub full_date: String,
    /// XP that day.
    pub xp: i64,
    /// Today.
    #[serde(rename = "isToday")]
    pub is_today: bool,
}

/// Result of `get_full_profile_stats`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FullProfileStatsDto {
    /// Full name.
    pub full_name: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Level.
    pub level: u32,
    /// Level title.
    pub level_title: String,
    /// Percent of the way to the next level.
    pub next_level_progress: u32,
    /// XP within the level.
    pub xp_in_level: i64,
    /// XP still needed.
    pub xp_to_next_level: i64,
    /// Streak in days.
    pub streak: u32,
    /// Gems.
    pub gems: i64,
    /// Total XP.
    #[serde(rename = "totalXP")]
    pub total_xp: i64,
    /// Items learned.
    pub total_learned: u64,
    /// The last seven days.
    pub weekly_activity: Vec<WeeklyDayDto>,
    /// Mastery.
    pub mastery: MasteryDto,
}

method!(
    /// `get_full_profile_stats`.
    GetFullProfileStats = "get_full_profile_stats" in "profile", User, Read,
    "Level, streak, weekly activity, mastery",
    OptSubjectArg => FullProfileStatsDto,
    |app, ctx, req| {
        let subject = opt_id(req.subject, SubjectId::new)?;
        let s = app
            .gamification()
            .get_full_profile_stats(ctx.actor()?, subject.as_ref())
            .await?;
        Ok(FullProfileStatsDto {
            full_name: s.profile.full_name.clone(),
            avatar_url: s.profile.avatar.clone(),
            level: s.level.level,
            level_title: s.level_title.to_owned(),
            next_level_progress: s.level.next_level_progress,
            xp_in_level: s.level.xp_in_level,
            xp_to_next_level: s.level.xp_to_next_level,
            streak: s.streak,
            gems: s.profile.gems,
            total_xp: s.xp,
            total_learned: s.mastery.total(),
            weekly_activity: s
                .weekly
                .iter()
                .map(|d| WeeklyDayDto {
                    day: d.day_label.to_owned(),
                    full_date: d.date.to_string(),
                    xp: d.xp,
                    is_today: d.is_today,
                })
                .collect(),
            mastery: MasteryDto::from(&s.mastery),
        })
    }
);

/// Result of `get_player_login_info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginInfoDto {
    /// Total XP.
    pub total_xp: i64,
    /// Grade.
    pub current_grade: Option<String>,
    /// Stream.
    pub current_stream: Option<String>,
    /// Season.
    pub season: Option<String>,
    /// User id (e-mail).
    pub email: String,
    /// Full name.
    pub full_name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Always true.
    pub is_logged_in: bool,
}

method!(
    /// `get_player_login_info`.
    GetPlayerLoginInfo = "get_player_login_info" in "profile", User, Read,
    "Profile summary for the logged-in user",
    NoArgs => LoginInfoDto,
    |app, ctx, _req| {
        let who = ctx.actor()?;
        let p = app.gamification().get_player_profile(who).await?;
        Ok(LoginInfoDto {
            total_xp: p.total_xp,
            current_grade: p.grade.as_ref().map(|g| g.as_str().to_owned()),
            current_stream: p.stream.as_ref().map(|s| s.as_str().to_owned()),
            season: p.season.as_ref().map(|s| s.as_str().to_owned()),
            email: who.user.as_str().to_owned(),
            full_name: p.full_name.clone(),
            roles: who.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            is_logged_in: true,
        })
    }
);

/// Arguments of `set_time_zone`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TimeZoneArgs {
    /// IANA time zone (`Asia/Riyadh`) or `UTC` (also `tz`).
    #[serde(alias = "tz", deserialize_with = "de::string")]
    pub time_zone: String,
    /// Hour (0–23) at which the learner's day starts (default: the server's `Config::default_rollover_hour`, 4).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(maximum = 23)]
    pub rollover_hour: Option<u64>,
}

/// Result of `set_time_zone`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeZoneDto {
    /// Always `success`.
    pub status: String,
    /// Zone in effect now.
    pub time_zone: String,
    /// Rollover hour in effect now.
    pub rollover_hour: u8,
    /// Zone taking effect at the start of the learner's next day.
    pub pending_time_zone: Option<String>,
    /// Its rollover hour.
    pub pending_rollover_hour: Option<u8>,
    /// When it takes effect (RFC 3339).
    pub pending_effective_at: Option<String>,
}

method!(
    /// `set_time_zone`.
    SetTimeZone = "set_time_zone" in "profile", User, Write,
    "Set the learner's time zone and day rollover (effective next learner day once active)",
    TimeZoneArgs => TimeZoneDto,
    |app, ctx, req| {
        let hour = req
            .rollover_hour
            .map(|h| {
                u8::try_from(h).ok().filter(|h| *h <= 23).ok_or_else(|| {
                    ApiError::bad(format!(
                        "argument 'rollover_hour' must be an integer from 0 to 23 (got {h})"
                    ))
                })
            })
            .transpose()?;
        let p = app
            .gamification()
            .set_time_zone(ctx.actor()?, &req.time_zone, hour)
            .await?;
        Ok(TimeZoneDto {
            status: "success".into(),
            time_zone: p.time_zone.clone(),
            rollover_hour: p.rollover_hour,
            pending_time_zone: p.pending_zone.as_ref().map(|z| z.time_zone.clone()),
            pending_rollover_hour: p.pending_zone.as_ref().map(|z| z.rollover_hour),
            pending_effective_at: p.pending_zone.as_ref().map(|z| z.effective_at.to_rfc3339()),
        })
    }
);

method!(
    /// `get_daily_quests`.
    GetDailyQuests = "get_daily_quests" in "quests", User, Read,
    "Today's quests",
    OptSubjectArg => Vec<QuestDto>,
    |app, ctx, req| {
        let subject = opt_id(req.subject, SubjectId::new)?;
        let q = app
            .gamification()
            .get_daily_quests(ctx.actor()?, subject.as_ref())
            .await?;
        Ok(q.iter().map(QuestDto::from).collect())
    }
);

/// Arguments of `claim_quest_reward`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuestArg {
    /// Quest id (from `get_daily_quests`).
    #[serde(deserialize_with = "de::string")]
    pub quest_id: String,
}

/// Result of `claim_quest_reward`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimDto {
    /// Always `success`.
    pub status: String,
    /// The quest after the claim.
    pub quest: QuestDto,
    /// XP awarded.
    pub xp_awarded: i64,
}

method!(
    /// `claim_quest_reward`.
    ClaimQuestReward = "claim_quest_reward" in "quests", User, Write,
    "Claim a completed quest's XP once per quest day",
    QuestArg => ClaimDto,
    |app, ctx, req| {
        let out = app
            .gamification()
            .claim_quest_reward(ctx.actor()?, &req.quest_id)
            .await?;
        Ok(ClaimDto {
            status: "success".into(),
            quest: QuestDto::from(&out.quest),
            xp_awarded: out.xp_awarded,
        })
    }
);

/// Leaderboard period.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The current learner day.
    Daily,
    /// The current ISO week.
    Weekly,
    /// The current month.
    Monthly,
    /// Everything.
    AllTime,
}

/// Arguments of `get_leaderboard`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LeaderboardArgs {
    /// Subject (global board if absent).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
    /// Period (default `all_time`).
    #[serde(default)]
    pub period: Option<Period>,
}

/// Result of `get_leaderboard`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderboardDto {
    /// Period.
    pub period: String,
    /// Top rows.
    pub leaderboard: Vec<LeaderboardRowDto>,
    /// Same rows (older clients).
    pub rankings: Vec<LeaderboardRowDto>,
    /// The caller's row.
    #[serde(rename = "userRank")]
    pub user_rank: LeaderboardRowDto,
    /// The caller's rank.
    pub current_user_rank: Option<u64>,
}

method!(
    /// `get_leaderboard`.
    GetLeaderboard = "get_leaderboard" in "leaderboard", User, Read,
    "Rankings (daily, weekly, monthly, all_time)",
    LeaderboardArgs => LeaderboardDto,
    |app, ctx, req| {
        let period = match req.period.unwrap_or(Period::AllTime) {
            Period::Daily => LeaderboardPeriod::Daily,
            Period::Weekly => LeaderboardPeriod::Weekly,
            Period::Monthly => LeaderboardPeriod::Monthly,
            Period::AllTime => LeaderboardPeriod::AllTime,
        };
        let subject = opt_id(req.subject, SubjectId::new)?;
        let b = app
            .gamification()
            .get_leaderboard(ctx.actor()?, subject.as_ref(), period)
            .await?;
        Ok(LeaderboardDto {
            period: b.period.as_str().to_owned(),
            leaderboard: b.rows.iter().map(LeaderboardRowDto::from).collect(),
            rankings: b.rows.iter().map(LeaderboardRowDto::from).collect(),
            user_rank: LeaderboardRowDto::from(&b.me),
            current_user_rank: b.me.rank,
        })
    }
);

/// A grade choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct GradeDto {
    /// Grade id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Streams it allows.
    pub allowed_streams: Vec<String>,
    /// Seasons it can be taken in.
    pub allowed_seasons: Vec<String>,
}

/// A stream choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamDto {
    /// Stream id.
    pub name: String,
    /// Display name.
    pub stream_name: String,
}

/// A season choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeasonChoiceDto {
    /// Season id.
    pub name: String,
    /// Title.
    pub title: String,
}

/// Result of `get_academic_masters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcademicMastersDto {
    /// Grades.
    pub grades: Vec<GradeDto>,
    /// Streams.
    pub streams: Vec<StreamDto>,
    /// Seasons.
    pub seasons: Vec<SeasonChoiceDto>,
}

method!(
    /// `get_academic_masters`.
    GetAcademicMasters = "get_academic_masters" in "onboarding", User, Read,
    "Grades, streams and seasons",
    NoArgs => AcademicMastersDto,
    |app, _ctx, _req| {
        let m = app.gamification().get_academic_masters().await?;
        Ok(AcademicMastersDto {
            grades: m
                .grades
                .iter()
                .map(|g| GradeDto {
                    id: g.grade.id.as_str().to_owned(),
                    name: g.grade.name.clone(),
                    allowed_streams: g.grade.valid_streams.iter().map(|s| s.as_str().to_owned()).collect(),
                    allowed_seasons: g.allowed_seasons.iter().map(|s| s.as_str().to_owned()).collect(),
                })
                .collect(),
            streams: m
                .streams
                .iter()
                .map(|s| StreamDto { name: s.id.as_str().to_owned(), stream_name: s.name.clone() })
                .collect(),
            seasons: m
                .seasons
                .iter()
                .map(|s| SeasonChoiceDto { name: s.id.as_str().to_owned(), title: s.title.clone() })
                .collect(),
        })
    }
);

/// Arguments of `set_academic_profile`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AcademicProfileArgs {
    /// Grade id.
    #[serde(deserialize_with = "de::string")]
    pub grade: String,
    /// Stream id (required by grades with streams).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub stream: Option<String>,
    /// Season id (also `academic_year`; the active season if absent).
    #[serde(default, alias = "academic_year", deserialize_with = "de::opt_string")]
    pub season: Option<String>,
}

/// Result of `set_academic_profile`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcademicProfileDto {
    /// Always `success`.
    pub status: String,
    /// Human message.
    pub message: String,
    /// Always true.
    pub profile_updated: bool,
    /// Season.
    pub season: Option<String>,
}

method!(
    /// `set_academic_profile`.
    SetAcademicProfile = "set_academic_profile" in "onboarding", User, Write,
    "Set grade, stream and season",
    AcademicProfileArgs => AcademicProfileDto,
    |app, ctx, req| {
        let grade = id(GradeId::new(req.grade))?;
        let stream = opt_id(req.stream, StreamId::new)?;
        let season = opt_id(req.season, SeasonId::new)?;
        let p = app
            .gamification()
            .set_academic_profile(ctx.actor()?, &grade, stream.as_ref(), season.as_ref())
            .await?;
        Ok(AcademicProfileDto {
            status: "success".into(),
            message: "Academic profile saved successfully".into(),
            profile_updated: true,
            season: p.season.as_ref().map(|s| s.as_str().to_owned()),
        })
    }
);
