//! The player store: profiles, the gameplay-session ledger, subject scores,
//! leaderboard sources and FSRS parameters.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memora_core::domain::*;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::*;
use memora_core::ports::{
    ActivityStore, BoardEntry, BoardQuery, DaySummary, FitQuality, FitQualitySummary,
    FsrsParamStore, PersistJob, ProfileStore,
};
use sqlx::{PgConnection, Row};

use crate::error::port;
use crate::rows::{decode_records, encode_records, id, opt_id};
use crate::{PgStore, PgStoreError, Result};

fn n64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Session insert + XP credit in one statement: the session row, the
/// profile total (profile created if missing) and the subject score are
/// written together or not at all, with no check-then-insert race.
/// A duplicate session id fails the whole statement (unique violation).
/// The learner's read fence is bumped by the same statement (see the
/// `replica` module): no extra round trip on the submit path.
const RECORD_SESSION_SQL: &str = "WITH s AS ( \
        INSERT INTO gameplay_sessions (id, user_id, kind, lesson_id, subject_id, topic_id, \
            xp_earned, score, completed, created_at, local_day, raw_data) \
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) \
        RETURNING user_id, subject_id, xp_earned \
    ), p AS ( \
        INSERT INTO player_profiles (user_id, full_name, total_xp) \
        SELECT user_id, user_id, xp_earned FROM s \
        ON CONFLICT (user_id) DO UPDATE \
            SET total_xp = player_profiles.total_xp + EXCLUDED.total_xp \
        RETURNING 1 \
    ), sc AS ( \
        INSERT INTO subject_scores (user_id, subject_id, total_xp) \
        SELECT user_id, subject_id, xp_earned FROM s WHERE subject_id IS NOT NULL \
        ON CONFLICT (user_id, subject_id) DO UPDATE \
            SET total_xp = subject_scores.total_xp + EXCLUDED.total_xp \
        RETURNING 1 \
    ), f AS ( \
        INSERT INTO learner_fence AS lf (user_id, seq) SELECT user_id, 1 FROM s \
        ON CONFLICT (user_id) DO UPDATE SET seq = lf.seq + 1 \
    ) SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM sc)";

pub(crate) async fn record_session_on(
    conn: &mut PgConnection,
    s: &GameplaySession,
) -> PortResult<()> {
    sqlx::query_scalar::<_, i64>(RECORD_SESSION_SQL)
        .bind(s.id.as_str())
        .bind(s.user.as_str())
        .bind(s.kind.as_str())
        .bind(s.lesson.as_ref().map(|x| x.as_str()))
        .bind(s.subject.as_ref().map(|x| x.as_str()))
        .bind(s.topic.as_ref().map(|x| x.as_str()))
        .bind(s.xp_earned.max(0))
        .bind(s.score)
        .bind(s.completed)
        .bind(s.created_at)
        .bind(s.local_day)
        .bind(&s.raw_data)
        .fetch_one(crate::trips::one(&mut *conn))
        .await
        .map_err(|e| match port(e) {
            PortError::Conflict(_) => PortError::Conflict(format!("session {} exists", s.id)),
            other => other,
        })?;
    Ok(())
}

const PROFILE_COLS: &str = "user_id, full_name, avatar, total_xp, gems, grade_id, stream_id, \
    season_id, time_zone, rollover_hour, pending_time_zone, pending_rollover_hour, pending_zone_at";

#[derive(sqlx::FromRow)]
struct ProfileRow {
    user_id: String,
    full_name: String,
    avatar: Option<String>,
    total_xp: i64,
    gems: i64,
    grade_id: Option<String>,
    stream_id: Option<String>,
    season_id: Option<String>,
    time_zone: String,
    rollover_hour: i16,
    pending_time_zone: Option<String>,
    pending_rollover_hour: Option<i16>,
    pending_zone_at: Option<DateTime<Utc>>,
}

fn hour_of(h: i16, what: &str) -> Result<u8> {
    u8::try_from(h).map_err(|_| PgStoreError::Corrupt(format!("{what} {h}")))
}

impl ProfileRow {
    fn into_domain(self) -> Result<PlayerProfile> {
        Ok(PlayerProfile {
            user: id(&self.user_id, UserId::new)?,
            full_name: self.full_name,
            avatar: self.avatar,
            total_xp: self.total_xp,
            gems: self.gems,
            grade: opt_id(self.grade_id.as_deref(), GradeId::new)?,
            stream: opt_id(self.stream_id.as_deref(), StreamId::new)?,
            season: opt_id(self.season_id.as_deref(), SeasonId::new)?,
            time_zone: self.time_zone,
            rollover_hour: hour_of(self.rollover_hour, "rollover_hour")?,
            // The migration's CHECK keeps the three columns NULL together or
            // set together; anything else is reported, never guessed.
            pending_zone: match (
                self.pending_time_zone,
                self.pending_rollover_hour,
                self.pending_zone_at,
            ) {
                (None, None, None) => None,
                (Some(time_zone), Some(h), Some(effective_at)) => Some(PendingZone {
                    time_zone,
                    rollover_hour: hour_of(h, "pending_rollover_hour")?,
                    effective_at,
                }),
                _ => return Err(PgStoreError::Corrupt("partial pending zone".into())),
            },
        })
    }
}

/// The board of a query as SQL producing `(user_id, xp)` rows with XP > 0,
/// disabled users excluded. `$1` = subject (nullable), `$2` = since
/// (nullable). Users without a `users` row count as enabled (as in the
/// reference adapter).
fn board_sql(q: &BoardQuery) -> &'static str {
    match (&q.subject, q.since) {
        (None, None) => {
            "SELECT b.user_id, b.total_xp AS xp FROM player_profiles b \
             WHERE $1::text IS NULL AND $2::date IS NULL AND b.total_xp > 0 \
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = b.user_id AND NOT u.enabled)"
        }
        (Some(_), None) => {
            "SELECT b.user_id, b.total_xp AS xp FROM subject_scores b \
             WHERE b.subject_id = $1 AND $2::date IS NULL AND b.total_xp > 0 \
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = b.user_id AND NOT u.enabled)"
        }
        (_, Some(_)) => {
            "SELECT b.user_id, b.xp FROM ( \
                 SELECT user_id, sum(xp_earned)::int8 AS xp FROM gameplay_sessions \
                 WHERE local_day >= $2 AND ($1::text IS NULL OR subject_id = $1) \
                 GROUP BY user_id) b \
             WHERE b.xp > 0 \
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = b.user_id AND NOT u.enabled)"
        }
    }
}

#[async_trait]
impl ProfileStore for PgStore {
    async fn get_profile(&self, user: &UserId) -> PortResult<Option<PlayerProfile>> {
        let sql = format!("SELECT {PROFILE_COLS} FROM player_profiles WHERE user_id = $1");
        let row: Option<ProfileRow> = sqlx::query_as(&sql)
            .bind(user.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(row.map(ProfileRow::into_domain).transpose()?)
    }

    async fn get_profiles(&self, users: &[UserId]) -> PortResult<Vec<PlayerProfile>> {
        let ids: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
        let sql =
            format!("SELECT {PROFILE_COLS} FROM player_profiles WHERE user_id = ANY($1::text[])");
        let rows: Vec<ProfileRow> = sqlx::query_as(&sql)
            .bind(&ids)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut by: HashMap<String, PlayerProfile> = HashMap::new();
        for r in rows {
            let p = r.into_domain()?;
            by.insert(p.user.as_str().to_owned(), p);
        }
        Ok(users.iter().filter_map(|u| by.remove(u.as_str())).collect())
    }

    async fn upsert_profile(&self, p: &PlayerProfile) -> PortResult<()> {
        // total_xp is never written here: it only moves through
        // record_session, atomically with the session row.
        let pending = p.pending_zone.as_ref();
        sqlx::query(
            "INSERT INTO player_profiles (user_id, full_name, avatar, total_xp, gems, grade_id, \
                 stream_id, season_id, time_zone, rollover_hour, pending_time_zone, \
                 pending_rollover_hour, pending_zone_at) \
             VALUES ($1,$2,$3,0,$4,$5,$6,$7,$8,$9,$10,$11,$12) \
             ON CONFLICT (user_id) DO UPDATE SET full_name = EXCLUDED.full_name, \
             avatar = EXCLUDED.avatar, gems = EXCLUDED.gems, grade_id = EXCLUDED.grade_id, \
             stream_id = EXCLUDED.stream_id, season_id = EXCLUDED.season_id, \
             time_zone = EXCLUDED.time_zone, rollover_hour = EXCLUDED.rollover_hour, \
             pending_time_zone = EXCLUDED.pending_time_zone, \
             pending_rollover_hour = EXCLUDED.pending_rollover_hour, \
             pending_zone_at = EXCLUDED.pending_zone_at",
        )
        .bind(p.user.as_str())
        .bind(&p.full_name)
        .bind(&p.avatar)
        .bind(p.gems)
        .bind(p.grade.as_ref().map(|x| x.as_str()))
        .bind(p.stream.as_ref().map(|x| x.as_str()))
        .bind(p.season.as_ref().map(|x| x.as_str()))
        .bind(&p.time_zone)
        .bind(i16::from(p.rollover_hour))
        .bind(pending.map(|z| z.time_zone.as_str()))
        .bind(pending.map(|z| i16::from(z.rollover_hour)))
        .bind(pending.map(|z| z.effective_at))
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(())
    }
}

#[async_trait]
impl ActivityStore for PgStore {
    async fn record_session(&self, session: &GameplaySession) -> PortResult<()> {
        let mut conn = self.pool.acquire().await.map_err(port)?;
        record_session_on(&mut conn, session).await
    }

    async fn record_session_with_batch(
        &self,
        session: &GameplaySession,
        batch: &PersistJob,
    ) -> PortResult<()> {
        let records = encode_records(&batch.records)?;
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        record_session_on(&mut tx, session).await?;
        sqlx::query(
            "INSERT INTO pending_tracker_batches (job_id, session_id, user_id, recorded_at, \
                 records) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(batch.id.as_str())
        .bind(session.id.as_str())
        .bind(session.user.as_str())
        .bind(session.created_at)
        .bind(&records)
        .execute(crate::trips::one(&mut *tx))
        .await
        .map_err(|e| match port(e) {
            PortError::Conflict(_) => {
                PortError::Conflict(format!("pending batch {} exists", batch.id))
            }
            other => other,
        })?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }

    async fn pending_batch(&self, job: &JobId) -> PortResult<Option<PersistJob>> {
        let row: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT records FROM pending_tracker_batches WHERE job_id = $1")
                .bind(job.as_str())
                .fetch_optional(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        Ok(row
            .map(|v| {
                Ok::<_, PgStoreError>(PersistJob {
                    id: job.clone(),
                    records: decode_records(v)?,
                })
            })
            .transpose()?)
    }

    async fn pending_batches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<PersistJob>> {
        let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
            "SELECT job_id, records FROM pending_tracker_batches WHERE recorded_at <= $1 \
             ORDER BY recorded_at, job_id LIMIT $2",
        )
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        rows.into_iter()
            .map(|(job, v)| {
                Ok(PersistJob {
                    id: id(&job, JobId::new)?,
                    records: decode_records(v)?,
                })
            })
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn clear_pending_batch(&self, job: &JobId) -> PortResult<()> {
        sqlx::query("DELETE FROM pending_tracker_batches WHERE job_id = $1")
            .bind(job.as_str())
            .execute(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn active_days(&self, user: &UserId, since: NaiveDate) -> PortResult<Vec<NaiveDate>> {
        sqlx::query_scalar(
            "SELECT DISTINCT local_day FROM gameplay_sessions \
             WHERE user_id = $1 AND local_day >= $2 AND kind IN ('lesson', 'review') \
             ORDER BY local_day DESC",
        )
        .bind(user.as_str())
        .bind(since)
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)
    }

    async fn xp_by_day(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> PortResult<Vec<(NaiveDate, i64)>> {
        sqlx::query_as(
            "SELECT local_day, sum(xp_earned)::int8 FROM gameplay_sessions \
             WHERE user_id = $1 AND local_day BETWEEN $2 AND $3 AND kind IN ('lesson', 'review') \
             GROUP BY local_day ORDER BY local_day",
        )
        .bind(user.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)
    }

    async fn day_summary(&self, user: &UserId, day: NaiveDate) -> PortResult<DaySummary> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE kind = 'lesson') AS lessons, \
                    count(*) FILTER (WHERE kind = 'review') AS reviews, \
                    coalesce(sum(xp_earned) FILTER (WHERE kind <> 'quest_reward'), 0)::int8 AS xp \
             FROM gameplay_sessions WHERE user_id = $1 AND local_day = $2",
        )
        .bind(user.as_str())
        .bind(day)
        .fetch_one(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        let lessons: i64 = row.try_get("lessons").map_err(port)?;
        let reviews: i64 = row.try_get("reviews").map_err(port)?;
        Ok(DaySummary {
            lesson_sessions: u32::try_from(lessons).unwrap_or(u32::MAX),
            review_sessions: u32::try_from(reviews).unwrap_or(u32::MAX),
            xp: row.try_get("xp").map_err(port)?,
        })
    }

    async fn lesson_plays_on(
        &self,
        user: &UserId,
        lesson: &LessonId,
        day: NaiveDate,
    ) -> PortResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM gameplay_sessions \
             WHERE user_id = $1 AND lesson_id = $2 AND local_day = $3",
        )
        .bind(user.as_str())
        .bind(lesson.as_str())
        .bind(day)
        .fetch_one(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn completed_lessons(&self, user: &UserId) -> PortResult<HashSet<LessonId>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT lesson_id FROM gameplay_sessions \
             WHERE user_id = $1 AND completed AND lesson_id IS NOT NULL",
        )
        .bind(user.as_str())
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        rows.iter()
            .map(|r| id(r, LessonId::new))
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn subject_xp(&self, user: &UserId, subject: &SubjectId) -> PortResult<i64> {
        let xp: Option<i64> = sqlx::query_scalar(
            "SELECT total_xp FROM subject_scores WHERE user_id = $1 AND subject_id = $2",
        )
        .bind(user.as_str())
        .bind(subject.as_str())
        .fetch_optional(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(xp.unwrap_or(0))
    }

    async fn top_players(&self, q: &BoardQuery, limit: usize) -> PortResult<Vec<BoardEntry>> {
        let sql = format!(
            "SELECT user_id, xp FROM ({}) board ORDER BY xp DESC, user_id ASC LIMIT $3",
            board_sql(q)
        );
        // A board source: on the replica when configured (stale by its lag).
        let sql = sql.as_str();
        let subject = q.subject.as_ref().map(|s| s.as_str());
        let rows: Vec<(String, i64)> = self
            .read_bulk(|pool| async move {
                sqlx::query_as(sql)
                    .bind(subject)
                    .bind(q.since)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(crate::trips::one(&pool))
                    .await
            })
            .await
            .map_err(port)?;
        rows.into_iter()
            .map(|(u, xp)| {
                Ok(BoardEntry {
                    user: id(&u, UserId::new)?,
                    xp,
                })
            })
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn player_rank(&self, user: &UserId, q: &BoardQuery) -> PortResult<(i64, Option<u64>)> {
        // The user's own XP in scope (even when not ranked, e.g. disabled).
        let own_sql = match (&q.subject, q.since) {
            (None, None) => {
                "SELECT coalesce((SELECT total_xp FROM player_profiles WHERE user_id = $3 \
                   AND $1::text IS NULL AND $2::date IS NULL), 0)::int8"
            }
            (Some(_), None) => {
                "SELECT coalesce((SELECT total_xp FROM subject_scores \
                   WHERE user_id = $3 AND subject_id = $1 AND $2::date IS NULL), 0)::int8"
            }
            (_, Some(_)) => {
                "SELECT coalesce(sum(xp_earned), 0)::int8 FROM gameplay_sessions \
                 WHERE user_id = $3 AND local_day >= $2 AND ($1::text IS NULL OR subject_id = $1)"
            }
        };
        // The learner's own XP must show their own sessions: a fenced read
        // (`$3` is the user, so the fence is looked up by `$3`).
        let subject = q.subject.as_ref().map(|s| s.as_str());
        let fenced_sql = format!(
            "SELECT ({own_sql}) AS xp, {} AS fence",
            crate::replica::FENCE_SQL.replace("$1", "$3")
        );
        let fenced_sql = fenced_sql.as_str();
        let xp: i64 = self
            .read_fenced(user, |pool, fenced| async move {
                let row = sqlx::query(if fenced { fenced_sql } else { own_sql })
                    .bind(subject)
                    .bind(q.since)
                    .bind(user.as_str())
                    .fetch_one(crate::trips::one(&pool))
                    .await?;
                let xp: i64 = row.try_get(0)?;
                let fence: i64 = if fenced { row.try_get("fence")? } else { 0 };
                Ok((xp, fence))
            })
            .await
            .map_err(port)?;
        // Rank = 1 + players ahead (more XP, or equal XP and a smaller id),
        // only if the user is on the board: XP in scope > 0 and not disabled
        // (exactly the board's own filter, decided here from the fresh `xp`
        // so a replica that has not seen the learner's first XP yet still
        // ranks them). The count of players ahead is a bulk read: on the
        // replica when configured, stale by its lag.
        let sql = format!(
            "WITH board AS ({}) \
             SELECT CASE WHEN $4 > 0 AND NOT EXISTS \
                    (SELECT 1 FROM users u WHERE u.id = $3 AND NOT u.enabled) \
                THEN 1 + (SELECT count(*) FROM board \
                          WHERE xp > $4 OR (xp = $4 AND user_id < $3)) END",
            board_sql(q)
        );
        let sql = sql.as_str();
        let rank: Option<i64> = self
            .read_bulk(|pool| async move {
                sqlx::query_scalar(sql)
                    .bind(subject)
                    .bind(q.since)
                    .bind(user.as_str())
                    .bind(xp)
                    .fetch_one(crate::trips::one(&pool))
                    .await
            })
            .await
            .map_err(port)?;
        Ok((xp, rank.map(n64)))
    }
}

#[async_trait]
impl FsrsParamStore for PgStore {
    async fn fsrs_params(&self, user: &UserId) -> PortResult<Option<(Vec<f64>, u64)>> {
        let row: Option<(Vec<f64>, i64)> =
            sqlx::query_as("SELECT params, fitted_on_reviews FROM fsrs_params WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        Ok(row.map(|(p, n)| (p, n64(n))))
    }

    async fn set_fsrs_params(
        &self,
        user: &UserId,
        params: &[f64],
        fitted_on_reviews: u64,
    ) -> PortResult<()> {
        sqlx::query(
            "INSERT INTO fsrs_params (user_id, params, fitted_on_reviews) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET params = EXCLUDED.params, \
             fitted_on_reviews = EXCLUDED.fitted_on_reviews, updated_at = now()",
        )
        .bind(user.as_str())
        .bind(params)
        .bind(i64::try_from(fitted_on_reviews).unwrap_or(i64::MAX))
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn record_fit_quality(&self, user: &UserId, q: &FitQuality) -> PortResult<()> {
        sqlx::query(
            "UPDATE fsrs_params SET loss_before = $2, loss_after = $3, fell_back = $4 \
             WHERE user_id = $1",
        )
        .bind(user.as_str())
        .bind(q.loss_before)
        .bind(q.loss_after)
        .bind(q.fell_back)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn fit_quality_summary(&self) -> PortResult<FitQualitySummary> {
        let (fitted, fell_back, improved, before, after): (
            i64,
            i64,
            i64,
            Option<f64>,
            Option<f64>,
        ) = self
            .read_bulk(|pool| async move {
                sqlx::query_as(
                    "SELECT count(*), count(*) FILTER (WHERE fell_back), \
                            count(*) FILTER (WHERE loss_after < loss_before), \
                            avg(loss_before), avg(loss_after) \
                     FROM fsrs_params WHERE fell_back IS NOT NULL",
                )
                .fetch_one(crate::trips::one(&pool))
                .await
            })
            .await
            .map_err(port)?;
        Ok(FitQualitySummary {
            fitted: n64(fitted),
            fell_back: n64(fell_back),
            improved: n64(improved),
            mean_loss_before: before,
            mean_loss_after: after,
        })
    }
}
