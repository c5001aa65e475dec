//! Seasons (academic years): the partition key of all learner memory data
//! and the unit of archival.

use chrono::NaiveDate;

use crate::error::CoreError;
use crate::ids::SeasonId;
use crate::srs::SchedulerKind;

/// A season.
#[derive(Debug, Clone, PartialEq)]
pub struct Season {
    /// Name, e.g. `SEASON-2026` (immutable: it is a partition value).
    pub id: SeasonId,
    /// Display title.
    pub title: String,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (inclusive).
    pub end_date: NaiveDate,
    /// The season new reviews are written to. At most one season is active.
    pub is_active: bool,
    /// Archive automatically once inactive and ended.
    pub auto_archive: bool,
    /// Whether reviews of this season are served from the cache.
    pub enable_cache: bool,
    /// Which scheduler computes review intervals in this season.
    pub scheduler: SchedulerKind,
    /// FSRS desired retention for this season (0.70..=0.99).
    pub desired_retention: f64,
    /// True once the season's data was archived.
    pub archived: bool,
}

impl Season {
    /// A new, inactive season with defaults (ladder scheduler, retention 0.9).
    pub fn new(
        id: SeasonId,
        title: impl Into<String>,
        start_date: NaiveDate,
        end_date: NaiveDate,
    ) -> Result<Self, CoreError> {
        let s = Season {
            id,
            title: title.into(),
            start_date,
            end_date,
            is_active: false,
            auto_archive: false,
            enable_cache: true,
            scheduler: SchedulerKind::Ladder,
            desired_retention: 0.9,
            archived: false,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks the season's invariants.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.end_date < self.start_date {
            return Err(CoreError::invalid("season end_date is before start_date"));
        }
        if self.is_active && self.auto_archive {
            return Err(CoreError::invalid(
                "a season cannot be active and set to auto-archive at the same time",
            ));
        }
        if !(0.7..=0.99).contains(&self.desired_retention) {
            return Err(CoreError::invalid(
                "desired_retention must be between 0.70 and 0.99",
            ));
        }
        if self.is_active && self.archived {
            return Err(CoreError::invalid("an archived season cannot be active"));
        }
        if self.title.trim().is_empty() {
            return Err(CoreError::invalid("season title must not be empty"));
        }
        Ok(())
    }

    /// True if the season covers `day` (subscriptions are valid while the
    /// season has started and not ended).
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.start_date <= day && day <= self.end_date
    }
}
