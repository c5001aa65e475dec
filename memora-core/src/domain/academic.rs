//! Academic structure: grades, streams and plans (which subjects, and which
//! units of them, a grade/stream studies in a season).

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::ids::{GradeId, PlanId, SeasonId, StreamId, SubjectId, UnitId};

/// An academic grade (e.g. "Grade 12").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// Id.
    pub id: GradeId,
    /// Unique display name.
    pub name: String,
    /// Streams a student of this grade may choose; empty = no streams.
    #[serde(default)]
    pub valid_streams: Vec<StreamId>,
}

/// An academic stream (e.g. "Scientific").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// Id.
    pub id: StreamId,
    /// Unique display name.
    pub name: String,
}

/// Which units of a subject a plan includes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitSelection {
    /// Every unit of the subject.
    AllUnits,
    /// Only these units.
    SpecificUnits(Vec<UnitId>),
}

/// One subject row of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSubject {
    /// The subject.
    pub subject: SubjectId,
    /// Display-name override for this plan.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether the subject is mandatory in the plan.
    #[serde(default = "yes")]
    pub is_mandatory: bool,
    /// Unit selection rule.
    #[serde(default = "all_units")]
    pub selection: UnitSelection,
}

/// An academic plan for (grade, stream?, season). At most one plan exists per
/// combination (the original allowed duplicates and picked one arbitrarily).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcademicPlan {
    /// Id.
    pub id: PlanId,
    /// Title.
    pub title: String,
    /// Grade.
    pub grade: GradeId,
    /// Stream, or `None` for a plan that applies to stream-less students.
    #[serde(default)]
    pub stream: Option<StreamId>,
    /// Season.
    pub season: SeasonId,
    /// Subjects in display order.
    pub subjects: Vec<PlanSubject>,
    /// Bumped on every change (clients cache plan JSON by version).
    #[serde(default)]
    pub version: i64,
}

impl AcademicPlan {
    /// Rejects a plan that lists a subject twice.
    pub fn validate(&self) -> Result<(), CoreError> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.subjects {
            if !seen.insert(&s.subject) {
                return Err(CoreError::invalid(format!(
                    "plan {} lists subject {} twice",
                    self.id, s.subject
                )));
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

fn all_units() -> UnitSelection {
    UnitSelection::AllUnits
}
