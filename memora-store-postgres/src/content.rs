//! The content store: the catalog (academic structure and content tree) is
//! small, so it is loaded whole and imported entity by entity in one
//! transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use memora_core::domain::*;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::*;
use memora_core::ports::ContentStore;
use sqlx::{PgConnection, Row};

use crate::error::port;
use crate::rows::{id, opt_id, u32_of};
use crate::{PgStore, PgStoreError, Result};

fn structure_str(s: UnitStructure) -> &'static str {
    match s {
        UnitStructure::TopicBased => "topic_based",
        UnitStructure::LessonBased => "lesson_based",
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| PgStoreError::Invalid(format!("cannot encode: {e}")))
}

fn unjson<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| PgStoreError::Corrupt(format!("stored JSON: {e}")))
}

fn ids<T>(
    raw: Vec<String>,
    f: impl Fn(&str) -> Result<T, memora_core::CoreError>,
) -> Result<Vec<T>> {
    raw.iter().map(|r| id(r, &f)).collect()
}

fn sid<T: AsRef<str>>(v: &Option<T>) -> Option<&str> {
    v.as_ref().map(|x| x.as_ref())
}

async fn load(conn: &mut PgConnection) -> Result<Catalog> {
    let mut c = Catalog::default();
    for r in sqlx::query("SELECT id, title, icon, is_published, is_paid FROM subjects ORDER BY id")
        .fetch_all(crate::trips::one(&mut *conn))
        .await?
    {
        c.subjects.push(Subject {
            id: id(r.try_get("id")?, SubjectId::new)?,
            title: r.try_get("title")?,
            icon: r.try_get("icon")?,
            is_published: r.try_get("is_published")?,
            is_paid: r.try_get("is_paid")?,
        });
    }
    for r in sqlx::query(
        "SELECT id, subject_id, name, is_default, unlock_level, icon, description, is_linear, \
         is_published, is_paid, is_sold_separately FROM tracks ORDER BY id",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        c.tracks.push(Track {
            id: id(r.try_get("id")?, TrackId::new)?,
            subject: id(r.try_get("subject_id")?, SubjectId::new)?,
            name: r.try_get("name")?,
            is_default: r.try_get("is_default")?,
            unlock_level: u32_of(r.try_get("unlock_level")?, "unlock_level")?,
            icon: r.try_get("icon")?,
            description: r.try_get("description")?,
            is_linear: r.try_get("is_linear")?,
            is_published: r.try_get("is_published")?,
            is_paid: r.try_get("is_paid")?,
            is_sold_separately: r.try_get("is_sold_separately")?,
        });
    }
    for r in sqlx::query(
        "SELECT id, subject_id, track_id, title, ord, structure, is_linear_topics, \
         is_free_preview, is_published FROM units ORDER BY id",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        let structure: String = r.try_get("structure")?;
        c.units.push(Unit {
            id: id(r.try_get("id")?, UnitId::new)?,
            subject: id(r.try_get("subject_id")?, SubjectId::new)?,
            track: id(r.try_get("track_id")?, TrackId::new)?,
            title: r.try_get("title")?,
            order: r.try_get("ord")?,
            structure: match structure.as_str() {
                "topic_based" => UnitStructure::TopicBased,
                "lesson_based" => UnitStructure::LessonBased,
                o => return Err(PgStoreError::Corrupt(format!("unit structure {o}"))),
            },
            is_linear_topics: r.try_get("is_linear_topics")?,
            is_free_preview: r.try_get("is_free_preview")?,
            is_published: r.try_get("is_published")?,
        });
    }
    for r in sqlx::query(
        "SELECT id, unit_id, title, description, ord, is_linear, is_free_preview, is_published \
         FROM topics ORDER BY id",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        c.topics.push(Topic {
            id: id(r.try_get("id")?, TopicId::new)?,
            unit: id(r.try_get("unit_id")?, UnitId::new)?,
            title: r.try_get("title")?,
            description: r.try_get("description")?,
            order: r.try_get("ord")?,
            is_linear: r.try_get("is_linear")?,
            is_free_preview: r.try_get("is_free_preview")?,
            is_published: r.try_get("is_published")?,
        });
    }
    let mut stages: HashMap<String, Vec<Stage>> = HashMap::new();
    for r in
        sqlx::query("SELECT id, lesson_id, title, config FROM stages ORDER BY lesson_id, position")
            .fetch_all(crate::trips::one(&mut *conn))
            .await?
    {
        let lesson: String = r.try_get("lesson_id")?;
        stages.entry(lesson).or_default().push(Stage {
            id: id(r.try_get("id")?, StageId::new)?,
            title: r.try_get("title")?,
            config: unjson(r.try_get("config")?)?,
        });
    }
    for r in sqlx::query(
        "SELECT id, title, unit_id, topic_id, xp_reward, ord, is_published FROM lessons ORDER BY id",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        let lid: String = r.try_get("id")?;
        c.lessons.push(Lesson {
            id: id(&lid, LessonId::new)?,
            title: r.try_get("title")?,
            unit: id(r.try_get("unit_id")?, UnitId::new)?,
            topic: opt_id(r.try_get("topic_id")?, TopicId::new)?,
            xp_reward: r.try_get("xp_reward")?,
            order: r.try_get("ord")?,
            is_published: r.try_get("is_published")?,
            stages: stages.remove(&lid).unwrap_or_default(),
        });
    }
    for r in sqlx::query("SELECT id, name, valid_streams FROM grades ORDER BY id")
        .fetch_all(crate::trips::one(&mut *conn))
        .await?
    {
        c.grades.push(Grade {
            id: id(r.try_get("id")?, GradeId::new)?,
            name: r.try_get("name")?,
            valid_streams: ids(r.try_get("valid_streams")?, |s| StreamId::new(s))?,
        });
    }
    for r in sqlx::query("SELECT id, name FROM streams ORDER BY id")
        .fetch_all(crate::trips::one(&mut *conn))
        .await?
    {
        c.streams.push(Stream {
            id: id(r.try_get("id")?, StreamId::new)?,
            name: r.try_get("name")?,
        });
    }
    let mut plan_subjects: HashMap<String, Vec<PlanSubject>> = HashMap::new();
    for r in sqlx::query(
        "SELECT plan_id, subject_id, display_name, is_mandatory, selection FROM plan_subjects \
         ORDER BY plan_id, position",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        let plan: String = r.try_get("plan_id")?;
        plan_subjects.entry(plan).or_default().push(PlanSubject {
            subject: id(r.try_get("subject_id")?, SubjectId::new)?,
            display_name: r.try_get("display_name")?,
            is_mandatory: r.try_get("is_mandatory")?,
            selection: unjson(r.try_get("selection")?)?,
        });
    }
    for r in sqlx::query(
        "SELECT id, title, grade_id, stream_id, season_id, version FROM academic_plans ORDER BY id",
    )
    .fetch_all(crate::trips::one(&mut *conn))
    .await?
    {
        let pid: String = r.try_get("id")?;
        c.plans.push(AcademicPlan {
            id: id(&pid, PlanId::new)?,
            title: r.try_get("title")?,
            grade: id(r.try_get("grade_id")?, GradeId::new)?,
            stream: opt_id(r.try_get("stream_id")?, StreamId::new)?,
            season: id(r.try_get("season_id")?, SeasonId::new)?,
            subjects: plan_subjects.remove(&pid).unwrap_or_default(),
            version: r.try_get("version")?,
        });
    }
    Ok(c)
}

async fn import(conn: &mut PgConnection, b: &Catalog) -> Result<()> {
    for s in &b.subjects {
        sqlx::query(
            "INSERT INTO subjects (id, title, icon, is_published, is_paid) VALUES ($1,$2,$3,$4,$5) \
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, icon = EXCLUDED.icon, \
             is_published = EXCLUDED.is_published, is_paid = EXCLUDED.is_paid",
        )
        .bind(s.id.as_str())
        .bind(&s.title)
        .bind(&s.icon)
        .bind(s.is_published)
        .bind(s.is_paid)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for t in &b.tracks {
        sqlx::query(
            "INSERT INTO tracks (id, subject_id, name, is_default, unlock_level, icon, description, \
                 is_linear, is_published, is_paid, is_sold_separately) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) \
             ON CONFLICT (id) DO UPDATE SET subject_id = EXCLUDED.subject_id, name = EXCLUDED.name, \
             is_default = EXCLUDED.is_default, unlock_level = EXCLUDED.unlock_level, \
             icon = EXCLUDED.icon, description = EXCLUDED.description, \
             is_linear = EXCLUDED.is_linear, is_published = EXCLUDED.is_published, \
             is_paid = EXCLUDED.is_paid, is_sold_separately = EXCLUDED.is_sold_separately",
        )
        .bind(t.id.as_str())
        .bind(t.subject.as_str())
        .bind(&t.name)
        .bind(t.is_default)
        .bind(i64::from(t.unlock_level))
        .bind(&t.icon)
        .bind(&t.description)
        .bind(t.is_linear)
        .bind(t.is_published)
        .bind(t.is_paid)
        .bind(t.is_sold_separately)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for u in &b.units {
        sqlx::query(
            "INSERT INTO units (id, subject_id, track_id, title, ord, structure, is_linear_topics, \
                 is_free_preview, is_published) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) \
             ON CONFLICT (id) DO UPDATE SET subject_id = EXCLUDED.subject_id, \
             track_id = EXCLUDED.track_id, title = EXCLUDED.title, ord = EXCLUDED.ord, \
             structure = EXCLUDED.structure, is_linear_topics = EXCLUDED.is_linear_topics, \
             is_free_preview = EXCLUDED.is_free_preview, is_published = EXCLUDED.is_published",
        )
        .bind(u.id.as_str())
        .bind(u.subject.as_str())
        .bind(u.track.as_str())
        .bind(&u.title)
        .bind(u.order)
        .bind(structure_str(u.structure))
        .bind(u.is_linear_topics)
        .bind(u.is_free_preview)
        .bind(u.is_published)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for t in &b.topics {
        sqlx::query(
            "INSERT INTO topics (id, unit_id, title, description, ord, is_linear, is_free_preview, \
                 is_published) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) \
             ON CONFLICT (id) DO UPDATE SET unit_id = EXCLUDED.unit_id, title = EXCLUDED.title, \
             description = EXCLUDED.description, ord = EXCLUDED.ord, \
             is_linear = EXCLUDED.is_linear, is_free_preview = EXCLUDED.is_free_preview, \
             is_published = EXCLUDED.is_published",
        )
        .bind(t.id.as_str())
        .bind(t.unit.as_str())
        .bind(&t.title)
        .bind(&t.description)
        .bind(t.order)
        .bind(t.is_linear)
        .bind(t.is_free_preview)
        .bind(t.is_published)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for l in &b.lessons {
        sqlx::query(
            "INSERT INTO lessons (id, title, unit_id, topic_id, xp_reward, ord, is_published) \
             VALUES ($1,$2,$3,$4,$5,$6,$7) \
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, unit_id = EXCLUDED.unit_id, \
             topic_id = EXCLUDED.topic_id, xp_reward = EXCLUDED.xp_reward, ord = EXCLUDED.ord, \
             is_published = EXCLUDED.is_published",
        )
        .bind(l.id.as_str())
        .bind(&l.title)
        .bind(l.unit.as_str())
        .bind(sid(&l.topic))
        .bind(l.xp_reward)
        .bind(l.order)
        .bind(l.is_published)
        .execute(crate::trips::one(&mut *conn))
        .await?;
        // The lesson's stage list is replaced as a whole (order matters).
        sqlx::query("DELETE FROM stages WHERE lesson_id = $1")
            .bind(l.id.as_str())
            .execute(crate::trips::one(&mut *conn))
            .await?;
        for (pos, s) in l.stages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO stages (id, lesson_id, position, title, config) \
                 VALUES ($1,$2,$3,$4,$5) \
                 ON CONFLICT (id) DO UPDATE SET lesson_id = EXCLUDED.lesson_id, \
                 position = EXCLUDED.position, title = EXCLUDED.title, config = EXCLUDED.config",
            )
            .bind(s.id.as_str())
            .bind(l.id.as_str())
            .bind(i32::try_from(pos).unwrap_or(i32::MAX))
            .bind(&s.title)
            .bind(json(&s.config)?)
            .execute(crate::trips::one(&mut *conn))
            .await?;
        }
    }
    for g in &b.grades {
        let streams: Vec<&str> = g.valid_streams.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "INSERT INTO grades (id, name, valid_streams) VALUES ($1,$2,$3) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
             valid_streams = EXCLUDED.valid_streams",
        )
        .bind(g.id.as_str())
        .bind(&g.name)
        .bind(&streams)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for s in &b.streams {
        sqlx::query(
            "INSERT INTO streams (id, name) VALUES ($1,$2) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        )
        .bind(s.id.as_str())
        .bind(&s.name)
        .execute(crate::trips::one(&mut *conn))
        .await?;
    }
    for p in &b.plans {
        // New plans get version max(0, given) + 1; replaced ones
        // max(stored, given) + 1 — the same rule as the reference adapter.
        sqlx::query(
            "INSERT INTO academic_plans (id, title, grade_id, stream_id, season_id, version) \
             VALUES ($1,$2,$3,$4,$5, GREATEST(0, $6) + 1) \
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, grade_id = EXCLUDED.grade_id, \
             stream_id = EXCLUDED.stream_id, season_id = EXCLUDED.season_id, \
             version = GREATEST(academic_plans.version, $6) + 1",
        )
        .bind(p.id.as_str())
        .bind(&p.title)
        .bind(p.grade.as_str())
        .bind(sid(&p.stream))
        .bind(p.season.as_str())
        .bind(p.version)
        .execute(crate::trips::one(&mut *conn))
        .await?;
        sqlx::query("DELETE FROM plan_subjects WHERE plan_id = $1")
            .bind(p.id.as_str())
            .execute(crate::trips::one(&mut *conn))
            .await?;
        for (pos, s) in p.subjects.iter().enumerate() {
            sqlx::query(
                "INSERT INTO plan_subjects (plan_id, position, subject_id, display_name, \
                 is_mandatory, selection) VALUES ($1,$2,$3,$4,$5,$6)",
            )
            .bind(p.id.as_str())
            .bind(i32::try_from(pos).unwrap_or(i32::MAX))
            .bind(s.subject.as_str())
            .bind(&s.display_name)
            .bind(s.is_mandatory)
            .bind(json(&s.selection)?)
            .execute(crate::trips::one(&mut *conn))
            .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl ContentStore for PgStore {
    async fn load_catalog(&self) -> PortResult<Catalog> {
        // One repeatable-read snapshot so the catalog is consistent.
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(crate::trips::one(&mut *tx))
            .await
            .map_err(port)?;
        let c = load(&mut tx).await?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(c)
    }

    async fn import_catalog(&self, bundle: &Catalog) -> PortResult<u64> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        // Taken first: the row lock orders concurrent imports, and the
        // version commits (or not) with the entities.
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO catalog_version (singleton, version, imported_at) VALUES (true, 1, now()) \
             ON CONFLICT (singleton) DO UPDATE \
                 SET version = catalog_version.version + 1, imported_at = now() \
             RETURNING version",
        )
        .fetch_one(crate::trips::one(&mut *tx))
        .await
        .map_err(port)?;
        import(&mut tx, bundle).await.map_err(PortError::from)?;
        crate::trips::commit(tx).await.map_err(port)?;
        u64::try_from(version).map_err(|_| {
            PortError::from(PgStoreError::Corrupt(format!("catalog version {version}")))
        })
    }

    async fn catalog_version(&self) -> PortResult<u64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT version FROM catalog_version")
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let v = v.unwrap_or(0);
        u64::try_from(v)
            .map_err(|_| PortError::from(PgStoreError::Corrupt(format!("catalog version {v}"))))
    }
}
