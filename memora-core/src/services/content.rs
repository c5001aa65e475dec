//! The in-process content index and the map/content use cases (subjects,
//! tracks, map, track details, topic details, unit topics, lesson details).
//! Content is small and read-mostly, so it is indexed once and served from
//! memory; the index validates referential integrity when built, which is
//! also how content imports are validated.
//!
//! **Statuses** (`completed` > `locked_level` > `locked_premium` > locked by
//! progression > `available`): on a linear track the first unit is open and
//! each later one opens when the previous one is completed (progression
//! runs per track, also on the map); a unit locked by progression or level
//! locks every topic and lesson inside it that is not completed, on every
//! endpoint (map, unit topics, topic details), and a topic locked by its
//! unit's linear topics locks its lessons. The progression lock is worded
//! `locked_progression` by `get_track_details` and `get_unit_topics`,
//! `locked` by `get_map_data` and `get_topic_details` (as the original).

use std::collections::{HashMap, HashSet};

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::gamification::level_for_xp;
use crate::ids::*;

use super::LearningService;

/// The index's maps: every submission and every served card looks ids up
/// in them several times, so they hash with foldhash (seeded per process,
/// several times faster than the standard SipHash on short ids) instead of
/// SipHash. Their keys come from the catalog, never from a request.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Indexed content and academic structure.
#[derive(Debug, Default)]
pub struct ContentIndex {
    catalog: Catalog,
    subjects: Map<SubjectId, usize>,
    tracks: Map<TrackId, usize>,
    units: Map<UnitId, usize>,
    topics: Map<TopicId, usize>,
    lessons: Map<LessonId, usize>,
    stages: Map<StageId, (usize, usize)>,
    tracks_by_subject: Map<SubjectId, Vec<usize>>,
    units_by_track: Map<TrackId, Vec<usize>>,
    topics_by_unit: Map<UnitId, Vec<usize>>,
    lessons_by_topic: Map<TopicId, Vec<usize>>,
    direct_lessons_by_unit: Map<UnitId, Vec<usize>>,
}

fn index_of<K: std::hash::Hash + Eq + Clone + std::fmt::Display>(
    map: &mut Map<K, usize>,
    key: &K,
    i: usize,
    what: &str,
) -> CoreResult<()> {
    if map.insert(key.clone(), i).is_some() {
        return Err(CoreError::invalid(format!("duplicate {what} id {key}")));
    }
    Ok(())
}

impl ContentIndex {
    /// Indexes a catalog, rejecting dangling references, duplicate ids and
    /// lessons whose topic does not match their unit's structure.
    pub fn build(catalog: Catalog) -> CoreResult<Self> {
        let mut idx = ContentIndex::default();
        for (i, s) in catalog.subjects.iter().enumerate() {
            index_of(&mut idx.subjects, &s.id, i, "subject")?;
        }
        for (i, t) in catalog.tracks.iter().enumerate() {
            index_of(&mut idx.tracks, &t.id, i, "track")?;
            if !idx.subjects.contains_key(&t.subject) {
                return Err(CoreError::invalid(format!(
                    "track {} references unknown subject {}",
                    t.id, t.subject
                )));
            }
            idx.tracks_by_subject
                .entry(t.subject.clone())
                .or_default()
                .push(i);
        }
        for (i, u) in catalog.units.iter().enumerate() {
            index_of(&mut idx.units, &u.id, i, "unit")?;
            let track = idx
                .tracks
                .get(&u.track)
                .map(|&t| &catalog.tracks[t])
                .ok_or_else(|| {
                    CoreError::invalid(format!(
                        "unit {} references unknown track {}",
                        u.id, u.track
                    ))
                })?;
            if track.subject != u.subject {
                return Err(CoreError::invalid(format!(
                    "unit {} is in subject {} but its track {} belongs to {}",
                    u.id, u.subject, u.track, track.subject
                )));
            }
            idx.units_by_track
                .entry(u.track.clone())
                .or_default()
                .push(i);
        }
        for (i, t) in catalog.topics.iter().enumerate() {
            index_of(&mut idx.topics, &t.id, i, "topic")?;
            let unit = idx
                .units
                .get(&t.unit)
                .map(|&u| &catalog.units[u])
                .ok_or_else(|| {
                    CoreError::invalid(format!("topic {} references unknown unit {}", t.id, t.unit))
                })?;
            if unit.structure != UnitStructure::TopicBased {
                return Err(CoreError::invalid(format!(
                    "topic {} belongs to lesson-based unit {}",
                    t.id, t.unit
                )));
            }
            idx.topics_by_unit
                .entry(t.unit.clone())
                .or_default()
                .push(i);
        }
        for (i, l) in catalog.lessons.iter().enumerate() {
            index_of(&mut idx.lessons, &l.id, i, "lesson")?;
            l.validate()?;
            let unit = idx
                .units
                .get(&l.unit)
                .map(|&u| &catalog.units[u])
                .ok_or_else(|| {
                    CoreError::invalid(format!(
                        "lesson {} references unknown unit {}",
                        l.id, l.unit
                    ))
                })?;
            match (unit.structure, &l.topic) {
                (UnitStructure::TopicBased, Some(topic)) => {
                    let t = idx
                        .topics
                        .get(topic)
                        .map(|&t| &catalog.topics[t])
                        .ok_or_else(|| {
                            CoreError::invalid(format!(
                                "lesson {} references unknown topic {topic}",
                                l.id
                            ))
                        })?;
                    if t.unit != l.unit {
                        return Err(CoreError::invalid(format!(
                            "lesson {}: topic {topic} is not in unit {}",
                            l.id, l.unit
                        )));
                    }
                    idx.lessons_by_topic
                        .entry(topic.clone())
                        .or_default()
                        .push(i);
                }
                (UnitStructure::TopicBased, None) => {
                    return Err(CoreError::invalid(format!(
                        "lesson {} is in topic-based unit {} and needs a topic",
                        l.id, l.unit
                    )));
                }
                (UnitStructure::LessonBased, Some(_)) => {
                    return Err(CoreError::invalid(format!(
                        "lesson {} is in lesson-based unit {} and must not have a topic",
                        l.id, l.unit
                    )));
                }
                (UnitStructure::LessonBased, None) => {
                    idx.direct_lessons_by_unit
                        .entry(l.unit.clone())
                        .or_default()
                        .push(i);
                }
            }
            for (si, st) in l.stages.iter().enumerate() {
                if idx.stages.insert(st.id.clone(), (i, si)).is_some() {
                    return Err(CoreError::invalid(format!("duplicate stage id {}", st.id)));
                }
            }
        }
        let grade_ids: HashSet<_> = catalog.grades.iter().map(|g| g.id.clone()).collect();
        let stream_ids: HashSet<_> = catalog.streams.iter().map(|s| s.id.clone()).collect();
        for g in &catalog.grades {
            if let Some(s) = g.valid_streams.iter().find(|s| !stream_ids.contains(*s)) {
                return Err(CoreError::invalid(format!(
                    "grade {} lists unknown stream {s}",
                    g.id
                )));
            }
        }
        let mut plan_keys = HashSet::new();
        for p in &catalog.plans {
            p.validate()?;
            if !grade_ids.contains(&p.grade) {
                return Err(CoreError::invalid(format!(
                    "plan {} has unknown grade {}",
                    p.id, p.grade
                )));
            }
            if let Some(s) = &p.stream {
                if !stream_ids.contains(s) {
                    return Err(CoreError::invalid(format!(
                        "plan {} has unknown stream {s}",
                        p.id
                    )));
                }
            }
            if !plan_keys.insert((p.grade.clone(), p.stream.clone(), p.season.clone())) {
                return Err(CoreError::invalid(format!(
                    "more than one plan for grade {}, stream {:?}, season {}",
                    p.grade, p.stream, p.season
                )));
            }
            if let Some(s) = p
                .subjects
                .iter()
                .find(|s| !idx.subjects.contains_key(&s.subject))
            {
                return Err(CoreError::invalid(format!(
                    "plan {} lists unknown subject {}",
                    p.id, s.subject
                )));
            }
        }
        // Sort children by (order, position) so every listing is stable.
        let tracks = &catalog.tracks;
        for v in idx.tracks_by_subject.values_mut() {
            v.sort_by_key(|&i| (!tracks[i].is_default, i));
        }
        let units = &catalog.units;
        for v in idx.units_by_track.values_mut() {
            v.sort_by_key(|&i| (units[i].order, i));
        }
        let topics = &catalog.topics;
        for v in idx.topics_by_unit.values_mut() {
            v.sort_by_key(|&i| (topics[i].order, i));
        }
        let lessons = &catalog.lessons;
        for v in idx
            .lessons_by_topic
            .values_mut()
            .chain(idx.direct_lessons_by_unit.values_mut())
        {
            v.sort_by_key(|&i| (lessons[i].order, i));
        }
        idx.catalog = catalog;
        Ok(idx)
    }

    /// The underlying catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    /// A subject.
    pub fn subject(&self, id: &SubjectId) -> Option<&Subject> {
        self.subjects.get(id).map(|&i| &self.catalog.subjects[i])
    }
    /// A track.
    pub fn track(&self, id: &TrackId) -> Option<&Track> {
        self.tracks.get(id).map(|&i| &self.catalog.tracks[i])
    }
    /// A unit.
    pub fn unit(&self, id: &UnitId) -> Option<&Unit> {
        self.units.get(id).map(|&i| &self.catalog.units[i])
    }
    /// A topic.
    pub fn topic(&self, id: &TopicId) -> Option<&Topic> {
        self.topics.get(id).map(|&i| &self.catalog.topics[i])
    }
    /// A lesson.
    pub fn lesson(&self, id: &LessonId) -> Option<&Lesson> {
        self.lessons.get(id).map(|&i| &self.catalog.lessons[i])
    }
    /// A stage and its lesson.
    pub fn stage(&self, id: &str) -> Option<(&Lesson, &Stage)> {
        // By text: no id is built (validated, allocated) for a lookup.
        self.stages.get(id).map(|&(l, s)| {
            let lesson = &self.catalog.lessons[l];
            (lesson, &lesson.stages[s])
        })
    }
    /// Tracks of a subject (default first).
    pub fn tracks_of(&self, subject: &SubjectId) -> Vec<&Track> {
        self.list(&self.tracks_by_subject, subject, &self.catalog.tracks)
    }
    /// Units of a track in order.
    pub fn units_of_track(&self, track: &TrackId) -> Vec<&Unit> {
        self.list(&self.units_by_track, track, &self.catalog.units)
    }
    /// Units of a subject (track order, then unit order).
    pub fn units_of_subject(&self, subject: &SubjectId) -> Vec<&Unit> {
        self.tracks_of(subject)
            .into_iter()
            .flat_map(|t| self.units_of_track(&t.id))
            .collect()
    }
    /// Topics of a unit in order.
    pub fn topics_of(&self, unit: &UnitId) -> Vec<&Topic> {
        self.list(&self.topics_by_unit, unit, &self.catalog.topics)
    }
    /// Lessons of a topic in order.
    pub fn lessons_of_topic(&self, topic: &TopicId) -> Vec<&Lesson> {
        self.list(&self.lessons_by_topic, topic, &self.catalog.lessons)
    }
    /// Lessons placed directly in a (lesson-based) unit.
    pub fn direct_lessons_of(&self, unit: &UnitId) -> Vec<&Lesson> {
        self.list(&self.direct_lessons_by_unit, unit, &self.catalog.lessons)
    }
    /// Every lesson of a unit (all topics, in order).
    pub fn lessons_of_unit(&self, unit: &UnitId) -> Vec<&Lesson> {
        let mut out = self.direct_lessons_of(unit);
        for t in self.topics_of(unit) {
            out.extend(self.lessons_of_topic(&t.id));
        }
        out
    }
    /// The subject and topic a question belongs to (from its stage's lesson).
    pub fn question_placement(
        &self,
        q: &QuestionId,
    ) -> Option<(SubjectId, Option<TopicId>, &Lesson, &Stage)> {
        let (lesson, stage) = self.stage(q.stage_str())?;
        if let (Some(i), Some(n)) = (q.index(), stage.config.element_count()) {
            if i as usize >= n {
                return None;
            }
        } else if q.index().is_some() {
            return None;
        }
        let unit = self.unit(&lesson.unit)?;
        Some((unit.subject.clone(), lesson.topic.clone(), lesson, stage))
    }
    /// The plan for (grade, stream, season): exact stream match first, then a
    /// stream-less plan.
    pub fn plan_for(
        &self,
        grade: &GradeId,
        stream: Option<&StreamId>,
        season: &SeasonId,
    ) -> Option<&AcademicPlan> {
        let plans = &self.catalog.plans;
        plans
            .iter()
            .find(|p| &p.grade == grade && p.stream.as_ref() == stream && &p.season == season)
            .or_else(|| {
                plans
                    .iter()
                    .find(|p| &p.grade == grade && p.stream.is_none() && &p.season == season)
            })
    }
    /// A grade.
    pub fn grade(&self, id: &GradeId) -> Option<&Grade> {
        self.catalog.grades.iter().find(|g| &g.id == id)
    }

    fn list<'a, K: std::hash::Hash + Eq, T>(
        &'a self,
        map: &Map<K, Vec<usize>>,
        key: &K,
        items: &'a [T],
    ) -> Vec<&'a T> {
        map.get(key)
            .map(|v| v.iter().map(|&i| &items[i]).collect())
            .unwrap_or_default()
    }
}

/// A subject as listed for a learner.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectView {
    /// Id.
    pub id: SubjectId,
    /// Title (plan display name if set).
    pub title: String,
    /// Plain subject title.
    pub subject_title: String,
    /// Icon.
    pub icon: Option<String>,
    /// Paid subject.
    pub is_paid: bool,
    /// Mandatory in the plan.
    pub is_mandatory: bool,
}

/// Status of a lesson / unit / topic on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Done.
    Completed,
    /// Open.
    Available,
    /// Needs earlier content first.
    Locked,
    /// Needs a subscription.
    LockedPremium,
    /// Needs a higher player level (track `unlock_level`).
    LockedLevel,
}

impl NodeStatus {
    /// Wire name; `progression_word` chooses `locked_progression` (track and
    /// unit endpoints) or `locked` (map and topic endpoints), as the
    /// original API did.
    pub fn as_str(self, progression_word: bool) -> &'static str {
        match self {
            NodeStatus::Completed => "completed",
            NodeStatus::Available => "available",
            NodeStatus::Locked if progression_word => "locked_progression",
            NodeStatus::Locked => "locked",
            NodeStatus::LockedPremium => "locked_premium",
            NodeStatus::LockedLevel => "locked_level",
        }
    }
}

/// A lesson on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonNode {
    /// Id.
    pub id: LessonId,
    /// Title.
    pub title: String,
    /// Status.
    pub status: NodeStatus,
    /// XP reward.
    pub xp: i64,
}

/// A topic on the map / in a unit listing.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicNode {
    /// Id (`<unit>-default` for the virtual topic of a lesson-based unit).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Virtual topic.
    pub is_virtual: bool,
    /// Status.
    pub status: NodeStatus,
    /// Published lessons.
    pub total_lessons: usize,
    /// Completed lessons.
    pub completed_lessons: usize,
    /// Free (no subscription needed).
    pub is_free: bool,
    /// Lessons (only for virtual topics on the map; lazy otherwise).
    pub lessons: Vec<LessonNode>,
}

impl TopicNode {
    /// ⌊completed / total × 100⌋.
    pub fn progress(&self) -> u32 {
        percent(self.completed_lessons, self.total_lessons)
    }
}

fn percent(done: usize, total: usize) -> u32 {
    (done * 100)
        .checked_div(total)
        .map(|p| u32::try_from(p).unwrap_or(100))
        .unwrap_or(0)
}

/// A unit on the map / in a track listing.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitNode {
    /// Id.
    pub id: UnitId,
    /// Title.
    pub title: String,
    /// Structure.
    pub structure: UnitStructure,
    /// Status.
    pub status: NodeStatus,
    /// ⌊completed / total × 100⌋ over published lessons.
    pub progress: u32,
    /// Free.
    pub is_free: bool,
    /// Topics (map view).
    pub topics: Vec<TopicNode>,
}

/// One subject of the map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSubject {
    /// Subject.
    pub subject: SubjectView,
    /// Units.
    pub units: Vec<UnitNode>,
}

/// Topic details.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDetails {
    /// Topic id.
    pub topic_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// No financial access.
    pub is_locked_premium: bool,
    /// Lessons with statuses.
    pub lessons: Vec<LessonNode>,
}

/// Track details.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackDetails {
    /// Subject.
    pub subject: Subject,
    /// Track (if one was named).
    pub track: Option<Track>,
    /// Units with statuses.
    pub units: Vec<UnitNode>,
}

/// Unit topics.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTopics {
    /// Unit title.
    pub unit_title: String,
    /// Topics with statuses.
    pub topics: Vec<TopicNode>,
}

/// Lesson content for playing.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonDetails {
    /// The lesson.
    pub lesson: Lesson,
}

/// Whether content placed at (unit, topic) is open without a subscription or
/// covered by the learner's access.
pub(crate) fn has_financial_access(
    idx: &ContentIndex,
    keys: &AccessKeys,
    unit: &Unit,
    topic: Option<&Topic>,
) -> bool {
    if unit.is_free_preview || topic.map(|t| t.is_free_preview).unwrap_or(false) {
        return true;
    }
    let subject = idx.subject(&unit.subject);
    let track = idx.track(&unit.track);
    let subject_paid = subject.map(|s| s.is_paid).unwrap_or(true);
    let track_paid = track.map(|t| t.is_paid).unwrap_or(false);
    if !subject_paid && !track_paid {
        return true;
    }
    keys.covers(&unit.subject, track.map(|t| (&t.id, t.is_sold_separately)))
}

/// Linear status of an ordered lesson list. `parent_locked`: the topic or
/// unit holding the lessons is locked by progression, so every lesson not
/// yet completed is locked too.
fn lesson_statuses(
    lessons: &[&Lesson],
    completed: &HashSet<LessonId>,
    access: bool,
    linear: bool,
    parent_locked: bool,
) -> Vec<LessonNode> {
    let mut prev_done = true;
    lessons
        .iter()
        .filter(|l| l.is_published)
        .map(|l| {
            let done = completed.contains(&l.id);
            let status = if done {
                NodeStatus::Completed
            } else if !access {
                NodeStatus::LockedPremium
            } else if parent_locked || (linear && !prev_done) {
                NodeStatus::Locked
            } else {
                NodeStatus::Available
            };
            prev_done = done;
            LessonNode {
                id: l.id.clone(),
                title: l.title.clone(),
                status,
                xp: l.xp_reward,
            }
        })
        .collect()
}

impl LearningService {
    async fn plan_subjects(&self, actor: &Actor) -> CoreResult<Vec<(PlanSubject, Subject)>> {
        let idx = self.catalog().await?;
        let profile = self.profiles.or_default(&actor.user).await?;
        let (Some(grade), Some(season)) = (profile.grade.as_ref(), profile.season.as_ref()) else {
            return Ok(Vec::new());
        };
        let Some(plan) = idx.plan_for(grade, profile.stream.as_ref(), season) else {
            return Ok(Vec::new());
        };
        Ok(plan
            .subjects
            .iter()
            .filter_map(|ps| {
                idx.subject(&ps.subject)
                    .filter(|s| s.is_published)
                    .map(|s| (ps.clone(), s.clone()))
            })
            .collect())
    }

    fn subject_view(ps: &PlanSubject, s: &Subject) -> SubjectView {
        SubjectView {
            id: s.id.clone(),
            title: ps.display_name.clone().unwrap_or_else(|| s.title.clone()),
            subject_title: s.title.clone(),
            icon: s.icon.clone(),
            is_paid: s.is_paid,
            is_mandatory: ps.is_mandatory,
        }
    }

    /// `get_subjects` / `get_my_subjects`: the published subjects of the
    /// learner's plan (empty until onboarding is complete).
    pub async fn get_subjects(&self, actor: &Actor) -> CoreResult<Vec<SubjectView>> {
        Ok(self
            .plan_subjects(actor)
            .await?
            .iter()
            .map(|(ps, s)| Self::subject_view(ps, s))
            .collect())
    }

    /// `get_game_tracks`: published tracks of a subject, default first.
    pub async fn get_game_tracks(&self, subject: &SubjectId) -> CoreResult<Vec<Track>> {
        let idx = self.catalog().await?;
        if idx.subject(subject).is_none() {
            return Err(CoreError::not_found(format!("subject {subject} not found")));
        }
        Ok(idx
            .tracks_of(subject)
            .into_iter()
            .filter(|t| t.is_published)
            .cloned()
            .collect())
    }

    fn topic_node(
        idx: &ContentIndex,
        unit: &Unit,
        topic: &Topic,
        keys: &AccessKeys,
        completed: &HashSet<LessonId>,
        prev_completed: bool,
        unit_locked: bool,
    ) -> TopicNode {
        let lessons: Vec<&Lesson> = idx
            .lessons_of_topic(&topic.id)
            .into_iter()
            .filter(|l| l.is_published)
            .collect();
        let done = lessons.iter().filter(|l| completed.contains(&l.id)).count();
        let access = has_financial_access(idx, keys, unit, Some(topic));
        let fully = !lessons.is_empty() && done == lessons.len();
        let status = if fully {
            NodeStatus::Completed
        } else if !access {
            NodeStatus::LockedPremium
        } else if unit_locked || (unit.is_linear_topics && !prev_completed) {
            NodeStatus::Locked
        } else {
            NodeStatus::Available
        };
        TopicNode {
            id: topic.id.to_string(),
            title: topic.title.clone(),
            description: topic.description.clone(),
            is_virtual: false,
            status,
            total_lessons: lessons.len(),
            completed_lessons: done,
            is_free: unit.is_free_preview || topic.is_free_preview,
            lessons: Vec::new(),
        }
    }

    /// Topics of a unit with statuses; `unit_locked`: the unit itself is
    /// locked (progression or level), which locks whatever is not completed.
    fn topic_nodes(
        idx: &ContentIndex,
        unit: &Unit,
        keys: &AccessKeys,
        completed: &HashSet<LessonId>,
        with_lessons: bool,
        unit_locked: bool,
    ) -> Vec<TopicNode> {
        match unit.structure {
            UnitStructure::LessonBased => {
                let lessons = idx.direct_lessons_of(&unit.id);
                let access = has_financial_access(idx, keys, unit, None);
                let nodes = lesson_statuses(&lessons, completed, access, true, unit_locked);
                if nodes.is_empty() {
                    return Vec::new();
                }
                let done = nodes
                    .iter()
                    .filter(|n| n.status == NodeStatus::Completed)
                    .count();
                vec![TopicNode {
                    id: format!("{}-default", unit.id),
                    title: unit.title.clone(),
                    description: None,
                    is_virtual: true,
                    status: if done == nodes.len() {
                        NodeStatus::Completed
                    } else if !access {
                        NodeStatus::LockedPremium
                    } else if unit_locked {
                        NodeStatus::Locked
                    } else {
                        NodeStatus::Available
                    },
                    total_lessons: nodes.len(),
                    completed_lessons: done,
                    is_free: unit.is_free_preview,
                    lessons: if with_lessons { nodes } else { Vec::new() },
                }]
            }
            UnitStructure::TopicBased => {
                let mut prev = true;
                idx.topics_of(&unit.id)
                    .into_iter()
                    .filter(|t| t.is_published)
                    .map(|t| {
                        let node =
                            Self::topic_node(idx, unit, t, keys, completed, prev, unit_locked);
                        prev = node.status == NodeStatus::Completed;
                        node
                    })
                    .collect()
            }
        }
    }

    /// A unit's node: `linear` and `prev_completed` give the progression
    /// lock, `level_locked` the track's level lock (`locked_level`); a
    /// locked unit locks everything inside it that is not completed.
    #[allow(clippy::too_many_arguments)]
    fn unit_node(
        idx: &ContentIndex,
        unit: &Unit,
        keys: &AccessKeys,
        completed: &HashSet<LessonId>,
        prev_completed: bool,
        linear: bool,
        level_locked: bool,
        with_topics: bool,
    ) -> UnitNode {
        let lessons: Vec<&Lesson> = idx
            .lessons_of_unit(&unit.id)
            .into_iter()
            .filter(|l| l.is_published)
            .collect();
        let done = lessons.iter().filter(|l| completed.contains(&l.id)).count();
        let progress = percent(done, lessons.len());
        let access = has_financial_access(idx, keys, unit, None);
        let status = if !lessons.is_empty() && done == lessons.len() {
            NodeStatus::Completed
        } else if level_locked {
            NodeStatus::LockedLevel
        } else if !access {
            NodeStatus::LockedPremium
        } else if linear && !prev_completed {
            NodeStatus::Locked
        } else {
            NodeStatus::Available
        };
        let locked = matches!(status, NodeStatus::Locked | NodeStatus::LockedLevel);
        UnitNode {
            id: unit.id.clone(),
            title: unit.title.clone(),
            structure: unit.structure,
            status,
            progress,
            is_free: unit.is_free_preview,
            topics: if with_topics {
                Self::topic_nodes(idx, unit, keys, completed, true, locked)
            } else {
                Vec::new()
            },
        }
    }

    /// Whether `unit` is locked on its track (by progression on a linear
    /// track, or by the track's level): what `get_track_details` shows for
    /// it, so that its topics and lessons are shown locked as well.
    fn unit_locked_on_track(
        idx: &ContentIndex,
        unit: &Unit,
        keys: &AccessKeys,
        completed: &HashSet<LessonId>,
        level: u32,
    ) -> bool {
        let Some(track) = idx.track(&unit.track) else {
            return false;
        };
        let level_locked = track.unlock_level > level;
        let mut prev = true;
        for u in idx.units_of_track(&track.id) {
            if !u.is_published {
                continue;
            }
            let node = Self::unit_node(
                idx,
                u,
                keys,
                completed,
                prev,
                track.is_linear,
                level_locked,
                false,
            );
            if u.id == unit.id {
                return matches!(node.status, NodeStatus::Locked | NodeStatus::LockedLevel);
            }
            prev = node.status == NodeStatus::Completed;
        }
        false
    }

    /// `get_map_data`: the learner's plan subjects (optionally one subject
    /// and/or track) with units, topics and statuses.
    pub async fn get_map_data(
        &self,
        actor: &Actor,
        subject: Option<&SubjectId>,
        track: Option<&TrackId>,
    ) -> CoreResult<Vec<MapSubject>> {
        let idx = self.catalog().await?;
        let keys = self.commerce.access_keys(&actor.user).await?;
        let completed = self.activity.completed_lessons(&actor.user).await?;
        let level = level_for_xp(self.profiles.or_default(&actor.user).await?.total_xp);
        let mut out = Vec::new();
        for (ps, s) in self.plan_subjects(actor).await? {
            if subject.is_some_and(|want| want != &s.id) {
                continue;
            }
            let units: Vec<&Unit> = idx
                .units_of_subject(&s.id)
                .into_iter()
                .filter(|u| u.is_published)
                .filter(|u| track.is_none_or(|t| &u.track == t))
                .filter(|u| match &ps.selection {
                    UnitSelection::AllUnits => true,
                    UnitSelection::SpecificUnits(list) => list.contains(&u.id),
                })
                .collect();
            if units.is_empty() {
                continue;
            }
            let mut nodes = Vec::new();
            // Progression runs along each track (a subject may have several).
            let mut prev_of_track: HashMap<&TrackId, bool> = HashMap::new();
            for u in units {
                let track = idx.track(&u.track);
                let linear = track.map(|t| t.is_linear).unwrap_or(true);
                let level_locked = track.is_some_and(|t| t.unlock_level > level);
                let prev = prev_of_track.entry(&u.track).or_insert(true);
                let node = Self::unit_node(
                    &idx,
                    u,
                    &keys,
                    &completed,
                    *prev,
                    linear,
                    level_locked,
                    true,
                );
                *prev = node.status == NodeStatus::Completed;
                if node.topics.is_empty() {
                    continue;
                }
                nodes.push(node);
            }
            out.push(MapSubject {
                subject: Self::subject_view(&ps, &s),
                units: nodes,
            });
        }
        Ok(out)
    }

    /// `get_track_details`: units of a track (or of a subject's track-less
    /// view) with progress and statuses. `linear_override` replaces the
    /// track's own linear flag when given.
    pub async fn get_track_details(
        &self,
        actor: &Actor,
        subject: Option<&SubjectId>,
        track: Option<&TrackId>,
        linear_override: Option<bool>,
    ) -> CoreResult<TrackDetails> {
        let idx = self.catalog().await?;
        let track_row = match track {
            Some(t) => Some(
                idx.track(t)
                    .cloned()
                    .ok_or_else(|| CoreError::not_found(format!("track {t} not found")))?,
            ),
            None => None,
        };
        let subject_id = match (subject, &track_row) {
            (Some(s), _) => s.clone(),
            (None, Some(t)) => t.subject.clone(),
            (None, None) => return Err(CoreError::invalid("track or subject is required")),
        };
        let subject_row = idx
            .subject(&subject_id)
            .cloned()
            .ok_or_else(|| CoreError::not_found(format!("subject {subject_id} not found")))?;
        if let Some(t) = &track_row {
            if t.subject != subject_id {
                return Err(CoreError::invalid(format!(
                    "track {} does not belong to subject {subject_id}",
                    t.id
                )));
            }
        }
        let keys = self.commerce.access_keys(&actor.user).await?;
        let completed = self.activity.completed_lessons(&actor.user).await?;
        let profile = self.profiles.or_default(&actor.user).await?;
        let level = level_for_xp(profile.total_xp);
        let units: Vec<&Unit> = match &track_row {
            Some(t) => idx.units_of_track(&t.id),
            None => idx.units_of_subject(&subject_id),
        };
        let linear = linear_override
            .or(track_row.as_ref().map(|t| t.is_linear))
            .unwrap_or(false);
        let level_locked = track_row.as_ref().is_some_and(|t| t.unlock_level > level);
        let mut prev = true;
        let mut nodes = Vec::new();
        for u in units.into_iter().filter(|u| u.is_published) {
            let node = Self::unit_node(
                &idx,
                u,
                &keys,
                &completed,
                prev,
                linear,
                level_locked,
                false,
            );
            prev = node.status == NodeStatus::Completed;
            nodes.push(node);
        }
        Ok(TrackDetails {
            subject: subject_row,
            track: track_row,
            units: nodes,
        })
    }

    /// `get_topic_details`: a topic's lessons with statuses; `<unit>-default`
    /// addresses the virtual topic of a lesson-based unit.
    pub async fn get_topic_details(
        &self,
        actor: &Actor,
        topic_id: &str,
    ) -> CoreResult<TopicDetails> {
        crate::text::check_text("topic_id", topic_id, crate::ids::MAX_ID_LEN)?;
        let idx = self.catalog().await?;
        let keys = self.commerce.access_keys(&actor.user).await?;
        let completed = self.activity.completed_lessons(&actor.user).await?;
        let level = level_for_xp(self.profiles.or_default(&actor.user).await?.total_xp);
        if let Some(unit_id) = topic_id.strip_suffix("-default") {
            let unit = UnitId::new(unit_id)
                .ok()
                .and_then(|u| idx.unit(&u))
                .filter(|u| u.is_published)
                .ok_or_else(|| CoreError::not_found("Unit not found"))?;
            let access = has_financial_access(&idx, &keys, unit, None);
            let unit_locked = Self::unit_locked_on_track(&idx, unit, &keys, &completed, level);
            let lessons = lesson_statuses(
                &idx.direct_lessons_of(&unit.id),
                &completed,
                access,
                true,
                unit_locked,
            );
            return Ok(TopicDetails {
                topic_id: topic_id.to_owned(),
                title: unit.title.clone(),
                description: Some("دروس الوحدة".to_owned()),
                is_locked_premium: !access,
                lessons,
            });
        }
        let topic = TopicId::new(topic_id)
            .ok()
            .and_then(|t| idx.topic(&t))
            .filter(|t| t.is_published)
            .ok_or_else(|| CoreError::not_found("Topic not found"))?;
        let unit = idx
            .unit(&topic.unit)
            .ok_or_else(|| CoreError::not_found("Unit not found"))?;
        let access = has_financial_access(&idx, &keys, unit, Some(topic));
        // The topic's own status in its unit (unit lock, linear topics).
        let unit_locked = Self::unit_locked_on_track(&idx, unit, &keys, &completed, level);
        let topic_locked = Self::topic_nodes(&idx, unit, &keys, &completed, false, unit_locked)
            .iter()
            .any(|t| t.id == topic.id.as_str() && t.status == NodeStatus::Locked);
        let lessons = lesson_statuses(
            &idx.lessons_of_topic(&topic.id),
            &completed,
            access,
            topic.is_linear,
            topic_locked,
        );
        Ok(TopicDetails {
            topic_id: topic.id.to_string(),
            title: topic.title.clone(),
            description: topic.description.clone(),
            is_locked_premium: !access,
            lessons,
        })
    }

    /// `get_unit_topics`: topics of a unit with progress and statuses.
    pub async fn get_unit_topics(&self, actor: &Actor, unit: &UnitId) -> CoreResult<UnitTopics> {
        let idx = self.catalog().await?;
        let unit = idx
            .unit(unit)
            .filter(|u| u.is_published)
            .ok_or_else(|| CoreError::not_found("Unit not found"))?;
        let keys = self.commerce.access_keys(&actor.user).await?;
        let completed = self.activity.completed_lessons(&actor.user).await?;
        let level = level_for_xp(self.profiles.or_default(&actor.user).await?.total_xp);
        let unit_locked = Self::unit_locked_on_track(&idx, unit, &keys, &completed, level);
        Ok(UnitTopics {
            unit_title: unit.title.clone(),
            topics: Self::topic_nodes(&idx, unit, &keys, &completed, false, unit_locked),
        })
    }

    /// `get_lesson_details`: a published lesson's stages, if the learner has
    /// access (subscription or free preview); 403 otherwise.
    pub async fn get_lesson_details(
        &self,
        actor: &Actor,
        lesson: &LessonId,
    ) -> CoreResult<LessonDetails> {
        let idx = self.catalog().await?;
        let lesson = self.accessible_lesson(&idx, actor, lesson).await?;
        // Remember the opening: a play of this lesson is accepted only for
        // a lesson this learner opened (see `services::integrity`).
        if let Some(season) = self.shared.active_season().await? {
            self.ledger
                .record_served(
                    &actor.user,
                    &season.id,
                    &[super::integrity::lesson_key(&lesson.id)],
                    self.shared.config.lesson_answer_window,
                )
                .await?;
        }
        Ok(LessonDetails {
            lesson: lesson.clone(),
        })
    }

    /// Resolves a published lesson the caller may play.
    pub(crate) async fn accessible_lesson<'a>(
        &self,
        idx: &'a ContentIndex,
        actor: &Actor,
        lesson: &LessonId,
    ) -> CoreResult<&'a Lesson> {
        let l = idx
            .lesson(lesson)
            .filter(|l| l.is_published)
            .ok_or_else(|| CoreError::not_found("Lesson not found or access denied."))?;
        let unit = idx
            .unit(&l.unit)
            .ok_or_else(|| CoreError::not_found("Lesson not found or access denied."))?;
        let topic = l.topic.as_ref().and_then(|t| idx.topic(t));
        if actor.is_admin() {
            return Ok(l);
        }
        let keys = self.commerce.access_keys(&actor.user).await?;
        if !has_financial_access(idx, &keys, unit, topic) {
            return Err(CoreError::forbidden(
                "this lesson needs a subscription that covers its subject or track",
            ));
        }
        Ok(l)
    }
}
