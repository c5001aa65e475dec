//! Learner time model: maps UTC instants onto the learner's "day".
//!
//! A learner day is defined by an IANA time zone plus a *rollover hour*: the
//! day `D` starts at the first instant whose local wall-clock time is at or
//! after `D` at `rollover_hour:00`, and lasts until the next day starts. With
//! a rollover hour of 4, a review made at 02:30 local time on a Tuesday still
//! counts for Monday. Everything that talks about "today" (streaks, quests,
//! daily leaderboards, replay limits) should go through [`DayBoundary`] so
//! that the original's mix of server-local dates and UTC timestamps (spec §7
//! #44) cannot come back.
//!
//! Daylight-saving transitions are handled deterministically: wall-clock
//! times that are skipped (spring forward) resolve to the transition instant,
//! and repeated wall-clock times (fall back) resolve to their earliest
//! occurrence. `local_day` subtracts the rollover hours from the *local
//! wall-clock* time (not from the UTC instant) so that
//! `local_day(day_start(d)) == d` holds on DST days as well.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Errors produced by the learner time model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimeError {
    /// The rollover hour must be within `0..=23`.
    #[error("invalid rollover hour {0}: must be within 0..=23")]
    InvalidRolloverHour(u8),
    /// The given name is not a known IANA time zone (names are case-sensitive,
    /// e.g. `Europe/Berlin`).
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// A fixed UTC offset that [`parse_utc_offset`] refuses.
    #[error(
        "invalid UTC offset {value:?}: {reason} (expected Z, UTC, ±HH:MM, ±HHMM or ±HH; \
         minutes 00, 15, 30 or 45; at most 14:00 either way)"
    )]
    InvalidOffset {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Parses a fixed UTC offset strictly, returning minutes east of UTC.
///
/// Accepted: `Z` or `UTC` (any case) for 0, and a sign followed by two-digit
/// hours with optional two-digit minutes — `±HH:MM`, `±HHMM`, `±HH` — with
/// minutes 00, 15, 30 or 45 (every offset in use is a multiple of 15 min)
/// and at most 14:00 either way. Nothing else: no missing sign, one-digit
/// hours, signed or other minutes (`+05:-30`), doubled signs (`+-5`),
/// spaces, or offsets such as `+14:30`.
pub fn parse_utc_offset(text: &str) -> Result<i32, TimeError> {
    let bad = |reason| TimeError::InvalidOffset {
        value: text.to_owned(),
        reason,
    };
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad("it must start with + or -")),
    };
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return Err(bad("only digits and one ':' may follow the sign"));
    }
    let (hh, mm) = match (rest.len(), rest.find(':')) {
        (2, None) => (rest, "00"),
        (4, None) => rest.split_at(2),
        (5, Some(2)) => (&rest[..2], &rest[3..]),
        _ => return Err(bad("the form is not HH, HHMM or HH:MM")),
    };
    let (Ok(h), Ok(m)) = (hh.parse::<i32>(), mm.parse::<i32>()) else {
        return Err(bad("hours and minutes must be two digits each"));
    };
    if !matches!(m, 0 | 15 | 30 | 45) {
        return Err(bad("minutes must be 00, 15, 30 or 45"));
    }
    let minutes = h * 60 + m;
    if minutes > 14 * 60 {
        return Err(bad("it is more than 14:00 from UTC"));
    }
    Ok(sign * minutes)
}

/// How UTC instants map onto a learner's days: an IANA time zone plus the
/// local hour at which a new day begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayBoundary {
    /// The learner's (or school's) IANA time zone.
    pub tz: Tz,
    /// Local hour (`0..=23`) at which a new learner day starts.
    pub rollover_hour: u8,
}

impl Default for DayBoundary {
    /// Same as [`DayBoundary::utc`].
    fn default() -> Self {
        Self::utc()
    }
}

impl DayBoundary {
    /// Creates a day boundary; fails unless `rollover_hour` is within `0..=23`.
    pub fn new(tz: Tz, rollover_hour: u8) -> Result<Self, TimeError> {
        if rollover_hour > 23 {
            return Err(TimeError::InvalidRolloverHour(rollover_hour));
        }
        Ok(Self { tz, rollover_hour })
    }

    /// Plain UTC calendar days (time zone UTC, rollover at midnight).
    pub fn utc() -> Self {
        Self {
            tz: Tz::UTC,
            rollover_hour: 0,
        }
    }

    /// Parses an IANA time zone name such as `"Asia/Amman"` (surrounding
    /// whitespace is ignored; the name itself is case-sensitive).
    pub fn parse_tz(name: &str) -> Result<Tz, TimeError> {
        let trimmed = name.trim();
        trimmed
            .parse::<Tz>()
            .map_err(|_| TimeError::UnknownTimeZone(trimmed.to_owned()))
    }

    /// The local wall-clock time of `at` in this boundary's time zone.
    ///
    /// Falls back to the UTC wall clock for the (unrepresentable) extremes of
    /// the `chrono` range instead of panicking.
    pub fn local_wall_clock(&self, at: DateTime<Utc>) -> NaiveDateTime {
        let utc = at.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset).unwrap_or(utc)
    }

    /// The learner's day containing `at`: the local date of the wall-clock
    /// time of `at` minus `rollover_hour` hours.
    pub fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        let wall = self.local_wall_clock(at);
        wall.checked_sub_signed(self.rollover_delta())
            .unwrap_or(wall)
            .date()
    }

    /// The learner's current day according to the system clock.
    pub fn today(&self) -> NaiveDate {
        self.local_day(Utc::now())
    }

    /// Number of calendar learner days between `local_day(from)` and
    /// `local_day(to)`; `0` if `to <= from`.
    pub fn elapsed_days(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        if to <= from {
            return 0;
        }
        days_between(self.local_day(from), self.local_day(to))
    }

    /// The first instant of learner day `day`: the earliest instant whose
    /// local wall-clock time is at or after `day` at `rollover_hour:00`.
    ///
    /// * If that wall-clock time exists once, its instant is returned.
    /// * If it occurs twice (DST fall back), the earlier instant is returned.
    /// * If it is skipped (DST spring forward), the transition instant (the
    ///   first instant after the gap) is returned.
    pub fn day_start(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        let target = midnight
            .checked_add_signed(self.rollover_delta())
            .unwrap_or(midnight);
        match self.tz.from_local_datetime(&target) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            chrono::LocalResult::None => self.first_instant_at_or_after(target),
        }
    }

    /// `at` moved `days` calendar days later *on the learner's wall clock*:
    /// the same local time `days` learner days later, so that
    /// `local_day(result) == local_day(at) + days` across daylight-saving
    /// changes too (adding `days × 24 h` lands an hour early or late, which
    /// around the rollover hour is the same learner day or the day after
    /// next). A local time that does not exist on the target day (spring
    /// forward) resolves to the end of the gap, a repeated one (fall back)
    /// to its first occurrence.
    pub fn add_local_days(&self, at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        if days == 0 {
            return at;
        }
        let wall = self.local_wall_clock(at);
        let Some(target) = wall.checked_add_days(chrono::Days::new(u64::from(days))) else {
            return at;
        };
        match self.tz.from_local_datetime(&target) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            chrono::LocalResult::None => self.first_instant_at_or_after(target),
        }
    }

    /// The first instant of the learner day following `day` (exclusive end of
    /// `day`).
    pub fn day_end(&self, day: NaiveDate) -> DateTime<Utc> {
        match day.succ_opt() {
            Some(next) => self.day_start(next),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    fn rollover_delta(&self) -> TimeDelta {
        TimeDelta::hours(i64::from(self.rollover_hour))
    }

    /// Smallest whole-second instant whose local wall clock is `>= target`,
    /// searched by bisection. Used only for wall-clock times inside a DST gap,
    /// where the local clock is monotone around the gap.
    fn first_instant_at_or_after(&self, target: NaiveDateTime) -> DateTime<Utc> {
        // Real-world UTC offsets stay well within +-16 h, so the answer is
        // bracketed by these two instants.
        let window = TimeDelta::hours(16);
        let fallback = target.and_utc();
        let (Some(lo), Some(hi)) = (
            target.checked_sub_signed(window),
            target.checked_add_signed(window),
        ) else {
            return fallback;
        };
        // Invariant: wall(lo) < target <= wall(hi).
        let mut lo = lo.and_utc().timestamp();
        let mut hi = hi.and_utc().timestamp();
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(instant) = DateTime::<Utc>::from_timestamp(mid, 0) else {
                return fallback;
            };
            if self.local_wall_clock(instant) >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::<Utc>::from_timestamp(hi, 0).unwrap_or(fallback)
    }
}

/// Calendar days from `from` to `to`, saturating at `0` when `to <= from`.
pub fn days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let diff = i64::from(to.num_days_from_ce()) - i64::from(from.num_days_from_ce());
    u32::try_from(diff.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn berlin(h: u8) -> DayBoundary {
        DayBoundary::new(chrono_tz::Europe::Berlin, h).unwrap()
    }

    fn new_york(h: u8) -> DayBoundary {
        DayBoundary::new(chrono_tz::America::New_York, h).unwrap()
    }

    #[test]
    fn new_validates_rollover_hour() {
        assert!(DayBoundary::new(Tz::UTC, 0).is_ok());
        assert!(DayBoundary::new(Tz::UTC, 23).is_ok());
        assert_eq!(
            DayBoundary::new(Tz::UTC, 24),
            Err(TimeError::InvalidRolloverHour(24))
        );
        assert_eq!(DayBoundary::utc(), DayBoundary::new(Tz::UTC, 0).unwrap());
        assert_eq!(DayBoundary::default(), DayBoundary::utc());
    }

    #[test]
    fn parse_tz_accepts_iana_names_and_rejects_garbage() {
        assert_eq!(
            DayBoundary::parse_tz("Asia/Amman"),
            Ok(chrono_tz::Asia::Amman)
        );
        assert_eq!(
            DayBoundary::parse_tz("  Europe/Berlin "),
            Ok(chrono_tz::Europe::Berlin)
        );
        assert_eq!(DayBoundary::parse_tz("UTC"), Ok(Tz::UTC));
        assert_eq!(
            DayBoundary::parse_tz("Mars/Olympus"),
            Err(TimeError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert!(DayBoundary::parse_tz("").is_err());
    }

    #[test]
    fn utc_local_day_is_calendar_date() {
        let b = DayBoundary::utc();
        assert_eq!(b.local_day(utc("2026-11-22T00:00:00Z")), date(2026, 11, 22));
        assert_eq!(b.local_day(utc("2026-11-21T23:59:59Z")), date(2026, 11, 21));
        assert_eq!(b.day_start(date(2026, 11, 22)), utc("2026-11-22T00:00:00Z"));
    }

    #[test]
    fn rollover_hour_shifts_the_day() {
        // Amman is UTC+3 all year since 2022.
        let b = DayBoundary::new(chrono_tz::Asia::Amman, 4).unwrap();
        // 02:30 local on the 22nd still belongs to the 21st.
        assert_eq!(b.local_day(utc("2026-11-21T23:30:00Z")), date(2026, 11, 21));
        // 03:59:59 local -> still the 21st; 04:00 local -> the 22nd.
        assert_eq!(b.local_day(utc("2026-11-22T00:59:59Z")), date(2026, 11, 21));
        assert_eq!(b.local_day(utc("2026-11-22T01:00:00Z")), date(2026, 11, 22));
        assert_eq!(b.day_start(date(2026, 11, 22)), utc("2026-11-22T01:00:00Z"));
        assert_eq!(b.day_end(date(2026, 11, 21)), utc("2026-11-22T01:00:00Z"));
    }

    #[test]
    fn berlin_spring_forward_2026() {
        // 2026-03-29: 02:00 CET -> 03:00 CEST (01:00 UTC).
        let b0 = berlin(0);
        assert_eq!(b0.day_start(date(2026, 3, 29)), utc("2026-03-28T23:00:00Z"));
        assert_eq!(b0.day_start(date(2026, 3, 30)), utc("2026-03-29T22:00:00Z"));
        // The spring-forward day is 23 hours long.
        assert_eq!(
            b0.day_end(date(2026, 3, 29)) - b0.day_start(date(2026, 3, 29)),
            TimeDelta::hours(23)
        );
        // Rollover at 02:00: that wall-clock time does not exist, the day starts
        // at the transition instant 03:00 CEST = 01:00 UTC.
        let b2 = berlin(2);
        assert_eq!(b2.day_start(date(2026, 3, 29)), utc("2026-03-29T01:00:00Z"));
        assert_eq!(b2.local_day(utc("2026-03-29T00:59:59Z")), date(2026, 3, 28));
        assert_eq!(b2.local_day(utc("2026-03-29T01:00:00Z")), date(2026, 3, 29));
        // Rollover at 04:00: 04:00 CEST = 02:00 UTC; 04:30 CEST belongs to the 29th.
        let b4 = berlin(4);
        assert_eq!(b4.day_start(date(2026, 3, 29)), utc("2026-03-29T02:00:00Z"));
        assert_eq!(b4.local_day(utc("2026-03-29T02:30:00Z")), date(2026, 3, 29));
        assert_eq!(b4.local_day(utc("2026-03-29T01:59:59Z")), date(2026, 3, 28));
    }

    #[test]
    fn berlin_fall_back_2026() {
        // 2026-10-25: 03:00 CEST -> 02:00 CET (01:00 UTC); 02:xx occurs twice.
        let b0 = berlin(0);
        assert_eq!(
            b0.day_start(date(2026, 10, 25)),
            utc("2026-10-24T22:00:00Z")
        );
        assert_eq!(
            b0.day_end(date(2026, 10, 25)) - b0.day_start(date(2026, 10, 25)),
            TimeDelta::hours(25)
        );
        // Rollover at 02:00 (ambiguous): the earliest occurrence, 02:00 CEST.
        let b2 = berlin(2);
        assert_eq!(
            b2.day_start(date(2026, 10, 25)),
            utc("2026-10-25T00:00:00Z")
        );
        // Both 02:30 CEST and 02:30 CET belong to the 25th.
        assert_eq!(
            b2.local_day(utc("2026-10-25T00:30:00Z")),
            date(2026, 10, 25)
        );
        assert_eq!(
            b2.local_day(utc("2026-10-25T01:30:00Z")),
            date(2026, 10, 25)
        );
        assert_eq!(
            b2.local_day(utc("2026-10-24T23:59:59Z")),
            date(2026, 10, 24)
        );
        // Rollover at 03:00: only exists once (CET), 02:00 UTC.
        let b3 = berlin(3);
        assert_eq!(
            b3.day_start(date(2026, 10, 25)),
            utc("2026-10-25T02:00:00Z")
        );
        assert_eq!(
            b3.local_day(utc("2026-10-25T01:59:59Z")),
            date(2026, 10, 24)
        );
    }

    #[test]
    fn new_york_transitions_2026() {
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
        let b0 = new_york(0);
        assert_eq!(b0.day_start(date(2026, 3, 8)), utc("2026-03-08T05:00:00Z"));
        assert_eq!(b0.day_start(date(2026, 3, 9)), utc("2026-03-09T04:00:00Z"));
        let b2 = new_york(2);
        assert_eq!(b2.day_start(date(2026, 3, 8)), utc("2026-03-08T07:00:00Z"));
        assert_eq!(b2.local_day(utc("2026-03-08T06:59:59Z")), date(2026, 3, 7));
        // Fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
        let b1 = new_york(1);
        // 01:00 is ambiguous: earliest = 01:00 EDT = 05:00 UTC.
        assert_eq!(b1.day_start(date(2026, 11, 1)), utc("2026-11-01T05:00:00Z"));
        assert_eq!(b1.local_day(utc("2026-11-01T06:30:00Z")), date(2026, 11, 1));
        // 23:30 EST on Nov 1 with rollover 0 is still Nov 1.
        assert_eq!(b0.local_day(utc("2026-11-02T04:30:00Z")), date(2026, 11, 1));
    }

    #[test]
    fn elapsed_days_counts_calendar_days() {
        let b = berlin(0);
        // 23:30 and 00:30 local the next day: one calendar day apart.
        assert_eq!(
            b.elapsed_days(utc("2026-06-01T21:30:00Z"), utc("2026-06-01T22:30:00Z")),
            1
        );
        // Across the spring-forward day.
        assert_eq!(
            b.elapsed_days(utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z")),
            2
        );
        // Reversed or equal -> 0.
        assert_eq!(
            b.elapsed_days(utc("2026-03-30T12:00:00Z"), utc("2026-03-28T12:00:00Z")),
            0
        );
        let t = utc("2026-03-30T12:00:00Z");
        assert_eq!(b.elapsed_days(t, t), 0);
        assert_eq!(days_between(date(2026, 1, 1), date(2027, 1, 1)), 365);
        assert_eq!(days_between(date(2027, 1, 1), date(2026, 1, 1)), 0);
    }

    #[test]
    fn extremes_do_not_panic() {
        let b = DayBoundary::new(chrono_tz::Pacific::Kiritimati, 23).unwrap();
        let _ = b.local_day(DateTime::<Utc>::MAX_UTC);
        let _ = b.local_day(DateTime::<Utc>::MIN_UTC);
        let _ = b.day_start(NaiveDate::MAX);
        let _ = b.day_start(NaiveDate::MIN);
        let _ = b.day_end(NaiveDate::MAX);
    }

    const ZONES: [Tz; 6] = [
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Amman,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Chatham,
    ];

    fn boundary() -> impl Strategy<Value = DayBoundary> {
        (0usize..ZONES.len(), 0u8..24).prop_map(|(z, h)| DayBoundary {
            tz: ZONES[z],
            rollover_hour: h,
        })
    }

    // 2000-01-01 .. 2040-01-01 in seconds.
    const START: i64 = 946_684_800;
    const SPAN: i64 = 40 * 365 * 86_400;

    fn instant(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(START + secs, 0).unwrap()
    }

    proptest! {
        #[test]
        fn elapsed_days_is_additive_and_monotone(
            b in boundary(),
            mut ts in proptest::collection::vec(0..SPAN, 3),
        ) {
            ts.sort_unstable();
            let (x, y, z) = (instant(ts[0]), instant(ts[1]), instant(ts[2]));
            let xy = b.elapsed_days(x, y);
            let yz = b.elapsed_days(y, z);
            let xz = b.elapsed_days(x, z);
            prop_assert_eq!(xz, xy + yz);
            prop_assert!(xz >= xy && xz >= yz);
            prop_assert_eq!(b.elapsed_days(z, x), 0);
            prop_assert!(b.local_day(x) <= b.local_day(y));
        }

        #[test]
        fn day_start_is_first_instant_of_its_day(b in boundary(), offset in 0i64..(40 * 365)) {
            let day = date(2000, 1, 1) + TimeDelta::days(offset);
            let start = b.day_start(day);
            prop_assert_eq!(b.local_day(start), day);
            prop_assert_eq!(b.local_day(start - TimeDelta::seconds(1)), day.pred_opt().unwrap());
            let end = b.day_end(day);
            prop_assert!(end > start);
            prop_assert_eq!(b.local_day(end - TimeDelta::seconds(1)), day);
            // A learner day lasts between 22 and 26 hours.
            let len = end - start;
            prop_assert!(len >= TimeDelta::hours(22) && len <= TimeDelta::hours(26));
        }

        #[test]
        fn instants_fall_inside_their_day(b in boundary(), secs in 0..SPAN) {
            let t = instant(secs);
            let day = b.local_day(t);
            prop_assert!(b.day_start(day) <= t);
            prop_assert!(t < b.day_end(day));
        }
    }

    #[test]
    fn add_local_days_keeps_the_wall_clock_across_dst() {
        let ny = new_york(4);
        // 04:30 EDT on 31 October + 1 day = 04:30 EST on 1 November (25 h).
        let at = utc("2026-10-31T08:30:00Z");
        let next = ny.add_local_days(at, 1);
        assert_eq!(next, utc("2026-11-01T09:30:00Z"));
        assert_eq!(ny.local_day(next), date(2026, 11, 1));
        assert_eq!(ny.local_day(at + TimeDelta::days(1)), date(2026, 10, 31));
        // 03:59 EST on 7 March (learner day 6 March) + 1 day = 03:59 EDT (23 h).
        let at = utc("2026-03-07T08:59:00Z");
        let next = ny.add_local_days(at, 1);
        assert_eq!(next, utc("2026-03-08T07:59:00Z"));
        assert_eq!(ny.local_day(next), date(2026, 3, 7));
        // 02:30 on 8 March does not exist: the end of the gap (03:00 EDT).
        let at = utc("2026-03-07T07:30:00Z");
        assert_eq!(ny.add_local_days(at, 1), utc("2026-03-08T07:00:00Z"));
        // 01:30 on 1 November happens twice: the first one (EDT).
        let at = utc("2026-10-31T05:30:00Z");
        assert_eq!(ny.add_local_days(at, 1), utc("2026-11-01T05:30:00Z"));
        // Zero days and fixed offsets are plain.
        assert_eq!(ny.add_local_days(at, 0), at);
        let kolkata = DayBoundary::new(chrono_tz::Asia::Kolkata, 4).unwrap();
        let at = utc("2026-03-04T22:29:00Z");
        assert_eq!(kolkata.add_local_days(at, 14), at + TimeDelta::days(14));
    }

    proptest! {
        #[test]
        fn add_local_days_moves_exactly_that_many_learner_days(
            secs in 1_700_000_000i64..1_900_000_000,
            days in 0u32..60,
            hour in 0u8..24,
        ) {
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let b = new_york(hour);
            let later = b.add_local_days(at, days);
            prop_assert!(later >= at);
            let expected = b.local_day(at) + TimeDelta::days(i64::from(days));
            // Only a wall-clock time inside a DST gap may move past it.
            let d = b.local_day(later);
            prop_assert!(d == expected || d == expected + TimeDelta::days(1), "{at} {days} {hour}: {d} vs {expected}");
            if b.local_wall_clock(later) == b.local_wall_clock(at) + TimeDelta::days(i64::from(days)) {
                prop_assert_eq!(d, expected);
            }
        }
    }

    #[test]
    fn utc_offsets_are_parsed_strictly() {
        for (text, minutes) in [
            ("Z", 0),
            ("z", 0),
            ("UTC", 0),
            ("utc", 0),
            ("+00:00", 0),
            ("-00:00", 0),
            ("+03:00", 180),
            ("-05:00", -300),
            ("+05:30", 330),
            ("+0530", 330),
            ("+0545", 345),
            ("-0930", -570),
            ("+09", 540),
            ("-03", -180),
            ("+14:00", 840),
            ("-14", -840),
            ("+12:45", 765),
        ] {
            assert_eq!(parse_utc_offset(text), Ok(minutes), "{text}");
        }
        for text in [
            "",
            "+",
            "-",
            "05:30",
            "5",
            "+5",
            "+-5",
            "-+05",
            "+05:-30",
            "+05:3",
            "+05:300",
            "+5:30",
            "+05:7",
            "+05:07",
            "+05:60",
            "+0599",
            "+14:15",
            "+14:30",
            "+15",
            "-15:00",
            "+99",
            "+05:30:00",
            "+05 30",
            " +05:30",
            "+05:30 ",
            "++05",
            "+０５",
            "UTC+3",
            "GMT",
            "Asia/Kolkata",
            "+05:",
            "+:30",
            "+0a:00",
        ] {
            assert!(
                matches!(parse_utc_offset(text), Err(TimeError::InvalidOffset { .. })),
                "{text:?} must be refused"
            );
        }
    }
}
