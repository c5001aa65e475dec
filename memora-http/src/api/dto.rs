//! Response types: core results rendered in the Frappe/Memora wire shapes.
//! Every type derives `ToSchema`, so the OpenAPI document describes exactly
//! what is serialized. The HTTP crate owns these shapes; the core stays free
//! of wire concerns.

use memora_core::domain::*;
use memora_core::services::cards::Card;
use memora_core::services::content::{LessonNode, SubjectView, TopicNode, UnitNode};
use memora_core::services::leaderboard::LeaderboardRow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A review card.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardDto {
    /// Question id to answer with.
    pub id: String,
    /// Same as `id` (older clients).
    pub question_id: String,
    /// Presentation (`multiple_choice`, `flashcard`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Question text.
    pub question: String,
    /// Correct answer (cards are graded offline by the client).
    pub correct_answer: String,
    /// Options (shuffled).
    pub options: Vec<String>,
    /// Source stage type.
    pub origin_type: String,
    /// Subject id.
    pub subject: String,
    /// Topic id.
    pub topic: Option<String>,
    /// Lesson id.
    pub lesson: String,
    /// Raw stage configuration of custom cards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl From<&Card> for CardDto {
    fn from(c: &Card) -> Self {
        CardDto {
            id: c.id.as_str().to_owned(),
            question_id: c.id.as_str().to_owned(),
            kind: c.kind.as_str().to_owned(),
            question: c.question.clone(),
            correct_answer: c.correct_answer.clone(),
            options: c.options.clone(),
            origin_type: c.origin.to_owned(),
            subject: c.subject.as_str().to_owned(),
            topic: c.topic.as_ref().map(|t| t.as_str().to_owned()),
            lesson: c.lesson.as_str().to_owned(),
            config: c.payload.clone(),
        }
    }
}

/// Mastery counts by bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct MasteryDto {
    /// Items not yet learned.
    pub new: u64,
    /// Items in learning.
    pub learning: u64,
    /// Mature items.
    pub mature: u64,
}

impl From<&MasteryCounts> for MasteryDto {
    fn from(m: &MasteryCounts) -> Self {
        MasteryDto {
            new: m.new,
            learning: m.learning,
            mature: m.mature,
        }
    }
}

/// `get_subjects` row.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectBasic {
    /// Subject id.
    pub name: String,
    /// Display title.
    pub title: String,
    /// Icon.
    pub icon: Option<String>,
    /// Paid content.
    pub is_paid: bool,
}

impl From<&SubjectView> for SubjectBasic {
    fn from(s: &SubjectView) -> Self {
        SubjectBasic {
            name: s.id.as_str().to_owned(),
            title: s.title.clone(),
            icon: s.icon.clone(),
            is_paid: s.is_paid,
        }
    }
}

/// `get_my_subjects` row.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectMine {
    /// Subject id.
    pub id: String,
    /// Subject title.
    pub name: String,
    /// Icon.
    pub icon: Option<String>,
    /// Plan display name.
    pub display_name: String,
    /// Mandatory in the plan.
    pub is_mandatory: bool,
    /// Paid content.
    pub is_paid: bool,
}

impl From<&SubjectView> for SubjectMine {
    fn from(s: &SubjectView) -> Self {
        SubjectMine {
            id: s.id.as_str().to_owned(),
            name: s.subject_title.clone(),
            icon: s.icon.clone(),
            display_name: s.title.clone(),
            is_mandatory: s.is_mandatory,
            is_paid: s.is_paid,
        }
    }
}

/// A learning track.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackDto {
    /// Track id.
    pub name: String,
    /// Title.
    pub track_name: String,
    /// Default track of its subject.
    pub is_default: bool,
    /// Level that unlocks it.
    pub unlock_level: u32,
    /// Icon.
    pub icon: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Paid content.
    pub is_paid: bool,
    /// Sold on its own.
    pub is_sold_separately: bool,
    /// Units must be played in order.
    pub is_linear: bool,
}

impl From<&Track> for TrackDto {
    fn from(t: &Track) -> Self {
        TrackDto {
            name: t.id.as_str().to_owned(),
            track_name: t.name.clone(),
            is_default: t.is_default,
            unlock_level: t.unlock_level,
            icon: t.icon.clone(),
            description: t.description.clone(),
            is_paid: t.is_paid,
            is_sold_separately: t.is_sold_separately,
            is_linear: t.is_linear,
        }
    }
}

/// A lesson on the map.
#[derive(Debug, Serialize, ToSchema)]
pub struct LessonNodeDto {
    /// Lesson id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `completed`, `available`, `locked`/`locked_progression`,
    /// `locked_premium`, `locked_level`.
    pub status: String,
    /// XP reward.
    pub xp: i64,
}

impl LessonNodeDto {
    /// Renders a lesson node.
    pub fn new(l: &LessonNode, progression_word: bool) -> Self {
        LessonNodeDto {
            id: l.id.as_str().to_owned(),
            title: l.title.clone(),
            status: l.status.as_str(progression_word).to_owned(),
            xp: l.xp,
        }
    }
}

/// Lesson counts of a topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicStats {
    /// Lessons (older name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// Completed lessons (older name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<usize>,
    /// Lessons.
    pub total_lessons: usize,
    /// Completed lessons.
    pub completed_lessons: usize,
}

/// A topic on the map.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicNodeDto {
    /// Topic id (`<unit>-default` for a lesson-based unit's virtual topic).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Status (see lessons).
    pub status: String,
    /// Percent of lessons completed.
    pub progress: u32,
    /// Free preview.
    pub is_free: bool,
    /// Lesson counts.
    pub stats: TopicStats,
    /// Present (true) for the virtual topic of a lesson-based unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_virtual: Option<bool>,
    /// Lessons of a virtual topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lessons: Option<Vec<LessonNodeDto>>,
}

impl TopicNodeDto {
    /// Renders a topic node; `short_stats` drops the older stat names.
    pub fn new(t: &TopicNode, progression_word: bool, short_stats: bool) -> Self {
        TopicNodeDto {
            id: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status.as_str(progression_word).to_owned(),
            progress: t.progress(),
            is_free: t.is_free,
            stats: TopicStats {
                total: (!short_stats).then_some(t.total_lessons),
                completed: (!short_stats).then_some(t.completed_lessons),
                total_lessons: t.total_lessons,
                completed_lessons: t.completed_lessons,
            },
            is_virtual: t.is_virtual.then_some(true),
            lessons: t.is_virtual.then(|| {
                t.lessons
                    .iter()
                    .map(|l| LessonNodeDto::new(l, progression_word))
                    .collect()
            }),
        }
    }
}

/// A unit on the map.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitNodeDto {
    /// Unit id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `lessons` or `topics` (map only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// `Lesson Based` or `Topic Based`.
    pub structure_type: String,
    /// Status (see lessons).
    pub status: String,
    /// Percent completed.
    pub progress: u32,
    /// Free preview.
    pub is_free: bool,
    /// Topics (map only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<TopicNodeDto>>,
}

impl UnitNodeDto {
    /// Renders a unit; `with_topics` adds `style` and `topics` (the map).
    pub fn new(u: &UnitNode, progression_word: bool, with_topics: bool) -> Self {
        UnitNodeDto {
            id: u.id.as_str().to_owned(),
            title: u.title.clone(),
            style: with_topics.then(|| {
                match u.structure {
                    UnitStructure::LessonBased => "lessons",
                    UnitStructure::TopicBased => "topics",
                }
                .to_owned()
            }),
            structure_type: match u.structure {
                UnitStructure::LessonBased => "Lesson Based",
                UnitStructure::TopicBased => "Topic Based",
            }
            .to_owned(),
            status: u.status.as_str(progression_word).to_owned(),
            progress: u.progress,
            is_free: u.is_free,
            topics: with_topics.then(|| {
                u.topics
                    .iter()
                    .map(|t| TopicNodeDto::new(t, progression_word, false))
                    .collect()
            }),
        }
    }
}

/// A lesson stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageDto {
    /// Stage id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Stage type, lower case (`quiz`, `reveal`, `matching`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Stage configuration (shape depends on the type).
    pub config: Value,
}

impl From<&Stage> for StageDto {
    fn from(s: &Stage) -> Self {
        let config = match &s.config {
            StageConfig::Quiz(v) => v.clone(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("config").cloned())
                .unwrap_or(Value::Null),
        };
        StageDto {
            id: s.id.as_str().to_owned(),
            title: s.title.clone(),
            kind: s.config.type_name().to_lowercase(),
            config,
        }
    }
}

/// A leaderboard row.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderboardRowDto {
    /// Rank (null when unranked).
    pub rank: Option<u64>,
    /// Opaque player id.
    pub player_id: String,
    /// Display name (never an e-mail).
    pub name: String,
    /// Same as `name` (older clients).
    pub player: String,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// XP in the period.
    pub xp: i64,
    /// Level.
    pub level: u32,
    /// The caller's own row.
    #[serde(rename = "isCurrentUser")]
    pub is_current_user: bool,
}

impl From<&LeaderboardRow> for LeaderboardRowDto {
    fn from(r: &LeaderboardRow) -> Self {
        LeaderboardRowDto {
            rank: r.rank,
            player_id: r.player_id.clone(),
            name: r.name.clone(),
            player: r.name.clone(),
            avatar: r.avatar.clone(),
            xp: r.xp,
            level: r.level,
            is_current_user: r.is_current_user,
        }
    }
}

/// A quest reward.
#[derive(Debug, Serialize, ToSchema)]
pub struct RewardDto {
    /// Always `xp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// XP.
    pub amount: i64,
}

/// Extra data of a per-subject quest.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestMeta {
    /// Subject id.
    pub subject: Option<String>,
}

/// A daily quest.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestDto {
    /// Quest id.
    pub id: String,
    /// Quest type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Icon.
    pub icon: String,
    /// Progress towards `target`.
    pub progress: i64,
    /// Target.
    pub target: i64,
    /// `active`, `completed` or `claimed`.
    pub status: String,
    /// Not active any more.
    pub completed: bool,
    /// Completed with an unclaimed reward.
    pub claimable: bool,
    /// Due soon.
    #[serde(rename = "isUrgent")]
    pub is_urgent: bool,
    /// XP reward.
    pub xp_reward: i64,
    /// Reward (when there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward: Option<RewardDto>,
    /// Per-subject review quests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<QuestMeta>,
}

impl From<&DailyQuest> for QuestDto {
    fn from(q: &DailyQuest) -> Self {
        QuestDto {
            id: q.id.clone(),
            kind: q.quest_type.as_str().to_owned(),
            title: q.title.clone(),
            description: q.description.clone(),
            icon: q.icon.to_owned(),
            progress: q.progress,
            target: q.target,
            status: q.status.as_str().to_owned(),
            completed: q.status != QuestStatus::Active,
            claimable: q.status == QuestStatus::Completed && q.reward_xp > 0,
            is_urgent: q.is_urgent,
            xp_reward: q.reward_xp,
            reward: (q.reward_xp > 0).then(|| RewardDto {
                kind: "xp".into(),
                amount: q.reward_xp,
            }),
            meta: (q.quest_type == QuestType::Review && q.subject.is_some()).then(|| QuestMeta {
                subject: q.subject.as_ref().map(|s| s.as_str().to_owned()),
            }),
        }
    }
}

/// What a purchase grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantDto {
    /// `Subject` or `Track`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Subject id (subject grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Track id (track grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
}

impl From<&AccessGrant> for GrantDto {
    fn from(g: &AccessGrant) -> Self {
        match g {
            AccessGrant::Subject(s) => GrantDto {
                kind: "Subject".into(),
                subject: Some(s.as_str().to_owned()),
                track: None,
            },
            AccessGrant::Track(t) => GrantDto {
                kind: "Track".into(),
                subject: None,
                track: Some(t.as_str().to_owned()),
            },
        }
    }
}

/// A store item.
#[derive(Debug, Serialize, ToSchema)]
pub struct SalesItemDto {
    /// Item id.
    pub name: String,
    /// Item id.
    pub id: String,
    /// Display name.
    pub item_name: String,
    /// Description.
    pub description: Option<String>,
    /// Price.
    pub price: i64,
    /// Discounted price.
    pub discounted_price: Option<i64>,
    /// Image URL.
    pub image: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// Grade it is sold to.
    pub target_grade: Option<String>,
    /// Season it belongs to.
    pub season: String,
    /// What it grants.
    pub contents: Vec<GrantDto>,
}

impl From<&SalesItem> for SalesItemDto {
    fn from(i: &SalesItem) -> Self {
        SalesItemDto {
            name: i.id.as_str().to_owned(),
            id: i.id.as_str().to_owned(),
            item_name: i.name.clone(),
            description: i.description.clone(),
            price: i.price,
            discounted_price: i.discounted_price,
            image: i.image.clone(),
            sku: i.sku.clone(),
            target_grade: i.target_grade.as_ref().map(|g| g.as_str().to_owned()),
            season: i.season.as_str().to_owned(),
            contents: i.contents.iter().map(GrantDto::from).collect(),
        }
    }
}

/// A purchase request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseDto {
    /// Request id.
    pub name: String,
    /// Learner.
    pub user: String,
    /// Item id.
    pub sales_item: String,
    /// `Pending`, `Approved` or `Rejected`.
    pub status: String,
    /// Price at request time.
    pub price: i64,
    /// Payment method.
    pub payment_method: Option<String>,
    /// Transaction reference.
    pub transaction_id: Option<String>,
    /// Created (RFC 3339).
    pub creation: String,
    /// Decided (RFC 3339).
    pub decided_at: Option<String>,
    /// Decided by.
    pub decided_by: Option<String>,
}

impl From<&PurchaseRequest> for PurchaseDto {
    fn from(r: &PurchaseRequest) -> Self {
        PurchaseDto {
            name: r.id.as_str().to_owned(),
            user: r.user.as_str().to_owned(),
            sales_item: r.item.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            price: r.price,
            payment_method: r.payment_method.clone(),
            transaction_id: r.transaction_id.clone(),
            creation: r.created_at.to_rfc3339(),
            decided_at: r.decided_at.map(|d| d.to_rfc3339()),
            decided_by: r.decided_by.as_ref().map(|u| u.as_str().to_owned()),
        }
    }
}

/// A season.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeasonDto {
    /// Season id (`SEASON-YYYY[-X]`).
    pub name: String,
    /// Season id.
    pub season_name: String,
    /// Title.
    pub title: String,
    /// First day (YYYY-MM-DD).
    pub start_date: String,
    /// Last day (YYYY-MM-DD).
    pub end_date: String,
    /// The active season.
    pub is_active: bool,
    /// Archived automatically after its end.
    pub auto_archive: bool,
    /// Uses the Redis due cache.
    pub enable_redis: bool,
    /// `ladder` or `fsrs`.
    pub scheduler: String,
    /// FSRS desired retention.
    pub desired_retention: f64,
    /// Archived.
    pub archived: bool,
}

impl From<&Season> for SeasonDto {
    fn from(s: &Season) -> Self {
        SeasonDto {
            name: s.id.as_str().to_owned(),
            season_name: s.id.as_str().to_owned(),
            title: s.title.clone(),
            start_date: s.start_date.to_string(),
            end_date: s.end_date.to_string(),
            is_active: s.is_active,
            auto_archive: s.auto_archive,
            enable_redis: s.enable_cache,
            scheduler: s.scheduler.as_str().to_owned(),
            desired_retention: s.desired_retention,
            archived: s.archived,
        }
    }
}
