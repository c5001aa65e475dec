//! Gamification rules: levels, XP awards, streaks, weekly activity, daily
//! quests and leaderboard periods.
//!
//! All arithmetic is exact integer math (no floats): the original level
//! formula `floor(0.07 * sqrt(xp)) + 1` is evaluated as
//! `isqrt(49 * xp) / 100 + 1`, which is identical for every non-negative
//! `xp` and cannot drift (spec §3.2, §7 #33). XP awards are server-computed
//! and clamped so that client-supplied values can never inflate them
//! (spec §7 #19), replays pay diminishing XP (spec §3.13), streaks have no
//! 30-day cap and weekly activity uses calendar days (spec §7 #30). "Days"
//! here are learner days as produced by [`crate::time::DayBoundary`].
//!
//! **Deliberate deviation from the original (§3.2 / §7 #33):** the original
//! level-progress bar measured from `threshold - 1` (so the first XP of a
//! level showed `xpInLevel = 1` and the bar could show 100 % while still in
//! the old level). [`level_progress`] measures from the level's first XP, so
//! `xp_in_level` is `0` at the threshold and the percentage stays in `0..=99`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};

/// Errors produced by the gamification rules.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GamificationError {
    /// The leaderboard period string is not one of the supported values.
    #[error("unknown leaderboard period {0:?} (expected daily, weekly, monthly or all_time)")]
    UnknownPeriod(String),
}

// ---------------------------------------------------------------------------
// Levels
// ---------------------------------------------------------------------------

/// Level for a total XP: `floor(0.07 * sqrt(xp)) + 1`, computed exactly as
/// `isqrt(49 * xp) / 100 + 1`. Any `xp <= 0` is level 1.
pub fn level_for_xp(xp: i64) -> u32 {
    let Ok(xp) = u128::try_from(xp) else {
        return 1;
    };
    // 49 * i64::MAX fits comfortably in u128; the root is < 2.2e10, so the
    // level is < 2.2e8 and fits in u32.
    let level = (xp * 49).isqrt() / 100 + 1;
    u32::try_from(level).unwrap_or(u32::MAX)
}

/// First XP of `level`: the smallest `xp` with `level_for_xp(xp) >= level`,
/// i.e. `ceil((100 * (level - 1))^2 / 49)`. Levels `0` and `1` start at `0`;
/// levels unreachable within `i64` saturate to `i64::MAX`.
///
/// L2 205, L3 817, L4 1837, L5 3266, L6 5103, L7 7347, L8 10000, L9 13062,
/// L10 16531, L11 20409, L12 24694.
pub fn level_threshold(level: u32) -> i64 {
    if level <= 1 {
        return 0;
    }
    let root = 100 * u128::from(level - 1);
    let threshold = (root * root).div_ceil(49);
    i64::try_from(threshold).unwrap_or(i64::MAX)
}

/// Where a player stands inside their current level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelProgress {
    /// Current level (`level_for_xp`).
    pub level: u32,
    /// XP earned since the first XP of the current level (`0` at the threshold).
    pub xp_in_level: i64,
    /// Width of the current level: `threshold(level + 1) - threshold(level)`.
    pub xp_to_next_level: i64,
    /// `floor(100 * xp_in_level / xp_to_next_level)`, always within `0..=99`
    /// while the player is still in the level.
    pub next_level_progress: u32,
}

/// Progress inside the current level (fixed semantics, see the module docs:
/// measured from the level's first XP, never 100 % while still in the level).
/// Negative XP is treated as `0`.
pub fn level_progress(xp: i64) -> LevelProgress {
    let xp = xp.max(0);
    let level = level_for_xp(xp);
    let start = level_threshold(level);
    let next = level_threshold(level.saturating_add(1));
    let xp_in_level = xp - start;
    let xp_to_next_level = next - start;
    let next_level_progress = if xp_to_next_level <= 0 {
        0
    } else {
        let pct = i128::from(xp_in_level) * 100 / i128::from(xp_to_next_level);
        u32::try_from(pct.clamp(0, 99)).unwrap_or(0)
    };
    LevelProgress {
        level,
        xp_in_level,
        xp_to_next_level,
        next_level_progress,
    }
}

const LEVEL_TITLES: [&str; 5] = [
    "مستكشف مبتدئ",
    "مغامر تاريخي",
    "حارس الذاكرة",
    "أستاذ الزمان",
    "أسطورة الأردن",
];

/// Arabic title for a level (§3.2): index `min(level - 1, 4)`; level `0` is
/// treated as level 1.
pub fn level_title(level: u32) -> &'static str {
    let idx = usize::try_from(level.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(LEVEL_TITLES.len() - 1);
    LEVEL_TITLES[idx]
}

// ---------------------------------------------------------------------------
// Streak and weekly activity
// ---------------------------------------------------------------------------

/// Current streak from the learner days on which the player was active.
///
/// The input may be unsorted and contain duplicates; days after `today` are
/// ignored. The streak is the number of consecutive days ending today, or
/// ending yesterday if the player has not played yet today; otherwise `0`.
/// Unlike the original there is no 30-day cap.
pub fn streak(active_days_desc: &[NaiveDate], today: NaiveDate) -> u32 {
    let days: BTreeSet<NaiveDate> = active_days_desc
        .iter()
        .copied()
        .filter(|d| *d <= today)
        .collect();
    let start = if days.contains(&today) {
        Some(today)
    } else {
        today.pred_opt().filter(|y| days.contains(y))
    };
    let mut count = 0u32;
    let mut cursor = start;
    while let Some(day) = cursor {
        if !days.contains(&day) {
            break;
        }
        count = count.saturating_add(1);
        cursor = day.pred_opt();
    }
    count
}

/// One bar of the weekly activity chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeeklyDay {
    /// The learner day.
    pub date: NaiveDate,
    /// Arabic weekday name (§3.3).
    pub day_label: &'static str,
    /// Sum of XP earned on that day.
    pub xp: i64,
    /// Whether this entry is `today`.
    pub is_today: bool,
}

/// Arabic weekday name used by the weekly chart (§3.3 / Appendix B).
pub fn arabic_weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Sat => "سبت",
        Weekday::Sun => "أحد",
        Weekday::Mon => "إثنين",
        Weekday::Tue => "ثلاثاء",
        Weekday::Wed => "أربعاء",
        Weekday::Thu => "خميس",
        Weekday::Fri => "جمعة",
    }
}

/// Seven entries for the calendar days `today - 6 ..= today` (oldest first),
/// each with the summed XP of that day from `xp_by_day` (entries may repeat a
/// day; entries outside the window are ignored). Uses calendar days rather
/// than the original's rolling 168 h window.
pub fn weekly_activity(xp_by_day: &[(NaiveDate, i64)], today: NaiveDate) -> Vec<WeeklyDay> {
    let mut sums: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for &(day, xp) in xp_by_day {
        let slot = sums.entry(day).or_insert(0);
        *slot = slot.saturating_add(xp);
    }
    (0..7i64)
        .rev()
        .filter_map(|back| today.checked_sub_signed(TimeDelta::days(back)))
        .map(|date| WeeklyDay {
            date,
            day_label: arabic_weekday(date.weekday()),
            xp: sums.get(&date).copied().unwrap_or(0),
            is_today: date == today,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// XP awards
// ---------------------------------------------------------------------------

/// XP for a review session: `10 * correct + 2 * combo`.
///
/// Client-supplied values are clamped: `correct` to `answers`, and the combo
/// to `min(claimed_combo, correct, answers)` (a combo cannot be longer than
/// the number of correct answers). Prefer passing [`max_combo`] computed on
/// the server as `claimed_combo`. The result never exceeds `12 * answers`.
pub fn review_xp(correct: u32, answers: u32, claimed_combo: u32) -> i64 {
    let correct = correct.min(answers);
    let combo = claimed_combo.min(correct);
    10 * i64::from(correct) + 2 * i64::from(combo)
}

/// Longest run of consecutive correct answers (the server-computed combo).
pub fn max_combo(correct_flags: &[bool]) -> u32 {
    let mut best = 0u32;
    let mut run = 0u32;
    for &ok in correct_flags {
        run = if ok { run.saturating_add(1) } else { 0 };
        best = best.max(run);
    }
    best
}

/// Replay multiplier in percent (TOPIC_REVIEW_LOGIC, §3.13): the first play
/// of a lesson/topic on a learner day pays 100 %, the second 50 %, every
/// later one 10 %. `plays_today_before_this` counts earlier plays that day.
pub fn replay_multiplier_percent(plays_today_before_this: u32) -> u32 {
    match plays_today_before_this {
        0 => 100,
        1 => 50,
        _ => 10,
    }
}

/// XP for a lesson play: the claimed XP (floored at 0) capped at the
/// lesson's `xp_reward` (the reward itself when nothing is claimed), scaled
/// by [`replay_multiplier_percent`] with integer floor division. Never
/// negative and never more than `xp_reward`.
pub fn lesson_xp(xp_reward: i64, claimed_xp: Option<i64>, plays_today_before_this: u32) -> i64 {
    let reward = xp_reward.max(0);
    let base = claimed_xp.map_or(reward, |c| c.clamp(0, reward));
    let pct = i128::from(replay_multiplier_percent(plays_today_before_this));
    let scaled = i128::from(base) * pct / 100;
    i64::try_from(scaled).unwrap_or(reward)
}

/// XP for a lesson play from the server's view of it: the lesson's
/// `xp_reward` scaled by the share of its stages that were played —
/// `⌊xp_reward × stages_played / stages_total⌋` —, then capped by the
/// client's claim and reduced on same-day replays exactly as [`lesson_xp`].
/// A play of no stage (or of a lesson without stages) earns `0`.
/// Correctness does not enter: it is the learner's word, so paying for it
/// would only pay for claiming it; which stages were played is checked by
/// the server (every interaction must be a stage of the lesson).
pub fn lesson_play_xp(
    xp_reward: i64,
    stages_played: usize,
    stages_total: usize,
    claimed_xp: Option<i64>,
    plays_today_before_this: u32,
) -> i64 {
    if stages_total == 0 || stages_played == 0 {
        return 0;
    }
    let played = stages_played.min(stages_total);
    let earned = i128::from(xp_reward.max(0)) * played as i128 / stages_total as i128;
    lesson_xp(
        i64::try_from(earned).unwrap_or(0),
        claimed_xp,
        plays_today_before_this,
    )
}

/// Score (0–100) of a lesson play: `⌊100 × first_try_correct /
/// interactions⌋` (`0` without interactions). A score the client sends can
/// only lower it (`min`), never raise it.
pub fn lesson_play_score(
    first_try_correct: usize,
    interactions: usize,
    claimed: Option<i64>,
) -> i64 {
    if interactions == 0 {
        return 0;
    }
    let ours = (first_try_correct.min(interactions) * 100 / interactions) as i64;
    claimed.map_or(ours, |c| c.clamp(0, 100).min(ours))
}

/// Size of a topic-review session (§3.13): `clamp(floor(total * 10 %), 10, 30)`.
/// Callers still cap it by the number of items actually available.
pub fn topic_session_size(total_items: usize) -> usize {
    (total_items / 10).clamp(10, 30)
}

// ---------------------------------------------------------------------------
// Leaderboard periods
// ---------------------------------------------------------------------------

/// Leaderboard aggregation period. Windows are calendar based (learner days,
/// ISO weeks starting Monday, calendar months), not rolling hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderboardPeriod {
    /// The current learner day.
    Daily,
    /// The current ISO week (Monday to Sunday).
    Weekly,
    /// The current calendar month.
    Monthly,
    /// Everything ever earned.
    AllTime,
}

impl LeaderboardPeriod {
    /// Parses `"daily"`, `"weekly"`, `"monthly"`, `"all_time"` (also
    /// `"all-time"` and `"alltime"`), trimmed and case-insensitive. Anything
    /// else is an error (the original silently treated unknown values as
    /// weekly).
    pub fn parse(s: &str) -> Result<Self, GamificationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "daily" => Ok(Self::Daily),
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            "all_time" | "all-time" | "alltime" => Ok(Self::AllTime),
            _ => Err(GamificationError::UnknownPeriod(s.to_owned())),
        }
    }

    /// Canonical name: `"daily"`, `"weekly"`, `"monthly"` or `"all_time"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::AllTime => "all_time",
        }
    }

    /// Bucket key of the period containing `day`: `"d:2026-11-22"`,
    /// `"w:2026-W47"` (ISO week-numbering year and week), `"m:2026-11"` or
    /// `"all"`.
    pub fn bucket(&self, day: NaiveDate) -> String {
        match self {
            Self::Daily => format!("d:{}", day.format("%Y-%m-%d")),
            Self::Weekly => {
                let week = day.iso_week();
                format!("w:{:04}-W{:02}", week.year(), week.week())
            }
            Self::Monthly => format!("m:{:04}-{:02}", day.year(), day.month()),
            Self::AllTime => "all".to_owned(),
        }
    }

    /// First day of the period containing `today`: `today`, the Monday of its
    /// ISO week, the first of its month, or `None` for all time.
    pub fn window_start(&self, today: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Daily => Some(today),
            Self::Weekly => today.checked_sub_signed(TimeDelta::days(i64::from(
                today.weekday().num_days_from_monday(),
            ))),
            Self::Monthly => today.with_day(1),
            Self::AllTime => None,
        }
    }
}

impl fmt::Display for LeaderboardPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LeaderboardPeriod {
    type Err = GamificationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Daily quests
// ---------------------------------------------------------------------------

/// Kind of a daily quest (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestKind {
    /// Review the items that are due.
    Review,
    /// Complete at least one lesson today.
    Streak,
    /// Earn [`XP_QUEST_TARGET`] XP today.
    XpGoal,
}

impl QuestKind {
    /// Wire name used in quest payloads: `"review"`, `"streak"`, `"xp_goal"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Review => "review",
            Self::Streak => "streak",
            Self::XpGoal => "xp_goal",
        }
    }
}

/// XP that must be earned in one day to complete the XP quest.
pub const XP_QUEST_TARGET: i64 = 200;
/// Reward of the streak quest.
pub const STREAK_QUEST_REWARD: i64 = 100;
/// Reward of the XP quest.
pub const XP_QUEST_REWARD: i64 = 150;

/// Reward of a review quest with `due` due items: `10 * due`.
pub fn review_quest_reward(due: u32) -> i64 {
    10 * i64::from(due)
}

/// Whether the XP quest is completed with `today_xp` earned today.
pub fn xp_quest_completed(today_xp: i64) -> bool {
    today_xp >= XP_QUEST_TARGET
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const THRESHOLDS: [(u32, i64); 12] = [
        (1, 0),
        (2, 205),
        (3, 817),
        (4, 1837),
        (5, 3266),
        (6, 5103),
        (7, 7347),
        (8, 10000),
        (9, 13062),
        (10, 16531),
        (11, 20409),
        (12, 24694),
    ];

    #[test]
    fn thresholds_match_spec() {
        for (level, xp) in THRESHOLDS {
            assert_eq!(level_threshold(level), xp, "threshold of L{level}");
            assert_eq!(level_for_xp(xp), level, "level at {xp}");
            if level > 1 {
                assert_eq!(level_for_xp(xp - 1), level - 1, "level at {}", xp - 1);
            }
        }
        assert_eq!(level_threshold(0), 0);
        // The original test helper's "204 XP -> level 2" is wrong.
        assert_eq!(level_for_xp(204), 1);
    }

    #[test]
    fn level_matches_float_formula_up_to_40000() {
        for xp in 0..=40_000i64 {
            let float = (0.07 * (xp as f64).sqrt()).floor() as u32 + 1;
            assert_eq!(level_for_xp(xp), float, "xp = {xp}");
        }
    }

    #[test]
    fn level_extremes() {
        assert_eq!(level_for_xp(-5), 1);
        assert_eq!(level_for_xp(i64::MIN), 1);
        let top = level_for_xp(i64::MAX);
        assert_eq!(top, 212_590_035); // isqrt(49 * (2^63 - 1)) / 100 + 1
        assert!(level_threshold(top) < i64::MAX);
        assert_eq!(level_for_xp(level_threshold(top)), top);
        assert_eq!(level_threshold(top + 1), i64::MAX);
        assert_eq!(level_threshold(u32::MAX), i64::MAX);
        let p = level_progress(i64::MAX);
        assert!(p.next_level_progress <= 99);
    }

    #[test]
    fn level_progress_fixed_semantics() {
        // At the first XP of level 2, nothing is earned inside the level yet.
        assert_eq!(
            level_progress(205),
            LevelProgress {
                level: 2,
                xp_in_level: 0,
                xp_to_next_level: 612,
                next_level_progress: 0
            }
        );
        // Last XP of level 2: 611/612 -> 99 %, never 100 % while in the level.
        assert_eq!(
            level_progress(816),
            LevelProgress {
                level: 2,
                xp_in_level: 611,
                xp_to_next_level: 612,
                next_level_progress: 99
            }
        );
        assert_eq!(
            level_progress(100),
            LevelProgress {
                level: 1,
                xp_in_level: 100,
                xp_to_next_level: 205,
                next_level_progress: 48
            }
        );
        // Level 8 starts at exactly 10000 (the original's float math said 9999).
        let p = level_progress(10_000);
        assert_eq!((p.level, p.xp_in_level, p.xp_to_next_level), (8, 0, 3062));
        assert_eq!(level_progress(-50), level_progress(0));
    }

    #[test]
    fn titles() {
        assert_eq!(level_title(0), "مستكشف مبتدئ");
        assert_eq!(level_title(1), "مستكشف مبتدئ");
        assert_eq!(level_title(2), "مغامر تاريخي");
        assert_eq!(level_title(3), "حارس الذاكرة");
        assert_eq!(level_title(4), "أستاذ الزمان");
        assert_eq!(level_title(5), "أسطورة الأردن");
        assert_eq!(level_title(99), "أسطورة الأردن");
    }

    #[test]
    fn streak_rules() {
        let today = date(2026, 11, 22);
        assert_eq!(streak(&[], today), 0);
        // Ends today.
        let days = [date(2026, 11, 22), date(2026, 11, 21), date(2026, 11, 20)];
        assert_eq!(streak(&days, today), 3);
        // Ends yesterday: still alive.
        assert_eq!(streak(&days[1..], today), 2);
        // Last activity two days ago: broken.
        assert_eq!(streak(&days[2..], today), 0);
        // Unsorted, duplicated, with a gap and a future day.
        let messy = [
            date(2026, 11, 20),
            date(2026, 11, 22),
            date(2026, 11, 21),
            date(2026, 11, 22),
            date(2026, 11, 18),
            date(2026, 11, 25),
        ];
        assert_eq!(streak(&messy, today), 3);
        // No 30-day cap.
        let long: Vec<NaiveDate> = (0..45).map(|i| today - TimeDelta::days(i)).collect();
        assert_eq!(streak(&long, today), 45);
    }

    #[test]
    fn weekly_activity_calendar_days() {
        let today = date(2026, 11, 22); // a Sunday
        let data = [
            (date(2026, 11, 22), 30),
            (date(2026, 11, 22), 12),
            (date(2026, 11, 16), 5),
            (date(2026, 11, 15), 999), // outside the window
            (date(2026, 11, 19), -4),
        ];
        let week = weekly_activity(&data, today);
        assert_eq!(week.len(), 7);
        assert_eq!(week[0].date, date(2026, 11, 16));
        assert_eq!(week[0].day_label, "إثنين");
        assert_eq!(week[0].xp, 5);
        assert_eq!(week[3].xp, -4);
        assert_eq!(week[3].day_label, "خميس");
        assert_eq!(week[5].day_label, "سبت");
        assert_eq!(week[6].date, today);
        assert_eq!(week[6].day_label, "أحد");
        assert_eq!(week[6].xp, 42);
        assert!(week[6].is_today);
        assert_eq!(week.iter().filter(|d| d.is_today).count(), 1);
        assert_eq!(week.iter().map(|d| d.xp).sum::<i64>(), 43);
    }

    #[test]
    fn review_xp_and_combo() {
        assert_eq!(review_xp(8, 10, 5), 90);
        assert_eq!(review_xp(0, 10, 0), 0);
        // Combo cannot exceed the number of correct answers.
        assert_eq!(review_xp(3, 10, 1000), 36);
        // Correct cannot exceed the number of answers.
        assert_eq!(review_xp(50, 10, 50), 120);
        assert_eq!(max_combo(&[]), 0);
        assert_eq!(max_combo(&[true, true, false, true, true, true, false]), 3);
        assert_eq!(max_combo(&[false, false]), 0);
        let flags = [true, false, true, true];
        let correct = flags.iter().filter(|f| **f).count() as u32;
        assert_eq!(review_xp(correct, 4, max_combo(&flags)), 34);
    }

    #[test]
    fn replay_and_lesson_xp() {
        assert_eq!(replay_multiplier_percent(0), 100);
        assert_eq!(replay_multiplier_percent(1), 50);
        assert_eq!(replay_multiplier_percent(2), 10);
        assert_eq!(replay_multiplier_percent(u32::MAX), 10);
        assert_eq!(lesson_xp(10, None, 0), 10);
        assert_eq!(lesson_xp(10, None, 1), 5);
        assert_eq!(lesson_xp(15, None, 1), 7);
        assert_eq!(lesson_xp(10, None, 2), 1);
        assert_eq!(lesson_xp(10, Some(8), 0), 8);
        assert_eq!(lesson_xp(10, Some(500), 0), 10);
        assert_eq!(lesson_xp(10, Some(-50), 0), 0);
        assert_eq!(lesson_xp(9, Some(9), 2), 0);
    }

    #[test]
    fn lesson_play_xp_follows_the_played_stages() {
        assert_eq!(lesson_play_xp(40, 0, 3, None, 0), 0, "nothing played");
        assert_eq!(lesson_play_xp(40, 2, 0, None, 0), 0, "no stages");
        assert_eq!(lesson_play_xp(40, 1, 3, None, 0), 13);
        assert_eq!(lesson_play_xp(40, 2, 3, None, 0), 26);
        assert_eq!(lesson_play_xp(40, 3, 3, None, 0), 40);
        assert_eq!(
            lesson_play_xp(40, 9, 3, None, 0),
            40,
            "never above the reward"
        );
        assert_eq!(lesson_play_xp(40, 3, 3, Some(25), 0), 25, "the claim caps");
        assert_eq!(lesson_play_xp(40, 1, 3, Some(25), 0), 13);
        assert_eq!(lesson_play_xp(40, 2, 3, None, 1), 13, "50 % replay");
        assert_eq!(lesson_play_xp(40, 3, 3, None, 2), 4, "10 % replay");
        assert_eq!(lesson_play_xp(-5, 3, 3, None, 0), 0);
        assert_eq!(lesson_play_score(0, 0, Some(100)), 0);
        assert_eq!(lesson_play_score(3, 4, None), 75);
        assert_eq!(
            lesson_play_score(3, 4, Some(90)),
            75,
            "the client cannot raise it"
        );
        assert_eq!(lesson_play_score(4, 4, Some(60)), 60, "but can lower it");
        assert_eq!(lesson_play_score(4, 4, Some(-3)), 0);
        assert_eq!(lesson_xp(-10, Some(5), 0), 0);
    }

    #[test]
    fn topic_session_sizes() {
        assert_eq!(topic_session_size(0), 10);
        assert_eq!(topic_session_size(99), 10);
        assert_eq!(topic_session_size(150), 15);
        assert_eq!(topic_session_size(309), 30);
        assert_eq!(topic_session_size(10_000), 30);
    }

    #[test]
    fn leaderboard_period_parsing() {
        assert_eq!(
            LeaderboardPeriod::parse("daily"),
            Ok(LeaderboardPeriod::Daily)
        );
        assert_eq!(
            LeaderboardPeriod::parse(" Weekly "),
            Ok(LeaderboardPeriod::Weekly)
        );
        assert_eq!(
            LeaderboardPeriod::parse("MONTHLY"),
            Ok(LeaderboardPeriod::Monthly)
        );
        for s in ["all_time", "all-time", "alltime", "All_Time"] {
            assert_eq!(LeaderboardPeriod::parse(s), Ok(LeaderboardPeriod::AllTime));
        }
        for s in ["", "week", "yearly", "all time"] {
            assert_eq!(
                LeaderboardPeriod::parse(s),
                Err(GamificationError::UnknownPeriod(s.to_owned()))
            );
        }
        for p in [
            LeaderboardPeriod::Daily,
            LeaderboardPeriod::Weekly,
            LeaderboardPeriod::Monthly,
            LeaderboardPeriod::AllTime,
        ] {
            assert_eq!(p.as_str().parse::<LeaderboardPeriod>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
    }

    #[test]
    fn leaderboard_buckets_and_windows() {
        let d = date(2026, 11, 22);
        assert_eq!(LeaderboardPeriod::Daily.bucket(d), "d:2026-11-22");
        assert_eq!(LeaderboardPeriod::Weekly.bucket(d), "w:2026-W47");
        assert_eq!(LeaderboardPeriod::Monthly.bucket(d), "m:2026-11");
        assert_eq!(LeaderboardPeriod::AllTime.bucket(d), "all");
        // ISO week-numbering year differs from the calendar year at the edges.
        assert_eq!(
            LeaderboardPeriod::Weekly.bucket(date(2027, 1, 1)),
            "w:2026-W53"
        );
        assert_eq!(
            LeaderboardPeriod::Weekly.bucket(date(2025, 12, 29)),
            "w:2026-W01"
        );
        assert_eq!(LeaderboardPeriod::Daily.window_start(d), Some(d));
        assert_eq!(
            LeaderboardPeriod::Weekly.window_start(d),
            Some(date(2026, 11, 16))
        );
        assert_eq!(
            LeaderboardPeriod::Weekly.window_start(date(2026, 11, 16)),
            Some(date(2026, 11, 16))
        );
        assert_eq!(
            LeaderboardPeriod::Monthly.window_start(d),
            Some(date(2026, 11, 1))
        );
        assert_eq!(LeaderboardPeriod::AllTime.window_start(d), None);
    }

    #[test]
    fn quests() {
        assert_eq!(review_quest_reward(0), 0);
        assert_eq!(review_quest_reward(7), 70);
        assert_eq!(XP_QUEST_TARGET, 200);
        assert_eq!(STREAK_QUEST_REWARD, 100);
        assert_eq!(XP_QUEST_REWARD, 150);
        assert!(!xp_quest_completed(199));
        assert!(xp_quest_completed(200));
        assert_eq!(QuestKind::XpGoal.as_str(), "xp_goal");
        assert_eq!(
            serde_json::to_string(&QuestKind::XpGoal).unwrap(),
            "\"xp_goal\""
        );
    }

    proptest! {
        #[test]
        fn level_is_monotone(a in any::<i64>(), b in any::<i64>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(level_for_xp(lo) <= level_for_xp(hi));
        }

        #[test]
        fn thresholds_are_exact(level in 2u32..=200_000) {
            let t = level_threshold(level);
            prop_assert_eq!(level_for_xp(t), level);
            prop_assert_eq!(level_for_xp(t - 1), level - 1);
        }

        #[test]
        fn progress_stays_below_100(xp in 0i64..=i64::MAX) {
            let p = level_progress(xp);
            prop_assert!(p.next_level_progress <= 99);
            prop_assert!(p.xp_in_level >= 0);
            prop_assert!(p.xp_in_level < p.xp_to_next_level || xp == i64::MAX);
            prop_assert_eq!(p.level, level_for_xp(xp));
        }

        #[test]
        fn streak_bounded_by_distinct_days(
            offsets in proptest::collection::vec(0i64..60, 0..80),
        ) {
            let today = date(2026, 11, 22);
            let days: Vec<NaiveDate> =
                offsets.iter().map(|o| today - TimeDelta::days(*o)).collect();
            let distinct: BTreeSet<NaiveDate> = days.iter().copied().collect();
            let s = streak(&days, today);
            prop_assert!(s as usize <= distinct.len());
            // Order of the input does not matter.
            let mut rev = days.clone();
            rev.reverse();
            prop_assert_eq!(streak(&rev, today), s);
        }

        #[test]
        fn review_xp_bounded(correct in any::<u32>(), answers in any::<u32>(), combo in any::<u32>()) {
            let xp = review_xp(correct, answers, combo);
            prop_assert!(xp >= 0);
            prop_assert!(xp <= 12 * i64::from(answers));
        }

        #[test]
        fn max_combo_bounded(flags in proptest::collection::vec(any::<bool>(), 0..64)) {
            let combo = max_combo(&flags);
            let correct = flags.iter().filter(|f| **f).count() as u32;
            prop_assert!(combo <= correct);
            prop_assert_eq!(review_xp(correct, flags.len() as u32, combo) <= 12 * flags.len() as i64, true);
        }

        #[test]
        fn lesson_xp_bounded(reward in -100i64..10_000, claimed in proptest::option::of(any::<i64>()), plays in 0u32..5) {
            let xp = lesson_xp(reward, claimed, plays);
            prop_assert!(xp >= 0);
            prop_assert!(xp <= reward.max(0));
        }
    }
}
