//! Subjects, the learning map, lessons and lesson plays.

use memora_core::ids::*;
use memora_core::services::sessions::{Interaction, LessonSubmission};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, id, method, opt_id};
use crate::api::de;
use crate::api::dto::*;
use crate::error::ApiError;

method!(
    /// `get_subjects`.
    GetSubjects = "get_subjects" in "subjects", User, Read,
    "Subjects of the learner's academic plan",
    NoArgs => Vec<SubjectBasic>,
    |app, ctx, _req| {
        let v = app.learning().get_subjects(ctx.actor()?).await?;
        Ok(v.iter().map(SubjectBasic::from).collect())
    }
);

method!(
    /// `get_my_subjects`.
    GetMySubjects = "get_my_subjects" in "subjects", User, Read,
    "Subjects of the learner's plan with display names",
    NoArgs => Vec<SubjectMine>,
    |app, ctx, _req| {
        let v = app.learning().get_subjects(ctx.actor()?).await?;
        Ok(v.iter().map(SubjectMine::from).collect())
    }
);

/// Arguments naming one subject.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubjectArg {
    /// Subject id.
    #[serde(deserialize_with = "de::string")]
    pub subject: String,
}

method!(
    /// `get_game_tracks`.
    GetGameTracks = "get_game_tracks" in "subjects", User, Read,
    "Published tracks of a subject",
    SubjectArg => Vec<TrackDto>,
    |app, _ctx, req| {
        let subject = id(SubjectId::new(req.subject))?;
        let v = app.learning().get_game_tracks(&subject).await?;
        Ok(v.iter().map(TrackDto::from).collect())
    }
);

/// Optional subject and track.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MapArgs {
    /// Subject id (all of the plan's subjects if absent).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
    /// Track id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub track: Option<String>,
}

/// One subject of the map.
#[derive(Debug, Serialize, ToSchema)]
pub struct MapSubjectDto {
    /// Subject id.
    pub subject_id: String,
    /// Title.
    pub title: String,
    /// Units with statuses.
    pub units: Vec<UnitNodeDto>,
}

method!(
    /// `get_map_data`.
    GetMapData = "get_map_data" in "map_engine", User, Read,
    "Learning map with statuses",
    MapArgs => Vec<MapSubjectDto>,
    |app, ctx, req| {
        let subject = opt_id(req.subject, SubjectId::new)?;
        let track = opt_id(req.track, TrackId::new)?;
        let map = app
            .learning()
            .get_map_data(ctx.actor()?, subject.as_ref(), track.as_ref())
            .await?;
        Ok(map
            .iter()
            .map(|m| MapSubjectDto {
                subject_id: m.subject.id.as_str().to_owned(),
                title: m.subject.title.clone(),
                units: m
                    .units
                    .iter()
                    .map(|u| UnitNodeDto::new(u, false, true))
                    .collect(),
            })
            .collect())
    }
);

/// Arguments of `get_track_details`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackDetailsArgs {
    /// Subject id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub subject: Option<String>,
    /// Track id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub track: Option<String>,
    /// Override the track's linear setting.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_track_linear: Option<bool>,
}

/// A subject's id and title.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRef {
    /// Subject id.
    pub id: String,
    /// Title.
    pub title: String,
}

/// An empty object (`{}`), where the original answers one. Its schema
/// allows no properties, so a track never matches it as well (`oneOf`
/// needs exactly one match).
#[derive(Debug, Serialize)]
pub struct EmptyObject {}

impl utoipa::PartialSchema for EmptyObject {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .description(Some("An empty object"))
            .max_properties(Some(0))
            .into()
    }
}

impl ToSchema for EmptyObject {}

/// A track, or `{}` when none was named.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TrackOrEmpty {
    /// The track.
    Track(TrackDto),
    /// No track.
    Empty(EmptyObject),
}

/// Result of `get_track_details`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackDetailsDto {
    /// Subject.
    pub subject: SubjectRef,
    /// Track, or `{}`.
    pub track: TrackOrEmpty,
    /// Units with progress.
    pub units: Vec<UnitNodeDto>,
}

method!(
    /// `get_track_details`.
    GetTrackDetails = "get_track_details" in "map_engine", User, Read,
    "Units of a track with progress",
    TrackDetailsArgs => TrackDetailsDto,
    |app, ctx, req| {
        let subject = opt_id(req.subject, SubjectId::new)?;
        let track = opt_id(req.track, TrackId::new)?;
        let d = app
            .learning()
            .get_track_details(ctx.actor()?, subject.as_ref(), track.as_ref(), req.is_track_linear)
            .await?;
        Ok(TrackDetailsDto {
            subject: SubjectRef {
                id: d.subject.id.as_str().to_owned(),
                title: d.subject.title.clone(),
            },
            track: match &d.track {
                Some(t) => TrackOrEmpty::Track(TrackDto::from(t)),
                None => TrackOrEmpty::Empty(EmptyObject {}),
            },
            units: d.units.iter().map(|u| UnitNodeDto::new(u, true, false)).collect(),
        })
    }
);

/// Arguments of `get_topic_details`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopicArg {
    /// Topic id (also `topic`).
    #[serde(alias = "topic", deserialize_with = "de::string")]
    pub topic_id: String,
}

/// Result of `get_topic_details`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDetailsDto {
    /// Topic id.
    pub topic_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Locked behind a subscription.
    pub is_locked_premium: bool,
    /// Lessons with statuses.
    pub lessons: Vec<LessonNodeDto>,
}

method!(
    /// `get_topic_details`.
    GetTopicDetails = "get_topic_details" in "map_engine", User, Read,
    "Lessons of a topic with statuses",
    TopicArg => TopicDetailsDto,
    |app, ctx, req| {
        let d = app.learning().get_topic_details(ctx.actor()?, &req.topic_id).await?;
        Ok(TopicDetailsDto {
            topic_id: d.topic_id.clone(),
            title: d.title.clone(),
            description: d.description.clone(),
            is_locked_premium: d.is_locked_premium,
            lessons: d.lessons.iter().map(|l| LessonNodeDto::new(l, false)).collect(),
        })
    }
);

/// Arguments of `get_unit_topics`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnitArg {
    /// Unit id (also `unit`).
    #[serde(alias = "unit", deserialize_with = "de::string")]
    pub unit_id: String,
}

/// Result of `get_unit_topics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitTopicsDto {
    /// Unit title.
    pub unit_title: String,
    /// Topics with progress.
    pub topics: Vec<TopicNodeDto>,
}

method!(
    /// `get_unit_topics`.
    GetUnitTopics = "get_unit_topics" in "map_engine", User, Read,
    "Topics of a unit with progress",
    UnitArg => UnitTopicsDto,
    |app, ctx, req| {
        let unit = id(UnitId::new(req.unit_id))?;
        let d = app.learning().get_unit_topics(ctx.actor()?, &unit).await?;
        Ok(UnitTopicsDto {
            unit_title: d.unit_title.clone(),
            topics: d.topics.iter().map(|t| TopicNodeDto::new(t, true, true)).collect(),
        })
    }
);

/// Arguments of `get_lesson_details`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LessonArg {
    /// Lesson id (also `lesson`).
    #[serde(alias = "lesson", deserialize_with = "de::string")]
    pub lesson_id: String,
}

/// Result of `get_lesson_details`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LessonDetailsDto {
    /// Lesson id.
    pub name: String,
    /// Title.
    pub title: String,
    /// Most XP a play earns.
    pub xp_reward: i64,
    /// Stages in order.
    pub stages: Vec<StageDto>,
}

method!(
    /// `get_lesson_details`.
    GetLessonDetails = "get_lesson_details" in "sessions", User, Read,
    "Lesson stages (subscription or free preview required); opens a play",
    LessonArg => LessonDetailsDto,
    |app, ctx, req| {
        let lesson = id(LessonId::new(req.lesson_id))?;
        let d = app.learning().get_lesson_details(ctx.actor()?, &lesson).await?;
        Ok(LessonDetailsDto {
            name: d.lesson.id.as_str().to_owned(),
            title: d.lesson.title.clone(),
            xp_reward: d.lesson.xp_reward,
            stages: d.lesson.stages.iter().map(StageDto::from).collect(),
        })
    }
);

/// `session_meta` of a lesson play.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct LessonMeta {
    /// Lesson id (also `lesson`).
    #[serde(default, alias = "lesson", deserialize_with = "de::opt_string")]
    pub lesson_id: Option<String>,
}

/// The client's view of a play (kept for the record; the server computes
/// XP and completion itself).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct GamificationResults {
    /// XP the client computed (capped by the server).
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub xp_earned: Option<i64>,
    /// Score 0–100 the client computed.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub score: Option<i64>,
}

/// One answered stage of a lesson play.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct InteractionIn {
    /// Question id (`<stage>` or `<stage>:<n>`); items without one are skipped.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub question_id: Option<String>,
    /// Time spent in ms (also `time_spent_ms`).
    #[serde(default, alias = "time_spent_ms", deserialize_with = "de::opt_u64")]
    pub duration_ms: Option<u64>,
    /// Attempts (also `attempts`).
    #[serde(default, alias = "attempts", deserialize_with = "de::opt_u64")]
    pub attempts_count: Option<u64>,
    /// Correct.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_correct: Option<bool>,
}

/// Arguments of `submit_session` (objects may also be sent as JSON strings).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitSessionArgs {
    /// Which lesson was played.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub session_meta: Option<LessonMeta>,
    /// The client's results.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub gamification_results: Option<GamificationResults>,
    /// Answered stages.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub interactions: Option<Vec<InteractionIn>>,
    /// Lesson id, when not in `session_meta`.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub lesson_id: Option<String>,
}

/// Result of `submit_session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitSessionDto {
    /// Always `success`.
    pub status: String,
    /// Human message.
    pub message: String,
    /// XP awarded by the server.
    pub xp_earned: i64,
    /// The play completed the lesson.
    pub completed: bool,
    /// Persistence job of the memory update.
    pub persistence_job_id: Option<String>,
    /// Its status.
    pub persistence_status: Option<String>,
}

fn clamp_u32(v: Option<u64>) -> Option<u32> {
    v.map(|x| u32::try_from(x).unwrap_or(u32::MAX))
}

method!(
    /// `submit_session`.
    SubmitSession = "submit_session" in "sessions", User, Write,
    "Record a lesson play opened by get_lesson_details: XP, score, SRS",
    SubmitSessionArgs => SubmitSessionDto,
    |app, ctx, req| {
        let lesson = req
            .session_meta
            .as_ref()
            .and_then(|m| m.lesson_id.clone())
            .or(req.lesson_id)
            .ok_or_else(|| ApiError::bad("missing required argument 'session_meta.lesson_id' (or 'lesson_id')"))?;
        let results = req.gamification_results.unwrap_or_default();
        let raw_interactions = req.interactions.unwrap_or_default();
        let mut interactions = Vec::with_capacity(raw_interactions.len());
        for (i, item) in raw_interactions.iter().enumerate() {
            let Some(q) = item.question_id.as_ref().filter(|q| !q.is_empty()) else {
                continue; // the original skipped items without a question id
            };
            interactions.push(Interaction {
                question_id: QuestionId::parse(q.clone()).map_err(|e| {
                    ApiError::bad(format!("argument 'interactions[{i}].question_id': {e}"))
                })?,
                duration_ms: clamp_u32(item.duration_ms),
                attempts: clamp_u32(item.attempts_count),
                is_correct: item.is_correct,
            });
        }
        let raw = serde_json::json!({
            "interactions": raw_interactions,
            "gamification_results": results,
        });
        let sub = LessonSubmission {
            lesson: id(LessonId::new(lesson))?,
            claimed_xp: results.xp_earned,
            score: results.score,
            interactions,
            raw,
        };
        let out = app.learning().submit_session(ctx.actor()?, &sub).await?;
        Ok(SubmitSessionDto {
            status: "success".into(),
            message: "Session Saved ✅".into(),
            xp_earned: out.xp_earned,
            completed: out.completed,
            persistence_job_id: out.job.as_ref().map(|(j, _)| j.as_str().to_owned()),
            persistence_status: out.job.as_ref().map(|(_, s)| s.as_str().to_owned()),
        })
    }
);
