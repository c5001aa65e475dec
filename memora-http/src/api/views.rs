//! Response DTOs: core results rendered in the Frappe/Memora wire shapes.
//! The HTTP crate owns these shapes; the core stays free of wire concerns.

use memora_core::domain::*;
use memora_core::services::cards::Card;
use memora_core::services::content::{LessonNode, SubjectView, TopicNode, UnitNode};
use memora_core::services::leaderboard::LeaderboardRow;
use serde_json::{Value, json};

/// A review card.
pub fn card(c: &Card) -> Value {
    let mut v = json!({
        "id": c.id.as_str(),
        "question_id": c.id.as_str(),
        "type": c.kind.as_str(),
        "question": c.question,
        "correct_answer": c.correct_answer,
        "options": c.options,
        "origin_type": c.origin,
        "subject": c.subject.as_str(),
        "topic": c.topic.as_ref().map(|t| t.as_str()),
        "lesson": c.lesson.as_str(),
    });
    if let Some(p) = &c.payload {
        v["config"] = p.clone();
    }
    v
}

/// Mastery counts.
pub fn mastery(m: &MasteryCounts) -> Value {
    json!({"new": m.new, "learning": m.learning, "mature": m.mature})
}

/// `get_subjects` row.
pub fn subject_basic(s: &SubjectView) -> Value {
    json!({"name": s.id.as_str(), "title": s.title, "icon": s.icon, "is_paid": s.is_paid})
}

/// `get_my_subjects` row.
pub fn subject_mine(s: &SubjectView) -> Value {
    json!({
        "id": s.id.as_str(),
        "name": s.subject_title,
        "icon": s.icon,
        "display_name": s.title,
        "is_mandatory": s.is_mandatory,
        "is_paid": s.is_paid,
    })
}

/// A learning track.
pub fn track(t: &Track) -> Value {
    json!({
        "name": t.id.as_str(),
        "track_name": t.name,
        "is_default": t.is_default,
        "unlock_level": t.unlock_level,
        "icon": t.icon,
        "description": t.description,
        "is_paid": t.is_paid,
        "is_sold_separately": t.is_sold_separately,
        "is_linear": t.is_linear,
    })
}

/// A lesson on the map.
pub fn lesson_node(l: &LessonNode, progression_word: bool) -> Value {
    json!({"id": l.id.as_str(), "title": l.title, "status": l.status.as_str(progression_word), "xp": l.xp})
}

/// A topic on the map.
pub fn topic_node(t: &TopicNode, progression_word: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "title": t.title,
        "description": t.description,
        "status": t.status.as_str(progression_word),
        "progress": t.progress(),
        "is_free": t.is_free,
        "stats": {
            "total": t.total_lessons,
            "completed": t.completed_lessons,
            "total_lessons": t.total_lessons,
            "completed_lessons": t.completed_lessons,
        },
    });
    if t.is_virtual {
        v["is_virtual"] = json!(true);
        v["lessons"] = t
            .lessons
            .iter()
            .map(|l| lesson_node(l, progression_word))
            .collect();
    }
    v
}

/// A unit on the map.
pub fn unit_node(u: &UnitNode, progression_word: bool) -> Value {
    json!({
        "id": u.id.as_str(),
        "title": u.title,
        "style": match u.structure { UnitStructure::LessonBased => "lessons", UnitStructure::TopicBased => "topics" },
        "structure_type": match u.structure { UnitStructure::LessonBased => "Lesson Based", UnitStructure::TopicBased => "Topic Based" },
        "status": u.status.as_str(progression_word),
        "progress": u.progress,
        "is_free": u.is_free,
        "topics": u.topics.iter().map(|t| topic_node(t, progression_word)).collect::<Vec<_>>(),
    })
}

/// A lesson stage (type lower-cased, config as JSON).
pub fn stage(s: &Stage) -> Value {
    let config = match &s.config {
        StageConfig::Quiz(v) => v.clone(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("config").cloned())
            .unwrap_or(Value::Null),
    };
    json!({
        "id": s.id.as_str(),
        "title": s.title,
        "type": s.config.type_name().to_lowercase(),
        "config": config,
    })
}

/// A leaderboard row (rank is a number or null).
pub fn leaderboard_row(r: &LeaderboardRow) -> Value {
    json!({
        "rank": r.rank,
        "player_id": r.player_id,
        "name": r.name,
        "player": r.name,
        "avatar": r.avatar,
        "xp": r.xp,
        "level": r.level,
        "isCurrentUser": r.is_current_user,
    })
}

/// A daily quest.
pub fn quest(q: &DailyQuest) -> Value {
    let mut v = json!({
        "id": q.id,
        "type": q.quest_type.as_str(),
        "title": q.title,
        "description": q.description,
        "icon": q.icon,
        "progress": q.progress,
        "target": q.target,
        "status": q.status.as_str(),
        "completed": q.status != QuestStatus::Active,
        "claimable": q.status == QuestStatus::Completed && q.reward_xp > 0,
        "isUrgent": q.is_urgent,
        "xp_reward": q.reward_xp,
    });
    if q.reward_xp > 0 {
        v["reward"] = json!({"type": "xp", "amount": q.reward_xp});
    }
    if q.quest_type == QuestType::Review && q.subject.is_some() {
        v["meta"] = json!({"subject": q.subject.as_ref().map(|s| s.as_str())});
    }
    v
}

/// A store item.
pub fn sales_item(i: &SalesItem) -> Value {
    json!({
        "name": i.id.as_str(),
        "id": i.id.as_str(),
        "item_name": i.name,
        "description": i.description,
        "price": i.price,
        "discounted_price": i.discounted_price,
        "image": i.image,
        "sku": i.sku,
        "target_grade": i.target_grade.as_ref().map(|g| g.as_str()),
        "season": i.season.as_str(),
        "contents": i.contents.iter().map(grant).collect::<Vec<_>>(),
    })
}

/// An access grant.
pub fn grant(g: &AccessGrant) -> Value {
    match g {
        AccessGrant::Subject(s) => json!({"type": "Subject", "subject": s.as_str()}),
        AccessGrant::Track(t) => json!({"type": "Track", "track": t.as_str()}),
    }
}

/// A purchase request.
pub fn purchase(r: &PurchaseRequest) -> Value {
    json!({
        "name": r.id.as_str(),
        "user": r.user.as_str(),
        "sales_item": r.item.as_str(),
        "status": r.status.as_str(),
        "price": r.price,
        "payment_method": r.payment_method,
        "transaction_id": r.transaction_id,
        "creation": r.created_at.to_rfc3339(),
        "decided_at": r.decided_at.map(|d| d.to_rfc3339()),
        "decided_by": r.decided_by.as_ref().map(|u| u.as_str()),
    })
}

/// A season.
pub fn season(s: &Season) -> Value {
    json!({
        "name": s.id.as_str(),
        "season_name": s.id.as_str(),
        "title": s.title,
        "start_date": s.start_date.to_string(),
        "end_date": s.end_date.to_string(),
        "is_active": s.is_active,
        "auto_archive": s.auto_archive,
        "enable_redis": s.enable_cache,
        "scheduler": s.scheduler.as_str(),
        "desired_retention": s.desired_retention,
        "archived": s.archived,
    })
}
