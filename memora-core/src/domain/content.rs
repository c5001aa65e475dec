//! Content hierarchy: subject → track → unit → (topic) → lesson → stage.
//! Stage configs are a content format, so they derive serde; everything is
//! validated when built or imported.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::ids::{LessonId, StageId, SubjectId, TopicId, TrackId, UnitId};

/// A subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Id.
    pub id: SubjectId,
    /// Unique title.
    pub title: String,
    /// Icon (URL or emoji).
    #[serde(default)]
    pub icon: Option<String>,
    /// Published subjects are visible to students.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Paid subjects need a subscription (unless a free preview applies).
    #[serde(default = "yes")]
    pub is_paid: bool,
}

fn yes() -> bool {
    true
}

/// A learning track of a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Id.
    pub id: TrackId,
    /// Parent subject.
    pub subject: SubjectId,
    /// Name.
    pub name: String,
    /// Default track of the subject.
    #[serde(default)]
    pub is_default: bool,
    /// Player level needed to open the track (enforced by the map use cases).
    #[serde(default)]
    pub unlock_level: u32,
    /// Icon.
    #[serde(default)]
    pub icon: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Units must be completed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// Published.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Paid track.
    #[serde(default)]
    pub is_paid: bool,
    /// Sold separately: a subject-wide subscription does not open it.
    #[serde(default)]
    pub is_sold_separately: bool,
}

/// How a unit organises its lessons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStructure {
    /// Lessons grouped in topics.
    TopicBased,
    /// Lessons directly in the unit (shown as one virtual topic).
    LessonBased,
}

/// A unit of a track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Id.
    pub id: UnitId,
    /// Subject.
    pub subject: SubjectId,
    /// Track.
    pub track: TrackId,
    /// Title.
    pub title: String,
    /// Display order inside the track.
    #[serde(default)]
    pub order: i32,
    /// Structure.
    pub structure: UnitStructure,
    /// Topics must be completed in order (topic-based units).
    #[serde(default = "yes")]
    pub is_linear_topics: bool,
    /// Free preview: open without subscription.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Published.
    #[serde(default = "yes")]
    pub is_published: bool,
}

/// A topic of a topic-based unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// Id.
    pub id: TopicId,
    /// Unit.
    pub unit: UnitId,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Display order inside the unit.
    #[serde(default)]
    pub order: i32,
    /// Lessons must be completed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// Free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Published.
    #[serde(default = "yes")]
    pub is_published: bool,
}

/// One highlighted word of a Reveal stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Highlight {
    /// The word (the answer of the generated card).
    pub word: String,
    /// Explanation shown to the learner.
    #[serde(default)]
    pub explanation: Option<String>,
    /// Stable item id.
    #[serde(default)]
    pub id: Option<String>,
}

/// One pair of a Matching stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchPair {
    /// Stable item id.
    #[serde(default)]
    pub id: Option<String>,
    /// Left side (the answer of the generated card).
    pub left: String,
    /// Right side (the prompt).
    pub right: String,
}

/// The five stage types and their configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config")]
pub enum StageConfig {
    /// A sentence with highlighted words.
    Reveal {
        /// Optional image.
        #[serde(default)]
        image: Option<String>,
        /// The sentence.
        sentence: String,
        /// Highlighted words.
        highlights: Vec<Highlight>,
    },
    /// Match left/right pairs.
    Matching {
        /// Instruction.
        #[serde(default)]
        instruction: Option<String>,
        /// Pairs.
        pairs: Vec<MatchPair>,
    },
    /// Build a sentence from words.
    #[serde(rename = "Sentence Builder")]
    SentenceBuilder {
        /// Instruction.
        #[serde(default)]
        instruction: Option<String>,
        /// Target sentence.
        sentence: String,
        /// Word tiles.
        words: Vec<String>,
    },
    /// Fill the blanks (`{word}` marks a blank in the sentence).
    #[serde(rename = "Fill Blank")]
    FillBlank {
        /// Instruction.
        #[serde(default)]
        instruction: Option<String>,
        /// Sentence with `{word}` blanks.
        sentence: String,
        /// The blank answers in order.
        blanks: Vec<String>,
        /// Wrong options.
        #[serde(default)]
        distractors: Vec<String>,
    },
    /// Free-form quiz JSON.
    Quiz(serde_json::Value),
}

impl StageConfig {
    /// The Frappe type name ("Reveal", "Matching", …).
    pub fn type_name(&self) -> &'static str {
        match self {
            StageConfig::Reveal { .. } => "Reveal",
            StageConfig::Matching { .. } => "Matching",
            StageConfig::SentenceBuilder { .. } => "Sentence Builder",
            StageConfig::FillBlank { .. } => "Fill Blank",
            StageConfig::Quiz(_) => "Quiz",
        }
    }

    /// Number of addressable elements (`<stage>:<n>`), for Reveal and Matching.
    pub fn element_count(&self) -> Option<usize> {
        match self {
            StageConfig::Reveal { highlights, .. } => Some(highlights.len()),
            StageConfig::Matching { pairs, .. } => Some(pairs.len()),
            _ => None,
        }
    }

    /// Checks the config is usable.
    pub fn validate(&self) -> Result<(), CoreError> {
        match self {
            StageConfig::Reveal {
                sentence,
                highlights,
                ..
            } => {
                if sentence.trim().is_empty() {
                    return Err(CoreError::invalid("Reveal stage needs a sentence"));
                }
                if highlights.iter().any(|h| h.word.trim().is_empty()) {
                    return Err(CoreError::invalid("Reveal highlight with an empty word"));
                }
            }
            StageConfig::Matching { pairs, .. } => {
                if pairs
                    .iter()
                    .any(|p| p.left.trim().is_empty() || p.right.trim().is_empty())
                {
                    return Err(CoreError::invalid("Matching pair with an empty side"));
                }
            }
            StageConfig::SentenceBuilder {
                sentence, words, ..
            } => {
                if sentence.trim().is_empty() || words.is_empty() {
                    return Err(CoreError::invalid(
                        "Sentence Builder stage needs a sentence and words",
                    ));
                }
            }
            StageConfig::FillBlank {
                sentence, blanks, ..
            } => {
                if sentence.trim().is_empty() || blanks.is_empty() {
                    return Err(CoreError::invalid(
                        "Fill Blank stage needs a sentence and blanks",
                    ));
                }
            }
            StageConfig::Quiz(v) => {
                if !v.is_object() {
                    return Err(CoreError::invalid("Quiz config must be a JSON object"));
                }
            }
        }
        Ok(())
    }
}

/// One stage of a lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Id (unique across all lessons).
    pub id: StageId,
    /// Title.
    pub title: String,
    /// Type and config.
    #[serde(flatten)]
    pub config: StageConfig,
}

/// A lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    /// Id.
    pub id: LessonId,
    /// Title.
    pub title: String,
    /// Unit.
    pub unit: UnitId,
    /// Topic (required in topic-based units, absent in lesson-based ones).
    #[serde(default)]
    pub topic: Option<TopicId>,
    /// Maximum XP a play of this lesson can earn.
    #[serde(default = "default_xp_reward")]
    pub xp_reward: i64,
    /// Display order.
    #[serde(default)]
    pub order: i32,
    /// Published.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

fn default_xp_reward() -> i64 {
    10
}

impl Lesson {
    /// Checks the lesson (not its placement, which needs the unit).
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.title.trim().is_empty() {
            return Err(CoreError::invalid("lesson title must not be empty"));
        }
        if !(0..=10_000).contains(&self.xp_reward) {
            return Err(CoreError::invalid("lesson xp_reward must be 0..=10000"));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.stages {
            if !seen.insert(&s.id) {
                return Err(CoreError::invalid(format!(
                    "lesson {} has duplicate stage id {}",
                    self.id, s.id
                )));
            }
            s.config.validate()?;
        }
        Ok(())
    }
}

/// The whole content and academic structure: small, read-mostly, loaded
/// into an in-process index. Also the JSON format of `import-content` bundles.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// Subjects.
    #[serde(default)]
    pub subjects: Vec<Subject>,
    /// Tracks.
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// Units.
    #[serde(default)]
    pub units: Vec<Unit>,
    /// Topics.
    #[serde(default)]
    pub topics: Vec<Topic>,
    /// Lessons with their stages.
    #[serde(default)]
    pub lessons: Vec<Lesson>,
    /// Grades.
    #[serde(default)]
    pub grades: Vec<crate::domain::Grade>,
    /// Streams.
    #[serde(default)]
    pub streams: Vec<crate::domain::Stream>,
    /// Academic plans.
    #[serde(default)]
    pub plans: Vec<crate::domain::AcademicPlan>,
}

/// Ids of content entities, by kind (what an import unpublishes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentIds {
    /// Subjects.
    #[serde(default)]
    pub subjects: Vec<SubjectId>,
    /// Tracks.
    #[serde(default)]
    pub tracks: Vec<TrackId>,
    /// Units.
    #[serde(default)]
    pub units: Vec<UnitId>,
    /// Topics.
    #[serde(default)]
    pub topics: Vec<TopicId>,
    /// Lessons.
    #[serde(default)]
    pub lessons: Vec<LessonId>,
}

impl ContentIds {
    /// No id at all.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
            && self.tracks.is_empty()
            && self.units.is_empty()
            && self.topics.is_empty()
            && self.lessons.is_empty()
    }
}

/// The JSON format of `import-content`: catalog entities to insert or
/// replace (by id) — the [`Catalog`] fields at the top level — plus
/// `unpublish`, content ids to take off the published catalog. Content is
/// never deleted by an import (see `services::admin::import_content`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentBundle {
    /// Entities to insert or replace.
    #[serde(flatten)]
    pub catalog: Catalog,
    /// Content to unpublish (must exist, must not also be in the bundle).
    #[serde(default)]
    pub unpublish: ContentIds,
}
