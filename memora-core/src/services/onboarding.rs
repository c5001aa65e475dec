//! Onboarding: the academic masters (grades, streams, seasons) and setting a
//! learner's academic profile. Fixes over the original (§7 #31): the season
//! is validated; a grade with streams requires a valid stream; a grade
//! without streams rejects one; no active season → the active one is used.

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::{GradeId, SeasonId, StreamId};

use super::GamificationService;

/// One grade in the masters listing.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeMaster {
    /// The grade.
    pub grade: Grade,
    /// Seasons that have a plan for this grade.
    pub allowed_seasons: Vec<SeasonId>,
}

/// `get_academic_masters` output.
#[derive(Debug, Clone, PartialEq)]
pub struct AcademicMasters {
    /// Grades.
    pub grades: Vec<GradeMaster>,
    /// Streams.
    pub streams: Vec<Stream>,
    /// Seasons (not archived), newest first.
    pub seasons: Vec<Season>,
}

impl GamificationService {
    /// `get_academic_masters`.
    pub async fn get_academic_masters(&self) -> CoreResult<AcademicMasters> {
        let idx = self.shared.catalog().await?;
        let cat = idx.catalog();
        let grades = cat
            .grades
            .iter()
            .map(|g| {
                let mut seasons: Vec<SeasonId> = cat
                    .plans
                    .iter()
                    .filter(|p| p.grade == g.id)
                    .map(|p| p.season.clone())
                    .collect();
                seasons.sort();
                seasons.dedup();
                GradeMaster {
                    grade: g.clone(),
                    allowed_seasons: seasons,
                }
            })
            .collect();
        let seasons = self
            .shared
            .seasons()
            .await?
            .iter()
            .filter(|s| !s.archived)
            .cloned()
            .collect();
        Ok(AcademicMasters {
            grades,
            streams: cat.streams.clone(),
            seasons,
        })
    }

    /// `set_academic_profile`.
    pub async fn set_academic_profile(
        &self,
        actor: &Actor,
        grade: &GradeId,
        stream: Option<&StreamId>,
        season: Option<&SeasonId>,
    ) -> CoreResult<PlayerProfile> {
        let idx = self.shared.catalog().await?;
        let g = idx
            .grade(grade)
            .ok_or_else(|| CoreError::invalid("Invalid Grade Selected"))?;
        match (stream, g.valid_streams.is_empty()) {
            (Some(s), true) => {
                return Err(CoreError::invalid(format!(
                    "Grade '{}' has no streams; do not send stream '{s}'",
                    g.name
                )));
            }
            (Some(s), false) if !g.valid_streams.contains(s) => {
                return Err(CoreError::invalid(format!(
                    "Stream '{s}' is not valid for Grade '{}'",
                    g.name
                )));
            }
            (None, false) => {
                return Err(CoreError::invalid(format!(
                    "Grade '{}' requires a stream",
                    g.name
                )));
            }
            _ => {}
        }
        let season = match season {
            Some(id) => {
                let s = self
                    .shared
                    .season(id)
                    .await
                    .map_err(|_| CoreError::invalid(format!("Invalid season '{id}'")))?;
                if s.archived {
                    return Err(CoreError::invalid(format!("season '{id}' is archived")));
                }
                s.id
            }
            None => self.shared.require_active_season().await?.id,
        };
        let mut profile = self.profiles.or_default(&actor.user).await?;
        profile.grade = Some(grade.clone());
        profile.stream = stream.cloned();
        profile.season = Some(season);
        self.profiles.save(&profile).await?;
        Ok(profile)
    }

    /// Sets a learner's time zone and day-rollover hour (default
    /// `Config::default_rollover_hour`).
    pub async fn set_time_zone(
        &self,
        actor: &Actor,
        tz: &str,
        rollover_hour: Option<u8>,
    ) -> CoreResult<PlayerProfile> {
        crate::text::check_text("time_zone", tz, 64)?;
        crate::time::DayBoundary::parse_tz(tz).map_err(|e| CoreError::invalid(e.to_string()))?;
        let rollover_hour = rollover_hour.unwrap_or(self.shared.config.default_rollover_hour);
        if rollover_hour > 23 {
            return Err(CoreError::invalid("rollover_hour must be 0..=23"));
        }
        let now = self.shared.now();
        let mut profile = self.profiles.or_default(&actor.user).await?;
        // Fold a pending change that is already in force.
        if let Some(p) = profile.pending_zone.take() {
            if p.effective_at <= now {
                profile.time_zone = p.time_zone;
                profile.rollover_hour = p.rollover_hour;
            } else {
                profile.pending_zone = Some(p);
            }
        }
        let current = self.shared.day_boundary(&profile);
        let unchanged = profile.time_zone == tz && profile.rollover_hour == rollover_hour;
        // A learner with no activity in the last two days (e.g. at
        // onboarding) switches at once; anyone else at the start of their
        // next day under the zone in force, so a zone change never yields a
        // second "today" (quests, streaks and daily XP stay once per day).
        let since = current.local_day(now) - chrono::Duration::days(1);
        let active = !self
            .activity
            .active_days(&actor.user, since)
            .await?
            .is_empty()
            || !self
                .quests
                .claimed(&actor.user, current.local_day(now))
                .await?
                .is_empty();
        if unchanged {
            profile.pending_zone = None;
        } else if !active {
            profile.time_zone = tz.to_owned();
            profile.rollover_hour = rollover_hour;
            profile.pending_zone = None;
        } else {
            profile.pending_zone = Some(crate::domain::PendingZone {
                time_zone: tz.to_owned(),
                rollover_hour,
                effective_at: current.day_end(current.local_day(now)),
            });
        }
        self.profiles.save(&profile).await?;
        Ok(profile)
    }
}
